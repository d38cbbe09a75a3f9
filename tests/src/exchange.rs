//! A whole test exchange: one bridge LAN, a route server (BIRD as the anchor, or our
//! `route-server`) and member routers (BIRD or GoBGP), each in its own namespace. Owns every
//! namespace, process and file it creates and releases them on drop, also when a test panics;
//! must not decide what a test asserts beyond the expected view of routes.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use base64::Engine as _;
use ipnet::IpNet;

use crate::{
    bird::{Bird, BirdConfig, BirdProtocol, HOLD_TIME},
    daemon::{Daemon, TAIL_LINES},
    error::Error,
    gobgp::{Gobgp, GobgpConfig, GobgpNeighbor},
    netns::{Host, Lan},
    route::{Announcement, Route},
    temp::TempDir,
    wait::try_wait_until,
    workspace::binary_path,
};

/// The route server's ASN in test exchanges.
pub const ROUTE_SERVER_ASN: u32 = 64500;
/// The route server's host number on the LAN (198.18.0.1, fd00:198:18::1).
pub const ROUTE_SERVER_HOST: u8 = 1;
/// The route server's name in the fabric file.
pub const ROUTE_SERVER_NAME: &str = "rs1";
/// Where our route server serves its HTTP API inside its namespace.
pub const ROUTE_SERVER_HTTP: &str = "127.0.0.1:9179";
/// BIRD protocol names a member uses for its two sessions with the route server.
pub const MEMBER_PROTOCOLS: [&str; 2] = ["rs4", "rs6"];

/// Which implementation acts as the route server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteServerKind {
    /// BIRD 2 with `rs client` and `secondary` (the arouteserver recipe): the anchor.
    Bird,
    /// Our `route-server` binary, configured from a fabric.yaml.
    Ours,
}

/// Which daemon a member runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// BIRD 2.
    Bird,
    /// GoBGP.
    Gobgp,
}

/// A member of a test exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// The member's name (fabric file, BIRD protocol names on the route server).
    pub name: String,
    /// The member's ASN.
    pub asn: u32,
    /// The host number: LAN addresses 198.18.0.N and fd00:198:18::N (N written in hex digits
    /// that read like the decimal, so host 11 is fd00:198:18::11).
    pub host: u8,
    /// The daemon it runs.
    pub kind: MemberKind,
    /// What it announces at start.
    pub announcements: Vec<Announcement>,
}

impl MemberSpec {
    /// The member's IPv4 LAN address.
    pub fn ipv4(&self) -> Ipv4Addr {
        lan_ipv4(self.host)
    }

    /// The member's IPv6 LAN address.
    pub fn ipv6(&self) -> Ipv6Addr {
        lan_ipv6(self.host)
    }
}

/// 198.18.0.N.
pub fn lan_ipv4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, host)
}

/// fd00:198:18::N, with N's decimal digits read as hex (11 becomes ::11).
pub fn lan_ipv6(host: u8) -> Ipv6Addr {
    let last = u16::from_str_radix(&host.to_string(), 16).unwrap_or(u16::from(host));
    Ipv6Addr::new(0xfd00, 0x198, 0x18, 0, 0, 0, 0, last)
}

/// A member's router process.
#[derive(Debug)]
pub enum Router {
    /// A BIRD member.
    Bird(Bird),
    /// A GoBGP member.
    Gobgp(Gobgp),
}

/// A running member: its spec, its router (while alive) and its namespace.
#[derive(Debug)]
pub struct Member {
    spec: MemberSpec,
    router: Option<Router>,
    host: Host,
}

