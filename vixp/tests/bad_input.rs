//! Bad input against a running node: a bounded burst of garbage and truncated WireGuard
//! datagrams sent as fast as one socket can to the node's own underlay address (inside the
//! test's namespace) while a TCP transfer crosses the fabric, and frames from the kernel larger
//! than the tunnel MTU. The node must drop and count them, keep forwarding with every byte
//! right, not panic, and its memory must stay flat.

mod common;

use std::fs;
use std::net::UdpSocket;
use std::time::Duration;

use common::transfer::{in_namespace, transfer};
use common::{TempDir, TwoSites, start_node, status, wait_for};

/// Garbage datagrams in the burst.
const GARBAGE: u64 = 200_000;
/// Bytes of the transfer that runs during the burst.
const TRANSFER_BYTES: usize = 8 << 20;
/// How much the node's resident memory may grow across the burst.
const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;

/// Resident memory of process `pid` in KiB (`VmRSS`).
fn resident_kib(pid: u32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS")
}

/// Every drop a node counted.
fn all_drops(directory: &TempDir, member: &str) -> u64 {
    status(directory, member)["drops"]
        .as_object()
        .map_or(0, |drops| {
            drops.values().filter_map(|count| count.as_u64()).sum()
        })
}

/// Datagram `number` of the burst (deterministic): random bytes of random length, truncated
/// or mis-sized handshake messages, transport data messages for unknown or real-looking
/// indices, cookie replies.
fn garbage(number: u64, state: &mut u64, buffer: &mut [u8; 1500]) -> usize {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let length = (next() % 1500) as usize;
    for byte in buffer.iter_mut().take(length) {
        *byte = next() as u8;
    }
    match number % 6 {
        // A handshake initiation of the right length (148) with random content.
        0 => {
            buffer[..4].copy_from_slice(&[1, 0, 0, 0]);
            148
        }
        // A handshake initiation cut short.
        1 => {
            buffer[..4].copy_from_slice(&[1, 0, 0, 0]);
            length.min(147)
        }
        // A transport data message (header and tag at least).
        2 => {
            buffer[..4].copy_from_slice(&[4, 0, 0, 0]);
            length.max(32)
        }
        // A transport data message shorter than its header.
        3 => {
            buffer[..4].copy_from_slice(&[4, 0, 0, 0]);
            length.min(15)
        }
        // A cookie reply of the right length (64).
        4 => {
            buffer[..4].copy_from_slice(&[3, 0, 0, 0]);
            64
        }
        // Anything, empty included.
        _ => length,
    }
}

