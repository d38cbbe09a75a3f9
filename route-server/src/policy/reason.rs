//! Why an import filter refused a route: one [`Reason`] variant per filter, with the facts a
//! member needs to fix it. Owns the Euro-IX reason codes, the metric labels and the looking
//! glass wording; must not decide whether a route is refused (`filters` does).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use vixp_bgp::{Family, LargeCommunity, Prefix};
use vixp_fabric::{Asn, NextHopPolicy};

/// The Euro-IX "filtered" large community function: `rs:1101:code` (IXP Manager's scheme).
pub const EURO_IX_FILTERED: u32 = 1101;

/// Why a route was refused at import. Displayed in plain words for the looking glass and the
/// API; [`Reason::label`] names it in metrics, [`Reason::euro_ix_code`] in communities.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The NEXT_HOP is not the member's own LAN address (or, with `same_asn`, not a LAN
    /// address of a member with the same ASN). RFC 7947 section 2.2.1.
    NextHopNotPeer {
        /// The next hop on the route.
        next_hop: IpAddr,
        /// The member that sent it.
        member: Arc<str>,
        /// The member's ASN.
        asn: Asn,
        /// The member's own LAN address of the next hop's family, if it has one.
        own_address: Option<IpAddr>,
        /// The next-hop rule that was applied.
        policy: NextHopPolicy,
    },
    /// The AS_PATH does not start with the member's ASN (RFC 4271 section 6.3).
    FirstAsNotPeer {
        /// The leftmost ASN, or `None` when the path starts with an AS_SET or a
        /// confederation segment.
        first: Option<u32>,
        /// The member that sent the route.
        member: Arc<str>,
        /// The member's ASN.
        asn: Asn,
    },
    /// The AS_PATH holds no ASN at all.
    AsPathEmpty,
    /// The AS_PATH is longer than `policy.max_as_path_length`.
    AsPathTooLong {
        /// Length of the path (an AS_SET counts as one).
        length: usize,
        /// The limit.
        max: u32,
    },
    /// A private or reserved ASN in the AS_PATH.
    BogonAsn {
        /// The ASN.
        asn: u32,
        /// Why it may not appear.
        kind: BogonAsnKind,
    },
    /// A transit-free ASN behind the member: the member leaks a transit route.
    TransitFreeAsn {
        /// The transit-free ASN found.
        asn: u32,
    },
    /// An ASN listed as "never via route servers" in the path.
    NeverViaRouteServersAsn {
        /// The ASN found.
        asn: u32,
    },
    /// The prefix is a bogon: the default route, inside the peering LAN or inside a bogon
    /// prefix.
    BogonPrefix {
        /// The refused prefix.
        prefix: Prefix,
        /// The bogon prefix it lies in (the prefix itself for a default route).
        covering: Prefix,
        /// Which rule made it a bogon.
        source: BogonSource,
    },
    /// The prefix is longer than the policy allows for its family.
    PrefixTooLong {
        /// The prefix's family.
        family: Family,
        /// Its length.
        length: u8,
        /// The longest length accepted.
        max: u8,
    },
    /// The prefix is shorter than the policy allows for its family.
    PrefixTooShort {
        /// The prefix's family.
        family: Family,
        /// Its length.
        length: u8,
        /// The shortest length accepted.
        min: u8,
    },
    /// A BLACKHOLE route (RFC 7999) the member may not send: it has not opted in
    /// (`members[N].blackhole`), or it has no IRR prefix data saying what its own space is.
    BlackholeNotAllowed {
        /// The member that sent it.
        member: Arc<str>,
        /// Which condition failed.
        refusal: BlackholeRefusal,
    },
    /// The route carries OTC (Only to Customer): its sender, an RS-client, learnt it from a
    /// provider, a peer or a route server, so it is a route leak (RFC 9234 section 5).
    OtcLeak {
        /// The ASN in the OTC attribute (`None`: not four octets).
        otc: Option<u32>,
        /// The member that sent it.
        member: Arc<str>,
    },
    /// The prefix is not covered by the member's IRR prefix list (`irr.prefixes_file` or
    /// `irr.prefixes`).
    NotInIrrPrefixes {
        /// The refused prefix.
        prefix: Prefix,
        /// The member that sent it.
        member: Arc<str>,
    },
    /// The origin ASN is not in the member's IRR origin list (`irr.asns_file` or
    /// `irr.origins`).
    OriginNotInIrr {
        /// The origin ASN, `None` when the path ends in an AS_SET.
        origin: Option<u32>,
        /// The member that sent the route.
        member: Arc<str>,
    },
    /// More communities (standard, extended and large together) than the policy allows.
    TooManyCommunities {
        /// Communities on the route.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// RPKI origin validation (RFC 6811): VRPs cover the prefix and none authorises the origin
    /// with this length.
    RpkiInvalid {
        /// The refused prefix.
        prefix: Prefix,
        /// The route's origin ASN (`None`: the path ends in an AS_SET).
        origin: Option<u32>,
        /// One of the VRPs covering the prefix.
        covering: crate::rpki::Vrp,
    },
    /// ASPA verification (draft-ietf-sidrops-aspa-verification): `customer`'s ASPA does not
    /// list `next` as its provider, so the path is a leak or forged.
    AspaInvalid {
        /// The AS whose ASPA refuses the hop.
        customer: u32,
        /// The AS the route went to next.
        next: u32,
    },
}

