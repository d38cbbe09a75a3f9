//! The benchmark network: two network namespaces joined by a veth pair, the route server's
//! at 198.18.0.1/24 and the load generator's holding every peer address. Creates and deletes
//! only the namespaces it names after its own PID; never touches the host's interfaces.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::scenario::{LAN_PREFIX_LENGTH, MAX_PEERS, Peer, ROUTE_SERVER_ADDRESS};

/// Runs `ip` with `arguments` and fails with its stderr if it fails.
fn ip(arguments: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(arguments)
        .output()
        .context("running ip (package iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `ip -n namespace -batch -` with one command per line.
fn ip_batch(namespace: &str, commands: &[String]) -> anyhow::Result<()> {
    let mut child = Command::new("ip")
        .args(["-n", namespace, "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ip (package iproute2)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(commands.join("\n").as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "ip -batch in {namespace} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The two namespaces of one benchmark invocation; deleted on drop.
#[derive(Debug)]
pub struct Topology {
    /// Namespace the route server daemon runs in.
    pub route_server_namespace: String,
    /// Namespace the load generator runs in.
    pub load_namespace: String,
    created: Vec<String>,
}

impl Topology {
    /// Creates both namespaces, the veth pair and the addresses for `peers` peers.
    ///
    /// # Errors
    /// Not root, no iproute2, or too many peers for the /24.
    pub fn create(peers: usize) -> anyhow::Result<Self> {
        if peers > MAX_PEERS {
            bail!("at most {MAX_PEERS} peers fit the benchmark LAN, {peers} asked");
        }
        let pid = std::process::id();
        let mut topology = Self {
            route_server_namespace: format!("vixpbench{pid}rs"),
            load_namespace: format!("vixpbench{pid}lg"),
            created: Vec::new(),
        };
        for namespace in [
            topology.route_server_namespace.clone(),
            topology.load_namespace.clone(),
        ] {
            ip(&["netns", "add", &namespace])?;
            topology.created.push(namespace);
        }
        let route_server_link = format!("vxb{pid}r");
        let load_link = format!("vxb{pid}l");
        ip(&[
            "link",
            "add",
            &route_server_link,
            "netns",
            &topology.route_server_namespace,
            "type",
            "veth",
            "peer",
            "name",
            &load_link,
            "netns",
            &topology.load_namespace,
        ])?;
        ip_batch(
            &topology.route_server_namespace,
            &[
                "link set lo up".to_owned(),
                format!(
                    "address add {ROUTE_SERVER_ADDRESS}/{LAN_PREFIX_LENGTH} dev {route_server_link}"
                ),
                format!("link set {route_server_link} up"),
            ],
        )?;
        let mut commands = vec!["link set lo up".to_owned()];
        commands.extend((0..peers).map(|index| {
            let address: Ipv4Addr = Peer::numbered(index).address;
            format!("address add {address}/{LAN_PREFIX_LENGTH} dev {load_link}")
        }));
        commands.push(format!("link set {load_link} up"));
        ip_batch(&topology.load_namespace, &commands)?;
        Ok(topology)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for namespace in self.created.drain(..).rev() {
            if let Err(error) = ip(&["netns", "delete", &namespace]) {
                eprintln!("bgp-bench: could not delete namespace {namespace}: {error:#}");
            }
        }
    }
}
