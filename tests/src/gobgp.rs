//! GoBGP as a test peer: writes a gobgpd TOML config, runs `gobgpd` in a namespace and drives
//! it with the `gobgp` CLI (JSON output parsed with serde_json). Owns its config and log in the
//! caller's directory; the gRPC API listens on the namespace's own loopback, so it can never
//! reach a system-wide gobgpd.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use ipnet::IpNet;
use serde_json::Value;

use crate::{
    bird::{HOLD_TIME, KEEPALIVE_TIME},
    daemon::Daemon,
    error::Error,
    netns::Netns,
    route::{Announcement, Route},
};

/// The gRPC API address inside the daemon's namespace (loopback of that namespace only, so the
/// port is unique to the test by construction).
pub const API_HOST: &str = "127.0.0.1";
/// The gRPC API port inside the daemon's namespace.
pub const API_PORT: u16 = 50051;
/// GoBGP's `session_state` value for Established in `gobgp neighbor -j`.
const ESTABLISHED: u64 = 6;

/// One neighbour in a gobgpd config; its address family is that of its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GobgpNeighbor {
    /// The neighbour's address.
    pub address: IpAddr,
    /// The local address of the session.
    pub local: IpAddr,
    /// The neighbour's ASN.
    pub asn: u32,
}

/// A gobgpd configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GobgpConfig {
    /// The BGP identifier.
    pub router_id: Ipv4Addr,
    /// The local ASN.
    pub asn: u32,
    /// BGP neighbours.
    pub neighbors: Vec<GobgpNeighbor>,
}

impl GobgpConfig {
    /// Renders the TOML config with the tests' short timers.
    pub fn render(&self) -> String {
        let mut conf = String::new();
        let _ = writeln!(
            conf,
            "[global.config]\n  as = {}\n  router-id = \"{}\"",
            self.asn, self.router_id
        );
        for neighbor in &self.neighbors {
            let family = if neighbor.address.is_ipv4() {
                "ipv4-unicast"
            } else {
                "ipv6-unicast"
            };
            let _ = writeln!(
                conf,
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    \
                 peer-as = {}\n  [neighbors.transport.config]\n    local-address = \"{}\"\n  \
                 [neighbors.timers.config]\n    connect-retry = 2\n    hold-time = {HOLD_TIME}\n    \
                 keepalive-interval = {KEEPALIVE_TIME}\n    idle-hold-time-after-reset = 1\n  \
                 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
                 afi-safi-name = \"{family}\"",
                neighbor.address, neighbor.asn, neighbor.local
            );
        }
        conf
    }
}

/// A running gobgpd.
#[derive(Debug)]
pub struct Gobgp {
    config: GobgpConfig,
    netns_name: String,
    daemon: Daemon,
}

impl Gobgp {
    /// Writes `LABEL.toml` into `dir` and starts gobgpd in `netns`.
    pub fn start(
        label: &str,
        netns: &Netns,
        dir: &Path,
        config: GobgpConfig,
    ) -> Result<Self, Error> {
        let config_path = dir.join(format!("{label}.toml"));
        std::fs::write(&config_path, config.render()).map_err(|source| Error::File {
            path: config_path.clone(),
            source,
        })?;
        let args = vec![
            "-f".to_owned(),
            config_path.to_string_lossy().into_owned(),
            "-p".to_owned(),
            "--pprof-disable".to_owned(),
            format!("--api-hosts={API_HOST}:{API_PORT}"),
        ];
        let log = dir.join(format!("{label}.log"));
        let daemon = Daemon::spawn(label, netns, "gobgpd", &args, &log)?;
        Ok(Self {
            config,
            netns_name: netns.name().to_owned(),
            daemon,
        })
    }

    /// The configuration the daemon runs with.
    pub fn config(&self) -> &GobgpConfig {
        &self.config
    }

    /// The daemon process.
    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// The daemon process, read-only (logs).
    pub fn daemon_ref(&self) -> &Daemon {
        &self.daemon
    }

    /// Runs `gobgp -u API_HOST -p API_PORT args...` inside the daemon's namespace.
    pub fn gobgp(&self, args: &[&str]) -> Result<String, Error> {
        let port = API_PORT.to_string();
        let mut full = vec![
            "netns",
            "exec",
            self.netns_name.as_str(),
            "gobgp",
            "-u",
            API_HOST,
            "-p",
            port.as_str(),
        ];
        full.extend_from_slice(args);
        crate::command::run("ip", &full)
    }

    /// Whether the session to `address` is Established (`gobgp neighbor -j`).
    pub fn is_established(&self, address: IpAddr) -> bool {
        self.gobgp(&["neighbor", "-j"])
            .ok()
            .and_then(|output| parse_neighbor_states(&output).ok())
            .is_some_and(|states| states.contains(&(address, true)))
    }

