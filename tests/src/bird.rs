//! BIRD 2 as a test peer or as the anchor route server: writes bird.conf, runs
//! `bird -f` in a namespace and parses `birdc` output. Owns its config, control socket and PID
//! file in the caller's directory; must never talk to a system-wide BIRD.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use ipnet::IpNet;

use crate::{
    command,
    daemon::Daemon,
    error::Error,
    netns::Netns,
    route::{Announcement, Community, LargeCommunity, Route},
};

/// Hold time (seconds) used by every test session; short so dropped sessions show quickly.
pub const HOLD_TIME: u16 = 9;
/// Keepalive time (seconds) used by every test session.
pub const KEEPALIVE_TIME: u16 = 3;

/// One BGP session in a BIRD config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdProtocol {
    /// The protocol's name (`show protocols`, `reload in NAME`).
    pub name: String,
    /// The local address the session uses.
    pub local: IpAddr,
    /// The neighbour's address; its family is the session's single address family.
    pub neighbor: IpAddr,
    /// The neighbour's ASN.
    pub neighbor_asn: u32,
    /// Whether the neighbour is a route-server client (RFC 7947 `rs client`).
    pub rs_client: bool,
    /// BIRD's `local role` (RFC 9234: `rs_client`, `customer`, ...), if any.
    pub local_role: Option<String>,
}

/// What a BIRD instance is: its identity, sessions and announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdConfig {
    /// The BGP identifier.
    pub router_id: Ipv4Addr,
    /// The local ASN.
    pub asn: u32,
    /// BGP sessions.
    pub protocols: Vec<BirdProtocol>,
    /// Prefixes originated (static routes exported with the given attributes).
    pub announcements: Vec<Announcement>,
}

impl BirdConfig {
    /// Renders bird.conf. Route-server clients get the arouteserver recipe against path
    /// hiding: one sorted table per family and `secondary` export, so each client receives the
    /// best path among those it may receive (RFC 7947 section 2.3.2.1).
    pub fn render(&self) -> String {
        let mut conf = String::new();
        let _ = writeln!(conf, "router id {};", self.router_id);
        conf.push_str("log stderr all;\n");
        conf.push_str("protocol device { scan time 10; }\n");
        let route_server = self.protocols.iter().any(|p| p.rs_client);
        if route_server {
            conf.push_str("ipv4 table rs4 sorted;\nipv6 table rs6 sorted;\n");
        }
        for (family, ipv4) in [("4", true), ("6", false)] {
            let routes: Vec<&Announcement> = self
                .announcements
                .iter()
                .filter(|a| matches!(a.prefix, IpNet::V4(_)) == ipv4)
                .collect();
            let channel = if ipv4 { "ipv4" } else { "ipv6" };
            let _ = writeln!(conf, "protocol static originate{family} {{\n  {channel};");
            for announcement in &routes {
                let _ = writeln!(conf, "  route {} unreachable;", announcement.prefix);
            }
            conf.push_str("}\n");
            let _ = writeln!(conf, "filter export{family} {{");
            for announcement in &routes {
                let _ = writeln!(conf, "  if net = {} then {{", announcement.prefix);
                if let Some(med) = announcement.med {
                    let _ = writeln!(conf, "    bgp_med = {med};");
                }
                for (asn, value) in &announcement.communities {
                    let _ = writeln!(conf, "    bgp_community.add(({asn},{value}));");
                }
                for (global, one, two) in &announcement.large_communities {
                    let _ = writeln!(conf, "    bgp_large_community.add(({global},{one},{two}));");
                }
                for asn in announcement.foreign_path.iter().rev() {
                    let _ = writeln!(conf, "    bgp_path.prepend({asn});");
                }
                for _ in 0..announcement.prepend {
                    let _ = writeln!(conf, "    bgp_path.prepend({});", self.asn);
                }
                if let Some(next_hop) = announcement.next_hop {
                    let _ = writeln!(conf, "    bgp_next_hop = {next_hop};");
                }
                if let Some(otc) = announcement.otc {
                    let _ = writeln!(conf, "    bgp_otc = {otc};");
                }
                conf.push_str("    accept;\n  }\n");
            }
            conf.push_str("  reject;\n}\n");
        }
        for protocol in &self.protocols {
            let family = if protocol.neighbor.is_ipv4() {
                "4"
            } else {
                "6"
            };
            let channel = if protocol.neighbor.is_ipv4() {
                "ipv4"
            } else {
                "ipv6"
            };
            let _ = writeln!(conf, "protocol bgp {} {{", protocol.name);
            let _ = writeln!(conf, "  local {} as {};", protocol.local, self.asn);
            let _ = writeln!(
                conf,
                "  neighbor {} as {};",
                protocol.neighbor, protocol.neighbor_asn
            );
            let _ = writeln!(
                conf,
                "  hold time {HOLD_TIME}; keepalive time {KEEPALIVE_TIME};\n  \
                 connect delay time 1; connect retry time 2; error wait time 1, 4;"
            );
            if let Some(role) = &protocol.local_role {
                let _ = writeln!(conf, "  local role {role};");
            }
            if protocol.rs_client {
                conf.push_str("  rs client;\n");
                let _ = writeln!(
                    conf,
                    "  {channel} {{ table rs{family}; secondary; import all; export all; }};"
                );
            } else {
                let _ = writeln!(
                    conf,
                    "  {channel} {{ import all; export filter export{family}; }};"
                );
            }
            conf.push_str("}\n");
        }
        conf
    }
}

