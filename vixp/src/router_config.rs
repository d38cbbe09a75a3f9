//! Member router snippets (`vixp router-config bird|frr|openbgpd`): the BGP configuration a
//! member pastes into its router for sessions with every route server of the exchange, built
//! from the fabric file. Owns what the snippets say and why; must not read files, run routers
//! or decide anything the fabric file does not say (the member's own prefixes come from the
//! command line).
//!
//! Every snippet has, per route server and address family that both the member and the route
//! server have an address in, one session from the member's LAN address to the route server's,
//! and:
//! - an import filter that refuses the peering LAN, default routes, prefix lengths outside the
//!   exchange's policy, AS paths longer than the policy allows, and bogons (the exchange's
//!   bogon list minus its `allow_prefixes`): what the route server already refuses, checked
//!   again by the member so a route server bug cannot leak them into its network;
//! - no first-AS check: the route server is transparent (RFC 7947 section 2.2.2.1), so the
//!   first AS of a path is the announcing member's, never the route server's;
//! - an export filter that sends only the member's own prefixes (empty unless given; BIRD's
//!   also never sends back a route learnt from the exchange);
//! - a max-prefix limit per session (see [`receive_limit`]);
//! - the route server's hold time and connect retry.
//!
//! The fabric file has no TCP MD5 or GTSM settings, so the snippets configure neither.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use vixp_fabric::{
    DEFAULT_MAX_PREFIX_IPV4, DEFAULT_MAX_PREFIX_IPV6, Fabric, Member, PrefixLengthRange,
    RouteServer,
};

/// How many times the sum of the other members' max-prefix limits a member's session accepts.
/// The route server passes on at most that sum when it enforces every limit; the headroom lets
/// the exchange grow before the member has to regenerate its snippet.
pub const MAX_PREFIX_HEADROOM: u32 = 2;
/// Minutes a session stays down after the route server sent more than the limit (FRR and
/// OpenBGPD `restart`; BIRD restarts after its error wait time).
pub const MAX_PREFIX_RESTART_MINUTES: u32 = 15;
/// Longest wait after a session error before a BIRD member reconnects, seconds (BIRD's own
/// default maximum).
pub const BIRD_ERROR_WAIT_MAX: u16 = 300;
/// Shortest wait after a session error before a BIRD member reconnects is the route server's
/// connect retry, capped at this (BIRD's own default minimum), seconds.
pub const BIRD_ERROR_WAIT_MIN_CAP: u16 = 60;

/// The router software a snippet is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// BIRD 2 (`bird.conf`).
    Bird,
    /// FRRouting (`frr.conf`, or `vtysh` configuration mode).
    Frr,
    /// OpenBGPD (`bgpd.conf`).
    Openbgpd,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bird => "BIRD 2",
            Self::Frr => "FRRouting",
            Self::Openbgpd => "OpenBGPD",
        })
    }
}

/// Why no snippet can be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterConfigError {
    /// The fabric file has no member of that name.
    #[error("{}: no member named {name:?}; members are: {}", fabric.display(), known.join(", "))]
    UnknownMember {
        /// The fabric file.
        fabric: PathBuf,
        /// The name asked for.
        name: String,
        /// The members the fabric file has.
        known: Vec<String>,
    },
    /// An own prefix has bits set after its length.
    #[error("--prefix {prefix}: host bits are set; did you mean {network}?")]
    HostBits {
        /// The prefix as given.
        prefix: IpNet,
        /// The network it lies in.
        network: IpNet,
    },
    /// An own prefix of a family the member has no session for.
    #[error(
        "--prefix {prefix}: member {member} has no {family} LAN address in {}, so no session \
         would carry it",
        fabric.display()
    )]
    NoSessionForPrefix {
        /// The fabric file.
        fabric: PathBuf,
        /// The member.
        member: String,
        /// The prefix as given.
        prefix: IpNet,
        /// `IPv4` or `IPv6`.
        family: Family,
    },
    /// No route server has an address of a family the member has.
    #[error(
        "{}: no route server has an address of the same family as member {member}'s LAN addresses",
        fabric.display()
    )]
    NoSessions {
        /// The fabric file.
        fabric: PathBuf,
        /// The member.
        member: String,
    },
}

/// An address family of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ipv4 => "IPv4",
            Self::Ipv6 => "IPv6",
        })
    }
}

impl Family {
    const BOTH: [Family; 2] = [Family::Ipv4, Family::Ipv6];

    fn of(prefix: &IpNet) -> Self {
        match prefix {
            IpNet::V4(_) => Self::Ipv4,
            IpNet::V6(_) => Self::Ipv6,
        }
    }

    /// `v4` or `v6`, for names.
    fn suffix(self) -> &'static str {
        match self {
            Self::Ipv4 => "v4",
            Self::Ipv6 => "v6",
        }
    }

    /// The longest prefix of the family.
    fn bits(self) -> u8 {
        match self {
            Self::Ipv4 => 32,
            Self::Ipv6 => 128,
        }
    }

    /// The default route of the family.
    fn default_route(self) -> &'static str {
        match self {
            Self::Ipv4 => "0.0.0.0/0",
            Self::Ipv6 => "::/0",
        }
    }
}