    /// Announces (or replaces) `announcement` from the global RIB. The route server's
    /// neighbours see the ASN prepended `prepend` extra times.
    pub fn announce(&self, announcement: &Announcement) -> Result<(), Error> {
        let prefix = announcement.prefix.to_string();
        let mut args: Vec<String> = vec![
            "global".into(),
            "rib".into(),
            "add".into(),
            "-a".into(),
            family(&announcement.prefix).into(),
            prefix,
        ];
        if let Some(med) = announcement.med {
            args.extend(["med".into(), med.to_string()]);
        }
        if !announcement.communities.is_empty() {
            let list: Vec<String> = announcement
                .communities
                .iter()
                .map(|(asn, value)| format!("{asn}:{value}"))
                .collect();
            args.extend(["community".into(), list.join(",")]);
        }
        if !announcement.large_communities.is_empty() {
            let list: Vec<String> = announcement
                .large_communities
                .iter()
                .map(|(global, one, two)| format!("{global}:{one}:{two}"))
                .collect();
            args.extend(["large-community".into(), list.join(",")]);
        }
        if announcement.prepend > 0 {
            // gobgpd adds its own ASN once on export; the local path holds the extra copies.
            let path = vec![self.config.asn.to_string(); announcement.prepend];
            args.extend(["aspath".into(), path.join(" ")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.gobgp(&args).map(drop)
    }

    /// Withdraws `prefix` from the global RIB.
    pub fn withdraw(&self, prefix: &IpNet) -> Result<(), Error> {
        let prefix = prefix.to_string();
        self.gobgp(&["global", "rib", "del", "-a", family_of(&prefix), &prefix])
            .map(drop)
    }

    /// Routes learnt from neighbours for one family (`ipv4` or `ipv6`), all paths.
    pub fn routes(&self, family: &str) -> Result<Vec<Route>, Error> {
        parse_rib(&self.gobgp(&["global", "rib", "-a", family, "-j"])?)
    }
}

fn family(prefix: &IpNet) -> &'static str {
    match prefix {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

fn family_of(prefix: &str) -> &'static str {
    if prefix.contains(':') { "ipv6" } else { "ipv4" }
}

fn parse_error(detail: String) -> Error {
    Error::Parse {
        what: "gobgp -j",
        detail,
    }
}

/// Parses `gobgp neighbor -j` into `(address, established)` pairs.
pub fn parse_neighbor_states(output: &str) -> Result<Vec<(IpAddr, bool)>, Error> {
    let value: Value = serde_json::from_str(output).map_err(|e| parse_error(e.to_string()))?;
    let neighbors = value
        .as_array()
        .ok_or_else(|| parse_error(format!("not an array: {output}")))?;
    neighbors
        .iter()
        .map(|neighbor| {
            let address = neighbor
                .pointer("/conf/neighbor_address")
                .and_then(Value::as_str)
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| parse_error(format!("no neighbor_address in {neighbor}")))?;
            let state = neighbor.pointer("/state/session_state");
            let established = state.and_then(Value::as_u64) == Some(ESTABLISHED)
                || state.and_then(Value::as_str) == Some("ESTABLISHED");
            Ok((address, established))
        })
        .collect()
}

/// Parses `gobgp global rib -a FAMILY -j`, keeping paths learnt from a neighbour.
pub fn parse_rib(output: &str) -> Result<Vec<Route>, Error> {
    if output.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(output).map_err(|e| parse_error(e.to_string()))?;
    let table = value
        .as_object()
        .ok_or_else(|| parse_error(format!("not an object: {output}")))?;
    let mut routes = Vec::new();
    for (prefix_text, paths) in table {
        let prefix: IpNet = prefix_text
            .parse()
            .map_err(|_| parse_error(format!("prefix {prefix_text:?}")))?;
        for path in paths.as_array().into_iter().flatten() {
            let Some(learnt_from) = path.get("neighbor-ip").and_then(Value::as_str) else {
                continue;
            };
            routes.push(parse_path(prefix, learnt_from, path)?);
        }
    }
    routes.sort_by(|a, b| (a.prefix, &a.learnt_from).cmp(&(b.prefix, &b.learnt_from)));
    Ok(routes)
}

fn parse_path(prefix: IpNet, learnt_from: &str, path: &Value) -> Result<Route, Error> {
    let mut route = Route {
        prefix,
        next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        as_path: Vec::new(),
        med: None,
        communities: Vec::new(),
        large_communities: Vec::new(),
        learnt_from: learnt_from.to_owned(),
    };
    let mut next_hop = None;
    for attribute in path
        .get("attrs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let number = |key: &str| attribute.get(key).and_then(Value::as_u64);
        match number("type") {
            // RFC 4271 4.3: ORIGIN 1, AS_PATH 2, NEXT_HOP 3, MED 4; RFC 1997 COMMUNITIES 8;
            // RFC 4760 MP_REACH_NLRI 14; RFC 8092 LARGE_COMMUNITY 32.
            Some(2) => {
                for segment in attribute
                    .get("as_paths")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for asn in segment
                        .get("asns")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let asn = asn.as_u64().and_then(|n| u32::try_from(n).ok());
                        route
                            .as_path
                            .push(asn.ok_or_else(|| parse_error(format!("ASN in {attribute}")))?);
                    }
                }
            }
            Some(3 | 14) => {
                next_hop = attribute
                    .get("nexthop")
                    .and_then(Value::as_str)
                    .and_then(|text| text.parse().ok());
            }
            Some(4) => {
                route.med = number("metric")
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| parse_error(format!("MED in {attribute}")))?;
            }
            Some(8) => {
                for community in attribute
                    .get("communities")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let raw = community
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| parse_error(format!("community in {attribute}")))?;
                    let [a, b, c, d] = raw.to_be_bytes();
                    route
                        .communities
                        .push((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])));
                }
            }
            Some(32) => {
                for large in attribute
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let field = |key: &str| {
                        large
                            .get(key)
                            .and_then(Value::as_u64)
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| parse_error(format!("{key} in {attribute}")))
                    };
                    route.large_communities.push((
                        field("ASN")?,
                        field("LocalData1")?,
                        field("LocalData2")?,
                    ));
                }
            }
            _ => {}
        }
    }
    route.next_hop = next_hop.ok_or_else(|| parse_error(format!("no next hop in {path}")))?;
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_received_paths_and_skips_local_ones() {
        let output = r#"{"198.18.128.0/24":[{"nlri":{"prefix":"198.18.128.0/24"},"best":true,"attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[64501,64501]}]},{"type":3,"nexthop":"198.18.0.11"},{"type":4,"metric":10},{"type":8,"communities":[4227137537]},{"type":32,"value":[{"ASN":64501,"LocalData1":1,"LocalData2":1}]}],"stale":false,"source-id":"198.18.0.1","neighbor-ip":"198.18.0.1"}],"198.18.130.0/24":[{"nlri":{"prefix":"198.18.130.0/24"},"best":true,"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"0.0.0.0"}],"stale":false}]}"#;
        let routes = parse_rib(output).expect("parse");
        assert_eq!(routes.len(), 1, "{routes:?}");
        let route = &routes[0];
        assert_eq!(route.prefix.to_string(), "198.18.128.0/24");
        assert_eq!(route.next_hop.to_string(), "198.18.0.11");
        assert_eq!(route.as_path, vec![64501, 64501]);
        assert_eq!(route.med, Some(10));
        assert_eq!(route.communities, vec![(64501, 1)]);
        assert_eq!(route.large_communities, vec![(64501, 1, 1)]);
        assert_eq!(route.learnt_from, "198.18.0.1");
    }

    #[test]
    fn parses_ipv6_next_hop_from_mp_reach() {
        let output = r#"{"fd00:1:11::/48":[{"attrs":[{"type":2,"as_paths":[{"asns":[64501]}]},{"type":14,"nexthop":"fd00:198:18::11","afi":2,"safi":1}],"neighbor-ip":"fd00:198:18::1"}]}"#;
        let routes = parse_rib(output).expect("parse");
        assert_eq!(routes[0].next_hop.to_string(), "fd00:198:18::11");
        assert_eq!(parse_rib("").expect("empty"), Vec::new());
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(parse_rib("{").is_err());
        assert!(parse_rib(r#"{"x":[]}"#).is_err());
        assert!(parse_neighbor_states("[{}]").is_err());
    }

    #[test]
    fn parses_neighbor_states() {
        let output = r#"[{"conf":{"neighbor_address":"198.18.0.1"},"state":{"session_state":6}},{"conf":{"neighbor_address":"fd00:198:18::1"},"state":{"session_state":3}}]"#;
        let states = parse_neighbor_states(output).expect("parse");
        assert_eq!(
            states,
            vec![
                ("198.18.0.1".parse().expect("ip"), true),
                ("fd00:198:18::1".parse().expect("ip"), false)
            ]
        );
    }

    #[test]
    fn config_is_accepted_by_gobgpd() {
        let dir = crate::temp::TempDir::new("gobgp-parse").expect("temp");
        let config = GobgpConfig {
            router_id: Ipv4Addr::new(198, 18, 0, 12),
            asn: 64502,
            neighbors: vec![GobgpNeighbor {
                address: "fd00:198:18::1".parse().expect("ip"),
                local: "fd00:198:18::12".parse().expect("ip"),
                asn: 64500,
            }],
        };
        let path = dir.write("g.toml", &config.render()).expect("write");
        let path = path.to_string_lossy().into_owned();
        crate::command::run("gobgpd", &["-d", "-f", &path]).expect("gobgpd -d accepts it");
    }
}
