//! RPKI settings of the import policy (`policy.rpki:` in the fabric file): where validated
//! payload comes from (RTR caches, RFC 8210, and a JSON export file), what happens to an
//! RPKI-invalid route and whether ASPA verification runs. Owns the values and their defaults;
//! must not connect to caches nor read the VRP file (the route server's `rpki` module does).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// RFC 8210 section 6 default: seconds between a cache's serial queries.
pub const DEFAULT_RTR_REFRESH_SECONDS: u32 = 3600;
/// RFC 8210 section 6 default: seconds before retrying a cache that failed.
pub const DEFAULT_RTR_RETRY_SECONDS: u32 = 600;
/// RFC 8210 section 6 default: seconds the data of a cache that cannot be reached stays usable.
pub const DEFAULT_RTR_EXPIRE_SECONDS: u32 = 7200;
/// The RTR port IANA assigned (RFC 6810 section 7: `rpki-rtr`, TCP 323).
pub const DEFAULT_RTR_PORT: u16 = 323;

/// `policy.rpki:`: RPKI origin validation (RFC 6811) and ASPA verification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RpkiPolicy {
    /// RTR caches in preference order: the first that answers is used, the next ones are
    /// tried when it fails (RFC 8210 section 10: several caches for robustness).
    pub caches: Vec<RtrCache>,
    /// Timers used until a cache sends its own in End of Data (RFC 8210 section 6).
    pub timers: RtrTimers,
    /// A JSON export of validated payload (rpki-client `-j`, Routinator `jsonext`), read at
    /// start-up and on reload; used when no cache has answered, or with no caches at all.
    pub vrp_file: Option<PathBuf>,
    /// What happens to an RPKI-invalid route.
    pub invalid: InvalidAction,
    /// ASPA verification of the AS_PATH (draft-ietf-sidrops-aspa-verification).
    pub aspa: AspaAction,
}

/// One RTR cache: host name or address, and TCP port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RtrCache {
    /// A literal address and port.
    Address(SocketAddr),
    /// A DNS name and port, resolved when connecting.
    Name {
        /// Host name.
        host: String,
        /// TCP port.
        port: u16,
    },
}

impl fmt::Display for RtrCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => write!(f, "{address}"),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Refresh, retry and expire intervals in seconds (RFC 8210 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtrTimers {
    /// Seconds between serial queries to the cache in use.
    pub refresh: u32,
    /// Seconds before trying a failed cache again.
    pub retry: u32,
    /// Seconds after the last successful update after which the data is no longer used.
    pub expire: u32,
}

impl Default for RtrTimers {
    fn default() -> Self {
        RtrTimers {
            refresh: DEFAULT_RTR_REFRESH_SECONDS,
            retry: DEFAULT_RTR_RETRY_SECONDS,
            expire: DEFAULT_RTR_EXPIRE_SECONDS,
        }
    }
}

/// What the route server does with an RPKI-invalid route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InvalidAction {
    /// Refuse it (reason `rpki_invalid`, Euro-IX `rs:1101:13`), as RFC 7948 section 4.6
    /// practice and every IXP route server generator do (`reject`).
    #[default]
    Reject,
    /// Accept it and mark it `rs:1000:4` in the looking glass only (`tag`).
    Tag,
}

impl InvalidAction {
    /// The name used in the fabric file.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Tag => "tag",
        }
    }
}

/// What ASPA verification does with a path that verifies as invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AspaAction {
    /// Refuse it (reason `aspa_invalid`) (`reject`).
    Reject,
    /// Accept it and show the outcome in the looking glass (`tag`).
    Tag,
    /// No ASPA verification (`off`, the default: ASPA is still a draft).
    #[default]
    Off,
}

impl AspaAction {
    /// The name used in the fabric file.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Tag => "tag",
            Self::Off => "off",
        }
    }
}
