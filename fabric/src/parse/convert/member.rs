//! Conversion of one `members[N]` entry. Must run after the route servers, whose ASNs a
//! member must not reuse.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};
use serde_saphyr::Spanned;

use super::{Converter, MAX_TEXT_CHARS, Owner, line_of, present};
use crate::error::ProblemKind;
use crate::irr::PrefixRange;
use crate::model::{DEFAULT_MAX_PREFIX_IPV4, DEFAULT_MAX_PREFIX_IPV6, Irr, MaxPrefix, Member};
use crate::parse::raw::{Field, RawIrr, RawMaxPrefix, RawMember, Scalar, ScalarList};
use crate::parse::values;

impl Converter<'_> {
    /// One member; `None` when anything in it is wrong (and reported).
    pub(super) fn member(
        &mut self,
        index: usize,
        raw: &Spanned<RawMember>,
        lan: (Option<Ipv4Net>, Option<Ipv6Net>),
    ) -> Option<Member> {
        let problems_before = self.problems.len();
        let line = line_of(raw);
        let base = format!("members[{index}]");
        let path = |field: &str| format!("{base}.{field}");
        let raw = &raw.value;

        let name = self.required(
            &raw.name,
            line,
            &path("name"),
            "name the member, e.g. name: alpha",
            values::name,
        );
        let owner = Owner {
            path: base.clone(),
            name: name.clone().unwrap_or_else(|| "unnamed".to_owned()),
        };
        if let (Some(field), Some(_)) = (&raw.name, &name) {
            self.claim_name(line_of(field), &path("name"), &owner);
        }

        let asn = self.required(
            &raw.asn,
            line,
            &path("asn"),
            "give the member's ASN, e.g. asn: 64501",
            values::asn,
        );
        if let (Some(asn), Some(field)) = (asn, &raw.asn) {
            self.claim_member_asn(line_of(field), &path("asn"), asn.0, &owner);
        }

        let description = self.optional(&raw.description, &path("description"), |scalar| {
            values::bounded_text(scalar, MAX_TEXT_CHARS, "at most 256 characters")
        });
        let ipv4 = self.lan_ipv4(&raw.ipv4, &path("ipv4"), lan.0);
        let ipv6 = self.lan_ipv6(&raw.ipv6, &path("ipv6"), lan.1);
        if let (Some(address), Some(field)) = (ipv4, &raw.ipv4) {
            self.claim_address(line_of(field), &path("ipv4"), IpAddr::V4(address), &owner);
        }
        if let (Some(address), Some(field)) = (ipv6, &raw.ipv6) {
            self.claim_address(line_of(field), &path("ipv6"), IpAddr::V6(address), &owner);
        }
        if !present(&raw.ipv4) && !present(&raw.ipv6) {
            self.report(line, base.clone(), ProblemKind::NoLanAddress);
        }

        let public_key = self.required(
            &raw.public_key,
            line,
            &path("public_key"),
            "give the WireGuard public key of the member's node",
            values::public_key,
        );
        if let (Some(key), Some(field)) = (public_key, &raw.public_key) {
            self.claim_key(line_of(field), &path("public_key"), key.0, &owner);
        }
        let endpoint = self.optional(&raw.endpoint, &path("endpoint"), values::endpoint);
        let max_prefix = match &raw.max_prefix {
            Some(max_prefix) => self.max_prefix(&max_prefix.value, &path("max_prefix")),
            None => MaxPrefix {
                ipv4: DEFAULT_MAX_PREFIX_IPV4,
                ipv6: DEFAULT_MAX_PREFIX_IPV6,
            },
        };
        let irr = raw.irr.as_ref().and_then(|irr| self.irr(irr, &path("irr")));
        let blackhole = self
            .optional(&raw.blackhole, &path("blackhole"), values::boolean)
            .unwrap_or(false);
        let contact = self.optional(&raw.contact, &path("contact"), |scalar| {
            values::bounded_text(scalar, MAX_TEXT_CHARS, "at most 256 characters")
        });

        if self.problems.len() > problems_before {
            return None;
        }
        Some(Member {
            name: name?,
            asn: asn?,
            description,
            ipv4,
            ipv6,
            public_key: public_key?,
            endpoint,
            max_prefix,
            irr,
            blackhole,
            contact,
        })
    }

    /// Claims a member ASN: unique among members, and not a route server's.
    fn claim_member_asn(&mut self, line: u64, path: &str, asn: u32, owner: &Owner) {
        if let Some(route_server) = self.seen.route_server_asns.get(&asn).cloned() {
            self.duplicate(
                line,
                path,
                asn.to_string(),
                route_server,
                "a member cannot use a route server's ASN",
            );
        } else if let Some(first) =
            Self::unique(|seen| &mut seen.member_asns, &mut self.seen, asn, owner)
        {
            self.duplicate(
                line,
                path,
                asn.to_string(),
                first,
                "each member needs its own ASN",
            );
        }
    }

    /// `members[N].max_prefix:`; a missing family takes its default.
    fn max_prefix(&mut self, raw: &RawMaxPrefix, base: &str) -> MaxPrefix {
        let mut limit = |field: &Field, family: &str, default: u32| {
            self.optional(field, &format!("{base}.{family}"), |scalar| {
                values::integer(
                    scalar,
                    1..=i128::from(u32::MAX),
                    "a number of prefixes like 1000",
                    "a limit of at least 1 prefix",
                )
                .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX))
            })
            .unwrap_or(default)
        };
        MaxPrefix {
            ipv4: limit(&raw.ipv4, "ipv4", DEFAULT_MAX_PREFIX_IPV4),
            ipv6: limit(&raw.ipv6, "ipv6", DEFAULT_MAX_PREFIX_IPV6),
        }
    }

    /// `members[N].irr:`: an AS-SET, files of bgpq4 output, inline lists, or several; at
    /// least one of them.
    fn irr(&mut self, raw: &Spanned<RawIrr>, base: &str) -> Option<Irr> {
        let line = line_of(raw);
        let raw = &raw.value;
        let problems_before = self.problems.len();
        let as_set = self.optional(&raw.as_set, &format!("{base}.as_set"), values::as_set);
        let sources = self.list(&raw.sources, &format!("{base}.sources"), values::irr_source);
        let directory = self.file.parent().unwrap_or(Path::new(""));
        let file = |scalar: &Scalar| {
            values::bounded_text(scalar, 4096, "a file path like irr/alpha.prefixes.json")
                .map(|text| directory.join(text))
        };
        let prefixes_file =
            self.optional(&raw.prefixes_file, &format!("{base}.prefixes_file"), file);
        let asns_file = self.optional(&raw.asns_file, &format!("{base}.asns_file"), file);
        let prefixes = self.list(&raw.prefixes, &format!("{base}.prefixes"), |scalar| {
            let text = values::text(scalar, "a prefix like 198.18.0.0/16 or 198.18.0.0/16 le 24")?;
            text.parse::<PrefixRange>()
                .map_err(|error| ProblemKind::InvalidPrefixRange {
                    value: text.to_owned(),
                    reason: error.to_string(),
                })
        });
        let origins = self.list(&raw.origins, &format!("{base}.origins"), values::asn);
        let given = [
            present(&raw.as_set),
            present(&raw.prefixes_file),
            present(&raw.asns_file),
            raw.prefixes.is_some(),
            raw.origins.is_some(),
        ];
        if !given.contains(&true) {
            self.report(line, base, ProblemKind::EmptyIrr);
        }
        if self.problems.len() > problems_before {
            return None;
        }
        let mut irr = Irr {
            as_set,
            sources,
            prefixes_file,
            asns_file,
            prefixes,
            origins,
            data: None,
        };
        if !irr.has_files() {
            irr.data = Some(Arc::new(irr.inline_data()));
        }
        Some(irr)
    }

    /// A list of scalars, each read by `read`; invalid entries are reported with their index.
    fn list<T>(
        &mut self,
        raw: &ScalarList,
        base: &str,
        read: impl Fn(&Scalar) -> Result<T, ProblemKind>,
    ) -> Vec<T> {
        let Some(list) = raw else {
            return Vec::new();
        };
        let mut values = Vec::new();
        for (index, item) in list.value.iter().enumerate() {
            if let Some(value) =
                self.optional(&Some(item.clone()), &format!("{base}[{index}]"), &read)
            {
                values.push(value);
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Asn, Endpoint, Fabric};

    const KEY_RS: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const KEY_A: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const KEY_B: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

    /// Header of 9 lines; members start at line 10.
    fn fabric_with(members: &str) -> Result<Fabric, Vec<String>> {
        let text = format!(
            "version: 1\nexchange:\n  name: X\nlan:\n  ipv4: 198.18.0.0/24\n  ipv6: \"fd00::/64\"\n\
             route_servers:\n  - {{name: rs1, asn: 64500, ipv4: 198.18.0.1, ipv6: \"fd00::1\", \
             public_key: \"{KEY_RS}\"}}\nmembers:\n{members}"
        );
        Fabric::parse(&text, Path::new("f.yaml"))
            .map_err(|error| error.to_string().lines().map(str::to_owned).collect())
    }

    fn errors(members: &str) -> Vec<String> {
        fabric_with(members).err().unwrap_or_default()
    }

    fn member(name: &str, asn: u32, ipv4: &str, key: &str) -> String {
        format!("  - name: {name}\n    asn: {asn}\n    ipv4: {ipv4}\n    public_key: \"{key}\"\n")
    }

    #[test]
    fn a_full_member_is_read() {
        let fabric = fabric_with(&format!(
            "  - name: alpha\n    asn: 64501\n    description: Alpha Networks\n    \
             ipv4: 198.18.0.11\n    ipv6: \"fd00::11\"\n    public_key: \"{KEY_A}\"\n    \
             endpoint: alpha.example.net:51820\n    max_prefix: {{ipv4: 10}}\n    \
             irr: {{as_set: AS-ALPHA, sources: [RIPE, ARIN]}}\n    contact: noc@alpha.example\n"
        ))
        .expect("valid");
        let alpha = &fabric.members[0];
        assert_eq!(alpha.asn, Asn(64501));
        assert_eq!(alpha.max_prefix.ipv4, 10);
        assert_eq!(alpha.max_prefix.ipv6, 200);
        assert_eq!(
            alpha.endpoint,
            Some(Endpoint::Name {
                host: "alpha.example.net".to_owned(),
                port: 51820
            })
        );
        let irr = alpha.irr.as_ref().expect("irr given");
        assert_eq!(irr.sources, ["RIPE", "ARIN"]);
        assert_eq!(alpha.lan_addresses().count(), 2);
        assert_eq!(
            fabric
                .member_by_address("fd00::11".parse().expect("valid"))
                .map(|m| m.name.as_str()),
            Some("alpha")
        );
    }

    #[test]
    fn duplicate_asn_names_the_first_user() {
        let members = member("alpha", 64501, "198.18.0.11", KEY_A)
            + &member("bravo", 64501, "198.18.0.12", KEY_B);
        assert_eq!(
            errors(&members),
            [
                "f.yaml:15: members[1].asn: 64501 is already used by members[0] (alpha); each \
              member needs its own ASN"
            ]
        );
    }

    #[test]
    fn member_cannot_use_route_server_asn() {
        assert_eq!(
            errors(&member("alpha", 64500, "198.18.0.11", KEY_A)),
            [
                "f.yaml:11: members[0].asn: 64500 is already used by route_servers[0] (rs1); a \
              member cannot use a route server's ASN"
            ]
        );
    }

    #[test]
    fn names_addresses_and_keys_are_unique_fabric_wide() {
        let members = member("rs1", 64501, "198.18.0.1", KEY_RS);
        assert_eq!(
            errors(&members),
            [
                "f.yaml:10: members[0].name: rs1 is already used by route_servers[0] (rs1); \
                 route servers and members each need their own name",
                "f.yaml:12: members[0].ipv4: 198.18.0.1 is already used by route_servers[0] \
                 (rs1); each LAN address belongs to one route server or member",
                "f.yaml:13: members[0].public_key: this key is already used by route_servers[0] \
                 (rs1); each node needs its own key pair (wg genkey | wg pubkey)",
            ]
        );
    }

    #[test]
    fn addresses_must_be_host_addresses_inside_the_lan() {
        assert_eq!(
            errors(&member("alpha", 64501, "10.0.0.5", KEY_A)),
            [
                "f.yaml:12: members[0].ipv4: 10.0.0.5 is outside the LAN 198.18.0.0/24; use an \
              address inside lan.ipv4"
            ]
        );
        assert_eq!(
            errors(&member("alpha", 64501, "198.18.0.255", KEY_A)),
            [
                "f.yaml:12: members[0].ipv4: 198.18.0.255 is the broadcast address of the LAN \
              198.18.0.0/24; use a host address inside the LAN"
            ]
        );
        assert_eq!(
            errors(&member("alpha", 64501, "198.18.0.0", KEY_A)).len(),
            1
        );
        let ipv6_network = errors(&format!(
            "  - {{name: alpha, asn: 64501, ipv6: \"fd00::\", public_key: \"{KEY_A}\"}}\n"
        ));
        assert_eq!(ipv6_network.len(), 1);
        assert!(ipv6_network[0].contains("subnet-router anycast"));
        let ipv6_outside = errors(&format!(
            "  - {{name: alpha, asn: 64501, ipv6: \"fd01::1\", public_key: \"{KEY_A}\"}}\n"
        ));
        assert!(ipv6_outside[0].contains("use an address inside lan.ipv6"));
    }

    #[test]
    fn member_needs_an_address() {
        assert_eq!(
            errors(&format!(
                "  - {{name: alpha, asn: 64501, public_key: \"{KEY_A}\", ipv4: null}}\n"
            )),
            ["f.yaml:10: members[0]: has neither ipv4 nor ipv6; set at least one LAN address"]
        );
    }

    #[test]
    fn irr_files_and_inline_lists_are_read() {
        let fabric = fabric_with(&format!(
            "  - name: alpha\n    asn: 64501\n    ipv4: 198.18.0.11\n    public_key: \"{KEY_A}\"\n    \
             blackhole: true\n    irr:\n      prefixes_file: irr/alpha.json\n      \
             prefixes: [\"198.18.10.0/24\", \"198.18.16.0/20 le 24\"]\n      origins: [64501]\n"
        ))
        .expect("valid");
        let alpha = &fabric.members[0];
        assert!(alpha.blackhole);
        let irr = alpha.irr.as_ref().expect("irr given");
        assert_eq!(irr.as_set, None);
        assert_eq!(
            irr.prefixes_file.as_deref(),
            Some(Path::new("irr/alpha.json"))
        );
        assert_eq!(irr.prefixes.len(), 2);
        assert_eq!(irr.origins, [Asn(64501)]);
        assert!(irr.data.is_none(), "files are read by the route server");
        let inline = fabric_with(&format!(
            "  - name: alpha\n    asn: 64501\n    ipv4: 198.18.0.11\n    public_key: \"{KEY_A}\"\n    \
             irr: {{prefixes: [\"198.18.10.0/24\"]}}\n"
        ))
        .expect("valid");
        let data = inline.members[0]
            .irr
            .as_ref()
            .and_then(|irr| irr.data.clone())
            .expect("inline data is ready at once");
        assert!(data.prefixes.is_some() && data.origins.is_none());
        assert!(!inline.members[0].blackhole);
    }

    #[test]
    fn bad_irr_entries_are_named_by_index() {
        let found = errors(&format!(
            "  - name: alpha\n    asn: 64501\n    ipv4: 198.18.0.11\n    public_key: \"{KEY_A}\"\n    \
             irr: {{prefixes: [\"198.18.10.0/24\", \"198.18.10.0/24 le 40\"], origins: [64501, x]}}\n"
        ));
        assert_eq!(
            found,
            [
                "f.yaml:14: members[0].irr.prefixes[1]: \"198.18.10.0/24 le 40\" is not an IRR \
                 prefix entry: lengths 24-40 do not fit 198.18.10.0/24: use prefix length <= ge \
                 <= le <= 32",
                "f.yaml:14: members[0].irr.origins[1]: expected an AS number like 64501 \
                 (without \"AS\"), found \"x\""
            ]
        );
    }

    #[test]
    fn every_problem_in_a_member_is_reported() {
        let found = errors(
            "  - name: Alpha\n    asn: 23456\n    ipv4: 198.18.0.11\n    public_key: nope\n    \
             endpoint: nowhere\n    max_prefix: {ipv4: 0}\n    irr: {sources: [\"a b\"]}\n",
        );
        let paths: Vec<&str> = found
            .iter()
            .filter_map(|line| line.split(": ").nth(1))
            .collect();
        assert_eq!(
            paths,
            [
                "members[0].name",
                "members[0].asn",
                "members[0].public_key",
                "members[0].endpoint",
                "members[0].max_prefix.ipv4",
                "members[0].irr.sources[0]",
                "members[0].irr",
            ],
            "{found:?}"
        );
    }

    #[test]
    fn an_empty_member_list_is_valid() {
        assert!(fabric_with("").expect("valid").members.is_empty());
        assert!(fabric_with("  []\n").expect("valid").members.is_empty());
    }
}
