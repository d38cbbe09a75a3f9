//! Network namespaces and a bridged test LAN. Owns the namespaces, bridge and veth pairs it
//! creates and removes them on drop; must not touch any namespace or link it did not create.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
    process,
    sync::{
        Once,
        atomic::{AtomicU32, Ordering},
    },
};

use crate::{command, error::Error};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A named network namespace `vixp-t<pid>-<n>`, deleted on drop (also while a test panics).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a new namespace with a unique name and brings its loopback up. The first call
    /// in a process also removes namespaces left by earlier test processes that died before
    /// their destructors ran (see [`remove_stale`]).
    pub fn new() -> Result<Self, Error> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            if let Err(error) = remove_stale() {
                eprintln!("cannot remove stale test namespaces: {error}");
            }
        });
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("vixp-t{}-{n}", process::id());
        command::run("ip", &["netns", "add", &name])?;
        let netns = Self { name };
        netns.run("ip", &["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `program args...` inside the namespace (`ip netns exec`) and returns its output.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        command::run("ip", &full)
    }

    /// The argument vector that runs `program args...` inside the namespace.
    pub fn exec_args(&self, program: &str, args: &[String]) -> Vec<String> {
        let mut full = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.name.clone(),
            program.to_owned(),
        ];
        full.extend(args.iter().cloned());
        full
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(error) = command::run("ip", &["netns", "delete", &self.name]) {
            eprintln!("cannot delete namespace {}: {error}", self.name);
        }
    }
}

/// A host on a [`Lan`]: its own namespace with interface [`Host::INTERFACE`] on the bridge.
#[derive(Debug)]
pub struct Host {
    netns: Netns,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
}

impl Host {
    /// The LAN interface's name inside the host's namespace.
    pub const INTERFACE: &'static str = "eth0";

    /// The host's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The host's IPv4 LAN address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// The host's IPv6 LAN address.
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }
}

/// A peering LAN: a bridge in its own namespace, one veth per [`Host`].
#[derive(Debug)]
pub struct Lan {
    bridge: Netns,
    ports: u32,
}

impl Lan {
    /// The IPv4 LAN prefix length used for host addresses (198.18.0.0/24 in the tests).
    pub const IPV4_PREFIX_LENGTH: u8 = 24;
    /// The IPv6 LAN prefix length used for host addresses (fd00:198:18::/64 in the tests).
    pub const IPV6_PREFIX_LENGTH: u8 = 64;
    const BRIDGE: &'static str = "br0";

    /// Creates the bridge namespace with an up bridge.
    pub fn new() -> Result<Self, Error> {
        let bridge = Netns::new()?;
        bridge.run("ip", &["link", "add", Self::BRIDGE, "type", "bridge"])?;
        bridge.run("ip", &["link", "set", Self::BRIDGE, "up"])?;
        Ok(Self { bridge, ports: 0 })
    }

    /// The bridge's namespace.
    pub fn bridge(&self) -> &Netns {
        &self.bridge
    }

    /// Adds a host namespace connected to the bridge with the given addresses (IPv6 with
    /// `nodad`, so it is usable at once).
    pub fn add_host(&mut self, ipv4: Ipv4Addr, ipv6: Ipv6Addr) -> Result<Host, Error> {
        let netns = Netns::new()?;
        self.ports += 1;
        let port = format!("port{}", self.ports);
        let interface = Host::INTERFACE;
        netns.run(
            "ip",
            &[
                "link",
                "add",
                interface,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                self.bridge.name(),
            ],
        )?;
        self.bridge
            .run("ip", &["link", "set", &port, "master", Self::BRIDGE, "up"])?;
        let v4 = format!("{ipv4}/{}", Self::IPV4_PREFIX_LENGTH);
        let v6 = format!("{ipv6}/{}", Self::IPV6_PREFIX_LENGTH);
        netns.run("ip", &["addr", "add", &v4, "dev", interface])?;
        netns.run("ip", &["addr", "add", &v6, "dev", interface, "nodad"])?;
        netns.run("ip", &["link", "set", interface, "up"])?;
        Ok(Host { netns, ipv4, ipv6 })
    }
}

/// The PID in a harness namespace name `vixp-t<pid>-<n>`, or `None` for any other name.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("vixp-t")?;
    let (pid, n) = rest.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Deletes harness namespaces (`vixp-t<pid>-<n>`) whose test process no longer exists, left