/// A running BIRD instance.
#[derive(Debug)]
pub struct Bird {
    config: BirdConfig,
    config_path: PathBuf,
    socket: PathBuf,
    daemon: Daemon,
}

/// One line of `birdc show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolState {
    /// Protocol name.
    pub name: String,
    /// Protocol type (`BGP`, `Device`, `Static`).
    pub kind: String,
    /// `up`, `down`, `start`.
    pub state: String,
    /// The info column, `Established` for an established BGP session.
    pub info: String,
}

impl Bird {
    /// Writes `LABEL.conf` into `dir` and starts `bird -f` in `netns` with its control socket
    /// and PID file beside it.
    pub fn start(
        label: &str,
        netns: &Netns,
        dir: &Path,
        config: BirdConfig,
    ) -> Result<Self, Error> {
        let (daemon, socket, config_path) = spawn(label, netns, dir, &config.render())?;
        Ok(Self {
            config,
            config_path,
            socket,
            daemon,
        })
    }

    /// The configuration the daemon is running with.
    pub fn config(&self) -> &BirdConfig {
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

    /// Runs `birdc -s SOCKET args...` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String, Error> {
        let socket = path_string(&self.socket);
        let mut full = vec!["-s", socket.as_str()];
        full.extend_from_slice(args);
        command::run("birdc", &full)
    }

    /// `show protocols`, parsed.
    pub fn protocols(&self) -> Result<Vec<ProtocolState>, Error> {
        parse_protocols(&self.birdc(&["show", "protocols"])?)
    }

    /// Whether BGP protocol `name` is Established.
    pub fn is_established(&self, name: &str) -> bool {
        self.protocols().is_ok_and(|protocols| {
            protocols
                .iter()
                .any(|p| p.name == name && p.info.starts_with("Established"))
        })
    }

    /// BGP routes learnt through protocol `name` (`show route protocol NAME all`), all paths.
    pub fn routes(&self, name: &str) -> Result<Vec<Route>, Error> {
        parse_routes(&self.birdc(&["show", "route", "protocol", name, "all"])?)
    }

    /// BGP routes in `table` (`show route table TABLE all`), all paths.
    pub fn table_routes(&self, table: &str) -> Result<Vec<Route>, Error> {
        parse_routes(&self.birdc(&["show", "route", "table", table, "all"])?)
    }

    /// The "Import updates: received" counter of protocol `name`.
    pub fn import_updates_received(&self, name: &str) -> Result<u64, Error> {
        let output = self.birdc(&["show", "protocols", "all", name])?;
        parse_import_updates_received(&output)
    }

