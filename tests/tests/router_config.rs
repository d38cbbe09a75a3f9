//! Member router snippets in real routers: `vixp router-config` output loaded into BIRD, FRR
//! (Debian `frr`) and OpenBGPD (Debian `openbgpd`) in network namespaces, each peering with our
//! route server over a bridged LAN (198.18.0.0/24, fd00:198:18::/64). Checks what a joining
//! member would: its sessions establish, it receives the other members' routes unchanged, and
//! its own prefixes (and only those) reach the others. Must not send traffic outside the
//! namespaces it creates.

use std::time::Duration;

use vixp_tests::snippet_exchange::{RouterKind, SnippetExchange, SnippetMember};

/// Routes reach every member within a few keepalives once the sessions are up.
const PROPAGATION: Duration = Duration::from_secs(20);

fn members() -> Vec<SnippetMember> {
    vec![
        SnippetMember::new("alpha", 64501, 11, RouterKind::Bird),
        SnippetMember::new("bravo", 64502, 12, RouterKind::Frr),
        SnippetMember::new("charlie", 64503, 13, RouterKind::Openbgpd),
    ]
}

#[test]
fn frr_and_openbgpd_snippets_establish_sessions_and_exchange_routes_with_a_bird_member() {
    let exchange = SnippetExchange::start("router-config", 1, members()).expect("start exchange");
    exchange.wait_established();
    let rs1 = exchange.route_server("rs1");
    exchange.wait_for(
        PROPAGATION,
        "every member's prefixes at every other member, unchanged, through rs1",
        |x| x.every_route_via_every_running_route_server(),
    );
    // Exactly the other members' prefixes: the snippets' export filters let nothing else out
    // (FRR and OpenBGPD would otherwise send what they learnt from rs1 back to it, and the
    // route server would refuse it, but a member never even tries).
    for receiver in exchange.members() {
        let routes = receiver.routes().expect("routes");
        let expected: usize = exchange
            .members()
            .iter()
            .filter(|origin| origin.spec().name != receiver.spec().name)
            .map(|origin| origin.spec().prefixes.len())
            .sum();
        assert_eq!(
            routes.len(),
            expected,
            "{} holds {routes:#?}\n{}",
            receiver.spec().name,
            exchange.report()
        );
        for route in &routes {
            let origin = exchange
                .members()
                .iter()
                .find(|origin| origin.spec().prefixes.contains(&route.prefix))
                .unwrap_or_else(|| panic!("{route:?} is nobody's prefix"));
            assert!(
                vixp_tests::snippet_exchange::MemberSite::route_via(route, rs1, origin.spec()),
                "{route:?} at {} is not {}'s route through rs1",
                receiver.spec().name,
                origin.spec().name
            );
        }
    }
}
