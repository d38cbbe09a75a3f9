//! The raw shape of fabric.yaml v1: exactly the keys a file may hold, every value kept with
//! its line. Only the shape is checked here (unknown keys, maps versus lists); the rules of
//! each value belong to `convert`, so that all of them can be reported at once.

use serde::Deserialize;
use serde_saphyr::Spanned;

pub(crate) use crate::yaml::{Field, Scalar, ScalarList};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFabric {
    pub version: Field,
    pub exchange: Option<Spanned<RawExchange>>,
    pub lan: Option<Spanned<RawLan>>,
    pub route_servers: Option<Spanned<Vec<Spanned<RawRouteServer>>>>,
    pub members: Option<Spanned<Vec<Spanned<RawMember>>>>,
}

/// `exchange:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExchange {
    pub name: Field,
    pub description: Field,
    pub ixf_id: Field,
    pub contact: Field,
}

/// `lan:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLan {
    pub ipv4: Field,
    pub ipv6: Field,
}

/// One entry of `route_servers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteServer {
    pub name: Field,
    pub asn: Field,
    pub router_id: Field,
    pub ipv4: Field,
    pub ipv6: Field,
    pub public_key: Field,
    pub endpoint: Field,
    pub bgp: Option<Spanned<RawBgp>>,
    pub http: Field,
}

/// `route_servers[N].bgp:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBgp {
    pub port: Field,
    pub hold_time: Field,
    pub connect_retry: Field,
    pub active_open: Field,
    pub listen: ScalarList,
}

/// One entry of `members:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMember {
    pub name: Field,
    pub asn: Field,
    pub description: Field,
    pub ipv4: Field,
    pub ipv6: Field,
    pub public_key: Field,
    pub endpoint: Field,
    pub max_prefix: Option<Spanned<RawMaxPrefix>>,
    pub irr: Option<Spanned<RawIrr>>,
    pub contact: Field,
}

/// `members[N].max_prefix:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaxPrefix {
    pub ipv4: Field,
    pub ipv6: Field,
}

/// `members[N].irr:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIrr {
    pub as_set: Field,
    pub sources: ScalarList,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Scalar {
        let parsed: Spanned<Scalar> =
            serde_saphyr::from_str(text).expect("test input is valid YAML");
        parsed.value
    }

    #[test]
    fn scalars_follow_the_yaml_core_schema() {
        assert_eq!(scalar("64500"), Scalar::Integer(64500));
        assert_eq!(scalar("-1"), Scalar::Integer(-1));
        assert_eq!(scalar("true"), Scalar::Bool(true));
        assert_eq!(scalar("\"64500\""), Scalar::Text("64500".to_owned()));
        assert_eq!(
            scalar("fd00:198:18::1"),
            Scalar::Text("fd00:198:18::1".to_owned())
        );
        assert_eq!(scalar("198.18.0.1"), Scalar::Text("198.18.0.1".to_owned()));
        assert_eq!(scalar("~"), Scalar::Null);
    }

    #[test]
    fn scalar_display_quotes_text_only() {
        assert_eq!(
            Scalar::Text("198.18.0.0".to_owned()).to_string(),
            "\"198.18.0.0\""
        );
        assert_eq!(Scalar::Integer(7).to_string(), "7");
        assert_eq!(Scalar::Null.to_string(), "nothing");
    }

    #[test]
    fn a_map_is_not_a_scalar() {
        let result: Result<Spanned<Scalar>, _> = serde_saphyr::from_str("a: 1\n");
        assert!(result.is_err());
    }

    #[test]
    fn spanned_fields_keep_their_line() {
        let raw: RawLan = serde_saphyr::from_str("ipv4: 198.18.0.0/24\n\nipv6: fd00::/64\n")
            .expect("test input is valid");
        let ipv6 = raw.ipv6.expect("ipv6 is present");
        assert_eq!(ipv6.referenced.line(), 3);
    }
}