impl Member {
    /// The member's spec, with the announcements it currently makes.
    pub fn spec(&self) -> &MemberSpec {
        &self.spec
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The member's host (namespace and addresses).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Whether the member's router is running.
    pub fn is_alive(&self) -> bool {
        self.router.is_some()
    }

    /// The member's LAN address of the same family as `prefix`.
    pub fn next_hop_for(&self, prefix: &IpNet) -> IpAddr {
        match prefix {
            IpNet::V4(_) => IpAddr::V4(self.spec.ipv4()),
            IpNet::V6(_) => IpAddr::V6(self.spec.ipv6()),
        }
    }

    fn router(&self) -> Result<&Router, Error> {
        self.router.as_ref().ok_or_else(|| Error::Parse {
            what: "member router",
            detail: format!("{} has been stopped", self.spec.name),
        })
    }

    /// Whether both sessions (IPv4 and IPv6) with the route server are Established, as the
    /// member's own CLI shows them.
    pub fn sessions_established(&self) -> bool {
        match &self.router {
            Some(Router::Bird(bird)) => MEMBER_PROTOCOLS
                .iter()
                .all(|protocol| bird.is_established(protocol)),
            Some(Router::Gobgp(gobgp)) => {
                gobgp.is_established(IpAddr::V4(lan_ipv4(ROUTE_SERVER_HOST)))
                    && gobgp.is_established(IpAddr::V6(lan_ipv6(ROUTE_SERVER_HOST)))
            }
            None => false,
        }
    }

    /// Every path the member received from the route server, both families.
    pub fn routes(&self) -> Result<Vec<Route>, Error> {
        let mut routes = Vec::new();
        match self.router()? {
            Router::Bird(bird) => {
                for protocol in MEMBER_PROTOCOLS {
                    routes.extend(bird.routes(protocol)?);
                }
            }
            Router::Gobgp(gobgp) => {
                for family in ["ipv4", "ipv6"] {
                    routes.extend(gobgp.routes(family)?);
                }
            }
        }
        Ok(routes)
    }

    /// Announces `announcement`, replacing an earlier announcement of the same prefix.
    pub fn announce(&mut self, announcement: Announcement) -> Result<(), Error> {
        let mut announcements = self.spec.announcements.clone();
        announcements.retain(|a| a.prefix != announcement.prefix);
        announcements.push(announcement.clone());
        match self.router.as_mut() {
            Some(Router::Bird(bird)) => {
                let config = BirdConfig {
                    announcements: announcements.clone(),
                    ..bird.config().clone()
                };
                bird.reconfigure(config)?;
            }
            Some(Router::Gobgp(gobgp)) => gobgp.announce(&announcement)?,
            None => self.router().map(drop)?,
        }
        self.spec.announcements = announcements;
        Ok(())
    }

    /// Withdraws `prefix`.
    pub fn withdraw(&mut self, prefix: &IpNet) -> Result<(), Error> {
        let mut announcements = self.spec.announcements.clone();
        announcements.retain(|a| a.prefix != *prefix);
        match self.router.as_mut() {
            Some(Router::Bird(bird)) => {
                let config = BirdConfig {
                    announcements: announcements.clone(),
                    ..bird.config().clone()
                };
                bird.reconfigure(config)?;
            }
            Some(Router::Gobgp(gobgp)) => gobgp.withdraw(prefix)?,
            None => self.router().map(drop)?,
        }
        self.spec.announcements = announcements;
        Ok(())
    }

    /// Kills the member's router (its exact PID), dropping its sessions without a
    /// NOTIFICATION.
    pub fn kill(&mut self) {
        self.router = None;
    }

    /// The BIRD instance, for BIRD members.
    pub fn bird(&self) -> Option<&Bird> {
        match &self.router {
            Some(Router::Bird(bird)) => Some(bird),
            _ => None,
        }
    }

    /// The GoBGP instance, for GoBGP members.
    pub fn gobgp(&self) -> Option<&Gobgp> {
        match &self.router {
            Some(Router::Gobgp(gobgp)) => Some(gobgp),
            _ => None,
        }
    }

    fn daemon(&self) -> Option<&Daemon> {
        match &self.router {
            Some(Router::Bird(bird)) => Some(bird.daemon_ref()),
            Some(Router::Gobgp(gobgp)) => Some(gobgp.daemon_ref()),
            None => None,
        }
    }
}

/// Extra fabric-file text for our route server, for tests that need policy or member fields
/// the plain exchange does not set (IRR lists, BLACKHOLE opt-in, BGP role).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FabricExtras {
    /// YAML lines added to the `policy:` block, each indented by two spaces (`  bgp_role:
    /// strict`).
    pub policy: String,
    /// `(member name, YAML lines)` added to that member's entry, each indented by four spaces
    /// (`    blackhole: true`).
    pub members: Vec<(String, String)>,
    /// `(member name, role)`: a BIRD member's `local role` towards the route server (RFC
    /// 9234: `rs_client`, `customer`, ...). Not fabric text, but set up with it.
    pub bird_roles: Vec<(String, String)>,
}

