//! The import filters, one pure function each: a route (prefix and attributes), the member it
//! came from and the policy in, `Ok(())` or the [`Reason`] out. Owns the rule of each filter;
//! must not decide their order (`policy::import` does) nor keep any state.

use vixp_bgp::{Attributes, Family, Prefix, SegmentKind};
use vixp_fabric::{Lan, NextHopPolicy, Policy};

use super::Neighbor;
use super::reason::{BogonAsnKind, BogonSource, Reason};

/// NEXT_HOP must be the member's own LAN address or, with `same_asn`, any LAN address of a
/// member with its ASN: the route server passes the next hop on unchanged (RFC 7947 section
/// 2.2.1), so a foreign one would draw other members' traffic to a third party. The IPv6
/// link-local next hop (RFC 2545 section 3) names the sender's interface and is not checked.
pub fn next_hop(
    attributes: &Attributes,
    neighbor: &Neighbor,
    policy: &Policy,
) -> Result<(), Reason> {
    let next_hop = attributes.next_hop;
    let accepted = neighbor.owns(next_hop)
        || (policy.next_hop == NextHopPolicy::SameAsn
            && neighbor.same_asn_addresses.contains(&next_hop));
    if accepted {
        return Ok(());
    }
    Err(Reason::NextHopNotPeer {
        next_hop,
        member: neighbor.name.clone(),
        asn: neighbor.asn,
        own_address: neighbor.address_like(next_hop),
        policy: policy.next_hop,
    })
}

/// The AS_PATH must start with an AS_SEQUENCE whose leftmost ASN is the member's (RFC 4271
/// section 6.3; a route server does not add its own, RFC 7947 section 2.2.2, so its clients
/// cannot run this check themselves). An empty path passes here: [`as_path_length`] reports
/// it with its own reason.
pub fn first_asn(attributes: &Attributes, neighbor: &Neighbor) -> Result<(), Reason> {
    let Some(segment) = attributes
        .as_path
        .segments
        .iter()
        .find(|segment| !segment.asns.is_empty())
    else {
        return Ok(());
    };
    let first = match segment.kind {
        SegmentKind::Sequence => segment.asns.first().copied(),
        SegmentKind::Set | SegmentKind::ConfedSequence | SegmentKind::ConfedSet => None,
    };
    if first == Some(neighbor.asn.0) {
        return Ok(());
    }
    Err(Reason::FirstAsNotPeer {
        first,
        member: neighbor.name.clone(),
        asn: neighbor.asn,
    })
}

/// The path length counted as for best-path selection (RFC 4271 section 9.1.2.2 a: an
/// AS_SET counts as one), except that confederation segments, which never leave a
/// confederation (RFC 5065) and so have no business in a member's route, count like their
/// non-confederation kinds so they cannot hide length.
pub fn path_length(attributes: &Attributes) -> usize {
    attributes
        .as_path
        .segments
        .iter()
        .map(|segment| match segment.kind {
            SegmentKind::Sequence | SegmentKind::ConfedSequence => segment.asns.len(),
            SegmentKind::Set | SegmentKind::ConfedSet => usize::from(!segment.asns.is_empty()),
        })
        .sum()
}

/// The AS_PATH must hold at least one ASN (Euro-IX "AS path too short") and at most
/// `policy.max_as_path_length`.
pub fn as_path_length(attributes: &Attributes, policy: &Policy) -> Result<(), Reason> {
    let length = path_length(attributes);
    if length == 0 {
        return Err(Reason::AsPathEmpty);
    }
    let max = policy.max_as_path_length;
    if u32::try_from(length).map_or(true, |length| length > max) {
        return Err(Reason::AsPathTooLong { length, max });
    }
    Ok(())
}

