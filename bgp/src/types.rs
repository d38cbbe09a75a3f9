//! Project-owned BGP data types: prefixes, address families and path attributes as the
//! route server stores and compares them. Independent of the codec crate; `wire` converts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A unicast prefix, IPv4 or IPv6, host bits cleared.
pub type Prefix = ipnet::IpNet;

/// The address families vixp speaks (AFI/SAFI unicast only, RFC 4760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4,
    /// AFI 2, SAFI 1.
    Ipv6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const ALL: [Family; 2] = [Family::Ipv4, Family::Ipv6];

    /// The family a prefix belongs to.
    pub fn of(prefix: &Prefix) -> Family {
        match prefix {
            Prefix::V4(_) => Family::Ipv4,
            Prefix::V6(_) => Family::Ipv6,
        }
    }

    /// Lower-case label used in metrics and JSON (`ipv4`, `ipv6`).
    pub fn label(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// ORIGIN attribute values (RFC 4271 section 5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Learnt from an IGP.
    Igp,
    /// Learnt from EGP.
    Egp,
    /// Learnt some other way.
    Incomplete,
}

/// Kind of an AS_PATH segment (RFC 4271 section 4.3, RFC 5065).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// AS_SEQUENCE: ordered.
    Sequence,
    /// AS_SET: unordered, counts as one hop.
    Set,
    /// AS_CONFED_SEQUENCE.
    ConfedSequence,
    /// AS_CONFED_SET.
    ConfedSet,
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Segment {
    /// Segment type.
    pub kind: SegmentKind,
    /// ASNs in wire order, always 4-octet here (RFC 6793 reconstruction done by `wire`).
    pub asns: Vec<u32>,
}

/// AS_PATH, 4-octet ASNs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AsPath {
    /// Segments in wire order.
    pub segments: Vec<Segment>,
}

impl AsPath {
    /// Path length for best-path selection (RFC 4271 section 9.1.2.2 a): a set counts as
    /// one, confederation segments count as zero.
    pub fn selection_length(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| match segment.kind {
                SegmentKind::Sequence => segment.asns.len(),
                SegmentKind::Set => 1,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => 0,
            })
            .sum()
    }

    /// The leftmost ASN of the first AS_SEQUENCE: the neighbour that sent the route.
    pub fn first_asn(&self) -> Option<u32> {
        self.segments
            .iter()
            .find(|segment| segment.kind == SegmentKind::Sequence)
            .and_then(|segment| segment.asns.first().copied())
    }

    /// The origin ASN: the last ASN of a trailing AS_SEQUENCE (none if the path ends in a set).
    pub fn origin_asn(&self) -> Option<u32> {
        match self.segments.last() {
            Some(segment) if segment.kind == SegmentKind::Sequence => segment.asns.last().copied(),
            _ => None,
        }
    }

    /// Every ASN in the path, in wire order.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments
            .iter()
            .flat_map(|segment| segment.asns.iter().copied())
    }
}

/// A path attribute vixp does not interpret, passed on unchanged (RFC 4271 section 5:
/// optional transitive attributes gain the Partial bit when passed on).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawAttribute {
    /// Attribute flags as received.
    pub flags: u8,
    /// Attribute type code.
    pub type_code: u8,
    /// Attribute value.
    pub value: Vec<u8>,
}

/// An RFC 8092 large community `global:local1:local2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LargeCommunity(pub u32, pub u32, pub u32);

/// The path attributes of one route, as received, minus the NLRI-carrying attributes.
///
/// Routes from one UPDATE share one `Attributes`; the RIB interns them so that identical
/// sets are stored once. The next hop is part of the set because a route server passes it on
/// unchanged (RFC 7947 section 2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attributes {
    /// ORIGIN.
    pub origin: Origin,
    /// AS_PATH (4-octet ASNs).
    pub as_path: AsPath,
    /// NEXT_HOP (IPv4 routes) or the global next hop of MP_REACH_NLRI (IPv6 routes).
    pub next_hop: IpAddr,
    /// IPv6 link-local next hop, when MP_REACH_NLRI carried two addresses (RFC 2545).
    pub link_local_next_hop: Option<Ipv6Addr>,
    /// MULTI_EXIT_DISC, passed on unchanged (RFC 7947 section 2.3).
    pub med: Option<u32>,
    /// LOCAL_PREF as received; eBGP peers should not send it and a route server never does.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR (ASN, address), 4-octet form.
    pub aggregator: Option<(u32, Ipv4Addr)>,
    /// COMMUNITIES (RFC 1997), in received order.
    pub communities: Vec<u32>,
    /// EXTENDED COMMUNITIES (RFC 4360), raw 8 octets each.
    pub extended_communities: Vec<u64>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// Other optional transitive attributes, passed on unchanged.
    pub other: Vec<RawAttribute>,
}

impl Attributes {
    /// A minimal attribute set: the given origin, path and next hop, nothing else.
    pub fn new(origin: Origin, as_path: AsPath, next_hop: IpAddr) -> Self {
        Attributes {
            origin,
            as_path,
            next_hop,
            link_local_next_hop: None,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            extended_communities: Vec::new(),
            large_communities: Vec::new(),
            other: Vec::new(),
        }
    }
}