/// Why a member may not send a BLACKHOLE route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlackholeRefusal {
    /// The member has not opted in (`blackhole: true` in its fabric entry).
    NotOptedIn,
    /// The member opted in but has no IRR prefix data, so its own space is unknown.
    NoIrrPrefixes,
}

/// Why an ASN may not appear in an AS_PATH learnt from a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BogonAsnKind {
    /// AS 0 (RFC 7607).
    Zero,
    /// AS_TRANS 23456 (RFC 6793 section 9): only a 2-octet speaker's stand-in.
    AsTrans,
    /// Documentation ASNs 64496-64511 and 65536-65551 (RFC 5398).
    Documentation,
    /// Private use 64512-65534 and 4200000000-4294967294 (RFC 6996).
    Private,
    /// The last 2-octet and 4-octet ASNs, 65535 and 4294967295 (RFC 7300).
    Last,
    /// 65552-131071, reserved by IANA.
    IanaReserved,
}

impl fmt::Display for BogonAsnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Zero => "reserved (RFC 7607)",
            Self::AsTrans => "AS_TRANS (RFC 6793), never a real network",
            Self::Documentation => "reserved for documentation (RFC 5398)",
            Self::Private => "a private ASN (RFC 6996)",
            Self::Last => "reserved (RFC 7300)",
            Self::IanaReserved => "reserved by IANA",
        })
    }
}

/// Which rule made a prefix a bogon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BogonSource {
    /// `0.0.0.0/0` or `::/0`.
    DefaultRoute,
    /// Inside the exchange's own peering LAN.
    PeeringLan,
    /// Inside an entry of `policy.bogon_prefixes`.
    List,
}

impl Reason {
    /// Every label [`Reason::label`] can return, for registering metrics up front.
    pub const LABELS: [&'static str; 17] = [
        "next_hop_not_peer",
        "first_as_not_peer",
        "as_path_empty",
        "as_path_too_long",
        "bogon_asn",
        "transit_free_asn",
        "never_via_route_servers_asn",
        "bogon_prefix",
        "prefix_too_long",
        "prefix_too_short",
        "blackhole_not_allowed",
        "otc_leak",
        "not_in_irr_prefixes",
        "origin_not_in_irr",
        "rpki_invalid",
        "aspa_invalid",
        "too_many_communities",
    ];

    /// The Euro-IX reject reason `x` of the large community `rs:1101:x`.
    pub fn euro_ix_code(&self) -> u32 {
        match self {
            Self::PrefixTooLong { .. } => 1,
            Self::PrefixTooShort { .. } => 2,
            Self::BogonPrefix { .. } => 3,
            Self::BogonAsn { .. } => 4,
            Self::AsPathTooLong { .. } => 5,
            Self::AsPathEmpty => 6,
            Self::FirstAsNotPeer { .. } => 7,
            Self::NextHopNotPeer { .. } => 8,
            // IXP Manager treats PeeringDB's "never via route servers" networks as
            // transit-free ones.
            Self::TransitFreeAsn { .. } | Self::NeverViaRouteServersAsn { .. } => 14,
            // IXP Manager: 9 "IRRDB prefix filtered", 10 "IRRDB origin filtered".
            Self::NotInIrrPrefixes { .. } => 9,
            Self::OriginNotInIrr { .. } => 10,
            Self::TooManyCommunities { .. } => 15,
            // IXP Manager and arouteserver have no BLACKHOLE code: the next free one.
            Self::BlackholeNotAllowed { .. } => 17,
            // No IXP Manager or arouteserver code either.
            Self::OtcLeak { .. } => 18,
            Self::RpkiInvalid { .. } => 13,
            // IXP Manager and arouteserver have no ASPA code yet: the next free one.
            Self::AspaInvalid { .. } => 16,
        }
    }

