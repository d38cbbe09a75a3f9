//! The Prometheus files in `configs/prometheus/` and the Grafana dashboards in
//! `configs/grafana/`: `promtool` accepts the scrape config (and the rule files it references),
//! the alert rules and every dashboard query, `promtool test rules` shows each alert firing
//! when it should and only then, each dashboard imports anywhere (title, uid, a Prometheus
//! datasource variable, panels that use it with at least one query), and every metric name the
//! rules and dashboards use is exported by a running route server (`route_server_`, on
//! loopback) or a running fabric node (`vixp_`, in a namespace this test creates). Owns the
//! processes and the namespace it starts; must not send traffic anywhere but loopback and that
//! namespace.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use vixp_tests::exchange::ROUTE_SERVER_NAME;
use vixp_tests::fabric_exchange::{FabricMember, fabric_yaml};
use vixp_tests::vixp_node::keygen;
use vixp_tests::{Netns, TempDir, VixpNode, binary_path, try_wait_until, workspace_root};

/// How long a daemon may take to serve its first `/metrics`.
const METRICS_TIMEOUT: Duration = Duration::from_secs(15);
/// Where a node serves `/metrics` when its node file does not say (docs/node-reference.md);
/// the node runs in its own namespace, so the port is free there.
const NODE_METRICS: &str = "127.0.0.1:9180";
/// Prefixes of the metric families the exchange exports.
const PREFIXES: [&str; 2] = ["route_server_", "vixp_"];
/// The dashboards in `configs/grafana/`, by file name.
const DASHBOARDS: [&str; 2] = ["exchange.json", "member.json"];
/// The datasource variable every panel and query names, so a dashboard imports into any
/// Grafana whatever its Prometheus datasource is called.
const DATASOURCE_VARIABLE: &str = "DS_PROMETHEUS";
/// What a dashboard query's Grafana variables stand for when `promtool` parses it: `$member`
/// one member name, the multi-value selectors "all", the rate window a typical one.
const QUERY_VARIABLES: [(&str, &str); 5] = [
    ("$__rate_interval", "5m"),
    ("${member}", "alpha"),
    ("$member", "alpha"),
    ("$route_server", ".*"),
    ("$node", ".*"),
];

