//! Well-known behaviour applied to every route on export, after the action communities:
//! a BLACKHOLE route (RFC 7999) gets NO_EXPORT (section 3.2) and, when the exchange configures
//! one, the blackhole next hop of its family. Pure functions over one group of an [`Export`]
//! (every prefix of a group has one family); must not decide which routes a client receives
//! (the RIB does) nor store anything. The stored Adj-RIB-In keeps what the member sent, so a
//! policy reload judges the original route again.

use std::net::IpAddr;

use vixp_bgp::{Attributes, Family};
use vixp_fabric::BlackholePolicy;

use super::Export;
use super::actions::NO_EXPORT;
use super::intern::Interner;
use crate::policy::is_blackhole;

/// What the RIB needs to know to apply the well-known rules on export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WellKnown {
    /// Next-hop rewrite of BLACKHOLE routes (`policy.blackhole`).
    pub blackhole: BlackholePolicy,
}

impl WellKnown {
    /// The attributes a client is sent for a route of `family` with `attributes`, or `None`
    /// when they go out unchanged.
    pub fn export_view(&self, attributes: &Attributes, family: Family) -> Option<Attributes> {
        if !is_blackhole(attributes) {
            return None;
        }
        let mut exported = attributes.clone();
        if !exported.communities.contains(&NO_EXPORT) {
            exported.communities.push(NO_EXPORT);
        }
        let next_hop = match family {
            Family::Ipv4 => self.blackhole.next_hop_ipv4.map(IpAddr::V4),
            Family::Ipv6 => self.blackhole.next_hop_ipv6.map(IpAddr::V6),
        };
        if let Some(next_hop) = next_hop {
            exported.next_hop = next_hop;
            // The member's link-local address belongs to the next hop being replaced.
            exported.link_local_next_hop = None;
        }
        Some(exported)
    }

    /// Applies [`WellKnown::export_view`] to every announced group of `export`, interning the
    /// changed attribute sets so that clients share them.
    pub(super) fn apply(&self, export: &mut Export, interner: &mut Interner) {
        for (attributes, prefixes) in &mut export.announce {
            let Some(family) = prefixes.first().map(Family::of) else {
                continue;
            };
            if let Some(changed) = self.export_view(attributes, family) {
                *attributes = interner.intern(changed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vixp_bgp::{AsPath, Origin, Segment, SegmentKind};
    use vixp_fabric::BLACKHOLE;

    use super::*;

    fn route(next_hop: &str, communities: &[u32]) -> Attributes {
        let mut attributes = Attributes::new(
            Origin::Igp,
            AsPath {
                segments: vec![Segment {
                    kind: SegmentKind::Sequence,
                    asns: vec![64501],
                }],
            },
            next_hop.parse().expect("valid next hop"),
        );
        attributes.communities = communities.to_vec();
        attributes
    }

    fn rewriting() -> WellKnown {
        WellKnown {
            blackhole: BlackholePolicy {
                next_hop_ipv4: Some("198.18.0.66".parse().expect("valid")),
                next_hop_ipv6: Some("fd00:198:18::66".parse().expect("valid")),
            },
        }
    }

    #[test]
    fn ordinary_routes_go_out_unchanged() {
        let plain = route("198.18.0.11", &[0xfde8_0001]);
        assert_eq!(rewriting().export_view(&plain, Family::Ipv4), None);
    }

    #[test]
    fn a_blackhole_route_gets_no_export_and_keeps_its_next_hop_by_default() {
        let tagged = route("198.18.0.11", &[BLACKHOLE]);
        let exported = WellKnown::default()
            .export_view(&tagged, Family::Ipv4)
            .expect("changed");
        assert_eq!(exported.communities, [BLACKHOLE, NO_EXPORT]);
        assert_eq!(exported.next_hop, tagged.next_hop);
        // NO_EXPORT already there is not added twice.
        let both = route("198.18.0.11", &[NO_EXPORT, BLACKHOLE]);
        let exported = WellKnown::default()
            .export_view(&both, Family::Ipv4)
            .expect("changed");
        assert_eq!(exported.communities, [NO_EXPORT, BLACKHOLE]);
    }

    #[test]
    fn the_configured_next_hop_of_the_family_replaces_the_members() {
        let exported = rewriting()
            .export_view(&route("198.18.0.11", &[BLACKHOLE]), Family::Ipv4)
            .expect("changed");
        assert_eq!(exported.next_hop.to_string(), "198.18.0.66");
        let mut v6 = route("fd00:198:18::11", &[BLACKHOLE]);
        v6.link_local_next_hop = Some("fe80::11".parse().expect("valid"));
        let exported = rewriting().export_view(&v6, Family::Ipv6).expect("changed");
        assert_eq!(exported.next_hop.to_string(), "fd00:198:18::66");
        assert_eq!(exported.link_local_next_hop, None);
    }

    #[test]
    fn apply_rewrites_only_blackhole_groups_and_shares_the_result() {
        let mut interner = Interner::default();
        let plain = Arc::new(route("198.18.0.11", &[]));
        let tagged = Arc::new(route("198.18.0.11", &[BLACKHOLE]));
        let mut export = Export {
            announce: vec![
                (
                    Arc::clone(&plain),
                    vec!["198.18.10.0/24".parse().expect("valid")],
                ),
                (
                    Arc::clone(&tagged),
                    vec!["198.18.10.7/32".parse().expect("valid")],
                ),
            ],
            withdraw: Vec::new(),
        };
        rewriting().apply(&mut export, &mut interner);
        assert!(Arc::ptr_eq(&export.announce[0].0, &plain));
        assert_eq!(export.announce[1].0.next_hop.to_string(), "198.18.0.66");
        let again = interner.intern((*export.announce[1].0).clone());
        assert!(Arc::ptr_eq(&again, &export.announce[1].0));
    }
}
