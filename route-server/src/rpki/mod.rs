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

use vixp_bgp::{Attributes, LargeCommunity, Prefix};
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

/// The Euro-IX informational block of RPKI origin validation states (`rs:1000:x`, the Euro-IX
/// large community list as IXP Manager implements it).
pub const INFO_RPKI: u32 = 1000;
/// `rs:1000:1`: RPKI valid.
pub const INFO_RPKI_VALID: u32 = 1;
/// `rs:1000:2`: RPKI unknown (not found: no VRP covers the prefix).
pub const INFO_RPKI_NOT_FOUND: u32 = 2;
/// `rs:1000:3`: RPKI not checked (no payload loaded yet: no cache has answered, no file).
pub const INFO_RPKI_NOT_CHECKED: u32 = 3;
/// `rs:1000:4`: RPKI invalid, accepted because the policy only tags (`invalid: tag`).
pub const INFO_RPKI_INVALID: u32 = 4;
/// vixp's informational block for the ASPA verification state (`rs:1002:x`, same numbering as
/// the RPKI block: 1 valid, 2 unknown, 4 invalid); the Euro-IX list has no ASPA values yet.
pub const INFO_ASPA: u32 = 1002;

/// The informational large communities of an accepted route (issue 5 item 1: "valid/unknown
/// tagged"): its RPKI origin validation state (`rs:1000:1` valid, `:2` not found, `:3` not
/// checked, `:4` invalid when `invalid: tag` let it through) and, when `aspa` is not `off`,
/// its ASPA state (`rs:1002:1` valid, `:2` unknown, `:4` invalid when `aspa: tag`). They are
/// added to the route as the looking glass and the API show it, never to what clients receive
/// (as arouteserver's `rpki_bgp_origin_validation_*` communities: for troubleshooting and
/// looking glasses only).
pub fn informational(
    prefix: &Prefix,
    attributes: &Attributes,
    vrps: Option<&VrpSet>,
    policy: &RpkiPolicy,
    route_server_asn: u32,
) -> Vec<LargeCommunity> {
    let Some(vrps) = vrps else {
        return vec![LargeCommunity(
            route_server_asn,
            INFO_RPKI,
            INFO_RPKI_NOT_CHECKED,
        )];
    };
    let origin = match vrps.validate(prefix, attributes.as_path.origin_asn()) {
        OriginState::Valid => INFO_RPKI_VALID,
        OriginState::NotFound => INFO_RPKI_NOT_FOUND,
        OriginState::Invalid(_) => INFO_RPKI_INVALID,
    };
    let mut communities = vec![LargeCommunity(route_server_asn, INFO_RPKI, origin)];
    if policy.aspa != AspaAction::Off {
        let aspa = match verify_upstream(&attributes.as_path, vrps.aspas()) {
            AspaState::Valid => 1,
            AspaState::Unknown => 2,
            AspaState::Invalid { .. } => 4,
        };
        communities.push(LargeCommunity(route_server_asn, INFO_ASPA, aspa));
    }
    communities
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
    fn accepted_routes_carry_the_informational_state_communities() {
        let vrps = lab_vrps();
        let prefix: Prefix = "198.18.65.0/24".parse().expect("valid");
        let elsewhere: Prefix = "198.18.10.0/24".parse().expect("valid");
        let tag = policy(InvalidAction::Tag, AspaAction::Off);
        let info = |prefix: &Prefix, path: &[u32], vrps: Option<&VrpSet>, policy: &RpkiPolicy| {
            informational(prefix, &route(path, "198.18.0.11"), vrps, policy, 64500)
        };
        assert_eq!(
            info(&prefix, &[64501, 64510], Some(&vrps), &tag),
            vec![LargeCommunity(64500, 1000, 1)]
        );
        assert_eq!(
            info(&elsewhere, &[64501], Some(&vrps), &tag),
            vec![LargeCommunity(64500, 1000, 2)]
        );
        assert_eq!(
            info(&prefix, &[64501], None, &tag),
            vec![LargeCommunity(64500, 1000, 3)],
            "no payload yet: not checked"
        );
        assert_eq!(
            info(&prefix, &[64501], Some(&vrps), &tag),
            vec![LargeCommunity(64500, 1000, 4)]
        );
        // ASPA: 64510 names 64520 as its only provider.
        let aspa = policy(InvalidAction::Reject, AspaAction::Tag);
        assert_eq!(
            info(&prefix, &[64520, 64510], Some(&vrps), &aspa),
            vec![
                LargeCommunity(64500, 1000, 1),
                LargeCommunity(64500, 1002, 1)
            ]
        );
        assert_eq!(
            info(&prefix, &[64501, 64510], Some(&vrps), &aspa),
            vec![
                LargeCommunity(64500, 1000, 1),
                LargeCommunity(64500, 1002, 4)
            ]
        );
        assert_eq!(
            info(&elsewhere, &[64501, 64999], Some(&vrps), &aspa),
            vec![
                LargeCommunity(64500, 1000, 2),
                LargeCommunity(64500, 1002, 2)
            ]
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