/// Why `asn` may never appear in a path learnt at an exchange, or `None` for an ASN any
/// network may hold.
pub fn classify_asn(asn: u32) -> Option<BogonAsnKind> {
    match asn {
        0 => Some(BogonAsnKind::Zero),
        23456 => Some(BogonAsnKind::AsTrans),
        64496..=64511 | 65536..=65551 => Some(BogonAsnKind::Documentation),
        64512..=65534 | 4_200_000_000..=4_294_967_294 => Some(BogonAsnKind::Private),
        65535 | u32::MAX => Some(BogonAsnKind::Last),
        65552..=131_071 => Some(BogonAsnKind::IanaReserved),
        _ => None,
    }
}

/// No reserved ASN (RFC 7607, RFC 6793 AS_TRANS, RFC 7300, IANA) anywhere in the path, and,
/// when `policy.reject_private_asns` is set, no private (RFC 6996) or documentation
/// (RFC 5398) one. Labs and demos use both kinds for their members (the demo fabric's
/// members are AS64501-64503, documentation ASNs), so one switch lets both through.
pub fn bogon_asns(attributes: &Attributes, policy: &Policy) -> Result<(), Reason> {
    for asn in attributes.as_path.asns() {
        match classify_asn(asn) {
            None => {}
            Some(BogonAsnKind::Private | BogonAsnKind::Documentation)
                if !policy.reject_private_asns => {}
            Some(kind) => return Err(Reason::BogonAsn { asn, kind }),
        }
    }
    Ok(())
}

/// No transit-free ASN behind the member: anywhere in the path except as the member's own
/// ASN (a transit-free member may prepend itself).
pub fn transit_free_asns(
    attributes: &Attributes,
    neighbor: &Neighbor,
    policy: &Policy,
) -> Result<(), Reason> {
    let listed = |asn: u32| policy.transit_free_asns.iter().any(|free| free.0 == asn);
    match attributes
        .as_path
        .asns()
        .find(|&asn| asn != neighbor.asn.0 && listed(asn))
    {
        Some(asn) => Err(Reason::TransitFreeAsn { asn }),
        None => Ok(()),
    }
}

/// No ASN of `policy.never_via_route_servers_asns` anywhere in the path, the member's own
/// included.
pub fn never_via_route_servers(attributes: &Attributes, policy: &Policy) -> Result<(), Reason> {
    let listed = |asn: u32| {
        policy
            .never_via_route_servers_asns
            .iter()
            .any(|never| never.0 == asn)
    };
    match attributes.as_path.asns().find(|&asn| listed(asn)) {
        Some(asn) => Err(Reason::NeverViaRouteServersAsn { asn }),
        None => Ok(()),
    }
}

/// No default route, nothing inside the peering LAN (a member must not attract the LAN's
/// own traffic), and nothing inside a bogon prefix (RFC 6890 registries by default) unless
/// the prefix lies in `policy.allow_prefixes`.
pub fn bogon_prefix(prefix: &Prefix, policy: &Policy, lan: &Lan) -> Result<(), Reason> {
    let bogon = |covering: Prefix, source| {
        Err(Reason::BogonPrefix {
            prefix: *prefix,
            covering,
            source,
        })
    };
    if prefix.prefix_len() == 0 {
        return bogon(*prefix, BogonSource::DefaultRoute);
    }
    let lan_prefix = lan.prefix_for(prefix);
    if lan_prefix.contains(prefix) {
        return bogon(lan_prefix, BogonSource::PeeringLan);
    }
    if policy.is_allowed(prefix) {
        return Ok(());
    }
    match policy
        .bogon_prefixes
        .prefixes()
        .iter()
        .find(|bogon| bogon.contains(prefix))
    {
        Some(covering) => bogon(*covering, BogonSource::List),
        None => Ok(()),
    }
}

/// The prefix length must lie in `policy.prefix_length` for its family.
pub fn prefix_length(prefix: &Prefix, policy: &Policy) -> Result<(), Reason> {
    let range = policy.prefix_length.for_prefix(prefix);
    let family = Family::of(prefix);
    let length = prefix.prefix_len();
    if length > range.max {
        return Err(Reason::PrefixTooLong {
            family,
            length,
            max: range.max,
        });
    }
    if length < range.min {
        return Err(Reason::PrefixTooShort {
            family,
            length,
            min: range.min,
        });
    }
    Ok(())
}

