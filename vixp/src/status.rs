//! What `vixp status` shows and `/metrics` exports: a plain, serializable snapshot of a running
//! node, built from the core by the driver, and its text rendering. Must not read clocks or
//! sockets itself (the driver passes the wall-clock time in).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::core::{Core, DropReason};

/// A running node as `vixp status --json` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's name in the fabric.
    pub node: String,
    /// The TAP device.
    pub interface: String,
    /// This node's MAC on the LAN.
    pub mac: String,
    /// This node's IPv4 LAN address.
    pub ipv4: Option<Ipv4Addr>,
    /// This node's IPv6 LAN address.
    pub ipv6: Option<Ipv6Addr>,
    /// UDP port of the tunnels.
    pub listen_port: u16,
    /// The fabric file in use.
    pub fabric: String,
    /// Which version of it is applied, and how reloads went.
    #[serde(default)]
    pub fabric_version: FabricVersion,
    /// Nodes in the fabric (members and route servers, this one included).
    pub fabric_members: u64,
    /// Handshakes completed with any peer.
    pub handshakes: u64,
    /// ICMP "fragmentation needed" and ICMPv6 "packet too big" answers sent to the LAN for
    /// packets over the tunnel MTU (each also counted as an `exceeds_mtu` drop).
    #[serde(default)]
    pub too_big_answers: u64,
    /// Every other node of the fabric, by name.
    pub peers: Vec<PeerView>,
    /// Drops by reason name (every reason, zeros included).
    pub drops: BTreeMap<String, u64>,
}

/// The fabric a node applied and the outcome of its reloads, as `vixp status --json` and the
/// `vixp_fabric_*` metrics show them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FabricVersion {
    /// Fabrics applied since the node started: 1 for the one it started with, one more for
    /// each reload applied.
    pub generation: u64,
    /// BLAKE2b-256 of the applied file's bytes in hex (`b2sum -l 256 fabric.yaml`).
    pub digest: String,
    /// Unix time the applied fabric was applied.
    pub applied_at: u64,
    /// Reloads applied since start-up.
    pub reloads_applied: u64,
    /// Reloads refused since start-up (the fabric applied before stays).
    pub reloads_rejected: u64,
    /// Unix time of the last refused reload.
    pub last_rejected_at: Option<u64>,
    /// Why the last reload was refused, while no reload has been applied since.
    pub rejected: Option<String>,
}

/// Seconds since the Unix epoch at `time` (0 before it).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl FabricVersion {
    /// The fabric with `digest` the node started with, applied at `now`.
    pub fn started(digest: String, now: SystemTime) -> FabricVersion {
        FabricVersion {
            generation: 1,
            digest,
            applied_at: unix_seconds(now),
            ..FabricVersion::default()
        }
    }

    /// A reload applied the fabric with `digest` at `now`.
    pub fn applied(&mut self, digest: String, now: SystemTime) {
        self.generation += 1;
        self.digest = digest;
        self.applied_at = unix_seconds(now);
        self.reloads_applied += 1;
        self.rejected = None;
    }

    /// A reload was refused at `now` for `reason`; the applied fabric stays.
    pub fn rejected(&mut self, reason: String, now: SystemTime) {
        self.reloads_rejected += 1;
        self.last_rejected_at = Some(unix_seconds(now));
        self.rejected = Some(reason);
    }

    /// Whether the last reload was applied (or none was tried).
    pub fn last_reload_applied(&self) -> bool {
        self.rejected.is_none()
    }
}

/// One peer in [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// Name in the fabric.
    pub name: String,
    /// Its MAC on the LAN.
    pub mac: String,
    /// Its IPv4 LAN address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 LAN address.
    pub ipv6: Option<Ipv6Addr>,
    /// Where datagrams go now (`None` until known).
    pub endpoint: Option<String>,
    /// Unix time of the current session's handshake.
    pub latest_handshake: Option<u64>,
    /// IP packets sent to it.
    pub sent_packets: u64,
    /// Bytes of those packets.
    pub sent_bytes: u64,
    /// IP packets received from it.
    pub received_packets: u64,
    /// Bytes of those packets.
    pub received_bytes: u64,
    /// Handshakes completed with it.
    pub handshakes: u64,
}

