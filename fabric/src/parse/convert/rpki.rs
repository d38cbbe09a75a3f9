//! The raw shape and the conversion of `policy.rpki:`: RTR caches, their timers, the JSON VRP
//! file, and the invalid and ASPA actions. Must not look at anything outside the block.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Converter, line_of};
use crate::error::ProblemKind;
use crate::parse::raw::{Field, Scalar, ScalarList};
use crate::parse::values;
use crate::rpki::{AspaAction, InvalidAction, RpkiPolicy, RtrCache, RtrTimers};

/// `policy.rpki:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRpki {
    pub caches: ScalarList,
    pub refresh: Field,
    pub retry: Field,
    pub expire: Field,
    pub vrp_file: Field,
    pub invalid: Field,
    pub aspa: Field,
}

/// RFC 8210 section 6 ranges, in seconds.
const REFRESH_RANGE: (i128, i128) = (1, 86_400);
const RETRY_RANGE: (i128, i128) = (1, 7_200);
const EXPIRE_RANGE: (i128, i128) = (600, 172_800);

impl Converter<'_> {
    /// `policy.rpki:`; problems are reported, and the defaults stand in for wrong values.
    pub(super) fn rpki(&mut self, raw: &Spanned<RawRpki>) -> RpkiPolicy {
        let block = &raw.value;
        let caches = match &block.caches {
            Some(list) => list
                .value
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    self.optional(
                        &Some(item.clone()),
                        &format!("policy.rpki.caches[{index}]"),
                        rtr_cache,
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let defaults = RtrTimers::default();
        let mut timer = |field: &Field, name: &str, range: (i128, i128), valid, default| {
            self.optional(field, &format!("policy.rpki.{name}"), |scalar| {
                values::integer(scalar, range.0..=range.1, "a number of seconds", valid)
                    .map(|seconds| u32::try_from(seconds).unwrap_or(u32::MAX))
            })
            .unwrap_or(default)
        };
        let timers = RtrTimers {
            refresh: timer(
                &block.refresh,
                "refresh",
                REFRESH_RANGE,
                "1-86400 seconds (RFC 8210 section 6)",
                defaults.refresh,
            ),
            retry: timer(
                &block.retry,
                "retry",
                RETRY_RANGE,
                "1-7200 seconds (RFC 8210 section 6)",
                defaults.retry,
            ),
            expire: timer(
                &block.expire,
                "expire",
                EXPIRE_RANGE,
                "600-172800 seconds (RFC 8210 section 6)",
                defaults.expire,
            ),
        };
        let vrp_file = self.optional(&block.vrp_file, "policy.rpki.vrp_file", |scalar| {
            values::text(
                scalar,
                "a path to a JSON VRP export like /var/lib/rpki-client/json",
            )
            .map(PathBuf::from)
        });
        let invalid = self
            .optional(&block.invalid, "policy.rpki.invalid", invalid_action)
            .unwrap_or_default();
        let aspa = self
            .optional(&block.aspa, "policy.rpki.aspa", aspa_action)
            .unwrap_or_default();
        if caches.is_empty() && vrp_file.is_none() && block.caches.is_some() {
            // Every cache was wrong: already reported.
        } else if caches.is_empty() && vrp_file.is_none() {
            self.report(
                line_of(raw),
                "policy.rpki",
                ProblemKind::Missing {
                    hint: "add `caches: [\"127.0.0.1:3323\"]` (RTR caches) or `vrp_file:` (a \
                           JSON VRP export), or remove the rpki block",
                },
            );
        }
        RpkiPolicy {
            caches,
            timers,
            vrp_file,
            invalid,
            aspa,
        }
    }
}

/// One RTR cache: `IP:port`, `[IPv6]:port` or `host.name:port`, port not 0.
fn rtr_cache(scalar: &Scalar) -> Result<RtrCache, ProblemKind> {
    const EXPECTED: &str =
        "an RTR cache like 127.0.0.1:3323, [::1]:3323 or rtr.example.net:323 (host:port)";
    let wrong = || ProblemKind::WrongType {
        expected: EXPECTED,
        found: scalar.to_string(),
    };
    let value = values::text(scalar, EXPECTED)?;
    if let Ok(address) = value.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(wrong());
        }
        return Ok(RtrCache::Address(address));
    }
    let (host, port) = value.rsplit_once(':').ok_or_else(wrong)?;
    let port: u16 = port.parse().map_err(|_| wrong())?;
    if port == 0 || !values::is_host_name(host) {
        return Err(wrong());
    }
    Ok(RtrCache::Name {
        host: host.to_owned(),
        port,
    })
}

/// `policy.rpki.invalid`: `reject` or `tag`.
fn invalid_action(scalar: &Scalar) -> Result<InvalidAction, ProblemKind> {
    match scalar {
        Scalar::Text(word) if word == "reject" => Ok(InvalidAction::Reject),
        Scalar::Text(word) if word == "tag" => Ok(InvalidAction::Tag),
        other => Err(ProblemKind::WrongType {
            expected: "reject or tag",
            found: other.to_string(),
        }),
    }
}

