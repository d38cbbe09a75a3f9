//! The route server's import policy as published in the fabric file (`policy:`): which routes
//! a member may announce. Owns the policy values, their IXP defaults and the default bogon
//! list; must not apply them to routes (the route server's `policy` module does).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::{Asn, Lan};
use crate::rpki::RpkiPolicy;

/// Default shortest and longest IPv4 prefix accepted, as arouteserver and IXP Manager
/// configure it.
pub const DEFAULT_IPV4_PREFIX_LENGTH: PrefixLengthRange = PrefixLengthRange { min: 8, max: 24 };
/// Default shortest and longest IPv6 prefix accepted.
pub const DEFAULT_IPV6_PREFIX_LENGTH: PrefixLengthRange = PrefixLengthRange { min: 12, max: 48 };
/// Default longest AS_PATH accepted, in ASNs.
pub const DEFAULT_MAX_AS_PATH_LENGTH: u32 = 32;
/// Default largest number of communities (standard, extended and large together) on a route.
pub const DEFAULT_MAX_COMMUNITIES: u32 = 100;
/// Default transit-free ("tier 1") networks that must never appear behind a member: a
/// member announcing them leaks a transit route onto the exchange.
pub const DEFAULT_TRANSIT_FREE_ASNS: [Asn; 14] = [
    Asn(174),
    Asn(701),
    Asn(1299),
    Asn(2914),
    Asn(3257),
    Asn(3320),
    Asn(3356),
    Asn(5511),
    Asn(6453),
    Asn(6461),
    Asn(6762),
    Asn(6830),
    Asn(7018),
    Asn(12956),
];

/// An IPv4 entry of [`DEFAULT_BOGON_PREFIXES`].
const fn v4(a: u8, b: u8, c: u8, d: u8, length: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), length))
}

/// An IPv6 entry of [`DEFAULT_BOGON_PREFIXES`]: the first two and third groups, rest zero.
const fn v6(first: u16, second: u16, third: u16, length: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(first, second, third, 0, 0, 0, 0, 0),
        length,
    ))
}

/// Prefixes no member may announce, nor anything they cover ("bogons"): the IANA IPv4 and
/// IPv6 Special-Purpose Address Registries (RFC 6890) entries that are not globally
/// reachable, plus deprecated and documentation space. The default routes and the peering
/// LAN are added by [`BogonPrefixes::Default`] at run time.
pub const DEFAULT_BOGON_PREFIXES: &[IpNet] = &[
    // "This host on this network", RFC 1122 section 3.2.1.3.
    v4(0, 0, 0, 0, 8),
    // Private use, RFC 1918.
    v4(10, 0, 0, 0, 8),
    // Shared address space (carrier-grade NAT), RFC 6598.
    v4(100, 64, 0, 0, 10),
    // Loopback, RFC 1122 section 3.2.1.3.
    v4(127, 0, 0, 0, 8),
    // Link local, RFC 3927.
    v4(169, 254, 0, 0, 16),
    // Private use, RFC 1918.
    v4(172, 16, 0, 0, 12),
    // IETF protocol assignments, RFC 6890 section 2.2.2.
    v4(192, 0, 0, 0, 24),
    // Documentation TEST-NET-1, RFC 5737.
    v4(192, 0, 2, 0, 24),
    // 6to4 relay anycast, deprecated by RFC 7526.
    v4(192, 88, 99, 0, 24),
    // Private use, RFC 1918.
    v4(192, 168, 0, 0, 16),
    // Benchmarking, RFC 2544.
    v4(198, 18, 0, 0, 15),
    // Documentation TEST-NET-2, RFC 5737.
    v4(198, 51, 100, 0, 24),
    // Documentation TEST-NET-3, RFC 5737.
    v4(203, 0, 113, 0, 24),
    // Multicast, RFC 5771.
    v4(224, 0, 0, 0, 4),
    // Reserved for future use and limited broadcast, RFC 1112 section 4 / RFC 919.
    v4(240, 0, 0, 0, 4),
    // Loopback, unspecified, IPv4-mapped and IPv4-compatible, RFC 4291 section 2.5.
    v6(0x0000, 0, 0, 8),
    // Discard-only, RFC 6666.
    v6(0x0100, 0, 0, 64),
    // Benchmarking, RFC 5180.
    v6(0x2001, 0x0002, 0, 48),
    // ORCHID (deprecated), RFC 4843.
    v6(0x2001, 0x0010, 0, 28),
    // ORCHIDv2, RFC 7343.
    v6(0x2001, 0x0020, 0, 28),
    // Documentation, RFC 3849.
    v6(0x2001, 0x0db8, 0, 32),
    // 6to4, RFC 3056 (its relays deprecated by RFC 7526).
    v6(0x2002, 0, 0, 16),
    // Documentation, RFC 9637.
    v6(0x3fff, 0, 0, 20),
    // 6bone (returned), RFC 3701.
    v6(0x3ffe, 0, 0, 16),
    // Segment routing SIDs, RFC 9602.
    v6(0x5f00, 0, 0, 16),
    // Unique local, RFC 4193.
    v6(0xfc00, 0, 0, 7),
    // Link local, RFC 4291 section 2.5.6.
    v6(0xfe80, 0, 0, 10),
    // Site local (deprecated), RFC 3879.
    v6(0xfec0, 0, 0, 10),
    // Multicast, RFC 4291 section 2.7.
    v6(0xff00, 0, 0, 8),
];

