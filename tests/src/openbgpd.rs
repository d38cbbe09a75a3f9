//! OpenBGPD as a test member: runs `bgpd -d` in a namespace with its own config and control
//! socket in the caller's directory and reads `bgpctl -j` output. Owns its config, socket and
//! process (killed by PID on drop; its engines exit with it); must never talk to a system-wide
//! OpenBGPD (the socket path is its own) nor leave anything outside the caller's directory.
//!
//! bgpd chroots its engines into `/run/openbgpd`, which only its systemd unit creates. The
//! daemon gets a tmpfs on `/run` inside the mount namespace `ip netns exec` gives it, with that
//! directory in it, so nothing is created on the host.

use std::{net::IpAddr, path::Path};

use serde_json::Value;

use crate::{command, daemon::Daemon, error::Error, netns::Netns, route::Route};

/// A running OpenBGPD.
#[derive(Debug)]
pub struct Openbgpd {
    daemon: Daemon,
    socket: String,
}

impl Openbgpd {
    /// Writes `LABEL-bgpd.conf` into `dir` (the global `socket` line, then `config`) and starts
    /// `bgpd -d` in `netns`.
    pub fn start(label: &str, netns: &Netns, dir: &Path, config: &str) -> Result<Self, Error> {
        let socket = dir
            .join(format!("{label}-bgpd.sock"))
            .to_string_lossy()
            .into_owned();
        let conf_path = dir.join(format!("{label}-bgpd.conf"));
        std::fs::write(&conf_path, format!("socket \"{socket}\"\n{config}")).map_err(|source| {
            Error::File {
                path: conf_path.clone(),
                source,
            }
        })?;
        command::run("bgpd", &["-n", "-f", &conf_path.to_string_lossy()])?;
        // sh execs setpriv, which execs bgpd: the PID stays the daemon's.
        let script = format!(
            "mount -t tmpfs -o mode=0755 vixp-test-openbgpd /run && mkdir /run/openbgpd && \
             exec setpriv --pdeathsig KILL bgpd -d -f '{}'",
            conf_path.to_string_lossy()
        );
        let daemon = Daemon::spawn(
            &format!("{label} openbgpd"),
            netns,
            "sh",
            &["-c".to_owned(), script],
            &dir.join(format!("{label}-bgpd.log")),
        )?;
        Ok(Self { daemon, socket })
    }

    /// The daemon's process (logs).
    pub fn daemon_ref(&self) -> &Daemon {
        &self.daemon
    }

    /// Runs `bgpctl -s SOCKET -j args...`.
    pub fn bgpctl(&self, args: &[&str]) -> Result<String, Error> {
        let mut full = vec!["-s", self.socket.as_str(), "-j"];
        full.extend_from_slice(args);
        command::run("bgpctl", &full)
    }

    /// Every neighbour with its state, from `bgpctl -j show neighbor`.
    pub fn neighbors(&self) -> Result<Vec<(IpAddr, String)>, Error> {
        parse_neighbors(&self.bgpctl(&["show", "neighbor"])?)
    }

    /// Whether the session with `neighbor` is Established.
    pub fn is_established(&self, neighbor: IpAddr) -> bool {
        self.neighbors().is_ok_and(|neighbors| {
            neighbors
                .iter()
                .any(|(address, state)| *address == neighbor && state == "Established")
        })
    }

    /// Every path the import filters accepted, from `bgpctl -j show rib` (`show rib in` would
    /// be the unfiltered Adj-RIB-In).
    pub fn routes(&self) -> Result<Vec<Route>, Error> {
        parse_rib(&self.bgpctl(&["show", "rib"])?)
    }
}

fn parse_error(what: &'static str) -> impl Fn(String) -> Error {
    move |detail| Error::Parse { what, detail }
}

