//! Live reload with real BIRD 2 members: `route-server reload` removes a member (its BIRD
//! sessions end with Cease 6/3, "Peer de-configured", and its routes vanish from the others)
//! and adds it back (its sessions come up again and its routes return), while the other
//! members' sessions are never reset. Runs in network namespaces the exchange harness creates.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use vixp_tests::{Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind};

/// How long a change may take to reach every member.
const PROPAGATION: Duration = Duration::from_secs(10);

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

fn member(name: &str, asn: u32, host: u8, prefixes: &[&str]) -> MemberSpec {
    MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements: prefixes
            .iter()
            .map(|text| Announcement::new(prefix(text)))
            .collect(),
    }
}

fn holds(exchange: &Exchange, receiver: &str, wanted: &str) -> bool {
    exchange
        .member(receiver)
        .routes()
        .is_ok_and(|routes| routes.iter().any(|route| route.prefix == prefix(wanted)))
}

fn metric(exchange: &Exchange, series: &str) -> Option<f64> {
    let text = exchange.route_server_metrics().ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

fn established_total(exchange: &Exchange, member: &str, family: &str) -> Option<f64> {
    metric(
        exchange,
        &format!(
            "route_server_session_established_total{{member=\"{member}\",family=\"{family}\"}}"
        ),
    )
}

/// The fabric text without `name`'s entry (its lines up to the next member).
fn without_member(fabric: &str, name: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in fabric.lines() {
        if line.starts_with("  - name: ") {
            skipping = line == format!("  - name: {name}");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn bird_members_see_a_member_removed_and_added_back_by_a_reload_without_other_resets() {
    let exchange = Exchange::start(
        "interop-reload",
        RouteServerKind::Ours,
        vec![
            member("alpha", 64501, 11, &["198.18.128.0/24", "fd00:1:11::/48"]),
            member("bravo", 64502, 12, &["198.18.130.0/24"]),
            member("charlie", 64503, 13, &["198.18.132.0/24", "fd00:1:13::/48"]),
        ],
    )
    .expect("exchange starts");
    exchange.wait_established();
    exchange.wait_for(PROPAGATION, "every member holds the others' routes", |x| {
        ["alpha", "bravo", "charlie"]
            .iter()
            .all(|name| x.holds_expected_routes(name))
    });
    let fabric_path = exchange.path("fabric.yaml");
    let original = std::fs::read_to_string(&fabric_path).expect("fabric file");

    // Remove charlie.
    std::fs::write(&fabric_path, without_member(&original, "charlie")).expect("write");
    let output = exchange.route_server_reload().expect("reload runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("members removed: charlie"), "{stdout}");
    let charlie = exchange
        .member("charlie")
        .bird()
        .expect("charlie runs BIRD");
    let deadline = Instant::now() + PROPAGATION;
    let mut told = String::new();
    while Instant::now() < deadline {
        told = charlie
            .birdc(&["show", "protocols", "all", "rs4"])
            .unwrap_or_default();
        if told.contains("Peer de-configured") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        told.contains("Received: Peer de-configured"),
        "charlie's BIRD got Cease 6/3:\n{told}"
    );
    exchange.wait_for(
        PROPAGATION,
        "charlie's routes vanish from alpha and bravo",
        |x| {
            ["alpha", "bravo"]
                .iter()
                .all(|name| !holds(x, name, "198.18.132.0/24") && !holds(x, name, "fd00:1:13::/48"))
        },
    );
    assert!(
        holds(&exchange, "bravo", "198.18.128.0/24"),
        "alpha's routes stay"
    );
    assert!(
        exchange
            .route_server_neighbors()
            .expect("neighbors")
            .iter()
            .all(|(name, _)| name != "charlie"),
        "charlie is gone from the status table"
    );

    // Add charlie back: its sessions come up again (the route server connects out; BIRD
    // accepts that even within its error wait after the Cease) and its routes return.
    std::fs::write(&fabric_path, &original).expect("write");
    let output = exchange.route_server_reload().expect("reload runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("members added: charlie"), "{stdout}");
    exchange.wait_for(
        Duration::from_secs(30),
        "charlie is back and everyone holds everyone's routes",
        |x| {
            x.route_server_sees_established("charlie")
                && ["alpha", "bravo", "charlie"]
                    .iter()
                    .all(|name| x.holds_expected_routes(name))
        },
    );

    for name in ["alpha", "bravo"] {
        for family in ["ipv4", "ipv6"] {
            assert_eq!(
                established_total(&exchange, name, family),
                Some(1.0),
                "{name}.{family} was never reset"
            );
        }
    }
}
