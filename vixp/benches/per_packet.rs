//! Criterion micro benchmarks of the per-packet path on one core, no I/O: an Ethernet frame
//! into one node's core and the encrypted datagram out (`encrypt`), and that datagram into the
//! other node's core and the frame out again (`round_trip`), for 64-byte and 1420-byte IP
//! packets, in batches of 1 and 64 (a batch runs under one read lock of the shared core, as a
//! worker runs one TAP read batch or one `recvmmsg`). Throughput is in packets: criterion's
//! "elem/s" is packets per second per core.
//!
//! `cargo bench -p vixp --bench per_packet` (not run by `cargo test`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::RwLock;

use criterion::{BenchmarkId, Criterion, Throughput};
use support::udp_frame;
use vixp::core::{Action, BUFFER_SIZE, Core, PeerSpec};

mod support;

/// IP packet sizes measured.
const SIZES: [usize; 2] = [64, 1420];
/// Packets per batch measured.
const BATCHES: [usize; 2] = [1, 64];

/// The shared set-up's pair, each core behind the lock a worker reads it through.
struct Pair {
    sender: RwLock<Core>,
    receiver: RwLock<Core>,
    alpha: PeerSpec,
    bravo: PeerSpec,
    alpha_address: SocketAddr,
}

fn pair() -> Pair {
    let support::Pair {
        sender,
        receiver,
        alpha,
        bravo,
        alpha_address,
    } = support::pair();
    Pair {
        sender: RwLock::new(sender),
        receiver: RwLock::new(receiver),
        alpha,
        bravo,
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