/// `promtool test rules` cases for alerts.yml (its path is prepended): after 20 minutes exactly
/// the seven alerts meant to fire do (a session that was up, 95% of max-prefix, a rejected
/// fabric, no RPKI cache for 18 minutes, a 9-minute-old handshake, 20 spoofed drops/s, a node
/// whose fabric was rejected); a session never established, 89% of max-prefix, RPKI
/// caches gone for 3 minutes, a fresh or absent handshake, broadcast drops, 1 drop/s and a
/// node that applied a fixed fabric a minute after a rejected one do not; at 3
/// minutes nothing fires yet because of each rule's `for`.
const RULE_TESTS: &str = r#"evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'route_server_session_up{instance="rs",member="alpha",family="ipv4"}'
        values: '1 0x30'
      - series: 'route_server_session_established_timestamp_seconds{instance="rs",member="alpha",family="ipv4"}'
        values: '30x30'
      - series: 'route_server_session_up{instance="rs",member="bravo",family="ipv4"}'
        values: '0x30'
      - series: 'route_server_session_established_timestamp_seconds{instance="rs",member="bravo",family="ipv4"}'
        values: '0x30'
      - series: 'route_server_max_prefix_usage_ratio{instance="rs",member="alpha",family="ipv4"}'
        values: '0.95x30'
      - series: 'route_server_max_prefix_warning{instance="rs",member="alpha",family="ipv4"}'
        values: '1x30'
      - series: 'route_server_max_prefix_usage_ratio{instance="rs",member="bravo",family="ipv4"}'
        values: '0.89x30'
      - series: 'route_server_max_prefix_warning{instance="rs",member="bravo",family="ipv4"}'
        values: '0x30'
      - series: 'route_server_fabric_reload_success{instance="rs"}'
        values: '1 1 1 0x30'
      - series: 'route_server_fabric_reload_success{instance="rs2"}'
        values: '1x30'
      - series: 'route_server_rpki_stale{instance="rs"}'
        values: '0 0 1x30'
      - series: 'route_server_rpki_stale{instance="rs2"}'
        values: '0 1 1 1 0x30'
      - series: 'vixp_latest_handshake_seconds{instance="n",member="alpha"}'
        values: '60x30'
      - series: 'vixp_latest_handshake_seconds{instance="n",member="bravo"}'
        values: '0+60x30'
      - series: 'vixp_latest_handshake_seconds{instance="n",member="charlie"}'
        values: '0x30'
      - series: 'vixp_drops_total{instance="n",reason="spoofed_source"}'
        values: '0+1200x30'
      - series: 'vixp_drops_total{instance="n",reason="broadcast"}'
        values: '0+6000x30'
      - series: 'vixp_drops_total{instance="n",reason="replayed"}'
        values: '0+60x30'
      - series: 'vixp_fabric_reload_success{instance="n"}'
        values: '1 1 1 0x30'
      - series: 'vixp_fabric_reload_success{instance="n2"}'
        values: '1 1 0 1x30'
    promql_expr_test:
      - expr: ALERTS{alertstate="firing"}
        eval_time: 20m
        exp_samples:
          - labels: 'ALERTS{alertname="RouteServerSessionDown",alertstate="firing",severity="warning",instance="rs",member="alpha",family="ipv4"}'
            value: 1
          - labels: 'ALERTS{alertname="RouteServerMemberNearMaxPrefix",alertstate="firing",severity="warning",instance="rs",member="alpha",family="ipv4"}'
            value: 1
          - labels: 'ALERTS{alertname="RouteServerFabricRejected",alertstate="firing",severity="critical",instance="rs"}'
            value: 1
          - labels: 'ALERTS{alertname="RouteServerRpkiCacheStale",alertstate="firing",severity="warning",instance="rs"}'
            value: 1
          - labels: 'ALERTS{alertname="VixpHandshakeStale",alertstate="firing",severity="warning",instance="n",member="alpha"}'
            value: 1
          - labels: 'ALERTS{alertname="VixpDropRateHigh",alertstate="firing",severity="warning",instance="n",reason="spoofed_source"}'
            value: 1
          - labels: 'ALERTS{alertname="VixpFabricRejected",alertstate="firing",severity="critical",instance="n"}'
            value: 1
      - expr: ALERTS{alertstate="firing"}
        eval_time: 3m
        exp_samples: []
"#;

fn prometheus_dir() -> PathBuf {
    workspace_root().join("configs").join("prometheus")
}

/// A dashboard of `configs/grafana/`, parsed; panics unless it is JSON.
fn dashboard(file: &str) -> Value {
    let path = workspace_root().join("configs").join("grafana").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid JSON: {error}", path.display()))
}

/// Every `expr` string anywhere in `value` (panel queries and variable queries alike).
fn expressions(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(expr)) = fields.get("expr") {
                    found.push(expr.clone());
                }
                pending.extend(fields.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    found
}

/// `expr` with its Grafana variables replaced by [`QUERY_VARIABLES`]; `None` when a `$` is
/// left, i.e. the query uses a variable this test does not know.
fn plain_promql(expr: &str) -> Option<String> {
    let plain = QUERY_VARIABLES
        .iter()
        .fold(expr.to_owned(), |text, (variable, value)| {
            text.replace(variable, value)
        });
    (!plain.contains('$')).then_some(plain)
}

