//! Conversion of one `route_servers[N]` entry, with its BGP block. Must not look at members.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde_saphyr::Spanned;

use super::{Converter, Owner, line_of, present};
use crate::error::ProblemKind;
use crate::model::{
    DEFAULT_BGP_PORT, DEFAULT_CONNECT_RETRY, DEFAULT_HOLD_TIME, DEFAULT_HTTP_LISTEN, RouteServer,
    RouteServerBgp,
};
use crate::parse::raw::{RawBgp, RawRouteServer};
use crate::parse::values;

/// Longest connect-retry interval accepted, in seconds.
const MAX_CONNECT_RETRY: i128 = 3600;

impl Converter<'_> {
    /// One route server; `None` when anything in it is wrong (and reported).
    pub(super) fn route_server(
        &mut self,
        index: usize,
        raw: &Spanned<RawRouteServer>,
        lan: (Option<Ipv4Net>, Option<Ipv6Net>),
    ) -> Option<RouteServer> {
        let line = line_of(raw);
        let base = format!("route_servers[{index}]");
        let path = |field: &str| format!("{base}.{field}");
        let raw = &raw.value;

        let name = self.required(
            &raw.name,
            line,
            &path("name"),
            "name the route server, e.g. name: rs1",
            values::name,
        );
        let owner = Owner {
            path: base.clone(),
            name: name.clone().unwrap_or_else(|| "unnamed".to_owned()),
        };
        if let (Some(name_field), Some(_)) = (&raw.name, &name) {
            self.claim_name(line_of(name_field), &path("name"), &owner);
        }

        let asn = self.required(
            &raw.asn,
            line,
            &path("asn"),
            "give the route server's ASN, e.g. asn: 64500",
            values::asn,
        );
        if let Some(asn) = asn {
            // Route servers may share an ASN (rs1 and rs2 of one exchange usually do).
            self.seen
                .route_server_asns
                .entry(asn.0)
                .or_insert_with(|| owner.clone());
        }

        let ipv4 = self.lan_ipv4(&raw.ipv4, &path("ipv4"), lan.0);
        let ipv6 = self.lan_ipv6(&raw.ipv6, &path("ipv6"), lan.1);
        if let (Some(address), Some(field)) = (ipv4, &raw.ipv4) {
            self.claim_address(line_of(field), &path("ipv4"), IpAddr::V4(address), &owner);
        }
        if let (Some(address), Some(field)) = (ipv6, &raw.ipv6) {
            self.claim_address(line_of(field), &path("ipv6"), IpAddr::V6(address), &owner);
        }
        let has_ipv4 = present(&raw.ipv4);
        if !has_ipv4 && !present(&raw.ipv6) {
            self.report(line, base.clone(), ProblemKind::NoLanAddress);
        }

        let router_id = self.router_id(raw, line, &path("router_id"), ipv4, has_ipv4, &owner);

        let public_key = self.required(
            &raw.public_key,
            line,
            &path("public_key"),
            "give the WireGuard public key of the route server's node",
            values::public_key,
        );
        if let (Some(key), Some(field)) = (public_key, &raw.public_key) {
            self.claim_key(line_of(field), &path("public_key"), key.0, &owner);
        }
        let endpoint = self.optional(&raw.endpoint, &path("endpoint"), values::endpoint);
        let http_listen = self
            .optional(&raw.http, &path("http"), values::socket_address)
            .unwrap_or(DEFAULT_HTTP_LISTEN);
        let default_listen: Vec<IpAddr> = ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(ipv6.map(IpAddr::V6))
            .collect();
        let bgp = match &raw.bgp {
            Some(bgp) => self.bgp(&bgp.value, &path("bgp"), default_listen),
            None => Some(RouteServerBgp {
                port: DEFAULT_BGP_PORT,
                hold_time: DEFAULT_HOLD_TIME,
                connect_retry: DEFAULT_CONNECT_RETRY,
                active_open: true,
                listen: default_listen,
            }),
        };

        Some(RouteServer {
            name: name?,
            asn: asn?,
            router_id: router_id?,
            ipv4,
            ipv6,
            public_key: public_key?,
            endpoint,
            bgp: bgp?,
            http_listen,
        })
    }

    /// The BGP identifier: given, or the IPv4 LAN address; unique among route servers.
    fn router_id(
        &mut self,
        raw: &RawRouteServer,
        line: u64,
        path: &str,
        ipv4: Option<Ipv4Addr>,
        has_ipv4: bool,
        owner: &Owner,
    ) -> Option<Ipv4Addr> {
        let given = self.optional(&raw.router_id, path, |scalar| {
            let id = values::ipv4_address(scalar)?;
            if id.is_unspecified() {
                return Err(ProblemKind::ZeroRouterId);
            }
            Ok(id)
        });
        let router_id = match given {
            Some(id) => id,
            None if present(&raw.router_id) => return None,
            None if !has_ipv4 => {
                self.report(line, path, ProblemKind::RouterIdRequired);
                return None;
            }
            None => ipv4?,
        };
        let id_line = raw.router_id.as_ref().map_or(line, line_of);
        if let Some(first) = Self::unique(
            |seen| &mut seen.router_ids,
            &mut self.seen,
            router_id,
            owner,
        ) {
            self.duplicate(
                id_line,
                path,
                router_id.to_string(),
                first,
                "each route server needs its own BGP identifier (RFC 6286)",
            );
        }
        Some(router_id)
    }

    /// `route_servers[N].bgp:`; every field has a default.
    fn bgp(
        &mut self,
        raw: &RawBgp,
        base: &str,
        default_listen: Vec<IpAddr>,
    ) -> Option<RouteServerBgp> {
        let path = |field: &str| format!("{base}.{field}");
        let problems_before = self.problems.len();
        let port = self.optional(&raw.port, &path("port"), |scalar| {
            values::integer(
                scalar,
                1..=65535,
                "a TCP port like 179",
                "a TCP port, 1-65535",
            )
        });
        // RFC 4271 section 4.2: the hold time is either zero or at least three seconds.
        let hold_time = self.optional(&raw.hold_time, &path("hold_time"), |scalar| {
            values::integer(
                scalar,
                0..=65535,
                "a hold time in seconds like 90",
                "0 (no keepalives) or 3-65535 seconds (RFC 4271 section 4.2)",
            )
            .and_then(|seconds| {
                if seconds == 1 || seconds == 2 {
                    Err(ProblemKind::OutOfRange {
                        value: seconds.to_string(),
                        valid: "0 (no keepalives) or 3-65535 seconds (RFC 4271 section 4.2)",
                    })
                } else {
                    Ok(seconds)
                }
            })
        });
        let connect_retry = self.optional(&raw.connect_retry, &path("connect_retry"), |scalar| {
            values::integer(
                scalar,
                1..=MAX_CONNECT_RETRY,
                "seconds between connection attempts, like 10",
                "1-3600 seconds",
            )
        });
        let active_open = self.optional(&raw.active_open, &path("active_open"), values::boolean);
        let listen = match &raw.listen {
            Some(list) if list.value.is_empty() => {
                self.report(
                    line_of(list),
                    path("listen"),
                    ProblemKind::EmptyList {
                        hint: "leave listen out to use the LAN addresses, or list addresses",
                    },
                );
                None
            }
            Some(list) => {
                let addresses: Vec<Option<IpAddr>> = list
                    .value
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        self.optional(
                            &Some(item.clone()),
                            &format!("{base}.listen[{index}]"),
                            values::ip_address,
                        )
                    })
                    .collect();
                addresses.into_iter().collect::<Option<Vec<_>>>()
            }
            None => Some(default_listen),
        };
        let to_u16 = |value: i128, default: u16| u16::try_from(value).unwrap_or(default);
        if self.problems.len() > problems_before {
            return None;
        }
        Some(RouteServerBgp {
            port: port.map_or(DEFAULT_BGP_PORT, |port| to_u16(port, DEFAULT_BGP_PORT)),
            hold_time: hold_time.map_or(DEFAULT_HOLD_TIME, |hold| to_u16(hold, DEFAULT_HOLD_TIME)),
            connect_retry: connect_retry.map_or(DEFAULT_CONNECT_RETRY, |retry| {
                to_u16(retry, DEFAULT_CONNECT_RETRY)
            }),
            active_open: active_open.unwrap_or(true),
            listen: listen?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::Path;

    use crate::{DEFAULT_HOLD_TIME, DEFAULT_HTTP_LISTEN, Fabric};

    const KEY_1: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const KEY_2: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    fn fabric_with(route_servers: &str) -> Result<Fabric, Vec<String>> {
        let text = format!(
            "version: 1\nexchange:\n  name: X\nlan:\n  ipv4: 198.18.0.0/24\n  ipv6: \"fd00::/64\"\n\
             route_servers:\n{route_servers}"
        );
        Fabric::parse(&text, Path::new("f.yaml"))
            .map_err(|error| error.to_string().lines().map(str::to_owned).collect())
    }

    fn errors(route_servers: &str) -> Vec<String> {
        fabric_with(route_servers).err().unwrap_or_default()
    }

    #[test]
    fn defaults_are_filled_in() {
        let fabric = fabric_with(&format!(
            "  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    ipv6: \"fd00::1\"\n    \
             public_key: \"{KEY_1}\"\n"
        ))
        .expect("valid");
        let rs = fabric.route_server(None).expect("one route server");
        assert_eq!(rs.router_id, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(rs.bgp.port, 179);
        assert_eq!(rs.bgp.hold_time, DEFAULT_HOLD_TIME);
        assert!(rs.bgp.active_open);
        assert_eq!(
            rs.bgp.listen,
            vec![
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                "fd00::1".parse::<IpAddr>().expect("valid")
            ]
        );
        assert_eq!(rs.http_listen, DEFAULT_HTTP_LISTEN);
    }

    #[test]
    fn bgp_block_values_are_read() {
        let fabric = fabric_with(&format!(
            "  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    public_key: \"{KEY_1}\"\n    \
             bgp: {{port: 1179, hold_time: 0, connect_retry: 3600, active_open: false, listen: [\"::1\"]}}\n    \
             http: \"[::1]:8080\"\n"
        ))
        .expect("valid");
        let rs = &fabric.route_servers[0];
        assert_eq!(rs.bgp.port, 1179);
        assert_eq!(rs.bgp.hold_time, 0);
        assert_eq!(rs.bgp.connect_retry, 3600);
        assert!(!rs.bgp.active_open);
        assert_eq!(rs.bgp.listen, vec!["::1".parse::<IpAddr>().expect("valid")]);
        assert_eq!(rs.http_listen.port(), 8080);
    }

    #[test]
    fn hold_time_of_1_or_2_is_refused() {
        for hold in [1, 2] {
            assert_eq!(
                errors(&format!(
                    "  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    public_key: \"{KEY_1}\"\n    \
                     bgp:\n      hold_time: {hold}\n"
                )),
                [format!(
                    "f.yaml:13: route_servers[0].bgp.hold_time: {hold} is out of range; use 0 \
                     (no keepalives) or 3-65535 seconds (RFC 4271 section 4.2)"
                )]
            );
        }
    }

    #[test]
    fn connect_retry_and_port_ranges() {
        let found = errors(&format!(
            "  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    public_key: \"{KEY_1}\"\n    \
             bgp:\n      port: 0\n      connect_retry: 3601\n      listen: []\n"
        ));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("bgp.port: 0 is out of range"));
        assert!(found[1].contains("bgp.connect_retry: 3601 is out of range"));
        assert!(found[2].contains("bgp.listen: is empty"));
    }

    #[test]
    fn ipv6_only_route_server_needs_router_id() {
        assert_eq!(
            errors(&format!(
                "  - name: rs1\n    asn: 64500\n    ipv6: \"fd00::1\"\n    public_key: \"{KEY_1}\"\n"
            )),
            [
                "f.yaml:8: route_servers[0].router_id: required when the route server has no ipv4 \
              address; set an IPv4 router_id"
            ]
        );
        let fabric = fabric_with(&format!(
            "  - name: rs1\n    asn: 64500\n    router_id: 192.0.2.1\n    ipv6: \"fd00::1\"\n    \
             public_key: \"{KEY_1}\"\n"
        ))
        .expect("valid");
        assert_eq!(
            fabric.route_servers[0].router_id,
            Ipv4Addr::new(192, 0, 2, 1)
        );
        assert_eq!(fabric.route_servers[0].bgp.listen.len(), 1);
    }

    #[test]
    fn route_server_needs_an_address_and_a_key() {
        assert_eq!(
            errors("  - name: rs1\n    asn: 64500\n    router_id: 192.0.2.1\n"),
            [
                "f.yaml:8: route_servers[0]: has neither ipv4 nor ipv6; set at least one LAN address",
                "f.yaml:8: route_servers[0].public_key: required but missing; give the WireGuard \
                 public key of the route server's node",
            ]
        );
    }

    #[test]
    fn two_route_servers_may_share_an_asn_but_not_a_router_id() {
        let both = format!(
            "  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    public_key: \"{KEY_1}\"\n  \
             - name: rs2\n    asn: 64500\n    ipv4: 198.18.0.2\n    router_id: 198.18.0.1\n    \
             public_key: \"{KEY_2}\"\n"
        );
        assert_eq!(
            errors(&both),
            [
                "f.yaml:15: route_servers[1].router_id: 198.18.0.1 is already used by \
              route_servers[0] (rs1); each route server needs its own BGP identifier (RFC 6286)"
            ]
        );
        let fabric = fabric_with(&both.replace("    router_id: 198.18.0.1\n", "")).expect("valid");
        assert_eq!(fabric.route_servers.len(), 2);
        assert!(fabric.route_server(None).is_none());
        assert_eq!(
            fabric.route_server(Some("rs2")).map(|rs| rs.router_id),
            Some(Ipv4Addr::new(198, 18, 0, 2))
        );
    }

    #[test]
    fn router_id_zero_is_refused() {
        let found = errors(&format!(
            "  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n    router_id: 0.0.0.0\n    \
             public_key: \"{KEY_1}\"\n"
        ));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("f.yaml:11: route_servers[0].router_id: 0.0.0.0 is not"));
    }
}
