//! Conversion of the `policy:` block: the route server's import policy, every field optional
//! with the IXP defaults of [`Policy::default`]. Must not look at members or route servers.

use ipnet::{Ipv4Net, Ipv6Net};
use serde_saphyr::Spanned;

use super::{Converter, line_of};
use crate::error::ProblemKind;
use crate::model::Asn;
use crate::parse::raw::{RawBlackhole, RawBogons, RawPolicy, RawPrefixLength, Scalar, ScalarList};
use crate::parse::values;
use crate::policy::{
    BgpRolePolicy, BlackholePolicy, BogonPrefixes, DEFAULT_MAX_PREFIX_RESTART_MINUTES,
    MaxPrefixAction, NextHopPolicy, Policy, PrefixLengthRange, PrefixLengths,
};

/// Longest `max_as_path_length` accepted.
const MAX_AS_PATH_LENGTH_LIMIT: i128 = 255;
/// Largest `max_communities` accepted: more than one UPDATE can carry.
const MAX_COMMUNITIES_LIMIT: i128 = 65_535;

impl Converter<'_> {
    /// `policy:`; `None` when anything in it is wrong (and reported). `lan` is the peering
    /// LAN, where blackhole next hops must lie (`None` parts were refused already).
    pub(super) fn policy(
        &mut self,
        raw: &Spanned<RawPolicy>,
        lan: (Option<Ipv4Net>, Option<Ipv6Net>),
    ) -> Option<Policy> {
        let problems_before = self.problems.len();
        let raw = &raw.value;
        let defaults = Policy::default();

        let next_hop = self
            .optional(&raw.next_hop, "policy.next_hop", next_hop_policy)
            .unwrap_or(defaults.next_hop);
        let prefix_length = match &raw.prefix_length {
            Some(lengths) => self.prefix_lengths(lengths),
            None => defaults.prefix_length,
        };
        let max_as_path_length = self
            .optional(
                &raw.max_as_path_length,
                "policy.max_as_path_length",
                |scalar| {
                    values::integer(
                        scalar,
                        1..=MAX_AS_PATH_LENGTH_LIMIT,
                        "a number of ASNs like 32",
                        "1-255 ASNs",
                    )
                    .map(|length| u32::try_from(length).unwrap_or(u32::MAX))
                },
            )
            .unwrap_or(defaults.max_as_path_length);
        let max_communities = self
            .optional(&raw.max_communities, "policy.max_communities", |scalar| {
                values::integer(
                    scalar,
                    0..=MAX_COMMUNITIES_LIMIT,
                    "a number of communities like 100",
                    "0 (no limit) to 65535 communities",
                )
                .map(|count| u32::try_from(count).unwrap_or(u32::MAX))
            })
            .unwrap_or(defaults.max_communities);
        let transit_free_asns = self
            .scalar_list(
                &raw.transit_free_asns,
                "policy.transit_free_asns",
                values::asn,
            )
            .unwrap_or(defaults.transit_free_asns);
        let never_via_route_servers_asns: Vec<Asn> = self
            .scalar_list(
                &raw.never_via_route_servers_asns,
                "policy.never_via_route_servers_asns",
                values::asn,
            )
            .unwrap_or_default();
        let bogon_prefixes = match &raw.bogon_prefixes {
            Some(bogons) => self.bogons(bogons),
            None => BogonPrefixes::Default,
        };
        let allow_prefixes = self
            .scalar_list(
                &raw.allow_prefixes,
                "policy.allow_prefixes",
                values::route_prefix,
            )
            .unwrap_or_default();
        let reject_private_asns = self
            .optional(
                &raw.reject_private_asns,
                "policy.reject_private_asns",
                values::boolean,
            )
            .unwrap_or(defaults.reject_private_asns);
        let restart_minutes = self
            .optional(
                &raw.max_prefix_restart_after,
                "policy.max_prefix_restart_after",
                |scalar| {
                    values::integer(
                        scalar,
                        1..=10_080,
                        "a number of minutes like 15",
                        "1-10080 minutes (one week)",
                    )
                    .map(|minutes| u32::try_from(minutes).unwrap_or(u32::MAX))
                },
            )
            .unwrap_or(DEFAULT_MAX_PREFIX_RESTART_MINUTES);
        let max_prefix_action = self
            .optional(
                &raw.max_prefix_action,
                "policy.max_prefix_action",
                |scalar| max_prefix_action(scalar, restart_minutes),
            )
            .unwrap_or(MaxPrefixAction::Restart {
                minutes: restart_minutes,
            });

        let rpki = raw.rpki.as_ref().map(|rpki| self.rpki(rpki));
        let blackhole = match &raw.blackhole {
            Some(block) => self.blackhole(&block.value, lan),
            None => BlackholePolicy::default(),
        };
        let bgp_role = self
            .optional(&raw.bgp_role, "policy.bgp_role", bgp_role_policy)
            .unwrap_or_default();

        if self.problems.len() > problems_before {
            return None;
        }
        Some(Policy {
            next_hop,
            prefix_length,
            max_as_path_length,
            max_communities,
            transit_free_asns,
            never_via_route_servers_asns,
            bogon_prefixes,
            allow_prefixes,
            reject_private_asns,
            max_prefix_action,
            rpki,
            blackhole,
            bgp_role,
        })
    }

    /// `policy.blackhole:`: optional next hops, each inside its LAN prefix and not its
    /// network, broadcast or Subnet-Router anycast address.
    fn blackhole(
        &mut self,
        raw: &RawBlackhole,
        lan: (Option<Ipv4Net>, Option<Ipv6Net>),
    ) -> BlackholePolicy {
        BlackholePolicy {
            next_hop_ipv4: self.lan_ipv4(
                &raw.next_hop_ipv4,
                "policy.blackhole.next_hop_ipv4",
                lan.0,
            ),
            next_hop_ipv6: self.lan_ipv6(
                &raw.next_hop_ipv6,
                "policy.blackhole.next_hop_ipv6",
                lan.1,
            ),
        }
    }

    /// A list of scalars read one by one; `None` when absent or when any item is wrong.
    fn scalar_list<T>(
        &mut self,
        list: &ScalarList,
        path: &str,
        read: impl Fn(&Scalar) -> Result<T, ProblemKind>,
    ) -> Option<Vec<T>> {
        let list = list.as_ref()?;
        list.value
            .iter()
            .enumerate()
            .map(|(index, item)| {
                self.optional(&Some(item.clone()), &format!("{path}[{index}]"), &read)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }

    /// `policy.prefix_length:`; a missing family keeps its default.
    fn prefix_lengths(&mut self, raw: &Spanned<RawPrefixLength>) -> PrefixLengths {
        let defaults = PrefixLengths::default();
        PrefixLengths {
            ipv4: self
                .length_range(&raw.value.ipv4, "policy.prefix_length.ipv4", 32)
                .unwrap_or(defaults.ipv4),
            ipv6: self
                .length_range(&raw.value.ipv6, "policy.prefix_length.ipv6", 128)
                .unwrap_or(defaults.ipv6),
        }
    }

    /// One `[min, max]` prefix length range, both within `0..=longest`.
    fn length_range(
        &mut self,
        raw: &ScalarList,
        path: &str,
        longest: u8,
    ) -> Option<PrefixLengthRange> {
        let list = raw.as_ref()?;
        let [min, max] = list.value.as_slice() else {
            let count = list.value.len();
            let found = match count {
                1 => "a list of 1 value".to_owned(),
                _ => format!("a list of {count} values"),
            };
            let expected = if longest == 32 {
                "a list [min, max] like [8, 24]"
            } else {
                "a list [min, max] like [12, 48]"
            };
            self.report(
                line_of(list),
                path,
                ProblemKind::WrongType { expected, found },
            );
            return None;
        };
        let valid = if longest == 32 {
            "an IPv4 prefix length, 0-32"
        } else {
            "an IPv6 prefix length, 0-128"
        };
        let mut length = |item: &Spanned<Scalar>, which: &str| {
            self.optional(&Some(item.clone()), &format!("{path}.{which}"), |scalar| {
                values::integer(scalar, 0..=i128::from(longest), "a prefix length", valid)
                    .map(|length| u8::try_from(length).unwrap_or(u8::MAX))
            })
        };
        let (min_length, max_length) = (length(min, "min"), length(max, "max"));
        let (min_length, max_length) = (min_length?, max_length?);
        if min_length > max_length {
            self.report(
                line_of(list),
                path,
                ProblemKind::MinAboveMax {
                    min: min_length.to_string(),
                    max: max_length.to_string(),
                },
            );
            return None;
        }
        Some(PrefixLengthRange {
            min: min_length,
            max: max_length,
        })
    }

    /// `policy.bogon_prefixes:`, `default` or a list of prefixes.
    fn bogons(&mut self, raw: &Spanned<RawBogons>) -> BogonPrefixes {
        const PATH: &str = "policy.bogon_prefixes";
        match &raw.value {
            RawBogons::Keyword(Scalar::Null) => BogonPrefixes::Default,
            RawBogons::Keyword(Scalar::Text(word)) if word == "default" => BogonPrefixes::Default,
            RawBogons::Keyword(other) => {
                self.report(
                    line_of(raw),
                    PATH,
                    ProblemKind::WrongType {
                        expected: "default or a list of prefixes",
                        found: other.to_string(),
                    },
                );
                BogonPrefixes::Default
            }
            RawBogons::List(items) => {
                let list = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        self.optional(
                            &Some(item.clone()),
                            &format!("{PATH}[{index}]"),
                            values::route_prefix,
                        )
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect::<Option<Vec<_>>>();
                BogonPrefixes::List(list.unwrap_or_default())
            }
        }
    }
}

/// `policy.bgp_role`: `lenient` or `strict`.
fn bgp_role_policy(scalar: &Scalar) -> Result<BgpRolePolicy, ProblemKind> {
    match scalar {
        Scalar::Text(word) if word == "lenient" => Ok(BgpRolePolicy::Lenient),
        Scalar::Text(word) if word == "strict" => Ok(BgpRolePolicy::Strict),
        other => Err(ProblemKind::WrongType {
            expected: "lenient or strict",
            found: other.to_string(),
        }),
    }
}

/// `policy.next_hop`: `own_address` or `same_asn`.
fn max_prefix_action(scalar: &Scalar, minutes: u32) -> Result<MaxPrefixAction, ProblemKind> {
    match scalar {
        Scalar::Text(word) if word == "shutdown" => Ok(MaxPrefixAction::Shutdown),
        Scalar::Text(word) if word == "restart" => Ok(MaxPrefixAction::Restart { minutes }),
        Scalar::Text(word) if word == "warn" => Ok(MaxPrefixAction::Warn),
        other => Err(ProblemKind::WrongType {
            expected: "shutdown, restart or warn",
            found: other.to_string(),
        }),
    }
}

fn next_hop_policy(scalar: &Scalar) -> Result<NextHopPolicy, ProblemKind> {
    match scalar {
        Scalar::Text(word) if word == "own_address" => Ok(NextHopPolicy::OwnAddress),
        Scalar::Text(word) if word == "same_asn" => Ok(NextHopPolicy::SameAsn),
        other => Err(ProblemKind::WrongType {
            expected: "own_address or same_asn",
            found: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{
        Asn, BgpRolePolicy, BlackholePolicy, BogonPrefixes, Fabric, MaxPrefixAction, NextHopPolicy,
        Policy, PrefixLengthRange,
    };

    const KEY_RS: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    /// A valid fabric of 11 lines followed by `policy` (its first line is line 12).
    fn parse(policy: &str) -> Result<Fabric, Vec<String>> {
        let text = format!(
            "version: 1\nexchange:\n  name: X\nlan:\n  ipv4: 198.18.0.0/24\n  ipv6: \
             \"fd00::/64\"\nroute_servers:\n  - name: rs1\n    asn: 64500\n    ipv4: \
             198.18.0.1\n    public_key: \"{KEY_RS}\"\n{policy}"
        );
        Fabric::parse(&text, Path::new("f.yaml"))
            .map_err(|error| error.to_string().lines().map(str::to_owned).collect())
    }

    fn policy(text: &str) -> Policy {
        match parse(text) {
            Ok(fabric) => fabric.policy,
            Err(messages) => panic!("{text:?} must parse: {messages:?}"),
        }
    }

    #[test]
    fn no_policy_block_gives_the_defaults() {
        assert_eq!(policy(""), Policy::default());
        assert_eq!(policy("policy: {}\n"), Policy::default());
    }

    #[test]
    fn every_field_is_read() {
        let read = policy(
            "policy:\n  next_hop: same_asn\n  prefix_length: {ipv4: [16, 28], ipv6: [19, 64]}\n  \
             max_as_path_length: 40\n  max_communities: 0\n  transit_free_asns: [174]\n  \
             never_via_route_servers_asns: [64999, 4200000001]\n  bogon_prefixes: \
             [10.0.0.0/8]\n  allow_prefixes: [198.18.0.0/15, \"fd00::/8\"]\n  \
             reject_private_asns: false\n",
        );
        assert_eq!(read.next_hop, NextHopPolicy::SameAsn);
        assert_eq!(
            read.prefix_length.ipv4,
            PrefixLengthRange { min: 16, max: 28 }
        );
        assert_eq!(
            read.prefix_length.ipv6,
            PrefixLengthRange { min: 19, max: 64 }
        );
        assert_eq!(read.max_as_path_length, 40);
        assert_eq!(read.max_communities, 0);
        assert_eq!(read.transit_free_asns, [Asn(174)]);
        assert_eq!(
            read.never_via_route_servers_asns,
            [Asn(64999), Asn(4_200_000_001)]
        );
        assert_eq!(
            read.bogon_prefixes,
            BogonPrefixes::List(vec!["10.0.0.0/8".parse().expect("valid")])
        );
        assert_eq!(read.allow_prefixes.len(), 2);
        assert!(!read.reject_private_asns);
    }

    #[test]
    fn a_missing_family_keeps_its_default_range() {
        let read = policy("policy:\n  prefix_length: {ipv6: [16, 56]}\n");
        assert_eq!(
            read.prefix_length.ipv4,
            PrefixLengthRange { min: 8, max: 24 }
        );
        assert_eq!(
            read.prefix_length.ipv6,
            PrefixLengthRange { min: 16, max: 56 }
        );
    }

    #[test]
    fn an_empty_transit_free_list_turns_the_filter_off() {
        assert!(
            policy("policy:\n  transit_free_asns: []\n")
                .transit_free_asns
                .is_empty()
        );
    }

    #[test]
    fn bogon_keyword_default_is_the_default_list() {
        assert_eq!(
            policy("policy:\n  bogon_prefixes: default\n").bogon_prefixes,
            BogonPrefixes::Default
        );
    }

    #[test]
    fn every_problem_in_the_block_is_reported_with_its_line() {
        let messages = parse(
            "policy:\n  next_hop: strict\n  prefix_length: {ipv4: [24, 8], ipv6: [12, 129]}\n  \
             max_as_path_length: 0\n  transit_free_asns: [174, AS701]\n  bogon_prefixes: \
             none\n  allow_prefixes: [198.18.0.1/15]\n  reject_private_asns: 1\n",
        )
        .expect_err("invalid policy");
        assert_eq!(
            messages,
            [
                "f.yaml:13: policy.next_hop: expected own_address or same_asn, found \"strict\"",
                "f.yaml:14: policy.prefix_length.ipv4: minimum 24 is above maximum 8; write \
                 [min, max] with min <= max",
                "f.yaml:14: policy.prefix_length.ipv6.max: 129 is out of range; use an IPv6 \
                 prefix length, 0-128",
                "f.yaml:15: policy.max_as_path_length: 0 is out of range; use 1-255 ASNs",
                "f.yaml:16: policy.transit_free_asns[1]: expected an AS number like 64501 \
                 (without \"AS\"), found \"AS701\"",
                "f.yaml:17: policy.bogon_prefixes: expected default or a list of prefixes, \
                 found \"none\"",
                "f.yaml:18: policy.allow_prefixes[0]: 198.18.0.1/15 has host bits set; use \
                 198.18.0.0/15",
                "f.yaml:19: policy.reject_private_asns: expected true or false, found 1",
            ]
        );
    }

    #[test]
    fn a_range_needs_two_values() {
        let messages =
            parse("policy:\n  prefix_length:\n    ipv4: [8]\n").expect_err("invalid policy");
        assert_eq!(
            messages,
            [
                "f.yaml:14: policy.prefix_length.ipv4: expected a list [min, max] like [8, 24], \
              found a list of 1 value"
            ]
        );
    }

    #[test]
    fn unknown_policy_fields_are_named() {
        let messages = parse("policy:\n  max_path: 3\n").expect_err("unknown field");
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with(
                "f.yaml:13: policy.max_path: unknown field; valid fields: \
                 next_hop, prefix_length,"
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn blackhole_next_hops_are_lan_addresses() {
        assert_eq!(
            policy(
                "policy:\n  blackhole: {next_hop_ipv4: 198.18.0.66, next_hop_ipv6: \"fd00::66\"}\n"
            )
            .blackhole,
            BlackholePolicy {
                next_hop_ipv4: Some("198.18.0.66".parse().expect("valid")),
                next_hop_ipv6: Some("fd00::66".parse().expect("valid")),
            }
        );
        assert_eq!(
            policy("policy:\n  blackhole: {}\n").blackhole,
            BlackholePolicy::default()
        );
        let messages = parse(
            "policy:\n  blackhole:\n    next_hop_ipv4: 192.0.2.66\n    next_hop_ipv6: \"fd00::\"\n",
        )
        .expect_err("outside the LAN");
        assert_eq!(
            messages,
            [
                "f.yaml:14: policy.blackhole.next_hop_ipv4: 192.0.2.66 is outside the LAN \
                 198.18.0.0/24; use an address inside lan.ipv4",
                "f.yaml:15: policy.blackhole.next_hop_ipv6: fd00:: is the subnet-router anycast \
                 address (RFC 4291 section 2.6.1) of the LAN fd00::/64; use a host address \
                 inside the LAN",
            ]
        );
        let messages =
            parse("policy:\n  blackhole:\n    next_hop: 198.18.0.66\n").expect_err("unknown field");
        assert!(
            messages[0].contains(
                "policy.blackhole.next_hop: unknown field; valid fields: \
                                  next_hop_ipv4, next_hop_ipv6"
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn bgp_role_is_lenient_or_strict() {
        assert_eq!(policy("").bgp_role, BgpRolePolicy::Lenient);
        assert_eq!(
            policy("policy:\n  bgp_role: strict\n").bgp_role,
            BgpRolePolicy::Strict
        );
        assert_eq!(
            parse("policy:\n  bgp_role: rs_client\n").expect_err("invalid"),
            ["f.yaml:13: policy.bgp_role: expected lenient or strict, found \"rs_client\""]
        );
    }

    #[test]
    fn max_prefix_action_and_restart_delay() {
        let policy = |text: &str| parse(text).map(|fabric| fabric.policy.max_prefix_action);
        assert_eq!(
            policy("policy:\n  max_prefix_action: restart\n  max_prefix_restart_after: 5\n"),
            Ok(MaxPrefixAction::Restart { minutes: 5 })
        );
        assert_eq!(
            policy("policy:\n  max_prefix_action: warn\n"),
            Ok(MaxPrefixAction::Warn)
        );
        assert_eq!(
            policy("policy:\n  max_prefix_action: shutdown\n"),
            Ok(MaxPrefixAction::Shutdown)
        );
        assert_eq!(
            Policy::default().max_prefix_action,
            MaxPrefixAction::Restart { minutes: 15 }
        );
        assert_eq!(
            policy("policy:\n  max_prefix_action: drop\n"),
            Err(vec![
                "f.yaml:13: policy.max_prefix_action: expected shutdown, restart or warn, found \"drop\""
                    .to_string()
            ])
        );
    }
}
