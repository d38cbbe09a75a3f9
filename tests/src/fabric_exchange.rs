//! A whole exchange on the WireGuard fabric: an underlay bridge (198.18.1.0/24), one namespace
//! per node running `vixp up`, our `route-server` on the route server node's `vixp0`, and BIRD
//! in every member namespace announcing a customer network from a local interface and
//! installing what it learns in the kernel. Owns every namespace, process and file it creates
//! and releases them on drop, also when a test panics; must not decide what a test asserts.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::{
    bird::{HOLD_TIME, ProtocolState, parse_protocols, parse_routes},
    command,
    daemon::{Daemon, TAIL_LINES},
    error::Error,
    exchange::{
        ROUTE_SERVER_ASN, ROUTE_SERVER_HOST, ROUTE_SERVER_HTTP, ROUTE_SERVER_NAME, lan_ipv4,
        lan_ipv6, parse_neighbors_json,
    },
    netns::{Host, Lan, Netns},
    route::Route,
    snippet_exchange::router_config_for,
    temp::TempDir,
    vixp_node::{VixpNode, keygen},
    wait::try_wait_until,
    workspace::binary_path,
};

/// The TAP device every node creates (the node file's default).
pub const FABRIC_INTERFACE: &str = "vixp0";
/// The interface in each member namespace that holds the member's customer network.
pub const CUSTOMER_INTERFACE: &str = "customer0";
/// The WireGuard port of every node.
pub const WIREGUARD_PORT: u16 = 51820;
/// The route server's runtime directory (its control socket) inside the exchange's directory.
pub const ROUTE_SERVER_RUNTIME_DIR: &str = "route-server-run";
/// The BIRD protocols of a member's sessions with route server `rs1`, as
/// `vixp router-config bird` names them.
pub const MEMBER_PROTOCOLS: [&str; 2] = ["vixp_rs1_v4", "vixp_rs1_v6"];

/// Underlay address of node `host`: 198.18.1.N (the LAN inside the tunnels is 198.18.0.0/24).
pub fn underlay_ipv4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, host)
}

/// Underlay IPv6 address of node `host`: fd00:198:19::N (unused by the tunnels, which run over
/// IPv4, but every [`Lan`] host has one).
pub fn underlay_ipv6(host: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x198, 0x19, 0, 0, 0, 0, u16::from(host))
}

/// A member of a fabric exchange: a `vixp up` node, BIRD and a customer network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricMember {
    /// The member's name in the fabric.
    pub name: String,
    /// The member's ASN.
    pub asn: u32,
    /// Host number, 8-135: LAN 198.18.0.N and fd00:198:18::N, underlay 198.18.1.N, customer
    /// networks 198.18.(120+N).0/24 and fd00:(120+N)::/48 (decimal digits read as hex).
    pub host: u8,
}

impl FabricMember {
    /// A member called `name` with `asn` at host number `host`.
    pub fn new(name: &str, asn: u32, host: u8) -> Self {
        Self {
            name: name.to_owned(),
            asn,
            host,
        }
    }

    /// The member's IPv4 LAN address.
    pub fn ipv4(&self) -> Ipv4Addr {
        lan_ipv4(self.host)
    }

    /// The member's IPv6 LAN address.
    pub fn ipv6(&self) -> Ipv6Addr {
        lan_ipv6(self.host)
    }

    fn customer_number(&self) -> u8 {
        self.host.saturating_add(120)
    }

