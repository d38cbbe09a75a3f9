//! The node's Prometheus metrics: one registry, prefix `vixp_`, labels no finer than a member,
//! encoded at scrape time from the latest [`Status`] snapshot. Owns metric names and help;
//! decides nothing about traffic.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::status::{FabricVersion, PeerView, Status};

/// Labels of per-member series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MemberLabels {
    /// Member (or route server) name from the fabric.
    member: String,
}

/// Labels of the endpoint info series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    /// Member name.
    member: String,
    /// Its current endpoint, `IP:port`.
    endpoint: String,
}

/// Labels of the drop counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    /// Drop reason name.
    reason: String,
}

/// Labels of the fabric info series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DigestLabels {
    /// BLAKE2b-256 of the applied fabric file, hex (`b2sum -l 256`).
    digest: String,
}

/// Labels of the fabric reload counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    /// `applied` or `rejected`.
    result: String,
}

/// Encodes the latest snapshot on each scrape.
#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Status>>);

/// Per-member counters: name, help and the value in a [`PeerView`].
type PeerCounter = (&'static str, &'static str, fn(&PeerView) -> u64);

const PEER_COUNTERS: [PeerCounter; 5] = [
    (
        "sent_packets",
        "IP packets sent to the member through its tunnel",
        |peer| peer.sent_packets,
    ),
    (
        "sent_bytes",
        "Bytes of IP packets sent to the member (without Ethernet or WireGuard overhead)",
        |peer| peer.sent_bytes,
    ),
    (
        "received_packets",
        "IP packets received from the member and written to the LAN",
        |peer| peer.received_packets,
    ),
    (
        "received_bytes",
        "Bytes of IP packets received from the member",
        |peer| peer.received_bytes,
    ),
    (
        "peer_handshakes",
        "WireGuard handshakes completed with the member",
        |peer| peer.handshakes,
    ),
];

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = match self.0.lock() {
            Ok(status) => status.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for (name, help, value) in PEER_COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for peer in &status.peers {
                let labels = MemberLabels {
                    member: peer.name.clone(),
                };
                ConstCounter::new(value(peer)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "latest_handshake_seconds",
            "Unix time of the current session's handshake with the member (0: no session)",
            None,
            MetricType::Gauge,
        )?;
        for peer in &status.peers {
            let labels = MemberLabels {
                member: peer.name.clone(),
            };
            let time = i64::try_from(peer.latest_handshake.unwrap_or(0)).unwrap_or(i64::MAX);
            ConstGauge::new(time).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "peer_endpoint_info",
            "The member's current underlay endpoint (value always 1)",
            None,
            MetricType::Gauge,
        )?;
        for peer in &status.peers {
            if let Some(endpoint) = &peer.endpoint {
                let labels = EndpointLabels {
                    member: peer.name.clone(),
                    endpoint: endpoint.clone(),
                };
                ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
            }
        }
        let handshakes = ConstCounter::new(status.handshakes);
        handshakes.encode(encoder.encode_descriptor(
            "handshakes",
            "WireGuard handshakes completed with any member",
            None,
            MetricType::Counter,
        )?)?;
        let too_big = ConstCounter::new(status.too_big_answers);
        too_big.encode(encoder.encode_descriptor(
            "too_big_answers",
            "ICMP fragmentation needed and ICMPv6 packet too big answers sent to the LAN",
            None,
            MetricType::Counter,
        )?)?;
        let mut family = encoder.encode_descriptor(
            "drops",
            "Frames and datagrams dropped, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in &status.drops {
            let labels = ReasonLabels {
                reason: reason.clone(),
            };
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
        encode_fabric_version(&mut encoder, &status.fabric_version)?;
        let members = ConstGauge::new(i64::try_from(status.fabric_members).unwrap_or(i64::MAX));
        members.encode(encoder.encode_descriptor(
            "fabric_members",
            "Nodes in the fabric in use (members and route servers, this node included)",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// The `fabric_*` families: which fabric is applied and how reloads went.
fn encode_fabric_version(
    encoder: &mut DescriptorEncoder,
    version: &FabricVersion,
) -> Result<(), std::fmt::Error> {
    let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    gauge(version.generation).encode(encoder.encode_descriptor(
        "fabric_generation",
        "Fabrics applied since the node started: 1 at start-up, one more per applied reload",
        None,
        MetricType::Gauge,
    )?)?;
    gauge(version.applied_at).encode(encoder.encode_descriptor(
        "fabric_applied_timestamp_seconds",
        "Unix time the fabric in use was applied",
        None,
        MetricType::Gauge,
    )?)?;
    let mut family = encoder.encode_descriptor(
        "fabric_info",
        "The fabric in use: BLAKE2b-256 of its file, as b2sum -l 256 prints it (value always 1)",
        None,
        MetricType::Gauge,
    )?;
    let labels = DigestLabels {
        digest: version.digest.clone(),
    };
    ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
    let mut family = encoder.encode_descriptor(
        "fabric_reloads",
        "Fabric file reloads (SIGHUP or a changed file) by result: applied or rejected",
        None,
        MetricType::Counter,
    )?;
    for (result, count) in [
        ("applied", version.reloads_applied),
        ("rejected", version.reloads_rejected),
    ] {
        let labels = ReloadLabels {
            result: result.to_owned(),
        };
        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
    }
    ConstGauge::new(i64::from(version.last_reload_applied())).encode(
        encoder.encode_descriptor(
            "fabric_reload_success",
            "Whether the last fabric reload was applied (1) or rejected (0); 1 before any reload",
            None,
            MetricType::Gauge,
        )?,
    )?;
    Ok(())
}

/// The node's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry exporting whatever `status` holds at scrape time.
    pub fn new(status: Arc<Mutex<Status>>) -> Metrics {
        let mut registry = Registry::with_prefix("vixp");
        registry.register_collector(Box::new(SnapshotCollector(status)));
        Metrics { registry }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4), which Prometheus
    /// and `promtool check metrics` read.
    pub fn render(&self) -> String {
        vixp_common::metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> String {
        let mut status = Status {
            node: "alpha".to_owned(),
            fabric_members: 3,
            fabric_version: FabricVersion {
                generation: 2,
                digest: "ab".repeat(32),
                applied_at: 1_700_000_100,
                reloads_applied: 1,
                reloads_rejected: 3,
                last_rejected_at: Some(1_700_000_200),
                rejected: Some("fabric.yaml:1: lan: required".to_owned()),
            },
            handshakes: 4,
            too_big_answers: 6,
            ..Status::default()
        };
        status.peers.push(PeerView {
            name: "bravo".to_owned(),
            endpoint: Some("198.18.1.12:51820".to_owned()),
            latest_handshake: Some(1_700_000_000),
            sent_bytes: 84,
            ..PeerView::default()
        });
        status.drops.insert("broadcast".to_owned(), 5);
        Metrics::new(Arc::new(Mutex::new(status))).render()
    }

    #[test]
    fn counters_end_in_total_in_help_type_and_samples() {
        let text = rendered();
        assert!(
            text.contains("# TYPE vixp_sent_bytes_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("vixp_sent_bytes_total{member=\"bravo\"} 84\n"),
            "{text}"
        );
        assert!(
            text.contains("vixp_drops_total{reason=\"broadcast\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("vixp_handshakes_total 4\n"), "{text}");
        assert!(
            text.contains("# TYPE vixp_too_big_answers_total counter\n"),
            "{text}"
        );
        assert!(text.contains("vixp_too_big_answers_total 6\n"), "{text}");
        assert!(text.contains("vixp_fabric_members 3\n"), "{text}");
        assert!(
            text.contains("vixp_latest_handshake_seconds{member=\"bravo\"} 1700000000\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "vixp_peer_endpoint_info{member=\"bravo\",endpoint=\"198.18.1.12:51820\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn the_fabric_version_and_reloads_are_exported() {
        let text = rendered();
        for line in [
            "# TYPE vixp_fabric_generation gauge\nvixp_fabric_generation 2\n",
            "vixp_fabric_applied_timestamp_seconds 1700000100\n",
            &format!("vixp_fabric_info{{digest=\"{}\"}} 1\n", "ab".repeat(32)),
            "# TYPE vixp_fabric_reloads_total counter\n",
            "vixp_fabric_reloads_total{result=\"applied\"} 1\n",
            "vixp_fabric_reloads_total{result=\"rejected\"} 3\n",
            "vixp_fabric_reload_success 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
