//! The raw shape of fabric.yaml v1: exactly the keys a file may hold, every value kept with
//! its line. Only the shape is checked here (unknown keys, maps versus lists); the rules of
//! each value belong to `convert`, so that all of them can be reported at once.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
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
    pub policy: Option<Spanned<RawPolicy>>,
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
    pub blackhole: Field,
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
    pub prefixes_file: Field,
    pub asns_file: Field,
    pub prefixes: ScalarList,
    pub origins: ScalarList,
}

/// `policy:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub next_hop: Field,
    pub prefix_length: Option<Spanned<RawPrefixLength>>,
    pub max_as_path_length: Field,
    pub max_communities: Field,
    pub transit_free_asns: ScalarList,
    pub never_via_route_servers_asns: ScalarList,
    pub bogon_prefixes: Option<Spanned<RawBogons>>,
    pub allow_prefixes: ScalarList,
    pub reject_private_asns: Field,
    pub max_prefix_action: Field,
    pub max_prefix_restart_after: Field,
    pub rpki: Option<Spanned<super::convert::RawRpki>>,
    pub blackhole: Option<Spanned<RawBlackhole>>,
    pub bgp_role: Field,
}

/// `policy.blackhole:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlackhole {
    pub next_hop_ipv4: Field,
    pub next_hop_ipv6: Field,
}

/// `policy.prefix_length:`, each family a `[min, max]` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrefixLength {
    pub ipv4: ScalarList,
    pub ipv6: ScalarList,
}

/// `policy.bogon_prefixes:`: a keyword (`default`) or a list of prefixes.
#[derive(Debug)]
pub(crate) enum RawBogons {
    /// A single value, which only `default` makes valid.
    Keyword(Scalar),
    /// A list of prefixes, each with its line.
    List(Vec<Spanned<Scalar>>),
}

impl<'de> Deserialize<'de> for RawBogons {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BogonsVisitor)
    }
}

/// Accepts a scalar or a list of scalars.
struct BogonsVisitor;

impl<'de> Visitor<'de> for BogonsVisitor {
    type Value = RawBogons;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`default` or a list of prefixes")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Integer(i128::from(value))))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Integer(i128::from(value))))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Float(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Text(value.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawBogons, E> {
        Ok(RawBogons::Keyword(Scalar::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawBogons, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<RawBogons, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element::<Spanned<Scalar>>()? {
            items.push(item);
        }
        Ok(RawBogons::List(items))
    }
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
    fn bogons_are_a_keyword_or_a_list() {
        let raw: RawPolicy =
            serde_saphyr::from_str("bogon_prefixes: default\n").expect("test input is valid");
        assert!(matches!(
            raw.bogon_prefixes.map(|bogons| bogons.value),
            Some(RawBogons::Keyword(Scalar::Text(word))) if word == "default"
        ));
        let raw: RawPolicy =
            serde_saphyr::from_str("bogon_prefixes:\n  - 10.0.0.0/8\n  - fc00::/7\n")
                .expect("test input is valid");
        let Some(RawBogons::List(items)) = raw.bogon_prefixes.map(|bogons| bogons.value) else {
            panic!("a list is read as a list");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].referenced.line(), 3);
        let map: Result<RawPolicy, _> = serde_saphyr::from_str("bogon_prefixes: {a: 1}\n");
        assert!(map.is_err());
    }

    #[test]
    fn spanned_fields_keep_their_line() {
        let raw: RawLan = serde_saphyr::from_str("ipv4: 198.18.0.0/24\n\nipv6: fd00::/64\n")
            .expect("test input is valid");
        let ipv6 = raw.ipv6.expect("ipv6 is present");
        assert_eq!(ipv6.referenced.line(), 3);
    }
}