#[test]
fn a_garbage_burst_is_dropped_and_counted_while_traffic_flows_and_memory_stays_flat() {
    let TwoSites {
        directory,
        rs: _,
        alpha,
        bravo,
        a,
        b,
    } = TwoSites::new();
    let alpha_node = start_node(&a, &directory, "alpha");
    let mut bravo_node = start_node(&b, &directory, "bravo");
    assert!(
        a.succeeds("ping", &["-c", "1", "-W", "3", &bravo.ipv4()]),
        "no path:\n{}\n{}",
        alpha_node.log_text(),
        bravo_node.log_text()
    );
    // Warm up: buffers and the session exist before the memory is measured.
    let (received, _) = transfer(&a, &b, bravo.ipv4().parse().expect("address"), 1 << 20);
    assert_eq!(received, 1 << 20);
    let rss_before = resident_kib(bravo_node.pid());
    let drops_before = all_drops(&directory, "bravo");

    let target = format!("{}:51820", bravo.underlay());
    let source = format!("{}:0", alpha.underlay());
    let burst = in_namespace(&a, move || {
        let socket = UdpSocket::bind(source).expect("bind");
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut buffer = [0u8; 1500];
        let mut sent = 0u64;
        for number in 0..GARBAGE {
            let length = garbage(number, &mut state, &mut buffer);
            if socket.send_to(&buffer[..length], &target).is_ok() {
                sent += 1;
            }
        }
        sent
    });
    let (received, first_wrong) = transfer(
        &a,
        &b,
        bravo.ipv4().parse().expect("address"),
        TRANSFER_BYTES,
    );
    let sent = burst.join().expect("burst thread");
    assert_eq!(received, TRANSFER_BYTES, "{}", bravo_node.log_text());
    assert_eq!(first_wrong, None, "corrupted during the burst");
    assert!(sent > GARBAGE / 2, "only {sent} garbage datagrams left");

    // Counted: all that reached the node's socket (the kernel may drop some when its buffer
    // is full; it counts those itself). The status is a snapshot taken every 250 ms.
    wait_for(Duration::from_secs(2), || {
        all_drops(&directory, "bravo") - drops_before >= sent
    });
    let counted = all_drops(&directory, "bravo") - drops_before;
    assert!(
        counted * 10 >= sent * 8,
        "{counted} drops counted for {sent} garbage datagrams: {}",
        status(&directory, "bravo")["drops"]
    );
    let drops = status(&directory, "bravo")["drops"].clone();
    for reason in ["not_wireguard", "unknown_peer", "bad_mac"] {
        assert!(
            drops[reason].as_u64().unwrap_or(0) > 0,
            "{reason} not counted: {drops}"
        );
    }
    assert!(bravo_node.is_running(), "{}", bravo_node.log_text());
    assert!(!bravo_node.log_text().contains("panicked"));
    let rss_after = resident_kib(bravo_node.pid());
    assert!(
        rss_after <= rss_before + RSS_GROWTH_LIMIT_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!(
        "{sent} garbage datagrams, {counted} drops counted ({drops}); RSS {rss_before} -> \
         {rss_after} KiB"
    );
    // Still forwarding, both ways.
    assert!(b.succeeds("ping", &["-c", "1", "-W", "3", &alpha.ipv4()]));
}

#[test]
fn frames_over_the_tunnel_mtu_get_fragmentation_needed_that_the_kernel_accepts() {
    let TwoSites {
        directory,
        rs: _,
        alpha: _,
        bravo,
        a,
        b,
    } = TwoSites::new();
    let alpha_node = start_node(&a, &directory, "alpha");
    let _bravo_node = start_node(&b, &directory, "bravo");
    assert!(a.succeeds("ping", &["-c", "1", "-W", "3", &bravo.ipv4()]));
    // Someone raised the TAP's MTU past what the tunnels carry.
    a.ip(&["link", "set", "vixp0", "mtu", "9000"]);
    let output = a
        .command("ping")
        .args([
            "-c",
            "1",
            "-W",
            "3",
            "-M",
            "do",
            "-s",
            "3000",
            &bravo.ipv4(),
        ])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("mtu = 1420"),
        "no fragmentation needed with the tunnel MTU: {text}\n{}",
        alpha_node.log_text()
    );
    // The status is a snapshot taken every 250 ms.
    assert!(wait_for(Duration::from_secs(2), || {
        let status = status(&directory, "alpha");
        status["drops"]["exceeds_mtu"].as_u64().unwrap_or(0) >= 1
            && status["too_big_answers"].as_u64().unwrap_or(0) >= 1
    }));
    // The kernel learnt the path MTU from the answer: IPv4 now fragments to fit and passes.
    assert!(
        a.succeeds(
            "ping",
            &[
                "-c",
                "1",
                "-W",
                "3",
                "-M",
                "dont",
                "-s",
                "3000",
                &bravo.ipv4()
            ]
        ),
        "{}",
        alpha_node.log_text()
    );
    // IPv6: packet too big, learnt the same way.
    let output = a
        .command("ping")
        .args([
            "-6",
            "-c",
            "2",
            "-W",
            "3",
            "-M",
            "do",
            "-s",
            "3000",
            &bravo.ipv6(),
        ])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("mtu = 1420") || text.contains("mtu=1420"),
        "no packet too big with the tunnel MTU: {text}"
    );
}
