//! Prometheus text exposition of a `prometheus-client` registry. prometheus-client writes
//! OpenMetrics; Prometheus and `promtool check metrics` also read the older 0.0.4 text format,
//! in which a counter family's HELP and TYPE lines carry the `_total` name its samples have.

use std::fmt::Write as _;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::registry::Registry;

/// The HTTP content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry's metrics in the Prometheus 0.0.4 text format.
pub fn render(registry: &Registry) -> String {
    let mut open_metrics = String::new();
    if encode_registry(&mut open_metrics, registry).is_err() {
        return String::new();
    }
    to_prometheus_text(&open_metrics)
}

/// Converts OpenMetrics text to the Prometheus 0.0.4 format: a counter family `x` is written
/// `x_total` in its HELP and TYPE lines, as its samples are; `# UNIT` and `# EOF` lines go.
pub fn to_prometheus_text(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len() + counters.len() * 16);
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|marker| {
            let (name, tail) = line.strip_prefix(marker)?.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{marker}{name}_total {tail}"))
        });
        let _ = writeln!(out, "{}", renamed.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    use super::*;

    #[test]
    fn counters_carry_total_in_help_and_type_and_eof_goes() {
        let mut registry = Registry::with_prefix("demo");
        let counter: Counter = Counter::default();
        counter.inc_by(3);
        registry.register("packets", "Packets seen", counter);
        let gauge: Gauge = Gauge::default();
        gauge.set(7);
        registry.register("peers", "Peers known", gauge);
        let text = render(&registry);
        assert!(
            text.contains("# HELP demo_packets_total Packets seen.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE demo_packets_total counter\n"),
            "{text}"
        );
        assert!(text.contains("demo_packets_total 3\n"), "{text}");
        assert!(
            text.contains("# TYPE demo_peers gauge\ndemo_peers 7\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
    }
}
