//! Correctness on a bad underlay. This machine's kernel has no `sch_netem` (`tc qdisc add ...
//! netem` answers "Specified qdisc kind is unknown"), so a small userspace relay in the test
//! stands between the two nodes instead: every datagram between alpha and bravo crosses it,
//! and it drops about 3% of the transport data messages, sends 2% twice and holds 5% back for
//! 1-4 ms so that later ones overtake them (seeded, so every run sees the same pattern).
//! Handshake messages pass untouched, so the test is not about WireGuard's 5-second handshake
//! retry. TCP transfers must complete with every byte right; duplicates and old datagrams sent
//! again must be dropped and counted as `replayed`.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sched::{CloneFlags, setns};

use common::transfer::transfer;
use common::{Namespace, TempDir, TwoSites, fabric_text, start_node_with, status, wait_for};

/// Bytes sent each way.
const TRANSFER_BYTES: usize = 16 << 20;
/// The relay's address, in bravo's namespace.
const RELAY_ADDRESS: &str = "198.18.1.13";
/// Relay port that stands for bravo (alpha sends there).
const RELAY_FOR_BRAVO: u16 = 51900;
/// Relay port that stands for alpha (bravo sends there).
const RELAY_FOR_ALPHA: u16 = 51901;
/// Impairments, per mille of transport data messages.
const DROP_PER_MILLE: u64 = 30;
const DUPLICATE_PER_MILLE: u64 = 20;
const HOLD_PER_MILLE: u64 = 50;
/// Most datagrams held back at once (beyond this they are sent at once).
const MAX_HELD: usize = 1024;
/// Data messages towards bravo captured at the start, sent again at the end.
const CAPTURED: usize = 3;
/// WireGuard transport data message type.
const MESSAGE_DATA: u8 = 4;

/// What the relay did.
#[derive(Debug, Default)]
struct RelayCounts {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    duplicated_to_bravo: AtomicU64,
    duplicated_to_alpha: AtomicU64,
    held: AtomicU64,
    injected: AtomicU64,
}

/// The impairing relay; stopped on drop.
struct Relay {
    stop: Arc<AtomicBool>,
    /// Impairments on (off: a plain relay).
    impair: Arc<AtomicBool>,
    /// Send the captured datagrams again (once).
    inject: Arc<AtomicBool>,
    counts: Arc<RelayCounts>,
    thread: Option<JoinHandle<()>>,
}

/// xorshift64: the same pattern every run.
struct Random(u64);

impl Random {
    fn per_mille(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000
    }
}

