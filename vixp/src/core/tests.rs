//! Scenario tests of the data path: cores wired back to back through an in-memory underlay,
//! with real boringtun tunnels and frames as the kernel writes them.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use super::*;
use crate::keys::PrivateKey;

/// A node of the test fabric.
struct Node {
    core: Core,
    spec: PeerSpec,
    address: SocketAddr,
    /// Frames the core wrote to its TAP device.
    tap: Vec<Vec<u8>>,
}

fn spec(name: &str, seed: u8, host: u8) -> (PeerSpec, PrivateKey) {
    let key = PrivateKey::from_bytes([seed; 32]);
    let public_key = key.public_key();
    let spec = PeerSpec {
        name: name.to_owned(),
        public_key,
        mac: mac_for_key(&public_key),
        ipv4: Some(Ipv4Addr::new(198, 18, 0, host)),
        ipv6: Some(Ipv6Addr::new(
            0xfd00,
            0x198,
            0x18,
            0,
            0,
            0,
            0,
            u16::from(host),
        )),
        endpoint: None,
    };
    (spec, key)
}

fn underlay(host: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(198, 18, 1, host), 51820))
}

/// Nodes for `names`, each knowing all the others with their underlay addresses.
fn fabric(names: &[&str]) -> Vec<Node> {
    let all: Vec<(PeerSpec, PrivateKey, SocketAddr)> = names
        .iter()
        .enumerate()
        .map(|(position, name)| {
            let host = 11 + position as u8;
            let (spec, key) = spec(name, host, host);
            (spec, key, underlay(host))
        })
        .collect();
    all.iter()
        .map(|(own, key, address)| {
            let mut core = Core::new(
                OwnNode {
                    spec: own.clone(),
                    secret: key.secret(),
                },
                Some(Ipv4Addr::new(198, 18, 0, 255)),
                None,
            );
            let peers = all
                .iter()
                .filter(|(other, _, _)| other.name != own.name)
                .map(|(other, _, endpoint)| PeerConfig {
                    spec: other.clone(),
                    endpoint: Some(*endpoint),
                })
                .collect();
            core.apply_peers(own.clone(), peers);
            Node {
                core,
                spec: own.clone(),
                address: *address,
                tap: Vec::new(),
            }
        })
        .collect()
}

/// An IPv4 ICMP echo request as an Ethernet frame from `from` to `to`'s MAC.
fn ping_frame(
    from: &PeerSpec,
    to_mac: [u8; 6],
    source: Ipv4Addr,
    destination: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&to_mac);
    frame.extend_from_slice(&from.mac);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    let payload = [8u8, 0, 0, 0, 0, 1, 0, 1, b'v', b'i', b'x', b'p'];
    let total = (20 + payload.len()) as u16;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 1, 0, 0]);
    frame.extend_from_slice(&source.octets());
    frame.extend_from_slice(&destination.octets());
    frame.extend_from_slice(&payload);
    frame
}

/// A ping from node `from` to node `to` on the LAN.
fn lan_ping(nodes: &[Node], from: usize, to: usize) -> Vec<u8> {
    ping_frame(
        &nodes[from].spec,
        nodes[to].spec.mac,
        nodes[from].spec.ipv4.expect("ipv4"),
        nodes[to].spec.ipv4.expect("ipv4"),
    )
}

/// Datagrams in flight: (from, to, bytes).
type Wire = VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>;

/// Node `index` handles a frame from its TAP device; what it sends goes on the wire.
fn frame_in(nodes: &mut [Node], index: usize, frame: &[u8], wire: &mut Wire) -> Action<'static> {
    let mut out = vec![0u8; BUFFER_SIZE];
    let node = &mut nodes[index];
    match node.core.handle_frame(frame, &mut out) {
        Action::Transmit { to, datagram } => {
            wire.push_back((node.address, to, datagram.to_vec()));
            Action::Transmit { to, datagram: &[] }
        }
        Action::Deliver(reply) => {
            node.tap.push(reply.to_vec());
            Action::Deliver(&[])
        }
        Action::Queued => Action::Queued,
        Action::Done => Action::Done,
        Action::Dropped(reason) => Action::Dropped(reason),
    }
}