/// The names of the variables a dashboard defines, with their types.
fn variables(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|variable| {
                    (
                        variable["name"].as_str().unwrap_or_default().to_owned(),
                        variable["type"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The problems that would stop `dashboard` (file `file`) from importing anywhere and showing
/// data: no title or uid, no datasource variable, a panel without the variable as its
/// datasource, without a query, or with an empty query.
fn dashboard_problems(file: &str, dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for field in ["title", "uid"] {
        if dashboard[field].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{file}: no {field}"));
        }
    }
    if dashboard["schemaVersion"]
        .as_u64()
        .is_none_or(|version| version < 36)
    {
        problems.push(format!("{file}: schemaVersion below 36"));
    }
    let datasource_variable = (DATASOURCE_VARIABLE.to_owned(), "datasource".to_owned());
    if !variables(dashboard).contains(&datasource_variable) {
        problems.push(format!(
            "{file}: no datasource variable {DATASOURCE_VARIABLE}"
        ));
    }
    let expected_uid = format!("${{{DATASOURCE_VARIABLE}}}");
    let uses_variable = |datasource: &Value| {
        datasource["type"] == "prometheus" && datasource["uid"] == expected_uid.as_str()
    };
    let panels = dashboard["panels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if panels.is_empty() {
        problems.push(format!("{file}: no panels"));
    }
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        if title.is_empty() {
            problems.push(format!("{file}: a panel without a title"));
        }
        if !panel["id"].as_u64().is_some_and(|id| ids.insert(id)) {
            problems.push(format!(
                "{file}: panel {title:?} has no id or a duplicate one"
            ));
        }
        if !uses_variable(&panel["datasource"]) {
            problems.push(format!(
                "{file}: panel {title:?} does not use datasource {expected_uid}"
            ));
        }
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{file}: panel {title:?} has no target"));
        }
        for target in targets {
            if target["expr"]
                .as_str()
                .is_none_or(|expr| expr.trim().is_empty())
            {
                problems.push(format!("{file}: panel {title:?} has a target without expr"));
            }
            if !uses_variable(&target["datasource"]) {
                problems.push(format!(
                    "{file}: a target of panel {title:?} does not use datasource {expected_uid}"
                ));
            }
        }
    }
    problems
}

/// Runs `promtool args...` and returns its combined output; panics with it unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every identifier in `text` that starts with one of [`PREFIXES`] (at a word boundary) and is
/// longer than it (a bare prefix, as in a comment, names no metric).
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_word(c)) {
        let word_and_more = &rest[start..];
        let end = word_and_more
            .find(|c: char| !is_word(c))
            .unwrap_or(word_and_more.len());
        let word = &word_and_more[..end];
        if PREFIXES
            .iter()
            .any(|prefix| word.len() > prefix.len() && word.starts_with(prefix))
        {
            names.insert(word.to_owned());
        }
        rest = &word_and_more[end..];
    }
    names
}

