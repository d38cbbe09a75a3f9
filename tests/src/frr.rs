//! FRRouting as a test member: runs `zebra` and `bgpd` in a namespace with their own config,
//! PID files, zebra socket and vty sockets in a state directory of the caller's, and reads
//! `vtysh` JSON. Owns those files and the two processes (killed by PID on drop); must never
//! talk to a system-wide FRR (every socket path is its own, TCP vty ports are off).
//!
//! FRR refuses to run as root (its vty group check) and drops to the `frr` user, which clears
//! the parent-death signal [`Daemon`] arms: a test process killed outright leaves zebra and
//! bgpd running in its deleted namespace until someone kills them. Ends and panics kill them
//! by PID as usual.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use crate::{
    command,
    daemon::{Daemon, TAIL_LINES},
    error::Error,
    netns::Netns,
    route::Route,
    wait::try_wait_until,
};

/// Where Debian installs the FRR daemons.
pub const FRR_DAEMONS: &str = "/usr/lib/frr";
/// The user FRR drops to (its vty group check refuses root); owns the state directory.
pub const FRR_USER: &str = "frr";

/// A running FRR: zebra and bgpd sharing a state directory.
#[derive(Debug)]
pub struct Frr {
    // bgpd first: it drops before zebra, as FRR's own init script stops them.
    bgpd: Daemon,
    zebra: Daemon,
    state: PathBuf,
}

impl Frr {
    /// Writes `config` (a whole frr.conf for bgpd) into `dir/LABEL-frr/`, owned by the FRR
    /// user, and starts zebra, then bgpd, in `netns`.
    pub fn start(label: &str, netns: &Netns, dir: &Path, config: &str) -> Result<Self, Error> {
        let state = dir.join(format!("{label}-frr"));
        let file_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::File { path, source }
        };
        std::fs::create_dir_all(&state).map_err(file_error(&state))?;
        let bgpd_conf = state.join("bgpd.conf");
        std::fs::write(&bgpd_conf, config).map_err(file_error(&bgpd_conf))?;
        let zebra_conf = state.join("zebra.conf");
        std::fs::write(&zebra_conf, "").map_err(file_error(&zebra_conf))?;
        command::run(
            "chown",
            &["-R", &format!("{FRR_USER}:{FRR_USER}"), &path(&state)],
        )?;
        let zserv = state.join("zserv.api");
        let common = |daemon: &str, conf: &Path| -> Vec<String> {
            vec![
                "-u".to_owned(),
                FRR_USER.to_owned(),
                "-g".to_owned(),
                FRR_USER.to_owned(),
                // No TCP vty: the Unix sockets in the state directory are the only way in.
                "-P".to_owned(),
                "0".to_owned(),
                "-i".to_owned(),
                path(&state.join(format!("{daemon}.pid"))),
                "-z".to_owned(),
                path(&zserv),
                "--vty_socket".to_owned(),
                path(&state),
                "-f".to_owned(),
                path(conf),
                "--log".to_owned(),
                "stdout".to_owned(),
            ]
        };
        let zebra = Daemon::spawn(
            &format!("{label} zebra"),
            netns,
            &format!("{FRR_DAEMONS}/zebra"),
            &common("zebra", &zebra_conf),
            &dir.join(format!("{label}-zebra.log")),
        )?;
        // bgpd connects to zebra's socket; give zebra the moment it needs to create it.
        if !try_wait_until(Duration::from_secs(10), || zserv.exists()) {
            return Err(Error::Parse {
                what: "zebra start",
                detail: format!(
                    "no {} after 10 s\n{}",
                    zserv.display(),
                    zebra.log_tail(TAIL_LINES)
                ),
            });
        }
        let bgpd = Daemon::spawn(
            &format!("{label} bgpd"),
            netns,
            &format!("{FRR_DAEMONS}/bgpd"),
            &common("bgpd", &bgpd_conf),
            &dir.join(format!("{label}-bgpd.log")),
        )?;
        Ok(Self { bgpd, zebra, state })
    }

    /// bgpd's process (logs).
    pub fn daemon_ref(&self) -> &Daemon {
        &self.bgpd
    }

    /// Both processes, bgpd first (logs).
    pub fn daemons(&self) -> [&Daemon; 2] {
        [&self.bgpd, &self.zebra]
    }

    /// Runs `vtysh -c COMMAND` against this instance's sockets.
    pub fn vtysh(&self, command_line: &str) -> Result<String, Error> {
        command::run(
            "vtysh",
            &["--vty_socket", &path(&self.state), "-c", command_line],
        )
    }

    /// Every neighbour with its state, from `show bgp summary json` (both families).
    pub fn neighbors(&self) -> Result<Vec<(IpAddr, String)>, Error> {
        parse_summary(&self.vtysh("show bgp summary json")?)
    }

    /// Whether the session with `neighbor` is Established.
    pub fn is_established(&self, neighbor: IpAddr) -> bool {
        self.neighbors().is_ok_and(|neighbors| {
            neighbors
                .iter()
                .any(|(address, state)| *address == neighbor && state == "Established")
        })
    }

    /// Every path of `family` (`ipv4` or `ipv6`) in bgpd's table, from
    /// `show bgp FAMILY unicast json`.
    pub fn routes(&self, family: &str) -> Result<Vec<Route>, Error> {
        parse_routes(&self.vtysh(&format!("show bgp {family} unicast json"))?)
    }
}