/// behind when a test process was killed; returns their names. Never touches other names or
/// namespaces of a live process.
pub fn remove_stale() -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for name in namespaces()? {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        command::run("ip", &["netns", "delete", &name])?;
        removed.push(name);
    }
    Ok(removed)
}

/// Names of the namespaces that currently exist.
pub fn namespaces() -> Result<Vec<String>, Error> {
    let listing = command::run("ip", &["netns", "list"])?;
    Ok(listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_harness_names() {
        assert_eq!(owner_pid("vixp-t1234-0"), Some(1234));
        assert_eq!(owner_pid("vixp-t1234-17"), Some(1234));
        assert_eq!(owner_pid("vixp-t1234"), None);
        assert_eq!(owner_pid("vixp-t1234-x"), None);
        assert_eq!(owner_pid("vixpbench8408rs"), None);
        assert_eq!(owner_pid("other-t1234-0"), None);
    }

    #[test]
    fn stale_namespaces_of_dead_processes_are_removed_and_live_ones_kept() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let dead = child.id();
        child.wait().expect("reap");
        let stale = format!("vixp-t{dead}-0");
        command::run("ip", &["netns", "add", &stale]).expect("add stale namespace");
        let live = Netns::new().expect("live namespace");
        // The first Netns::new of the process may already have swept it: either way it goes.
        remove_stale().expect("sweep");
        let left = namespaces().expect("list");
        let _ = command::run("ip", &["netns", "delete", &stale]);
        assert!(!left.contains(&stale), "{stale} survived: {left:?}");
        assert!(left.contains(&live.name().to_owned()));
    }

    #[test]
    fn namespace_is_created_and_deleted() {
        let netns = Netns::new().expect("create namespace");
        let name = netns.name().to_owned();
        assert!(name.starts_with(&format!("vixp-t{}-", process::id())));
        assert!(namespaces().expect("list").contains(&name));
        let links = netns
            .run("ip", &["-o", "link", "show", "lo"])
            .expect("ip link");
        assert!(links.contains("UP"), "{links}");
        drop(netns);
        assert!(!namespaces().expect("list").contains(&name));
    }

    #[test]
    fn namespace_is_deleted_when_a_test_panics() {
        let name = std::sync::Mutex::new(String::new());
        let result = std::panic::catch_unwind(|| {
            let netns = Netns::new().expect("create namespace");
            if let Ok(mut slot) = name.lock() {
                *slot = netns.name().to_owned();
            }
            panic!("deliberate");
        });
        assert!(result.is_err());
        let name = name.into_inner().expect("lock");
        assert!(!name.is_empty());
        assert!(!namespaces().expect("list").contains(&name));
    }

    #[test]
    fn hosts_on_a_lan_reach_each_other() {
        let mut lan = Lan::new().expect("lan");
        let a = lan
            .add_host(
                Ipv4Addr::new(198, 18, 0, 201),
                "fd00:198:18::201".parse().expect("v6"),
            )
            .expect("host a");
        let b = lan
            .add_host(
                Ipv4Addr::new(198, 18, 0, 202),
                "fd00:198:18::202".parse().expect("v6"),
            )
            .expect("host b");
        // A TCP connect to a closed port fails with a RST when the LAN works; without the LAN
        // it would time out or find no route. Afterwards a knows b's MAC address.
        for (target, address) in [
            ("198.18.0.202", "198.18.0.202"),
            ("[fd00:198:18::202]", "fd00:198:18::202"),
        ] {
            let url = format!("http://{target}:9/");
            let error = a
                .netns()
                .run("curl", &["-sS", "--max-time", "5", &url])
                .expect_err("nothing listens on port 9");
            let text = error.to_string();
            assert!(
                !text.contains("No route") && !text.contains("imed out"),
                "{text}"
            );
            let neighbor = a
                .netns()
                .run("ip", &["neigh", "show", address])
                .expect("ip neigh");
            assert!(
                neighbor.contains("lladdr"),
                "no neighbour entry for {address}: {neighbor}"
            );
        }
        let names = [a.netns().name().to_owned(), b.netns().name().to_owned()];
        let bridge = lan.bridge().name().to_owned();
        drop((a, b, lan));
        let left = namespaces().expect("list");
        for name in names.iter().chain([&bridge]) {
            assert!(!left.contains(name), "{name} left behind");
        }
    }
}