/// The route server's import policy (`policy:` in the fabric file). [`Policy::default`] is
/// the IXP filter set of arouteserver and IXP Manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Which NEXT_HOP a member may set.
    pub next_hop: NextHopPolicy,
    /// Shortest and longest prefix accepted, per address family.
    pub prefix_length: PrefixLengths,
    /// Longest AS_PATH accepted, in ASNs (an AS_SET counts as one).
    pub max_as_path_length: u32,
    /// Largest number of communities (standard, extended and large together); 0 is no limit.
    pub max_communities: u32,
    /// ASNs that must not appear behind a member (after its own ASN).
    pub transit_free_asns: Vec<Asn>,
    /// ASNs that must not appear anywhere in an AS_PATH learnt from a member (PeeringDB's
    /// "never via route servers").
    pub never_via_route_servers_asns: Vec<Asn>,
    /// Prefixes whose routes, and routes of anything they cover, are refused.
    pub bogon_prefixes: BogonPrefixes,
    /// Prefixes exempt from the bogon check, with everything they cover (not the LAN).
    pub allow_prefixes: Vec<IpNet>,
    /// Whether private (RFC 6996) and documentation (RFC 5398) ASNs in an AS_PATH are
    /// refused. Other reserved ASNs (0, 23456, 65535, 65552-131071, 4294967295) always are.
    pub reject_private_asns: bool,
    /// What the route server does when a member announces more prefixes of a family than its
    /// `max_prefix` allows.
    pub max_prefix_action: MaxPrefixAction,
    /// RPKI origin validation and ASPA verification (`policy.rpki`); `None`: not configured,
    /// no RPKI step in the pipeline.
    pub rpki: Option<RpkiPolicy>,
    /// BLACKHOLE (RFC 7999) handling (`policy.blackhole`).
    pub blackhole: BlackholePolicy,
    /// What the route server demands of a member's BGP Role capability (RFC 9234,
    /// `policy.bgp_role`).
    pub bgp_role: BgpRolePolicy,
}

/// The well-known BLACKHOLE community 65535:666 (RFC 7999 section 5).
pub const BLACKHOLE: u32 = 0xffff_029a;

/// What the route server does with BLACKHOLE routes from members that opted in
/// (`members[N].blackhole: true`): it accepts them for the member's own space down to /32
/// and /128, adds NO_EXPORT and, when set here, rewrites the next hop to a LAN address that
/// members' routers send to a discard route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BlackholePolicy {
    /// Next hop of IPv4 BLACKHOLE routes as exported (inside `lan.ipv4`); `None`: unchanged.
    pub next_hop_ipv4: Option<Ipv4Addr>,
    /// Next hop of IPv6 BLACKHOLE routes as exported (inside `lan.ipv6`); `None`: unchanged.
    pub next_hop_ipv6: Option<Ipv6Addr>,
}

impl BlackholePolicy {
    /// The rewritten next hop for a route to `prefix`, if one is configured for its family.
    pub fn next_hop_for(&self, prefix: &IpNet) -> Option<IpAddr> {
        match prefix {
            IpNet::V4(_) => self.next_hop_ipv4.map(IpAddr::V4),
            IpNet::V6(_) => self.next_hop_ipv6.map(IpAddr::V6),
        }
    }
}

