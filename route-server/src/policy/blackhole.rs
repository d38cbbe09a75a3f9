//! BLACKHOLE routes (RFC 7999) at import: who may send them and for which prefixes. A route
//! tagged with the well-known community 65535:666 is accepted only from a member that opted in
//! (`members[N].blackhole: true`) and only for its own space, the prefixes of its IRR data
//! (any length inside them, down to /32 and /128). Such a route skips the longest-prefix
//! check, nothing else. Owns those rules; must not change the route (NO_EXPORT and the next-hop
//! rewrite are applied on export, `crate::rib::well_known`) nor keep state.
//!
//! A member without IRR prefix data cannot blackhole: the route server would have no record of
//! what its own space is (the refusal says so).

use vixp_bgp::{Attributes, Prefix};
use vixp_fabric::{BLACKHOLE, Policy};

use super::Neighbor;
use super::reason::{BlackholeRefusal, Reason};

/// Whether the route carries the BLACKHOLE community (RFC 7999 section 5).
pub fn is_blackhole(attributes: &Attributes) -> bool {
    attributes.communities.contains(&BLACKHOLE)
}

/// A BLACKHOLE route must come from a member that opted in and lie inside the member's IRR
/// prefixes (Euro-IX code 17 `blackhole_not_allowed`, or 9 `not_in_irr_prefixes` outside its
/// space). Routes without the community pass.
pub fn blackhole(
    prefix: &Prefix,
    attributes: &Attributes,
    neighbor: &Neighbor,
) -> Result<(), Reason> {
    if !is_blackhole(attributes) {
        return Ok(());
    }
    let refuse = |refusal| Reason::BlackholeNotAllowed {
        member: neighbor.name.clone(),
        refusal,
    };
    if !neighbor.blackhole {
        return Err(refuse(BlackholeRefusal::NotOptedIn));
    }
    let Some(prefixes) = neighbor.irr.as_ref().and_then(|irr| irr.prefixes.as_ref()) else {
        return Err(refuse(BlackholeRefusal::NoIrrPrefixes));
    };
    if !prefixes.contains_within(prefix) {
        return Err(Reason::NotInIrrPrefixes {
            prefix: *prefix,
            member: neighbor.name.clone(),
        });
    }
    Ok(())
}

