//! The route server's import policy against real BIRD members: a member announces one good
//! route and one of each kind of violating route (transit-free ASN behind it, reserved ASN,
//! bogon prefix, too long, another member's next hop). The other members' BIRDs receive only
//! the good one, and the route server shows each refused route with its reason. Must not send
//! traffic outside the namespaces it creates.

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
