//! `vixp up` fabric nodes in test namespaces: keys, node files, the process and its
//! `vixp status --json` view. Owns the node processes it starts (signalled by PID only) and the
//! files it writes in the caller's directory; must not create or remove links itself (the node
//! creates and removes its own TAP device).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    command,
    daemon::{Daemon, TAIL_LINES},
    error::Error,
    netns::Netns,
    wait::try_wait_until,
    workspace::binary_path,
};

/// How long a node may take to create its TAP device and open its control socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to exit cleanly after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes a new private key for `name` into `dir` with `vixp keygen` and returns its public key.
pub fn keygen(dir: &Path, name: &str) -> Result<String, Error> {
    let vixp = binary_path("vixp");
    let key = dir.join(format!("{name}.key"));
    let public_key = command::run(
        &vixp.to_string_lossy(),
        &["keygen", "--output", &key.to_string_lossy()],
    )?;
    Ok(public_key.trim().to_owned())
}

/// Traffic counters of one peer as a node's `vixp status --json` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// IP packets sent to the peer.
    pub sent_packets: u64,
    /// Bytes of those packets.
    pub sent_bytes: u64,
    /// IP packets received from the peer.
    pub received_packets: u64,
    /// Bytes of those packets.
    pub received_bytes: u64,
}

impl PeerCounters {
    /// How much each counter grew since `earlier` (zero where a counter went back, as after a
    /// restart).
    pub fn since(&self, earlier: &PeerCounters) -> PeerCounters {
        PeerCounters {
            sent_packets: self.sent_packets.saturating_sub(earlier.sent_packets),
            sent_bytes: self.sent_bytes.saturating_sub(earlier.sent_bytes),
            received_packets: self
                .received_packets
                .saturating_sub(earlier.received_packets),
            received_bytes: self.received_bytes.saturating_sub(earlier.received_bytes),
        }
    }
}

/// A fabric node: `vixp up -c NAME.yaml` in a namespace, its node file and control socket in
/// the exchange's directory.
#[derive(Debug)]
pub struct VixpNode {
    name: String,
    dir: PathBuf,
    node_file: PathBuf,
    socket: PathBuf,
    starts: u32,
    daemon: Option<Daemon>,
}

impl VixpNode {
    /// Writes `NAME.yaml` (member `name`, key `NAME.key`, fabric `fabric.yaml`, control socket
    /// `NAME.sock`, all in `dir`) and starts `vixp up` in `netns`; returns once the control
    /// socket exists.
    pub fn start(name: &str, netns: &Netns, dir: &Path) -> Result<Self, Error> {
        let node_file = dir.join(format!("{name}.yaml"));
        let socket = dir.join(format!("{name}.sock"));
        let text = format!(
            "member: {name}\nprivate_key_file: {name}.key\nfabric: fabric.yaml\n\
             control_socket: {}\n",
            socket.display()
        );
        std::fs::write(&node_file, text).map_err(|source| Error::File {
            path: node_file.clone(),
            source,
        })?;
        let mut node = Self {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            node_file,
            socket,
            starts: 0,
            daemon: None,
        };
        node.restart(netns)?;
        Ok(node)
    }

