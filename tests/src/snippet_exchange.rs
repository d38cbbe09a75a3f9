//! A test exchange whose member routers are configured only from `vixp router-config`: one
//! bridge LAN, one or more of our route servers (`rs1` at host 1, `rs2` at host 2, ...), each in
//! its own namespace, and members running BIRD, FRR or OpenBGPD with the snippet for their
//! dialect, wrapped only with what a snippet leaves to the member (router id, its own routes).
//! Owns every namespace, process and file it creates and releases them on drop, also when a
//! test panics; must not decide what a test asserts.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::IpNet;

use crate::{
    bird::{Bird, BirdConfig, BirdProtocol, HOLD_TIME, parse_protocols, parse_routes},
    command,
    daemon::{Daemon, TAIL_LINES},
    error::Error,
    exchange::{ROUTE_SERVER_ASN, lan_ipv4, lan_ipv6, parse_neighbors_json, test_public_key},
    frr::Frr,
    netns::{Host, Lan},
    openbgpd::Openbgpd,
    route::{Announcement, Route},
    temp::TempDir,
    wait::try_wait_until,
    workspace::binary_path,
};

/// The router software of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// BIRD 2.
    Bird,
    /// FRRouting (zebra and bgpd).
    Frr,
    /// OpenBGPD.
    Openbgpd,
}

impl RouterKind {
    /// The `vixp router-config` dialect argument.
    pub fn dialect(self) -> &'static str {
        match self {
            Self::Bird => "bird",
            Self::Frr => "frr",
            Self::Openbgpd => "openbgpd",
        }
    }
}

/// A member of a snippet exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnippetMember {
    /// The member's name in the fabric.
    pub name: String,
    /// The member's ASN.
    pub asn: u32,
    /// Host number: LAN addresses 198.18.0.N and fd00:198:18::N.
    pub host: u8,
    /// Its router.
    pub kind: RouterKind,
    /// The prefixes it originates (passed to `vixp router-config --prefix`).
    pub prefixes: Vec<IpNet>,
}

impl SnippetMember {
    /// A member originating 198.18.(120+N).0/24 and fd00:(120+N)::/48 (decimal digits read as
    /// hex), as the fabric exchange's customer networks.
    pub fn new(name: &str, asn: u32, host: u8, kind: RouterKind) -> Self {
        let number = host.saturating_add(120);
        let group = u16::from_str_radix(&number.to_string(), 16).unwrap_or(u16::from(number));
        let v4 = ipnet::Ipv4Net::new(Ipv4Addr::new(198, 18, number, 0), 24).unwrap_or_default();
        let v6 = ipnet::Ipv6Net::new(Ipv6Addr::new(0xfd00, group, 0, 0, 0, 0, 0, 0), 48)
            .unwrap_or_default();
        Self {
            name: name.to_owned(),
            asn,
            host,
            kind,
            prefixes: vec![IpNet::V4(v4), IpNet::V6(v6)],
        }
    }

    /// The member's LAN address of the family of `prefix`.
    pub fn next_hop_for(&self, prefix: &IpNet) -> IpAddr {
        match prefix {
            IpNet::V4(_) => IpAddr::V4(lan_ipv4(self.host)),
            IpNet::V6(_) => IpAddr::V6(lan_ipv6(self.host)),
        }
    }
}

/// A member's running router.
#[derive(Debug)]
pub enum MemberRouter {
    /// BIRD with its control socket.
    Bird {
        /// The process.
        daemon: Daemon,
        /// `birdc -s` socket.
        socket: PathBuf,
    },
    /// FRR.
    Frr(Frr),
    /// OpenBGPD.
    Openbgpd(Openbgpd),
}

/// A member's namespace and router. Fields drop in order: router, then namespace.
#[derive(Debug)]
pub struct MemberSite {
    router: MemberRouter,
    spec: SnippetMember,
    host: Host,
}

/// A route server's namespace and process (while running): our route server, or BIRD posing
/// as it.
#[derive(Debug)]
pub struct RouteServerSite {
    daemon: Option<Daemon>,
    impostor: Option<Bird>,
    name: String,
    number: u8,
    host: Host,
}

impl RouteServerSite {
    /// The route server's name in the fabric (`rs1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route server's LAN address of `prefix`'s family.
    pub fn address_for(&self, prefix: &IpNet) -> IpAddr {
        match prefix {
            IpNet::V4(_) => IpAddr::V4(lan_ipv4(self.number)),
            IpNet::V6(_) => IpAddr::V6(lan_ipv6(self.number)),
        }
    }

