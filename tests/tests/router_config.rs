//! Member router snippets in real routers: `vixp router-config` output loaded into BIRD, FRR
//! (Debian `frr`) and OpenBGPD (Debian `openbgpd`) in network namespaces, each peering with our
//! route server over a bridged LAN (198.18.0.0/24, fd00:198:18::/64). Checks what a joining
//! member would: its sessions establish, it receives the other members' routes unchanged, and
//! its own prefixes (and only those) reach the others. Must not send traffic outside the
//! namespaces it creates.

use std::time::Duration;

use vixp_tests::{
    Announcement,
    exchange::ROUTE_SERVER_ASN,
    snippet_exchange::{RouterKind, SnippetExchange, SnippetMember},
};

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

/// What a broken route server sends in the impostor test: each refused by one rule of the
/// snippets' import filters (the test fabric's policy: IPv4 8-24, IPv6 12-48, AS paths up to
/// 32, the default bogons except 198.18.0.0/15 and fd00::/8), and two routes on the limits.
fn impostor_announcements() -> (Vec<Announcement>, Vec<&'static str>) {
    let announce = |prefix: &str| Announcement::new(prefix.parse().expect("test prefix"));
    let long_path = |prefix: &str, length: usize| Announcement {
        // The impostor prepends its own ASN: `length` ASNs in all.
        foreign_path: vec![64510; length - 1],
        ..announce(prefix)
    };
    let refused = vec![
        announce("198.18.0.0/24"), // the peering LAN
        announce("0.0.0.0/0"),     // default routes
        announce("::/0"),
        announce("198.18.141.0/25"), // longer than 24
        announce("fd00:141::/49"),   // longer than 48
        announce("198.0.0.0/7"),     // shorter than 8
        announce("10.0.0.0/8"),      // bogons
        announce("2001:db8::/32"),
        long_path("198.18.142.0/24", 33),
    ];
    let accepted = vec![
        announce("198.18.140.0/24"),
        announce("fd00:140::/48"),
        long_path("198.18.143.0/24", 32),
    ];
    let expected = vec!["198.18.140.0/24", "fd00:140::/48", "198.18.143.0/24"];
    (refused.into_iter().chain(accepted).collect(), expected)
}

#[test]
fn every_snippet_refuses_what_the_exchange_policy_refuses_even_from_a_broken_route_server() {
    let (announcements, expected) = impostor_announcements();
    let exchange = SnippetExchange::start_with_impostor(
        "router-config-impostor",
        members(),
        announcements.clone(),
    )
    .expect("start exchange");
    let rs1 = exchange.route_server("rs1");
    exchange.wait_for(
        Duration::from_secs(40),
        "every member's sessions with the impostor Established",
        |x| {
            x.members()
                .iter()
                .all(|member| member.established_with(rs1))
        },
    );
    // The impostor does send every route, refused ones included, to every member.
    let impostor = rs1.impostor().expect("BIRD poses as rs1");
    for member in exchange.members() {
        for (suffix, ipv4) in [("4", true), ("6", false)] {
            let protocol = format!("{}{suffix}", member.spec().name);
            let exported = impostor
                .birdc(&["show", "route", "export", &protocol])
                .expect("birdc show route export");
            for announcement in announcements
                .iter()
                .filter(|a| a.prefix.addr().is_ipv4() == ipv4)
            {
                assert!(
                    exported.contains(&announcement.prefix.to_string()),
                    "impostor does not send {} to {protocol}: {exported}",
                    announcement.prefix
                );
            }
        }
    }
    let holds_exactly_the_accepted = |member: &vixp_tests::snippet_exchange::MemberSite| {
        member.routes().is_ok_and(|routes| {
            let mut prefixes: Vec<String> = routes.iter().map(|r| r.prefix.to_string()).collect();
            prefixes.sort();
            let mut wanted: Vec<String> = expected.iter().map(|p| (*p).to_owned()).collect();
            wanted.sort();
            prefixes == wanted
                && routes
                    .iter()
                    .all(|route| route.as_path.first() == Some(&ROUTE_SERVER_ASN))
        })
    };
    exchange.wait_for(
        PROPAGATION,
        "each member holding exactly the routes its import filter accepts",
        |x| x.members().iter().all(holds_exactly_the_accepted),
    );
    // Still exactly those once every refused route has had time to arrive.
    std::thread::sleep(Duration::from_secs(2));
    for member in exchange.members() {
        assert!(
            holds_exactly_the_accepted(member),
            "{} holds {:#?}",
            member.spec().name,
            member.routes()
        );
    }
}

/// Runs the built `vixp` with `args` from the workspace root; returns (success, stdout, stderr).
fn vixp(args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(vixp_tests::binary_path("vixp"))
        .args(args)
        .current_dir(vixp_tests::workspace_root())
        .output()
        .expect("run vixp");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_node_file_names_the_fabric_and_member_as_the_member_guide_says() {
    for dialect in ["bird", "frr", "openbgpd"] {
        let (ok, from_node, error) = vixp(&["router-config", dialect, "-c", "configs/node.yaml"]);
        assert!(ok, "{error}");
        let (ok, direct, error) = vixp(&[
            "router-config",
            dialect,
            "--fabric",
            "configs/fabric.yaml",
            "--member",
            "alpha",
        ]);
        assert!(ok, "{error}");
        assert_eq!(from_node, direct, "{dialect}");
        assert!(from_node.contains("member alpha (AS64501)"), "{from_node}");
    }
}

#[test]
fn bad_requests_say_what_is_wrong_and_print_no_snippet() {
    let fabric = "configs/examples/two-route-servers-nat.yaml";
    let cases: [(&[&str], &str); 4] = [
        (
            &["--member", "zulu"],
            "no member named \"zulu\"; members are: echo, foxtrot",
        ),
        (
            &["--member", "echo", "--prefix", "198.18.131.1/24"],
            "host bits are set; did you mean 198.18.131.0/24?",
        ),
        (
            &["--member", "foxtrot", "--prefix", "fd00:131::/48"],
            "member foxtrot has no IPv6 LAN address",
        ),
        (
            &["--member", "echo", "--prefix", "198.18.0.0/33"],
            "invalid value",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["router-config", "bird", "--fabric", fabric];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = vixp(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let (ok, _, stderr) = vixp(&[
        "router-config",
        "bird",
        "--fabric",
        "configs/no-such.yaml",
        "--member",
        "echo",
    ]);
    assert!(!ok);
    assert!(stderr.contains("configs/no-such.yaml"), "{stderr}");
}
