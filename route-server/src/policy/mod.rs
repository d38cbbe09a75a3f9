//! The route server's import policy: the IXP filter set (RFC 7948 practice as arouteserver
//! and IXP Manager configure it) as an ordered pipeline of pure filters over one route,
//! returning the first [`Reason`] a route is refused for. Owns the order and the member
//! facts the filters need ([`Neighbor`]); must not own state, sockets or clocks, nor store
//! routes (the RIB keeps refused routes with their reason).
//!
//! The order, which decides the reason a route failing several filters gets (issue 5,
//! item 1), is the list [`Filter::ORDER`] that [`import`] iterates (and the published peering
//! policy renders); each step is a function of [`filters`]:
//!
//! 1. [`filters::next_hop`]: NEXT_HOP is the member's own LAN address (or its ASN's).
//! 2. [`filters::first_asn`]: the AS_PATH starts with the member's ASN.
//! 3. [`filters::as_path_length`]: not empty, not longer than the limit.
//! 4. [`filters::bogon_asns`]: no reserved (AS_TRANS included) or private ASN.
//! 5. [`filters::transit_free_asns`]: no transit-free ASN behind the member.
//! 6. [`filters::never_via_route_servers`]: no "never via route servers" ASN.
//! 7. [`filters::bogon_prefix`]: not a bogon, the default route or inside the LAN.
//! 8. [`filters::prefix_length`]: within the family's length range; a BLACKHOLE route may be
//!    as long as /32 or /128. Then `blackhole::blackhole`: a BLACKHOLE route comes from a
//!    member that opted in, inside its IRR prefixes. Then `otc::otc`: no OTC attribute on a
//!    route from a member, an RS-client (RFC 9234 section 5).
//! 9. `irr::irr`: the prefix is in the member's IRR prefixes (within each entry's length
//!    range) and the origin among its IRR origin ASNs; a member without IRR data, or without
//!    one of the two lists, is not checked against it. Then RPKI origin validation.
//! 10. [`filters::communities`]: not more communities than the limit.
//!
//! Max-prefix is not a per-route filter: it counts a session's accepted routes and acts on
//! the session, so it lives with the session, not here.

mod blackhole;
pub mod filters;
mod irr;
mod otc;
mod pipeline;
mod reason;

use std::net::IpAddr;
use std::sync::Arc;

use vixp_bgp::{Attributes, Prefix};
use vixp_fabric::{Asn, Lan, Member, Policy};

pub use blackhole::is_blackhole;
pub use pipeline::Filter;
pub use reason::{BlackholeRefusal, BogonAsnKind, BogonSource, EURO_IX_FILTERED, Reason};

/// The outcome of the import policy for one route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The route may be used and exported.
    Accept,
    /// The route is kept in the Adj-RIB-In with this reason and never exported.
    Reject(Reason),
}

impl Verdict {
    /// Whether the route was accepted.
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept)
    }

    /// The reason the route was refused, if it was.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Verdict::Accept => None,
            Verdict::Reject(reason) => Some(reason),
        }
    }
}

/// What the filters need to know about the member a route came from. Built once per
/// session (or per fabric reload) with [`Neighbor::new`], not per route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The member's name, shown in reasons; shared so that a reason costs no copy of it.
    pub name: Arc<str>,
    /// The member's ASN.
    pub asn: Asn,
    /// The member's own LAN addresses, IPv4 first.
    pub addresses: Vec<IpAddr>,
    /// LAN addresses of every member with this ASN, the member's own included (the next
    /// hops `same_asn` accepts).
    pub same_asn_addresses: Vec<IpAddr>,
    /// The RPKI payload in force (`None`: none loaded yet, or RPKI not configured); the
    /// RIB task swaps it in when the payload changes.
    pub rpki: Option<Arc<crate::rpki::VrpSet>>,
    /// The member's IRR data (`None`: no IRR filtering for this member).
    pub irr: Option<Arc<vixp_fabric::IrrData>>,
    /// Whether the member opted in to BLACKHOLE routes (`members[N].blackhole`).
    pub blackhole: bool,
}