    /// Both LAN addresses, IPv4 first.
    pub fn addresses(&self) -> [IpAddr; 2] {
        [
            IpAddr::V4(lan_ipv4(self.number)),
            IpAddr::V6(lan_ipv6(self.number)),
        ]
    }

    /// Whether our route server runs here.
    pub fn is_running(&self) -> bool {
        self.daemon.is_some()
    }

    /// The BIRD posing as this route server, if any.
    pub fn impostor(&self) -> Option<&Bird> {
        self.impostor.as_ref()
    }
}

impl MemberSite {
    /// The member.
    pub fn spec(&self) -> &SnippetMember {
        &self.spec
    }

    /// The member's host (namespace and addresses).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The router.
    pub fn router(&self) -> &MemberRouter {
        &self.router
    }

    fn birdc(socket: &Path, args: &[&str]) -> Result<String, Error> {
        let socket = socket.to_string_lossy();
        let mut full = vec!["-s", socket.as_ref()];
        full.extend_from_slice(args);
        command::run("birdc", &full)
    }

    /// Whether the router shows both sessions (IPv4, IPv6) with `route_server` Established.
    pub fn established_with(&self, route_server: &RouteServerSite) -> bool {
        match &self.router {
            MemberRouter::Bird { socket, .. } => {
                let Ok(protocols) =
                    Self::birdc(socket, &["show", "protocols"]).and_then(|o| parse_protocols(&o))
                else {
                    return false;
                };
                ["v4", "v6"].iter().all(|family| {
                    let name = format!("vixp_{}_{family}", route_server.name);
                    protocols
                        .iter()
                        .any(|p| p.name == name && p.info.starts_with("Established"))
                })
            }
            MemberRouter::Frr(frr) => route_server
                .addresses()
                .iter()
                .all(|address| frr.is_established(*address)),
            MemberRouter::Openbgpd(openbgpd) => route_server
                .addresses()
                .iter()
                .all(|address| openbgpd.is_established(*address)),
        }
    }

    /// Every path the router learnt from the exchange, both families.
    pub fn routes(&self) -> Result<Vec<Route>, Error> {
        match &self.router {
            MemberRouter::Bird { socket, .. } => {
                let protocols = parse_protocols(&Self::birdc(socket, &["show", "protocols"])?)?;
                let mut routes = Vec::new();
                for protocol in protocols.iter().filter(|p| p.kind == "BGP") {
                    routes.extend(parse_routes(&Self::birdc(
                        socket,
                        &["show", "route", "protocol", &protocol.name, "all"],
                    )?)?);
                }
                Ok(routes)
            }
            MemberRouter::Frr(frr) => {
                let mut routes = frr.routes("ipv4")?;
                routes.extend(frr.routes("ipv6")?);
                Ok(routes)
            }
            MemberRouter::Openbgpd(openbgpd) => openbgpd.routes(),
        }
    }

    /// Whether a path learnt from `route_server` is the route of `prefix`, as `origin` sent it
    /// (next hop `origin`'s LAN address, AS path just `origin`'s ASN).
    pub fn route_via(
        route: &Route,
        route_server: &RouteServerSite,
        origin: &SnippetMember,
    ) -> bool {
        let from_route_server = route
            .learnt_from
            .starts_with(&format!("vixp_{}_", route_server.name))
            || route_server
                .addresses()
                .iter()
                .any(|address| route.learnt_from == address.to_string());
        from_route_server
            && route.next_hop == origin.next_hop_for(&route.prefix)
            && route.as_path == [origin.asn]
    }

    /// Whether the router holds every prefix of `origin` through `route_server`.
    pub fn holds_routes_of_via(
        &self,
        origin: &SnippetMember,
        route_server: &RouteServerSite,
    ) -> bool {
        self.routes().is_ok_and(|routes| {
            origin.prefixes.iter().all(|prefix| {
                routes.iter().any(|route| {
                    route.prefix == *prefix && Self::route_via(route, route_server, origin)
                })
            })
        })
    }

    /// Whether the router holds any path learnt from `route_server`.
    pub fn holds_anything_via(&self, route_server: &RouteServerSite) -> bool {
        self.routes().map_or(true, |routes| {
            routes.iter().any(|route| {
                route
                    .learnt_from
                    .starts_with(&format!("vixp_{}_", route_server.name))
                    || route_server
                        .addresses()
                        .iter()
                        .any(|address| route.learnt_from == address.to_string())
            })
        })
    }

