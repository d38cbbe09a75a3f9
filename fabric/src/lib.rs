//! The fabric file (`fabric.yaml`): the one description of an exchange that every vixp program
//! reads. Owns parsing and validation into [`Fabric`]; must not open sockets or touch devices.

pub mod model;

pub use model::*;