impl FabricExtras {
    /// Adds `lines` to member `name`'s entry.
    pub fn member(mut self, name: &str, lines: &str) -> Self {
        self.members.push((name.to_owned(), lines.to_owned()));
        self
    }

    /// Gives BIRD member `name` the `local role` `role` on its sessions with the route server.
    pub fn bird_role(mut self, name: &str, role: &str) -> Self {
        self.bird_roles.push((name.to_owned(), role.to_owned()));
        self
    }

    /// Adds `lines` to the policy block.
    pub fn policy(mut self, lines: &str) -> Self {
        self.policy.push_str(lines);
        self
    }
}

/// The route server process.
#[derive(Debug)]
pub enum RouteServer {
    /// BIRD as route server.
    Bird(Bird),
    /// Our route server.
    Ours(Daemon),
}

/// A running test exchange. Fields drop in order: processes first, then namespaces, then files.
#[derive(Debug)]
pub struct Exchange {
    route_server: RouteServer,
    members: Vec<Member>,
    route_server_host: Host,
    lan: Lan,
    dir: TempDir,
}

impl Exchange {
    /// Builds the LAN, starts the route server of `kind` and every member in `members`.
    pub fn start(
        label: &str,
        kind: RouteServerKind,
        members: Vec<MemberSpec>,
    ) -> Result<Self, Error> {
        Self::start_with(label, kind, members, &FabricExtras::default())
    }

    /// [`Exchange::start`] with `extras` added to our route server's fabric file (the BIRD
    /// route server ignores them).
    pub fn start_with(
        label: &str,
        kind: RouteServerKind,
        members: Vec<MemberSpec>,
        extras: &FabricExtras,
    ) -> Result<Self, Error> {
        let dir = TempDir::new(label)?;
        let mut lan = Lan::new()?;
        let route_server_host =
            lan.add_host(lan_ipv4(ROUTE_SERVER_HOST), lan_ipv6(ROUTE_SERVER_HOST))?;
        let mut hosts = Vec::new();
        for spec in &members {
            hosts.push(lan.add_host(spec.ipv4(), spec.ipv6())?);
        }
        let route_server = match kind {
            RouteServerKind::Bird => RouteServer::Bird(Bird::start(
                "rs",
                route_server_host.netns(),
                dir.path(),
                route_server_bird_config(&members),
            )?),
            RouteServerKind::Ours => {
                let fabric = dir.write("fabric.yaml", &fabric_yaml_with(&members, extras))?;
                let args = vec![
                    "run".to_owned(),
                    "-c".to_owned(),
                    fabric.to_string_lossy().into_owned(),
                    "--control-socket".to_owned(),
                    dir.path()
                        .join("control.sock")
                        .to_string_lossy()
                        .into_owned(),
                ];
                let program = binary_path("route-server");
                RouteServer::Ours(Daemon::spawn(
                    "route-server",
                    route_server_host.netns(),
                    &program.to_string_lossy(),
                    &args,
                    &dir.path().join("route-server.log"),
                )?)
            }
        };
        let mut running = Vec::new();
        for (spec, host) in members.into_iter().zip(hosts) {
            let role = extras
                .bird_roles
                .iter()
                .find(|(name, _)| *name == spec.name)
                .map(|(_, role)| role.clone());
            let router = start_member(&spec, &host, &dir, role)?;
            running.push(Member {
                spec,
                router: Some(router),
                host,
            });
        }
        Ok(Self {
            route_server,
            members: running,
            route_server_host,
            lan,
            dir,
        })
    }

