//! Plumbing shared by vixp's daemons (`route-server`, `vixp`). Owns only what both need in the
//! same form; must hold no protocol or routing logic.

pub mod metrics;
pub mod systemd;
