//! The fabric file (`fabric.yaml`): the one description of an exchange that every vixp program
//! reads. Owns parsing and validation into [`Fabric`]; must not open sockets or touch devices.
//!
//! ```no_run
//! use std::path::Path;
//!
//! match vixp_fabric::Fabric::load(Path::new("configs/fabric.yaml")) {
//!     Ok(fabric) => println!("{} members", fabric.members.len()),
//!     // One line per problem: `FILE:LINE: field.path: what is wrong; what is valid`.
//!     Err(error) => eprintln!("{error}"),
//! }
//! ```

pub mod error;
pub mod irr;
pub mod model;
mod parse;
pub mod policy;
pub mod rpki;
pub mod yaml;

pub use error::{FabricError, Problem, ProblemKind};
pub use irr::{AsnSet, IrrData, PrefixRange, PrefixSet};
pub use model::*;
pub use parse::MAX_FABRIC_FILE_BYTES;
pub use policy::*;
pub use rpki::{
    AspaAction, DEFAULT_RTR_EXPIRE_SECONDS, DEFAULT_RTR_PORT, DEFAULT_RTR_REFRESH_SECONDS,
    DEFAULT_RTR_RETRY_SECONDS, InvalidAction, RpkiPolicy, RtrCache, RtrTimers,
};
