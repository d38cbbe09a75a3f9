//! Conversion of the raw file into the validated [`Fabric`], checking every rule of
//! fabric.yaml v1 and collecting every problem rather than stopping at the first. Must not
//! read files or parse YAML.

mod member;
mod policy;
mod route_server;
mod rpki;

pub(crate) use rpki::RawRpki;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{Ipv4Net, Ipv6Net};
use serde_saphyr::Spanned;

use super::raw::{Field, RawExchange, RawFabric, RawLan, Scalar};
use super::values;
use crate::error::{Problem, ProblemKind};
use crate::model::{Exchange, Fabric, Lan};
use crate::policy::Policy;

/// The only version of the fabric file this program reads.
pub(crate) const SUPPORTED_VERSION: i128 = 1;
/// Longest free-text value (descriptions, contacts), in characters.
const MAX_TEXT_CHARS: usize = 256;

/// Converts a raw file into a [`Fabric`], or returns every problem found, in line order.
pub(crate) fn convert(raw: &Spanned<RawFabric>, file: &Path) -> Result<Fabric, Vec<Problem>> {
    let mut converter = Converter {
        file,
        problems: Vec::new(),
        seen: Seen::default(),
    };
    let fabric = converter.fabric(raw);
    let mut problems = converter.problems;
    problems.sort_by_key(|problem| problem.line);
    match fabric {
        Some(fabric) if problems.is_empty() => Ok(fabric),
        _ => Err(problems),
    }
}

/// Who first used a value that must be unique.
#[derive(Debug, Clone)]
struct Owner {
    /// Field path of the entry, e.g. `members[0]`.
    path: String,
    /// Its name, or `unnamed` when the name itself is missing or invalid.
    name: String,
}

/// Values that must be unique, with who used them first.
#[derive(Debug, Default)]
struct Seen {
    names: HashMap<String, Owner>,
    route_server_asns: HashMap<u32, Owner>,
    member_asns: HashMap<u32, Owner>,
    addresses: HashMap<IpAddr, Owner>,
    keys: HashMap<[u8; 32], Owner>,
    router_ids: HashMap<Ipv4Addr, Owner>,
}

/// Collects problems while converting.
struct Converter<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
    seen: Seen,
}

/// Whether a field is given with a non-null value.
fn present(field: &Field) -> bool {
    field
        .as_ref()
        .is_some_and(|spanned| spanned.value != Scalar::Null)
}

/// Line of a spanned value.
fn line_of<T>(spanned: &Spanned<T>) -> u64 {
    spanned.referenced.line()
}