/// Delivers datagrams until the wire is quiet (bounded); returns the drops seen.
fn run(nodes: &mut [Node], wire: &mut Wire) -> Vec<DropReason> {
    let mut out = vec![0u8; BUFFER_SIZE];
    let mut drops = Vec::new();
    for _ in 0..1_000 {
        let Some((from, to, datagram)) = wire.pop_front() else {
            return drops;
        };
        let Some(node) = nodes.iter_mut().find(|node| node.address == to) else {
            continue;
        };
        match node.core.handle_datagram(from, &datagram, &mut out) {
            Action::Transmit { to, datagram } => {
                wire.push_back((node.address, to, datagram.to_vec()));
            }
            Action::Deliver(frame) => node.tap.push(frame.to_vec()),
            Action::Dropped(reason) => drops.push(reason),
            Action::Queued | Action::Done => {}
        }
        while let Some((to, datagram)) = node.core.poll_transmit(&mut out) {
            wire.push_back((node.address, to, datagram.to_vec()));
        }
    }
    panic!("the wire never went quiet");
}

/// Pings from `from` to `to` and runs the wire; returns drops.
fn ping(nodes: &mut [Node], from: usize, to: usize) -> Vec<DropReason> {
    let mut wire = Wire::new();
    let frame = lan_ping(nodes, from, to);
    frame_in(nodes, from, &frame, &mut wire);
    run(nodes, &mut wire)
}

#[test]
fn two_cores_back_to_back_exchange_pings_both_ways() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    let frame = lan_ping(&nodes, 0, 1);
    let mut wire = Wire::new();
    // No session yet: the packet waits and a handshake initiation goes out.
    assert!(matches!(
        frame_in(&mut nodes, 0, &frame, &mut wire),
        Action::Transmit { .. }
    ));
    assert_eq!(wire.len(), 1);
    assert_eq!(wire[0].2.len(), 148, "a handshake initiation");
    assert!(run(&mut nodes, &mut wire).is_empty());
    assert_eq!(
        nodes[1].tap.len(),
        1,
        "the held ping arrives after the handshake"
    );
    let delivered = &nodes[1].tap[0];
    assert_eq!(delivered[..6], nodes[1].spec.mac);
    assert_eq!(delivered[6..12], nodes[0].spec.mac);
    assert_eq!(delivered[14..], frame[14..]);
    // And back, on the same session.
    assert!(ping(&mut nodes, 1, 0).is_empty());
    assert_eq!(nodes[0].tap.len(), 1);
    assert_eq!(nodes[0].tap[0][6..12], nodes[1].spec.mac);
    for node in &nodes {
        assert_eq!(node.core.handshakes(), 1);
        let status = node.core.peer_status();
        assert_eq!(status[0].counters.sent_packets, 1);
        assert_eq!(status[0].counters.received_packets, 1);
        assert_eq!(status[0].counters.received_bytes, 32);
        assert!(status[0].since_handshake.is_some());
    }
}

#[test]
fn a_source_address_of_another_member_is_dropped_and_customers_pass() {
    let mut nodes = fabric(&["alpha", "bravo", "charlie"]);
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let charlie = nodes[2].spec.ipv4.expect("ipv4");
    let bravo = nodes[1].spec.ipv4.expect("ipv4");
    for spoofed in [charlie, bravo] {
        let frame = ping_frame(&nodes[0].spec, nodes[1].spec.mac, spoofed, bravo);
        let mut wire = Wire::new();
        frame_in(&mut nodes, 0, &frame, &mut wire);
        assert_eq!(run(&mut nodes, &mut wire), [DropReason::SpoofedSource]);
    }
    let customer = Ipv4Addr::new(198, 19, 7, 1);
    let frame = ping_frame(&nodes[0].spec, nodes[1].spec.mac, customer, bravo);
    let mut wire = Wire::new();
    frame_in(&mut nodes, 0, &frame, &mut wire);
    assert!(run(&mut nodes, &mut wire).is_empty());
    assert_eq!(nodes[1].tap.len(), 2);
    assert_eq!(nodes[1].core.drops().of(DropReason::SpoofedSource), 2);
}

