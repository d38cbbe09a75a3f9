//! The whole exchange in network namespaces: four `vixp up` nodes on an underlay bridge
//! (198.18.1.0/24), our route server on the route server node's `vixp0`, and BIRD in three
//! member namespaces, its sessions from `vixp router-config bird`, peering with it over the
//! WireGuard LAN (198.18.0.0/24, fd00:198:18::/64) and announcing customer networks. Checks what an operator would: sessions, routes in BIRD and
//! the kernel, customer-to-customer traffic going member to member (never through the route
//! server node), and a member node's stop and restart. Must not send traffic outside the
//! namespaces it creates.

use std::{net::IpAddr, time::Duration};

use vixp_tests::{
    Daemon, FabricExchange, FabricMember, PeerCounters, VixpNode, exchange::ROUTE_SERVER_NAME,
    netns::namespaces, try_wait_until, wait_until,
};

/// Sessions come up within a connect retry or two once the tunnels have their handshakes.
const ESTABLISH: Duration = Duration::from_secs(30);
/// A route server change reaches every member's BIRD and kernel within this.
const PROPAGATION: Duration = Duration::from_secs(10);
/// A vanished member is withdrawn after the route server's hold time (9 s) at the latest.
const WITHDRAWAL: Duration = Duration::from_secs(25);
/// How long the nodes' status may take to show traffic that has been delivered.
const COUNTERS: Duration = Duration::from_secs(10);
/// Seconds of iperf3 traffic (bounded load).
const IPERF_SECONDS: &str = "2";
/// The most the route server node may exchange with alpha or charlie while the iperf3 run
/// moves at least [`MINIMUM_VOLUME`]: BGP keepalives and updates, never the traffic itself.
const ROUTE_SERVER_SHARE: u64 = 64 * 1024;
/// The least an iperf3 run over the fabric must move to prove anything (a broken path moves
/// nothing at all).
const MINIMUM_VOLUME: u64 = 1024 * 1024;

fn members() -> Vec<FabricMember> {
    vec![
        FabricMember::new("alpha", 64501, 11),
        FabricMember::new("bravo", 64502, 12),
        FabricMember::new("charlie", 64503, 13),
    ]
}

/// Every member has both sessions Established, seen by BIRD and by the route server.
fn wait_established(exchange: &FabricExchange) {
    exchange.wait_for(
        ESTABLISH,
        "every session Established, seen from both ends",
        |x| {
            x.sites().iter().all(|site| {
                site.sessions_established() && x.route_server_sees_established(&site.member().name)
            })
        },
    );
}

/// Whether `receiver` holds `origin`'s customer networks in BIRD (from the route server, next
/// hop `origin`'s LAN address) and in its kernel (via that address on vixp0).
fn holds_routes_of(exchange: &FabricExchange, receiver: &str, origin: &str) -> bool {
    let site = exchange.site(receiver);
    let origin = exchange.site(origin).member();
    origin.customer_networks().iter().all(|network| {
        let next_hop = origin.next_hop_for(network);
        site.has_bgp_route(network, next_hop) && site.kernel_routes_via(network, next_hop)
    })
}

/// Whether `receiver` holds no route at all for `origin`'s customer networks, in BIRD or the
/// kernel.
fn lacks_routes_of(exchange: &FabricExchange, receiver: &str, origin: &str) -> bool {
    let site = exchange.site(receiver);
    let origin = exchange.site(origin).member();
    origin.customer_networks().iter().all(|network| {
        site.bgp_routes()
            .is_ok_and(|routes| routes.iter().all(|route| route.prefix != *network))
            && site
                .kernel_route(network)
                .is_ok_and(|route| route.is_empty())
    })
}

