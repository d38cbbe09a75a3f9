//! RFC 9234 against real BIRD 2 members: the route server announces the BGP Role RS; a BIRD
//! with `local role rs_client` establishes, one with `local role customer` is refused with
//! Role Mismatch (visible as the neighbor's last error), one without a role establishes
//! (lenient default). A route a member sends with a foreign OTC attribute is a leak: no other
//! member receives it and the route server says why; every route the route server sends
//! carries OTC with its ASN. Must not send traffic outside the namespaces it creates.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use vixp_tests::exchange::{FabricExtras, ROUTE_SERVER_ASN};
use vixp_tests::{Announcement, Exchange, MemberKind, MemberSpec, RouteServerKind};

fn prefix(text: &str) -> IpNet {
    text.parse().expect("test prefix")
}

fn member(name: &str, asn: u32, host: u8, announcements: Vec<Announcement>) -> MemberSpec {
    MemberSpec {
        name: name.to_owned(),
        asn,
        host,
        kind: MemberKind::Bird,
        announcements,
    }
}

/// Our route server's view of `id` (`member.ipv4`) from `/api/v1/neighbors`.
fn neighbor(exchange: &Exchange, id: &str) -> Option<serde_json::Value> {
    let body = exchange.route_server_get("/api/v1/neighbors").ok()?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    value["neighbors"]
        .as_array()?
        .iter()
        .find(|neighbor| neighbor["id"] == id)
        .cloned()
}

#[test]
fn bird_members_with_roles_meet_a_route_server_that_is_an_rs_and_otc_leaks_stop_there() {
    let leaked = prefix("198.18.232.0/24");
    let lima_own = prefix("198.18.233.0/24");
    let leak = Announcement {
        foreign_path: vec![64999],
        otc: Some(64999),
        ..Announcement::new(leaked)
    };
    let members = vec![
        member(
            "juliet",
            64510,
            20,
            vec![Announcement::new(prefix("198.18.230.0/24"))],
        ),
        member(
            "kilo",
            64511,
            21,
            vec![Announcement::new(prefix("198.18.231.0/24"))],
        ),
        member("lima", 64512, 22, vec![Announcement::new(lima_own), leak]),
    ];
    let extras = FabricExtras::default()
        .bird_role("juliet", "rs_client")
        .bird_role("kilo", "customer");
    let exchange = Exchange::start_with("roles", RouteServerKind::Ours, members, &extras)
        .unwrap_or_else(|error| panic!("cannot start the exchange: {error}"));

    // Juliet (rs_client) and lima (no role) establish, seen from both ends.
    exchange.wait_for(
        Duration::from_secs(30),
        "juliet and lima to be Established",
        |exchange| {
            ["juliet", "lima"].iter().all(|name| {
                exchange.member(name).sessions_established()
                    && exchange.route_server_sees_established(name)
            })
        },
    );
    // BIRD shows the role it negotiated with the route server.
    let juliet = exchange.member("juliet").bird().expect("BIRD member");
    let details = juliet
        .birdc(&["show", "protocols", "all", "rs4"])
        .expect("birdc");
    assert!(
        details.contains("Role") && details.contains("rs_client"),
        "{details}"
    );

    // Kilo (customer) is refused with Role Mismatch and never comes up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let last_error = loop {
        let error = neighbor(&exchange, "kilo.ipv4")
            .and_then(|view| view["last_error"].as_str().map(str::to_owned));
        if let Some(error) = error.filter(|text| text.contains("Role Mismatch")) {
            break error;
        }
        assert!(
            Instant::now() < deadline,
            "kilo's session never failed with Role Mismatch: {:?}\n{}",
            neighbor(&exchange, "kilo.ipv4"),
            exchange.report()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(last_error.contains("OPEN Message Error"), "{last_error}");
    assert!(!exchange.route_server_sees_established("kilo"));
    assert!(!exchange.member("kilo").sessions_established());

    // Lima's leaked route (OTC from AS64999) is refused with its reason; juliet gets lima's
    // own route but never the leak.
    exchange.wait_for(
        Duration::from_secs(15),
        "juliet to hold lima's own route",
        |exchange| {
            exchange
                .member("juliet")
                .routes()
                .is_ok_and(|routes| routes.iter().any(|route| route.prefix == lima_own))
        },
    );
    let routes = exchange.member("juliet").routes().expect("routes");
    assert!(
        routes.iter().all(|route| route.prefix != leaked),
        "juliet received the leaked route: {routes:?}"
    );
    let body = exchange
        .route_server_get("/api/v1/neighbors/lima.ipv4/routes/filtered")
        .expect("filtered routes");
    let filtered: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let refused = filtered["routes"]
        .as_array()
        .and_then(|routes| {
            routes
                .iter()
                .find(|route| route["network"] == leaked.to_string())
        })
        .unwrap_or_else(|| panic!("{leaked} is not listed as filtered: {filtered:#}"));
    assert_eq!(refused["filtered"]["label"], "otc_leak", "{refused:#}");
    assert!(
        refused["filtered"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("AS64999")),
        "{refused:#}"
    );

    // Lima has no role, so the OTC on what it receives is the route server's own (egress
    // rule 1 of RFC 9234 section 5), not one BIRD added.
    let lima = exchange.member("lima").bird().expect("BIRD member");
    let shown = lima
        .birdc(&["show", "route", "all", "protocol", "rs4"])
        .expect("birdc");
    assert!(
        shown.contains(&format!("BGP.otc: {ROUTE_SERVER_ASN}")),
        "{shown}"
    );
}