    /// The member's IPv4 customer network, 198.18.(120+N).0/24, inside 198.18.128.0/17.
    pub fn customer_ipv4(&self) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::new(198, 18, self.customer_number(), 0), 24)
            .unwrap_or_else(|_| Ipv4Net::default())
    }

    /// The member's IPv6 customer network, fd00:(120+N)::/48.
    pub fn customer_ipv6(&self) -> Ipv6Net {
        let number = self.customer_number();
        let group = u16::from_str_radix(&number.to_string(), 16).unwrap_or(u16::from(number));
        Ipv6Net::new(Ipv6Addr::new(0xfd00, group, 0, 0, 0, 0, 0, 0), 48)
            .unwrap_or_else(|_| Ipv6Net::default())
    }

    /// The first address of the IPv4 customer network, held by the member's router.
    pub fn customer_address_ipv4(&self) -> Ipv4Addr {
        let network = u32::from(self.customer_ipv4().network());
        Ipv4Addr::from(network.saturating_add(1))
    }

    /// The first address of the IPv6 customer network, held by the member's router.
    pub fn customer_address_ipv6(&self) -> Ipv6Addr {
        let network = u128::from(self.customer_ipv6().network());
        Ipv6Addr::from(network.saturating_add(1))
    }

    /// The member's customer networks, IPv4 then IPv6.
    pub fn customer_networks(&self) -> [IpNet; 2] {
        [
            IpNet::V4(self.customer_ipv4()),
            IpNet::V6(self.customer_ipv6()),
        ]
    }

    /// The member's LAN address of the family of `network`.
    pub fn next_hop_for(&self, network: &IpNet) -> IpAddr {
        match network {
            IpNet::V4(_) => IpAddr::V4(self.ipv4()),
            IpNet::V6(_) => IpAddr::V6(self.ipv6()),
        }
    }
}

/// A member's namespace with its node and router. Fields drop in order: router, node, namespace.
#[derive(Debug)]
pub struct MemberSite {
    bird: Daemon,
    socket: PathBuf,
    node: VixpNode,
    member: FabricMember,
    host: Host,
}

impl MemberSite {
    /// The member.
    pub fn member(&self) -> &FabricMember {
        &self.member
    }

    /// The member's namespace.
    pub fn netns(&self) -> &Netns {
        self.host.netns()
    }

    /// The member's fabric node.
    pub fn node(&self) -> &VixpNode {
        &self.node
    }

    /// Runs `birdc -s SOCKET args...` against the member's BIRD.
    pub fn birdc(&self, args: &[&str]) -> Result<String, Error> {
        let socket = self.socket.to_string_lossy();
        let mut full = vec!["-s", socket.as_ref()];
        full.extend_from_slice(args);
        command::run("birdc", &full)
    }

    /// BIRD's `show protocols`, parsed.
    pub fn protocols(&self) -> Result<Vec<ProtocolState>, Error> {
        parse_protocols(&self.birdc(&["show", "protocols"])?)
    }

    /// Whether BIRD shows both sessions with the route server (IPv4 and IPv6) Established.
    pub fn sessions_established(&self) -> bool {
        self.protocols().is_ok_and(|protocols| {
            MEMBER_PROTOCOLS.iter().all(|name| {
                protocols
                    .iter()
                    .any(|p| p.name == *name && p.info.starts_with("Established"))
            })
        })
    }

    /// Every route BIRD learnt from the route server, both families.
    pub fn bgp_routes(&self) -> Result<Vec<Route>, Error> {
        let mut routes = Vec::new();
        for protocol in MEMBER_PROTOCOLS {
            routes.extend(parse_routes(
                &self.birdc(&["show", "route", "protocol", protocol, "all"])?,
            )?);
        }
        Ok(routes)
    }

    /// Whether BIRD holds a route from the route server for `network` via `next_hop`.
    pub fn has_bgp_route(&self, network: &IpNet, next_hop: IpAddr) -> bool {
        self.bgp_routes().is_ok_and(|routes| {
            routes
                .iter()
                .any(|route| route.prefix == *network && route.next_hop == next_hop)
        })
    }

    /// The kernel's route for exactly `network` in the member's namespace (`ip route show
    /// NETWORK`), empty when there is none.
    pub fn kernel_route(&self, network: &IpNet) -> Result<String, Error> {
        let family = if network.addr().is_ipv4() { "-4" } else { "-6" };
        let text = network.to_string();
        Ok(self
            .netns()
            .run("ip", &[family, "route", "show", "exact", &text])?
            .trim()
            .to_owned())
    }

    /// Whether the kernel routes `network` via `next_hop` on the fabric interface.
    pub fn kernel_routes_via(&self, network: &IpNet, next_hop: IpAddr) -> bool {
        let expected = format!("via {next_hop} dev {FABRIC_INTERFACE}");
        self.kernel_route(network)
            .is_ok_and(|route| route.contains(&expected))
    }
}

/// A running fabric exchange. Fields drop in order: the route server, the nodes and routers,
/// then the namespaces, then the files.
#[derive(Debug)]
pub struct FabricExchange {
    route_server: Daemon,
    route_server_node: VixpNode,
    sites: Vec<MemberSite>,
    route_server_host: Host,
    underlay: Lan,
    dir: TempDir,
}

