//! The vixp route server: a transparent RFC 7947 route server. The RIB and export decisions are
//! sans-IO (`rib`); metrics are exported by `metrics`.

pub mod metrics;
pub mod rib;
