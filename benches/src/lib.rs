//! vixp benchmarks. `bgp-bench` is the route-server system benchmark: its own BGP load
//! generator and sink in network namespaces, run side by side against vixp's `route-server`,
//! BIRD 2 and GoBGP. This crate is never linked into a product binary.

pub mod api;
pub mod control;
pub mod daemons;
pub mod encode;
pub mod loadgen;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sink;
pub mod topology;