impl FabricExchange {
    /// Builds the underlay, generates keys and the fabric file, starts every node, the route
    /// server and every member's BIRD. Returns without waiting for BGP.
    pub fn start(label: &str, members: Vec<FabricMember>) -> Result<Self, Error> {
        let dir = TempDir::new(label)?;
        let mut underlay = Lan::new()?;
        let route_server_host = underlay.add_host(
            underlay_ipv4(ROUTE_SERVER_HOST),
            underlay_ipv6(ROUTE_SERVER_HOST),
        )?;
        let mut hosts = Vec::new();
        for member in &members {
            hosts.push(underlay.add_host(underlay_ipv4(member.host), underlay_ipv6(member.host))?);
        }
        let route_server_key = keygen(dir.path(), ROUTE_SERVER_NAME)?;
        let mut keys = Vec::new();
        for member in &members {
            keys.push(keygen(dir.path(), &member.name)?);
        }
        let keyed: Vec<(&FabricMember, &str)> = members
            .iter()
            .zip(keys.iter().map(String::as_str))
            .collect();
        let fabric = dir.write("fabric.yaml", &fabric_yaml(&route_server_key, &keyed))?;

        let route_server_node =
            VixpNode::start(ROUTE_SERVER_NAME, route_server_host.netns(), dir.path())?;
        let runtime_dir = dir.path().join(ROUTE_SERVER_RUNTIME_DIR);
        std::fs::create_dir_all(&runtime_dir).map_err(|source| Error::File {
            path: runtime_dir.clone(),
            source,
        })?;
        let route_server = Daemon::spawn(
            "route-server",
            route_server_host.netns(),
            &binary_path("route-server").to_string_lossy(),
            &[
                "run".to_owned(),
                "-c".to_owned(),
                fabric.to_string_lossy().into_owned(),
                // Its control socket (`route-server reload`) in the exchange's directory, not
                // the shared default that another test's route server may hold; a directory of
                // its own, since `rs1.sock` beside it is the node's.
                "--runtime-dir".to_owned(),
                runtime_dir.to_string_lossy().into_owned(),
            ],
            &dir.path().join("route-server.log"),
        )?;
        let mut sites = Vec::new();
        for (member, host) in members.into_iter().zip(hosts) {
            let node = VixpNode::start(&member.name, host.netns(), dir.path())?;
            add_customer_interface(host.netns(), &member)?;
            let snippet =
                router_config_for(&fabric, "bird", &member.name, &member.customer_networks())?;
            let (bird, socket) = start_bird(&member, &snippet, host.netns(), dir.path())?;
            sites.push(MemberSite {
                bird,
                socket,
                node,
                member,
                host,
            });
        }
        Ok(Self {
            route_server,
            route_server_node,
            sites,
            route_server_host,
            underlay,
            dir,
        })
    }