/// A MAC address as `02:ab:..`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}

impl Status {
    /// A snapshot of `core` taken at wall-clock time `now`.
    pub fn capture(
        core: &Core,
        interface: &str,
        listen_port: u16,
        fabric: &str,
        fabric_version: &FabricVersion,
        now: SystemTime,
    ) -> Status {
        let own = core.own();
        let peers: Vec<PeerView> = core
            .peer_status()
            .into_iter()
            .map(|peer| PeerView {
                name: peer.spec.name.clone(),
                mac: format_mac(&peer.spec.mac),
                ipv4: peer.spec.ipv4,
                ipv6: peer.spec.ipv6,
                endpoint: peer.endpoint.map(|endpoint| endpoint.to_string()),
                latest_handshake: peer.since_handshake.and_then(|since| {
                    now.checked_sub(since)?
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|time| time.as_secs())
                }),
                sent_packets: peer.counters.sent_packets,
                sent_bytes: peer.counters.sent_bytes,
                received_packets: peer.counters.received_packets,
                received_bytes: peer.counters.received_bytes,
                handshakes: peer.counters.handshakes,
            })
            .collect();
        Status {
            node: own.name.clone(),
            interface: interface.to_owned(),
            mac: format_mac(&own.mac),
            ipv4: own.ipv4,
            ipv6: own.ipv6,
            listen_port,
            fabric: fabric.to_owned(),
            fabric_version: fabric_version.clone(),
            fabric_members: peers.len() as u64 + 1,
            handshakes: core.handshakes(),
            too_big_answers: core.too_big_answers(),
            peers,
            drops: core
                .drops()
                .iter()
                .map(|(reason, count)| (reason.name().to_owned(), count))
                .collect(),
        }
    }

    /// Drops of one reason.
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.name()).copied().unwrap_or(0)
    }

    /// The human-readable form of `vixp status`, with handshake ages relative to `now`.
    pub fn render(&self, now: SystemTime) -> String {
        let mut text = String::new();
        let address = |ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>| {
            let parts: Vec<String> = ipv4
                .map(|ip| ip.to_string())
                .into_iter()
                .chain(ipv6.map(|ip| ip.to_string()))
                .collect();
            if parts.is_empty() {
                "-".to_owned()
            } else {
                parts.join(" ")
            }
        };
        let _ = writeln!(
            text,
            "node {} on {} (mac {}, lan {}, udp port {})",
            self.node,
            self.interface,
            self.mac,
            address(self.ipv4, self.ipv6),
            self.listen_port
        );
        let _ = writeln!(
            text,
            "fabric {} ({} nodes), {} handshake(s)",
            self.fabric, self.fabric_members, self.handshakes
        );
        let version = &self.fabric_version;
        let _ = writeln!(
            text,
            "fabric version {} (b2sum -l 256: {}), applied {}s ago; reloads {} applied, {} rejected",
            version.generation,
            version.digest,
            unix_seconds(now).saturating_sub(version.applied_at),
            version.reloads_applied,
            version.reloads_rejected,
        );
        if let Some(reason) = &version.rejected {
            let _ = writeln!(
                text,
                "LAST RELOAD REJECTED (the version above stays applied): {}",
                reason.replace('\n', "\n  ")
            );
        }
        text.push('\n');
        let _ = writeln!(
            text,
            "{:<16} {:<28} {:<16} {:>22} {:>22}",
            "peer", "endpoint", "handshake", "sent", "received"
        );
        let unix_now = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        for peer in &self.peers {
            let handshake = match peer.latest_handshake {
                Some(time) => format!("{}s ago", unix_now.saturating_sub(time)),
                None => "never".to_owned(),
            };
            let _ = writeln!(
                text,
                "{:<16} {:<28} {:<16} {:>22} {:>22}",
                peer.name,
                peer.endpoint.as_deref().unwrap_or("(unknown)"),
                handshake,
                format!("{} pkt {} B", peer.sent_packets, peer.sent_bytes),
                format!("{} pkt {} B", peer.received_packets, peer.received_bytes),
            );
        }
        let drops: Vec<String> = self
            .drops
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(reason, count)| format!("{reason} {count}"))
            .collect();
        let _ = writeln!(
            text,
            "\ndrops: {}",
            if drops.is_empty() {
                "none".to_owned()
            } else {
                drops.join(", ")
            }
        );
        if self.too_big_answers > 0 {
            let _ = writeln!(
                text,
                "icmp too big answers: {} (packets over the tunnel MTU)",
                self.too_big_answers
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            node: "alpha".to_owned(),
            interface: "vixp0".to_owned(),
            mac: "02:00:00:00:00:01".to_owned(),
            ipv4: Some(Ipv4Addr::new(198, 18, 0, 11)),
            ipv6: None,
            listen_port: 51820,
            fabric: "fabric.yaml".to_owned(),
            fabric_version: FabricVersion::started(
                "ab".repeat(32),
                UNIX_EPOCH + Duration::from_secs(1_000),
            ),
            fabric_members: 2,
            handshakes: 1,
            too_big_answers: 3,
            peers: vec![PeerView {
                name: "bravo".to_owned(),
                endpoint: Some("198.18.1.12:51820".to_owned()),
                latest_handshake: Some(1_000),
                sent_packets: 3,
                sent_bytes: 252,
                ..PeerView::default()
            }],
            drops: [("broadcast".to_owned(), 2), ("replayed".to_owned(), 0)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn json_round_trips() {
        let status = sample();
        let text = serde_json::to_string(&status).expect("json");
        assert_eq!(
            serde_json::from_str::<Status>(&text).expect("parse"),
            status
        );
    }

    #[test]
    fn text_shows_peers_ages_and_nonzero_drops() {
        let text = sample().render(UNIX_EPOCH + Duration::from_secs(1_012));
        assert!(text.contains("bravo"), "{text}");
        assert!(text.contains("12s ago"), "{text}");
        assert!(text.contains("3 pkt 252 B"), "{text}");
        assert!(text.contains("drops: broadcast 2\n"), "{text}");
        assert!(text.contains("icmp too big answers: 3 "), "{text}");
    }

    #[test]
    fn a_fabric_version_counts_applied_and_rejected_reloads() {
        let at = |seconds| UNIX_EPOCH + Duration::from_secs(seconds);
        let mut version = FabricVersion::started("aa".to_owned(), at(100));
        assert_eq!(version.generation, 1);
        assert!(version.last_reload_applied());
        version.rejected("fabric.yaml:3: lan: required".to_owned(), at(200));
        assert!(!version.last_reload_applied());
        assert_eq!(
            (
                version.generation,
                version.digest.as_str(),
                version.applied_at
            ),
            (1, "aa", 100)
        );
        assert_eq!(version.last_rejected_at, Some(200));
        version.applied("bb".to_owned(), at(300));
        assert!(version.last_reload_applied());
        assert_eq!(
            (
                version.generation,
                version.digest.as_str(),
                version.applied_at
            ),
            (2, "bb", 300)
        );
        assert_eq!((version.reloads_applied, version.reloads_rejected), (1, 1));
        assert_eq!(version.last_rejected_at, Some(200));
    }

    #[test]
    fn text_shows_the_fabric_version_and_a_rejected_reload() {
        let mut status = sample();
        let now = UNIX_EPOCH + Duration::from_secs(1_030);
        let text = status.render(now);
        assert!(
            text.contains(&format!(
                "fabric version 1 (b2sum -l 256: {}), applied 30s ago; reloads 0 applied, 0 rejected\n",
                "ab".repeat(32)
            )),
            "{text}"
        );
        assert!(!text.contains("REJECTED"), "{text}");
        status
            .fabric_version
            .rejected("fabric.yaml:3: lan: required".to_owned(), now);
        let text = status.render(now);
        assert!(
            text.contains("LAST RELOAD REJECTED (the version above stays applied): fabric.yaml:3: lan: required"),
            "{text}"
        );
    }

    #[test]
    fn macs_are_colon_separated_hex() {
        assert_eq!(format_mac(&[2, 0xab, 0, 1, 2, 0xff]), "02:ab:00:01:02:ff");
    }
}
