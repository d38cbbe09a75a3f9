//! The import pipeline as data: one [`Filter`] per step, [`Filter::ORDER`] the order
//! `policy::import` runs them in. The published peering policy (`policy_page`) renders the same
//! list, so what the page says is the order the route server applies. Owns the order; must not
//! hold any filter's rule (`filters` does) nor any state.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use vixp_bgp::{Attributes, Family, Prefix};
use vixp_fabric::{Asn, Lan, Policy};

use super::reason::{BogonAsnKind, BogonSource, Reason};
use super::{Neighbor, filters};

/// One step of the import pipeline, named after its function in [`filters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// [`filters::next_hop`].
    NextHop,
    /// [`filters::first_asn`].
    FirstAsn,
    /// [`filters::as_path_length`].
    AsPathLength,
    /// [`filters::bogon_asns`].
    BogonAsns,
    /// [`filters::transit_free_asns`].
    TransitFreeAsns,
    /// [`filters::never_via_route_servers`].
    NeverViaRouteServers,
    /// [`filters::bogon_prefix`].
    BogonPrefix,
    /// [`filters::prefix_length`] (`blackhole::prefix_length`: BLACKHOLE routes may be longer).
    PrefixLength,
    /// `blackhole::blackhole`: BLACKHOLE routes only from members that opted in, for their
    /// own space.
    Blackhole,
    /// `otc::otc`: no OTC on a route from an RS-client (RFC 9234 section 5).
    Otc,
    /// [`super::irr::irr`].
    Irr,
    /// [`crate::rpki::filter`]: origin validation and ASPA (needs `policy.rpki`).
    Rpki,
    /// [`filters::communities`].
    Communities,
}

impl Filter {
    /// The filters in the order `policy::import` runs them: the first that refuses a route
    /// gives its reason (issue 5, item 1).
    pub const ORDER: [Filter; 13] = [
        Filter::NextHop,
        Filter::FirstAsn,
        Filter::AsPathLength,
        Filter::BogonAsns,
        Filter::TransitFreeAsns,
        Filter::NeverViaRouteServers,
        Filter::BogonPrefix,
        Filter::PrefixLength,
        Filter::Blackhole,
        Filter::Otc,
        Filter::Irr,
        Filter::Rpki,
        Filter::Communities,
    ];

    /// Runs this filter on one route.
    pub fn apply(
        self,
        prefix: &Prefix,
        attributes: &Attributes,
        neighbor: &Neighbor,
        policy: &Policy,
        lan: &Lan,
    ) -> Result<(), Reason> {
        match self {
            Filter::NextHop => filters::next_hop(attributes, neighbor, policy),
            Filter::FirstAsn => filters::first_asn(attributes, neighbor),
            Filter::AsPathLength => filters::as_path_length(attributes, policy),
            Filter::BogonAsns => filters::bogon_asns(attributes, policy),
            Filter::TransitFreeAsns => filters::transit_free_asns(attributes, neighbor, policy),
            Filter::NeverViaRouteServers => filters::never_via_route_servers(attributes, policy),
            Filter::BogonPrefix => filters::bogon_prefix(prefix, policy, lan),
            Filter::PrefixLength => super::blackhole::prefix_length(prefix, attributes, policy),
            Filter::Blackhole => super::blackhole::blackhole(prefix, attributes, neighbor),
            Filter::Otc => super::otc::otc(attributes, neighbor),
            Filter::Irr => super::irr::irr(prefix, attributes, neighbor),
            Filter::Rpki => match &policy.rpki {
                Some(rpki) => crate::rpki::filter(prefix, attributes, neighbor.rpki.as_ref(), rpki),
                None => Ok(()),
            },
            Filter::Communities => filters::communities(attributes, policy),
        }
    }

