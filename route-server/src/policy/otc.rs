//! The OTC (Only to Customer) ingress rule for route-server clients (RFC 9234 section 5): a
//! route that arrives from an RS-client already carrying OTC was learnt by the member from a
//! provider, a peer or a route server, so announcing it to the route server is a route leak.
//! Every member is an RS-client of the route server, whether or not its router announces the
//! BGP Role capability. Owns that rule; must not add OTC on export (`crate::rib::well_known`
//! does) nor keep state.

use vixp_bgp::Attributes;
use vixp_bgp::role::OTC_ATTRIBUTE;

use super::Neighbor;
use super::reason::Reason;

/// The OTC attribute's value (the ASN that set it), when the route carries one: `Some(None)`
/// for an OTC whose value is not four octets.
pub fn otc_of(attributes: &Attributes) -> Option<Option<u32>> {
    attributes
        .other
        .iter()
        .find(|raw| raw.type_code == OTC_ATTRIBUTE)
        .map(|raw| {
            <[u8; 4]>::try_from(raw.value.as_slice())
                .ok()
                .map(u32::from_be_bytes)
        })
}

/// RFC 9234 section 5, ingress rule 1: a route with OTC from an RS-client is ineligible
/// (`otc_leak`, code 18).
pub fn otc(attributes: &Attributes, neighbor: &Neighbor) -> Result<(), Reason> {
    match otc_of(attributes) {
        None => Ok(()),
        Some(otc) => Err(Reason::OtcLeak {
            otc,
            member: neighbor.name.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vixp_bgp::RawAttribute;

    use super::*;
    use crate::policy::tests::{alpha, lab_lan, lab_policy, route};
    use crate::policy::{Verdict, import};

    fn with_otc(value: &[u8]) -> Attributes {
        let mut attributes = route(&[64501, 64510], "198.18.0.11");
        attributes.other.push(RawAttribute {
            flags: 0xc0,
            type_code: OTC_ATTRIBUTE,
            value: value.to_vec(),
        });
        attributes
    }

    #[test]
    fn a_route_with_otc_from_a_member_is_a_leak() {
        let verdict = import(
            &"198.18.10.0/24".parse().expect("valid"),
            &with_otc(&64999u32.to_be_bytes()),
            &alpha(),
            &lab_policy(),
            &lab_lan(),
        );
        let expected = Reason::OtcLeak {
            otc: Some(64999),
            member: Arc::from("alpha"),
        };
        assert_eq!(verdict, Verdict::Reject(expected.clone()));
        assert_eq!(expected.label(), "otc_leak");
        assert_eq!(expected.euro_ix_code(), 18);
        assert!(expected.to_string().contains("AS64999"), "{expected}");
    }

    #[test]
    fn routes_without_otc_pass_and_odd_lengths_are_still_leaks() {
        assert_eq!(otc(&route(&[64501], "198.18.0.11"), &alpha()), Ok(()));
        assert_eq!(otc_of(&with_otc(&[1, 2])), Some(None));
        assert!(otc(&with_otc(&[1, 2]), &alpha()).is_err());
    }
}