/// How strictly the route server checks the BGP Role a member announces (RFC 9234 section
/// 4.2). The route server always announces the role "RS"; a member announcing "RS-client"
/// matches, any other role is a Role Mismatch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BgpRolePolicy {
    /// A member without the capability is accepted (`lenient`, the default).
    #[default]
    Lenient,
    /// A member must announce the role RS-client (`strict`: RFC 9234's "strict mode").
    Strict,
}

impl BgpRolePolicy {
    /// The name used in the fabric file.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Lenient => "lenient",
            Self::Strict => "strict",
        }
    }
}

/// Default minutes a session stays down after exceeding its max-prefix limit with `restart`.
pub const DEFAULT_MAX_PREFIX_RESTART_MINUTES: u32 = 15;

/// What happens when a member exceeds its max-prefix limit (counting every prefix it
/// announces in the family, accepted or filtered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxPrefixAction {
    /// End the session with Cease / Maximum Number of Prefixes Reached (RFC 4486 subcode 1) and
    /// keep it down until the route server restarts or its fabric file is reloaded.
    Shutdown,
    /// As `Shutdown`, then accept the member again after this many minutes.
    Restart {
        /// Minutes the session stays down.
        minutes: u32,
    },
    /// Only log and count (`route_server_max_prefix_exceeded_total`).
    Warn,
}

impl Default for MaxPrefixAction {
    fn default() -> Self {
        MaxPrefixAction::Restart {
            minutes: DEFAULT_MAX_PREFIX_RESTART_MINUTES,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            next_hop: NextHopPolicy::OwnAddress,
            prefix_length: PrefixLengths::default(),
            max_as_path_length: DEFAULT_MAX_AS_PATH_LENGTH,
            max_communities: DEFAULT_MAX_COMMUNITIES,
            transit_free_asns: DEFAULT_TRANSIT_FREE_ASNS.to_vec(),
            never_via_route_servers_asns: Vec::new(),
            bogon_prefixes: BogonPrefixes::Default,
            allow_prefixes: Vec::new(),
            reject_private_asns: true,
            max_prefix_action: MaxPrefixAction::default(),
            rpki: None,
            blackhole: BlackholePolicy::default(),
            bgp_role: BgpRolePolicy::default(),
        }
    }
}

/// Which NEXT_HOP a member may put on its routes (RFC 7947 section 2.2.1: the route server
/// passes it on unchanged, so a foreign next hop would divert other members' traffic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NextHopPolicy {
    /// The member's own LAN address of the route's next-hop family (`own_address`).
    #[default]
    OwnAddress,
    /// Any LAN address of a member with the same ASN (`same_asn`).
    SameAsn,
}

impl NextHopPolicy {
    /// The name used in the fabric file.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::OwnAddress => "own_address",
            Self::SameAsn => "same_asn",
        }
    }
}

/// Shortest and longest prefix length accepted, both inclusive; `min <= max` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixLengthRange {
    /// Shortest prefix accepted (a shorter one is "too short").
    pub min: u8,
    /// Longest prefix accepted (a longer one is "too long").
    pub max: u8,
}

/// Accepted prefix lengths per address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixLengths {
    /// IPv4 lengths, within 0-32.
    pub ipv4: PrefixLengthRange,
    /// IPv6 lengths, within 0-128.
    pub ipv6: PrefixLengthRange,
}

impl Default for PrefixLengths {
    fn default() -> Self {
        PrefixLengths {
            ipv4: DEFAULT_IPV4_PREFIX_LENGTH,
            ipv6: DEFAULT_IPV6_PREFIX_LENGTH,
        }
    }
}

impl PrefixLengths {
    /// The range for `prefix`'s address family.
    pub fn for_prefix(&self, prefix: &IpNet) -> PrefixLengthRange {
        match prefix {
            IpNet::V4(_) => self.ipv4,
            IpNet::V6(_) => self.ipv6,
        }
    }
}

/// Which prefixes are bogons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum BogonPrefixes {
    /// [`DEFAULT_BOGON_PREFIXES`] (`default`).
    #[default]
    Default,
    /// An explicit list that replaces the default one.
    List(Vec<IpNet>),
}

