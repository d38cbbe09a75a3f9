//! Well-known behaviour applied to every route on export, after the action communities:
//! a BLACKHOLE route (RFC 7999) gets NO_EXPORT (section 3.2) and, when the exchange configures
//! one, the blackhole next hop of its family; every route without OTC gets OTC with the route
//! server's ASN (RFC 9234 section 5, egress rule 1: the route server sends to RS-clients, so the
//! routes may go only to their customers; a transparent route server still puts its own ASN
//! there, the AS that set the attribute). Pure functions over one group of an [`Export`]
//! (every prefix of a group has one family); must not decide which routes a client receives
//! (the RIB does) nor store anything. The stored Adj-RIB-In keeps what the member sent, so a
//! policy reload judges the original route again.

use std::net::IpAddr;

use vixp_bgp::role::OTC_ATTRIBUTE;
use vixp_bgp::{Attributes, Family, RawAttribute};
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

/// Flags of an OTC attribute the route server adds: optional transitive (RFC 9234 section 5).
const OTC_FLAGS: u8 = 0xc0;

impl WellKnown {
    /// The attributes a client is sent for a route of `family` with `attributes` by the route
    /// server `rs` (0: unknown, no OTC added), or `None` when they go out unchanged.
    pub fn export_view(
        &self,
        attributes: &Attributes,
        family: Family,
        rs: u32,
    ) -> Option<Attributes> {
        let add_otc = rs != 0
            && !attributes
                .other
                .iter()
                .any(|raw| raw.type_code == OTC_ATTRIBUTE);
        let blackhole = is_blackhole(attributes);
        if !add_otc && !blackhole {
            return None;
        }
        let mut exported = attributes.clone();
        if add_otc {
            exported.other.push(RawAttribute {
                flags: OTC_FLAGS,
                type_code: OTC_ATTRIBUTE,
                value: rs.to_be_bytes().to_vec(),
            });
        }
        if !blackhole {
            return Some(exported);
        }
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
    pub(super) fn apply(&self, export: &mut Export, interner: &mut Interner, rs: u32) {
        for (attributes, prefixes) in &mut export.announce {
            let Some(family) = prefixes.first().map(Family::of) else {
                continue;
            };
            if let Some(changed) = self.export_view(attributes, family, rs) {
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
        assert_eq!(rewriting().export_view(&plain, Family::Ipv4, 0), None);
    }

    #[test]
    fn a_blackhole_route_gets_no_export_and_keeps_its_next_hop_by_default() {
        let tagged = route("198.18.0.11", &[BLACKHOLE]);
        let exported = WellKnown::default()
            .export_view(&tagged, Family::Ipv4, 0)
            .expect("changed");
        assert_eq!(exported.communities, [BLACKHOLE, NO_EXPORT]);
        assert_eq!(exported.next_hop, tagged.next_hop);
        // NO_EXPORT already there is not added twice.
        let both = route("198.18.0.11", &[NO_EXPORT, BLACKHOLE]);
        let exported = WellKnown::default()
            .export_view(&both, Family::Ipv4, 0)
            .expect("changed");
        assert_eq!(exported.communities, [NO_EXPORT, BLACKHOLE]);
    }

    #[test]
    fn the_configured_next_hop_of_the_family_replaces_the_members() {
        let exported = rewriting()
            .export_view(&route("198.18.0.11", &[BLACKHOLE]), Family::Ipv4, 0)
            .expect("changed");
        assert_eq!(exported.next_hop.to_string(), "198.18.0.66");
        let mut v6 = route("fd00:198:18::11", &[BLACKHOLE]);
        v6.link_local_next_hop = Some("fe80::11".parse().expect("valid"));
        let exported = rewriting()
            .export_view(&v6, Family::Ipv6, 0)
            .expect("changed");
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
        rewriting().apply(&mut export, &mut interner, 0);
        assert!(Arc::ptr_eq(&export.announce[0].0, &plain));
        assert_eq!(export.announce[1].0.next_hop.to_string(), "198.18.0.66");
        let again = interner.intern((*export.announce[1].0).clone());
        assert!(Arc::ptr_eq(&again, &export.announce[1].0));
    }

    #[test]
    fn every_route_gets_otc_with_the_route_servers_asn_once() {
        let plain = route("198.18.0.11", &[]);
        let exported = WellKnown::default()
            .export_view(&plain, Family::Ipv4, 64500)
            .expect("OTC added");
        assert_eq!(
            exported.other,
            [RawAttribute {
                flags: 0xc0,
                type_code: 35,
                value: vec![0, 0, 0xfb, 0xf4],
            }]
        );
        // Already there (never from a member: the import policy refuses those): unchanged.
        assert_eq!(
            WellKnown::default().export_view(&exported, Family::Ipv4, 64500),
            None
        );
        // A blackhole route gets both.
        let both = rewriting()
            .export_view(&route("198.18.0.11", &[BLACKHOLE]), Family::Ipv4, 64500)
            .expect("changed");
        assert_eq!(both.other.len(), 1);
        assert!(both.communities.contains(&NO_EXPORT));
    }

    #[test]
    fn otc_goes_on_the_wire_as_type_35_optional_transitive_without_partial() {
        let exported = WellKnown::default()
            .export_view(&route("198.18.0.11", &[]), Family::Ipv4, 64500)
            .expect("OTC added");
        let context = vixp_bgp::EncodeContext {
            four_octet_as: true,
            max_message_len: 4096,
            external: true,
        };
        let mut messages = Vec::new();
        vixp_bgp::encode_announcements(
            &exported,
            &["198.18.10.0/24".parse().expect("valid")],
            &context,
            &mut messages,
        );
        let message = messages.first().expect("one UPDATE");
        assert!(
            message
                .windows(7)
                .any(|window| window == [0xc0, 35, 4, 0, 0, 0xfb, 0xf4]),
            "{message:02x?}"
        );
    }
}
