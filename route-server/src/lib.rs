//! The vixp route server: a transparent RFC 7947 route server. The RIB and export decisions are
//! sans-IO; `driver` is the only module with sockets, tasks and clocks.
