//! The validated fabric: types that cannot hold an invalid exchange. Built only by the parser
//! in `parse`; nothing here reads files or knows YAML.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::irr::{IrrData, PrefixRange};
use crate::policy::Policy;

/// Default BGP port a route server listens on (RFC 4271 section 8.2.1).
pub const DEFAULT_BGP_PORT: u16 = 179;
/// Default address of a route server's HTTP listener (API, looking glass, `/metrics`).
pub const DEFAULT_HTTP_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9179);
/// Default hold time the route server proposes in its OPEN, in seconds (RFC 4271 section 10).
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Default seconds between active connection attempts (RFC 4271 ConnectRetryTime).
pub const DEFAULT_CONNECT_RETRY: u16 = 10;
/// Default WireGuard UDP port of a node.
pub const DEFAULT_WIREGUARD_PORT: u16 = 51820;
/// Default maximum number of IPv4 prefixes a member may announce.
pub const DEFAULT_MAX_PREFIX_IPV4: u32 = 1000;
/// Default maximum number of IPv6 prefixes a member may announce.
pub const DEFAULT_MAX_PREFIX_IPV6: u32 = 200;

/// A 4-octet autonomous system number (RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asn(pub u32);

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AS{}", self.0)
    }
}

/// A WireGuard public key: 32 bytes, written in standard base64 in the fabric file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine as _;
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

/// The whole exchange, as published by its operators in `fabric.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fabric {
    /// The file this fabric was read from (used in messages).
    pub source: PathBuf,
    /// Name and identity of the exchange.
    pub exchange: Exchange,
    /// The peering LAN prefixes.
    pub lan: Lan,
    /// Route servers, at least one.
    pub route_servers: Vec<RouteServer>,
    /// Members, in file order; ASNs, names, addresses and keys are unique.
    pub members: Vec<Member>,
    /// The route server's import policy; the IXP defaults when the file has no `policy:`.
    pub policy: Policy,
}

/// Name and identity of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Short name, e.g. `VIXP-Example`.
    pub name: String,
    /// Longer human-readable name, if given.
    pub description: Option<String>,
    /// IX-F database identifier, if the exchange has one.
    pub ixf_id: Option<u32>,
    /// Operator contact (e-mail address or URL), if given.
    pub contact: Option<String>,
}

/// The peering LAN: one IPv4 and one IPv6 subnet shared by all members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lan {
    /// IPv4 peering subnet.
    pub ipv4: Ipv4Net,
    /// IPv6 peering subnet.
    pub ipv6: Ipv6Net,
}

/// A route server of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteServer {
    /// Unique name among route servers and members.
    pub name: String,
    /// ASN the route server uses in its OPEN (never inserted into AS paths, RFC 7947).
    pub asn: Asn,
    /// BGP identifier; defaults to the IPv4 LAN address.
    pub router_id: Ipv4Addr,
    /// IPv4 LAN address (inside `lan.ipv4`).
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 LAN address (inside `lan.ipv6`).
    pub ipv6: Option<Ipv6Addr>,
    /// WireGuard public key of the route server's fabric node.
    pub public_key: PublicKey,
    /// Underlay endpoint of the route server's fabric node.
    pub endpoint: Option<Endpoint>,
    /// BGP session parameters.
    pub bgp: RouteServerBgp,
    /// HTTP listener for the API, looking glass and `/metrics`.
    pub http_listen: SocketAddr,
}

/// BGP parameters of a route server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteServerBgp {
    /// TCP port to listen on and to connect to.
    pub port: u16,
    /// Hold time proposed in OPEN, seconds (0 or at least 3).
    pub hold_time: u16,
    /// Seconds between active connection attempts.
    pub connect_retry: u16,
    /// Whether the route server also opens connections to members (it always accepts them).
    pub active_open: bool,
    /// Addresses to listen on; defaults to the route server's LAN addresses.
    pub listen: Vec<IpAddr>,
}

