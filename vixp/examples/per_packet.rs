//! Micro benchmark of the per-packet path on one core, no I/O: an Ethernet frame into one
//! node's core, the encrypted datagram into the other's, the frame out again (compared with
//! the one sent), for 64-byte and 1420-byte IP packets; and the TAP offload path: a 64 KiB TCP
//! segment split, encrypted, decrypted and coalesced again. Prints packets per second. A fixed
//! number of packets per case, so it always ends.
//!
//! `cargo run --release -p vixp --example per_packet`

use std::time::Instant;

use support::udp_frame;
use vixp::core::coalesce::Coalescer;
use vixp::core::offload::{GSO_TCPV4, VIRTIO_NET_NEEDS_CHECKSUM, VirtioHeader, split};
use vixp::core::{Action, BUFFER_SIZE, PeerSpec};

#[path = "../benches/support/mod.rs"]
mod support;

/// Packets per case.
const PACKETS: usize = 300_000;
/// Large segments in the offload case.
const LARGE_SEGMENTS: usize = 6_000;
/// Payload bytes per frame in the offload case (an MTU of 1420 less IPv4 and TCP headers).
const MSS: usize = 1380;

/// A large TCP segment (before its virtio-net header is applied) of `payload` bytes.
fn tcp_large_segment(alpha: &PeerSpec, bravo: &PeerSpec, payload: usize) -> Vec<u8> {
    let mut frame = udp_frame(alpha, bravo, 40);
    frame[14 + 9] = 6;
    frame.truncate(34);
    frame.extend_from_slice(&[0x30, 0x39, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10]);
    frame.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    frame.extend((0..payload).map(|byte| byte as u8));
    frame
}

fn main() {
    let support::Pair {
        sender,
        receiver,
        alpha,
        bravo,
        alpha_address,
    } = support::pair();
    let mut datagram = vec![0u8; BUFFER_SIZE];
    let mut frame_out = vec![0u8; BUFFER_SIZE];

    println!("per-packet path on one core, frame -> datagram -> frame, {PACKETS} packets each");
    for ip_length in [64usize, 1420] {
        let frame = udp_frame(&alpha, &bravo, ip_length);
        let started = Instant::now();
        for _ in 0..PACKETS {
            let length = match sender.handle_frame(&frame, &mut datagram) {
                Action::Transmit { datagram, .. } => datagram.len(),
                other => panic!("not sent: {other:?}"),
            };
            match receiver.handle_datagram(alpha_address, &datagram[..length], &mut frame_out) {
                Action::Deliver(delivered) => assert_eq!(delivered, &frame[..]),
                other => panic!("not delivered: {other:?}"),
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = PACKETS as f64 / seconds;
        println!(
            "  {ip_length:>5} B IP packets: {:>6.3} M packets/s, {:>6.2} Gbit/s of IP packets",
            rate / 1e6,
            rate * ip_length as f64 * 8.0 / 1e9
        );
    }

    // TAP offload path: 64 KiB segment -> split -> encrypt -> decrypt -> coalesce.
    let payload = MSS * 47;
    let large = tcp_large_segment(&alpha, &bravo, payload);
    let header = VirtioHeader {
        flags: VIRTIO_NET_NEEDS_CHECKSUM,
        gso_type: GSO_TCPV4,
        header_length: 54,
        gso_size: MSS as u16,
        checksum_start: 34,
        checksum_offset: 16,
    };
    let mut segment = vec![0u8; BUFFER_SIZE];
    let mut coalescer = Coalescer::new();
    let mut working = large.clone();
    let started = Instant::now();
    let mut frames = 0usize;
    for number in 0..LARGE_SEGMENTS {
        working.copy_from_slice(&large);
        // Consecutive sequence numbers, as a real flow has.
        let sequence = 1u32.wrapping_add((number * payload) as u32);
        working[38..42].copy_from_slice(&sequence.to_be_bytes());
        split(&header, &mut working, &mut segment, |frame| {
            let length = match sender.handle_frame(frame, &mut datagram) {
                Action::Transmit { datagram, .. } => datagram.len(),
                other => panic!("not sent: {other:?}"),
            };
            match receiver.handle_datagram(alpha_address, &datagram[..length], &mut frame_out) {
                Action::Deliver(delivered) => {
                    if !coalescer.push(delivered) {
                        let _ = coalescer.take();
                        assert!(coalescer.push(delivered), "a TCP segment must coalesce");
                    }
                }
                other => panic!("not delivered: {other:?}"),
            }
            frames += 1;
        })
        .expect("split");
    }
    let _ = coalescer.take();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  TCP via TAP offloads ({MSS} B segments of 64 KiB frames): {:.3} M frames/s, {:.2} Gbit/s of payload",
        frames as f64 / seconds / 1e6,
        (LARGE_SEGMENTS * payload) as f64 * 8.0 / seconds / 1e9
    );
}