    /// The member called `name`; panics if there is none (a test bug).
    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.spec.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The member called `name`, mutably; panics if there is none (a test bug).
    pub fn member_mut(&mut self, name: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.spec.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// All members.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The route server process.
    pub fn route_server(&self) -> &RouteServer {
        &self.route_server
    }

    /// The route server's host.
    pub fn route_server_host(&self) -> &Host {
        &self.route_server_host
    }

    /// The LAN.
    pub fn lan(&self) -> &Lan {
        &self.lan
    }

    /// The exchange's directory (configs, logs, control sockets).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The routes `receiver` should hold when every prefix has one origin: each live other
    /// member's announcements, with that member's ASN and next hop.
    pub fn expected_routes(&self, receiver: &str) -> Vec<(Announcement, u32, IpAddr)> {
        self.members
            .iter()
            .filter(|m| m.spec.name != receiver && m.is_alive())
            .flat_map(|m| {
                m.spec
                    .announcements
                    .iter()
                    .map(|a| (a.clone(), m.spec.asn, m.next_hop_for(&a.prefix)))
            })
            .collect()
    }

    /// Whether `receiver` holds exactly [`Exchange::expected_routes`], attributes unchanged.
    pub fn holds_expected_routes(&self, receiver: &str) -> bool {
        let Ok(routes) = self.member(receiver).routes() else {
            return false;
        };
        let expected = self.expected_routes(receiver);
        routes.len() == expected.len()
            && expected.iter().all(|(announcement, asn, next_hop)| {
                routes
                    .iter()
                    .any(|route| announcement.matches(route, *asn, *next_hop))
            })
    }

    /// Whether the route server's own CLI shows both of `member`'s sessions Established:
    /// `birdc show protocols` for BIRD, `route-server show neighbors --json` for ours.
    pub fn route_server_sees_established(&self, member: &str) -> bool {
        match &self.route_server {
            RouteServer::Bird(bird) => {
                bird.is_established(&format!("{member}4"))
                    && bird.is_established(&format!("{member}6"))
            }
            RouteServer::Ours(_) => self.route_server_neighbors().is_ok_and(|neighbors| {
                neighbors
                    .iter()
                    .filter(|(name, state)| name == member && state == "Established")
                    .count()
                    == 2
            }),
        }
    }

    /// Our route server's neighbours as `(member, state)` pairs, from
    /// `route-server show neighbors --json` run in its namespace.
    pub fn route_server_neighbors(&self) -> Result<Vec<(String, String)>, Error> {
        let program = binary_path("route-server");
        let fabric = self.path("fabric.yaml");
        let output = self.route_server_host.netns().run(
            &program.to_string_lossy(),
            &[
                "show",
                "neighbors",
                "--json",
                "-c",
                &fabric.to_string_lossy(),
            ],
        )?;
        parse_neighbors_json(&output)
    }

    /// Runs `route-server reload` against our route server's control socket (a unix socket in
    /// the test directory, reachable from any namespace) and returns its output.
    pub fn route_server_reload(&self) -> Result<std::process::Output, Error> {
        let program = binary_path("route-server");
        std::process::Command::new(&program)
            .arg("reload")
            .arg("--control-socket")
            .arg(self.path("control.sock"))
            .output()
            .map_err(|source| Error::Spawn {
                program: program.display().to_string(),
                source,
            })
    }

    /// Our route server's `/metrics` text, fetched with curl inside its namespace.
    pub fn route_server_metrics(&self) -> Result<String, Error> {
        self.route_server_get("/metrics")
    }

    /// GETs `path` from our route server's HTTP listener (inside its namespace).
    pub fn route_server_get(&self, path: &str) -> Result<String, Error> {
        let url = format!("http://{ROUTE_SERVER_HTTP}{path}");
        self.route_server_host
            .netns()
            .run("curl", &["-sS", "--max-time", "5", &url])
    }

    /// Polls `condition` until it holds; on timeout panics with `what`, every member's
    /// received routes and the tail of every daemon's log.
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

    /// Waits until every live member has both sessions Established, as its own CLI shows.
    pub fn wait_established(&self) {
        // Sessions come up within a connect-retry or two; a hold time of margin on top.
        let timeout = Duration::from_secs(u64::from(HOLD_TIME) * 3);
        self.wait_for(
            timeout,
            "all sessions to be Established, seen from both ends",
            |exchange| {
                exchange.members.iter().filter(|m| m.is_alive()).all(|m| {
                    m.sessions_established() && exchange.route_server_sees_established(m.name())
                })
            },
        );
    }

    /// A description of the exchange's state for failure messages.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for member in &self.members {
            let _ = writeln!(
                text,
                "== {} (alive: {}, sessions established: {})",
                member.spec.name,
                member.is_alive(),
                member.sessions_established()
            );
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
        let route_server = match &self.route_server {
            RouteServer::Bird(bird) => bird.daemon_ref(),
            RouteServer::Ours(daemon) => daemon,
        };
        let daemons =
            std::iter::once(route_server).chain(self.members.iter().filter_map(Member::daemon));
        for daemon in daemons {
            let _ = writeln!(text, "{}", daemon.log_tail(TAIL_LINES));
        }
        text
    }

