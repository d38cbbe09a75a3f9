//! The route server's Prometheus metrics: one registry, prefix `route_server_`, labels no finer
//! than a member. The driver updates these from the cores' plain counters; nothing here decides
//! anything.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a per-session series: the member and the address family of the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SessionLabels {
    /// Member name from the fabric file.
    pub member: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// Labels of a per-session message counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MessageLabels {
    /// Member name.
    pub member: String,
    /// `ipv4` or `ipv6` (the session's family).
    pub family: String,
    /// Message type: `open`, `update`, `notification`, `keepalive`, `route_refresh`.
    pub r#type: String,
}

/// Labels of the filtered-routes gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FilteredLabels {
    /// Member name.
    pub member: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Why the import policy refused the routes (`next_hop_not_peer`, `bogon_prefix`, ...).
    pub reason: String,
}

/// Labels of the fabric reload counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied`, `invalid` (the file has errors) or `needs_restart` (the route server's own
    /// identity or listeners changed).
    pub result: String,
}

/// Labels of a NOTIFICATION counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NotificationLabels {
    /// Member name.
    pub member: String,
    /// Error code (RFC 4271 section 4.5).
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
}

/// Labels of refused connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusedLabels {
    /// Why: `unknown_address`, `neighbor_busy`, `max_prefix_hold_off`.
    pub reason: String,
}

