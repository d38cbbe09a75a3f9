//! Helpers for vixp system tests: network namespaces, daemons (BIRD, GoBGP, FRR, OpenBGPD, our
//! binaries) and the parsing of their command-line views. Owns test scaffolding only; must not
//! send traffic anywhere but loopback or the namespaces it creates, and must not touch
//! system-wide daemons.
//!
//! Run as root: `scripts/test -p vixp-tests`, or `cargo build -p route-server` followed by
//! `cargo test -p vixp-tests` (the tests start `target/debug/route-server`). Every test builds
//! its own [`Exchange`]: a bridge namespace, one namespace per router, addresses from
//! 198.18.0.0/24 and fd00:198:18::/64, private ASNs. On a failed wait the panic message shows
//! every member's routes and the tail of every daemon's log, and the test's directory (configs,
//! logs) is kept under the temp dir.

pub mod bird;
pub mod chromium;
pub mod command;
pub mod daemon;
pub mod error;
pub mod exchange;
pub mod fabric_exchange;
pub mod frr;
pub mod gobgp;
pub mod netns;
pub mod openbgpd;
pub mod raw_peer;
pub mod route;
pub mod rtr;
pub mod snippet_exchange;
pub mod temp;
pub mod vixp_node;
pub mod wait;
pub mod workspace;

pub use bird::{Bird, BirdConfig, BirdProtocol};
pub use daemon::Daemon;
pub use error::Error;
pub use exchange::{Exchange, MemberKind, MemberSpec, RouteServerKind};
pub use fabric_exchange::{FabricExchange, FabricMember, MemberSite};
pub use gobgp::{Gobgp, GobgpConfig, GobgpNeighbor};
pub use netns::{Host, Lan, Netns};
pub use raw_peer::RawPeer;
pub use route::{Announcement, Route};
pub use rtr::{AspaRecord, Roa, RtrCache};
pub use temp::TempDir;
pub use vixp_node::{PeerCounters, VixpNode};
pub use wait::{try_wait_until, wait_until};
pub use workspace::{binary_path, workspace_root};