#[test]
fn arp_and_neighbor_solicitations_for_members_are_answered_locally() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    let alpha = nodes[0].spec.clone();
    let bravo = nodes[1].spec.clone();
    let mut arp = Vec::new();
    arp.extend_from_slice(&[0xff; 6]);
    arp.extend_from_slice(&alpha.mac);
    arp.extend_from_slice(&0x0806u16.to_be_bytes());
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&alpha.mac);
    arp.extend_from_slice(&alpha.ipv4.expect("ipv4").octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&bravo.ipv4.expect("ipv4").octets());
    let mut wire = Wire::new();
    assert!(matches!(
        frame_in(&mut nodes, 0, &arp, &mut wire),
        Action::Deliver(_)
    ));
    assert!(wire.is_empty(), "ARP never crosses the fabric");
    let reply = nodes[0].tap.pop().expect("reply");
    assert_eq!(reply[..6], alpha.mac);
    assert_eq!(
        reply[22..28],
        bravo.mac,
        "sender hardware address is bravo's"
    );
    // An ARP packet claiming another member's address is refused (port security).
    let mut claiming = arp.clone();
    claiming[28..32].copy_from_slice(&bravo.ipv4.expect("ipv4").octets());
    assert_eq!(
        frame_in(&mut nodes, 0, &claiming, &mut wire),
        Action::Dropped(DropReason::SpoofedSource)
    );
    // For an address nobody on the fabric has: no answer.
    arp[38..42].copy_from_slice(&[198, 18, 0, 99]);
    assert_eq!(
        frame_in(&mut nodes, 0, &arp, &mut wire),
        Action::Dropped(DropReason::ArpNotForMember)
    );

    let target = bravo.ipv6.expect("ipv6");
    let mut solicitation = Vec::new();
    solicitation.extend_from_slice(&[0x33, 0x33, 0xff, 0, 0, 0x12]);
    solicitation.extend_from_slice(&alpha.mac);
    solicitation.extend_from_slice(&0x86ddu16.to_be_bytes());
    solicitation.extend_from_slice(&[0x60, 0, 0, 0, 0, 24, 58, 255]);
    solicitation.extend_from_slice(&alpha.ipv6.expect("ipv6").octets());
    solicitation.extend_from_slice(&"ff02::1:ff00:12".parse::<Ipv6Addr>().expect("ip").octets());
    solicitation.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    solicitation.extend_from_slice(&target.octets());
    assert!(matches!(
        frame_in(&mut nodes, 0, &solicitation, &mut wire),
        Action::Deliver(_)
    ));
    let advertisement = nodes[0].tap.pop().expect("advertisement");
    assert_eq!(advertisement[..6], alpha.mac);
    assert_eq!(advertisement[6..12], bravo.mac);
    assert_eq!(advertisement[14 + 40], 136);
    assert_eq!(advertisement[14 + 40 + 26..14 + 40 + 32], bravo.mac);
    // Duplicate address detection for our own address is not answered.
    solicitation[22..38].copy_from_slice(&[0; 16]);
    solicitation[62..78].copy_from_slice(&alpha.ipv6.expect("ipv6").octets());
    assert_eq!(
        frame_in(&mut nodes, 0, &solicitation, &mut wire),
        Action::Dropped(DropReason::NeighborSolicitationNotForMember)
    );
}

