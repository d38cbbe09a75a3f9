//! The vixp route server: a transparent RFC 7947 route server. The RIB and export decisions are
//! sans-IO (`rib`); `driver` is the only module with sockets, tasks and clocks; `http` serves
//! the API and metrics, `lg` the looking-glass page; `cli` is the command line.

pub mod cli;
pub mod client;
pub mod control;
pub mod driver;
pub mod http;
pub mod irr;
pub mod ixf;
pub mod lg;
pub mod max_prefix;
pub mod metrics;
pub mod policy;
pub mod policy_page;
pub mod rib;
pub mod rpki;