impl Neighbor {
    /// The filter view of `member`; `members` is the whole fabric's member list, searched
    /// for others with the same ASN.
    pub fn new(member: &Member, members: &[Member]) -> Neighbor {
        Neighbor {
            name: Arc::from(member.name.as_str()),
            asn: member.asn,
            addresses: member.lan_addresses().collect(),
            same_asn_addresses: members
                .iter()
                .filter(|other| other.asn == member.asn)
                .flat_map(Member::lan_addresses)
                .collect(),
            rpki: None,
            irr: member.irr.as_ref().and_then(|irr| irr.data.clone()),
            blackhole: member.blackhole,
        }
    }

    /// Whether `address` is one of the member's own LAN addresses.
    pub fn owns(&self, address: IpAddr) -> bool {
        self.addresses.contains(&address)
    }

    /// The member's own LAN address of `address`'s family, if it has one.
    pub fn address_like(&self, address: IpAddr) -> Option<IpAddr> {
        self.addresses
            .iter()
            .copied()
            .find(|own| own.is_ipv4() == address.is_ipv4())
    }
}

/// Runs the import filters on one route from `neighbor`, in the order of the module
/// documentation, and returns the first refusal.
pub fn import(
    prefix: &Prefix,
    attributes: &Attributes,
    neighbor: &Neighbor,
    policy: &Policy,
    lan: &Lan,
) -> Verdict {
    match check(prefix, attributes, neighbor, policy, lan) {
        Ok(()) => Verdict::Accept,
        Err(reason) => Verdict::Reject(reason),
    }
}