    /// `reload in NAME`: asks the neighbour to resend its routes (ROUTE-REFRESH, RFC 2918).
    pub fn reload_in(&self, name: &str) -> Result<(), Error> {
        let output = self.birdc(&["reload", "in", name])?;
        expect_output("birdc reload in", &output, "reloading")
    }

    /// Rewrites bird.conf from `config` and applies it with `birdc configure`.
    pub fn reconfigure(&mut self, config: BirdConfig) -> Result<(), Error> {
        write_file(&self.config_path, &config.render())?;
        let output = self.birdc(&["configure"])?;
        expect_output("birdc configure", &output, "Reconfigur")?;
        self.config = config;
        Ok(())
    }
}

/// Writes `text` to `LABEL.conf` in `dir` and starts `bird -f` in `netns` with its control
/// socket (`LABEL.ctl`), PID file and log beside it; returns the daemon, the socket and the
/// configuration file.
pub fn spawn(
    label: &str,
    netns: &Netns,
    dir: &Path,
    text: &str,
) -> Result<(Daemon, PathBuf, PathBuf), Error> {
    let config_path = dir.join(format!("{label}.conf"));
    write_file(&config_path, text)?;
    let socket = dir.join(format!("{label}.ctl"));
    let pid_file = dir.join(format!("{label}.pid"));
    let args = vec![
        "-f".to_owned(),
        "-c".to_owned(),
        path_string(&config_path),
        "-s".to_owned(),
        path_string(&socket),
        "-P".to_owned(),
        path_string(&pid_file),
    ];
    let log = dir.join(format!("{label}.log"));
    let daemon = Daemon::spawn(label, netns, "bird", &args, &log)?;
    Ok((daemon, socket, config_path))
}

fn expect_output(what: &'static str, output: &str, needle: &str) -> Result<(), Error> {
    if output.contains(needle) {
        Ok(())
    } else {
        Err(Error::Parse {
            what,
            detail: format!("expected {needle:?} in {output:?}"),
        })
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Parses `birdc show protocols`.
pub fn parse_protocols(output: &str) -> Result<Vec<ProtocolState>, Error> {
    let mut lines = output.lines().skip_while(|line| !line.starts_with("Name "));
    if lines.next().is_none() {
        return Err(Error::Parse {
            what: "birdc show protocols",
            detail: format!("no header in {output:?}"),
        });
    }
    let mut protocols = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, kind, _table, state, _since, info @ ..] = fields.as_slice() else {
            continue;
        };
        protocols.push(ProtocolState {
            name: (*name).to_owned(),
            kind: (*kind).to_owned(),
            state: (*state).to_owned(),
            info: info.join(" "),
        });
    }
    Ok(protocols)
}

