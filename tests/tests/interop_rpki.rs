//! RPKI origin validation against real BIRD members: with VRPs from a JSON file (rpki-client
//! `-j` format; the RTR path is proven in tests/tests/rpki.rs), a member announces routes that
//! are RPKI-valid, -invalid and not found, over IPv4 and IPv6. The other members' BIRDs never
//! receive the invalid ones, and the route server shows each with reason `rpki_invalid`. Must
//! not send traffic outside the namespaces it creates.

use std::time::Duration;

use ipnet::IpNet;
use vixp_tests::exchange::{FabricExtras, ROUTE_SERVER_ASN};
use vixp_tests::{
    Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind, TempDir, binary_path,
};

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

/// Golf's (AS64507) routes: (prefix, origin behind golf, RPKI state under [`VRPS`]).
const GOLF: [(&str, Option<u32>, &str); 6] = [
    ("198.18.200.0/24", None, "valid"),
    ("198.18.201.0/24", None, "invalid"),
    ("198.18.202.0/24", None, "not_found"),
    // Origin 64510, a customer of golf's: valid through its own VRP.
    ("198.18.203.0/24", Some(64510), "valid"),
    // Too specific for the /47 VRP's maxLength.
    ("fd00:200::/48", None, "invalid"),
    ("fd00:210::/48", None, "not_found"),
];

/// The VRPs, as rpki-client `-j` writes them.
const VRPS: &str = r#"{
  "metadata": {"buildmachine": "test", "buildtime": "2026-11-21T00:00:00Z", "roas": 4},
  "roas": [
    {"asn": 64507, "prefix": "198.18.200.0/24", "maxLength": 24, "ta": "test", "expires": 0},
    {"asn": 64599, "prefix": "198.18.201.0/24", "maxLength": 24, "ta": "test", "expires": 0},
    {"asn": 64510, "prefix": "198.18.203.0/24", "maxLength": 24, "ta": "test", "expires": 0},
    {"asn": 64507, "prefix": "fd00:200::/47", "maxLength": 47, "ta": "test", "expires": 0}
  ]
}"#;