/// All metrics of the route server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// 1 while the session is established.
    pub session_up: Family<SessionLabels, Gauge>,
    /// RFC 4271 FSM state as a number: 0 Idle, 1 Connect, 2 Active, 3 OpenSent, 4 OpenConfirm,
    /// 5 Established.
    pub session_state: Family<SessionLabels, Gauge>,
    /// Unix time the session last became established, 0 if it never did.
    pub session_established_timestamp: Family<SessionLabels, Gauge>,
    /// Times the session became established.
    pub session_established: Family<SessionLabels, Counter>,
    /// Prefixes received from the member (Adj-RIB-In).
    pub prefixes_received: Family<SessionLabels, Gauge>,
    /// Prefixes accepted by policy.
    pub prefixes_accepted: Family<SessionLabels, Gauge>,
    /// Prefixes advertised to the member.
    pub prefixes_advertised: Family<SessionLabels, Gauge>,
    /// Prefixes from the member refused by the import policy.
    pub prefixes_filtered: Family<SessionLabels, Gauge>,
    /// Routes from the member refused by the import policy, by reason.
    pub routes_filtered: Family<FilteredLabels, Gauge>,
    /// Messages received by type.
    pub messages_received: Family<MessageLabels, Counter>,
    /// Messages sent by type.
    pub messages_sent: Family<MessageLabels, Counter>,
    /// NOTIFICATIONs received by code and subcode.
    pub notifications_received: Family<NotificationLabels, Counter>,
    /// NOTIFICATIONs sent by code and subcode.
    pub notifications_sent: Family<NotificationLabels, Counter>,
    /// UPDATEs whose routes were treated as withdrawn (RFC 7606).
    pub updates_treated_as_withdraw: Family<SessionLabels, Counter>,
    /// Malformed path attributes discarded (RFC 7606).
    pub attributes_discarded: Family<SessionLabels, Counter>,
    /// TCP connections refused.
    pub connections_refused: Family<RefusedLabels, Counter>,
    /// The member's max-prefix limit for the session's family.
    pub max_prefix_limit: Family<SessionLabels, Gauge>,
    /// Times a member went over its max-prefix limit.
    pub max_prefix_exceeded: Family<SessionLabels, Counter>,
    /// Prefixes received as a share of the max-prefix limit (1.0 at the limit).
    pub max_prefix_usage_ratio: Family<SessionLabels, Gauge<f64, AtomicU64>>,
    /// 1 while the member announces at least [`crate::max_prefix::WARNING_PERCENT`] of its
    /// limit.
    pub max_prefix_warning: Family<SessionLabels, Gauge>,
    /// Fabric file reloads (SIGHUP or `route-server reload`) by result.
    pub fabric_reloads: Family<ReloadLabels, Counter>,
    /// 1 when the last reload was applied (or none happened), 0 when it was refused.
    pub fabric_reload_success: Gauge,
    /// Unix time the fabric in force was applied (start-up or the last applied reload).
    pub fabric_applied_timestamp: Gauge,
    /// Distinct prefixes in the RIB.
    pub rib_prefixes: Gauge,
    /// Paths in the RIB.
    pub rib_paths: Gauge,
    /// Distinct (interned) attribute sets in the RIB.
    pub rib_attribute_sets: Gauge,
    /// RPKI payload and RTR cache metrics (`route_server_rpki_*`).
    pub rpki: crate::rpki::rtr::RpkiMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("route_server");
        let metrics = Metrics {
            registry: Registry::default(),
            session_up: Family::default(),
            session_state: Family::default(),
            session_established_timestamp: Family::default(),
            session_established: Family::default(),
            prefixes_received: Family::default(),
            prefixes_accepted: Family::default(),
            prefixes_advertised: Family::default(),
            prefixes_filtered: Family::default(),
            routes_filtered: Family::default(),
            messages_received: Family::default(),
            messages_sent: Family::default(),
            notifications_received: Family::default(),
            notifications_sent: Family::default(),
            updates_treated_as_withdraw: Family::default(),
            attributes_discarded: Family::default(),
            connections_refused: Family::default(),
            max_prefix_limit: Family::default(),
            max_prefix_exceeded: Family::default(),
            max_prefix_usage_ratio: Family::default(),
            max_prefix_warning: Family::default(),
            fabric_reloads: Family::default(),
            fabric_reload_success: Gauge::default(),
            fabric_applied_timestamp: Gauge::default(),
            rib_prefixes: Gauge::default(),
            rib_paths: Gauge::default(),
            rib_attribute_sets: Gauge::default(),
            rpki: crate::rpki::rtr::RpkiMetrics::default(),
        };
        registry.register(
            "session_up",
            "Whether the BGP session with the member is established (1) or not (0)",
            metrics.session_up.clone(),
        );
        registry.register(
            "session_state",
            "RFC 4271 FSM state: 0 Idle, 1 Connect, 2 Active, 3 OpenSent, 4 OpenConfirm, 5 Established",
            metrics.session_state.clone(),
        );
        registry.register(
            "session_established_timestamp_seconds",
            "Unix time the session last became established (0: never); uptime is time() minus this",
            metrics.session_established_timestamp.clone(),
        );
        registry.register(
            "session_established",
            "Times the session became established",
            metrics.session_established.clone(),
        );
        registry.register(
            "prefixes_received",
            "Prefixes the member currently announces (Adj-RIB-In)",
            metrics.prefixes_received.clone(),
        );
        registry.register(
            "prefixes_accepted",
            "Prefixes from the member accepted by the import policy",
            metrics.prefixes_accepted.clone(),
        );
        registry.register(
            "prefixes_advertised",
            "Prefixes the route server advertises to the member",
            metrics.prefixes_advertised.clone(),
        );
        registry.register(
            "prefixes_filtered",
            "Prefixes from the member refused by the import policy (kept, never exported)",
            metrics.prefixes_filtered.clone(),
        );
        registry.register(
            "routes_filtered",
            "Routes from the member refused by the import policy, by reason",
            metrics.routes_filtered.clone(),
        );
        registry.register(
            "messages_received",
            "BGP messages received, by type",
            metrics.messages_received.clone(),
        );
        registry.register(
            "messages_sent",
            "BGP messages sent, by type",
            metrics.messages_sent.clone(),
        );
        registry.register(
            "notifications_received",
            "BGP NOTIFICATIONs received, by error code and subcode",
            metrics.notifications_received.clone(),
        );
        registry.register(
            "notifications_sent",
            "BGP NOTIFICATIONs sent, by error code and subcode",
            metrics.notifications_sent.clone(),
        );
        registry.register(
            "updates_treated_as_withdraw",
            "UPDATEs with a malformed attribute whose routes were treated as withdrawn (RFC 7606)",
            metrics.updates_treated_as_withdraw.clone(),
        );
        registry.register(
            "attributes_discarded",
            "Malformed path attributes discarded with the route kept (RFC 7606)",
            metrics.attributes_discarded.clone(),
        );
        registry.register(
            "connections_refused",
            "TCP connections refused, by reason",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "max_prefix_limit",
            "The member's max-prefix limit for the session's family (alert at 90% of it)",
            metrics.max_prefix_limit.clone(),
        );
        registry.register(
            "max_prefix_exceeded",
            "Times the member went over its max-prefix limit",
            metrics.max_prefix_exceeded.clone(),
        );
        registry.register(
            "max_prefix_usage_ratio",
            "Prefixes the member announces in the session's family divided by its max-prefix limit",
            metrics.max_prefix_usage_ratio.clone(),
        );
        registry.register(
            "max_prefix_warning",
            format!(
                "1 while the member announces at least {}% of its max-prefix limit (the warning threshold), else 0",
                crate::max_prefix::WARNING_PERCENT
            ),
            metrics.max_prefix_warning.clone(),
        );
        registry.register(
            "fabric_reloads",
            "Fabric file reloads (SIGHUP or route-server reload), by result (applied, invalid, needs_restart)",
            metrics.fabric_reloads.clone(),
        );
        registry.register(
            "fabric_reload_success",
            "Whether the last fabric reload was applied (1) or refused (0); 1 before any reload",
            metrics.fabric_reload_success.clone(),
        );
        registry.register(
            "fabric_applied_timestamp_seconds",
            "Unix time the fabric in force was applied: start-up or the last applied reload",
            metrics.fabric_applied_timestamp.clone(),
        );
        registry.register(
            "rib_prefixes",
            "Distinct prefixes in the RIB",
            metrics.rib_prefixes.clone(),
        );
        registry.register("rib_paths", "Paths in the RIB", metrics.rib_paths.clone());
        registry.register(
            "rib_attribute_sets",
            "Distinct path attribute sets in the RIB (shared between routes)",
            metrics.rib_attribute_sets.clone(),
        );
        metrics.rpki.register(&mut registry);
        Metrics {
            registry,
            ..metrics
        }
        .with_initial_values()
    }

    fn with_initial_values(self) -> Metrics {
        self.fabric_reload_success.set(1);
        // Metrics are created when the route server starts with its first fabric.
        self.fabric_applied(std::time::SystemTime::now());
        self
    }

    /// Records that a fabric was applied at `now`.
    pub fn fabric_applied(&self, now: std::time::SystemTime) {
        let seconds = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.fabric_applied_timestamp
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// Removes every per-session series of a session whose slot a reload removed from the
    /// fabric, so a departed member leaves no stale series behind.
    pub fn forget_session(&self, labels: &SessionLabels) {
        for family in [
            &self.session_up,
            &self.session_state,
            &self.session_established_timestamp,
            &self.prefixes_received,
            &self.prefixes_accepted,
            &self.prefixes_advertised,
            &self.prefixes_filtered,
            &self.max_prefix_limit,
            &self.max_prefix_warning,
        ] {
            family.remove(labels);
        }
        self.max_prefix_usage_ratio.remove(labels);
        for family in [
            &self.session_established,
            &self.updates_treated_as_withdraw,
            &self.attributes_discarded,
            &self.max_prefix_exceeded,
        ] {
            family.remove(labels);
        }
        for kind in [
            "open",
            "update",
            "notification",
            "keepalive",
            "route_refresh",
        ] {
            let message = MessageLabels {
                member: labels.member.clone(),
                family: labels.family.clone(),
                r#type: kind.to_string(),
            };
            self.messages_received.remove(&message);
            self.messages_sent.remove(&message);
        }
        for reason in crate::policy::Reason::LABELS {
            self.routes_filtered.remove(&FilteredLabels {
                member: labels.member.clone(),
                family: labels.family.clone(),
                reason: (*reason).to_string(),
            });
        }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4), which every
    /// Prometheus and `promtool check metrics` read.
    pub fn render(&self) -> String {
        vixp_common::metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_in_help_and_type() {
        let metrics = Metrics::new();
        metrics
            .connections_refused
            .get_or_create(&RefusedLabels {
                reason: "unknown_address".to_string(),
            })
            .inc();
        let text = metrics.render();
        assert!(text.contains("# TYPE route_server_connections_refused_total counter"));
        assert!(text.contains("# HELP route_server_connections_refused_total "));
        assert!(
            text.contains("route_server_connections_refused_total{reason=\"unknown_address\"} 1")
        );
        assert!(text.contains("# TYPE route_server_rib_paths gauge"));
        assert!(text.contains("# TYPE route_server_fabric_applied_timestamp_seconds gauge"));
        assert!(!text.contains("route_server_fabric_applied_timestamp_seconds 0\n"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn max_prefix_usage_is_a_fraction_beside_its_warning_flag() {
        let metrics = Metrics::new();
        let labels = SessionLabels {
            member: "alpha".to_string(),
            family: "ipv4".to_string(),
        };
        metrics
            .max_prefix_usage_ratio
            .get_or_create(&labels)
            .set(crate::max_prefix::usage_ratio(9, 10));
        metrics.max_prefix_warning.get_or_create(&labels).set(1);
        let text = metrics.render();
        assert!(text.contains("# TYPE route_server_max_prefix_usage_ratio gauge"));
        assert!(
            text.contains(
                "route_server_max_prefix_usage_ratio{member=\"alpha\",family=\"ipv4\"} 0.9\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "# HELP route_server_max_prefix_warning 1 while the member announces at least 90% "
        ));
        assert!(
            text.contains("route_server_max_prefix_warning{member=\"alpha\",family=\"ipv4\"} 1\n")
        );
    }
}
