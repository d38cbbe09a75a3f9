//! The IRR import filter: a route's prefix must be covered by the member's allowed prefixes
//! (respecting each entry's length range) and its origin ASN must be among the member's
//! allowed ASNs. Owns that rule; must not read IRR files (`crate::irr` does) nor keep state.
//!
//! A member without IRR data is not filtered here, and each half applies only when its list
//! exists: prefix data without origin data checks prefixes only, and the reverse (the
//! documented behaviour in docs/route-server.md, as arouteserver does for clients without an
//! AS-SET when `filtering.irrdb.enforce_origin_in_as_set` is off).

use vixp_bgp::{Attributes, Prefix};

use super::Neighbor;
use super::reason::Reason;

/// The prefix must be in the member's IRR prefix list (Euro-IX `rs:1101:9`), and the origin
/// ASN, the last ASN of the AS_PATH (an AS_PATH ending in an AS_SET has none), in its IRR
/// origin list (`rs:1101:10`).
pub fn irr(prefix: &Prefix, attributes: &Attributes, neighbor: &Neighbor) -> Result<(), Reason> {
    let Some(data) = &neighbor.irr else {
        return Ok(());
    };
    // A BLACKHOLE route passed `blackhole::blackhole`, which checks it lies inside these
    // prefixes at any length.
    if let Some(prefixes) = &data.prefixes
        && !super::blackhole::is_blackhole(attributes)
        && !prefixes.covers(prefix)
    {
        return Err(Reason::NotInIrrPrefixes {
            prefix: *prefix,
            member: neighbor.name.clone(),
        });
    }
    if let Some(origins) = &data.origins {
        let origin = attributes.as_path.origin_asn();
        if !origin.is_some_and(|asn| origins.contains(asn)) {
            return Err(Reason::OriginNotInIrr {
                origin,
                member: neighbor.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vixp_bgp::{AsPath, Segment, SegmentKind};
    use vixp_fabric::{Asn, AsnSet, IrrData, PrefixRange, PrefixSet};

    use super::*;
    use crate::policy::tests::{alpha, route};

    fn with_irr(prefixes: Option<&[&str]>, origins: Option<&[u32]>) -> Neighbor {
        let data = IrrData {
            prefixes: prefixes.map(|list| {
                PrefixSet::new(
                    list.iter()
                        .map(|text| text.parse::<PrefixRange>().expect("test range is valid")),
                )
            }),
            origins: origins.map(|list| AsnSet::new(list.iter().map(|asn| Asn(*asn)))),
        };
        Neighbor {
            irr: Some(Arc::new(data)),
            ..alpha()
        }
    }

    fn prefix(text: &str) -> Prefix {
        text.parse().expect("test prefix is valid")
    }

    #[test]
    fn a_member_without_irr_data_is_not_filtered() {
        let route = route(&[64501, 64999], "198.18.0.11");
        assert_eq!(irr(&prefix("198.18.77.0/24"), &route, &alpha()), Ok(()));
    }

    #[test]
    fn covered_prefixes_from_listed_origins_pass() {
        let neighbor = with_irr(
            Some(&[
                "198.18.10.0/24",
                "198.18.16.0/20 le 24",
                "fd00:10::/32 le 48",
            ]),
            Some(&[64501, 64510]),
        );
        for (text, path) in [
            ("198.18.10.0/24", &[64501][..]),
            ("198.18.17.0/24", &[64501, 64510][..]),
            ("198.18.16.0/20", &[64501, 64510][..]),
            ("fd00:10:1::/48", &[64501][..]),
        ] {
            assert_eq!(
                irr(&prefix(text), &route(path, "198.18.0.11"), &neighbor),
                Ok(()),
                "{text}"
            );
        }
    }

    #[test]
    fn uncovered_prefixes_and_foreign_origins_are_refused_with_their_reasons() {
        let neighbor = with_irr(Some(&["198.18.16.0/20 le 24"]), Some(&[64501]));
        let outside = irr(
            &prefix("198.18.99.0/24"),
            &route(&[64501], "198.18.0.11"),
            &neighbor,
        );
        assert_eq!(
            outside.as_ref().map_err(Reason::label),
            Err("not_in_irr_prefixes")
        );
        assert_eq!(
            outside.err().map(|reason| reason.to_string()).as_deref(),
            Some("198.18.99.0/24 is not in alpha's IRR prefixes (AS-SET or prefix list)")
        );
        // Covered but longer than the entry allows.
        let too_specific = irr(
            &prefix("198.18.16.0/25"),
            &route(&[64501], "198.18.0.11"),
            &neighbor,
        );
        assert_eq!(
            too_specific.map_err(|r| r.label()),
            Err("not_in_irr_prefixes")
        );
        let foreign = irr(
            &prefix("198.18.16.0/24"),
            &route(&[64501, 64999], "198.18.0.11"),
            &neighbor,
        );
        assert_eq!(
            foreign.err().map(|reason| reason.to_string()).as_deref(),
            Some("origin AS64999 is not in alpha's IRR origin ASNs (AS-SET or origin list)")
        );
        // A path ending in an AS_SET has no single origin: refused when origins are checked.
        let mut set_origin = route(&[64501], "198.18.0.11");
        set_origin.as_path = AsPath {
            segments: vec![
                Segment {
                    kind: SegmentKind::Sequence,
                    asns: vec![64501],
                },
                Segment {
                    kind: SegmentKind::Set,
                    asns: vec![64501],
                },
            ],
        };
        assert_eq!(
            irr(&prefix("198.18.16.0/24"), &set_origin, &neighbor).map_err(|r| r.to_string()),
            Err(
                "the AS path ends in an AS_SET, so its origin cannot be in alpha's IRR origin \
                 ASNs"
                    .to_owned()
            )
        );
    }

    #[test]
    fn each_half_applies_only_when_its_list_exists() {
        let prefixes_only = with_irr(Some(&["198.18.16.0/20"]), None);
        assert_eq!(
            irr(
                &prefix("198.18.16.0/20"),
                &route(&[64501, 64999], "198.18.0.11"),
                &prefixes_only
            ),
            Ok(())
        );
        let origins_only = with_irr(None, Some(&[64501]));
        assert_eq!(
            irr(
                &prefix("198.18.99.0/24"),
                &route(&[64501], "198.18.0.11"),
                &origins_only
            ),
            Ok(())
        );
    }
}