/// The sample names a Prometheus text exposition declares in its `# TYPE` lines (histograms
/// and summaries also expose `_bucket`, `_sum` and `_count`).
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(declaration) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut fields = declaration.split_whitespace();
        let (Some(name), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        if matches!(kind, "histogram" | "summary" | "gaugehistogram") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// The body of `GET http://address/metrics`, or `None` while nothing answers with 200.
fn scrape(address: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A loopback TCP port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind an ephemeral loopback port")
}

/// `route-server run` on loopback, killed by its PID when dropped.
struct RouteServer {
    child: Child,
    http: SocketAddr,
}

impl RouteServer {
    /// Starts the route server of `configs/fabric.yaml` passively on free loopback ports.
    fn start() -> RouteServer {
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let fabric = workspace_root().join("configs").join("fabric.yaml");
        let child = Command::new(binary_path("route-server"))
            .arg("run")
            .arg("-c")
            .arg(&fabric)
            .args(["--listen", "127.0.0.1", "--port"])
            .arg(free_port().to_string())
            .arg("--http")
            .arg(http.to_string())
            .arg("--passive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start route-server (cargo build -p route-server first)");
        RouteServer { child, http }
    }
}

impl Drop for RouteServer {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metrics exposition of a running route server.
fn route_server_exposition() -> String {
    let mut route_server = RouteServer::start();
    let mut body = None;
    let served = try_wait_until(METRICS_TIMEOUT, || {
        body = scrape(route_server.http);
        body.is_some() || !matches!(route_server.child.try_wait(), Ok(None))
    });
    assert!(
        served,
        "route server served no /metrics on {}",
        route_server.http
    );
    body.unwrap_or_else(|| panic!("route server exited before serving /metrics"))
}

/// The metrics exposition of a running fabric node (`vixp up` as member alpha of a fabric of
/// two, in a namespace of its own), fetched with curl inside that namespace.
fn node_exposition() -> String {
    let dir = TempDir::new("monitoring").expect("temp dir");
    let netns = Netns::new().expect("network namespace");
    let alpha = FabricMember::new("alpha", 64501, 11);
    let route_server_key = keygen(dir.path(), ROUTE_SERVER_NAME).expect("route server key");
    let alpha_key = keygen(dir.path(), &alpha.name).expect("alpha key");
    dir.write(
        "fabric.yaml",
        &fabric_yaml(&route_server_key, &[(&alpha, alpha_key.as_str())]),
    )
    .expect("write fabric");
    let mut node = VixpNode::start(&alpha.name, &netns, dir.path()).expect("start vixp node");
    let url = format!("http://{NODE_METRICS}/metrics");
    let mut body = None;
    let served = try_wait_until(METRICS_TIMEOUT, || {
        body = netns.run("curl", &["-sf", "--max-time", "5", &url]).ok();
        body.is_some()
    });
    let log = node
        .daemon()
        .map(|daemon| daemon.log_tail(20))
        .unwrap_or_default();
    node.stop().expect("stop vixp node");
    assert!(served, "node served no /metrics on {NODE_METRICS}\n{log}");
    body.unwrap_or_default()
}

#[test]
fn promtool_accepts_the_scrape_config_and_its_rule_files() {
    let config = prometheus_dir().join("prometheus.yml");
    let output = promtool(&["check", "config", &config.to_string_lossy()]);
    assert!(output.contains("1 rule files found"), "{output}");
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let rules = prometheus_dir().join("alerts.yml");
    let output = promtool(&["check", "rules", &rules.to_string_lossy()]);
    assert!(output.contains("SUCCESS: 7 rules found"), "{output}");
}

#[test]
fn the_alerts_fire_when_they_should_and_only_then() {
    let dir = TempDir::new("rule-tests").expect("temp dir");
    let rules = prometheus_dir().join("alerts.yml");
    let cases = format!("rule_files:\n  - {}\n{RULE_TESTS}", rules.to_string_lossy());
    let path = dir
        .write("alerts_test.yml", &cases)
        .expect("write rule tests");
    let output = promtool(&["test", "rules", &path.to_string_lossy()]);
    assert!(output.contains("SUCCESS"), "{output}");
}

#[test]
fn the_dashboards_import_anywhere_and_every_panel_has_a_query() {
    let mut uids = BTreeSet::new();
    let mut problems = Vec::new();
    for file in DASHBOARDS {
        let dashboard = dashboard(file);
        problems.extend(dashboard_problems(file, &dashboard));
        let uid = dashboard["uid"].as_str().unwrap_or_default().to_owned();
        assert!(uids.insert(uid.clone()), "uid {uid} used twice");
    }
    assert!(problems.is_empty(), "{problems:#?}");

    let member = dashboard("member.json");
    assert!(
        variables(&member).contains(&("member".to_owned(), "query".to_owned())),
        "member.json has no member variable"
    );
    let member_queries = expressions(&member["panels"]);
    assert!(
        member_queries
            .iter()
            .all(|expr| expr.contains("\"$member\"")),
        "a member.json panel query is not about $member: {member_queries:#?}"
    );
}

#[test]
fn dashboard_problems_name_what_is_missing() {
    let broken: Value = serde_json::from_str(
        r#"{"title": "t", "schemaVersion": 39,
            "templating": {"list": [{"name": "DS_PROMETHEUS", "type": "datasource"}]},
            "panels": [
              {"id": 1, "title": "ok", "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
               "targets": [{"expr": "up", "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}}]},
              {"id": 1, "title": "fixed source", "datasource": {"type": "prometheus", "uid": "abc"},
               "targets": []}]}"#,
    )
    .expect("test JSON");
    let problems = dashboard_problems("x.json", &broken);
    assert_eq!(
        problems,
        [
            "x.json: no uid",
            "x.json: panel \"fixed source\" has no id or a duplicate one",
            "x.json: panel \"fixed source\" does not use datasource ${DS_PROMETHEUS}",
            "x.json: panel \"fixed source\" has no target",
        ]
    );
}

#[test]
fn promtool_parses_every_dashboard_query() {
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut count = 0;
    for file in DASHBOARDS {
        for expr in expressions(&dashboard(file)) {
            let plain = plain_promql(&expr)
                .unwrap_or_else(|| panic!("{file}: unknown variable in {expr:?}"));
            count += 1;
            let quoted = serde_json::to_string(&plain).expect("quote a string");
            rules.push_str(&format!(
                "      - record: dashboard:query_{count}\n        expr: {quoted}\n"
            ));
        }
    }
    assert!(count >= 20, "only {count} dashboard queries found");
    let dir = TempDir::new("dashboard-queries").expect("temp dir");
    let path = dir
        .write("dashboard_queries.yml", &rules)
        .expect("write dashboard queries");
    let output = promtool(&["check", "rules", &path.to_string_lossy()]);
    assert!(
        output.contains(&format!("SUCCESS: {count} rules found")),
        "{output}"
    );
}

#[test]
fn plain_promql_replaces_known_variables_only() {
    assert_eq!(
        plain_promql("rate(x{member=\"$member\", i=~\"$node\"}[$__rate_interval])").as_deref(),
        Some("rate(x{member=\"alpha\", i=~\".*\"}[5m])")
    );
    assert_eq!(plain_promql("x{a=\"$unknown\"}"), None);
}

#[test]
fn every_metric_in_the_alert_rules_and_dashboards_is_exported_by_a_running_daemon() {
    let rules_path = prometheus_dir().join("alerts.yml");
    let rules = std::fs::read_to_string(&rules_path).expect("read alerts.yml");
    let mut used = metric_names(&rules);
    for expected in [
        "route_server_session_up",
        "route_server_session_established_timestamp_seconds",
        "route_server_max_prefix_usage_ratio",
        "route_server_max_prefix_warning",
        "route_server_fabric_reload_success",
        "vixp_fabric_reload_success",
        "vixp_latest_handshake_seconds",
        "vixp_drops_total",
    ] {
        assert!(
            used.contains(expected),
            "alerts.yml no longer uses {expected}"
        );
    }
    let in_dashboards: BTreeSet<String> = DASHBOARDS
        .iter()
        .flat_map(|file| expressions(&dashboard(file)))
        .flat_map(|expr| metric_names(&expr))
        .collect();
    for expected in [
        "route_server_prefixes_advertised",
        "route_server_routes_filtered",
        "route_server_max_prefix_limit",
        "vixp_sent_bytes_total",
        "vixp_received_bytes_total",
        "vixp_latest_handshake_seconds",
        "vixp_drops_total",
    ] {
        assert!(
            in_dashboards.contains(expected),
            "the dashboards no longer use {expected}"
        );
    }
    used.extend(in_dashboards);

    let mut exported = exported_names(&route_server_exposition());
    assert!(
        exported.contains("route_server_session_up"),
        "route server exposition without route_server_session_up: {exported:?}"
    );
    let node = exported_names(&node_exposition());
    assert!(
        node.contains("vixp_drops_total"),
        "node exposition without vixp_drops_total: {node:?}"
    );
    exported.extend(node);

    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "alerts.yml or a dashboard uses metrics no daemon exports: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
fn metric_names_are_whole_prefixed_words() {
    let names = metric_names(
        "expr: rate(vixp_drops_total{reason!~\"b\"}[5m]) > 1 and my_vixp_x vixp_\n\
         # route-server docs, route_server_session_up==0",
    );
    let expected: BTreeSet<String> = ["vixp_drops_total", "route_server_session_up"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn exported_names_come_from_type_lines() {
    let names = exported_names(
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\
         # TYPE lat histogram\nlat_bucket{le=\"1\"} 0\n",
    );
    let expected: BTreeSet<String> = ["a_total", "lat", "lat_bucket", "lat_count", "lat_sum"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
}