/// `policy.rpki.aspa`: `reject`, `tag` or `off` (YAML's `off` reads as text in the core
/// schema; a boolean `false` is taken as `off` too).
fn aspa_action(scalar: &Scalar) -> Result<AspaAction, ProblemKind> {
    match scalar {
        Scalar::Text(word) if word == "reject" => Ok(AspaAction::Reject),
        Scalar::Text(word) if word == "tag" => Ok(AspaAction::Tag),
        Scalar::Text(word) if word == "off" => Ok(AspaAction::Off),
        Scalar::Bool(false) => Ok(AspaAction::Off),
        other => Err(ProblemKind::WrongType {
            expected: "reject, tag or off",
            found: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{AspaAction, Fabric, InvalidAction, RpkiPolicy, RtrCache, RtrTimers};

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

    fn rpki(text: &str) -> Option<RpkiPolicy> {
        match parse(text) {
            Ok(fabric) => fabric.policy.rpki,
            Err(messages) => panic!("{text:?} must parse: {messages:?}"),
        }
    }

    #[test]
    fn no_rpki_block_means_no_rpki_step() {
        assert_eq!(rpki("policy: {}\n"), None);
    }

    #[test]
    fn caches_in_order_with_rfc_8210_default_timers() {
        let read = rpki(
            "policy:\n  rpki:\n    caches: [\"127.0.0.1:3323\", \"[::1]:8282\", \
             rtr.example.net:323]\n",
        )
        .expect("rpki block");
        assert_eq!(
            read.caches,
            [
                RtrCache::Address("127.0.0.1:3323".parse().expect("valid")),
                RtrCache::Address("[::1]:8282".parse().expect("valid")),
                RtrCache::Name {
                    host: "rtr.example.net".to_owned(),
                    port: 323
                },
            ]
        );
        assert_eq!(
            read.timers,
            RtrTimers {
                refresh: 3600,
                retry: 600,
                expire: 7200
            }
        );
        assert_eq!(read.invalid, InvalidAction::Reject);
        assert_eq!(read.aspa, AspaAction::Off);
        assert_eq!(read.vrp_file, None);
        assert_eq!(read.caches[2].to_string(), "rtr.example.net:323");
    }

    #[test]
    fn every_field_is_read() {
        let read = rpki(
            "policy:\n  rpki:\n    vrp_file: /var/lib/rpki-client/json\n    refresh: 300\n    \
             retry: 60\n    expire: 3600\n    invalid: tag\n    aspa: reject\n",
        )
        .expect("rpki block");
        assert!(read.caches.is_empty());
        assert_eq!(
            read.vrp_file.as_deref(),
            Some(Path::new("/var/lib/rpki-client/json"))
        );
        assert_eq!(
            read.timers,
            RtrTimers {
                refresh: 300,
                retry: 60,
                expire: 3600
            }
        );
        assert_eq!(read.invalid, InvalidAction::Tag);
        assert_eq!(read.aspa, AspaAction::Reject);
        let tag = rpki("policy:\n  rpki:\n    vrp_file: v.json\n    aspa: tag\n").expect("rpki");
        assert_eq!(tag.aspa, AspaAction::Tag);
        let off = rpki("policy:\n  rpki:\n    vrp_file: v.json\n    aspa: off\n").expect("rpki");
        assert_eq!(off.aspa, AspaAction::Off);
    }

    #[test]
    fn every_problem_is_reported_with_its_line_and_what_is_valid() {
        let messages = parse(
            "policy:\n  rpki:\n    caches: [\"127.0.0.1\", \"rtr.example.net:0\"]\n    \
             refresh: 0\n    expire: 60\n    invalid: drop\n    aspa: yes\n",
        )
        .expect_err("invalid rpki block");
        assert_eq!(
            messages,
            [
                "f.yaml:14: policy.rpki.caches[0]: expected an RTR cache like 127.0.0.1:3323, \
                 [::1]:3323 or rtr.example.net:323 (host:port), found \"127.0.0.1\"",
                "f.yaml:14: policy.rpki.caches[1]: expected an RTR cache like 127.0.0.1:3323, \
                 [::1]:3323 or rtr.example.net:323 (host:port), found \"rtr.example.net:0\"",
                "f.yaml:15: policy.rpki.refresh: 0 is out of range; use 1-86400 seconds (RFC \
                 8210 section 6)",
                "f.yaml:16: policy.rpki.expire: 60 is out of range; use 600-172800 seconds \
                 (RFC 8210 section 6)",
                "f.yaml:17: policy.rpki.invalid: expected reject or tag, found \"drop\"",
                "f.yaml:18: policy.rpki.aspa: expected reject, tag or off, found true",
            ]
        );
    }

    #[test]
    fn a_block_without_a_source_is_refused() {
        let messages = parse("policy:\n  rpki:\n    invalid: reject\n").expect_err("no source");
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with("f.yaml:14: policy.rpki: "),
            "{messages:?}"
        );
        assert!(messages[0].contains("caches"), "{messages:?}");
    }

    #[test]
    fn unknown_rpki_fields_are_named() {
        let messages =
            parse("policy:\n  rpki:\n    cache: [\"127.0.0.1:3323\"]\n").expect_err("unknown");
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].starts_with(
                "f.yaml:14: policy.rpki.cache: unknown field; valid fields: \
                 caches, refresh,"
            ),
            "{messages:?}"
        );
    }
}