impl BogonPrefixes {
    /// The bogon prefixes besides the default routes and the peering LAN, which are always
    /// refused.
    pub fn prefixes(&self) -> &[IpNet] {
        match self {
            Self::Default => DEFAULT_BOGON_PREFIXES,
            Self::List(list) => list,
        }
    }
}

impl Policy {
    /// Whether `prefix` lies inside (or is) one of `allow_prefixes`.
    pub fn is_allowed(&self, prefix: &IpNet) -> bool {
        self.allow_prefixes
            .iter()
            .any(|allowed| allowed.contains(prefix))
    }
}

impl Lan {
    /// The LAN prefix of `prefix`'s address family.
    pub fn prefix_for(&self, prefix: &IpNet) -> IpNet {
        match prefix {
            IpNet::V4(_) => IpNet::V4(self.ipv4),
            IpNet::V6(_) => IpNet::V6(self.ipv6),
        }
    }

    /// Whether `address` is inside one of the LAN prefixes.
    pub fn contains(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(address) => self.ipv4.contains(&address),
            IpAddr::V6(address) => self.ipv6.contains(&address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().expect("test prefix is valid")
    }

    #[test]
    fn default_bogons_have_zero_host_bits_and_no_duplicates() {
        for (index, prefix) in DEFAULT_BOGON_PREFIXES.iter().enumerate() {
            assert_eq!(prefix.trunc(), *prefix, "{prefix} has host bits set");
            assert!(
                !DEFAULT_BOGON_PREFIXES[..index].contains(prefix),
                "{prefix} is listed twice"
            );
        }
    }

    #[test]
    fn default_bogons_hold_the_issue_list() {
        for expected in [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "::/8",
            "100::/64",
            "2001:2::/48",
            "2001:10::/28",
            "2001:db8::/32",
            "3ffe::/16",
            "fc00::/7",
            "fe80::/10",
            "fec0::/10",
            "ff00::/8",
            "2002::/16",
        ] {
            assert!(
                DEFAULT_BOGON_PREFIXES.contains(&net(expected)),
                "{expected} missing"
            );
        }
    }

    #[test]
    fn default_policy_is_the_ixp_filter_set() {
        let policy = Policy::default();
        assert_eq!(policy.next_hop, NextHopPolicy::OwnAddress);
        assert_eq!(
            policy.prefix_length.ipv4,
            PrefixLengthRange { min: 8, max: 24 }
        );
        assert_eq!(
            policy.prefix_length.ipv6,
            PrefixLengthRange { min: 12, max: 48 }
        );
        assert_eq!(policy.max_as_path_length, 32);
        assert_eq!(policy.max_communities, 100);
        assert_eq!(policy.transit_free_asns.len(), 14);
        assert!(policy.transit_free_asns.contains(&Asn(12956)));
        assert!(policy.never_via_route_servers_asns.is_empty());
        assert_eq!(policy.bogon_prefixes.prefixes(), DEFAULT_BOGON_PREFIXES);
        assert!(policy.allow_prefixes.is_empty());
        assert!(policy.reject_private_asns);
    }

    #[test]
    fn allow_prefixes_cover_longer_prefixes_only() {
        let policy = Policy {
            allow_prefixes: vec![net("198.18.0.0/15")],
            ..Policy::default()
        };
        assert!(policy.is_allowed(&net("198.18.5.0/24")));
        assert!(policy.is_allowed(&net("198.18.0.0/15")));
        assert!(!policy.is_allowed(&net("198.16.0.0/13")));
        assert!(!policy.is_allowed(&net("fd00::/48")));
    }

    #[test]
    fn lan_prefix_follows_the_family() {
        let lan = Lan {
            ipv4: "198.18.0.0/24".parse().expect("valid"),
            ipv6: "fd00:198:18::/64".parse().expect("valid"),
        };
        assert_eq!(lan.prefix_for(&net("10.0.0.0/8")), net("198.18.0.0/24"));
        assert_eq!(
            lan.prefix_for(&net("2001:db8::/32")),
            net("fd00:198:18::/64")
        );
        assert!(lan.contains("198.18.0.11".parse().expect("valid")));
        assert!(!lan.contains("198.18.1.11".parse().expect("valid")));
    }
}