fn path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn parse_error(what: &'static str) -> impl Fn(String) -> Error {
    move |detail| Error::Parse { what, detail }
}

/// Parses `show bgp summary json`: `{"ipv4Unicast": {"peers": {ADDRESS: {"state": ..}}}, ..}`.
pub fn parse_summary(output: &str) -> Result<Vec<(IpAddr, String)>, Error> {
    let error = parse_error("vtysh show bgp summary json");
    let value: Value = serde_json::from_str(output).map_err(|e| error(e.to_string()))?;
    let families = value
        .as_object()
        .ok_or_else(|| error(format!("not an object: {output}")))?;
    let mut neighbors = Vec::new();
    for summary in families.values() {
        let Some(peers) = summary.get("peers").and_then(Value::as_object) else {
            continue;
        };
        for (address, peer) in peers {
            let address: IpAddr = address
                .parse()
                .map_err(|_| error(format!("neighbour address {address:?}")))?;
            let state = peer
                .get("state")
                .and_then(Value::as_str)
                .ok_or_else(|| error(format!("no state for {address}")))?;
            if !neighbors.iter().any(|(known, _)| *known == address) {
                neighbors.push((address, state.to_owned()));
            }
        }
    }
    Ok(neighbors)
}

/// Parses `show bgp FAMILY unicast json`: `{"routes": {PREFIX: [{"path": "64501 64502",
/// "nexthops": [{"ip": ..}], "peerId": .., "metric": ..}]}}`, one [`Route`] per path learnt
/// from a neighbour.
pub fn parse_routes(output: &str) -> Result<Vec<Route>, Error> {
    let error = parse_error("vtysh show bgp unicast json");
    let value: Value = serde_json::from_str(output).map_err(|e| error(e.to_string()))?;
    let Some(routes) = value.get("routes").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut parsed = Vec::new();
    for (prefix, paths) in routes {
        let prefix = prefix
            .parse()
            .map_err(|_| error(format!("prefix {prefix:?}")))?;
        for path in paths.as_array().into_iter().flatten() {
            // The daemon's own networks have no peer ("(unspec)"): not learnt from anyone.
            let Some(learnt_from) = path
                .get("peerId")
                .and_then(Value::as_str)
                .filter(|peer| peer.parse::<IpAddr>().is_ok())
            else {
                continue;
            };
            let next_hop = path
                .get("nexthops")
                .and_then(Value::as_array)
                .and_then(|hops| hops.first())
                .and_then(|hop| hop.get("ip"))
                .and_then(Value::as_str)
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(|| error(format!("no next hop in {path}")))?;
            let as_path = path
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split(|c: char| !c.is_ascii_digit())
                .filter(|part| !part.is_empty())
                .map(|part| {
                    part.parse()
                        .map_err(|_| error(format!("AS path in {path}")))
                })
                .collect::<Result<_, _>>()?;
            let med = path
                .get("metric")
                .and_then(Value::as_u64)
                .and_then(|med| u32::try_from(med).ok());
            parsed.push(Route {
                prefix,
                next_hop,
                as_path,
                med,
                communities: Vec::new(),
                large_communities: Vec::new(),
                learnt_from: learnt_from.to_owned(),
            });
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_each_neighbor_once() {
        let output = r#"{"ipv4Unicast":{"peers":{"198.18.0.1":{"state":"Established"},
            "198.18.0.2":{"state":"Active"}}},
            "ipv6Unicast":{"peers":{"fd00:198:18::1":{"state":"Established"}}}}"#;
        let neighbors = parse_summary(output).expect("parse");
        assert_eq!(neighbors.len(), 3);
        assert!(neighbors.contains(&("198.18.0.2".parse().expect("ip"), "Active".to_owned())));
        assert!(parse_summary("[]").is_err());
    }

    #[test]
    fn routes_carry_next_hop_path_and_peer() {
        let output = r#"{"vrfId":0,"routes":{"198.18.131.0/24":[{"valid":true,
            "path":"64501","metric":7,"peerId":"198.18.0.1",
            "nexthops":[{"ip":"198.18.0.11","afi":"ipv4","used":true}]}]}}"#;
        let routes = parse_routes(output).expect("parse");
        assert_eq!(routes.len(), 1);
        assert_eq!(
            routes[0].next_hop,
            "198.18.0.11".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(routes[0].as_path, [64501]);
        assert_eq!(routes[0].med, Some(7));
        assert_eq!(routes[0].learnt_from, "198.18.0.1");
        assert!(parse_routes(r#"{"routes":{"x":[]}}"#).is_err());
        assert!(parse_routes("{}").expect("no routes").is_empty());
        let own = r#"{"routes":{"198.18.132.0/24":[{"path":"","peerId":"(unspec)",
            "nexthops":[{"ip":"0.0.0.0"}]}]}}"#;
        assert!(parse_routes(own).expect("own network").is_empty());
    }
}