    fn daemons(&self) -> Vec<&Daemon> {
        match &self.router {
            MemberRouter::Bird { daemon, .. } => vec![daemon],
            MemberRouter::Frr(frr) => frr.daemons().to_vec(),
            MemberRouter::Openbgpd(openbgpd) => vec![openbgpd.daemon_ref()],
        }
    }
}

/// A running snippet exchange. Fields drop in order: route servers, members, LAN, files.
#[derive(Debug)]
pub struct SnippetExchange {
    route_servers: Vec<RouteServerSite>,
    members: Vec<MemberSite>,
    lan: Lan,
    dir: TempDir,
}

impl SnippetExchange {
    /// Builds the LAN, writes the fabric file, starts `route_servers` route servers and every
    /// member's router from its `vixp router-config` snippet. Returns without waiting for BGP.
    pub fn start(
        label: &str,
        route_servers: u8,
        members: Vec<SnippetMember>,
    ) -> Result<Self, Error> {
        Self::build(label, route_servers, members, None)
    }

    /// Like [`SnippetExchange::start`] with one route server in the fabric file, but at its
    /// addresses runs BIRD with its ASN, a plain eBGP speaker that sends every member
    /// `announcements` unfiltered (behind its own ASN): what a broken route server could send,
    /// to test the members' own import filters.
    pub fn start_with_impostor(
        label: &str,
        members: Vec<SnippetMember>,
        announcements: Vec<Announcement>,
    ) -> Result<Self, Error> {
        Self::build(label, 1, members, Some(announcements))
    }

    fn build(
        label: &str,
        route_servers: u8,
        members: Vec<SnippetMember>,
        impostor: Option<Vec<Announcement>>,
    ) -> Result<Self, Error> {
        let dir = TempDir::new(label)?;
        let mut lan = Lan::new()?;
        let fabric = dir.write("fabric.yaml", &fabric_yaml(route_servers, &members))?;
        let mut sites = Vec::new();
        for number in 1..=route_servers {
            let host = lan.add_host(lan_ipv4(number), lan_ipv6(number))?;
            let mut site = RouteServerSite {
                daemon: None,
                impostor: None,
                name: format!("rs{number}"),
                number,
                host,
            };
            match &impostor {
                Some(announcements) => {
                    let config = impostor_config(number, &members, announcements.clone());
                    site.impostor = Some(Bird::start(
                        &site.name,
                        site.host.netns(),
                        dir.path(),
                        config,
                    )?);
                }
                None => site.daemon = Some(spawn_route_server(&site, &fabric, dir.path())?),
            }
            sites.push(site);
        }
        let mut running = Vec::new();
        for spec in members {
            let host = lan.add_host(lan_ipv4(spec.host), lan_ipv6(spec.host))?;
            let snippet = router_config(&fabric, &spec)?;
            dir.write(&format!("{}-snippet.conf", spec.name), &snippet)?;
            let router = start_router(&spec, &host, dir.path(), &snippet)?;
            running.push(MemberSite { router, spec, host });
        }
        Ok(Self {
            route_servers: sites,
            members: running,
            lan,
            dir,
        })
    }