#[test]
fn broadcast_and_multicast_are_dropped_and_counted() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    let mut frame = lan_ping(&nodes, 0, 1);
    let mut wire = Wire::new();
    frame[..6].copy_from_slice(&[0xff; 6]);
    assert_eq!(
        frame_in(&mut nodes, 0, &frame, &mut wire),
        Action::Dropped(DropReason::Broadcast)
    );
    frame[..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 1]);
    assert_eq!(
        frame_in(&mut nodes, 0, &frame, &mut wire),
        Action::Dropped(DropReason::Multicast)
    );
    frame[..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    assert_eq!(
        frame_in(&mut nodes, 0, &frame, &mut wire),
        Action::Dropped(DropReason::UnknownMac)
    );
    frame[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    assert_eq!(
        frame_in(&mut nodes, 0, &frame, &mut wire),
        Action::Dropped(DropReason::NotIp)
    );
    assert!(wire.is_empty());
    let drops = nodes[0].core.drops();
    assert_eq!(drops.of(DropReason::Broadcast), 1);
    assert_eq!(drops.of(DropReason::Multicast), 1);
    assert_eq!(drops.total(), 4);
    // A broadcast sent inside a tunnel is dropped at the receiver too.
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let lan_broadcast = Ipv4Addr::new(198, 18, 0, 255);
    let frame = ping_frame(
        &nodes[0].spec,
        nodes[1].spec.mac,
        nodes[0].spec.ipv4.expect("ipv4"),
        lan_broadcast,
    );
    frame_in(&mut nodes, 0, &frame, &mut wire);
    assert_eq!(run(&mut nodes, &mut wire), [DropReason::Broadcast]);
}

#[test]
fn a_replayed_datagram_is_dropped() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let frame = lan_ping(&nodes, 0, 1);
    let mut wire = Wire::new();
    frame_in(&mut nodes, 0, &frame, &mut wire);
    let captured = wire.front().cloned().expect("data datagram");
    assert!(run(&mut nodes, &mut wire).is_empty());
    wire.push_back(captured);
    assert_eq!(run(&mut nodes, &mut wire), [DropReason::Replayed]);
    assert_eq!(nodes[1].tap.len(), 2);
}

#[test]
fn the_endpoint_follows_the_last_authenticated_datagram() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let roamed = SocketAddr::from((Ipv4Addr::new(198, 18, 2, 11), 40000));
    nodes[0].address = roamed;
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert_eq!(nodes[1].core.peer_status()[0].endpoint, Some(roamed));
    // A forged datagram from elsewhere does not move it.
    let mut wire = Wire::new();
    let forged = SocketAddr::from((Ipv4Addr::new(198, 18, 3, 3), 1));
    let mut bogus = vec![4u8, 0, 0, 0];
    bogus.extend_from_slice(&[0u8; 60]);
    wire.push_back((forged, nodes[1].address, bogus));
    assert!(!run(&mut nodes, &mut wire).is_empty());
    assert_eq!(nodes[1].core.peer_status()[0].endpoint, Some(roamed));
    assert!(ping(&mut nodes, 1, 0).is_empty());
    assert_eq!(nodes[0].tap.len(), 1, "bravo answers at the new address");
}

#[test]
fn a_handshake_from_a_key_outside_the_fabric_is_refused() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    // An intruder that knows bravo's key and address, but is not in bravo's fabric.
    let (intruder, key) = spec("intruder", 99, 99);
    let mut core = Core::new(
        OwnNode {
            spec: intruder.clone(),
            secret: key.secret(),
        },
        None,
        None,
    );
    core.apply_peers(
        intruder.clone(),
        vec![PeerConfig {
            spec: nodes[1].spec.clone(),
            endpoint: Some(nodes[1].address),
        }],
    );
    nodes.push(Node {
        core,
        spec: intruder,
        address: underlay(99),
        tap: Vec::new(),
    });
    assert_eq!(ping(&mut nodes, 2, 1), [DropReason::UnknownPeer]);
    assert!(nodes[1].tap.is_empty());
}