    /// The path of a file in the exchange's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn start_member(
    spec: &MemberSpec,
    host: &Host,
    dir: &TempDir,
    local_role: Option<String>,
) -> Result<Router, Error> {
    let route_server_v4 = IpAddr::V4(lan_ipv4(ROUTE_SERVER_HOST));
    let route_server_v6 = IpAddr::V6(lan_ipv6(ROUTE_SERVER_HOST));
    match spec.kind {
        MemberKind::Bird => {
            let session = |name: &str, local: IpAddr, neighbor: IpAddr| BirdProtocol {
                name: name.to_owned(),
                local,
                neighbor,
                neighbor_asn: ROUTE_SERVER_ASN,
                rs_client: false,
                local_role: local_role.clone(),
            };
            let config = BirdConfig {
                router_id: spec.ipv4(),
                asn: spec.asn,
                protocols: vec![
                    session(
                        MEMBER_PROTOCOLS[0],
                        IpAddr::V4(spec.ipv4()),
                        route_server_v4,
                    ),
                    session(
                        MEMBER_PROTOCOLS[1],
                        IpAddr::V6(spec.ipv6()),
                        route_server_v6,
                    ),
                ],
                announcements: spec.announcements.clone(),
            };
            Ok(Router::Bird(Bird::start(
                &spec.name,
                host.netns(),
                dir.path(),
                config,
            )?))
        }
        MemberKind::Gobgp => {
            let config = GobgpConfig {
                router_id: spec.ipv4(),
                asn: spec.asn,
                neighbors: vec![
                    GobgpNeighbor {
                        address: route_server_v4,
                        local: IpAddr::V4(spec.ipv4()),
                        asn: ROUTE_SERVER_ASN,
                    },
                    GobgpNeighbor {
                        address: route_server_v6,
                        local: IpAddr::V6(spec.ipv6()),
                        asn: ROUTE_SERVER_ASN,
                    },
                ],
            };
            let gobgp = Gobgp::start(&spec.name, host.netns(), dir.path(), config)?;
            // The API comes up a moment after the process; announcements wait for it.
            let ready =
                try_wait_until(Duration::from_secs(10), || gobgp.gobgp(&["global"]).is_ok());
            if !ready {
                return Err(Error::Parse {
                    what: "gobgp global",
                    detail: format!(
                        "gobgpd API not ready\n{}",
                        gobgp.daemon_ref().log_tail(TAIL_LINES)
                    ),
                });
            }
            for announcement in &spec.announcements {
                gobgp.announce(announcement)?;
            }
            Ok(Router::Gobgp(gobgp))
        }
    }
}

