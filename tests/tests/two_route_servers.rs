//! Two route servers: a fabric file listing `rs1` and `rs2`, each our `route-server` (run with
//! `--route-server NAME`) in its own namespace on a bridged LAN, and three BIRD members
//! configured only from `vixp router-config bird`, which peer with both. Checks the redundancy
//! an operator runs two route servers for: every member holds every route through both; when
//! one route server dies, members keep every route through the other; when it comes back, its
//! sessions and routes come back. Must not send traffic outside the namespaces it creates.

use std::time::{Duration, Instant};

use vixp_tests::snippet_exchange::{RouterKind, SnippetExchange, SnippetMember};

/// Routes reach every member within a few keepalives once the sessions are up.
const PROPAGATION: Duration = Duration::from_secs(20);
/// A killed route server's sessions drop at once (its kernel closes the connections) or after
/// the hold time (9 s) at the latest.
const SESSION_LOSS: Duration = Duration::from_secs(20);

fn members() -> Vec<SnippetMember> {
    vec![
        SnippetMember::new("alpha", 64501, 11, RouterKind::Bird),
        SnippetMember::new("bravo", 64502, 12, RouterKind::Bird),
        SnippetMember::new("charlie", 64503, 13, RouterKind::Bird),
    ]
}

/// Whether every member holds every other member's prefixes through `route_server`.
fn every_route_via(exchange: &SnippetExchange, route_server: &str) -> bool {
    let route_server = exchange.route_server(route_server);
    exchange.members().iter().all(|receiver| {
        exchange
            .members()
            .iter()
            .filter(|origin| origin.spec().name != receiver.spec().name)
            .all(|origin| receiver.holds_routes_of_via(origin.spec(), route_server))
    })
}

#[test]
fn members_keep_every_route_through_the_other_route_server_while_one_is_down() {
    let start = Instant::now();
    let mut exchange = SnippetExchange::start("two-rs", 2, members()).expect("start exchange");
    // Every member's snippet peers with both route servers, in both families.
    for member in exchange.members() {
        let snippet = std::fs::read_to_string(
            exchange
                .dir()
                .join(format!("{}-snippet.conf", member.spec().name)),
        )
        .expect("snippet");
        for protocol in ["vixp_rs1_v4", "vixp_rs1_v6", "vixp_rs2_v4", "vixp_rs2_v6"] {
            assert!(
                snippet.contains(&format!("protocol bgp {protocol} {{")),
                "{snippet}"
            );
        }
    }
    exchange.wait_established();
    exchange.wait_for(
        PROPAGATION,
        "every member's prefixes at every other member through rs1 and rs2",
        |x| every_route_via(x, "rs1") && every_route_via(x, "rs2"),
    );

    eprintln!(
        "every route through both route servers after {:?}",
        start.elapsed()
    );
    exchange.kill_route_server("rs1");
    let killed = Instant::now();
    exchange.wait_for(
        SESSION_LOSS,
        "every member's sessions with rs1 down and its routes through rs1 gone",
        |x| {
            let rs1 = x.route_server("rs1");
            x.members()
                .iter()
                .all(|member| !member.established_with(rs1) && !member.holds_anything_via(rs1))
        },
    );
    eprintln!("rs1 killed; its sessions down after {:?}", killed.elapsed());
    // Nothing was lost: every route is still there, through rs2, whose sessions never moved.
    let rs2 = exchange.route_server("rs2");
    assert!(
        every_route_via(&exchange, "rs2"),
        "routes lost with rs1 down\n{}",
        exchange.report()
    );
    assert!(
        exchange
            .members()
            .iter()
            .all(|member| member.established_with(rs2)),
        "rs2 sessions moved\n{}",
        exchange.report()
    );

    exchange.restart_route_server("rs1").expect("restart rs1");
    let restarted = Instant::now();
    exchange.wait_established();
    exchange.wait_for(
        PROPAGATION,
        "every route through rs1 again, and still through rs2",
        |x| every_route_via(x, "rs1") && every_route_via(x, "rs2"),
    );
    eprintln!(
        "rs1 restarted; sessions and routes back after {:?}",
        restarted.elapsed()
    );
}