impl Converter<'_> {
    /// Records one problem.
    fn report(&mut self, line: u64, path: impl Into<String>, kind: ProblemKind) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line,
            path: path.into(),
            kind,
        });
    }

    /// Reads an optional field: `None` when absent, null or invalid (then reported).
    fn optional<T>(
        &mut self,
        field: &Field,
        path: &str,
        read: impl FnOnce(&Scalar) -> Result<T, ProblemKind>,
    ) -> Option<T> {
        let spanned = field.as_ref()?;
        if spanned.value == Scalar::Null {
            return None;
        }
        match read(&spanned.value) {
            Ok(value) => Some(value),
            Err(kind) => {
                self.report(line_of(spanned), path, kind);
                None
            }
        }
    }

    /// Reads a required field; a missing one is reported at `container_line`.
    fn required<T>(
        &mut self,
        field: &Field,
        container_line: u64,
        path: &str,
        hint: &'static str,
        read: impl FnOnce(&Scalar) -> Result<T, ProblemKind>,
    ) -> Option<T> {
        if !present(field) {
            self.report(container_line, path, ProblemKind::Missing { hint });
            return None;
        }
        self.optional(field, path, read)
    }

    /// Records `key` as used by `owner`, or reports a duplicate at `line`.
    fn unique<K: Eq + std::hash::Hash>(
        table: impl FnOnce(&mut Seen) -> &mut HashMap<K, Owner>,
        seen: &mut Seen,
        key: K,
        owner: &Owner,
    ) -> Option<Owner> {
        let table = table(seen);
        match table.get(&key) {
            Some(first) => Some(first.clone()),
            None => {
                table.insert(key, owner.clone());
                None
            }
        }
    }

    /// Reports `value` at `line`/`path` as already used by `first`.
    fn duplicate(
        &mut self,
        line: u64,
        path: &str,
        value: String,
        first: Owner,
        hint: &'static str,
    ) {
        self.report(
            line,
            path,
            ProblemKind::Duplicate {
                value,
                first_path: first.path,
                first_name: first.name,
                hint,
            },
        );
    }

    /// Claims a name for `owner` among route servers and members.
    fn claim_name(&mut self, line: u64, path: &str, owner: &Owner) {
        if let Some(first) = Self::unique(
            |seen| &mut seen.names,
            &mut self.seen,
            owner.name.clone(),
            owner,
        ) {
            self.duplicate(
                line,
                path,
                owner.name.clone(),
                first,
                "route servers and members each need their own name",
            );
        }
    }

    /// Claims a LAN address for `owner` fabric-wide.
    fn claim_address(&mut self, line: u64, path: &str, address: IpAddr, owner: &Owner) {
        if let Some(first) =
            Self::unique(|seen| &mut seen.addresses, &mut self.seen, address, owner)
        {
            self.duplicate(
                line,
                path,
                address.to_string(),
                first,
                "each LAN address belongs to one route server or member",
            );
        }
    }

    /// Claims a WireGuard public key for `owner` fabric-wide.
    fn claim_key(&mut self, line: u64, path: &str, key: [u8; 32], owner: &Owner) {
        if let Some(first) = Self::unique(|seen| &mut seen.keys, &mut self.seen, key, owner) {
            self.duplicate(
                line,
                path,
                "this key".to_owned(),
                first,
                "each node needs its own key pair (wg genkey | wg pubkey)",
            );
        }
    }

    /// Reads an IPv4 LAN address: inside the LAN, neither its network nor broadcast address.
    fn lan_ipv4(&mut self, field: &Field, path: &str, lan: Option<Ipv4Net>) -> Option<Ipv4Addr> {
        self.optional(field, path, |scalar| {
            let address = values::ipv4_address(scalar)?;
            let Some(lan) = lan else {
                return Ok(address);
            };
            let role = if !lan.contains(&address) {
                return Err(ProblemKind::OutsideLan {
                    address: IpAddr::V4(address),
                    lan: lan.to_string(),
                    lan_field: "lan.ipv4",
                });
            } else if address == lan.network() {
                Some("network address")
            } else if address == lan.broadcast() {
                Some("broadcast address")
            } else {
                None
            };
            match role {
                Some(role) => Err(ProblemKind::ReservedLanAddress {
                    address: IpAddr::V4(address),
                    role,
                    lan: lan.to_string(),
                }),
                None => Ok(address),
            }
        })
    }

    /// Reads an IPv6 LAN address: inside the LAN and not its Subnet-Router anycast address
    /// (RFC 4291 section 2.6.1).
    fn lan_ipv6(&mut self, field: &Field, path: &str, lan: Option<Ipv6Net>) -> Option<Ipv6Addr> {
        self.optional(field, path, |scalar| {
            let address = values::ipv6_address(scalar)?;
            let Some(lan) = lan else {
                return Ok(address);
            };
            if !lan.contains(&address) {
                return Err(ProblemKind::OutsideLan {
                    address: IpAddr::V6(address),
                    lan: lan.to_string(),
                    lan_field: "lan.ipv6",
                });
            }
            if address == lan.network() {
                return Err(ProblemKind::ReservedLanAddress {
                    address: IpAddr::V6(address),
                    role: "subnet-router anycast address (RFC 4291 section 2.6.1)",
                    lan: lan.to_string(),
                });
            }
            Ok(address)
        })
    }

    /// The whole fabric. Route servers are read before members, whatever the file order, so
    /// that a member using a route server's ASN is reported at the member.
    fn fabric(&mut self, raw: &Spanned<RawFabric>) -> Option<Fabric> {
        let top = line_of(raw).max(1);
        let raw = &raw.value;
        let version = self.required(
            &raw.version,
            top,
            "version",
            "start the file with version: 1",
            |scalar| match scalar {
                Scalar::Integer(SUPPORTED_VERSION) => Ok(()),
                Scalar::Integer(other) => Err(ProblemKind::UnsupportedVersion {
                    found: other.to_string(),
                }),
                other => Err(ProblemKind::WrongType {
                    expected: "the number 1",
                    found: other.to_string(),
                }),
            },
        );
        let exchange = match &raw.exchange {
            Some(exchange) => self.exchange(exchange),
            None => {
                self.report(
                    top,
                    "exchange",
                    ProblemKind::Missing {
                        hint: "add an exchange block with at least a name",
                    },
                );
                None
            }
        };
        let lan = match &raw.lan {
            Some(lan) => self.lan(lan),
            None => {
                self.report(
                    top,
                    "lan",
                    ProblemKind::Missing {
                        hint: "add a lan block with ipv4 and ipv6 prefixes",
                    },
                );
                (None, None)
            }
        };
        let route_servers = match &raw.route_servers {
            Some(list) if list.value.is_empty() => {
                self.report(
                    line_of(list),
                    "route_servers",
                    ProblemKind::EmptyList {
                        hint: "list at least one route server",
                    },
                );
                None
            }
            Some(list) => list
                .value
                .iter()
                .enumerate()
                .map(|(index, raw)| self.route_server(index, raw, lan))
                .collect::<Vec<_>>()
                .into_iter()
                .collect::<Option<Vec<_>>>(),
            None => {
                self.report(
                    top,
                    "route_servers",
                    ProblemKind::Missing {
                        hint: "list at least one route server",
                    },
                );
                None
            }
        };
        let members = match &raw.members {
            Some(list) => list
                .value
                .iter()
                .enumerate()
                .map(|(index, raw)| self.member(index, raw, lan))
                .collect::<Vec<_>>()
                .into_iter()
                .collect::<Option<Vec<_>>>(),
            None => Some(Vec::new()),
        };
        let policy = match &raw.policy {
            Some(policy) => self.policy(policy, lan),
            None => Some(Policy::default()),
        };
        let (
            Some(()),
            Some(exchange),
            (Some(ipv4), Some(ipv6)),
            Some(route_servers),
            Some(members),
            Some(policy),
        ) = (version, exchange, lan, route_servers, members, policy)
        else {
            return None;
        };
        Some(Fabric {
            source: self.file.to_path_buf(),
            exchange,
            lan: Lan { ipv4, ipv6 },
            route_servers,
            members,
            policy,
        })
    }

    /// `exchange:`.
    fn exchange(&mut self, raw: &Spanned<RawExchange>) -> Option<Exchange> {
        let line = line_of(raw);
        let raw = &raw.value;
        let name = self.required(
            &raw.name,
            line,
            "exchange.name",
            "name the exchange, e.g. name: VIXP-Example",
            |scalar| {
                values::bounded_text(scalar, values::MAX_EXCHANGE_NAME_CHARS, "1-64 characters")
            },
        );
        let description = self.optional(&raw.description, "exchange.description", |scalar| {
            values::bounded_text(scalar, MAX_TEXT_CHARS, "at most 256 characters")
        });
        let ixf_id = self.optional(&raw.ixf_id, "exchange.ixf_id", |scalar| {
            values::integer(
                scalar,
                1..=i128::from(u32::MAX),
                "the exchange's IX-F database id, a number like 1234",
                "a positive IX-F database id",
            )
            .map(|id| u32::try_from(id).unwrap_or(u32::MAX))
        });
        let contact = self.optional(&raw.contact, "exchange.contact", |scalar| {
            values::bounded_text(scalar, MAX_TEXT_CHARS, "at most 256 characters")
        });
        Some(Exchange {
            name: name?,
            description,
            ixf_id,
            contact,
        })
    }

    /// `lan:`; each prefix is `None` when missing or invalid.
    fn lan(&mut self, raw: &Spanned<RawLan>) -> (Option<Ipv4Net>, Option<Ipv6Net>) {
        let line = line_of(raw);
        let raw = &raw.value;
        let ipv4 = self.required(
            &raw.ipv4,
            line,
            "lan.ipv4",
            "give the IPv4 peering prefix, e.g. ipv4: 198.18.0.0/24",
            values::ipv4_prefix,
        );
        let ipv6 = self.required(
            &raw.ipv6,
            line,
            "lan.ipv6",
            "give the IPv6 peering prefix, e.g. ipv6: fd00:198:18::/64",
            values::ipv6_prefix,
        );
        (ipv4, ipv6)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Fabric;

    const KEY_RS: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn messages(text: &str) -> Vec<String> {
        match Fabric::parse(text, Path::new("f.yaml")) {
            Ok(_) => Vec::new(),
            Err(error) => error.to_string().lines().map(str::to_owned).collect(),
        }
    }

    fn header(lan4: &str, lan6: &str) -> String {
        format!(
            "version: 1\nexchange:\n  name: X\nlan:\n  ipv4: {lan4}\n  ipv6: \"{lan6}\"\n\
             route_servers:\n  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    \
             public_key: \"{KEY_RS}\"\n"
        )
    }

    #[test]
    fn a_minimal_fabric_is_valid() {
        assert_eq!(
            messages(&header("198.18.0.0/24", "fd00::/64")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn version_must_be_1() {
        let text = header("198.18.0.0/24", "fd00::/64").replace("version: 1", "version: 2");
        assert_eq!(
            messages(&text),
            ["f.yaml:1: version: version 2 is not supported; use version: 1"]
        );
    }

    #[test]
    fn missing_top_level_blocks_are_all_reported() {
        assert_eq!(
            messages("version: 1\n"),
            [
                "f.yaml:1: exchange: required but missing; add an exchange block with at least a name",
                "f.yaml:1: lan: required but missing; add a lan block with ipv4 and ipv6 prefixes",
                "f.yaml:1: route_servers: required but missing; list at least one route server",
            ]
        );
    }

    #[test]
    fn lan_prefix_errors_carry_their_line() {
        let text = header("198.18.0.0", "fd00::1/64");
        assert_eq!(
            messages(&text),
            [
                "f.yaml:5: lan.ipv4: expected an IPv4 prefix like 198.18.0.0/24, found \"198.18.0.0\"",
                "f.yaml:6: lan.ipv6: fd00::1/64 has host bits set; use fd00::/64",
            ]
        );
    }

    #[test]
    fn empty_route_server_list_is_refused() {
        let text = "version: 1\nexchange: {name: X}\nlan: {ipv4: 198.18.0.0/24, ipv6: \"fd00::/64\"}\nroute_servers: []\n";
        assert_eq!(
            messages(text),
            ["f.yaml:4: route_servers: is empty; list at least one route server"]
        );
    }

    #[test]
    fn null_counts_as_absent() {
        let text = header("198.18.0.0/24", "fd00::/64").replace("    asn: 64500\n", "    asn: ~\n");
        assert_eq!(
            messages(&text),
            [
                "f.yaml:8: route_servers[0].asn: required but missing; give the route server's ASN, \
              e.g. asn: 64500"
            ]
        );
    }

    #[test]
    fn exchange_fields_are_checked() {
        let text = header("198.18.0.0/24", "fd00::/64").replace(
            "  name: X\n",
            &format!("  name: {}\n  ixf_id: 0\n", "N".repeat(65)),
        );
        assert_eq!(
            messages(&text),
            [
                "f.yaml:3: exchange.name: 65 characters long; use 1-64 characters",
                "f.yaml:4: exchange.ixf_id: 0 is out of range; use a positive IX-F database id",
            ]
        );
    }
}
