//! The published peering policy says what the running filters do: one parameter of the fabric
//! file (`max_as_path_length`) is changed under a running route server with real BIRD members,
//! and the Markdown (`route-server policy --markdown`), the `/policy` page of the running route
//! server and the route server's filtering all change together. Must not send traffic outside
//! the namespaces the exchange harness creates.

use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use vixp_tests::exchange::RouteServer;
use vixp_tests::{Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind, binary_path};

/// Alpha's route, seen by the route server with the AS path `64501 64510 64511` (3 ASNs).
const ROUTE: &str = "198.18.170.0/24";
/// How long a reload may take to show in the API, the page and the members' tables.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

fn members() -> Vec<MemberSpec> {
    let mut route = Announcement::new(prefix(ROUTE));
    route.foreign_path = vec![64510, 64511];
    vec![
        MemberSpec {
            name: "alpha".to_owned(),
            asn: 64501,
            host: 11,
            kind: MemberKind::Bird,
            announcements: vec![route],
        },
        MemberSpec {
            name: "bravo".to_owned(),
            asn: 64502,
            host: 12,
            kind: MemberKind::Bird,
            announcements: Vec::new(),
        },
    ]
}

/// `route-server policy --markdown` of the exchange's fabric file.
fn markdown(exchange: &Exchange) -> String {
    let output = Command::new(binary_path("route-server"))
        .args(["policy", "--markdown", "-c"])
        .arg(exchange.path("fabric.yaml"))
        .output()
        .expect("run route-server policy (cargo build -p route-server first)");
    assert!(
        output.status.success(),
        "route-server policy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 Markdown")
}

fn bravo_holds_the_route(exchange: &Exchange) -> bool {
    exchange
        .member("bravo")
        .routes()
        .is_ok_and(|routes| routes.iter().any(|route| route.prefix == prefix(ROUTE)))
}

/// The reason label the route server gives for alpha's route, if it is filtered.
fn filtered_label(exchange: &Exchange) -> Option<String> {
    let body = exchange
        .route_server_get("/api/v1/neighbors/alpha.ipv4/routes/filtered")
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    value["routes"]
        .as_array()?
        .iter()
        .find(|route| route["network"] == ROUTE)
        .and_then(|route| route["filtered"]["label"].as_str())
        .map(str::to_owned)
}

#[test]
fn a_changed_as_path_limit_changes_the_published_policy_and_the_filtering_alike() {
    let exchange = Exchange::start("policy-page", RouteServerKind::Ours, members())
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();

    // Before: the default limit of 32 ASNs, published and applied.
    exchange.wait_for(
        RELOAD_TIMEOUT,
        "bravo to receive alpha's 3-ASN route",
        bravo_holds_the_route,
    );
    assert_eq!(filtered_label(&exchange), None);
    let page = exchange.route_server_get("/policy").expect("GET /policy");
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("at most <code>32</code>"), "{page}");
    assert!(
        page.contains("<td>alpha</td><td><code>AS64501</code></td>"),
        "{page}"
    );
    assert!(markdown(&exchange).contains("at most `32` (`max_as_path_length`)"));

    // The operators lower the limit to 2 and tell the route server.
    let path = exchange.path("fabric.yaml");
    let fabric = std::fs::read_to_string(&path).expect("read fabric");
    assert_eq!(fabric.matches("policy:\n").count(), 1, "{fabric}");
    std::fs::write(
        &path,
        fabric.replace("policy:\n", "policy:\n  max_as_path_length: 2\n"),
    )
    .expect("write fabric");
    let RouteServer::Ours(daemon) = exchange.route_server() else {
        panic!("the exchange runs our route server");
    };
    let pid = daemon.pid().expect("route server PID");
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid}");

    // After: the page, the Markdown and the filter all say 2.
    exchange.wait_for(
        RELOAD_TIMEOUT,
        "/policy to publish the new limit",
        |exchange| {
            exchange
                .route_server_get("/policy")
                .is_ok_and(|page| page.contains("at most <code>2</code>"))
        },
    );
    assert!(markdown(&exchange).contains("at most `2` (`max_as_path_length`)"));
    exchange.wait_for(
        RELOAD_TIMEOUT,
        "alpha's route to be filtered as too long",
        |exchange| filtered_label(exchange).as_deref() == Some("as_path_too_long"),
    );
    exchange.wait_for(RELOAD_TIMEOUT, "bravo to lose alpha's route", |exchange| {
        !bravo_holds_the_route(exchange)
    });
    let metrics = exchange.route_server_metrics().expect("metrics");
    assert!(
        metrics.contains("route_server_fabric_reloads_total{result=\"applied\"} 1"),
        "{metrics}"
    );
}