/// One BGP session between the member and a route server, in one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Session<'a> {
    route_server: &'a RouteServer,
    family: Family,
    local: IpAddr,
    neighbor: IpAddr,
}

impl Session<'_> {
    /// The session's name in BIRD and its description elsewhere: `vixp_RS_v4`.
    fn bird_name(&self) -> String {
        let route_server: String = self
            .route_server
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("vixp_{route_server}_{}", self.family.suffix())
    }

    fn description(&self, exchange: &str) -> String {
        format!(
            "{exchange} route server {} {}",
            self.route_server.name, self.family
        )
    }

    fn hold_time(&self) -> u16 {
        self.route_server.bgp.hold_time
    }

    fn connect_retry(&self) -> u16 {
        self.route_server.bgp.connect_retry
    }

    fn port(&self) -> Option<u16> {
        let port = self.route_server.bgp.port;
        (port != vixp_fabric::DEFAULT_BGP_PORT).then_some(port)
    }
}

/// What a member's import filter refuses in one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImportPolicy {
    lan: IpNet,
    lengths: PrefixLengthRange,
    bogons: Vec<IpNet>,
    allowed: Vec<IpNet>,
    max_as_path_length: u32,
    limit: u32,
}

/// Everything a snippet says, independent of the dialect.
#[derive(Debug, Clone)]
struct Plan<'a> {
    fabric: &'a Fabric,
    member: &'a Member,
    sessions: Vec<Session<'a>>,
    own: Vec<IpNet>,
}

impl<'a> Plan<'a> {
    fn new(
        fabric: &'a Fabric,
        member_name: &str,
        own: &[IpNet],
    ) -> Result<Self, RouterConfigError> {
        let member = fabric
            .members
            .iter()
            .find(|member| member.name == member_name)
            .ok_or_else(|| RouterConfigError::UnknownMember {
                fabric: fabric.source.clone(),
                name: member_name.to_owned(),
                known: fabric.members.iter().map(|m| m.name.clone()).collect(),
            })?;
        let mut sessions = Vec::new();
        for route_server in &fabric.route_servers {
            if let (Some(local), Some(neighbor)) = (member.ipv4, route_server.ipv4) {
                sessions.push(Session {
                    route_server,
                    family: Family::Ipv4,
                    local: IpAddr::V4(local),
                    neighbor: IpAddr::V4(neighbor),
                });
            }
            if let (Some(local), Some(neighbor)) = (member.ipv6, route_server.ipv6) {
                sessions.push(Session {
                    route_server,
                    family: Family::Ipv6,
                    local: IpAddr::V6(local),
                    neighbor: IpAddr::V6(neighbor),
                });
            }
        }
        if sessions.is_empty() {
            return Err(RouterConfigError::NoSessions {
                fabric: fabric.source.clone(),
                member: member.name.clone(),
            });
        }
        for prefix in own {
            if prefix.trunc() != *prefix {
                return Err(RouterConfigError::HostBits {
                    prefix: *prefix,
                    network: prefix.trunc(),
                });
            }
            let family = Family::of(prefix);
            if !sessions.iter().any(|session| session.family == family) {
                return Err(RouterConfigError::NoSessionForPrefix {
                    fabric: fabric.source.clone(),
                    member: member.name.clone(),
                    prefix: *prefix,
                    family,
                });
            }
        }
        let mut own = own.to_vec();
        own.sort();
        own.dedup();
        Ok(Self {
            fabric,
            member,
            sessions,
            own,
        })
    }

    fn families(&self) -> Vec<Family> {
        Family::BOTH
            .into_iter()
            .filter(|family| self.sessions.iter().any(|s| s.family == *family))
            .collect()
    }

    fn sessions_of(&self, family: Family) -> impl Iterator<Item = &Session<'a>> {
        self.sessions.iter().filter(move |s| s.family == family)
    }

    fn own_of(&self, family: Family) -> Vec<IpNet> {
        self.own
            .iter()
            .filter(|prefix| Family::of(prefix) == family)
            .copied()
            .collect()
    }

    fn import(&self, family: Family) -> ImportPolicy {
        let policy = &self.fabric.policy;
        let of_family = |prefixes: &[IpNet]| -> Vec<IpNet> {
            prefixes
                .iter()
                .filter(|prefix| Family::of(prefix) == family)
                .copied()
                .collect()
        };
        let (lan, lengths) = match family {
            Family::Ipv4 => (IpNet::V4(self.fabric.lan.ipv4), policy.prefix_length.ipv4),
            Family::Ipv6 => (IpNet::V6(self.fabric.lan.ipv6), policy.prefix_length.ipv6),
        };
        ImportPolicy {
            lan,
            lengths,
            bogons: of_family(policy.bogon_prefixes.prefixes()),
            allowed: of_family(&policy.allow_prefixes),
            max_as_path_length: policy.max_as_path_length,
            limit: receive_limit(self.fabric, self.member, family),
        }
    }

    fn header(&self, comment: &str, dialect: Dialect) -> String {
        let mut text = String::new();
        let member = self.member;
        let exchange = &self.fabric.exchange.name;
        let mut line = |content: &str| {
            let _ = writeln!(text, "{comment} {content}");
        };
        line(&format!(
            "{dialect} configuration for member {} (AS{}) of exchange {exchange},",
            member.name, member.asn.0
        ));
        line(&format!(
            "written by `vixp router-config` from {}.",
            self.fabric.source.display()
        ));
        line("Sessions with every route server of the exchange, one per address family. The");
        line("route servers are transparent (RFC 7947): paths start with the announcing");
        line("member's AS, not the route server's, so there is no first-AS check.");
        line("Regenerate it when the fabric file changes (route servers, members, policy).");
        line("The fabric file configures no TCP MD5 or TTL security, so neither is set.");
        text
    }
}

