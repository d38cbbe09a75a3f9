//! Path preference: the pure ordering used to keep each prefix's paths sorted best first.
//! Owns no state; must not look at who will receive the route (that is `choose` in the RIB).

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use vixp_bgp::Attributes;

/// What the ordering needs to know about the neighbor a path came from.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// The neighbor's BGP identifier.
    pub router_id: Ipv4Addr,
    /// The neighbor's transport address.
    pub address: IpAddr,
}

/// The GRACEFUL_SHUTDOWN well-known community 65535:0 (RFC 8326 section 4).
pub const GRACEFUL_SHUTDOWN: u32 = 0xffff_0000;

/// Whether a path is being drained by its sender (RFC 8326).
fn draining(attributes: &Attributes) -> bool {
    attributes.communities.contains(&GRACEFUL_SHUTDOWN)
}

/// Orders two paths for the same prefix, `Less` meaning `a` is preferred.
///
/// A total order (so sorting is well defined), following RFC 4271 section 9.1.2.2 for the
/// steps that apply to a route server, where every path is external and LOCAL_PREF is not used.
/// First, a path carrying GRACEFUL_SHUTDOWN loses to any path without it (RFC 8326 section 4
/// asks receivers to lower its LOCAL_PREF; a route server has no LOCAL_PREF to lower, so this
/// is the same effect). Then: a) shorter AS_PATH; b) lower ORIGIN; c) lower MULTI_EXIT_DISC, compared only between paths
/// from the same neighbouring AS (a missing MED counts as 0); to keep the order total, paths from
/// different neighbouring ASes are then ordered by that ASN; f) lower BGP identifier;
/// g) lower peer address.
pub fn compare(a: &Attributes, a_source: Source, b: &Attributes, b_source: Source) -> Ordering {
    draining(a)
        .cmp(&draining(b))
        .then_with(|| {
            a.as_path
                .selection_length()
                .cmp(&b.as_path.selection_length())
        })
        .then_with(|| a.origin.cmp(&b.origin))
        .then_with(|| {
            let a_neighbor = a.as_path.first_asn().unwrap_or(0);
            let b_neighbor = b.as_path.first_asn().unwrap_or(0);
            a_neighbor.cmp(&b_neighbor)
        })
        .then_with(|| a.med.unwrap_or(0).cmp(&b.med.unwrap_or(0)))
        .then_with(|| a_source.router_id.cmp(&b_source.router_id))
        .then_with(|| a_source.address.cmp(&b_source.address))
}

#[cfg(test)]
mod tests {
    use vixp_bgp::{AsPath, Origin, Segment, SegmentKind};

    use super::*;

    fn path(asns: &[u32], origin: Origin, med: Option<u32>) -> Attributes {
        let mut attributes = Attributes::new(
            origin,
            AsPath {
                segments: vec![Segment {
                    kind: SegmentKind::Sequence,
                    asns: asns.to_vec(),
                }],
            },
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)),
        );
        attributes.med = med;
        attributes
    }

    fn source(last: u8) -> Source {
        Source {
            router_id: Ipv4Addr::new(198, 18, 0, last),
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)),
        }
    }

    #[test]
    fn shorter_as_path_wins_over_lower_med() {
        let short = path(&[64501], Origin::Igp, Some(100));
        let long = path(&[64502, 64999], Origin::Igp, Some(0));
        assert_eq!(compare(&short, source(1), &long, source(2)), Ordering::Less);
    }

    #[test]
    fn lower_origin_wins_on_equal_length() {
        let igp = path(&[64501], Origin::Igp, None);
        let incomplete = path(&[64502], Origin::Incomplete, None);
        assert_eq!(
            compare(&incomplete, source(1), &igp, source(2)),
            Ordering::Greater
        );
    }

    #[test]
    fn med_compared_only_within_one_neighbor_as() {
        let low = path(&[64501, 1], Origin::Igp, Some(10));
        let high = path(&[64501, 2], Origin::Igp, Some(20));
        assert_eq!(
            compare(&high, source(1), &low, source(2)),
            Ordering::Greater
        );
        // From another neighbouring AS, MED 0 does not beat MED 10: the ASN decides.
        let other = path(&[64502, 1], Origin::Igp, Some(0));
        assert_eq!(compare(&low, source(3), &other, source(1)), Ordering::Less);
    }

    #[test]
    fn missing_med_counts_as_zero() {
        let none = path(&[64501], Origin::Igp, None);
        let some = path(&[64501], Origin::Igp, Some(1));
        assert_eq!(compare(&none, source(2), &some, source(1)), Ordering::Less);
    }

    #[test]
    fn a_path_in_graceful_shutdown_loses_even_when_shorter() {
        let mut draining = path(&[64501], Origin::Igp, None);
        draining.communities.push(GRACEFUL_SHUTDOWN);
        let longer = path(&[64502, 1, 2], Origin::Igp, None);
        assert_eq!(
            compare(&draining, source(1), &longer, source(2)),
            Ordering::Greater
        );
        let mut both = longer.clone();
        both.communities.push(GRACEFUL_SHUTDOWN);
        assert_eq!(
            compare(&draining, source(1), &both, source(2)),
            Ordering::Less
        );
    }

    #[test]
    fn lower_router_id_breaks_remaining_ties() {
        let a = path(&[64501], Origin::Igp, None);
        assert_eq!(compare(&a, source(1), &a, source(2)), Ordering::Less);
        assert_eq!(compare(&a, source(2), &a, source(2)), Ordering::Equal);
    }
}