/// The anchor route server's BIRD config: one `rs client` session per member and family.
pub fn route_server_bird_config(members: &[MemberSpec]) -> BirdConfig {
    let mut protocols = Vec::new();
    for member in members {
        protocols.push(BirdProtocol {
            name: format!("{}4", member.name),
            local: IpAddr::V4(lan_ipv4(ROUTE_SERVER_HOST)),
            neighbor: IpAddr::V4(member.ipv4()),
            neighbor_asn: member.asn,
            rs_client: true,
            local_role: None,
        });
        protocols.push(BirdProtocol {
            name: format!("{}6", member.name),
            local: IpAddr::V6(lan_ipv6(ROUTE_SERVER_HOST)),
            neighbor: IpAddr::V6(member.ipv6()),
            neighbor_asn: member.asn,
            rs_client: true,
            local_role: None,
        });
    }
    BirdConfig {
        router_id: lan_ipv4(ROUTE_SERVER_HOST),
        asn: ROUTE_SERVER_ASN,
        protocols,
        announcements: Vec::new(),
    }
}

/// Parses the `{"neighbors": [{"member": .., "state": ..}]}` document of our route server's
/// API into `(member, state)` pairs.
pub fn parse_neighbors_json(output: &str) -> Result<Vec<(String, String)>, Error> {
    let parse_error = |detail: String| Error::Parse {
        what: "route-server show neighbors --json",
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_str(output).map_err(|error| parse_error(error.to_string()))?;
    let neighbors = value
        .get("neighbors")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| parse_error(format!("no neighbors array in {output}")))?;
    neighbors
        .iter()
        .map(|neighbor| {
            let field = |key: &str| {
                neighbor
                    .get(key)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| parse_error(format!("no {key} in {neighbor}")))
            };
            Ok((field("member")?, field("state")?))
        })
        .collect()
}

/// A WireGuard-shaped public key for test host `host`: base64 of 32 bytes, unique per host.
pub fn test_public_key(host: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([host; 32])
}

/// The fabric.yaml (v1) describing a test exchange, for our route server.
pub fn fabric_yaml(members: &[MemberSpec]) -> String {
    fabric_yaml_with(members, &FabricExtras::default())
}

/// [`fabric_yaml`] with `extras` added to the policy block and to members' entries.
pub fn fabric_yaml_with(members: &[MemberSpec], extras: &FabricExtras) -> String {
    let mut yaml = String::new();
    let _ = write!(
        yaml,
        "version: 1\n\
         exchange:\n  name: VIXP-Test\n  description: vixp interop test exchange\n\
         lan:\n  ipv4: 198.18.0.0/24\n  ipv6: \"fd00:198:18::/64\"\n\
         policy:\n  allow_prefixes: [198.18.0.0/15, \"fd00::/8\"]\n  reject_private_asns: false\n\
         {}\
         route_servers:\n  - name: {ROUTE_SERVER_NAME}\n    asn: {ROUTE_SERVER_ASN}\n    \
         ipv4: {}\n    ipv6: \"{}\"\n    public_key: \"{}\"\n    \
         bgp:\n      hold_time: {HOLD_TIME}\n      connect_retry: 2\n    \
         http: {ROUTE_SERVER_HTTP}\n",
        with_newline(&extras.policy),
        lan_ipv4(ROUTE_SERVER_HOST),
        lan_ipv6(ROUTE_SERVER_HOST),
        test_public_key(ROUTE_SERVER_HOST),
    );
    yaml.push_str("members:\n");
    for member in members {
        let _ = write!(
            yaml,
            "  - name: {}\n    asn: {}\n    ipv4: {}\n    ipv6: \"{}\"\n    public_key: \"{}\"\n",
            member.name,
            member.asn,
            member.ipv4(),
            member.ipv6(),
            test_public_key(member.host),
        );
        for (_, lines) in extras
            .members
            .iter()
            .filter(|(name, _)| *name == member.name)
        {
            yaml.push_str(&with_newline(lines));
        }
    }
    yaml
}