    /// The member called `name`; panics if there is none (a test bug).
    pub fn member(&self, name: &str) -> &MemberSite {
        self.members
            .iter()
            .find(|m| m.spec.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// Every member.
    pub fn members(&self) -> &[MemberSite] {
        &self.members
    }

    /// Every route server.
    pub fn route_servers(&self) -> &[RouteServerSite] {
        &self.route_servers
    }

    /// The route server called `name`; panics if there is none (a test bug).
    pub fn route_server(&self, name: &str) -> &RouteServerSite {
        self.route_servers
            .iter()
            .find(|rs| rs.name == name)
            .unwrap_or_else(|| panic!("no route server {name}"))
    }

    /// The LAN.
    pub fn lan(&self) -> &Lan {
        &self.lan
    }

    /// The exchange's directory (fabric file, snippets, configs, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills route server `name` (its exact PID) without a NOTIFICATION, as a crash would.
    pub fn kill_route_server(&mut self, name: &str) {
        if let Some(site) = self.route_servers.iter_mut().find(|rs| rs.name == name) {
            site.daemon = None;
        }
    }

    /// Starts route server `name` again with the same fabric file.
    pub fn restart_route_server(&mut self, name: &str) -> Result<(), Error> {
        let fabric = self.dir.path().join("fabric.yaml");
        let dir = self.dir.path().to_path_buf();
        if let Some(site) = self.route_servers.iter_mut().find(|rs| rs.name == name) {
            site.daemon = None;
            site.daemon = Some(spawn_route_server(site, &fabric, &dir)?);
        }
        Ok(())
    }

    /// Route server `name`'s neighbours as `(member, state)`, from `route-server show neighbors
    /// --json --route-server NAME` in its namespace.
    pub fn route_server_neighbors(&self, name: &str) -> Result<Vec<(String, String)>, Error> {
        let site = self.route_server(name);
        let program = binary_path("route-server");
        let fabric = self.dir.path().join("fabric.yaml");
        let output = site.host.netns().run(
            &program.to_string_lossy(),
            &[
                "show",
                "neighbors",
                "--json",
                "-c",
                &fabric.to_string_lossy(),
                "--route-server",
                name,
            ],
        )?;
        parse_neighbors_json(&output)
    }

    /// Whether every member's router and every running route server show every session
    /// between them Established.
    pub fn all_established(&self) -> bool {
        self.route_servers
            .iter()
            .filter(|rs| rs.is_running())
            .all(|rs| {
                let neighbors = self.route_server_neighbors(&rs.name).unwrap_or_default();
                self.members.iter().all(|member| {
                    member.established_with(rs)
                        && neighbors
                            .iter()
                            .filter(|(name, state)| {
                                *name == member.spec.name && state == "Established"
                            })
                            .count()
                            == 2
                })
            })
    }

    /// Whether every member holds every other member's prefixes through every running route
    /// server.
    pub fn every_route_via_every_running_route_server(&self) -> bool {
        self.members.iter().all(|receiver| {
            self.members
                .iter()
                .filter(|origin| origin.spec.name != receiver.spec.name)
                .all(|origin| {
                    self.route_servers
                        .iter()
                        .filter(|rs| rs.is_running())
                        .all(|rs| receiver.holds_routes_of_via(&origin.spec, rs))
                })
        })
    }

    /// Polls `condition` until it holds; on timeout panics with `what` and
    /// [`SnippetExchange::report`].
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Self) -> bool,
    ) {
        if !try_wait_until(timeout, || condition(self)) {
            panic!(
                "timed out after {}s waiting for {what}\n{}",
                timeout.as_secs(),
                self.report()
            );
        }
    }

    /// Waits until every session is Established, seen from both ends.
    pub fn wait_established(&self) {
        // Sessions come up within a connect retry or two; a few hold times of margin.
        self.wait_for(
            Duration::from_secs(u64::from(HOLD_TIME) * 4),
            "every session Established, seen from both ends",
            Self::all_established,
        );
    }

    /// The exchange's state for failure messages: every member's routes, every route
    /// server's neighbours, every daemon's log tail.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for rs in &self.route_servers {
            let _ = writeln!(
                text,
                "== {} (running: {}): {:?}",
                rs.name,
                rs.is_running(),
                self.route_server_neighbors(&rs.name)
            );
        }
        for member in &self.members {
            let _ = writeln!(text, "== {} ({:?})", member.spec.name, member.spec.kind);
            match member.routes() {
                Ok(routes) => {
                    for route in routes {
                        let _ = writeln!(text, "   {route:?}");
                    }
                }
                Err(error) => {
                    let _ = writeln!(text, "   routes: {error}");
                }
            }
        }
        let daemons = self
            .route_servers
            .iter()
            .filter_map(|rs| {
                rs.daemon
                    .as_ref()
                    .or(rs.impostor.as_ref().map(Bird::daemon_ref))
            })
            .chain(self.members.iter().flat_map(MemberSite::daemons));
        for daemon in daemons {
            let _ = writeln!(text, "{}", daemon.log_tail(TAIL_LINES));
        }
        text
    }
}

/// BIRD at route server `number`'s addresses with the route server's ASN: one plain eBGP
/// session per member and family, exporting `announcements` to all of them.
fn impostor_config(
    number: u8,
    members: &[SnippetMember],
    announcements: Vec<Announcement>,
) -> BirdConfig {
    let mut protocols = Vec::new();
    for member in members {
        for (family, local, neighbor) in [
            (
                "4",
                IpAddr::V4(lan_ipv4(number)),
                IpAddr::V4(lan_ipv4(member.host)),
            ),
            (
                "6",
                IpAddr::V6(lan_ipv6(number)),
                IpAddr::V6(lan_ipv6(member.host)),
            ),
        ] {
            protocols.push(BirdProtocol {
                name: format!("{}{family}", member.name),
                local,
                neighbor,
                neighbor_asn: member.asn,
                rs_client: false,
                local_role: None,
            });
        }
    }
    BirdConfig {
        router_id: lan_ipv4(number),
        asn: ROUTE_SERVER_ASN,
        protocols,
        announcements,
    }
}

