//! BGP Roles (RFC 9234 section 4): the role a speaker announces in the BGP Role capability
//! (code 9) and the check of the peer's role against ours. Owns the role values and the
//! compatibility table; must not decide which role a session has (the driver configures it)
//! nor touch the OTC attribute (route policy does, section 5).

use crate::wire::Notification;

/// BGP Role capability code (IANA "Capability Codes", RFC 9234 section 4.1).
pub const ROLE_CAPABILITY: u8 = 9;
/// OPEN Message Error subcode Role Mismatch (RFC 9234 section 4.2).
pub const ROLE_MISMATCH: u8 = 11;
/// The OTC (Only to Customer) path attribute type code (RFC 9234 section 5).
pub const OTC_ATTRIBUTE: u8 = 35;

/// A speaker's role on an eBGP session, with its capability value (RFC 9234 section 4.1,
/// Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Provider (0): the peer is its customer.
    Provider,
    /// Route Server (1): the peer is its client.
    RouteServer,
    /// Route Server client (2).
    RouteServerClient,
    /// Customer (3): the peer is its provider.
    Customer,
    /// Lateral peer (4).
    Peer,
}

impl Role {
    /// The capability value.
    pub fn value(self) -> u8 {
        match self {
            Role::Provider => 0,
            Role::RouteServer => 1,
            Role::RouteServerClient => 2,
            Role::Customer => 3,
            Role::Peer => 4,
        }
    }

    /// The role of a capability value; `None` for the values RFC 9234 leaves unassigned.
    pub fn from_value(value: u8) -> Option<Role> {
        [
            Role::Provider,
            Role::RouteServer,
            Role::RouteServerClient,
            Role::Customer,
            Role::Peer,
        ]
        .into_iter()
        .find(|role| role.value() == value)
    }

    /// The one role a peer may have when this side has `self` (RFC 9234 section 4.2, Table 2).
    pub fn expected_peer(self) -> Role {
        match self {
            Role::Provider => Role::Customer,
            Role::Customer => Role::Provider,
            Role::RouteServer => Role::RouteServerClient,
            Role::RouteServerClient => Role::RouteServer,
            Role::Peer => Role::Peer,
        }
    }

    /// The RFC's name of the role.
    pub fn name(self) -> &'static str {
        match self {
            Role::Provider => "Provider",
            Role::RouteServer => "RS",
            Role::RouteServerClient => "RS-Client",
            Role::Customer => "Customer",
            Role::Peer => "Peer",
        }
    }
}

/// The role this side announces and how it treats a peer that announces none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RolePolicy {
    /// Our role, sent in the BGP Role capability.
    pub local: Role,
    /// "Strict mode" (RFC 9234 section 4.2): a peer without the capability is refused with
    /// Role Mismatch. Otherwise such a peer is accepted.
    pub strict: bool,
}

impl RolePolicy {
    /// Judges the role values the peer sent in its OPEN (every BGP Role capability, in
    /// order): `Ok` with the peer's role (`None`: it sent none and we are not strict), or the
    /// Role Mismatch NOTIFICATION (OPEN Message Error, subcode 11) when the values differ from
    /// each other, the one role compatible with ours, or are missing in strict mode.
    pub fn check(self, peer_values: &[u8]) -> Result<Option<Role>, Notification> {
        let mismatch = || Notification::new(2, ROLE_MISMATCH, Vec::new());
        let Some(first) = peer_values.first() else {
            return if self.strict {
                Err(mismatch())
            } else {
                Ok(None)
            };
        };
        // Several capabilities with different values: Role Mismatch (section 4.2).
        if peer_values.iter().any(|value| value != first) {
            return Err(mismatch());
        }
        match Role::from_value(*first) {
            Some(role) if role == self.local.expected_peer() => Ok(Some(role)),
            _ => Err(mismatch()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RS: RolePolicy = RolePolicy {
        local: Role::RouteServer,
        strict: false,
    };

    #[test]
    fn values_follow_rfc_9234_table_1() {
        let values: Vec<(u8, &str)> = (0..=5)
            .filter_map(Role::from_value)
            .map(|role| (role.value(), role.name()))
            .collect();
        assert_eq!(
            values,
            [
                (0, "Provider"),
                (1, "RS"),
                (2, "RS-Client"),
                (3, "Customer"),
                (4, "Peer")
            ]
        );
        assert_eq!(Role::from_value(5), None);
    }

    #[test]
    fn a_route_server_accepts_only_rs_clients() {
        assert_eq!(RS.check(&[2]), Ok(Some(Role::RouteServerClient)));
        for wrong in [0, 1, 3, 4, 5, 255] {
            let refusal = RS.check(&[wrong]).expect_err("mismatch");
            assert_eq!((refusal.code, refusal.subcode), (2, 11), "role {wrong}");
            assert_eq!(
                refusal.describe(),
                Notification::new(2, 11, vec![]).describe()
            );
        }
    }

    #[test]
    fn no_capability_is_fine_unless_strict() {
        assert_eq!(RS.check(&[]), Ok(None));
        let strict = RolePolicy { strict: true, ..RS };
        assert_eq!(strict.check(&[]).map_err(|n| n.subcode), Err(11));
        assert_eq!(strict.check(&[2]), Ok(Some(Role::RouteServerClient)));
    }

    #[test]
    fn repeated_capabilities_must_agree() {
        assert_eq!(RS.check(&[2, 2]), Ok(Some(Role::RouteServerClient)));
        assert_eq!(RS.check(&[2, 3]).map_err(|n| n.subcode), Err(11));
    }

    #[test]
    fn every_role_expects_its_counterpart() {
        for role in [
            Role::Provider,
            Role::RouteServer,
            Role::RouteServerClient,
            Role::Customer,
            Role::Peer,
        ] {
            assert_eq!(role.expected_peer().expected_peer(), role);
        }
    }
}