#[test]
fn a_member_without_endpoint_waits_to_be_heard_from() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    let (alpha, key) = spec("alpha", 11, 11);
    let mut core = Core::new(
        OwnNode {
            spec: alpha.clone(),
            secret: key.secret(),
        },
        None,
        None,
    );
    core.apply_peers(
        alpha,
        vec![PeerConfig {
            spec: nodes[1].spec.clone(),
            endpoint: None,
        }],
    );
    nodes[0].core = core;
    assert_eq!(ping(&mut nodes, 0, 1), []);
    assert_eq!(
        nodes[0].core.drops().of(DropReason::NoEndpoint),
        1,
        "nothing to send to"
    );
    // Bravo connects out; alpha learns where it is and can answer.
    assert!(ping(&mut nodes, 1, 0).is_empty());
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert_eq!(nodes[1].tap.len(), 1);
}

#[test]
fn a_fabric_change_keeps_unchanged_sessions_and_rekeys_changed_ones() {
    let mut nodes = fabric(&["alpha", "bravo", "charlie"]);
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert!(ping(&mut nodes, 0, 2).is_empty());
    let own = nodes[0].spec.clone();
    let bravo = PeerConfig {
        spec: nodes[1].spec.clone(),
        endpoint: Some(nodes[1].address),
    };
    let (delta, _) = spec("delta", 44, 44);
    let changes = nodes[0].core.apply_peers(
        own.clone(),
        vec![
            bravo.clone(),
            PeerConfig {
                spec: delta,
                endpoint: None,
            },
        ],
    );
    assert_eq!(changes.added, ["delta"]);
    assert_eq!(changes.removed, ["charlie"]);
    assert!(changes.rekeyed.is_empty() && changes.updated.is_empty());
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert_eq!(nodes[0].core.handshakes(), 2, "bravo's session survived");
    assert_eq!(
        ping(&mut nodes, 0, 2),
        [],
        "charlie is gone: its MAC is unknown"
    );
    assert_eq!(nodes[0].core.drops().of(DropReason::UnknownMac), 1);
    // Bravo re-keyed in the fabric: a new tunnel, which bravo (old key) cannot answer.
    let mut rekeyed = bravo;
    rekeyed.spec.public_key = PrivateKey::from_bytes([77; 32]).public_key();
    let changes = nodes[0].core.apply_peers(own, vec![rekeyed]);
    assert_eq!(changes.rekeyed, ["bravo"]);
    assert_eq!(nodes[0].core.peer_status()[0].counters.sent_packets, 0);
}

/// xorshift64*: a small deterministic generator for the bounded robustness runs.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn garbage_and_mutated_datagrams_and_frames_never_panic() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    // Real messages to mutate: a handshake initiation and response from a second pair with the
    // same keys, and a data packet of the established session.
    let mut samples = Vec::new();
    let mut twins = fabric(&["alpha", "bravo"]);
    let mut wire = Wire::new();
    let frame = lan_ping(&nodes, 0, 1);
    frame_in(&mut twins, 0, &frame, &mut wire);
    samples.push(wire[0].2.clone());
    let mut out = vec![0u8; BUFFER_SIZE];
    let alpha_address = twins[0].address;
    if let Action::Transmit { datagram, .. } =
        twins[1]
            .core
            .handle_datagram(alpha_address, &wire[0].2, &mut out)
    {
        samples.push(datagram.to_vec());
    }
    wire.clear();
    assert!(ping(&mut nodes, 0, 1).is_empty());
    frame_in(&mut nodes, 0, &frame, &mut wire);
    samples.extend(wire.iter().map(|(_, _, datagram)| datagram.clone()));
    assert_eq!(samples.len(), 3);
    let mut random = Random(0x5eed_f00d_dead_beef);
    let from = nodes[0].address;
    for round in 0..20_000 {
        let datagram = if round % 2 == 0 {
            let length = random.below(200);
            let mut bytes: Vec<u8> = (0..length).map(|_| random.next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                *first = (random.below(6)) as u8;
            }
            bytes
        } else {
            let mut bytes = samples[random.below(samples.len())].clone();
            for _ in 0..1 + random.below(4) {
                let position = random.below(bytes.len());
                bytes[position] ^= 1 << random.below(8);
            }
            if random.below(4) == 0 {
                bytes.truncate(random.below(bytes.len() + 1));
            }
            bytes
        };
        let _ = nodes[1].core.handle_datagram(from, &datagram, &mut out);
        while nodes[1].core.poll_transmit(&mut out).is_some() {}
        let mut frame = frame.clone();
        let position = random.below(frame.len());
        frame[position] = random.next() as u8;
        frame.truncate(random.below(frame.len() + 1));
        let _ = nodes[0].core.handle_frame(&frame, &mut out);
    }
    assert!(nodes[1].core.drops().total() > 10_000);
    // Still working afterwards.
    nodes[1].tap.clear();
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert_eq!(nodes[1].tap.len(), 1);
}

