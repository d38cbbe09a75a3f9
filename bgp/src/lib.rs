//! A sans-IO BGP speaker: project-owned types, the codec boundary (`wire`) and the per-connection
//! RFC 4271 session. Owns no sockets, tasks or clocks: callers pass bytes and `now` in and take
//! bytes, events and deadlines out.

pub mod role;
pub mod session;
pub mod types;
pub mod wire;

pub use role::{Role, RolePolicy};
pub use session::{
    Counters, Direction, DownReason, Event, Negotiated, Session, SessionConfig, State,
    collision_keeps_incoming,
};
pub use types::*;
pub use wire::{
    Announcement, CeaseSubcode, DecodeContext, DecodeError, EncodeContext, Notification, Update,
    encode_announcements, encode_end_of_rib, encode_withdrawals,
};
