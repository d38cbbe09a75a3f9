//! The route server's import policy against real BIRD members: a member announces one good
//! route and one of each kind of violating route (transit-free ASN behind it, reserved ASN,
//! bogon prefix, too long, another member's next hop). The other members' BIRDs receive only
//! the good one, and the route server shows each refused route with its reason. The same for
//! IRR data, BLACKHOLE and max-prefix (a member over its limit is cut off with Cease 6/1 before
//! any route over the limit reaches the others; with `warn` it keeps its session and routes).
//! Must not send traffic outside the namespaces it creates.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use vixp_tests::exchange::FabricExtras;
use vixp_tests::{Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind, binary_path};

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

/// Alpha's routes and the reason label the route server must give for each refused one.
const ALPHA: [(&str, Option<&str>); 6] = [
    ("198.18.140.0/24", None),
    ("198.18.141.0/24", Some("transit_free_asn")),
    ("198.18.142.0/24", Some("bogon_asn")),
    ("10.20.0.0/24", Some("bogon_prefix")),
    ("198.18.143.0/25", Some("prefix_too_long")),
    ("198.18.144.0/24", Some("next_hop_not_peer")),
];

fn members() -> Vec<MemberSpec> {
    let alpha: Vec<Announcement> = ALPHA
        .iter()
        .map(|(text, reason)| {
            let mut announcement = Announcement::new(prefix(text));
            match *reason {
                // AS174 behind the member: a transit network leaking through a member.
                Some("transit_free_asn") => announcement.foreign_path = vec![174],
                // AS65535 is reserved (RFC 7300).
                Some("bogon_asn") => announcement.foreign_path = vec![65535],
                // Bravo's LAN address as next hop: alpha would divert bravo-bound traffic.
                Some("next_hop_not_peer") => {
                    announcement.next_hop = Some("198.18.0.12".parse().expect("address"));
                }
                _ => {}
            }
            announcement
        })
        .collect();
    let member = |name: &str, asn: u32, host: u8, announcements: Vec<Announcement>| MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements,
    };
    vec![
        member("alpha", 64501, 11, alpha),
        member(
            "bravo",
            64502,
            12,
            vec![Announcement::new(prefix("198.18.150.0/24"))],
        ),
        member(
            "charlie",
            64503,
            13,
            vec![Announcement::new(prefix("198.18.160.0/24"))],
        ),
    ]
}