    /// Short snake-case name of the step, as in [`filters`].
    pub fn name(self) -> &'static str {
        match self {
            Filter::NextHop => "next_hop",
            Filter::FirstAsn => "first_asn",
            Filter::AsPathLength => "as_path_length",
            Filter::BogonAsns => "bogon_asns",
            Filter::TransitFreeAsns => "transit_free_asns",
            Filter::NeverViaRouteServers => "never_via_route_servers",
            Filter::BogonPrefix => "bogon_prefix",
            Filter::PrefixLength => "prefix_length",
            Filter::Blackhole => "blackhole",
            Filter::Otc => "otc",
            Filter::Irr => "irr",
            Filter::Rpki => "rpki",
            Filter::Communities => "communities",
        }
    }

    /// Every kind of refusal this filter gives, one [`Reason`] each, with `policy`'s limits
    /// filled in and placeholders (unspecified addresses, AS0, an empty member name) for the
    /// facts of a route. For listing labels and Euro-IX codes, not for showing to a member.
    pub fn refusals(self, policy: &Policy) -> Vec<Reason> {
        let member: Arc<str> = Arc::from("");
        let nowhere = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let default_route: Prefix = Prefix::V4(ipnet::Ipv4Net::default());
        match self {
            Filter::NextHop => vec![Reason::NextHopNotPeer {
                next_hop: nowhere,
                member,
                asn: Asn(0),
                own_address: None,
                policy: policy.next_hop,
            }],
            Filter::FirstAsn => vec![Reason::FirstAsNotPeer {
                first: None,
                member,
                asn: Asn(0),
            }],
            Filter::AsPathLength => vec![
                Reason::AsPathEmpty,
                Reason::AsPathTooLong {
                    length: 0,
                    max: policy.max_as_path_length,
                },
            ],
            Filter::BogonAsns => vec![Reason::BogonAsn {
                asn: 0,
                kind: BogonAsnKind::Zero,
            }],
            Filter::TransitFreeAsns => vec![Reason::TransitFreeAsn { asn: 0 }],
            Filter::NeverViaRouteServers => vec![Reason::NeverViaRouteServersAsn { asn: 0 }],
            Filter::BogonPrefix => vec![Reason::BogonPrefix {
                prefix: default_route,
                covering: default_route,
                source: BogonSource::DefaultRoute,
            }],
            Filter::PrefixLength => vec![
                Reason::PrefixTooLong {
                    family: Family::Ipv4,
                    length: 0,
                    max: policy.prefix_length.ipv4.max,
                },
                Reason::PrefixTooShort {
                    family: Family::Ipv4,
                    length: 0,
                    min: policy.prefix_length.ipv4.min,
                },
            ],
            Filter::Blackhole => vec![Reason::BlackholeNotAllowed {
                member: member.clone(),
                refusal: super::reason::BlackholeRefusal::NotOptedIn,
            }],
            Filter::Otc => vec![Reason::OtcLeak {
                otc: None,
                member: member.clone(),
            }],
            Filter::Irr => vec![
                Reason::NotInIrrPrefixes {
                    prefix: default_route,
                    member: member.clone(),
                },
                Reason::OriginNotInIrr {
                    origin: None,
                    member: member.clone(),
                },
            ],
            Filter::Rpki => vec![
                Reason::RpkiInvalid {
                    prefix: default_route,
                    origin: None,
                    covering: crate::rpki::Vrp {
                        prefix: default_route,
                        max_length: 0,
                        asn: 0,
                    },
                },
                Reason::AspaInvalid {
                    customer: 0,
                    next: 0,
                },
            ],
            Filter::Communities => vec![Reason::TooManyCommunities {
                count: 0,
                max: policy.max_communities,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::{alpha, lab_lan, lab_policy, route};
    use crate::policy::{Verdict, import};

    #[test]
    fn the_refusals_in_pipeline_order_are_every_reason_label_in_order() {
        let labels: Vec<&str> = Filter::ORDER
            .iter()
            .flat_map(|filter| filter.refusals(&Policy::default()))
            .map(|reason| reason.label())
            .collect();
        assert_eq!(labels, Reason::LABELS);
    }

    #[test]
    fn each_filter_is_listed_once() {
        for (index, filter) in Filter::ORDER.iter().enumerate() {
            assert!(!Filter::ORDER[..index].contains(filter), "{filter:?} twice");
        }
    }

    #[test]
    fn import_gives_the_reason_of_the_first_refusing_filter_in_order() {
        // A route every filter refuses: its reason is the first filter's.
        let mut attributes = route(&[64502; 40], "198.18.0.99");
        attributes.communities = vec![1; 500];
        let prefix: Prefix = "0.0.0.0/0".parse().expect("valid");
        let (neighbor, policy, lan) = (alpha(), lab_policy(), lab_lan());
        let first = Filter::ORDER
            .iter()
            .find_map(|filter| {
                filter
                    .apply(&prefix, &attributes, &neighbor, &policy, &lan)
                    .err()
            })
            .expect("some filter refuses");
        assert_eq!(
            import(&prefix, &attributes, &neighbor, &policy, &lan),
            Verdict::Reject(first)
        );
    }
}