fn spawn_route_server(site: &RouteServerSite, fabric: &Path, dir: &Path) -> Result<Daemon, Error> {
    Daemon::spawn(
        &site.name,
        site.host.netns(),
        &binary_path("route-server").to_string_lossy(),
        &[
            "run".to_owned(),
            "-c".to_owned(),
            fabric.to_string_lossy().into_owned(),
            "--route-server".to_owned(),
            site.name.clone(),
        ],
        &dir.join(format!("{}.log", site.name)),
    )
}

/// Runs `vixp router-config DIALECT --fabric FABRIC --member NAME --prefix P...` for `member`.
pub fn router_config(fabric: &Path, member: &SnippetMember) -> Result<String, Error> {
    router_config_for(
        fabric,
        member.kind.dialect(),
        &member.name,
        &member.prefixes,
    )
}

/// Runs `vixp router-config DIALECT --fabric FABRIC --member NAME --prefix P...` and returns
/// the snippet.
pub fn router_config_for(
    fabric: &Path,
    dialect: &str,
    member: &str,
    prefixes: &[IpNet],
) -> Result<String, Error> {
    let program = binary_path("vixp");
    let fabric = fabric.to_string_lossy();
    let prefixes: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
    let mut args = vec![
        "router-config",
        dialect,
        "--fabric",
        fabric.as_ref(),
        "--member",
        member,
    ];
    for prefix in &prefixes {
        args.extend(["--prefix", prefix.as_str()]);
    }
    command::run(&program.to_string_lossy(), &args)
}

/// What a BIRD member adds around its snippet: router id, logging, device scanning and a static
/// protocol originating its prefixes (named so the snippet's export filter passes it).
pub fn bird_wrapper(member: &SnippetMember, snippet: &str) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "router id {};", lan_ipv4(member.host));
    conf.push_str("log stderr all;\nprotocol device { scan time 10; }\n");
    for (name, channel, ipv4) in [("own4", "ipv4", true), ("own6", "ipv6", false)] {
        let _ = writeln!(conf, "protocol static {name} {{\n  {channel};");
        for prefix in member
            .prefixes
            .iter()
            .filter(|p| matches!(p, IpNet::V4(_)) == ipv4)
        {
            let _ = writeln!(conf, "  route {prefix} unreachable;");
        }
        conf.push_str("}\n");
    }
    conf.push_str(snippet);
    conf
}

/// What an FRR member adds: logging to stdout, then the snippet, then its router id and a
/// `network` statement per prefix (without requiring the prefix in the kernel).
pub fn frr_wrapper(member: &SnippetMember, snippet: &str) -> String {
    let mut conf = format!(
        "frr defaults traditional\nhostname {}\nlog stdout\n!\n{snippet}",
        member.name
    );
    let _ = writeln!(
        conf,
        "router bgp {}\n bgp router-id {}\n no bgp network import-check",
        member.asn,
        lan_ipv4(member.host)
    );
    for (family, ipv4) in [("ipv4", true), ("ipv6", false)] {
        let _ = writeln!(conf, " address-family {family} unicast");
        for prefix in member
            .prefixes
            .iter()
            .filter(|p| matches!(p, IpNet::V4(_)) == ipv4)
        {
            let _ = writeln!(conf, "  network {prefix}");
        }
        conf.push_str(" exit-address-family\n");
    }
    conf.push_str("exit\n");
    conf
}

/// What an OpenBGPD member adds: its AS and router id, no kernel updates, and a `network`
/// statement per prefix, before the snippet.
pub fn openbgpd_wrapper(member: &SnippetMember, snippet: &str) -> String {
    let mut conf = format!(
        "AS {}\nrouter-id {}\nfib-update no\n",
        member.asn,
        lan_ipv4(member.host)
    );
    for prefix in &member.prefixes {
        let _ = writeln!(conf, "network {prefix}");
    }
    conf.push_str(snippet);
    conf
}