fn members() -> Vec<MemberSpec> {
    let golf = GOLF
        .iter()
        .map(|(text, origin, _)| {
            let mut announcement = Announcement::new(prefix(text));
            announcement.foreign_path = origin.iter().copied().collect();
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
        member("golf", 64507, 17, golf),
        member(
            "hotel",
            64508,
            18,
            vec![Announcement::new(prefix("198.18.210.0/24"))],
        ),
        member(
            "india",
            64509,
            19,
            vec![Announcement::new(prefix("198.18.220.0/24"))],
        ),
    ]
}

/// The routes the route server lists as filtered for neighbor `id`, once there are `count`.
fn filtered_routes(exchange: &Exchange, id: &str, count: usize) -> Vec<serde_json::Value> {
    let mut routes = Vec::new();
    exchange.wait_for(
        Duration::from_secs(15),
        "the refused routes to be listed",
        |exchange| {
            let Ok(body) =
                exchange.route_server_get(&format!("/api/v1/neighbors/{id}/routes/filtered"))
            else {
                return false;
            };
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            routes = value["routes"].as_array().cloned().unwrap_or_default();
            routes.len() >= count
        },
    );
    routes
}

#[test]
fn rpki_invalid_routes_from_a_bird_member_never_reach_the_others_and_say_why() {
    let vrps = TempDir::new("rpki-vrps").expect("dir");
    let file = vrps.write("vrps.json", VRPS).expect("VRP file");
    let extras =
        FabricExtras::default().policy(&format!("  rpki: {{vrp_file: \"{}\"}}\n", file.display()));
    let exchange = Exchange::start_with("interop-rpki", RouteServerKind::Ours, members(), &extras)
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));
    exchange.wait_established();

    let invalid: Vec<&str> = GOLF
        .iter()
        .filter(|(_, _, state)| *state == "invalid")
        .map(|(text, _, _)| *text)
        .collect();
    let passing: Vec<IpNet> = GOLF
        .iter()
        .filter(|(_, _, state)| *state != "invalid")
        .map(|(text, _, _)| prefix(text))
        .collect();

    // Each refused route is listed under its session with its reason.
    for (id, network) in [("golf.ipv4", invalid[0]), ("golf.ipv6", invalid[1])] {
        let filtered = filtered_routes(&exchange, id, 1);
        assert_eq!(filtered.len(), 1, "{id}: {filtered:#?}");
        let route = &filtered[0];
        assert_eq!(route["network"], network, "{route:#}");
        assert_eq!(route["filtered"]["label"], "rpki_invalid", "{route:#}");
        assert_eq!(route["filtered"]["code"], 13, "{route:#}");
        assert_eq!(
            route["filtered"]["large_community"],
            serde_json::json!([ROUTE_SERVER_ASN, 1101, 13])
        );
        let reason = route["filtered"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("AS64507") && reason.contains(network),
            "{reason}"
        );
    }
    let shown = exchange
        .route_server_host()
        .netns()
        .run(
            &binary_path("route-server").to_string_lossy(),
            &[
                "show",
                "routes",
                "--neighbor",
                "golf.ipv4",
                "--filtered",
                "--api",
                vixp_tests::exchange::ROUTE_SERVER_HTTP,
            ],
        )
        .expect("route-server show routes --filtered");
    let line = shown
        .lines()
        .find(|line| line.contains(invalid[0]))
        .unwrap_or_else(|| panic!("{} missing from:\n{shown}", invalid[0]));
    assert!(line.contains("RPKI invalid"), "{shown}");

    // Hotel and india hold golf's valid and not-found routes, and never an invalid one.
    exchange.wait_for(
        Duration::from_secs(15),
        "hotel and india to hold golf's valid and not-found routes",
        |exchange| {
            ["hotel", "india"].iter().all(|name| {
                exchange.member(name).routes().is_ok_and(|routes| {
                    passing
                        .iter()
                        .all(|wanted| routes.iter().any(|route| route.prefix == *wanted))
                })
            })
        },
    );
    for name in ["hotel", "india"] {
        let routes = exchange.member(name).routes().expect("routes");
        for refused in &invalid {
            assert!(
                routes.iter().all(|route| route.prefix != prefix(refused)),
                "{name} received the RPKI-invalid {refused}: {routes:?}"
            );
        }
    }

    // The looking-glass view marks each accepted route with its RPKI state (Euro-IX
    // informational rs:1000:1 valid, rs:1000:2 not found); the members never receive them.
    for id in ["golf.ipv4", "golf.ipv6"] {
        let body = exchange
            .route_server_get(&format!("/api/v1/neighbors/{id}/routes/received"))
            .expect("received routes");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let routes = value["routes"].as_array().expect("routes");
        let family = |text: &&str| text.contains(':') == id.ends_with("ipv6");
        // The accepted ones: the refused are in the filtered view.
        let accepted = GOLF
            .iter()
            .filter(|(text, _, state)| family(text) && *state != "invalid")
            .count();
        assert_eq!(routes.len(), accepted, "{id}: {routes:#?}");
        for route in routes {
            let network = route["network"].as_str().unwrap_or_default();
            let (_, _, state) = GOLF
                .iter()
                .find(|(text, _, _)| *text == network)
                .unwrap_or_else(|| panic!("{network} is not golf's"));
            let expected = match *state {
                "valid" => vec![serde_json::json!([ROUTE_SERVER_ASN, 1000, 1])],
                "not_found" => vec![serde_json::json!([ROUTE_SERVER_ASN, 1000, 2])],
                _ => panic!("the refused {network} is listed as accepted: {route:#}"),
            };
            let tags: Vec<serde_json::Value> = route["bgp"]["large_communities"]
                .as_array()
                .expect("large communities")
                .iter()
                .filter(|community| community[0] == ROUTE_SERVER_ASN)
                .cloned()
                .collect();
            assert_eq!(tags, expected, "{route:#}");
        }
    }
    for name in ["hotel", "india"] {
        for route in exchange.member(name).routes().expect("routes") {
            assert!(
                route
                    .large_communities
                    .iter()
                    .all(|community| community.0 != ROUTE_SERVER_ASN),
                "{name} received the route server's informational communities: {route:?}"
            );
        }
    }

    let series =
        "route_server_routes_filtered{member=\"golf\",family=\"ipv4\",reason=\"rpki_invalid\"} 1";
    exchange.wait_for(
        Duration::from_secs(5),
        "the filtered-by-reason gauge",
        |exchange| {
            exchange
                .route_server_metrics()
                .is_ok_and(|metrics| metrics.contains(series))
        },
    );
    let metrics = exchange.route_server_metrics().expect("metrics");
    assert!(
        metrics.contains("route_server_rpki_vrps{family=\"ipv4\"} 3")
            && metrics.contains("route_server_rpki_vrps{family=\"ipv6\"} 1"),
        "{metrics}"
    );
}
