//! The route server's import policy against real BIRD members: a member announces one good
//! route and one of each kind of violating route (transit-free ASN behind it, reserved ASN,
//! bogon prefix, too long, another member's next hop). The other members' BIRDs receive only
//! the good one, and the route server shows each refused route with its reason. Must not send
//! traffic outside the namespaces it creates.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use vixp_tests::{Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind};

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