/// Pings from `from`'s customer address to `to`'s, IPv4 and IPv6; panics with the output.
fn ping_customers(exchange: &FabricExchange, from: &str, to: &str) {
    let source = exchange.site(from);
    let target = exchange.site(to).member();
    let pairs = [
        (
            IpAddr::V4(source.member().customer_address_ipv4()),
            IpAddr::V4(target.customer_address_ipv4()),
        ),
        (
            IpAddr::V6(source.member().customer_address_ipv6()),
            IpAddr::V6(target.customer_address_ipv6()),
        ),
    ];
    for (from_address, to_address) in pairs {
        let (from_text, to_text) = (from_address.to_string(), to_address.to_string());
        let output = source.netns().run(
            "ping",
            &[
                "-c", "3", "-i", "0.2", "-W", "2", "-I", &from_text, &to_text,
            ],
        );
        match output {
            Ok(text) => assert!(text.contains("3 received"), "{text}"),
            Err(error) => panic!(
                "ping {from_text} -> {to_text} failed: {error}\n{}",
                exchange.report()
            ),
        }
    }
}

/// Bytes sent and received by iperf3 as its JSON report states them.
fn iperf_volume(report: &str) -> (u64, u64) {
    let value: serde_json::Value =
        serde_json::from_str(report).unwrap_or_else(|error| panic!("{error}: {report}"));
    let bytes = |key: &str| {
        value["end"][key]["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no end.{key}.bytes in {report}"))
    };
    (bytes("sum_sent"), bytes("sum_received"))
}

/// A bounded iperf3 TCP run from alpha's customer address to charlie's: the server in charlie
/// serves one test (`-1`) and exits. Returns the bytes charlie received.
fn iperf_alpha_to_charlie(exchange: &FabricExchange) -> u64 {
    let alpha = exchange.site("alpha");
    let charlie = exchange.site("charlie");
    let server_address = charlie.member().customer_address_ipv4().to_string();
    let client_address = alpha.member().customer_address_ipv4().to_string();
    let log = exchange.dir().join("iperf3-server.log");
    let mut server = Daemon::spawn(
        "iperf3 server",
        charlie.netns(),
        "iperf3",
        &[
            "-s".to_owned(),
            "-1".to_owned(),
            "--forceflush".to_owned(),
            "-B".to_owned(),
            server_address.clone(),
        ],
        &log,
    )
    .expect("iperf3 server");
    wait_until(Duration::from_secs(5), "iperf3 server listening", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("Server listening"))
    });
    let report = alpha
        .netns()
        .run(
            "iperf3",
            &[
                "-c",
                &server_address,
                "-B",
                &client_address,
                "-t",
                IPERF_SECONDS,
                "-J",
            ],
        )
        .unwrap_or_else(|error| panic!("iperf3 client: {error}\n{}", exchange.report()));
    wait_until(Duration::from_secs(5), "iperf3 server exit", || {
        !server.is_running()
    });
    let (sent, received) = iperf_volume(&report);
    assert!(
        received >= MINIMUM_VOLUME && sent >= received,
        "iperf3 moved too little: sent {sent}, received {received}"
    );
    received
}

/// The counters that tell where traffic between alpha and charlie went.
#[derive(Debug, Clone, Copy)]
struct Counters {
    alpha_to_charlie: PeerCounters,
    charlie_from_alpha: PeerCounters,
    route_server_alpha: PeerCounters,
    route_server_charlie: PeerCounters,
}

fn counters(exchange: &FabricExchange) -> Counters {
    let alpha = exchange.site("alpha").node();
    let charlie = exchange.site("charlie").node();
    let route_server = exchange.route_server_node();
    let read = |node: &VixpNode, peer: &str| {
        node.peer_counters(peer)
            .unwrap_or_else(|error| panic!("{}: {error}", node.name()))
    };
    Counters {
        alpha_to_charlie: read(alpha, "charlie"),
        charlie_from_alpha: read(charlie, "alpha"),
        route_server_alpha: read(route_server, "alpha"),
        route_server_charlie: read(route_server, "charlie"),
    }
}