/// The max-prefix limit of a member's sessions in `family`: [`MAX_PREFIX_HEADROOM`] times the
/// sum of every other member's limit, at least the fabric's default limit.
pub fn receive_limit(fabric: &Fabric, member: &Member, family: Family) -> u32 {
    let others = fabric
        .members
        .iter()
        .filter(|other| other.name != member.name)
        .map(|other| match family {
            Family::Ipv4 => other.max_prefix.ipv4,
            Family::Ipv6 => other.max_prefix.ipv6,
        })
        .fold(0u32, u32::saturating_add);
    let default = match family {
        Family::Ipv4 => DEFAULT_MAX_PREFIX_IPV4,
        Family::Ipv6 => DEFAULT_MAX_PREFIX_IPV6,
    };
    others.saturating_mul(MAX_PREFIX_HEADROOM).max(default)
}

/// The snippet for `member` of `fabric` in `dialect`, exporting `own` prefixes (none: the
/// member exports nothing until it fills the list).
pub fn render(
    dialect: Dialect,
    fabric: &Fabric,
    member: &str,
    own: &[IpNet],
) -> Result<String, RouterConfigError> {
    let plan = Plan::new(fabric, member, own)?;
    Ok(match dialect {
        Dialect::Bird => bird(&plan),
        Dialect::Frr => frr(&plan),
        Dialect::Openbgpd => openbgpd(&plan),
    })
}

/// `[ a, b+, c ]` in BIRD's prefix-set syntax; `+` adds every longer prefix.
fn bird_set(prefixes: &[IpNet], or_longer: bool) -> String {
    let items: Vec<String> = prefixes
        .iter()
        .map(|prefix| {
            if or_longer {
                format!("{prefix}+")
            } else {
                prefix.to_string()
            }
        })
        .collect();
    if items.is_empty() {
        "[ ]".to_owned()
    } else {
        format!("[ {} ]", items.join(", "))
    }
}

fn bird(plan: &Plan<'_>) -> String {
    let mut conf = plan.header("#", Dialect::Bird);
    conf.push_str(
        "# Paste into bird.conf after your `router id`. Your own routes reach these sessions\n\
         # from your other protocols (static, direct, kernel, your iBGP) through the master\n\
         # tables; only the prefixes in VIXP_OWN_* below are exported.\n\
         # BIRD checks no first AS by default (`enforce first as` is off), as a transparent\n\
         # route server needs.\n\n",
    );
    let exchange = &plan.fabric.exchange.name;
    for family in plan.families() {
        let suffix = family.suffix();
        let upper = suffix.to_uppercase();
        let import = plan.import(family);
        let own = plan.own_of(family);
        let _ = writeln!(
            conf,
            "# Your own {family} prefixes (and your customers'), the only ones exported to the\n\
             # exchange. Empty: nothing is exported. Add them like [ 192.0.2.0/24, 198.51.100.0/24 ].\n\
             define VIXP_OWN_{upper} = {};",
            bird_set(&own, false)
        );
        let _ = writeln!(
            conf,
            "# The exchange's bogons ({family}), refused with every longer prefix.\n\
             define VIXP_BOGONS_{upper} = {};",
            bird_set(&import.bogons, true)
        );
        let _ = writeln!(
            conf,
            "# Prefixes the exchange's policy exempts from the bogon check.\n\
             define VIXP_ALLOWED_{upper} = {};\n",
            bird_set(&import.allowed, true)
        );
        let _ = writeln!(
            conf,
            "# What the route servers send: refuse the peering LAN, default routes, lengths\n\
             # outside {}-{}, AS paths longer than {} and bogons.\n\
             filter vixp_import_{suffix} {{\n  \
             if net ~ [ {}+ ] then reject;\n  \
             if net.len = 0 then reject;\n  \
             if net.len < {} || net.len > {} then reject;\n  \
             if bgp_path.len > {} then reject;\n  \
             if net ~ VIXP_BOGONS_{upper} && !(net ~ VIXP_ALLOWED_{upper}) then reject;\n  \
             accept;\n}}\n",
            import.lengths.min,
            import.lengths.max,
            import.max_as_path_length,
            import.lan,
            import.lengths.min,
            import.lengths.max,
            import.max_as_path_length,
        );
        let _ = writeln!(
            conf,
            "# What you send: only VIXP_OWN_{upper}, never a route learnt from the exchange.\n\
             filter vixp_export_{suffix} {{\n  \
             if proto ~ \"vixp_*\" then reject;\n  \
             if net ~ VIXP_OWN_{upper} then accept;\n  \
             reject;\n}}\n"
        );
        for session in plan.sessions_of(family) {
            let neighbor = match session.port() {
                Some(port) => format!("{} port {port}", session.neighbor),
                None => session.neighbor.to_string(),
            };
            let _ = writeln!(
                conf,
                "protocol bgp {} {{\n  \
                 description \"{}\";\n  \
                 local {} as {};\n  \
                 neighbor {neighbor} as {};",
                session.bird_name(),
                session.description(exchange),
                session.local,
                plan.member.asn.0,
                session.route_server.asn.0,
            );
            if session.hold_time() > 0 {
                let _ = writeln!(conf, "  hold time {};", session.hold_time());
            }
            let error_wait = session.connect_retry().min(BIRD_ERROR_WAIT_MIN_CAP);
            let _ = writeln!(
                conf,
                "  connect retry time {};\n  \
                 error wait time {error_wait}, {BIRD_ERROR_WAIT_MAX};\n  \
                 ipv{} {{\n    \
                 import filter vixp_import_{suffix};\n    \
                 export filter vixp_export_{suffix};\n    \
                 import limit {} action restart;\n  \
                 }};\n}}\n",
                session.connect_retry(),
                &suffix[1..],
                import.limit,
            );
        }
    }
    conf
}