/// Parses `bgpctl -j show neighbor`: `{"neighbors": [{"remote_addr": .., "state": ..}]}`.
pub fn parse_neighbors(output: &str) -> Result<Vec<(IpAddr, String)>, Error> {
    let error = parse_error("bgpctl -j show neighbor");
    let value: Value = serde_json::from_str(output).map_err(|e| error(e.to_string()))?;
    let neighbors = value
        .get("neighbors")
        .and_then(Value::as_array)
        .ok_or_else(|| error(format!("no neighbors in {output}")))?;
    neighbors
        .iter()
        .map(|neighbor| {
            let field = |key: &str| {
                neighbor
                    .get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| error(format!("no {key} in {neighbor}")))
            };
            let address = field("remote_addr")?;
            let address = address
                .parse()
                .map_err(|_| error(format!("address {address:?}")))?;
            Ok((address, field("state")?.to_owned()))
        })
        .collect()
}

/// Parses `bgpctl -j show rib`: `{"rib": [{"prefix": .., "exit_nexthop": .., "aspath": ..,
/// "med": .., "neighbor": {"remote_addr": ..}}]}`, leaving out the daemon's own networks
/// (no neighbour address).
pub fn parse_rib(output: &str) -> Result<Vec<Route>, Error> {
    let error = parse_error("bgpctl -j show rib");
    let value: Value = serde_json::from_str(output).map_err(|e| error(e.to_string()))?;
    let Some(rib) = value.get("rib").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    rib.iter()
        .map(|entry| {
            let text = |key: &str| entry.get(key).and_then(Value::as_str);
            let prefix = text("prefix")
                .and_then(|prefix| prefix.parse().ok())
                .ok_or_else(|| error(format!("no prefix in {entry}")))?;
            // exit_nexthop is NEXT_HOP as received; true_nexthop is what bgpd resolved it to.
            let next_hop = text("exit_nexthop")
                .and_then(|hop| hop.parse().ok())
                .ok_or_else(|| error(format!("no next hop in {entry}")))?;
            let as_path = text("aspath")
                .unwrap_or_default()
                .split(|c: char| !c.is_ascii_digit())
                .filter(|part| !part.is_empty())
                .map(|part| {
                    part.parse()
                        .map_err(|_| error(format!("AS path in {entry}")))
                })
                .collect::<Result<_, _>>()?;
            let med = entry
                .get("med")
                .and_then(Value::as_u64)
                .and_then(|med| u32::try_from(med).ok());
            let learnt_from = entry
                .get("neighbor")
                .and_then(|neighbor| neighbor.get("remote_addr"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok(learnt_from.parse::<IpAddr>().is_ok().then_some(Route {
                prefix,
                next_hop,
                as_path,
                med,
                communities: Vec::new(),
                large_communities: Vec::new(),
                learnt_from,
            }))
        })
        .filter_map(Result::transpose)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbors_have_address_and_state() {
        let output = r#"{"neighbors":[{"remote_as":"64500","remote_addr":"198.18.0.1",
            "state":"Established"}]}"#;
        let neighbors = parse_neighbors(output).expect("parse");
        assert_eq!(
            neighbors,
            [("198.18.0.1".parse().expect("ip"), "Established".to_owned())]
        );
        assert!(parse_neighbors("{}").is_err());
    }

    #[test]
    fn rib_entries_become_routes() {
        let output = r#"{"rib":[{"prefix":"198.18.131.0/24","exit_nexthop":"198.18.0.11",
            "true_nexthop":"198.18.0.11","neighbor":{"remote_addr":"198.18.0.1"},
            "aspath":"64501","med":0}]}"#;
        let routes = parse_rib(output).expect("parse");
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].as_path, [64501]);
        assert_eq!(routes[0].learnt_from, "198.18.0.1");
        assert!(parse_rib("{}").expect("empty").is_empty());
        let own = r#"{"rib":[{"prefix":"198.18.133.0/24","exit_nexthop":"0.0.0.0",
            "neighbor":{"remote_addr":"???"},"aspath":""}]}"#;
        assert!(parse_rib(own).expect("own network").is_empty());
        assert!(parse_rib(r#"{"rib":[{"prefix":"x"}]}"#).is_err());
    }
}