/// At most `policy.max_communities` standard (RFC 1997), extended (RFC 4360) and large
/// (RFC 8092) communities together; 0 is no limit.
pub fn communities(attributes: &Attributes, policy: &Policy) -> Result<(), Reason> {
    let max = policy.max_communities;
    if max == 0 {
        return Ok(());
    }
    let count = attributes.communities.len()
        + attributes.extended_communities.len()
        + attributes.large_communities.len();
    if u32::try_from(count).map_or(true, |count| count > max) {
        return Err(Reason::TooManyCommunities { count, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use vixp_bgp::{AsPath, LargeCommunity, Origin, Segment};
    use vixp_fabric::Asn;

    use super::*;
    use crate::policy::tests::{alpha, lab_lan, lab_policy, route};

    fn address(text: &str) -> IpAddr {
        text.parse().expect("test address is valid")
    }

    fn prefix(text: &str) -> Prefix {
        text.parse().expect("test prefix is valid")
    }

    fn with_segments(segments: Vec<Segment>) -> Attributes {
        Attributes::new(Origin::Igp, AsPath { segments }, address("198.18.0.11"))
    }

    #[test]
    fn next_hop_own_address_of_either_family_is_accepted() {
        let policy = Policy::default();
        let alpha = alpha();
        assert_eq!(
            next_hop(&route(&[64501], "198.18.0.11"), &alpha, &policy),
            Ok(())
        );
        assert_eq!(
            next_hop(&route(&[64501], "fd00:198:18::11"), &alpha, &policy),
            Ok(())
        );
    }

    #[test]
    fn next_hop_of_another_member_is_refused() {
        let reason = next_hop(
            &route(&[64501], "198.18.0.99"),
            &alpha(),
            &Policy::default(),
        )
        .expect_err("foreign next hop");
        assert_eq!(
            reason.to_string(),
            "next hop 198.18.0.99 is not alpha's LAN address 198.18.0.11"
        );
        assert_eq!(reason.euro_ix_code(), 8);
    }

    #[test]
    fn next_hop_same_asn_accepts_the_asn_addresses_only_in_that_mode() {
        let mut alpha = alpha();
        alpha.same_asn_addresses.push(address("198.18.0.21"));
        let attributes = route(&[64501], "198.18.0.21");
        assert!(next_hop(&attributes, &alpha, &Policy::default()).is_err());
        let same_asn = Policy {
            next_hop: NextHopPolicy::SameAsn,
            ..Policy::default()
        };
        assert_eq!(next_hop(&attributes, &alpha, &same_asn), Ok(()));
        assert!(next_hop(&route(&[64501], "198.18.0.22"), &alpha, &same_asn).is_err());
    }

    #[test]
    fn first_asn_must_be_the_member() {
        let alpha = alpha();
        assert_eq!(
            first_asn(&route(&[64501, 64999], "198.18.0.11"), &alpha),
            Ok(())
        );
        assert_eq!(
            first_asn(&route(&[64599, 64501], "198.18.0.11"), &alpha),
            Err(Reason::FirstAsNotPeer {
                first: Some(64599),
                member: alpha.name.clone(),
                asn: Asn(64501),
            })
        );
    }

    #[test]
    fn first_asn_inside_a_leading_set_is_not_enough() {
        let attributes = with_segments(vec![
            Segment {
                kind: SegmentKind::Set,
                asns: vec![64501],
            },
            Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64501],
            },
        ]);
        assert!(matches!(
            first_asn(&attributes, &alpha()),
            Err(Reason::FirstAsNotPeer { first: None, .. })
        ));
    }

    #[test]
    fn first_asn_leaves_an_empty_path_to_the_length_filter() {
        let empty = route(&[], "198.18.0.11");
        assert_eq!(first_asn(&empty, &alpha()), Ok(()));
        assert_eq!(
            as_path_length(&empty, &Policy::default()),
            Err(Reason::AsPathEmpty)
        );
    }

    #[test]
    fn as_path_length_counts_prepends_and_a_set_as_one() {
        let policy = Policy {
            max_as_path_length: 3,
            ..Policy::default()
        };
        assert_eq!(
            as_path_length(&route(&[64501, 64501, 64501], "198.18.0.11"), &policy),
            Ok(())
        );
        assert_eq!(
            as_path_length(
                &route(&[64501, 64501, 64501, 64501], "198.18.0.11"),
                &policy
            ),
            Err(Reason::AsPathTooLong { length: 4, max: 3 })
        );
        let with_set = with_segments(vec![
            Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64501, 64502],
            },
            Segment {
                kind: SegmentKind::Set,
                asns: vec![64510, 64511, 64512, 64513],
            },
        ]);
        assert_eq!(path_length(&with_set), 3);
        assert_eq!(as_path_length(&with_set, &policy), Ok(()));
    }

    #[test]
    fn confederation_segments_cannot_hide_length() {
        let attributes = with_segments(vec![
            Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64501],
            },
            Segment {
                kind: SegmentKind::ConfedSequence,
                asns: vec![64600; 40],
            },
        ]);
        assert!(matches!(
            as_path_length(&attributes, &Policy::default()),
            Err(Reason::AsPathTooLong { length: 41, .. })
        ));
    }

    #[test]
    fn asn_classes_follow_the_registries() {
        assert_eq!(classify_asn(0), Some(BogonAsnKind::Zero));
        assert_eq!(classify_asn(23456), Some(BogonAsnKind::AsTrans));
        assert_eq!(classify_asn(64496), Some(BogonAsnKind::Documentation));
        assert_eq!(classify_asn(65551), Some(BogonAsnKind::Documentation));
        assert_eq!(classify_asn(64512), Some(BogonAsnKind::Private));
        assert_eq!(classify_asn(65534), Some(BogonAsnKind::Private));
        assert_eq!(classify_asn(4_200_000_000), Some(BogonAsnKind::Private));
        assert_eq!(classify_asn(4_294_967_294), Some(BogonAsnKind::Private));
        assert_eq!(classify_asn(65535), Some(BogonAsnKind::Last));
        assert_eq!(classify_asn(u32::MAX), Some(BogonAsnKind::Last));
        assert_eq!(classify_asn(65552), Some(BogonAsnKind::IanaReserved));
        assert_eq!(classify_asn(131_071), Some(BogonAsnKind::IanaReserved));
        for public in [1, 174, 23455, 23457, 64495, 131_072, 4_199_999_999] {
            assert_eq!(classify_asn(public), None, "AS{public} is public");
        }
    }

    #[test]
    fn private_asns_are_refused_only_when_the_policy_says_so() {
        let attributes = route(&[3333, 64512], "198.18.0.11");
        assert_eq!(
            bogon_asns(&attributes, &Policy::default()),
            Err(Reason::BogonAsn {
                asn: 64512,
                kind: BogonAsnKind::Private
            })
        );
        assert_eq!(bogon_asns(&attributes, &lab_policy()), Ok(()));
        assert_eq!(
            bogon_asns(&route(&[3333, 1299], "198.18.0.11"), &Policy::default()),
            Ok(())
        );
    }

    #[test]
    fn documentation_asns_follow_the_private_switch() {
        let attributes = route(&[64501, 65540], "198.18.0.11");
        assert_eq!(
            bogon_asns(&attributes, &Policy::default()),
            Err(Reason::BogonAsn {
                asn: 64501,
                kind: BogonAsnKind::Documentation
            })
        );
        assert_eq!(bogon_asns(&attributes, &lab_policy()), Ok(()));
    }

    #[test]
    fn as_trans_and_reserved_asns_are_refused_even_in_a_lab() {
        for (asn, kind) in [
            (23456, BogonAsnKind::AsTrans),
            (0, BogonAsnKind::Zero),
            (70000, BogonAsnKind::IanaReserved),
        ] {
            assert_eq!(
                bogon_asns(&route(&[64501, asn, 64502], "198.18.0.11"), &lab_policy()),
                Err(Reason::BogonAsn { asn, kind }),
                "AS{asn}"
            );
        }
    }

    #[test]
    fn transit_free_asn_behind_the_member_is_refused() {
        let policy = Policy::default();
        assert_eq!(
            transit_free_asns(
                &route(&[64501, 3356, 64999], "198.18.0.11"),
                &alpha(),
                &policy
            ),
            Err(Reason::TransitFreeAsn { asn: 3356 })
        );
        assert_eq!(
            transit_free_asns(
                &route(&[64501, 3333, 64999], "198.18.0.11"),
                &alpha(),
                &policy
            ),
            Ok(())
        );
    }

    #[test]
    fn a_transit_free_member_may_prepend_itself() {
        let mut member = alpha();
        member.asn = Asn(174);
        let policy = Policy::default();
        assert_eq!(
            transit_free_asns(&route(&[174, 174, 3333], "198.18.0.11"), &member, &policy),
            Ok(())
        );
        assert_eq!(
            transit_free_asns(&route(&[174, 3333, 1299], "198.18.0.11"), &member, &policy),
            Err(Reason::TransitFreeAsn { asn: 1299 })
        );
        let none = Policy {
            transit_free_asns: Vec::new(),
            ..Policy::default()
        };
        assert_eq!(
            transit_free_asns(&route(&[64501, 3356], "198.18.0.11"), &alpha(), &none),
            Ok(())
        );
    }

    #[test]
    fn never_via_route_servers_asns_are_refused_anywhere() {
        let policy = Policy {
            never_via_route_servers_asns: vec![Asn(64501), Asn(4_200_000_009)],
            ..lab_policy()
        };
        assert_eq!(
            never_via_route_servers(&route(&[64501], "198.18.0.11"), &policy),
            Err(Reason::NeverViaRouteServersAsn { asn: 64501 })
        );
        assert_eq!(
            never_via_route_servers(&route(&[64502, 4_200_000_009], "198.18.0.11"), &policy),
            Err(Reason::NeverViaRouteServersAsn { asn: 4_200_000_009 })
        );
        assert_eq!(
            never_via_route_servers(&route(&[64502, 64503], "198.18.0.11"), &policy),
            Ok(())
        );
    }

    #[test]
    fn bogon_prefixes_are_matched_as_covered_by() {
        let policy = Policy::default();
        let lan = lab_lan();
        assert_eq!(
            bogon_prefix(&prefix("10.20.0.0/16"), &policy, &lan),
            Err(Reason::BogonPrefix {
                prefix: prefix("10.20.0.0/16"),
                covering: prefix("10.0.0.0/8"),
                source: BogonSource::List,
            })
        );
        assert!(bogon_prefix(&prefix("2001:db8:1::/48"), &policy, &lan).is_err());
        assert!(bogon_prefix(&prefix("2002:c000::/24"), &policy, &lan).is_err());
        assert_eq!(bogon_prefix(&prefix("8.8.8.0/24"), &policy, &lan), Ok(()));
        assert_eq!(
            bogon_prefix(&prefix("2a00:1450::/32"), &policy, &lan),
            Ok(())
        );
        // 8.0.0.0/7 covers no bogon start and lies in none: not a bogon (the length filter
        // judges it).
        assert_eq!(bogon_prefix(&prefix("8.0.0.0/7"), &policy, &lan), Ok(()));
    }

    #[test]
    fn default_routes_and_the_lan_are_bogons_even_when_allowed() {
        let lan = lab_lan();
        let policy = lab_policy();
        for default in ["0.0.0.0/0", "::/0"] {
            assert!(matches!(
                bogon_prefix(&prefix(default), &policy, &lan),
                Err(Reason::BogonPrefix {
                    source: BogonSource::DefaultRoute,
                    ..
                })
            ));
        }
        assert_eq!(
            bogon_prefix(&prefix("198.18.0.128/25"), &policy, &lan),
            Err(Reason::BogonPrefix {
                prefix: prefix("198.18.0.128/25"),
                covering: prefix("198.18.0.0/24"),
                source: BogonSource::PeeringLan,
            })
        );
        assert!(bogon_prefix(&prefix("fd00:198:18::/64"), &policy, &lan).is_err());
    }

    #[test]
    fn allow_prefixes_exempt_lab_space_from_the_bogon_list() {
        let lan = lab_lan();
        let default = Policy::default();
        let lab = lab_policy();
        for lab_prefix in ["198.18.5.0/24", "fd00:5::/48"] {
            assert!(bogon_prefix(&prefix(lab_prefix), &default, &lan).is_err());
            assert_eq!(bogon_prefix(&prefix(lab_prefix), &lab, &lan), Ok(()));
        }
        assert!(bogon_prefix(&prefix("10.0.0.0/8"), &lab, &lan).is_err());
    }

    #[test]
    fn an_explicit_bogon_list_replaces_the_default() {
        let policy = Policy {
            bogon_prefixes: vixp_fabric::BogonPrefixes::List(vec![prefix("203.0.0.0/8")]),
            ..Policy::default()
        };
        let lan = lab_lan();
        assert!(bogon_prefix(&prefix("203.1.0.0/16"), &policy, &lan).is_err());
        assert_eq!(bogon_prefix(&prefix("10.0.0.0/8"), &policy, &lan), Ok(()));
        assert!(bogon_prefix(&prefix("198.18.0.0/24"), &policy, &lan).is_err());
    }

    #[test]
    fn prefix_length_bounds_are_inclusive_per_family() {
        let policy = Policy::default();
        for accepted in ["11.0.0.0/8", "11.1.1.0/24", "2a00::/12", "2a00:1:2::/48"] {
            assert_eq!(
                prefix_length(&prefix(accepted), &policy),
                Ok(()),
                "{accepted}"
            );
        }
        assert_eq!(
            prefix_length(&prefix("11.1.1.0/25"), &policy),
            Err(Reason::PrefixTooLong {
                family: Family::Ipv4,
                length: 25,
                max: 24
            })
        );
        assert_eq!(
            prefix_length(&prefix("10.0.0.0/7"), &policy),
            Err(Reason::PrefixTooShort {
                family: Family::Ipv4,
                length: 7,
                min: 8
            })
        );
        assert_eq!(
            prefix_length(&prefix("2a00:1:2::/49"), &policy),
            Err(Reason::PrefixTooLong {
                family: Family::Ipv6,
                length: 49,
                max: 48
            })
        );
        assert_eq!(
            prefix_length(&prefix("2a00::/11"), &policy),
            Err(Reason::PrefixTooShort {
                family: Family::Ipv6,
                length: 11,
                min: 12
            })
        );
    }

    #[test]
    fn communities_of_all_kinds_count_together() {
        let policy = Policy {
            max_communities: 3,
            ..Policy::default()
        };
        let mut attributes = route(&[64501], "198.18.0.11");
        attributes.communities = vec![1, 2];
        attributes.large_communities = vec![LargeCommunity(64501, 1, 1)];
        assert_eq!(communities(&attributes, &policy), Ok(()));
        attributes.extended_communities = vec![7];
        assert_eq!(
            communities(&attributes, &policy),
            Err(Reason::TooManyCommunities { count: 4, max: 3 })
        );
        let unlimited = Policy {
            max_communities: 0,
            ..Policy::default()
        };
        attributes.communities = vec![0; 5000];
        assert_eq!(communities(&attributes, &unlimited), Ok(()));
    }
}