#[test]
fn timers_send_a_persistent_keepalive_to_the_endpoint() {
    let (alpha, key) = spec("alpha", 11, 11);
    let (bravo, _) = spec("bravo", 12, 12);
    let mut core = Core::new(
        OwnNode {
            spec: alpha.clone(),
            secret: key.secret(),
        },
        None,
        Some(1),
    );
    core.apply_peers(
        alpha,
        vec![PeerConfig {
            spec: bravo,
            endpoint: Some(underlay(12)),
        }],
    );
    let mut out = vec![0u8; BUFFER_SIZE];
    let mut sent = Vec::new();
    let started = Instant::now();
    // boringtun reads its own clock: tick until the one-second keepalive is due (bounded).
    for _ in 0..12 {
        core.handle_tick(Instant::now(), &mut out, |to, datagram| {
            sent.push((to, datagram.len()));
        });
        if !sent.is_empty() {
            break;
        }
        std::thread::sleep(TIMER_TICK);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    // Without a session, the keepalive starts a handshake to the configured endpoint.
    assert_eq!(sent.first(), Some(&(underlay(12), 148)));
}

#[test]
fn a_handshake_flood_is_answered_with_cookies() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    let mut out = vec![0u8; BUFFER_SIZE];
    let mut cookies = 0;
    let from = nodes[0].address;
    // Fresh initiators with alpha's key: each initiation is valid and new. Every one is counted
    // twice, so the limit is reached after HANDSHAKES_PER_SECOND of them (bounded loop).
    for _ in 0..HANDSHAKES_PER_SECOND + 20 {
        let mut twins = fabric(&["alpha", "bravo"]);
        let mut wire = Wire::new();
        let frame = lan_ping(&twins, 0, 1);
        frame_in(&mut twins, 0, &frame, &mut wire);
        let (_, _, initiation) = wire.pop_front().expect("initiation");
        if let Action::Transmit { datagram, .. } =
            nodes[1].core.handle_datagram(from, &initiation, &mut out)
            && datagram.first() == Some(&3)
        {
            assert_eq!(datagram.len(), 64, "a cookie reply");
            cookies += 1;
        }
    }
    assert!(cookies >= 10, "{cookies} cookie replies");
    // The limiter forgets the flood once reset; a second later handshakes pass again.
    std::thread::sleep(RATE_LIMIT_RESET);
    nodes[1]
        .core
        .handle_tick(Instant::now(), &mut out, |_, _| {});
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert_eq!(nodes[1].tap.len(), 1);
}

#[test]
fn drops_the_driver_decides_on_are_counted_with_the_others() {
    let nodes = fabric(&["alpha", "bravo"]);
    nodes[0].core.count_drop(DropReason::Malformed);
    nodes[0].core.count_drop(DropReason::Malformed);
    assert_eq!(nodes[0].core.drops().of(DropReason::Malformed), 2);
    assert_eq!(nodes[1].core.drops().of(DropReason::Malformed), 0);
}