/// The pipeline itself: each filter of [`Filter::ORDER`] in turn, stopping at the first
/// refusal.
fn check(
    prefix: &Prefix,
    attributes: &Attributes,
    neighbor: &Neighbor,
    policy: &Policy,
    lan: &Lan,
) -> Result<(), Reason> {
    for filter in Filter::ORDER {
        filter.apply(prefix, attributes, neighbor, policy, lan)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use vixp_bgp::{AsPath, Origin, Segment, SegmentKind};
    use vixp_fabric::Fabric;

    use super::*;

    /// The lab LAN: 198.18.0.0/24 and fd00:198:18::/64.
    pub(crate) fn lab_lan() -> Lan {
        Lan {
            ipv4: "198.18.0.0/24".parse().expect("valid"),
            ipv6: "fd00:198:18::/64".parse().expect("valid"),
        }
    }

    /// The defaults, with lab space allowed and private ASNs accepted.
    pub(crate) fn lab_policy() -> Policy {
        Policy {
            allow_prefixes: vec![
                "198.18.0.0/15".parse().expect("valid"),
                "fd00::/8".parse().expect("valid"),
            ],
            reject_private_asns: false,
            ..Policy::default()
        }
    }

    /// Member alpha, AS64501, 198.18.0.11 and fd00:198:18::11.
    pub(crate) fn alpha() -> Neighbor {
        let addresses: Vec<IpAddr> = vec![
            "198.18.0.11".parse().expect("valid"),
            "fd00:198:18::11".parse().expect("valid"),
        ];
        Neighbor {
            name: Arc::from("alpha"),
            asn: Asn(64501),
            same_asn_addresses: addresses.clone(),
            addresses,
            rpki: None,
            irr: None,
            blackhole: false,
        }
    }

    /// Attributes with one AS_SEQUENCE (none when `path` is empty) and the given next hop.
    pub(crate) fn route(path: &[u32], next_hop: &str) -> Attributes {
        let segments = if path.is_empty() {
            Vec::new()
        } else {
            vec![Segment {
                kind: SegmentKind::Sequence,
                asns: path.to_vec(),
            }]
        };
        Attributes::new(
            Origin::Igp,
            AsPath { segments },
            next_hop.parse().expect("test next hop is valid"),
        )
    }

    fn prefix(text: &str) -> Prefix {
        text.parse().expect("test prefix is valid")
    }

    fn lab_import(prefix_text: &str, attributes: &Attributes) -> Verdict {
        import(
            &prefix(prefix_text),
            attributes,
            &alpha(),
            &lab_policy(),
            &lab_lan(),
        )
    }

    #[test]
    fn a_clean_lab_route_is_accepted() {
        let verdict = lab_import("198.18.10.0/24", &route(&[64501, 64510], "198.18.0.11"));
        assert_eq!(verdict, Verdict::Accept);
        assert!(verdict.is_accept());
        assert_eq!(verdict.reason(), None);
        assert!(lab_import("fd00:10::/48", &route(&[64501], "fd00:198:18::11")).is_accept());
    }

    #[test]
    fn a_clean_internet_route_passes_the_default_policy() {
        let neighbor = Neighbor {
            asn: Asn(3333),
            ..alpha()
        };
        let verdict = import(
            &prefix("193.0.0.0/21"),
            &route(&[3333, 3333, 12654], "198.18.0.11"),
            &neighbor,
            &Policy::default(),
            &lab_lan(),
        );
        assert_eq!(verdict, Verdict::Accept);
    }

    /// One route per filter, each failing only that filter, with its expected label.
    fn single_failures() -> Vec<(&'static str, Attributes, &'static str)> {
        let mut communities = route(&[64501], "198.18.0.11");
        communities.communities = vec![1; 101];
        vec![
            (
                "198.18.10.0/24",
                route(&[64501], "198.18.0.12"),
                "next_hop_not_peer",
            ),
            (
                "198.18.10.0/24",
                route(&[64502], "198.18.0.11"),
                "first_as_not_peer",
            ),
            ("198.18.10.0/24", route(&[], "198.18.0.11"), "as_path_empty"),
            (
                "198.18.10.0/24",
                route(&[64501; 33], "198.18.0.11"),
                "as_path_too_long",
            ),
            (
                "198.18.10.0/24",
                route(&[64501, 23456], "198.18.0.11"),
                "bogon_asn",
            ),
            (
                "198.18.10.0/24",
                route(&[64501, 6939, 1299], "198.18.0.11"),
                "transit_free_asn",
            ),
            (
                "10.1.0.0/16",
                route(&[64501], "198.18.0.11"),
                "bogon_prefix",
            ),
            (
                "198.18.10.0/25",
                route(&[64501], "198.18.0.11"),
                "prefix_too_long",
            ),
            (
                "fd00::/8",
                route(&[64501], "fd00:198:18::11"),
                "prefix_too_short",
            ),
            ("198.18.10.0/24", communities, "too_many_communities"),
        ]
    }

    #[test]
    fn each_filter_alone_refuses_with_its_own_reason() {
        for (prefix_text, attributes, label) in single_failures() {
            let verdict = lab_import(prefix_text, &attributes);
            assert_eq!(
                verdict.reason().map(Reason::label),
                Some(label),
                "{prefix_text} {:?}",
                attributes.as_path
            );
        }
    }

    #[test]
    fn never_via_route_servers_runs_in_the_pipeline() {
        let policy = Policy {
            never_via_route_servers_asns: vec![Asn(64999)],
            ..lab_policy()
        };
        let verdict = import(
            &prefix("198.18.10.0/24"),
            &route(&[64501, 64999], "198.18.0.11"),
            &alpha(),
            &policy,
            &lab_lan(),
        );
        assert_eq!(
            verdict,
            Verdict::Reject(Reason::NeverViaRouteServersAsn { asn: 64999 })
        );
    }

    #[test]
    fn a_route_failing_two_filters_gets_the_earlier_reason() {
        // Foreign next hop and foreign first AS: next hop comes first.
        let verdict = lab_import("198.18.10.0/24", &route(&[64502], "198.18.0.12"));
        assert_eq!(
            verdict.reason().map(Reason::label),
            Some("next_hop_not_peer")
        );
        // Foreign first AS and a bogon prefix: first AS comes first.
        let verdict = lab_import("10.1.0.0/16", &route(&[64502], "198.18.0.11"));
        assert_eq!(
            verdict.reason().map(Reason::label),
            Some("first_as_not_peer")
        );
        // Too long a path that also holds AS_TRANS: length comes first.
        let mut path = vec![64501; 40];
        path.push(23456);
        let verdict = lab_import("198.18.10.0/24", &route(&path, "198.18.0.11"));
        assert_eq!(
            verdict.reason().map(Reason::label),
            Some("as_path_too_long")
        );
        // A private ASN behind a transit-free one (default policy): the ASN check comes first.
        let verdict = import(
            &prefix("193.0.0.0/21"),
            &route(&[64501, 1299, 64512], "198.18.0.11"),
            &alpha(),
            &Policy {
                reject_private_asns: true,
                ..lab_policy()
            },
            &lab_lan(),
        );
        assert_eq!(verdict.reason().map(Reason::label), Some("bogon_asn"));
        // Transit-free ASN on a bogon: transit-free comes first.
        let verdict = lab_import("10.1.0.0/16", &route(&[64501, 174], "198.18.0.11"));
        assert_eq!(
            verdict.reason().map(Reason::label),
            Some("transit_free_asn")
        );
        // A bogon /25: bogon comes before length.
        let verdict = lab_import("10.1.0.0/25", &route(&[64501], "198.18.0.11"));
        assert_eq!(verdict.reason().map(Reason::label), Some("bogon_prefix"));
        // Too long and too many communities: length comes first.
        let mut attributes = route(&[64501], "198.18.0.11");
        attributes.large_communities = vec![vixp_bgp::LargeCommunity(1, 2, 3); 200];
        let verdict = lab_import("198.18.10.0/25", &attributes);
        assert_eq!(verdict.reason().map(Reason::label), Some("prefix_too_long"));
    }

    #[test]
    fn a_route_failing_every_filter_gets_the_next_hop_reason() {
        let mut attributes = route(&[64502; 40], "198.18.0.99");
        attributes.communities = vec![1; 500];
        let verdict = lab_import("0.0.0.0/0", &attributes);
        assert!(matches!(
            verdict,
            Verdict::Reject(Reason::NextHopNotPeer { .. })
        ));
    }

    #[test]
    fn neighbor_from_the_fabric_carries_names_and_addresses() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/examples/lab-policy.yaml");
        let fabric = Fabric::load(&path).expect("lab example parses");
        let bravo = Neighbor::new(&fabric.members[1], &fabric.members);
        assert_eq!(&*bravo.name, "bravo");
        assert_eq!(bravo.asn, Asn(64502));
        let own: Vec<IpAddr> = vec![
            "198.18.0.12".parse().expect("valid"),
            "fd00:198:18::12".parse().expect("valid"),
        ];
        assert_eq!(bravo.addresses, own);
        assert_eq!(bravo.same_asn_addresses, own);
        assert_eq!(
            bravo.address_like("fd00::1".parse().expect("valid")),
            Some(own[1])
        );
        let verdict = import(
            &prefix("198.18.12.0/24"),
            &route(&[64502], "198.18.0.11"),
            &bravo,
            &fabric.policy,
            &fabric.lan,
        );
        assert_eq!(
            verdict.reason().map(ToString::to_string).as_deref(),
            Some("next hop 198.18.0.11 is not bravo's LAN address 198.18.0.12")
        );
    }

    #[test]
    fn same_asn_collects_every_member_with_that_asn() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/examples/lab-policy.yaml"),
        )
        .expect("lab example readable");
        let fabric = Fabric::parse(&text, Path::new("lab-policy.yaml")).expect("parses");
        let mut members = fabric.members.clone();
        let mut second = members[0].clone();
        second.ipv4 = Some("198.18.0.21".parse().expect("valid"));
        second.ipv6 = None;
        members.push(second);
        let alpha = Neighbor::new(&members[0], &members);
        assert_eq!(alpha.addresses.len(), 2);
        assert_eq!(alpha.same_asn_addresses.len(), 3);
        assert!(
            alpha
                .same_asn_addresses
                .contains(&"198.18.0.21".parse().expect("valid"))
        );
    }
}