    /// Snake-case name for metric labels, one per variant.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NextHopNotPeer { .. } => "next_hop_not_peer",
            Self::FirstAsNotPeer { .. } => "first_as_not_peer",
            Self::AsPathEmpty => "as_path_empty",
            Self::AsPathTooLong { .. } => "as_path_too_long",
            Self::BogonAsn { .. } => "bogon_asn",
            Self::TransitFreeAsn { .. } => "transit_free_asn",
            Self::NeverViaRouteServersAsn { .. } => "never_via_route_servers_asn",
            Self::BogonPrefix { .. } => "bogon_prefix",
            Self::PrefixTooLong { .. } => "prefix_too_long",
            Self::PrefixTooShort { .. } => "prefix_too_short",
            Self::BlackholeNotAllowed { .. } => "blackhole_not_allowed",
            Self::OtcLeak { .. } => "otc_leak",
            Self::NotInIrrPrefixes { .. } => "not_in_irr_prefixes",
            Self::OriginNotInIrr { .. } => "origin_not_in_irr",
            Self::TooManyCommunities { .. } => "too_many_communities",
            Self::RpkiInvalid { .. } => "rpki_invalid",
            Self::AspaInvalid { .. } => "aspa_invalid",
        }
    }

    /// The Euro-IX large community `route_server_asn:1101:code` that tags a route refused
    /// for this reason in the looking-glass view.
    pub fn large_community(&self, route_server_asn: Asn) -> LargeCommunity {
        LargeCommunity(route_server_asn.0, EURO_IX_FILTERED, self.euro_ix_code())
    }
}