    /// Starts `vixp up` again after [`VixpNode::stop`] (a no-op while it runs); each start logs
    /// to its own file, `vixp-NAME-N.log`.
    pub fn restart(&mut self, netns: &Netns) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        self.starts += 1;
        let log = self
            .dir
            .join(format!("vixp-{}-{}.log", self.name, self.starts));
        let args = vec![
            "up".to_owned(),
            "-c".to_owned(),
            self.node_file.to_string_lossy().into_owned(),
        ];
        let vixp = binary_path("vixp");
        let mut daemon = Daemon::spawn(
            &format!("vixp {}", self.name),
            netns,
            &vixp.to_string_lossy(),
            &args,
            &log,
        )?;
        let up = try_wait_until(START_TIMEOUT, || {
            self.socket.exists() && self.status().is_ok() || !daemon.is_running()
        });
        if !up || !daemon.is_running() {
            let tail = daemon.log_tail(TAIL_LINES);
            daemon.kill();
            return Err(Error::Parse {
                what: "vixp up",
                detail: format!("{} did not open its control socket\n{tail}", self.name),
            });
        }
        self.daemon = Some(daemon);
        Ok(())
    }

    /// Stops the node with SIGTERM (by PID) and waits for its clean exit, which removes its
    /// TAP device and control socket. A node still running after [`STOP_TIMEOUT`] is killed
    /// and reported as an error.
    pub fn stop(&mut self) -> Result<(), Error> {
        let Some(mut daemon) = self.daemon.take() else {
            return Ok(());
        };
        if let Some(pid) = daemon.pid() {
            command::run("kill", &["-TERM", &pid.to_string()])?;
        }
        if try_wait_until(STOP_TIMEOUT, || !daemon.is_running()) {
            return Ok(());
        }
        let tail = daemon.log_tail(TAIL_LINES);
        daemon.kill();
        Err(Error::Parse {
            what: "vixp up",
            detail: format!("{} ignored SIGTERM\n{tail}", self.name),
        })
    }

    /// Whether the node process runs.
    pub fn is_running(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(Daemon::is_running)
    }

    /// The node's name in the fabric.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node file.
    pub fn node_file(&self) -> &Path {
        &self.node_file
    }

    /// The running process, for its log.
    pub fn daemon(&self) -> Option<&Daemon> {
        self.daemon.as_ref()
    }

    /// `vixp status --json -c NAME.yaml`, parsed.
    pub fn status(&self) -> Result<serde_json::Value, Error> {
        let vixp = binary_path("vixp");
        let output = command::run(
            &vixp.to_string_lossy(),
            &["status", "--json", "-c", &self.node_file.to_string_lossy()],
        )?;
        serde_json::from_str(&output).map_err(|error| Error::Parse {
            what: "vixp status --json",
            detail: format!("{error}: {output}"),
        })
    }

    /// The counters of peer `peer` in the node's status.
    pub fn peer_counters(&self, peer: &str) -> Result<PeerCounters, Error> {
        parse_peer_counters(&self.status()?, peer)
    }
}

/// The counters of peer `peer` in a `vixp status --json` document.
pub fn parse_peer_counters(status: &serde_json::Value, peer: &str) -> Result<PeerCounters, Error> {
    let parse_error = |detail: String| Error::Parse {
        what: "vixp status --json",
        detail,
    };
    let entry = status
        .get("peers")
        .and_then(serde_json::Value::as_array)
        .and_then(|peers| {
            peers
                .iter()
                .find(|entry| entry.get("name").and_then(serde_json::Value::as_str) == Some(peer))
        })
        .ok_or_else(|| parse_error(format!("no peer {peer} in {status}")))?;
    let counter = |key: &str| {
        entry
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| parse_error(format!("no {key} for {peer} in {entry}")))
    };
    Ok(PeerCounters {
        sent_packets: counter("sent_packets")?,
        sent_bytes: counter("sent_bytes")?,
        received_packets: counter("received_packets")?,
        received_bytes: counter("received_bytes")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_peers_counters() {
        let status: serde_json::Value = serde_json::from_str(
            r#"{"node":"alpha","peers":[
                {"name":"bravo","sent_packets":1,"sent_bytes":2,"received_packets":3,"received_bytes":4},
                {"name":"charlie","sent_packets":5,"sent_bytes":6,"received_packets":7,"received_bytes":8}]}"#,
        )
        .expect("json");
        let counters = parse_peer_counters(&status, "charlie").expect("charlie");
        assert_eq!(
            counters,
            PeerCounters {
                sent_packets: 5,
                sent_bytes: 6,
                received_packets: 7,
                received_bytes: 8
            }
        );
        assert!(parse_peer_counters(&status, "delta").is_err());
        let partial: serde_json::Value =
            serde_json::from_str(r#"{"peers":[{"name":"bravo","sent_packets":1}]}"#).expect("json");
        assert!(parse_peer_counters(&partial, "bravo").is_err());
    }

    #[test]
    fn growth_saturates_at_zero() {
        let before = PeerCounters {
            sent_packets: 10,
            sent_bytes: 1000,
            received_packets: 5,
            received_bytes: 500,
        };
        let after = PeerCounters {
            sent_packets: 12,
            sent_bytes: 1500,
            received_packets: 1,
            received_bytes: 100,
        };
        let growth = after.since(&before);
        assert_eq!(growth.sent_packets, 2);
        assert_eq!(growth.sent_bytes, 500);
        assert_eq!(growth.received_packets, 0);
        assert_eq!(growth.received_bytes, 0);
    }
}