#[test]
fn members_exchange_routes_and_traffic_directly_across_the_fabric() {
    let mut exchange = FabricExchange::start("whole-exchange", members()).expect("exchange");
    let names: Vec<String> = members().into_iter().map(|m| m.name).collect();

    // Every session up, from both ends; every member routes the others' customers over vixp0.
    wait_established(&exchange);
    exchange.wait_for(
        PROPAGATION,
        "every member's customer networks in every other member's BIRD and kernel",
        |x| {
            names.iter().all(|receiver| {
                names
                    .iter()
                    .filter(|origin| *origin != receiver)
                    .all(|origin| holds_routes_of(x, receiver, origin))
            })
        },
    );

    // Customer to customer across the fabric, then a bounded iperf3 run.
    ping_customers(&exchange, "alpha", "charlie");
    let before = counters(&exchange);
    let volume = iperf_alpha_to_charlie(&exchange);
    // Snapshots behind `vixp status` are refreshed every 250 ms; a loaded machine may lag.
    let counted = try_wait_until(COUNTERS, || {
        let now = counters(&exchange);
        now.alpha_to_charlie
            .since(&before.alpha_to_charlie)
            .sent_bytes
            >= volume
            && now
                .charlie_from_alpha
                .since(&before.charlie_from_alpha)
                .received_bytes
                >= volume
    });
    let after = counters(&exchange);
    assert!(
        counted,
        "iperf3 moved {volume} bytes, but alpha counted {:?} toward charlie and charlie \
         {:?} from alpha\n{}",
        after.alpha_to_charlie.since(&before.alpha_to_charlie),
        after.charlie_from_alpha.since(&before.charlie_from_alpha),
        exchange.report()
    );
    eprintln!(
        "iperf3 alpha -> charlie: {volume} bytes in {IPERF_SECONDS} s; alpha sent charlie {:?}; \
         rs1 with alpha {:?}, with charlie {:?}",
        after.alpha_to_charlie.since(&before.alpha_to_charlie),
        after.route_server_alpha.since(&before.route_server_alpha),
        after
            .route_server_charlie
            .since(&before.route_server_charlie),
    );
    // The route server node carried none of it: only BGP with alpha and charlie.
    for (peer, grown) in [
        (
            "alpha",
            after.route_server_alpha.since(&before.route_server_alpha),
        ),
        (
            "charlie",
            after
                .route_server_charlie
                .since(&before.route_server_charlie),
        ),
    ] {
        assert!(
            grown.sent_bytes < ROUTE_SERVER_SHARE && grown.received_bytes < ROUTE_SERVER_SHARE,
            "{ROUTE_SERVER_NAME} exchanged {grown:?} with {peer} during {volume} bytes of iperf3"
        );
    }

    // Charlie's node stops: its TAP device goes, the route server's sessions with it time out,
    // and alpha and bravo lose charlie's customer networks in BIRD and in the kernel.
    let stopped = std::time::Instant::now();
    exchange.stop_node("charlie").expect("stop charlie's node");
    let gone = exchange
        .site("charlie")
        .netns()
        .run("ip", &["link", "show", "vixp0"]);
    assert!(gone.is_err(), "vixp0 still exists: {gone:?}");
    exchange.wait_for(WITHDRAWAL, "charlie withdrawn from alpha and bravo", |x| {
        ["alpha", "bravo"]
            .iter()
            .all(|receiver| lacks_routes_of(x, receiver, "charlie"))
    });
    eprintln!(
        "charlie withdrawn everywhere {:.1} s after its node stopped",
        stopped.elapsed().as_secs_f64()
    );
    assert!(holds_routes_of(&exchange, "alpha", "bravo"));
    assert!(holds_routes_of(&exchange, "bravo", "alpha"));

    // Charlie's node restarts: sessions, routes and traffic come back.
    exchange
        .restart_node("charlie")
        .expect("restart charlie's node");
    wait_established(&exchange);
    exchange.wait_for(PROPAGATION, "charlie's routes back everywhere", |x| {
        ["alpha", "bravo"].iter().all(|other| {
            holds_routes_of(x, other, "charlie") && holds_routes_of(x, "charlie", other)
        })
    });
    // Charlie sends first: its new node starts the handshake with alpha's.
    ping_customers(&exchange, "charlie", "alpha");
    ping_customers(&exchange, "alpha", "charlie");

    // Everything goes with the exchange: processes by PID, then the namespaces.
    let created = exchange.namespace_names();
    drop(exchange);
    let left = namespaces().expect("ip netns list");
    for name in created {
        assert!(!left.contains(&name), "namespace {name} left behind");
    }
}
