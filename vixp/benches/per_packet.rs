//! Criterion micro benchmarks of the per-packet path on one core, no I/O: an Ethernet frame
//! into one node's core and the encrypted datagram out (`encrypt`), and that datagram into the
//! other node's core and the frame out again (`round_trip`), for 64-byte and 1420-byte IP
//! packets, in batches of 1 and 64 (a batch runs under one read lock of the shared core, as a
//! worker runs one TAP read batch or one `recvmmsg`). Throughput is in packets: criterion's
//! "elem/s" is packets per second per core.
//!
//! `cargo bench -p vixp --bench per_packet` (not run by `cargo test`).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::RwLock;

use criterion::{BenchmarkId, Criterion, Throughput};
use vixp::core::{Action, BUFFER_SIZE, Core, OwnNode, PeerConfig, PeerSpec, mac_for_key};
use vixp::keys::PrivateKey;

/// IP packet sizes measured.
const SIZES: [usize; 2] = [64, 1420];
/// Packets per batch measured.
const BATCHES: [usize; 2] = [1, 64];

fn spec(name: &str, host: u8) -> (PeerSpec, PrivateKey) {
    let key = PrivateKey::from_bytes([host; 32]);
    let public_key = key.public_key();
    let spec = PeerSpec {
        name: name.to_owned(),
        public_key,
        mac: mac_for_key(&public_key),
        ipv4: Some(Ipv4Addr::new(198, 18, 0, host)),
        ipv6: None,
        endpoint: None,
    };
    (spec, key)
}

fn core_for(own: &(PeerSpec, PrivateKey), other: &PeerSpec, other_address: SocketAddr) -> Core {
    let mut core = Core::new(
        OwnNode {
            spec: own.0.clone(),
            secret: own.1.secret(),
        },
        Some(Ipv4Addr::new(198, 18, 0, 255)),
        None,
    );
    core.set_mtu(1420, None);
    core.apply_peers(
        own.0.clone(),
        vec![PeerConfig {
            spec: other.clone(),
            endpoint: Some(other_address),
        }],
    );
    core
}

/// An Ethernet frame with an IPv4 UDP packet of `ip_length` bytes from alpha to bravo.
fn udp_frame(alpha: &PeerSpec, bravo: &PeerSpec, ip_length: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + ip_length);
    frame.extend_from_slice(&bravo.mac);
    frame.extend_from_slice(&alpha.mac);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&(ip_length as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    frame.extend_from_slice(&Ipv4Addr::new(198, 18, 0, 11).octets());
    frame.extend_from_slice(&Ipv4Addr::new(198, 18, 0, 12).octets());
    frame.extend_from_slice(&[0x30, 0x39, 0x14, 0x51]);
    frame.extend_from_slice(&((ip_length - 20) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.resize(14 + ip_length, 0xa5);
    frame
}

/// Two cores with a session between them (handshake done in memory).
struct Pair {
    sender: RwLock<Core>,
    receiver: RwLock<Core>,
    alpha: PeerSpec,
    bravo: PeerSpec,
    alpha_address: SocketAddr,
}

fn pair() -> Pair {
    let alpha = spec("alpha", 11);
    let bravo = spec("bravo", 12);
    let alpha_address = SocketAddr::from((Ipv4Addr::new(198, 18, 1, 11), 51820));
    let bravo_address = SocketAddr::from((Ipv4Addr::new(198, 18, 1, 12), 51820));
    let sender = core_for(&alpha, &bravo.0, bravo_address);
    let receiver = core_for(&bravo, &alpha.0, alpha_address);
    let mut datagram = vec![0u8; BUFFER_SIZE];
    let mut frame_out = vec![0u8; BUFFER_SIZE];
    let mut reply = vec![0u8; BUFFER_SIZE];
    let first = udp_frame(&alpha.0, &bravo.0, 64);
    let Action::Transmit { datagram: init, .. } = sender.handle_frame(&first, &mut datagram) else {
        panic!("no handshake initiation");
    };
    let Action::Transmit {
        datagram: response, ..
    } = receiver.handle_datagram(alpha_address, init, &mut frame_out)
    else {
        panic!("no handshake response");
    };
    let response = response.to_vec();
    let _ = sender.handle_datagram(bravo_address, &response, &mut reply);
    while let Some((_, queued)) = sender.poll_transmit(&mut datagram) {
        let queued = queued.to_vec();
        let _ = receiver.handle_datagram(alpha_address, &queued, &mut frame_out);
    }
    Pair {
        sender: RwLock::new(sender),
        receiver: RwLock::new(receiver),
        alpha: alpha.0,
        bravo: bravo.0,
        alpha_address,
    }
}

/// Frame in, encrypted datagram out.
fn encrypt(c: &mut Criterion) {
    let pair = pair();
    let mut group = c.benchmark_group("encrypt");
    let mut datagram = vec![0u8; BUFFER_SIZE];
    for size in SIZES {
        let frame = udp_frame(&pair.alpha, &pair.bravo, size);
        for batch in BATCHES {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(format!("{size}B"), batch), |bench| {
                bench.iter(|| {
                    let core = pair.sender.read().expect("core");
                    for _ in 0..batch {
                        match core.handle_frame(black_box(&frame), &mut datagram) {
                            Action::Transmit { datagram, .. } => {
                                black_box(datagram);
                            }
                            other => panic!("not sent: {other:?}"),
                        }
                    }
                });
            });
        }
    }
    group.finish();
}

/// Frame in, datagram out, datagram into the other core, frame out.
fn round_trip(c: &mut Criterion) {
    let pair = pair();
    let mut group = c.benchmark_group("round_trip");
    let mut datagrams: Vec<Vec<u8>> = (0..64).map(|_| vec![0u8; BUFFER_SIZE]).collect();
    let mut lengths = [0usize; 64];
    let mut frame_out = vec![0u8; BUFFER_SIZE];
    for size in SIZES {
        let frame = udp_frame(&pair.alpha, &pair.bravo, size);
        for batch in BATCHES {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(format!("{size}B"), batch), |bench| {
                bench.iter(|| {
                    let sender = pair.sender.read().expect("core");
                    for (datagram, length) in datagrams.iter_mut().zip(&mut lengths).take(batch) {
                        match sender.handle_frame(&frame, datagram) {
                            Action::Transmit { datagram, .. } => *length = datagram.len(),
                            other => panic!("not sent: {other:?}"),
                        }
                    }
                    drop(sender);
                    let receiver = pair.receiver.read().expect("core");
                    for (datagram, length) in datagrams.iter().zip(&lengths).take(batch) {
                        match receiver.handle_datagram(
                            pair.alpha_address,
                            &datagram[..*length],
                            &mut frame_out,
                        ) {
                            Action::Deliver(delivered) => {
                                assert_eq!(delivered.len(), frame.len());
                            }
                            other => panic!("not delivered: {other:?}"),
                        }
                    }
                });
            });
        }
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    encrypt(&mut criterion);
    round_trip(&mut criterion);
    criterion.final_summary();
}