    /// The member called `name`; panics if there is none (a test bug).
    pub fn site(&self, name: &str) -> &MemberSite {
        self.sites
            .iter()
            .find(|site| site.member.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    fn site_mut(&mut self, name: &str) -> &mut MemberSite {
        self.sites
            .iter_mut()
            .find(|site| site.member.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// Every member's site.
    pub fn sites(&self) -> &[MemberSite] {
        &self.sites
    }

    /// The route server node's fabric node.
    pub fn route_server_node(&self) -> &VixpNode {
        &self.route_server_node
    }

    /// The route server node's namespace.
    pub fn route_server_netns(&self) -> &Netns {
        self.route_server_host.netns()
    }

    /// The underlay bridge.
    pub fn underlay(&self) -> &Lan {
        &self.underlay
    }

    /// The exchange's directory (keys, fabric and node files, configs, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Names of every namespace the exchange created.
    pub fn namespace_names(&self) -> Vec<String> {
        let mut names = vec![
            self.underlay.bridge().name().to_owned(),
            self.route_server_host.netns().name().to_owned(),
        ];
        names.extend(self.sites.iter().map(|site| site.netns().name().to_owned()));
        names
    }

    /// Stops member `name`'s fabric node with SIGTERM (its BIRD keeps running).
    pub fn stop_node(&mut self, name: &str) -> Result<(), Error> {
        self.site_mut(name).node.stop()
    }

    /// Starts member `name`'s fabric node again.
    pub fn restart_node(&mut self, name: &str) -> Result<(), Error> {
        let site = self.site_mut(name);
        site.node.restart(site.host.netns())
    }

    /// The route server's neighbours as `(member, state)`, from `route-server show neighbors
    /// --json` in its namespace.
    pub fn route_server_neighbors(&self) -> Result<Vec<(String, String)>, Error> {
        let program = binary_path("route-server");
        let fabric = self.dir.path().join("fabric.yaml");
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

    /// Whether the route server shows both of `member`'s sessions Established.
    pub fn route_server_sees_established(&self, member: &str) -> bool {
        self.route_server_neighbors().is_ok_and(|neighbors| {
            neighbors
                .iter()
                .filter(|(name, state)| name == member && state == "Established")
                .count()
                == 2
        })
    }

    /// Polls `condition` until it holds; on timeout panics with `what` and
    /// [`FabricExchange::report`].
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

    /// The exchange's state for failure messages: sessions, BGP and kernel routes per member,
    /// the route server's neighbours and every daemon's log tail.
    pub fn report(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "== route server neighbors: {:?}",
            self.route_server_neighbors()
        );
        for site in &self.sites {
            let _ = writeln!(text, "== {}: {:?}", site.member.name, site.protocols());
            let _ = writeln!(text, "   bgp routes: {:?}", site.bgp_routes());
            for family in ["-4", "-6"] {
                let _ = writeln!(
                    text,
                    "   kernel {family}: {:?}",
                    site.netns().run("ip", &[family, "route"])
                );
            }
        }
        let daemons = [&self.route_server]
            .into_iter()
            .chain(self.route_server_node.daemon())
            .chain(
                self.sites
                    .iter()
                    .flat_map(|site| [Some(&site.bird), site.node.daemon()])
                    .flatten(),
            );
        for daemon in daemons {
            let _ = writeln!(text, "{}", daemon.log_tail(TAIL_LINES));
        }
        text
    }
}

/// Gives the member's namespace its customer interface with the first address of each customer
/// network: a dummy interface, or a bridge without ports where the kernel has no dummy driver
/// (both hold addresses and connected routes, and neither sends anything anywhere).
fn add_customer_interface(netns: &Netns, member: &FabricMember) -> Result<(), Error> {
    let added = netns.run("ip", &["link", "add", CUSTOMER_INTERFACE, "type", "dummy"]);
    if added.is_err() {
        netns.run("ip", &["link", "add", CUSTOMER_INTERFACE, "type", "bridge"])?;
    }
    let v4 = format!(
        "{}/{}",
        member.customer_address_ipv4(),
        member.customer_ipv4().prefix_len()
    );
    let v6 = format!(
        "{}/{}",
        member.customer_address_ipv6(),
        member.customer_ipv6().prefix_len()
    );
    netns.run("ip", &["addr", "add", &v4, "dev", CUSTOMER_INTERFACE])?;
    netns.run(
        "ip",
        &["addr", "add", &v6, "dev", CUSTOMER_INTERFACE, "nodad"],
    )?;
    netns.run("ip", &["link", "set", CUSTOMER_INTERFACE, "up"])?;
    Ok(())
}

fn start_bird(
    member: &FabricMember,
    snippet: &str,
    netns: &Netns,
    dir: &Path,
) -> Result<(Daemon, PathBuf), Error> {
    let (daemon, socket, _) = crate::bird::spawn(
        &format!("bird-{}", member.name),
        netns,
        dir,
        &member_bird_config(member, snippet),
    )?;
    Ok((daemon, socket))
}

/// A member's bird.conf: what a member adds around its `vixp router-config bird` snippet (router
/// id, device scanning, its customer networks as connected routes of [`CUSTOMER_INTERFACE`],
/// every BGP route installed in the kernel), then the snippet, whose sessions with the route
/// server export exactly the customer networks.
pub fn member_bird_config(member: &FabricMember, snippet: &str) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "router id {};", member.ipv4());
    conf.push_str("log stderr all;\n");
    conf.push_str("protocol device { scan time 10; }\n");
    let _ = writeln!(
        conf,
        "protocol direct customer {{ ipv4; ipv6; interface \"{CUSTOMER_INTERFACE}\"; }}"
    );
    for family in ["4", "6"] {
        let _ = writeln!(
            conf,
            "protocol kernel kernel{family} {{ ipv{family} {{ export where source = RTS_BGP; }}; }}"
        );
    }
    conf.push_str(snippet);
    conf
}

/// The fabric.yaml of a fabric exchange: route server `rs1` with `route_server_key` and each
/// member with its public key, every node with its underlay endpoint; short BGP timers.
pub fn fabric_yaml(route_server_key: &str, members: &[(&FabricMember, &str)]) -> String {
    let mut yaml = String::new();
    let _ = write!(
        yaml,
        "version: 1\n\
         exchange:\n  name: VIXP-Fabric-Test\n\
         lan:\n  ipv4: 198.18.0.0/24\n  ipv6: \"fd00:198:18::/64\"\n\
         policy:\n  allow_prefixes: [198.18.0.0/15, \"fd00::/8\"]\n  reject_private_asns: false\n\
         route_servers:\n  - name: {ROUTE_SERVER_NAME}\n    asn: {ROUTE_SERVER_ASN}\n    \
         ipv4: {}\n    ipv6: \"{}\"\n    public_key: \"{route_server_key}\"\n    \
         endpoint: {}:{WIREGUARD_PORT}\n    \
         bgp:\n      hold_time: {HOLD_TIME}\n      connect_retry: 2\n    \
         http: {ROUTE_SERVER_HTTP}\n",
        lan_ipv4(ROUTE_SERVER_HOST),
        lan_ipv6(ROUTE_SERVER_HOST),
        underlay_ipv4(ROUTE_SERVER_HOST),
    );
    yaml.push_str("members:\n");
    for (member, key) in members {
        let _ = write!(
            yaml,
            "  - name: {}\n    asn: {}\n    ipv4: {}\n    ipv6: \"{}\"\n    \
             public_key: \"{key}\"\n    endpoint: {}:{WIREGUARD_PORT}\n",
            member.name,
            member.asn,
            member.ipv4(),
            member.ipv6(),
            underlay_ipv4(member.host),
        );
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_public_key;

    fn alpha() -> FabricMember {
        FabricMember::new("alpha", 64501, 11)
    }

    #[test]
    fn member_addresses_follow_the_host_number() {
        let alpha = alpha();
        assert_eq!(alpha.ipv4().to_string(), "198.18.0.11");
        assert_eq!(alpha.ipv6().to_string(), "fd00:198:18::11");
        assert_eq!(alpha.customer_ipv4().to_string(), "198.18.131.0/24");
        assert_eq!(alpha.customer_ipv6().to_string(), "fd00:131::/48");
        assert_eq!(alpha.customer_address_ipv4().to_string(), "198.18.131.1");
        assert_eq!(alpha.customer_address_ipv6().to_string(), "fd00:131::1");
        assert_eq!(underlay_ipv4(11).to_string(), "198.18.1.11");
        let customer = IpNet::V6(alpha.customer_ipv6());
        assert_eq!(alpha.next_hop_for(&customer), IpAddr::V6(alpha.ipv6()));
    }

    #[test]
    fn bird_config_wraps_the_snippet_and_fills_the_kernel() {
        let conf = member_bird_config(&alpha(), "protocol bgp vixp_rs1_v4 { }\n");
        assert!(conf.starts_with("router id 198.18.0.11;\n"), "{conf}");
        assert!(conf.contains("interface \"customer0\""), "{conf}");
        assert_eq!(conf.matches("export where source = RTS_BGP").count(), 2);
        assert!(conf.ends_with("protocol bgp vixp_rs1_v4 { }\n"), "{conf}");
    }

    #[test]
    fn fabric_is_accepted_by_the_fabric_parser() {
        let alpha = alpha();
        let bravo = FabricMember::new("bravo", 64502, 12);
        let yaml = fabric_yaml(
            &test_public_key(1),
            &[
                (&alpha, &test_public_key(11)),
                (&bravo, &test_public_key(12)),
            ],
        );
        let fabric = vixp_fabric::Fabric::parse(&yaml, Path::new("fabric.yaml"))
            .unwrap_or_else(|error| panic!("{error}\n{yaml}"));
        assert_eq!(fabric.members.len(), 2);
        assert_eq!(fabric.route_servers.len(), 1);
        assert!(yaml.contains("endpoint: 198.18.1.12:51820"), "{yaml}");
        assert!(yaml.contains("hold_time: 9"), "{yaml}");
    }
}