/// FRR prefix-list lines `PREFIX seq N permit P [le BITS]` for `prefixes`.
fn frr_prefix_list(
    conf: &mut String,
    family: Family,
    name: &str,
    prefixes: &[IpNet],
    or_longer: bool,
) {
    let keyword = match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ipv6",
    };
    for (index, prefix) in prefixes.iter().enumerate() {
        let le = if or_longer && prefix.prefix_len() < family.bits() {
            format!(" le {}", family.bits())
        } else {
            String::new()
        };
        let _ = writeln!(
            conf,
            "{keyword} prefix-list {name} seq {} permit {prefix}{le}",
            (index + 1) * 5
        );
    }
    // Every list exists even when empty, so the route-maps never name a missing list.
    let _ = writeln!(conf, "{keyword} prefix-list {name} seq 100000 deny any");
}

fn frr(plan: &Plan<'_>) -> String {
    let mut conf = plan.header("!", Dialect::Frr);
    conf.push_str(
        "! Paste into frr.conf (or `vtysh`, `configure terminal`). Announce your own prefixes\n\
         ! with `network` statements or redistribution as usual; only those in VIXP-OWN-* are\n\
         ! exported. `no neighbor ... enforce-first-as` lets the route servers' paths in.\n!\n",
    );
    let exchange = &plan.fabric.exchange.name;
    for family in plan.families() {
        let upper = family.suffix().to_uppercase();
        let match_keyword = match family {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ipv6",
        };
        let import = plan.import(family);
        let _ = writeln!(
            conf,
            "! Your own {family} prefixes (and your customers'): the only ones exported to the\n\
             ! exchange. Without `permit` lines nothing is exported. Add them like\n\
             ! `{match_keyword} prefix-list VIXP-OWN-{upper} seq 5 permit PREFIX`."
        );
        frr_prefix_list(
            &mut conf,
            family,
            &format!("VIXP-OWN-{upper}"),
            &plan.own_of(family),
            false,
        );
        conf.push_str("! The peering LAN and the default route.\n");
        let name = format!("VIXP-LAN-{upper}");
        let keyword = match_keyword;
        let _ = writeln!(
            conf,
            "{keyword} prefix-list {name} seq 5 permit {} le {}\n\
             {keyword} prefix-list {name} seq 10 permit {}\n\
             {keyword} prefix-list {name} seq 100000 deny any",
            import.lan,
            family.bits(),
            family.default_route(),
        );
        let _ = writeln!(
            conf,
            "! Lengths outside {}-{}.",
            import.lengths.min, import.lengths.max
        );
        let name = format!("VIXP-BAD-LENGTH-{upper}");
        let default = family.default_route();
        if import.lengths.min > 0 {
            let _ = writeln!(
                conf,
                "{keyword} prefix-list {name} seq 5 permit {default} le {}",
                import.lengths.min - 1
            );
        }
        if import.lengths.max < family.bits() {
            let _ = writeln!(
                conf,
                "{keyword} prefix-list {name} seq 10 permit {default} ge {}",
                import.lengths.max + 1
            );
        }
        let _ = writeln!(conf, "{keyword} prefix-list {name} seq 100000 deny any");
        conf.push_str("! The exchange's bogons, with every longer prefix.\n");
        frr_prefix_list(
            &mut conf,
            family,
            &format!("VIXP-BOGONS-{upper}"),
            &import.bogons,
            true,
        );
        conf.push_str("! Prefixes the exchange's policy exempts from the bogon check.\n");
        frr_prefix_list(
            &mut conf,
            family,
            &format!("VIXP-ALLOWED-{upper}"),
            &import.allowed,
            true,
        );
        conf.push_str("!\n");
    }
    let max_as_path = plan.fabric.policy.max_as_path_length;
    let _ = writeln!(
        conf,
        "! AS paths longer than {max_as_path} ASNs.\n\
         bgp as-path access-list VIXP-TOO-LONG seq 5 permit ([0-9]+ ){{{max_as_path}}}[0-9]+"
    );
    for family in plan.families() {
        let upper = family.suffix().to_uppercase();
        let keyword = match family {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ipv6",
        };
        let _ = writeln!(
            conf,
            "!\n\
             route-map VIXP-RS-IN-{upper} deny 10\n match {keyword} address prefix-list VIXP-LAN-{upper}\n\
             route-map VIXP-RS-IN-{upper} deny 20\n match {keyword} address prefix-list VIXP-BAD-LENGTH-{upper}\n\
             route-map VIXP-RS-IN-{upper} deny 30\n match as-path VIXP-TOO-LONG\n\
             route-map VIXP-RS-IN-{upper} permit 40\n match {keyword} address prefix-list VIXP-ALLOWED-{upper}\n\
             route-map VIXP-RS-IN-{upper} deny 50\n match {keyword} address prefix-list VIXP-BOGONS-{upper}\n\
             route-map VIXP-RS-IN-{upper} permit 60\n\
             !\n\
             route-map VIXP-RS-OUT-{upper} permit 10\n match {keyword} address prefix-list VIXP-OWN-{upper}\n\
             route-map VIXP-RS-OUT-{upper} deny 20"
        );
    }
    let _ = writeln!(conf, "!\nrouter bgp {}", plan.member.asn.0);
    for session in &plan.sessions {
        let neighbor = session.neighbor;
        let _ = writeln!(
            conf,
            " neighbor {neighbor} remote-as {}\n \
             neighbor {neighbor} description {}\n \
             neighbor {neighbor} update-source {}\n \
             no neighbor {neighbor} enforce-first-as\n \
             neighbor {neighbor} timers {} {}\n \
             neighbor {neighbor} timers connect {}",
            session.route_server.asn.0,
            session.description(exchange),
            session.local,
            session.hold_time() / 3,
            session.hold_time(),
            session.connect_retry().max(1),
        );
        if let Some(port) = session.port() {
            let _ = writeln!(conf, " neighbor {neighbor} port {port}");
        }
    }
    for family in Family::BOTH {
        let (name, upper) = match family {
            Family::Ipv4 => ("ipv4", "V4"),
            Family::Ipv6 => ("ipv6", "V6"),
        };
        let _ = writeln!(conf, " !\n address-family {name} unicast");
        for session in &plan.sessions {
            let neighbor = session.neighbor;
            if session.family != family {
                // FRR activates IPv4 unicast on every neighbour by default; each session
                // carries its own family only.
                let _ = writeln!(conf, "  no neighbor {neighbor} activate");
                continue;
            }
            let _ = writeln!(
                conf,
                "  neighbor {neighbor} activate\n  \
                 neighbor {neighbor} route-map VIXP-RS-IN-{upper} in\n  \
                 neighbor {neighbor} route-map VIXP-RS-OUT-{upper} out\n  \
                 neighbor {neighbor} maximum-prefix {} restart {MAX_PREFIX_RESTART_MINUTES}",
                plan.import(family).limit
            );
        }
        conf.push_str(" exit-address-family\n");
    }
    conf.push_str("exit\n");
    conf
}