/// Where a node is reachable on the underlay: an address or a DNS name, and a UDP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A literal socket address.
    Address(SocketAddr),
    /// A DNS name and port, resolved by the node.
    Name {
        /// Host name.
        host: String,
        /// UDP port.
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => write!(f, "{address}"),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// A member of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Unique short name (letters, digits, `-`, `_`), used in metrics labels and logs.
    pub name: String,
    /// The member's ASN; unique in the fabric.
    pub asn: Asn,
    /// Free text shown in the looking glass.
    pub description: Option<String>,
    /// IPv4 LAN address (inside `lan.ipv4`); at least one of `ipv4` and `ipv6` is set.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 LAN address (inside `lan.ipv6`).
    pub ipv6: Option<Ipv6Addr>,
    /// WireGuard public key of the member's node.
    pub public_key: PublicKey,
    /// Underlay endpoint; absent for members behind NAT (they connect out).
    pub endpoint: Option<Endpoint>,
    /// Maximum prefixes per address family.
    pub max_prefix: MaxPrefix,
    /// IRR data source for this member, if any.
    pub irr: Option<Irr>,
    /// Whether the member may announce BLACKHOLE (RFC 7999) routes for its own space.
    pub blackhole: bool,
    /// Contact of the member's NOC (e-mail address or URL), if given.
    pub contact: Option<String>,
}

impl Member {
    /// The member's LAN addresses, IPv4 first.
    pub fn lan_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
    }
}

/// Maximum number of prefixes a member may announce, per address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPrefix {
    /// IPv4 unicast limit.
    pub ipv4: u32,
    /// IPv6 unicast limit.
    pub ipv6: u32,
}

/// Where a member's IRR data comes from: an AS-SET to query, files of bgpq4 output, inline
/// lists, or several of them (the lists are merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irr {
    /// AS-SET (or single `ASxxx`) that describes what the member may announce, e.g.
    /// `AS-EXAMPLE`; what `route-server irr refresh` queries.
    pub as_set: Option<String>,
    /// IRR sources to query, e.g. `RIPE`, `ARIN`; empty means the tool's default.
    pub sources: Vec<String>,
    /// File of `bgpq4 -j` prefix lists (IPv4 and IPv6), resolved against the fabric file's
    /// directory.
    pub prefixes_file: Option<PathBuf>,
    /// File of a `bgpq4 -j -t` origin ASN list, resolved against the fabric file's directory.
    pub asns_file: Option<PathBuf>,
    /// Prefixes listed in the fabric file.
    pub prefixes: Vec<PrefixRange>,
    /// Origin ASNs listed in the fabric file.
    pub origins: Vec<Asn>,
    /// The merged lists. The parser fills it when the member has no files; with files it is
    /// `None` until the route server reads them (its `irr::load`).
    pub data: Option<Arc<IrrData>>,
}

impl Irr {
    /// Whether the member's data needs files read before it is complete.
    pub fn has_files(&self) -> bool {
        self.prefixes_file.is_some() || self.asns_file.is_some()
    }

    /// The lists given inline, as [`IrrData`]: a list absent inline is `None`.
    pub fn inline_data(&self) -> IrrData {
        IrrData {
            prefixes: (!self.prefixes.is_empty())
                .then(|| crate::irr::PrefixSet::new(self.prefixes.iter().copied())),
            origins: (!self.origins.is_empty())
                .then(|| crate::irr::AsnSet::new(self.origins.iter().copied())),
        }
    }
}

impl Fabric {
    /// The member that owns `address` on the LAN, if any.
    pub fn member_by_address(&self, address: IpAddr) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| member.lan_addresses().any(|own| own == address))
    }

    /// The route server called `name`, or the only one when `name` is `None`.
    pub fn route_server(&self, name: Option<&str>) -> Option<&RouteServer> {
        match name {
            Some(name) => self.route_servers.iter().find(|rs| rs.name == name),
            None if self.route_servers.len() == 1 => self.route_servers.first(),
            None => None,
        }
    }
}
