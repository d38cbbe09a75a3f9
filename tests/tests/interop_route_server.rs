//! Interop with real daemons: BIRD and GoBGP members exchange routes through a route server on
//! a bridged LAN in network namespaces. Every behaviour runs against BIRD as the route server
//! (the anchor, `rs client` + `secondary`) and against our `route-server`, with the same
//! assertions, checked through the members' own CLIs. Must not send traffic outside the
//! namespaces it creates.

use std::{
    io::Write as _,
    net::IpAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ipnet::IpNet;
use vixp_tests::{
    Announcement, Exchange, MemberKind, MemberSpec, Route, RouteServerKind,
    exchange::MEMBER_PROTOCOLS,
};

/// "Within a few seconds": how long a change may take to reach every other member.
const PROPAGATION: Duration = Duration::from_secs(5);

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

fn announcement(
    text: &str,
    med: Option<u32>,
    communities: &[(u16, u16)],
    large_communities: &[(u32, u32, u32)],
    prepend: usize,
) -> Announcement {
    Announcement {
        med,
        communities: communities.to_vec(),
        large_communities: large_communities.to_vec(),
        prepend,
        ..Announcement::new(prefix(text))
    }
}

/// alpha (BIRD), bravo (GoBGP) and charlie (BIRD), each with one IPv4 and one IPv6 prefix
/// carrying distinct attributes.
fn members() -> Vec<MemberSpec> {
    vec![
        MemberSpec {
            name: "alpha".to_owned(),
            asn: 64501,
            host: 11,
            kind: MemberKind::Bird,
            announcements: vec![
                announcement(
                    "198.18.128.0/24",
                    Some(10),
                    &[(64501, 1)],
                    &[(64501, 1, 1)],
                    1,
                ),
                announcement(
                    "fd00:1:11::/48",
                    Some(11),
                    &[(64501, 6)],
                    &[(64501, 6, 6)],
                    0,
                ),
            ],
        },
        MemberSpec {
            name: "bravo".to_owned(),
            asn: 64502,
            host: 12,
            kind: MemberKind::Gobgp,
            announcements: vec![
                announcement(
                    "198.18.130.0/24",
                    Some(20),
                    &[(64502, 2), (64502, 3)],
                    &[(64502, 2, 2)],
                    0,
                ),
                announcement("fd00:1:12::/48", Some(21), &[], &[(64502, 6, 6)], 2),
            ],
        },
        MemberSpec {
            name: "charlie".to_owned(),
            asn: 64503,
            host: 13,
            kind: MemberKind::Bird,
            announcements: vec![
                announcement("198.18.132.0/23", None, &[(64503, 3)], &[], 0),
                announcement(
                    "fd00:1:13::/48",
                    Some(31),
                    &[(64503, 6)],
                    &[(64503, 6, 6)],
                    1,
                ),
            ],
        },
    ]
}

fn start(label: &str, kind: RouteServerKind, members: Vec<MemberSpec>) -> Exchange {
    let exchange = Exchange::start(label, kind, members)
        .unwrap_or_else(|error| panic!("cannot start exchange {label}: {error}"));
    exchange.wait_established();
    exchange
}

fn wait_all_hold_expected(exchange: &Exchange, what: &str) -> Duration {
    let start = Instant::now();
    let names: Vec<String> = exchange
        .members()
        .iter()
        .filter(|m| m.is_alive())
        .map(|m| m.name().to_owned())
        .collect();
    exchange.wait_for(PROPAGATION, what, |exchange| {
        names
            .iter()
            .all(|name| exchange.holds_expected_routes(name))
    });
    start.elapsed()
}

fn sessions_establish_and_routes_pass_unchanged(label: &str, kind: RouteServerKind) {
    let exchange = start(label, kind, members());
    exchange.wait_for(
        Duration::from_secs(10),
        "every member to hold every other member's routes with attributes unchanged",
        |exchange| {
            ["alpha", "bravo", "charlie"]
                .iter()
                .all(|name| exchange.holds_expected_routes(name))
        },
    );
    for member in exchange.members() {
        let routes = member.routes().expect("routes");
        let own_addresses = [
            IpAddr::V4(member.spec().ipv4()),
            IpAddr::V6(member.spec().ipv6()),
        ];
        for route in &routes {
            // RFC 7947 2.2.2.1: the route server's ASN is not in the path.
            assert!(
                !route.as_path.contains(&64500),
                "{}: RS ASN inserted: {route:?}",
                member.name()
            );
            // Not reflected to the originator.
            assert!(
                !own_addresses.contains(&route.next_hop),
                "{} received its own route back: {route:?}",
                member.name()
            );
            assert!(
                member
                    .spec()
                    .announcements
                    .iter()
                    .all(|a| a.prefix != route.prefix),
                "{} received its own prefix back: {route:?}",
                member.name()
            );
        }
        assert_eq!(routes.len(), 4, "{}: {routes:?}", member.name());
    }
}

fn shared_prefix_members() -> Vec<MemberSpec> {
    let mut members = members();
    for member in &mut members {
        // bravo's path is one AS long, charlie's three: bravo's is the best.
        let prepend = match member.name.as_str() {
            "bravo" => 0,
            "charlie" => 2,
            _ => continue,
        };
        let community = (u16::try_from(member.asn).expect("2-byte ASN"), 200);
        member.announcements.push(announcement(
            "198.18.200.0/24",
            Some(50),
            &[community],
            &[],
            prepend,
        ));
        member.announcements.push(announcement(
            "fd00:1:200::/48",
            Some(60),
            &[community],
            &[],
            prepend,
        ));
    }
    members
}

fn paths_to(exchange: &Exchange, receiver: &str, shared: &IpNet) -> Vec<Route> {
    exchange
        .member(receiver)
        .routes()
        .map(|routes| routes.into_iter().filter(|r| r.prefix == *shared).collect())
        .unwrap_or_default()
}

fn holds_only_path_of(exchange: &Exchange, receiver: &str, origin: &str, shared: &IpNet) -> bool {
    let origin = exchange.member(origin);
    let Some(announcement) = origin
        .spec()
        .announcements
        .iter()
        .find(|a| a.prefix == *shared)
    else {
        return false;
    };
    let paths = paths_to(exchange, receiver, shared);
    paths.len() == 1
        && announcement.matches(&paths[0], origin.spec().asn, origin.next_hop_for(shared))
}

fn best_path_originator_receives_second_best(label: &str, kind: RouteServerKind) {
    let exchange = start(label, kind, shared_prefix_members());
    for shared in [prefix("198.18.200.0/24"), prefix("fd00:1:200::/48")] {
        exchange.wait_for(
            Duration::from_secs(10),
            &format!("{shared}: alpha and charlie get bravo's path, bravo gets charlie's"),
            |exchange| {
                holds_only_path_of(exchange, "alpha", "bravo", &shared)
                    && holds_only_path_of(exchange, "charlie", "bravo", &shared)
                    // RFC 7947 2.3.2.1: no path hiding; the best path's originator still
                    // receives the second best.
                    && holds_only_path_of(exchange, "bravo", "charlie", &shared)
            },
        );
    }
}

fn changes_withdrawals_and_dropped_sessions_propagate(label: &str, kind: RouteServerKind) {
    let mut exchange = start(label, kind, members());
    wait_all_hold_expected(&exchange, "initial routes");

    exchange
        .member_mut("alpha")
        .announce(announcement(
            "198.18.128.0/24",
            Some(99),
            &[(64501, 77)],
            &[(64501, 7, 7)],
            0,
        ))
        .expect("alpha changes MED, communities and prepend");
    let elapsed = wait_all_hold_expected(&exchange, "alpha's changed announcement");
    eprintln!("{label}: BIRD member change reached everyone in {elapsed:?}");

    exchange
        .member_mut("bravo")
        .announce(announcement(
            "fd00:1:12::/48",
            Some(5),
            &[(64502, 66)],
            &[],
            0,
        ))
        .expect("bravo changes MED and communities");
    let elapsed = wait_all_hold_expected(&exchange, "bravo's changed announcement");
    eprintln!("{label}: GoBGP member change reached everyone in {elapsed:?}");

    exchange
        .member_mut("alpha")
        .withdraw(&prefix("fd00:1:11::/48"))
        .expect("alpha withdraws");
    exchange
        .member_mut("bravo")
        .withdraw(&prefix("198.18.130.0/24"))
        .expect("bravo withdraws");
    let elapsed = wait_all_hold_expected(&exchange, "withdrawals by alpha and bravo");
    eprintln!("{label}: withdrawals reached everyone in {elapsed:?}");

    exchange.member_mut("charlie").kill();
    exchange.wait_for(
        PROPAGATION,
        "the route server to see charlie's sessions down",
        |exchange| !exchange.route_server_sees_established("charlie"),
    );
    let elapsed = wait_all_hold_expected(&exchange, "charlie's routes gone after its daemon died");
    eprintln!("{label}: dropped session reached everyone in {elapsed:?}");
    for name in ["alpha", "bravo"] {
        let routes = exchange.member(name).routes().expect("routes");
        assert!(
            routes.iter().all(|r| r.as_path.first() != Some(&64503)),
            "{name} still holds charlie's routes: {routes:?}"
        );
    }
}

fn route_refresh_resends_routes(label: &str, kind: RouteServerKind) {
    let exchange = start(label, kind, members());
    wait_all_hold_expected(&exchange, "initial routes");
    let alpha = exchange.member("alpha");
    let bird = alpha.bird().expect("alpha runs BIRD");
    for protocol in MEMBER_PROTOCOLS {
        let before = bird.import_updates_received(protocol).expect("counter");
        let routes = bird.routes(protocol).expect("routes").len() as u64;
        assert!(routes > 0);
        bird.reload_in(protocol).expect("reload in");
        // RFC 2918: the route server answers ROUTE-REFRESH by sending its Adj-RIB-Out again.
        exchange.wait_for(
            PROPAGATION,
            &format!("{protocol}: routes resent after ROUTE-REFRESH"),
            |_| {
                bird.import_updates_received(protocol)
                    .is_ok_and(|after| after >= before + routes)
            },
        );
    }
    wait_all_hold_expected(&exchange, "routes unchanged after route refresh");
    if kind == RouteServerKind::Ours {
        let metrics = exchange.route_server_metrics().expect("metrics");
        // alpha sent one ROUTE-REFRESH per session and nobody else sent any.
        let refreshes: u64 = metrics
            .lines()
            .filter(|line| {
                line.contains("_messages_received_total{")
                    && line.contains("type=\"route_refresh\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(
            refreshes, 2,
            "expected 2 ROUTE-REFRESH counted in /metrics:\n{metrics}"
        );
        // What an operator's Prometheus will read: the exposition must pass promtool's lint.
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        promtool
            .stdin
            .take()
            .expect("promtool stdin")
            .write_all(metrics.as_bytes())
            .expect("feed promtool");
        let lint = promtool.wait_with_output().expect("promtool output");
        assert!(
            lint.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
    }
}

#[test]
fn bird_rs_sessions_establish_and_routes_pass_unchanged() {
    sessions_establish_and_routes_pass_unchanged("bird-rs-pass", RouteServerKind::Bird);
}

#[test]
fn bird_rs_best_path_originator_receives_second_best() {
    best_path_originator_receives_second_best("bird-rs-best", RouteServerKind::Bird);
}

#[test]
fn bird_rs_changes_withdrawals_and_dropped_sessions_propagate() {
    changes_withdrawals_and_dropped_sessions_propagate("bird-rs-changes", RouteServerKind::Bird);
}

#[test]
fn bird_rs_route_refresh_resends_routes() {
    route_refresh_resends_routes("bird-rs-refresh", RouteServerKind::Bird);
}

#[test]
fn route_server_sessions_establish_and_routes_pass_unchanged() {
    sessions_establish_and_routes_pass_unchanged("ours-pass", RouteServerKind::Ours);
}

#[test]
fn route_server_best_path_originator_receives_second_best() {
    best_path_originator_receives_second_best("ours-best", RouteServerKind::Ours);
}

#[test]
fn route_server_changes_withdrawals_and_dropped_sessions_propagate() {
    changes_withdrawals_and_dropped_sessions_propagate("ours-changes", RouteServerKind::Ours);
}

#[test]
fn route_server_route_refresh_resends_routes() {
    route_refresh_resends_routes("ours-refresh", RouteServerKind::Ours);
}