#[test]
fn violating_routes_from_a_bird_member_never_reach_the_others_and_say_why() {
    let exchange = Exchange::start("policy", RouteServerKind::Ours, members())
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();

    // Every refused route is listed with its reason.
    let deadline = Instant::now() + Duration::from_secs(15);
    let filtered = loop {
        let body = exchange
            .route_server_get("/api/v1/neighbors/alpha.ipv4/routes/filtered")
            .expect("filtered routes");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let routes = value["routes"].as_array().cloned().unwrap_or_default();
        if routes.len() >= 5 || Instant::now() > deadline {
            break routes;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (text, reason) in ALPHA.iter().filter(|(_, reason)| reason.is_some()) {
        let route = filtered
            .iter()
            .find(|route| route["network"] == *text)
            .unwrap_or_else(|| panic!("{text} is not listed as filtered: {filtered:#?}"));
        assert_eq!(
            route["filtered"]["label"],
            reason.unwrap_or_default(),
            "{route:#}"
        );
    }
    assert_eq!(filtered.len(), 5, "{filtered:#?}");

    // Bravo and charlie hold alpha's good route and none of the others.
    exchange.wait_for(
        Duration::from_secs(10),
        "bravo and charlie to hold alpha's good route",
        |exchange| {
            ["bravo", "charlie"].iter().all(|name| {
                exchange
                    .member(name)
                    .routes()
                    .is_ok_and(|routes| routes.iter().any(|r| r.prefix == prefix(ALPHA[0].0)))
            })
        },
    );
    for name in ["bravo", "charlie"] {
        let routes = exchange.member(name).routes().expect("routes");
        for (text, reason) in ALPHA.iter().filter(|(_, reason)| reason.is_some()) {
            assert!(
                routes.iter().all(|route| route.prefix != prefix(text)),
                "{name} received {text}, which should be refused as {reason:?}: {routes:?}"
            );
        }
    }
    // Gauges are refreshed every second.
    let series =
        "route_server_routes_filtered{member=\"alpha\",family=\"ipv4\",reason=\"bogon_prefix\"} 1";
    exchange.wait_for(
        Duration::from_secs(5),
        "the filtered-by-reason gauge",
        |exchange| {
            exchange
                .route_server_metrics()
                .is_ok_and(|metrics| metrics.contains(series))
        },
    );
}

/// The routes our route server lists as filtered for neighbor `id`, once there are at least
/// `count` of them (or after 15 s, whatever there are).
fn filtered_routes(exchange: &Exchange, id: &str, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = exchange
            .route_server_get(&format!("/api/v1/neighbors/{id}/routes/filtered"))
            .expect("filtered routes");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let routes = value["routes"].as_array().cloned().unwrap_or_default();
        if routes.len() >= count || Instant::now() > deadline {
            return routes;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `route-server show routes --neighbor NEIGHBOR --filtered`, run in the route server's
/// namespace against its API.
fn cli_filtered(exchange: &Exchange, neighbor: &str) -> String {
    let program = binary_path("route-server");
    exchange
        .route_server_host()
        .netns()
        .run(
            &program.to_string_lossy(),
            &[
                "show",
                "routes",
                "--neighbor",
                neighbor,
                "--filtered",
                "--api",
                vixp_tests::exchange::ROUTE_SERVER_HTTP,
            ],
        )
        .expect("route-server show routes --filtered")
}

/// Delta's IRR data: 198.18.170.0/23 and its /24s, origins AS64504 and AS64510.
const DELTA_IRR: &str = "    irr:\n      prefixes: [\"198.18.170.0/23 le 24\"]\n      \
                         origins: [64504, 64510]\n";

#[test]
fn routes_outside_a_bird_members_irr_data_never_reach_the_others_and_say_why() {
    let good = prefix("198.18.170.0/24");
    let customer = prefix("198.18.171.0/24");
    let unregistered = prefix("198.18.175.0/24");
    let foreign_origin = prefix("198.18.170.0/23");
    let mut from_customer = Announcement::new(customer);
    from_customer.foreign_path = vec![64510];
    let mut from_stranger = Announcement::new(foreign_origin);
    from_stranger.foreign_path = vec![64999];
    let member = |name: &str, asn: u32, host: u8, announcements: Vec<Announcement>| MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements,
    };
    let members = vec![
        member(
            "delta",
            64504,
            14,
            vec![
                Announcement::new(good),
                from_customer,
                Announcement::new(unregistered),
                from_stranger,
            ],
        ),
        member(
            "echo",
            64505,
            15,
            vec![Announcement::new(prefix("198.18.180.0/24"))],
        ),
        member(
            "foxtrot",
            64506,
            16,
            vec![Announcement::new(prefix("198.18.190.0/24"))],
        ),
    ];
    let extras = FabricExtras::default().member("delta", DELTA_IRR);
    let exchange = Exchange::start_with("policy-irr", RouteServerKind::Ours, members, &extras)
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();

    // The API lists both refused routes with their reason.
    let filtered = filtered_routes(&exchange, "delta.ipv4", 2);
    let reason_of = |network: &IpNet| {
        filtered
            .iter()
            .find(|route| route["network"] == network.to_string())
            .unwrap_or_else(|| panic!("{network} is not listed as filtered: {filtered:#?}"))
            ["filtered"]
            .clone()
    };
    assert_eq!(reason_of(&unregistered)["label"], "not_in_irr_prefixes");
    assert_eq!(reason_of(&foreign_origin)["label"], "origin_not_in_irr");
    assert_eq!(filtered.len(), 2, "{filtered:#?}");

    // So does the CLI, in words.
    let shown = cli_filtered(&exchange, "delta.ipv4");
    let line = |network: &IpNet| {
        shown
            .lines()
            .find(|line| line.contains(&network.to_string()))
            .unwrap_or_else(|| panic!("{network} missing from:\n{shown}"))
            .to_owned()
    };
    assert!(line(&unregistered).contains("FILTERED: "), "{shown}");
    assert!(line(&unregistered).contains("IRR"), "{shown}");
    assert!(line(&foreign_origin).contains("AS64999"), "{shown}");
    assert!(!shown.contains(&good.to_string()), "{shown}");

    // Echo and foxtrot hold delta's registered routes (its own and its customer's) and neither
    // refused one.
    exchange.wait_for(
        Duration::from_secs(10),
        "echo and foxtrot to hold delta's registered routes",
        |exchange| {
            ["echo", "foxtrot"].iter().all(|name| {
                exchange.member(name).routes().is_ok_and(|routes| {
                    [good, customer]
                        .iter()
                        .all(|wanted| routes.iter().any(|route| route.prefix == *wanted))
                })
            })
        },
    );
    for name in ["echo", "foxtrot"] {
        let routes = exchange.member(name).routes().expect("routes");
        for refused in [unregistered, foreign_origin] {
            assert!(
                routes.iter().all(|route| route.prefix != refused),
                "{name} received {refused}: {routes:?}"
            );
        }
    }

    // Counted by reason.
    for reason in ["not_in_irr_prefixes", "origin_not_in_irr"] {
        let series = format!(
            "route_server_routes_filtered{{member=\"delta\",family=\"ipv4\",reason=\"{reason}\"}} 1"
        );
        exchange.wait_for(
            Duration::from_secs(5),
            "the filtered-by-reason gauge",
            |exchange| {
                exchange
                    .route_server_metrics()
                    .is_ok_and(|metrics| metrics.contains(&series))
            },
        );
    }
}

/// BLACKHOLE (RFC 7999), 65535:666.
const BLACKHOLE: (u16, u16) = (65535, 666);
/// NO_EXPORT (RFC 1997), 65535:65281.
const NO_EXPORT: (u16, u16) = (65535, 65281);

#[test]
fn blackhole_routes_reach_the_others_only_from_members_that_opted_in() {
    let golf_block = prefix("198.18.200.0/24");
    let golf_host = prefix("198.18.200.7/32");
    let golf_host6 = prefix("fd00:200::7/128");
    let hotel_host = prefix("198.18.210.9/32");
    let blackhole = |network: IpNet| Announcement {
        communities: vec![BLACKHOLE],
        ..Announcement::new(network)
    };
    let member = |name: &str, asn: u32, host: u8, announcements: Vec<Announcement>| MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements,
    };
    let members = vec![
        member(
            "golf",
            64507,
            17,
            vec![
                Announcement::new(golf_block),
                blackhole(golf_host),
                blackhole(golf_host6),
            ],
        ),
        member(
            "hotel",
            64508,
            18,
            vec![
                Announcement::new(prefix("198.18.210.0/24")),
                blackhole(hotel_host),
            ],
        ),
        member(
            "india",
            64509,
            19,
            vec![Announcement::new(prefix("198.18.220.0/24"))],
        ),
    ];
    let extras = FabricExtras::default()
        .policy("  blackhole: {next_hop_ipv4: 198.18.0.66, next_hop_ipv6: \"fd00:198:18::66\"}")
        .member(
            "golf",
            "    blackhole: true\n    irr:\n      prefixes: [\"198.18.200.0/22 le 24\", \
             \"fd00:200::/32 le 48\"]\n",
        )
        .member("hotel", "    irr:\n      prefixes: [\"198.18.210.0/24\"]\n");
    let exchange =
        Exchange::start_with("policy-blackhole", RouteServerKind::Ours, members, &extras)
            .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();

    // India's BIRD holds golf's blackhole routes with NO_EXPORT added and the exchange's
    // blackhole next hop, and golf's ordinary route unchanged.
    exchange.wait_for(
        Duration::from_secs(15),
        "india to hold golf's blackhole routes",
        |exchange| {
            exchange.member("india").routes().is_ok_and(|routes| {
                [golf_host, golf_host6, golf_block]
                    .iter()
                    .all(|wanted| routes.iter().any(|route| route.prefix == *wanted))
            })
        },
    );
    let routes = exchange.member("india").routes().expect("routes");
    let find = |network: IpNet| {
        routes
            .iter()
            .find(|route| route.prefix == network)
            .unwrap_or_else(|| panic!("india lacks {network}: {routes:?}"))
    };
    for (network, next_hop) in [(golf_host, "198.18.0.66"), (golf_host6, "fd00:198:18::66")] {
        let route = find(network);
        assert!(route.communities.contains(&BLACKHOLE), "{route:?}");
        assert!(route.communities.contains(&NO_EXPORT), "{route:?}");
        assert_eq!(route.next_hop.to_string(), next_hop, "{route:?}");
        assert_eq!(route.as_path, [64507], "{route:?}");
    }
    let ordinary = find(golf_block);
    assert_eq!(ordinary.next_hop.to_string(), "198.18.0.17", "{ordinary:?}");
    assert!(ordinary.communities.is_empty(), "{ordinary:?}");

    // Hotel did not opt in: its blackhole route reaches no one and says why.
    let filtered = filtered_routes(&exchange, "hotel.ipv4", 1);
    let refused = filtered
        .iter()
        .find(|route| route["network"] == hotel_host.to_string())
        .unwrap_or_else(|| panic!("{hotel_host} is not listed as filtered: {filtered:#?}"));
    assert_eq!(
        refused["filtered"]["label"], "blackhole_not_allowed",
        "{refused:#}"
    );
    let shown = cli_filtered(&exchange, "hotel");
    assert!(
        shown
            .lines()
            .any(|line| line.contains(&hotel_host.to_string()) && line.contains("not opted in")),
        "{shown}"
    );
    for name in ["golf", "india"] {
        let routes = exchange.member(name).routes().expect("routes");
        assert!(
            routes.iter().all(|route| route.prefix != hotel_host),
            "{name} received hotel's blackhole route: {routes:?}"
        );
    }
    let series = "route_server_routes_filtered{member=\"hotel\",family=\"ipv4\",reason=\"blackhole_not_allowed\"} 1";
    exchange.wait_for(
        Duration::from_secs(5),
        "the blackhole_not_allowed gauge",
        |exchange| {
            exchange
                .route_server_metrics()
                .is_ok_and(|metrics| metrics.contains(series))
        },
    );
}

/// The value of the `/metrics` sample `series` (`name{labels}`), if our route server exports
/// it.
fn metric(exchange: &Exchange, series: &str) -> Option<f64> {
    let metrics = exchange.route_server_metrics().ok()?;
    metrics.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until the `/metrics` sample `series` is `value`.
fn wait_for_metric(exchange: &Exchange, series: &str, value: f64) {
    exchange.wait_for(
        Duration::from_secs(5),
        &format!("{series} to be {value} (gauges are refreshed every second)"),
        |exchange| metric(exchange, series).is_some_and(|found| (found - value).abs() < 1e-9),
    );
}

/// Neighbor `id` (`member.family`) as our route server's API lists it.
fn neighbor(exchange: &Exchange, id: &str) -> serde_json::Value {
    let body = exchange
        .route_server_get("/api/v1/neighbors")
        .expect("neighbors");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    value["neighbors"]
        .as_array()
        .and_then(|neighbors| neighbors.iter().find(|n| n["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no neighbor {id} in {body}"))
}

/// How many of `receiver`'s IPv4 routes come from the member with LAN address `next_hop`.
fn routes_via(exchange: &Exchange, receiver: &str, next_hop: &str) -> Option<usize> {
    let routes = exchange.member(receiver).routes().ok()?;
    Some(
        routes
            .iter()
            .filter(|route| route.next_hop.to_string() == next_hop)
            .count(),
    )
}

/// The "Import updates: received" counter of `receiver`'s IPv4 session with the route server:
/// every route announcement its BIRD was ever sent, so a route that was sent and withdrawn at
/// once still counts.
fn updates_received(exchange: &Exchange, receiver: &str) -> u64 {
    exchange
        .member(receiver)
        .bird()
        .expect("a BIRD member")
        .import_updates_received("rs4")
        .expect("birdc show protocols all rs4")
}

/// Route server log lines that contain every one of `words`.
fn log_lines(exchange: &Exchange, words: &[&str]) -> usize {
    let log = std::fs::read_to_string(exchange.path("route-server.log")).unwrap_or_default();
    log.lines()
        .filter(|line| words.iter().all(|word| line.contains(word)))
        .count()
}

/// A BIRD member announcing `198.18.THIRD.0/24` for each of `thirds`.
fn numbered_member(
    name: &str,
    asn: u32,
    host: u8,
    thirds: std::ops::RangeInclusive<u8>,
) -> MemberSpec {
    MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements: thirds
            .map(|third| Announcement::new(prefix(&format!("198.18.{third}.0/24"))))
            .collect(),
    }
}

#[test]
fn a_bird_member_over_its_max_prefix_is_cut_off_and_the_others_never_get_the_excess() {
    // Juliet may announce 10 IPv4 prefixes and starts with 9 (90%: the warning threshold).
    let members = vec![
        numbered_member("juliet", 64511, 21, 230..=238),
        numbered_member("kilo", 64512, 22, 250..=250),
        numbered_member("lima", 64513, 23, 251..=251),
    ];
    let extras = FabricExtras::default()
        .policy("  max_prefix_action: shutdown")
        .member("juliet", "    max_prefix: {ipv4: 10}");
    let mut exchange =
        Exchange::start_with("policy-max-prefix", RouteServerKind::Ours, members, &extras)
            .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();
    let juliet = "198.18.0.21";
    let holds = |count: usize| {
        move |exchange: &Exchange| {
            ["kilo", "lima"]
                .iter()
                .all(|name| routes_via(exchange, name, juliet) == Some(count))
        }
    };
    exchange.wait_for(
        Duration::from_secs(15),
        "kilo and lima to hold juliet's 9 routes",
        holds(9),
    );

    // At 90% the warning gauge is up and says so once in the log; nobody else is flagged.
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_usage_ratio{member=\"juliet\",family=\"ipv4\"}",
        0.9,
    );
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_warning{member=\"juliet\",family=\"ipv4\"}",
        1.0,
    );
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_warning{member=\"kilo\",family=\"ipv4\"}",
        0.0,
    );
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_exceeded_total{member=\"juliet\",family=\"ipv4\"}",
        0.0,
    );
    // Juliet's 9 and lima's 1.
    for name in ["kilo", "lima"] {
        assert_eq!(updates_received(&exchange, name), 10, "{name}");
    }

    // The tenth prefix is still within the limit and reaches everyone.
    exchange
        .member_mut("juliet")
        .announce(Announcement::new(prefix("198.18.239.0/24")))
        .expect("announce the tenth prefix");
    exchange.wait_for(
        Duration::from_secs(10),
        "kilo and lima to hold juliet's 10 routes",
        holds(10),
    );
    assert!(exchange.member("juliet").sessions_established());

    // The eleventh goes over: juliet's IPv4 session is closed with Cease / Maximum Number of
    // Prefixes Reached (RFC 4486 subcode 1) and its routes are withdrawn from everyone.
    let excess = prefix("198.18.240.0/24");
    exchange
        .member_mut("juliet")
        .announce(Announcement::new(excess))
        .expect("announce the eleventh prefix");
    exchange.wait_for(
        Duration::from_secs(10),
        "juliet's BIRD to show the route server's Cease",
        |exchange| {
            exchange
                .member("juliet")
                .bird()
                .and_then(|bird| bird.birdc(&["show", "protocols", "all", "rs4"]).ok())
                .is_some_and(|shown| shown.contains("Received: Maximum number of prefixes reached"))
        },
    );
    exchange.wait_for(
        Duration::from_secs(10),
        "kilo and lima to lose juliet's routes",
        holds(0),
    );
    let bird = exchange.member("juliet").bird().expect("juliet runs BIRD");
    assert!(!bird.is_established("rs4"));
    // The limit is per family: juliet's IPv6 session stays.
    assert!(bird.is_established("rs6"));
    let state = neighbor(&exchange, "juliet.ipv4");
    assert_ne!(state["state"], "Established", "{state:#}");
    let last_error = state["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("Cease") && last_error.contains("Maximum Number of Prefixes Reached"),
        "{state:#}"
    );
    assert_eq!(neighbor(&exchange, "juliet.ipv6")["state"], "Established");

    // Kilo's and lima's BIRDs were never sent the eleventh route, not even for a moment: their
    // import counters grew by the tenth route only.
    for name in ["kilo", "lima"] {
        assert_eq!(updates_received(&exchange, name), 11, "{name}");
        let routes = exchange.member(name).routes().expect("routes");
        assert!(
            routes.iter().all(|route| route.prefix != excess),
            "{routes:?}"
        );
    }
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_exceeded_total{member=\"juliet\",family=\"ipv4\"}",
        1.0,
    );
    assert_eq!(
        log_lines(
            &exchange,
            &["juliet", "warning threshold of its max-prefix limit"]
        ),
        1,
        "one warning line\n{}",
        exchange.report()
    );
}

#[test]
fn a_bird_member_over_its_max_prefix_with_warn_keeps_its_session_and_every_route() {
    // Mike may announce 4 IPv4 prefixes; with `warn` going over is logged and counted only.
    let members = vec![
        numbered_member("mike", 64514, 24, 230..=233),
        numbered_member("november", 64515, 25, 250..=250),
        numbered_member("oscar", 64516, 26, 251..=251),
    ];
    let extras = FabricExtras::default()
        .policy("  max_prefix_action: warn")
        .member("mike", "    max_prefix: {ipv4: 4}");
    let mut exchange = Exchange::start_with(
        "policy-max-prefix-warn",
        RouteServerKind::Ours,
        members,
        &extras,
    )
    .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_warning{member=\"mike\",family=\"ipv4\"}",
        1.0,
    );
    for third in 234..=235 {
        exchange
            .member_mut("mike")
            .announce(Announcement::new(prefix(&format!("198.18.{third}.0/24"))))
            .expect("announce beyond the limit");
    }
    // Every route, those over the limit too, reaches the others.
    exchange.wait_for(
        Duration::from_secs(15),
        "november and oscar to hold all 6 of mike's routes",
        |exchange| {
            ["november", "oscar"]
                .iter()
                .all(|name| routes_via(exchange, name, "198.18.0.24") == Some(6))
        },
    );
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_usage_ratio{member=\"mike\",family=\"ipv4\"}",
        1.5,
    );
    wait_for_metric(
        &exchange,
        "route_server_max_prefix_exceeded_total{member=\"mike\",family=\"ipv4\"}",
        1.0,
    );
    let state = neighbor(&exchange, "mike.ipv4");
    assert_eq!(state["state"], "Established", "{state:#}");
    assert_eq!(state["routes_accepted"], 6, "{state:#}");
    assert!(exchange.member("mike").sessions_established());
    assert_eq!(
        log_lines(&exchange, &["mike", "action warn: session kept"]),
        1,
        "{}",
        exchange.report()
    );
}
