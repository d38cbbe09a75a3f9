//! WireGuard on the wire: a `vixp up` node and a stock `wireguard-go` (Debian package, TUN
//! device configured by `wg set`) complete a handshake and exchange pings on the LAN subnet in
//! both directions. The underlay is a veth pair between two namespaces (198.18.1.0/24).

mod common;

use std::time::Duration;

use common::{Process, TwoSites, peer, start_node, status, wait_for};

#[test]
fn vixp_and_wireguard_go_handshake_and_ping_both_ways() {
    // Bravo runs wireguard-go with a key from `vixp keygen`.
    let TwoSites {
        directory,
        rs: _,
        alpha,
        bravo,
        a,
        b,
    } = TwoSites::new();
    let _alpha_node = start_node(&a, &directory, "alpha");

    let mut wireguard = b.command("wireguard-go");
    wireguard.args(["-f", "wg0"]);
    let mut wireguard_go = Process::start(wireguard, directory.join("wireguard-go.log"));
    assert!(
        wait_for(Duration::from_secs(10), || b
            .succeeds("ip", &["link", "show", "wg0"])),
        "wireguard-go did not create wg0: {}",
        wireguard_go.log_text()
    );
    let key = directory.join("bravo.key");
    b.run(
        "wg",
        &[
            "set",
            "wg0",
            "private-key",
            key.to_str().expect("utf-8"),
            "listen-port",
            "51820",
            "peer",
            &alpha.public_key,
            "endpoint",
            &format!("{}:51820", alpha.underlay()),
            "allowed-ips",
            "198.18.0.0/24,fd00:198:18::/64",
        ],
    );
    b.ip(&["addr", "add", &format!("{}/24", bravo.ipv4()), "dev", "wg0"]);
    b.ip(&["addr", "add", &format!("{}/64", bravo.ipv6()), "dev", "wg0"]);
    b.ip(&["link", "set", "wg0", "mtu", "1420", "up"]);

    // wireguard-go initiates: ping from its side to the vixp node's LAN address.
    assert!(
        b.succeeds("ping", &["-c", "3", "-i", "0.2", "-W", "3", &alpha.ipv4()]),
        "ping wireguard-go -> vixp failed:\n{}",
        wireguard_go.log_text()
    );
    // And back from the vixp node, IPv4 and IPv6.
    assert!(a.succeeds("ping", &["-c", "3", "-i", "0.2", "-W", "3", &bravo.ipv4()]));
    assert!(a.succeeds(
        "ping",
        &["-6", "-c", "3", "-i", "0.2", "-W", "3", &bravo.ipv6()]
    ));

    // Both sides saw the handshake.
    let handshakes = b.run("wg", &["show", "wg0", "latest-handshakes"]);
    let latest: u64 = handshakes
        .split_whitespace()
        .nth(1)
        .and_then(|time| time.parse().ok())
        .unwrap_or(0);
    assert!(latest > 1_700_000_000, "wg show: {handshakes}");
    assert!(wait_for(Duration::from_secs(3), || {
        let alpha_status = status(&directory, "alpha");
        let bravo_peer = peer(&alpha_status, "bravo");
        bravo_peer["received_packets"].as_u64() >= Some(9)
            && bravo_peer["latest_handshake"].as_u64() > Some(1_700_000_000)
    }));
    assert!(wireguard_go.is_running());
    wireguard_go.signal("TERM");
}
