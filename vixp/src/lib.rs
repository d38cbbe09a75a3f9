//! The vixp fabric node: joins a member to the exchange's WireGuard peering LAN. Owns the node
//! file, keys, the sans-IO data path (`core`), the tokio driver and the node's metrics and
//! status; the fabric file itself belongs to `vixp-fabric`.

pub mod core;
pub mod driver;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod router_config;
pub mod status;