/// `IPv4` or `IPv6`, as written in sentences.
fn family_word(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NextHopNotPeer {
                next_hop,
                member,
                asn,
                own_address,
                policy,
            } => match (policy, own_address) {
                (NextHopPolicy::OwnAddress, Some(own)) => {
                    write!(f, "next hop {next_hop} is not {member}'s LAN address {own}")
                }
                (NextHopPolicy::OwnAddress, None) => write!(
                    f,
                    "next hop {next_hop} is not a LAN address of {member}, which has no {} \
                     LAN address",
                    if next_hop.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
                (NextHopPolicy::SameAsn, _) => write!(
                    f,
                    "next hop {next_hop} is not a LAN address of {member} or of another \
                     member with {asn}"
                ),
            },
            Self::FirstAsNotPeer {
                first: Some(first),
                member,
                asn,
            } => write!(
                f,
                "the AS path starts with AS{first}, not with {member}'s {asn}"
            ),
            Self::FirstAsNotPeer {
                first: None,
                member,
                asn,
            } => write!(
                f,
                "the AS path does not start with an AS_SEQUENCE; it must start with {member}'s \
                 {asn}"
            ),
            Self::AsPathEmpty => f.write_str(
                "the AS path is empty; a member's route must carry at least its own ASN",
            ),
            Self::AsPathTooLong { length, max } => write!(
                f,
                "the AS path is {length} ASNs long, more than the limit of {max}"
            ),
            Self::BogonAsn { asn, kind } => write!(f, "AS{asn} in the AS path is {kind}"),
            Self::TransitFreeAsn { asn } => write!(
                f,
                "transit-free AS{asn} is in the AS path behind the member: a route through \
                 a transit network must not be announced to the exchange"
            ),
            Self::NeverViaRouteServersAsn { asn } => write!(
                f,
                "AS{asn} is in the AS path and asks that its routes never pass through \
                 route servers"
            ),
            Self::BogonPrefix {
                prefix,
                covering,
                source,
            } => match source {
                BogonSource::DefaultRoute => {
                    write!(f, "{prefix} is a default route, never accepted")
                }
                BogonSource::PeeringLan => {
                    write!(f, "{prefix} is inside the peering LAN {covering}")
                }
                BogonSource::List => {
                    write!(f, "{prefix} is a bogon: it lies in {covering}")
                }
            },
            Self::PrefixTooLong {
                family,
                length,
                max,
            } => write!(
                f,
                "/{length} is longer than the longest {} prefix accepted, /{max}",
                family_word(*family)
            ),
            Self::PrefixTooShort {
                family,
                length,
                min,
            } => write!(
                f,
                "/{length} is shorter than the shortest {} prefix accepted, /{min}",
                family_word(*family)
            ),
            Self::BlackholeNotAllowed {
                member,
                refusal: BlackholeRefusal::NotOptedIn,
            } => write!(
                f,
                "BLACKHOLE (65535:666) route, but {member} has not opted in to blackholing \
                 (blackhole: true in its fabric entry)"
            ),
            Self::BlackholeNotAllowed {
                member,
                refusal: BlackholeRefusal::NoIrrPrefixes,
            } => write!(
                f,
                "BLACKHOLE (65535:666) route, but {member} has no IRR prefix data, so its own \
                 space is unknown"
            ),
            Self::OtcLeak {
                otc: Some(otc),
                member,
            } => write!(
                f,
                "route leak: the route carries OTC (Only to Customer, RFC 9234) set by AS{otc}, so \
                 {member} learnt it from a provider, peer or route server and may not announce it \
                 to the route server"
            ),
            Self::OtcLeak { otc: None, member } => write!(
                f,
                "route leak: the route carries OTC (Only to Customer, RFC 9234), so {member} \
                 learnt it from a provider, peer or route server and may not announce it to the \
                 route server"
            ),
            Self::NotInIrrPrefixes { prefix, member } => write!(
                f,
                "{prefix} is not in {member}'s IRR prefixes (AS-SET or prefix list)"
            ),
            Self::OriginNotInIrr {
                origin: Some(origin),
                member,
            } => write!(
                f,
                "origin AS{origin} is not in {member}'s IRR origin ASNs (AS-SET or origin list)"
            ),
            Self::OriginNotInIrr {
                origin: None,
                member,
            } => write!(
                f,
                "the AS path ends in an AS_SET, so its origin cannot be in {member}'s IRR origin \
                 ASNs"
            ),
            Self::TooManyCommunities { count, max } => write!(
                f,
                "{count} communities is more than the limit of {max} (standard, extended and \
                 large counted together)"
            ),
            Self::RpkiInvalid {
                prefix,
                origin,
                covering,
            } => match origin {
                Some(origin) => write!(
                    f,
                    "RPKI invalid: origin AS{origin} of {prefix} is not authorised by the VRPs \
                     covering it ({covering})"
                ),
                None => write!(
                    f,
                    "RPKI invalid: {prefix} ends in an AS_SET, which no VRP can authorise \
                     ({covering} covers it)"
                ),
            },
            Self::AspaInvalid { customer, next } => write!(
                f,
                "ASPA invalid: AS{customer}'s ASPA does not list AS{next} as a provider, so \
                 the path is a route leak"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_reason() -> Vec<Reason> {
        let member: Arc<str> = Arc::from("alpha");
        vec![
            Reason::NextHopNotPeer {
                next_hop: "198.18.0.99".parse().expect("valid"),
                member: member.clone(),
                asn: Asn(64501),
                own_address: Some("198.18.0.11".parse().expect("valid")),
                policy: NextHopPolicy::OwnAddress,
            },
            Reason::FirstAsNotPeer {
                first: Some(64599),
                member,
                asn: Asn(64501),
            },
            Reason::AsPathEmpty,
            Reason::AsPathTooLong {
                length: 40,
                max: 32,
            },
            Reason::BogonAsn {
                asn: 23456,
                kind: BogonAsnKind::AsTrans,
            },
            Reason::TransitFreeAsn { asn: 174 },
            Reason::NeverViaRouteServersAsn { asn: 64999 },
            Reason::BogonPrefix {
                prefix: "10.1.0.0/16".parse().expect("valid"),
                covering: "10.0.0.0/8".parse().expect("valid"),
                source: BogonSource::List,
            },
            Reason::PrefixTooLong {
                family: Family::Ipv4,
                length: 25,
                max: 24,
            },
            Reason::PrefixTooShort {
                family: Family::Ipv6,
                length: 8,
                min: 12,
            },
            Reason::BlackholeNotAllowed {
                member: Arc::from("alpha"),
                refusal: BlackholeRefusal::NotOptedIn,
            },
            Reason::OtcLeak {
                otc: Some(64999),
                member: Arc::from("alpha"),
            },
            Reason::NotInIrrPrefixes {
                prefix: "198.18.99.0/24".parse().expect("valid"),
                member: Arc::from("alpha"),
            },
            Reason::OriginNotInIrr {
                origin: Some(64999),
                member: Arc::from("alpha"),
            },
            Reason::RpkiInvalid {
                prefix: "198.18.65.0/24".parse().expect("valid"),
                origin: Some(64501),
                covering: crate::rpki::Vrp {
                    prefix: "198.18.64.0/18".parse().expect("valid"),
                    max_length: 24,
                    asn: 64510,
                },
            },
            Reason::AspaInvalid {
                customer: 64510,
                next: 64501,
            },
            Reason::TooManyCommunities {
                count: 101,
                max: 100,
            },
        ]
    }

    #[test]
    fn euro_ix_codes_follow_the_ixp_manager_scheme() {
        let codes: Vec<(&str, u32)> = every_reason()
            .iter()
            .map(|reason| (reason.label(), reason.euro_ix_code()))
            .collect();
        assert_eq!(
            codes,
            [
                ("next_hop_not_peer", 8),
                ("first_as_not_peer", 7),
                ("as_path_empty", 6),
                ("as_path_too_long", 5),
                ("bogon_asn", 4),
                ("transit_free_asn", 14),
                ("never_via_route_servers_asn", 14),
                ("bogon_prefix", 3),
                ("prefix_too_long", 1),
                ("prefix_too_short", 2),
                ("blackhole_not_allowed", 17),
                ("otc_leak", 18),
                ("not_in_irr_prefixes", 9),
                ("origin_not_in_irr", 10),
                ("rpki_invalid", 13),
                ("aspa_invalid", 16),
                ("too_many_communities", 15),
            ]
        );
    }

    #[test]
    fn labels_are_listed_once_each_in_labels() {
        let labels: Vec<&str> = every_reason().iter().map(Reason::label).collect();
        assert_eq!(labels, Reason::LABELS);
        for label in Reason::LABELS {
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{label} is not snake case"
            );
        }
    }

    #[test]
    fn large_community_carries_the_route_server_asn_and_the_code() {
        let reason = Reason::TransitFreeAsn { asn: 174 };
        assert_eq!(
            reason.large_community(Asn(64500)),
            LargeCommunity(64500, 1101, 14)
        );
    }

    #[test]
    fn reasons_read_as_plain_words() {
        let texts: Vec<String> = every_reason().iter().map(ToString::to_string).collect();
        assert_eq!(
            texts[0],
            "next hop 198.18.0.99 is not alpha's LAN address 198.18.0.11"
        );
        assert_eq!(
            texts[1],
            "the AS path starts with AS64599, not with alpha's AS64501"
        );
        assert_eq!(
            texts[4],
            "AS23456 in the AS path is AS_TRANS (RFC 6793), never a real network"
        );
        assert_eq!(texts[7], "10.1.0.0/16 is a bogon: it lies in 10.0.0.0/8");
        assert_eq!(
            texts[8],
            "/25 is longer than the longest IPv4 prefix accepted, /24"
        );
        assert_eq!(
            texts[9],
            "/8 is shorter than the shortest IPv6 prefix accepted, /12"
        );
    }

    #[test]
    fn next_hop_wording_follows_the_mode_and_the_member_addresses() {
        let base = |own_address, policy| Reason::NextHopNotPeer {
            next_hop: "fd00:198:18::99".parse().expect("valid"),
            member: Arc::from("bravo"),
            asn: Asn(64502),
            own_address,
            policy,
        };
        assert_eq!(
            base(None, NextHopPolicy::OwnAddress).to_string(),
            "next hop fd00:198:18::99 is not a LAN address of bravo, which has no IPv6 LAN \
             address"
        );
        assert_eq!(
            base(None, NextHopPolicy::SameAsn).to_string(),
            "next hop fd00:198:18::99 is not a LAN address of bravo or of another member with \
             AS64502"
        );
    }

    #[test]
    fn bogon_prefix_wording_names_the_rule() {
        let lan = Reason::BogonPrefix {
            prefix: "198.18.0.0/25".parse().expect("valid"),
            covering: "198.18.0.0/24".parse().expect("valid"),
            source: BogonSource::PeeringLan,
        };
        assert_eq!(
            lan.to_string(),
            "198.18.0.0/25 is inside the peering LAN 198.18.0.0/24"
        );
        let default = Reason::BogonPrefix {
            prefix: "::/0".parse().expect("valid"),
            covering: "::/0".parse().expect("valid"),
            source: BogonSource::DefaultRoute,
        };
        assert_eq!(
            default.to_string(),
            "::/0 is a default route, never accepted"
        );
    }
}