fn start_router(
    spec: &SnippetMember,
    host: &Host,
    dir: &Path,
    snippet: &str,
) -> Result<MemberRouter, Error> {
    let name = &spec.name;
    match spec.kind {
        RouterKind::Bird => {
            let (daemon, socket, _) = crate::bird::spawn(
                &format!("{name}-bird"),
                host.netns(),
                dir,
                &bird_wrapper(spec, snippet),
            )?;
            Ok(MemberRouter::Bird { daemon, socket })
        }
        RouterKind::Frr => Ok(MemberRouter::Frr(Frr::start(
            name,
            host.netns(),
            dir,
            &frr_wrapper(spec, snippet),
        )?)),
        RouterKind::Openbgpd => Ok(MemberRouter::Openbgpd(Openbgpd::start(
            name,
            host.netns(),
            dir,
            &openbgpd_wrapper(spec, snippet),
        )?)),
    }
}

/// The fabric.yaml of a snippet exchange: route servers `rs1`.. at hosts 1.. (one ASN, short
/// timers, each with its HTTP API on its own namespace's loopback) and every member.
pub fn fabric_yaml(route_servers: u8, members: &[SnippetMember]) -> String {
    let mut yaml = String::from(
        "version: 1\n\
         exchange:\n  name: VIXP-Snippet-Test\n\
         lan:\n  ipv4: 198.18.0.0/24\n  ipv6: \"fd00:198:18::/64\"\n\
         policy:\n  allow_prefixes: [198.18.0.0/15, \"fd00::/8\"]\n  reject_private_asns: false\n\
         route_servers:\n",
    );
    for number in 1..=route_servers {
        let _ = write!(
            yaml,
            "  - name: rs{number}\n    asn: {ROUTE_SERVER_ASN}\n    ipv4: {}\n    ipv6: \"{}\"\n    \
             public_key: \"{}\"\n    \
             bgp:\n      hold_time: {HOLD_TIME}\n      connect_retry: 2\n    \
             http: 127.0.0.1:9179\n",
            lan_ipv4(number),
            lan_ipv6(number),
            test_public_key(number),
        );
    }
    yaml.push_str("members:\n");
    for member in members {
        let _ = write!(
            yaml,
            "  - name: {}\n    asn: {}\n    ipv4: {}\n    ipv6: \"{}\"\n    public_key: \"{}\"\n",
            member.name,
            member.asn,
            lan_ipv4(member.host),
            lan_ipv6(member.host),
            test_public_key(member.host),
        );
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<SnippetMember> {
        vec![
            SnippetMember::new("alpha", 64501, 11, RouterKind::Bird),
            SnippetMember::new("bravo", 64502, 12, RouterKind::Frr),
        ]
    }

    #[test]
    fn members_originate_their_customer_networks() {
        let alpha = &members()[0];
        let prefixes: Vec<String> = alpha.prefixes.iter().map(ToString::to_string).collect();
        assert_eq!(prefixes, ["198.18.131.0/24", "fd00:131::/48"]);
        assert_eq!(
            alpha.next_hop_for(&alpha.prefixes[1]).to_string(),
            "fd00:198:18::11"
        );
    }

    #[test]
    fn fabric_with_two_route_servers_is_accepted_by_the_fabric_parser() {
        let yaml = fabric_yaml(2, &members());
        let fabric = vixp_fabric::Fabric::parse(&yaml, Path::new("fabric.yaml"))
            .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
        let names: Vec<&str> = fabric
            .route_servers
            .iter()
            .map(|rs| rs.name.as_str())
            .collect();
        assert_eq!(names, ["rs1", "rs2"]);
        assert_eq!(fabric.route_servers[1].ipv4, Some(lan_ipv4(2)));
        assert_eq!(fabric.members.len(), 2);
    }

    #[test]
    fn wrappers_originate_the_prefixes_around_the_snippet() {
        let members = members();
        let bird = bird_wrapper(&members[0], "SNIPPET\n");
        assert!(bird.starts_with("router id 198.18.0.11;\n"), "{bird}");
        assert!(
            bird.contains("route 198.18.131.0/24 unreachable;"),
            "{bird}"
        );
        assert!(bird.ends_with("SNIPPET\n"), "{bird}");
        let frr = frr_wrapper(&members[1], "SNIPPET\n");
        assert!(frr.contains("  network fd00:132::/48\n"), "{frr}");
        assert!(frr.find("SNIPPET") < frr.find("bgp router-id"), "{frr}");
        let openbgpd = openbgpd_wrapper(&members[1], "SNIPPET\n");
        assert!(openbgpd.starts_with("AS 64502\n"), "{openbgpd}");
        assert!(openbgpd.contains("network 198.18.132.0/24\n"), "{openbgpd}");
    }
}