/// `ping_frame` grown to `length` bytes of IP packet, with DF as given; checksums are not
/// looked at on the way out.
fn large_frame(
    nodes: &[Node],
    from: usize,
    to: usize,
    length: usize,
    dont_fragment: bool,
) -> Vec<u8> {
    let mut frame = lan_ping(nodes, from, to);
    frame.resize(ETHERNET_HEADER + length, 0x5a);
    frame[14 + 2..14 + 4].copy_from_slice(&(length as u16).to_be_bytes());
    frame[14 + 6] = if dont_fragment { 0x40 } else { 0 };
    frame
}

#[test]
fn a_packet_larger_than_the_tunnel_mtu_is_answered_with_fragmentation_needed() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    nodes[0].core.set_mtu(1420, None);
    assert!(ping(&mut nodes, 0, 1).is_empty(), "session up");
    let mut wire = Wire::new();
    // Exactly the MTU passes.
    let fits = large_frame(&nodes, 0, 1, 1420, true);
    assert!(matches!(
        frame_in(&mut nodes, 0, &fits, &mut wire),
        Action::Transmit { .. }
    ));
    let too_big = large_frame(&nodes, 0, 1, 1421, true);
    assert_eq!(
        frame_in(&mut nodes, 0, &too_big, &mut wire),
        Action::Deliver(&[])
    );
    assert_eq!(wire.len(), 1, "only the packet that fits left");
    let answer = nodes[0].tap.last().expect("an ICMP answer on the TAP");
    assert_eq!(answer[..6], nodes[0].spec.mac, "to the sender");
    assert_eq!(
        answer[6..12],
        nodes[1].spec.mac,
        "from the member it was for"
    );
    let ip = &answer[14..];
    assert_eq!(ip[12..16], nodes[1].spec.ipv4.expect("ipv4").octets());
    assert_eq!((ip[20], ip[21]), (3, 4));
    assert_eq!(u16::from_be_bytes([ip[26], ip[27]]), 1420);
    assert_eq!(nodes[0].core.drops().of(DropReason::ExceedsMtu), 1);
    assert_eq!(nodes[0].core.too_big_answers(), 1);
    // Without DF: dropped and counted, not answered.
    let no_df = large_frame(&nodes, 0, 1, 1500, false);
    assert_eq!(
        frame_in(&mut nodes, 0, &no_df, &mut wire),
        Action::Dropped(DropReason::ExceedsMtu)
    );
    assert_eq!(nodes[0].core.drops().of(DropReason::ExceedsMtu), 2);
}

#[test]
fn packet_too_big_answers_are_rate_limited_per_tick() {
    let mut nodes = fabric(&["alpha", "bravo"]);
    nodes[0].core.set_mtu(1420, None);
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let too_big = large_frame(&nodes, 0, 1, 1500, true);
    let mut wire = Wire::new();
    let mut answered = 0;
    for _ in 0..100 {
        if frame_in(&mut nodes, 0, &too_big, &mut wire) == Action::Deliver(&[]) {
            answered += 1;
        }
    }
    assert_eq!(answered, TOO_BIG_PER_TICK);
    assert_eq!(nodes[0].core.drops().of(DropReason::ExceedsMtu), 100);
    assert!(wire.is_empty(), "nothing too big crossed the fabric");
    let mut out = vec![0u8; BUFFER_SIZE];
    nodes[0]
        .core
        .handle_tick(Instant::now(), &mut out, |_, _| {});
    assert_eq!(
        frame_in(&mut nodes, 0, &too_big, &mut wire),
        Action::Deliver(&[])
    );
}