impl Relay {
    /// Starts the relay in `namespace`: datagrams to [`RELAY_FOR_BRAVO`] go to `bravo` from
    /// [`RELAY_FOR_ALPHA`], datagrams to [`RELAY_FOR_ALPHA`] go to `alpha` from
    /// [`RELAY_FOR_BRAVO`].
    fn start(namespace: &Namespace, alpha: SocketAddr, bravo: SocketAddr) -> Relay {
        let path = format!("/var/run/netns/{}", namespace.name);
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let mut relay = Relay {
            stop: Arc::new(AtomicBool::new(false)),
            impair: Arc::new(AtomicBool::new(true)),
            inject: Arc::new(AtomicBool::new(false)),
            counts: Arc::new(RelayCounts::default()),
            thread: None,
        };
        let (stop, impair, inject, counts) = (
            Arc::clone(&relay.stop),
            Arc::clone(&relay.impair),
            Arc::clone(&relay.inject),
            Arc::clone(&relay.counts),
        );
        let thread = thread::spawn(move || {
            let file = fs::File::open(&path).expect("namespace file");
            setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
            let for_bravo = UdpSocket::bind((RELAY_ADDRESS, RELAY_FOR_BRAVO)).expect("bind");
            let for_alpha = UdpSocket::bind((RELAY_ADDRESS, RELAY_FOR_ALPHA)).expect("bind");
            for socket in [&for_bravo, &for_alpha] {
                socket.set_nonblocking(true).expect("non-blocking");
            }
            ready_sender.send(()).expect("ready");
            relay_loop(
                [&for_bravo, &for_alpha],
                [bravo, alpha],
                &stop,
                &impair,
                &inject,
                &counts,
            );
        });
        relay.thread = Some(thread);
        ready
            .recv_timeout(Duration::from_secs(5))
            .expect("relay up");
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The relay's loop: `sockets[0]` receives from alpha and its datagrams leave by `sockets[1]`
/// to `targets[0]` (bravo); `sockets[1]` receives from bravo, its datagrams leave by
/// `sockets[0]` to `targets[1]` (alpha).
fn relay_loop(
    sockets: [&UdpSocket; 2],
    targets: [SocketAddr; 2],
    stop: &AtomicBool,
    impair: &AtomicBool,
    inject: &AtomicBool,
    counts: &RelayCounts,
) {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut held: Vec<(Instant, usize, Vec<u8>)> = Vec::new();
    let mut captured: Vec<Vec<u8>> = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [
            PollFd::new(sockets[0].as_fd(), PollFlags::POLLIN),
            PollFd::new(sockets[1].as_fd(), PollFlags::POLLIN),
        ];
        let _ = poll(&mut fds, 1u16);
        let now = Instant::now();
        let mut index = 0;
        while index < held.len() {
            if held[index].0 <= now {
                let (_, direction, datagram) = held.swap_remove(index);
                let _ = sockets[1 - direction].send_to(&datagram, targets[direction]);
                counts.forwarded.fetch_add(1, Ordering::Relaxed);
            } else {
                index += 1;
            }
        }
        if inject.swap(false, Ordering::Relaxed) {
            for datagram in captured.drain(..) {
                let _ = sockets[1].send_to(&datagram, targets[0]);
                counts.injected.fetch_add(1, Ordering::Relaxed);
            }
        }
        for direction in 0..2 {
            // Bounded per wake-up, so the held queue is served often.
            for _ in 0..256 {
                let Ok((length, _)) = sockets[direction].recv_from(&mut buffer) else {
                    break;
                };
                let datagram = &buffer[..length];
                let out = sockets[1 - direction];
                let target = targets[direction];
                let data = datagram.first() == Some(&MESSAGE_DATA);
                if direction == 0 && data && length > 32 && captured.len() < CAPTURED {
                    captured.push(datagram.to_vec());
                }
                if !data || !impair.load(Ordering::Relaxed) {
                    let _ = out.send_to(datagram, target);
                    counts.forwarded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let roll = random.per_mille();
                if roll < DROP_PER_MILLE {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                } else if roll < DROP_PER_MILLE + DUPLICATE_PER_MILLE {
                    let _ = out.send_to(datagram, target);
                    let _ = out.send_to(datagram, target);
                    let duplicated = if direction == 0 {
                        &counts.duplicated_to_bravo
                    } else {
                        &counts.duplicated_to_alpha
                    };
                    duplicated.fetch_add(1, Ordering::Relaxed);
                    counts.forwarded.fetch_add(2, Ordering::Relaxed);
                } else if roll < DROP_PER_MILLE + DUPLICATE_PER_MILLE + HOLD_PER_MILLE
                    && held.len() < MAX_HELD
                {
                    let delay = Duration::from_millis(1 + random.per_mille() % 4);
                    held.push((now + delay, direction, datagram.to_vec()));
                    counts.held.fetch_add(1, Ordering::Relaxed);
                } else {
                    let _ = out.send_to(datagram, target);
                    counts.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A node's drops for `reason` from `vixp status`.
fn drops(directory: &TempDir, member: &str, reason: &str) -> u64 {
    status(directory, member)["drops"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until both nodes' status snapshots (taken every 250 ms) stop changing, so that what
/// is read next counts everything that arrived so far.
fn settle(directory: &TempDir) {
    let snapshot =
        || ["alpha", "bravo"].map(|member| status(directory, member)["drops"].to_string());
    let mut last = snapshot();
    let stable = wait_for(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(600));
        let now = snapshot();
        std::mem::replace(&mut last, now) == last
    });
    assert!(stable, "drop counters never settled");
}

#[test]
fn tcp_transfers_complete_over_a_lossy_reordering_duplicating_underlay() {
    let TwoSites {
        directory,
        rs,
        alpha,
        bravo,
        a,
        b,
    } = TwoSites::new();
    // Each node knows the other only by a relay address.
    let fabric = fabric_text(&rs, &[&alpha, &bravo])
        .replace(
            &format!("endpoint: {}:51820", alpha.underlay()),
            &format!("endpoint: {RELAY_ADDRESS}:{RELAY_FOR_ALPHA}"),
        )
        .replace(
            &format!("endpoint: {}:51820", bravo.underlay()),
            &format!("endpoint: {RELAY_ADDRESS}:{RELAY_FOR_BRAVO}"),
        );
    fs::write(directory.join("fabric.yaml"), fabric).expect("fabric");
    b.ip(&["addr", "add", &format!("{RELAY_ADDRESS}/32"), "dev", "lo"]);
    let relay = Relay::start(
        &b,
        format!("{}:51820", alpha.underlay())
            .parse()
            .expect("address"),
        format!("{}:51820", bravo.underlay())
            .parse()
            .expect("address"),
    );
    let alpha_node = start_node_with(&a, &directory, "alpha", "listen_port: 51820\n");
    let bravo_node = start_node_with(&b, &directory, "bravo", "listen_port: 51820\n");
    assert!(
        a.succeeds("ping", &["-c", "5", "-i", "0.2", "-W", "3", &bravo.ipv4()]),
        "no path through the relay:\n{}\n{}",
        alpha_node.log_text(),
        bravo_node.log_text()
    );

    let started = Instant::now();
    let (received, first_wrong) = transfer(
        &a,
        &b,
        bravo.ipv4().parse().expect("address"),
        TRANSFER_BYTES,
    );
    assert_eq!(received, TRANSFER_BYTES, "{}", bravo_node.log_text());
    assert_eq!(first_wrong, None, "IPv4 alpha -> bravo corrupted");
    let (received, first_wrong) = transfer(
        &b,
        &a,
        alpha.ipv6().parse().expect("address"),
        TRANSFER_BYTES,
    );
    assert_eq!(received, TRANSFER_BYTES, "{}", alpha_node.log_text());
    assert_eq!(first_wrong, None, "IPv6 bravo -> alpha corrupted");
    let counts = &relay.counts;
    eprintln!(
        "2 x {} MiB in {:.1} s through the relay: {counts:?}",
        TRANSFER_BYTES >> 20,
        started.elapsed().as_secs_f64()
    );
    assert!(counts.dropped.load(Ordering::Relaxed) > 100, "{counts:?}");
    assert!(counts.held.load(Ordering::Relaxed) > 100, "{counts:?}");

    // Every duplicate is dropped as a replay by the receiver (a few may be lost in a socket
    // buffer, never more replays than duplicates).
    relay.impair.store(false, Ordering::Relaxed);
    settle(&directory);
    for (member, duplicated) in [
        ("bravo", &counts.duplicated_to_bravo),
        ("alpha", &counts.duplicated_to_alpha),
    ] {
        let duplicated = duplicated.load(Ordering::Relaxed);
        let replayed = drops(&directory, member, "replayed");
        assert!(duplicated > 20, "{counts:?}");
        assert!(
            replayed * 10 >= duplicated * 9 && replayed <= duplicated,
            "{member}: {replayed} replays counted for {duplicated} duplicates"
        );
        assert_eq!(drops(&directory, member, "decrypt_failed"), 0);
    }

    // Datagrams from the start of the session, thousands of counters ago (far outside the
    // anti-replay window), sent again: each dropped and counted.
    settle(&directory);
    let before = drops(&directory, "bravo", "replayed");
    relay.inject.store(true, Ordering::Relaxed);
    assert!(wait_for(Duration::from_secs(5), || {
        relay.counts.injected.load(Ordering::Relaxed) == CAPTURED as u64
    }));
    assert!(
        wait_for(Duration::from_secs(5), || {
            drops(&directory, "bravo", "replayed") == before + CAPTURED as u64
        }),
        "replayed {} before, {} after {CAPTURED} old datagrams",
        before,
        drops(&directory, "bravo", "replayed")
    );
    // And the tunnel still works.
    assert!(a.succeeds("ping", &["-c", "1", "-W", "3", &bravo.ipv4()]));
    drop(relay);
}