/// `text` ending in a newline (empty stays empty).
fn with_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<MemberSpec> {
        vec![MemberSpec {
            name: "alpha".to_owned(),
            asn: 64501,
            host: 11,
            kind: MemberKind::Bird,
            announcements: vec![Announcement::new(
                "198.18.128.0/24".parse().expect("prefix"),
            )],
        }]
    }

    #[test]
    fn parses_route_server_neighbors() {
        let output = r#"{"neighbors":[{"id":"alpha.ipv4","member":"alpha","state":"Established"},
            {"id":"alpha.ipv6","member":"alpha","state":"Active"}]}"#;
        let neighbors = parse_neighbors_json(output).expect("parse");
        assert_eq!(
            neighbors,
            [
                ("alpha".to_owned(), "Established".to_owned()),
                ("alpha".to_owned(), "Active".to_owned())
            ]
        );
        assert!(parse_neighbors_json("{}").is_err());
        assert!(parse_neighbors_json(r#"{"neighbors":[{"member":"x"}]}"#).is_err());
    }

    #[test]
    fn lan_addresses_read_like_the_host_number() {
        assert_eq!(lan_ipv4(11).to_string(), "198.18.0.11");
        assert_eq!(lan_ipv6(11).to_string(), "fd00:198:18::11");
        assert_eq!(lan_ipv6(1).to_string(), "fd00:198:18::1");
    }

    #[test]
    fn public_keys_are_44_characters_and_unique() {
        assert_eq!(test_public_key(1).len(), 44);
        assert_ne!(test_public_key(1), test_public_key(11));
    }

    #[test]
    fn fabric_lists_route_server_and_members() {
        let yaml = fabric_yaml(&members());
        assert!(yaml.starts_with("version: 1\n"), "{yaml}");
        assert!(
            yaml.contains("  - name: rs1\n    asn: 64500\n    ipv4: 198.18.0.1\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains("  - name: alpha\n    asn: 64501\n    ipv4: 198.18.0.11\n"),
            "{yaml}"
        );
        assert!(yaml.contains("ipv6: \"fd00:198:18::11\""), "{yaml}");
        assert!(yaml.contains("hold_time: 9"), "{yaml}");
    }

    #[test]
    fn fabric_is_accepted_by_the_fabric_parser() {
        let mut members = members();
        members.push(MemberSpec {
            name: "bravo".to_owned(),
            asn: 64502,
            host: 12,
            kind: MemberKind::Gobgp,
            announcements: Vec::new(),
        });
        let yaml = fabric_yaml(&members);
        let fabric = vixp_fabric::Fabric::parse(&yaml, std::path::Path::new("fabric.yaml"))
            .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
        assert_eq!(fabric.members.len(), 2);
        assert_eq!(fabric.route_servers.len(), 1);
    }

    #[test]
    fn extras_land_in_the_policy_block_and_the_member_entry() {
        let extras = FabricExtras::default()
            .policy("  max_communities: 50")
            .member(
                "alpha",
                "    irr:\n      prefixes: [198.18.128.0/24]\n      origins: [64501]",
            );
        let yaml = fabric_yaml_with(&members(), &extras);
        let fabric = vixp_fabric::Fabric::parse(&yaml, std::path::Path::new("fabric.yaml"))
            .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
        assert_eq!(fabric.policy.max_communities, 50, "{yaml}");
        let irr = fabric.members[0].irr.as_ref().expect("irr block");
        let data = irr.data.as_ref().expect("inline data");
        assert!(data.origins.as_ref().is_some_and(|o| o.contains(64501)));
        assert_eq!(
            fabric_yaml_with(&members(), &FabricExtras::default()),
            fabric_yaml(&members())
        );
    }

    #[test]
    fn route_server_config_has_one_rs_client_session_per_family() {
        let config = route_server_bird_config(&members());
        let names: Vec<&str> = config.protocols.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["alpha4", "alpha6"]);
        assert!(config.protocols.iter().all(|p| p.rs_client));
        assert!(config.render().contains("secondary"));
    }
}