/// A TCP SYN from node `from` to node `to` announcing MSS 8960, checksum complete.
fn syn_frame(nodes: &[Node], from: usize, to: usize) -> Vec<u8> {
    let mut frame = lan_ping(nodes, from, to);
    frame.truncate(14 + 20);
    frame[14 + 9] = 6;
    frame[14 + 2..14 + 4].copy_from_slice(&44u16.to_be_bytes());
    // Ports, sequence, acknowledgement, data offset 6 words, SYN, window, checksum, urgent,
    // MSS option.
    frame.extend_from_slice(&[
        0xc3, 0x50, 0, 179, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff,
    ]);
    frame.extend_from_slice(&[0, 0, 0, 0, 2, 4, 0x23, 0x00]);
    let sum = tcp_sum(&frame[14..]);
    frame[14 + 36..14 + 38].copy_from_slice(&(!sum).to_be_bytes());
    frame
}

/// The folded one's complement sum of an IPv4 TCP segment with its pseudo-header; 0xffff
/// when its checksum verifies.
fn tcp_sum(packet: &[u8]) -> u16 {
    let mut bytes = packet[12..20].to_vec();
    bytes.extend_from_slice(&[0, 6]);
    bytes.extend_from_slice(&((packet.len() - 20) as u16).to_be_bytes());
    bytes.extend_from_slice(&packet[20..]);
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn syn_mss_is_clamped_in_both_directions_with_valid_checksums() {
    // Clamping on the sender only: the SYN leaves clamped.
    let mut nodes = fabric(&["alpha", "bravo"]);
    nodes[0]
        .core
        .set_mtu(1420, Some(mtu::MssLimit::for_mtu(1420)));
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let syn = syn_frame(&nodes, 0, 1);
    assert_eq!(tcp_sum(&syn[14..]), 0xffff);
    let mut wire = Wire::new();
    frame_in(&mut nodes, 0, &syn, &mut wire);
    assert!(run(&mut nodes, &mut wire).is_empty());
    let arrived = nodes[1].tap.last().expect("delivered");
    assert_eq!(
        u16::from_be_bytes([arrived[14 + 42], arrived[14 + 43]]),
        1380
    );
    assert_eq!(tcp_sum(&arrived[14..]), 0xffff, "checksum still verifies");
    // Clamping on the receiver only: the SYN arriving from the fabric is clamped.
    let mut nodes = fabric(&["alpha", "bravo"]);
    nodes[1]
        .core
        .set_mtu(1420, Some(mtu::MssLimit::fixed(1200)));
    assert!(ping(&mut nodes, 0, 1).is_empty());
    let syn = syn_frame(&nodes, 0, 1);
    frame_in(&mut nodes, 0, &syn, &mut wire);
    assert!(run(&mut nodes, &mut wire).is_empty());
    let arrived = nodes[1].tap.last().expect("delivered");
    assert_eq!(
        u16::from_be_bytes([arrived[14 + 42], arrived[14 + 43]]),
        1200
    );
    assert_eq!(tcp_sum(&arrived[14..]), 0xffff);
    // The rest of the segment is untouched.
    assert_eq!(arrived[14 + 20..14 + 36], syn[14 + 20..14 + 36]);
}

#[test]
fn workers_share_one_core_and_each_member_counts_its_own_packets() {
    let mut nodes = fabric(&["alpha", "bravo", "charlie"]);
    assert!(ping(&mut nodes, 0, 1).is_empty());
    assert!(ping(&mut nodes, 0, 2).is_empty());
    let frames = [lan_ping(&nodes, 0, 1), lan_ping(&nodes, 0, 2)];
    let core = &nodes[0].core;
    std::thread::scope(|scope| {
        for frame in &frames {
            scope.spawn(move || {
                let mut out = vec![0u8; BUFFER_SIZE];
                for _ in 0..2_000 {
                    assert!(matches!(
                        core.handle_frame(frame, &mut out),
                        Action::Transmit { .. }
                    ));
                }
            });
        }
    });
    let status = core.peer_status();
    assert_eq!(status[0].spec.name, "bravo");
    assert_eq!(status[0].counters.sent_packets, 2_001);
    assert_eq!(status[1].counters.sent_packets, 2_001);
    assert_eq!(core.drops().total(), 0);
}
