//! README's first command, `scripts/demo`, run for a few seconds with the debug binaries: the
//! exchange comes up (sessions, routes in every member, a ping across the fabric), its output
//! says so, and nothing is left behind. Must not leave any `vixp-demo-` namespace or the host's
//! `vixp-demo-host` link.

use std::process::Command;

use vixp_tests::{binary_path, netns::namespaces, workspace_root};

/// Namespaces the demo creates all start with this.
const PREFIX: &str = "vixp-demo-";
/// The demo's members: name, LAN host number, customer networks (IPv4, IPv6).
const MEMBERS: [(&str, u8, &str, &str); 3] = [
    ("alpha", 11, "198.18.131.0/24", "fd00:131::/48"),
    ("bravo", 12, "198.18.132.0/24", "fd00:132::/48"),
    ("charlie", 13, "198.18.133.0/24", "fd00:133::/48"),
];

#[test]
fn demo_starts_a_whole_exchange_and_removes_it() {
    // Debug binaries (built by scripts/test) keep the release build out of the test run.
    let vixp = binary_path("vixp");
    binary_path("route-server");
    let binaries = vixp.parent().expect("target/debug");
    let existing: Vec<String> = namespaces()
        .expect("ip netns list")
        .into_iter()
        .filter(|name| name.starts_with(PREFIX))
        .collect();
    assert!(
        existing.is_empty(),
        "a demo is running or was left behind: {existing:?}"
    );

    let output = Command::new(workspace_root().join("scripts/demo"))
        .args(["--duration", "5", "--binaries"])
        .arg(binaries)
        .output()
        .expect("run scripts/demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(output.status.success(), "scripts/demo failed:\n{all}");

    // Sessions: six Established lines in the route server's own view.
    assert!(all.contains("all sessions established after"), "{all}");
    let established = stdout
        .lines()
        .filter(|line| {
            line.split_whitespace().nth(3) == Some("Established")
                && MEMBERS
                    .iter()
                    .any(|(name, ..)| line.trim_start().starts_with(&format!("{name}.ipv")))
        })
        .count();
    assert_eq!(established, 6, "{all}");

    // Routes: every member's kernel routes the other two members' customers via their LAN
    // addresses (the demo prints `ip route` for each member in turn).
    for (index, (receiver, ..)) in MEMBERS.iter().enumerate() {
        let start = stdout
            .find(&format!("ip -n {PREFIX}{receiver} route show proto bird"))
            .unwrap_or_else(|| panic!("no kernel routes shown for {receiver}:\n{all}"));
        let end = MEMBERS
            .get(index + 1)
            .and_then(|(next, ..)| stdout[start..].find(&format!("bird-{next}.ctl show route")))
            .map_or(stdout.len(), |offset| start + offset);
        let section = &stdout[start..end];
        for (origin, host, ipv4, ipv6) in MEMBERS.iter().filter(|m| m.0 != *receiver) {
            let expected = format!("{ipv4} via 198.18.0.{host} dev vixp0");
            assert!(
                section.contains(&expected),
                "{receiver} lacks {expected}:\n{all}"
            );
            let expected = format!("{ipv6} via fd00:198:18::{host} dev vixp0");
            assert!(
                section.contains(&expected),
                "{receiver} lacks {origin}'s {expected}:\n{all}"
            );
        }
    }

    // The pings across the fabric, both families, lost nothing.
    assert_eq!(
        stdout
            .matches("3 packets transmitted, 3 received, 0% packet loss")
            .count(),
        2,
        "{all}"
    );
    // Status and metrics were shown and answered.
    assert!(all.contains("node alpha on vixp0"), "{all}");
    assert!(
        all.contains("vixp_sent_bytes_total{member=\"charlie\"}"),
        "{all}"
    );
    assert!(
        all.contains("curl -s http://198.18.1.1:9179/metrics"),
        "{all}"
    );

    // Torn down: no namespace and no host link left.
    assert!(all.contains("==> tearing down"), "{all}");
    let left: Vec<String> = namespaces()
        .expect("ip netns list")
        .into_iter()
        .filter(|name| name.starts_with(PREFIX))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let link = Command::new("ip")
        .args(["link", "show", "vixp-demo-host"])
        .output()
        .expect("ip link");
    assert!(!link.status.success(), "vixp-demo-host left behind");
}