/// The prefix-length check as it applies to a route: a BLACKHOLE route may be as long as /32
/// or /128 (RFC 7999 section 3.2) but no shorter than the policy's minimum; any other route
/// gets [`super::filters::prefix_length`]. Whether the sender may blackhole at all is
/// [`blackhole`]'s question, asked next.
pub fn prefix_length(
    prefix: &Prefix,
    attributes: &Attributes,
    policy: &Policy,
) -> Result<(), Reason> {
    if !is_blackhole(attributes) {
        return super::filters::prefix_length(prefix, policy);
    }
    let range = policy.prefix_length.for_prefix(prefix);
    if prefix.prefix_len() < range.min {
        return Err(Reason::PrefixTooShort {
            family: vixp_bgp::Family::of(prefix),
            length: prefix.prefix_len(),
            min: range.min,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vixp_fabric::{IrrData, PrefixRange, PrefixSet};

    use super::*;
    use crate::policy::tests::{alpha, lab_lan, lab_policy, route};
    use crate::policy::{Verdict, import};

    fn prefix(text: &str) -> Prefix {
        text.parse().expect("test prefix is valid")
    }

    fn tagged(path: &[u32], next_hop: &str) -> Attributes {
        let mut attributes = route(path, next_hop);
        attributes.communities.push(BLACKHOLE);
        attributes
    }

    /// Alpha, opted in, with IRR prefixes 198.18.10.0/23 (le 24) and fd00:10::/32, origins
    /// AS64501 and AS64510.
    fn opted_in() -> Neighbor {
        let data = IrrData {
            prefixes: Some(PrefixSet::new(
                ["198.18.10.0/23 le 24", "fd00:10::/32 le 48"]
                    .iter()
                    .map(|text| text.parse::<PrefixRange>().expect("valid range")),
            )),
            origins: Some(vixp_fabric::AsnSet::new(
                [64501, 64510].map(vixp_fabric::Asn),
            )),
        };
        Neighbor {
            blackhole: true,
            irr: Some(Arc::new(data)),
            ..alpha()
        }
    }

    fn judge(neighbor: &Neighbor, prefix_text: &str, attributes: &Attributes) -> Verdict {
        import(
            &prefix(prefix_text),
            attributes,
            neighbor,
            &lab_policy(),
            &lab_lan(),
        )
    }

    #[test]
    fn an_opted_in_members_host_routes_in_its_own_space_are_accepted() {
        let neighbor = opted_in();
        let v4 = tagged(&[64501], "198.18.0.11");
        assert_eq!(judge(&neighbor, "198.18.10.7/32", &v4), Verdict::Accept);
        assert_eq!(judge(&neighbor, "198.18.11.0/28", &v4), Verdict::Accept);
        let v6 = tagged(&[64501], "fd00:198:18::11");
        assert_eq!(judge(&neighbor, "fd00:10:1::7/128", &v6), Verdict::Accept);
        // A customer's origin listed in the IRR data is fine too.
        let customer = tagged(&[64501, 64510], "198.18.0.11");
        assert_eq!(
            judge(&neighbor, "198.18.10.7/32", &customer),
            Verdict::Accept
        );
    }

    #[test]
    fn the_same_host_route_without_the_community_is_too_long() {
        let verdict = judge(
            &opted_in(),
            "198.18.10.7/32",
            &route(&[64501], "198.18.0.11"),
        );
        assert_eq!(verdict.reason().map(Reason::label), Some("prefix_too_long"));
    }

    #[test]
    fn a_member_that_did_not_opt_in_is_refused_with_its_own_reason() {
        let neighbor = Neighbor {
            blackhole: false,
            ..opted_in()
        };
        let verdict = judge(
            &neighbor,
            "198.18.10.7/32",
            &tagged(&[64501], "198.18.0.11"),
        );
        assert_eq!(
            verdict,
            Verdict::Reject(Reason::BlackholeNotAllowed {
                member: Arc::from("alpha"),
                refusal: BlackholeRefusal::NotOptedIn,
            })
        );
        let reason = verdict.reason().expect("refused");
        assert_eq!(reason.euro_ix_code(), 17);
        assert!(reason.to_string().contains("has not opted in"), "{reason}");
    }

    #[test]
    fn an_opted_in_member_without_irr_prefixes_cannot_blackhole() {
        let neighbor = Neighbor {
            blackhole: true,
            ..alpha()
        };
        let verdict = judge(
            &neighbor,
            "198.18.10.7/32",
            &tagged(&[64501], "198.18.0.11"),
        );
        assert_eq!(
            verdict.reason(),
            Some(&Reason::BlackholeNotAllowed {
                member: Arc::from("alpha"),
                refusal: BlackholeRefusal::NoIrrPrefixes,
            })
        );
    }

    #[test]
    fn other_space_and_other_filters_still_refuse() {
        let neighbor = opted_in();
        let v4 = tagged(&[64501], "198.18.0.11");
        // Outside its IRR prefixes.
        assert_eq!(
            judge(&neighbor, "198.18.12.7/32", &v4)
                .reason()
                .map(Reason::label),
            Some("not_in_irr_prefixes")
        );
        // Another member's next hop.
        assert_eq!(
            judge(
                &neighbor,
                "198.18.10.7/32",
                &tagged(&[64501], "198.18.0.12")
            )
            .reason()
            .map(Reason::label),
            Some("next_hop_not_peer")
        );
        // A bogon host route.
        assert_eq!(
            judge(&neighbor, "10.0.0.1/32", &v4)
                .reason()
                .map(Reason::label),
            Some("bogon_prefix")
        );
        // An origin outside its IRR origins.
        assert_eq!(
            judge(
                &neighbor,
                "198.18.10.7/32",
                &tagged(&[64501, 64999], "198.18.0.11")
            )
            .reason()
            .map(Reason::label),
            Some("origin_not_in_irr")
        );
        // Shorter than the policy's minimum.
        assert_eq!(
            prefix_length(&prefix("198.0.0.0/7"), &v4, &lab_policy())
                .err()
                .map(|reason| reason.label()),
            Some("prefix_too_short")
        );
    }
}