/// Longest neighbour description OpenBGPD accepts, in bytes.
const OPENBGPD_DESCRIPTION_MAX: usize = 31;

/// `description` cut to what OpenBGPD accepts, keeping its end (route server and family).
fn openbgpd_description(description: &str) -> &str {
    let mut start = description.len().saturating_sub(OPENBGPD_DESCRIPTION_MAX);
    while !description.is_char_boundary(start) {
        start += 1;
    }
    description[start..].trim_start()
}

/// `{ a or-longer, b }` in OpenBGPD's prefix-set syntax.
fn openbgpd_set(prefixes: &[IpNet], or_longer: bool) -> String {
    let items: Vec<String> = prefixes
        .iter()
        .map(|prefix| {
            if or_longer {
                format!("{prefix} or-longer")
            } else {
                prefix.to_string()
            }
        })
        .collect();
    if items.is_empty() {
        "{ }".to_owned()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

fn openbgpd(plan: &Plan<'_>) -> String {
    let mut conf = plan.header("#", Dialect::Openbgpd);
    let group = "vixp-route-servers";
    let _ = writeln!(
        conf,
        "# Paste into bgpd.conf, whose global section says `AS {}`. Announce your own prefixes\n\
         # with `network` statements as usual; only those in vixp_own_* are exported. Every\n\
         # rule below is `quick`, so rules elsewhere in the file cannot widen them.\n\
         # `enforce neighbor-as no` lets the route servers' paths in.\n",
        plan.member.asn.0
    );
    let exchange = &plan.fabric.exchange.name;
    for family in plan.families() {
        let suffix = family.suffix();
        let import = plan.import(family);
        let _ = writeln!(
            conf,
            "# Your own {family} prefixes (and your customers'), the only ones exported to the\n\
             # exchange. Empty: nothing is exported. Add them like {{ 192.0.2.0/24, 198.51.100.0/24 }}.\n\
             prefix-set vixp_own_{suffix} {}\n\
             # The exchange's bogons ({family}), with every longer prefix.\n\
             prefix-set vixp_bogons_{suffix} {}\n\
             # Prefixes the exchange's policy exempts from the bogon check.\n\
             prefix-set vixp_allowed_{suffix} {}\n\
             # The peering LAN.\n\
             prefix-set vixp_lan_{suffix} {}\n",
            openbgpd_set(&plan.own_of(family), false),
            openbgpd_set(&import.bogons, true),
            openbgpd_set(&import.allowed, true),
            openbgpd_set(&[import.lan], true),
        );
    }
    let _ = writeln!(conf, "group \"{group}\" {{");
    for session in &plan.sessions {
        let _ = writeln!(
            conf,
            "  neighbor {} {{\n    \
             descr \"{}\"\n    \
             remote-as {}\n    \
             local-address {}\n    \
             enforce neighbor-as no\n    \
             max-prefix {} restart {MAX_PREFIX_RESTART_MINUTES}",
            session.neighbor,
            openbgpd_description(&format!(
                "{exchange} {} {}",
                session.route_server.name, session.family
            )),
            session.route_server.asn.0,
            session.local,
            plan.import(session.family).limit,
        );
        if session.hold_time() >= 3 {
            let _ = writeln!(conf, "    holdtime {}", session.hold_time());
        }
        if let Some(port) = session.port() {
            let _ = writeln!(conf, "    port {port}");
        }
        conf.push_str("  }\n");
    }
    conf.push_str("}\n\n");
    let max_as_path = plan.fabric.policy.max_as_path_length;
    let _ = writeln!(
        conf,
        "# What the route servers send: refuse the peering LAN, default routes, lengths outside\n\
         # the exchange's policy, AS paths longer than {max_as_path} and bogons.\n\
         deny quick from group \"{group}\" max-as-len {max_as_path}"
    );
    for family in plan.families() {
        let suffix = family.suffix();
        let import = plan.import(family);
        let _ = writeln!(
            conf,
            "deny quick from group \"{group}\" prefix-set vixp_lan_{suffix}\n\
             deny quick from group \"{group}\" prefix {} prefixlen {} >< {}\n\
             allow quick from group \"{group}\" prefix-set vixp_allowed_{suffix}\n\
             deny quick from group \"{group}\" prefix-set vixp_bogons_{suffix}",
            family.default_route(),
            import.lengths.min,
            import.lengths.max,
        );
    }
    let _ = writeln!(
        conf,
        "allow quick from group \"{group}\"\n\
         # What you send: only vixp_own_*."
    );
    for family in plan.families() {
        let _ = writeln!(
            conf,
            "allow quick to group \"{group}\" prefix-set vixp_own_{}",
            family.suffix()
        );
    }
    let _ = writeln!(conf, "deny quick to group \"{group}\"");
    conf
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    const FABRIC: &str = "version: 1
exchange: {name: VIXP-Test}
lan: {ipv4: 198.18.0.0/24, ipv6: \"fd00:198:18::/64\"}
policy: {allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false}
route_servers:
  - name: rs1
    asn: 64500
    ipv4: 198.18.0.1
    ipv6: \"fd00:198:18::1\"
    public_key: \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"
    bgp: {hold_time: 9, connect_retry: 2}
  - name: rs-2
    asn: 64499
    ipv4: 198.18.0.2
    public_key: \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"
    bgp: {port: 1179}
members:
  - name: alpha
    asn: 64501
    ipv4: 198.18.0.11
    ipv6: \"fd00:198:18::11\"
    public_key: \"ERERERERERERERERERERERERERERERERERERERERERE=\"
    max_prefix: {ipv4: 700, ipv6: 50}
  - name: bravo
    asn: 64502
    ipv4: 198.18.0.12
    ipv6: \"fd00:198:18::12\"
    public_key: \"EhISEhISEhISEhISEhISEhISEhISEhISEhISEhISEhI=\"
    max_prefix: {ipv4: 600, ipv6: 40}
  - name: charlie
    asn: 64503
    ipv6: \"fd00:198:18::13\"
    public_key: \"ExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExM=\"
";

    fn fabric() -> Fabric {
        Fabric::parse(FABRIC, Path::new("fabric.yaml")).unwrap_or_else(|error| panic!("{error}"))
    }

    fn net(text: &str) -> IpNet {
        text.parse().expect("test prefix")
    }

    fn own() -> Vec<IpNet> {
        vec![net("198.18.131.0/24"), net("fd00:131::/48")]
    }

    fn snippet(dialect: Dialect) -> String {
        render(dialect, &fabric(), "alpha", &own()).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Runs `program args` and panics with its output unless it succeeds.
    fn assert_accepted_by(program: &str, args: &[&str]) {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run {program} ({error}); scripts/test installs it")
            });
        assert!(
            output.status.success(),
            "{program} {args:?} refused the snippet:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A directory for one test's files, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("vixp-router-config-{}-{label}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn write(&self, name: &str, contents: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, contents).expect("write snippet");
            path.to_string_lossy().into_owned()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn every_route_server_and_family_gets_a_session() {
        let fabric = fabric();
        let plan = Plan::new(&fabric, "alpha", &[]).expect("plan");
        let sessions: Vec<(String, IpAddr, IpAddr)> = plan
            .sessions
            .iter()
            .map(|s| (s.bird_name(), s.local, s.neighbor))
            .collect();
        let ip = |text: &str| -> IpAddr { text.parse().expect("ip") };
        assert_eq!(
            sessions,
            [
                (
                    "vixp_rs1_v4".to_owned(),
                    ip("198.18.0.11"),
                    ip("198.18.0.1")
                ),
                (
                    "vixp_rs1_v6".to_owned(),
                    ip("fd00:198:18::11"),
                    ip("fd00:198:18::1")
                ),
                (
                    "vixp_rs_2_v4".to_owned(),
                    ip("198.18.0.11"),
                    ip("198.18.0.2")
                ),
            ]
        );
    }

    #[test]
    fn limit_is_twice_the_other_members_limits_at_least_the_default() {
        let fabric = fabric();
        let alpha = &fabric.members[0];
        // bravo 600 + charlie default 1000, doubled.
        assert_eq!(receive_limit(&fabric, alpha, Family::Ipv4), 3200);
        // bravo 40 + charlie default 200 = 240, doubled 480, above the default 200.
        assert_eq!(receive_limit(&fabric, alpha, Family::Ipv6), 480);
        let mut lonely = fabric.clone();
        lonely.members.truncate(1);
        assert_eq!(
            receive_limit(&lonely, &lonely.members[0], Family::Ipv4),
            DEFAULT_MAX_PREFIX_IPV4
        );
    }

    #[test]
    fn bad_requests_are_refused_with_what_is_valid() {
        let fabric = fabric();
        let error = render(Dialect::Bird, &fabric, "zulu", &[]).expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "fabric.yaml: no member named \"zulu\"; members are: alpha, bravo, charlie"
        );
        let error =
            render(Dialect::Bird, &fabric, "alpha", &[net("198.18.131.1/24")]).expect_err("host");
        assert_eq!(
            error.to_string(),
            "--prefix 198.18.131.1/24: host bits are set; did you mean 198.18.131.0/24?"
        );
        let error = render(Dialect::Frr, &fabric, "charlie", &[net("198.18.131.0/24")])
            .expect_err("family");
        assert!(
            error
                .to_string()
                .contains("member charlie has no IPv4 LAN address"),
            "{error}"
        );
    }

    #[test]
    fn member_without_a_shared_family_has_no_sessions() {
        let mut fabric = fabric();
        fabric.route_servers.truncate(1);
        fabric.route_servers[0].ipv6 = None;
        let error = render(Dialect::Openbgpd, &fabric, "charlie", &[]).expect_err("no sessions");
        assert!(
            matches!(error, RouterConfigError::NoSessions { .. }),
            "{error}"
        );
    }

    #[test]
    fn bird_snippet_has_sessions_filters_and_limits() {
        let conf = snippet(Dialect::Bird);
        assert!(conf.contains("protocol bgp vixp_rs1_v4 {"), "{conf}");
        assert!(conf.contains("local 198.18.0.11 as 64501;"), "{conf}");
        assert!(conf.contains("neighbor 198.18.0.1 as 64500;"), "{conf}");
        assert!(conf.contains("neighbor fd00:198:18::1 as 64500;"), "{conf}");
        assert!(
            conf.contains("neighbor 198.18.0.2 port 1179 as 64499;"),
            "{conf}"
        );
        assert!(conf.contains("hold time 9;"), "{conf}");
        assert!(conf.contains("error wait time 2, 300;"), "{conf}");
        assert!(conf.contains("import limit 3200 action restart;"), "{conf}");
        assert!(conf.contains("import limit 480 action restart;"), "{conf}");
        assert!(
            conf.contains("define VIXP_OWN_V4 = [ 198.18.131.0/24 ];"),
            "{conf}"
        );
        assert!(
            conf.contains("define VIXP_OWN_V6 = [ fd00:131::/48 ];"),
            "{conf}"
        );
        assert!(
            conf.contains("if net ~ [ 198.18.0.0/24+ ] then reject;"),
            "{conf}"
        );
        assert!(
            conf.contains("if net.len < 8 || net.len > 24 then reject;"),
            "{conf}"
        );
        assert!(
            conf.contains("if net.len < 12 || net.len > 48 then reject;"),
            "{conf}"
        );
        assert!(conf.contains("10.0.0.0/8+"), "{conf}");
        assert!(
            conf.contains("define VIXP_ALLOWED_V4 = [ 198.18.0.0/15+ ];"),
            "{conf}"
        );
        assert!(!conf.contains("rs client"), "{conf}");
        assert!(!conf.contains("enforce first as on"), "{conf}");
    }

    #[test]
    fn without_prefixes_nothing_is_exported() {
        let conf = render(Dialect::Bird, &fabric(), "alpha", &[]).expect("render");
        assert!(conf.contains("define VIXP_OWN_V4 = [ ];"), "{conf}");
        let conf = render(Dialect::Frr, &fabric(), "alpha", &[]).expect("render");
        assert!(
            !conf
                .lines()
                .any(|line| line.starts_with("ip prefix-list VIXP-OWN-V4 seq 5 ")),
            "{conf}"
        );
        assert!(
            conf.contains("ip prefix-list VIXP-OWN-V4 seq 100000 deny any"),
            "{conf}"
        );
        let conf = render(Dialect::Openbgpd, &fabric(), "alpha", &[]).expect("render");
        assert!(conf.contains("prefix-set vixp_own_v4 { }"), "{conf}");
    }

    #[test]
    fn frr_snippet_has_sessions_filters_and_limits() {
        let conf = snippet(Dialect::Frr);
        assert!(conf.contains("router bgp 64501\n"), "{conf}");
        assert!(
            conf.contains(" neighbor 198.18.0.1 remote-as 64500\n"),
            "{conf}"
        );
        assert!(
            conf.contains(" no neighbor 198.18.0.1 enforce-first-as\n"),
            "{conf}"
        );
        assert!(conf.contains(" neighbor 198.18.0.1 timers 3 9\n"), "{conf}");
        assert!(conf.contains(" neighbor 198.18.0.2 port 1179\n"), "{conf}");
        assert!(
            conf.contains("  neighbor 198.18.0.1 maximum-prefix 3200 restart 15\n"),
            "{conf}"
        );
        assert!(
            conf.contains("  neighbor fd00:198:18::1 route-map VIXP-RS-IN-V6 in\n"),
            "{conf}"
        );
        assert!(
            conf.contains("  no neighbor fd00:198:18::1 activate\n"),
            "{conf}"
        );
        assert!(
            conf.contains("ip prefix-list VIXP-OWN-V4 seq 5 permit 198.18.131.0/24\n"),
            "{conf}"
        );
        assert!(
            conf.contains("ip prefix-list VIXP-BAD-LENGTH-V4 seq 10 permit 0.0.0.0/0 ge 25\n"),
            "{conf}"
        );
        assert!(
            conf.contains("ipv6 prefix-list VIXP-BAD-LENGTH-V6 seq 5 permit ::/0 le 11\n"),
            "{conf}"
        );
        assert!(conf.contains("permit ([0-9]+ ){32}[0-9]+"), "{conf}");
    }

    #[test]
    fn openbgpd_snippet_has_sessions_filters_and_limits() {
        let conf = snippet(Dialect::Openbgpd);
        assert!(conf.contains("  neighbor 198.18.0.1 {\n"), "{conf}");
        assert!(conf.contains("    remote-as 64500\n"), "{conf}");
        assert!(conf.contains("    enforce neighbor-as no\n"), "{conf}");
        assert!(conf.contains("    max-prefix 480 restart 15\n"), "{conf}");
        assert!(conf.contains("    port 1179\n"), "{conf}");
        assert!(
            conf.contains("prefix-set vixp_own_v4 { 198.18.131.0/24 }"),
            "{conf}"
        );
        assert!(
            conf.contains(
                "deny quick from group \"vixp-route-servers\" prefix 0.0.0.0/0 prefixlen 8 >< 24"
            ),
            "{conf}"
        );
        assert!(
            conf.contains("allow quick to group \"vixp-route-servers\" prefix-set vixp_own_v6"),
            "{conf}"
        );
    }

    #[test]
    fn bird_parses_the_snippet() {
        let scratch = Scratch::new("bird");
        let conf = format!(
            "router id 198.18.0.11;\nprotocol device {{ }}\n{}",
            snippet(Dialect::Bird)
        );
        let path = scratch.write("bird.conf", &conf);
        assert_accepted_by("bird", &["-p", "-c", &path]);
    }

    #[test]
    fn frr_parses_the_snippet() {
        let scratch = Scratch::new("frr");
        let path = scratch.write("frr.conf", &snippet(Dialect::Frr));
        // vtysh checks the grammar (exit 2 on an unknown command) ...
        assert_accepted_by("vtysh", &["-C", "-f", &path]);
        // ... and bgpd's own dry run the values (it logs "[EC ...] ... Config Failed" for a
        // refused line but exits 0); -Z keeps it off zebra.
        let output = Command::new("/usr/lib/frr/bgpd")
            .args(["--dryrun", "-Z", "-S", "-f", &path])
            .output()
            .expect("run FRR's bgpd (scripts/test installs frr)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success() && !text.contains("[EC "), "{text}");
    }

    #[test]
    fn openbgpd_parses_the_snippet() {
        let scratch = Scratch::new("openbgpd");
        let conf = format!(
            "AS 64501\nrouter-id 198.18.0.11\n{}",
            snippet(Dialect::Openbgpd)
        );
        let path = scratch.write("bgpd.conf", &conf);
        // OpenBGPD's bgpd (FRR's lives in /usr/lib/frr); -n only checks the file.
        assert_accepted_by("/usr/sbin/bgpd", &["-n", "-f", &path]);
    }
}
