//! RPKI for the route server: the validated payload ([`VrpSet`]: VRPs and ASPA records), route
//! origin validation (RFC 6811) and ASPA verification as one pure import filter step
//! ([`filter`]), the JSON export reader ([`json`]) and the RTR client task with cache failover
//! ([`rtr`], the only part with sockets and clocks). The RIB task holds the set in force and
//! judges stored routes again when it changes; this module must not touch the RIB.

pub mod aspa;
pub mod json;
pub mod rtr;
mod vrps;

use std::sync::Arc;

use vixp_bgp::{Attributes, Prefix};
use vixp_fabric::{AspaAction, InvalidAction, RpkiPolicy};

pub use aspa::{AspaState, verify_upstream};
pub use vrps::{Aspas, OriginState, Vrp, VrpSet};

use crate::policy::Reason;

/// The RPKI import step (issue 5 item 1: after IRR, before the community count). Origin
/// validation first: an invalid route is refused with [`Reason::RpkiInvalid`] when
/// `policy.invalid` is `reject`. Then, when `policy.aspa` is not `off`, ASPA verification of
/// the path as received from the member (upstream): an invalid path is refused with
/// [`Reason::AspaInvalid`] when it is `reject`. Without payload (`vrps` is `None`: no cache
/// has answered and no file was read) every route is not found and passes.
pub fn filter(
    prefix: &Prefix,
    attributes: &Attributes,
    vrps: Option<&Arc<VrpSet>>,
    policy: &RpkiPolicy,
) -> Result<(), Reason> {
    let Some(vrps) = vrps else {
        return Ok(());
    };
    let origin = attributes.as_path.origin_asn();
    if let OriginState::Invalid(covering) = vrps.validate(prefix, origin)
        && policy.invalid == InvalidAction::Reject
    {
        return Err(Reason::RpkiInvalid {
            prefix: *prefix,
            origin,
            covering,
        });
    }
    if policy.aspa == AspaAction::Reject
        && let AspaState::Invalid { customer, next } =
            verify_upstream(&attributes.as_path, vrps.aspas())
    {
        return Err(Reason::AspaInvalid { customer, next });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use vixp_fabric::RtrTimers;

    use super::*;
    use crate::policy::tests::route;

    fn policy(invalid: InvalidAction, aspa: AspaAction) -> RpkiPolicy {
        RpkiPolicy {
            caches: Vec::new(),
            timers: RtrTimers::default(),
            vrp_file: None,
            invalid,
            aspa,
        }
    }

    fn lab_vrps() -> Arc<VrpSet> {
        let vrp = Vrp {
            prefix: "198.18.64.0/18".parse().expect("valid"),
            max_length: 24,
            asn: 64510,
        };
        let mut aspas = Aspas::default();
        aspas.insert(64510, vec![64520]);
        Arc::new(VrpSet::new([vrp], aspas))
    }

    #[test]
    fn invalid_is_refused_valid_and_not_found_pass() {
        let vrps = lab_vrps();
        let reject = policy(InvalidAction::Reject, AspaAction::Off);
        let prefix: Prefix = "198.18.65.0/24".parse().expect("valid");
        assert_eq!(
            filter(
                &prefix,
                &route(&[64501, 64510], "198.18.0.11"),
                Some(&vrps),
                &reject
            ),
            Ok(())
        );
        let refused = filter(
            &prefix,
            &route(&[64501], "198.18.0.11"),
            Some(&vrps),
            &reject,
        )
        .expect_err("origin 64501 is not authorised");
        assert_eq!(refused.label(), "rpki_invalid");
        assert_eq!(refused.euro_ix_code(), 13);
        assert_eq!(
            refused.to_string(),
            "RPKI invalid: origin AS64501 of 198.18.65.0/24 is not authorised by the VRPs \
             covering it (198.18.64.0/18-24 AS64510)"
        );
        let elsewhere: Prefix = "198.18.10.0/24".parse().expect("valid");
        assert_eq!(
            filter(
                &elsewhere,
                &route(&[64501], "198.18.0.11"),
                Some(&vrps),
                &reject
            ),
            Ok(())
        );
        assert_eq!(
            filter(&prefix, &route(&[64501], "198.18.0.11"), None, &reject),
            Ok(()),
            "no payload: not found"
        );
        let tag = policy(InvalidAction::Tag, AspaAction::Off);
        assert_eq!(
            filter(&prefix, &route(&[64501], "198.18.0.11"), Some(&vrps), &tag),
            Ok(())
        );
    }

    #[test]
    fn aspa_reject_refuses_a_leak_and_tag_or_off_pass_it() {
        let vrps = lab_vrps();
        // 64510's ASPA names 64520 only: member 64501 leaks it.
        let prefix: Prefix = "198.18.65.0/24".parse().expect("valid");
        let leak = route(&[64501, 64510], "198.18.0.11");
        let refused = filter(
            &prefix,
            &leak,
            Some(&vrps),
            &policy(InvalidAction::Reject, AspaAction::Reject),
        )
        .expect_err("leak");
        assert_eq!(
            refused,
            Reason::AspaInvalid {
                customer: 64510,
                next: 64501
            }
        );
        assert_eq!(refused.label(), "aspa_invalid");
        for action in [AspaAction::Tag, AspaAction::Off] {
            assert_eq!(
                filter(
                    &prefix,
                    &leak,
                    Some(&vrps),
                    &policy(InvalidAction::Reject, action)
                ),
                Ok(())
            );
        }
    }
}