/// Parses `birdc show route ... all`, keeping BGP routes (those with a `BGP.next_hop`).
pub fn parse_routes(output: &str) -> Result<Vec<Route>, Error> {
    struct Partial {
        prefix: IpNet,
        learnt_from: String,
        next_hop: Option<IpAddr>,
        as_path: Vec<u32>,
        med: Option<u32>,
        communities: Vec<Community>,
        large_communities: Vec<LargeCommunity>,
    }
    let parse_error = |detail: String| Error::Parse {
        what: "birdc show route",
        detail,
    };
    let mut partials: Vec<Partial> = Vec::new();
    let mut prefix: Option<IpNet> = None;
    for line in output.lines() {
        if let Some(attribute) = line.strip_prefix('\t') {
            let Some(current) = partials.last_mut() else {
                continue;
            };
            let Some((key, value)) = attribute.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "BGP.next_hop" => {
                    let first = value.split_whitespace().next().unwrap_or_default();
                    current.next_hop = Some(
                        first
                            .parse()
                            .map_err(|_| parse_error(format!("next hop {value:?} in {line:?}")))?,
                    );
                }
                "BGP.as_path" => {
                    current.as_path = value
                        .split(|c: char| !c.is_ascii_digit())
                        .filter(|part| !part.is_empty())
                        .map(|part| part.parse().map_err(|_| parse_error(line.to_owned())))
                        .collect::<Result<_, _>>()?;
                }
                "BGP.med" => {
                    current.med = Some(value.parse().map_err(|_| parse_error(line.to_owned()))?);
                }
                "BGP.community" => {
                    current.communities = tuples(value)
                        .into_iter()
                        .map(|parts| match parts.as_slice() {
                            [asn, data] => Ok((
                                u16::try_from(*asn).map_err(|_| parse_error(line.to_owned()))?,
                                u16::try_from(*data).map_err(|_| parse_error(line.to_owned()))?,
                            )),
                            _ => Err(parse_error(line.to_owned())),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "BGP.large_community" => {
                    current.large_communities = tuples(value)
                        .into_iter()
                        .map(|parts| match parts.as_slice() {
                            [global, one, two] => Ok((*global, *one, *two)),
                            _ => Err(parse_error(line.to_owned())),
                        })
                        .collect::<Result<_, _>>()?;
                }
                _ => {}
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with("BIRD ") || line.starts_with("Table ") {
            continue;
        }
        let Some((head, rest)) = line.split_once('[') else {
            continue;
        };
        if !line.starts_with(' ') {
            let text = head.split_whitespace().next().unwrap_or_default();
            prefix = Some(
                text.parse()
                    .map_err(|_| parse_error(format!("prefix in {line:?}")))?,
            );
        }
        let Some(current_prefix) = prefix else {
            return Err(parse_error(format!("route without prefix: {line:?}")));
        };
        let learnt_from = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        partials.push(Partial {
            prefix: current_prefix,
            learnt_from,
            next_hop: None,
            as_path: Vec::new(),
            med: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        });
    }
    Ok(partials
        .into_iter()
        .filter_map(|partial| {
            Some(Route {
                prefix: partial.prefix,
                next_hop: partial.next_hop?,
                as_path: partial.as_path,
                med: partial.med,
                communities: partial.communities,
                large_communities: partial.large_communities,
                learnt_from: partial.learnt_from,
            })
        })
        .collect())
}

/// Splits `(1,2) (3, 4, 5)` into `[[1, 2], [3, 4, 5]]`, dropping anything that is not a number.
fn tuples(value: &str) -> Vec<Vec<u32>> {
    value
        .split(')')
        .map(|group| {
            group
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|part| part.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|numbers| !numbers.is_empty())
        .collect()
}

/// Parses the "Import updates:" received column of `birdc show protocols all NAME`.
pub fn parse_import_updates_received(output: &str) -> Result<u64, Error> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Import updates:"))
        .and_then(|counts| counts.split_whitespace().next())
        .and_then(|received| received.parse().ok())
        .ok_or_else(|| Error::Parse {
            what: "birdc show protocols all",
            detail: format!("no Import updates line in {output:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW_ROUTE: &str = "BIRD 2.0.12 ready.
Table master4:
198.18.128.0/24      unreachable [originate4 16:09:33.771] * (200)
\tType: static univ
198.18.130.0/24      unicast [rs4 16:09:41.512 from 198.18.0.1] * (100) [AS64502?]
\tvia 198.18.0.12 on eth0
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 64502 64502
\tBGP.next_hop: 198.18.0.12
\tBGP.med: 20
\tBGP.local_pref: 100
\tBGP.community: (64502,2) (64502,3)
\tBGP.large_community: (64502, 2, 2)
                     unicast [rs4b 16:09:42.000 from 198.18.0.1] (100) [AS64503i]
\tvia 198.18.0.13 on eth0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 64503
\tBGP.next_hop: 198.18.0.13 fe80::1
\tBGP.local_pref: 100
";

    #[test]
    fn parses_bgp_routes_and_skips_static_ones() {
        let routes = parse_routes(SHOW_ROUTE).expect("parse");
        assert_eq!(routes.len(), 2, "{routes:?}");
        let first = &routes[0];
        assert_eq!(first.prefix.to_string(), "198.18.130.0/24");
        assert_eq!(first.next_hop.to_string(), "198.18.0.12");
        assert_eq!(first.as_path, vec![64502, 64502]);
        assert_eq!(first.med, Some(20));
        assert_eq!(first.communities, vec![(64502, 2), (64502, 3)]);
        assert_eq!(first.large_communities, vec![(64502, 2, 2)]);
        assert_eq!(first.learnt_from, "rs4");
        let second = &routes[1];
        assert_eq!(second.prefix.to_string(), "198.18.130.0/24");
        assert_eq!(second.next_hop.to_string(), "198.18.0.13");
        assert_eq!(second.med, None);
        assert!(second.communities.is_empty());
        assert_eq!(second.learnt_from, "rs4b");
    }

    #[test]
    fn bad_next_hop_is_an_error_not_a_panic() {
        let output = "1.2.3.0/24 unicast [x 1] *\n\tBGP.next_hop: banana\n";
        assert!(parse_routes(output).is_err());
    }

    #[test]
    fn parses_protocols() {
        let output = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     16:09:33.769  
rs4        BGP        ---        up     16:09:34.602  Established   
rs6        BGP        ---        start  16:09:34.559  Active        Socket: Connection refused
";
        let protocols = parse_protocols(output).expect("parse");
        assert_eq!(protocols.len(), 3);
        assert_eq!(protocols[1].name, "rs4");
        assert_eq!(protocols[1].info, "Established");
        assert_eq!(protocols[2].state, "start");
        assert_eq!(protocols[2].info, "Active Socket: Connection refused");
    }

    #[test]
    fn parses_import_updates_received() {
        let output =
            "    Route change stats:     received   rejected   filtered    ignored   accepted
      Import updates:              7          0          0          1          6
      Import withdraws:            0          0        ---          0          0
";
        assert_eq!(parse_import_updates_received(output).expect("parse"), 7);
        assert!(parse_import_updates_received("nothing").is_err());
    }

    #[test]
    fn member_config_sets_attributes_per_prefix() {
        let config = BirdConfig {
            router_id: Ipv4Addr::new(198, 18, 0, 11),
            asn: 64501,
            protocols: vec![BirdProtocol {
                name: "rs4".to_owned(),
                local: "198.18.0.11".parse().expect("ip"),
                neighbor: "198.18.0.1".parse().expect("ip"),
                neighbor_asn: 64500,
                rs_client: false,
                local_role: None,
            }],
            announcements: vec![Announcement {
                med: Some(10),
                communities: vec![(64501, 1)],
                large_communities: vec![(64501, 1, 1)],
                prepend: 2,
                ..Announcement::new("198.18.128.0/24".parse().expect("prefix"))
            }],
        };
        let conf = config.render();
        assert!(
            conf.contains("route 198.18.128.0/24 unreachable;"),
            "{conf}"
        );
        assert!(conf.contains("bgp_med = 10;"), "{conf}");
        assert!(conf.contains("bgp_community.add((64501,1));"), "{conf}");
        assert!(
            conf.contains("bgp_large_community.add((64501,1,1));"),
            "{conf}"
        );
        assert_eq!(
            conf.matches("bgp_path.prepend(64501);").count(),
            2,
            "{conf}"
        );
        assert!(conf.contains("export filter export4"), "{conf}");
        assert!(!conf.contains("rs client"), "{conf}");
    }

    #[test]
    fn rendered_configs_are_accepted_by_bird() {
        let dir = crate::temp::TempDir::new("bird-parse").expect("temp");
        let mut config = BirdConfig {
            router_id: Ipv4Addr::new(198, 18, 0, 1),
            asn: 64500,
            protocols: vec![BirdProtocol {
                name: "alpha6".to_owned(),
                local: "fd00:198:18::1".parse().expect("ip"),
                neighbor: "fd00:198:18::11".parse().expect("ip"),
                neighbor_asn: 64501,
                rs_client: true,
                local_role: Some("rs_server".to_owned()),
            }],
            announcements: Vec::new(),
        };
        let path = dir.write("rs.conf", &config.render()).expect("write");
        command::run("bird", &["-p", "-c", &path_string(&path)]).expect("bird -p accepts RS");
        config.protocols[0].rs_client = false;
        config
            .announcements
            .push(Announcement::new("fd00:1:11::/48".parse().expect("prefix")));
        let path = dir.write("member.conf", &config.render()).expect("write");
        command::run("bird", &["-p", "-c", &path_string(&path)]).expect("bird -p accepts member");
    }
}
