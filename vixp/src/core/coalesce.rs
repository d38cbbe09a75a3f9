//! Receive coalescing for the TAP device (the kernel's TCP and UDP GRO rules, as wireguard-go
//! applies them to its TUN): consecutive decrypted segments of one TCP flow, or consecutive
//! datagrams of one UDP flow when the TAP takes UDP segmentation offload (USO, Linux 6.2), become
//! one large frame with a virtio-net header, so the kernel's stack handles one packet instead of
//! dozens. Checks every
//! length; allocates only its buffer, once. Must not decide whether a frame may reach the LAN
//! (the core has done that before a frame gets here).

use crate::core::offload::{
    GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VIRTIO_NET_HEADER, VIRTIO_NET_NEEDS_CHECKSUM,
    VirtioHeader, checksum_add, checksum_fold,
};
use crate::core::packet::{ETHERNET_HEADER, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Largest coalesced frame: an IP packet of at most 65,535 bytes and its Ethernet header.
pub const MAX_COALESCED: usize = ETHERNET_HEADER + 65_535;
/// IP protocol number of TCP.
const PROTOCOL_TCP: u8 = 6;
/// IP protocol number of UDP.
const PROTOCOL_UDP: u8 = 17;
/// Most UDP datagrams in one coalesced frame (the kernel's `UDP_MAX_SEGMENTS` is larger; 64 is
/// what one UDP GRO receive holds, too).
const MAX_UDP_SEGMENTS: usize = 64;
/// TCP flag ACK.
const TCP_ACK: u8 = 0x10;
/// TCP flag PSH.
const TCP_PSH: u8 = 0x08;

/// The TCP segment or UDP datagram a frame carries, if it may be coalesced at all: IPv4
/// without options or fragmentation, or IPv6 with TCP or UDP right after the fixed header; for
/// TCP only ACK and PSH set; a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    ipv4: bool,
    /// TCP (else UDP).
    tcp: bool,
    /// Start of the TCP header in the frame.
    transport: usize,
    /// Start of the payload in the frame.
    payload: usize,
    sequence: u32,
    push: bool,
}

impl Segment {
    /// The segment of `frame`; UDP datagrams only when `udp`.
    fn parse(frame: &[u8], udp: bool) -> Option<Segment> {
        let ip = ETHERNET_HEADER;
        let coalescable =
            |protocol: u8| protocol == PROTOCOL_TCP || (udp && protocol == PROTOCOL_UDP);
        let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        let (ipv4, transport, tcp) = match ethertype {
            ETHERTYPE_IPV4 => {
                let header = frame.get(ip..ip + 20)?;
                let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
                let fragment = u16::from_be_bytes([header[6], header[7]]);
                // Version 4 with no options, no more fragments, offset 0 (RFC 791 3.1).
                if header[0] != 0x45
                    || fragment & 0x3fff != 0
                    || !coalescable(header[9])
                    || total != frame.len() - ip
                {
                    return None;
                }
                (true, ip + 20, header[9] == PROTOCOL_TCP)
            }
            ETHERTYPE_IPV6 => {
                let header = frame.get(ip..ip + 40)?;
                let payload = usize::from(u16::from_be_bytes([header[4], header[5]]));
                if header[0] >> 4 != 6
                    || !coalescable(header[6])
                    || payload != frame.len() - ip - 40
                {
                    return None;
                }
                (false, ip + 40, header[6] == PROTOCOL_TCP)
            }
            _ => return None,
        };
        if !tcp {
            // RFC 768: the length field covers header and data.
            let header = frame.get(transport..transport + 8)?;
            let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if length != frame.len() - transport || length <= 8 {
                return None;
            }
            return Some(Segment {
                ipv4,
                tcp: false,
                transport,
                payload: transport + 8,
                sequence: 0,
                push: false,
            });
        }
        let tcp = frame.get(transport..transport + 20)?;
        let header_length = usize::from(tcp[12] >> 4) * 4;
        let flags = tcp[13];
        if header_length < 20 || flags & !(TCP_ACK | TCP_PSH) != 0 || flags & TCP_ACK == 0 {
            return None;
        }
        let payload = transport + header_length;
        if payload >= frame.len() {
            return None;
        }
        Some(Segment {
            ipv4,
            tcp: true,
            transport,
            payload,
            sequence: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            push: flags & TCP_PSH != 0,
        })
    }
}

/// One large frame being built from consecutive segments of one flow.
pub struct Coalescer {
    /// Virtio-net header room, then the frame.
    buffer: Vec<u8>,
    /// Bytes of the frame so far (after the header room).
    length: usize,
    /// The first segment's layout.
    head: Option<Segment>,
    /// Payload bytes per segment (the first one's).
    segment_size: usize,
    /// Sequence number the next segment must have.
    next_sequence: u32,
    /// Segments so far.
    count: usize,
    /// A shorter or pushed segment ended the run.
    closed: bool,
    /// UDP datagrams are coalesced too (the TAP takes USO).
    udp: bool,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new()
    }
}

impl Coalescer {
    /// An empty coalescer with its buffer.
    pub fn new() -> Coalescer {
        Coalescer {
            buffer: vec![0u8; VIRTIO_NET_HEADER + MAX_COALESCED],
            length: 0,
            head: None,
            segment_size: 0,
            next_sequence: 0,
            count: 0,
            closed: false,
            udp: false,
        }
    }

    /// Coalesces UDP datagrams too (into `VIRTIO_NET_HDR_GSO_UDP_L4` frames); only for a TAP
    /// device that accepted UDP segmentation offload (`TUN_F_USO4`/`TUN_F_USO6`).
    pub fn set_udp(&mut self, enabled: bool) {
        self.udp = enabled;
    }

    /// Whether a frame is waiting.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Segments in the frame being built.
    pub fn segments(&self) -> usize {
        self.count
    }

    /// Whether a frame is waiting that a next segment could still extend (no push, no
    /// shorter segment, room left). A frame that cannot grow is better written at once.
    pub fn is_open(&self) -> bool {
        self.head.is_some_and(|head| {
            !self.closed
                && self.length + self.segment_size <= MAX_COALESCED
                && (head.tcp || self.count < MAX_UDP_SEGMENTS)
        })
    }

    /// Whether `frame` could be coalesced at all (start a run).
    pub fn coalescable(&self, frame: &[u8]) -> bool {
        Segment::parse(frame, self.udp).is_some()
    }

    /// Whether `frame` may belong to the flow of the waiting run, in which case the run must
    /// reach the kernel first. `false` only when it certainly does not: no run, another
    /// ethertype, other addresses, another IP protocol or other ports. A frame of another flow
    /// may go ahead of the run (as the kernel's GRO lets a packet it cannot merge pass the
    /// flows it holds); within a flow nothing is reordered.
    pub fn may_be_of_run(&self, frame: &[u8]) -> bool {
        let Some(head) = self.head else {
            return false;
        };
        let Some(run) = self
            .buffer
            .get(VIRTIO_NET_HEADER..VIRTIO_NET_HEADER + head.payload)
        else {
            return true;
        };
        let ip = ETHERNET_HEADER;
        let protocol = if head.tcp { PROTOCOL_TCP } else { PROTOCOL_UDP };
        let same = |range: std::ops::Range<usize>| same_bytes(frame, range.start, run, range);
        if !same(12..14) {
            return false;
        }
        if head.ipv4 {
            if !same(ip + 12..ip + 20) || frame.get(ip + 9).is_some_and(|&p| p != protocol) {
                return false;
            }
            let Some(&first) = frame.get(ip) else {
                return true;
            };
            let fragment = frame
                .get(ip + 6..ip + 8)
                .map_or(0, |bytes| u16::from_be_bytes([bytes[0], bytes[1]]));
            let transport = ip + usize::from(first & 0x0f) * 4;
            // A later fragment has no ports: it may be of the run.
            fragment & 0x1fff != 0
                || same_bytes(frame, transport, run, head.transport..head.transport + 4)
        } else {
            if !same(ip + 8..ip + 40) {
                return false;
            }
            match frame.get(ip + 6) {
                Some(&next) if next == protocol => {
                    same_bytes(frame, ip + 40, run, head.transport..head.transport + 4)
                }
                // ICMPv6 or the other transport is another flow; an extension header may
                // hide the run's protocol.
                Some(&next) => !matches!(next, 6 | 17 | 58),
                None => true,
            }
        }
    }

    /// Adds `frame` to the frame being built, or starts one with it. `false` when it does not
    /// continue the current run (the caller takes the current frame and pushes again) or
    /// cannot be coalesced at all (the caller writes it as it is, after taking the current).
    pub fn push(&mut self, frame: &[u8]) -> bool {
        let Some(segment) = Segment::parse(frame, self.udp) else {
            return false;
        };
        let payload = frame.len() - segment.payload;
        let Some(head) = self.head else {
            let Some(target) = self
                .buffer
                .get_mut(VIRTIO_NET_HEADER..VIRTIO_NET_HEADER + frame.len())
            else {
                return false;
            };
            target.copy_from_slice(frame);
            self.length = frame.len();
            self.head = Some(segment);
            self.segment_size = payload;
            self.next_sequence = segment.sequence.wrapping_add(payload as u32);
            self.count = 1;
            self.closed = segment.push;
            return true;
        };
        if self.closed
            || payload > self.segment_size
            || segment.tcp != head.tcp
            || (segment.tcp && segment.sequence != self.next_sequence)
            || (!segment.tcp && self.count >= MAX_UDP_SEGMENTS)
            || segment.ipv4 != head.ipv4
            || segment.payload != head.payload
            || self.length + payload > MAX_COALESCED
        {
            return false;
        }
        let base = VIRTIO_NET_HEADER;
        let Some(current) = self.buffer.get(base..base + head.payload) else {
            return false;
        };
        let Some(headers) = frame.get(..segment.payload) else {
            return false;
        };
        if !same_flow(current, headers, &head) {
            return false;
        }
        let start = base + self.length;
        let Some(target) = self.buffer.get_mut(start..start + payload) else {
            return false;
        };
        target.copy_from_slice(&frame[segment.payload..]);
        self.length += payload;
        self.count += 1;
        self.next_sequence = self.next_sequence.wrapping_add(payload as u32);
        if segment.push {
            // The run ends with the push, which the large frame must carry (RFC 9293 3.9.1).
            if let Some(flags) = self.buffer.get_mut(base + head.transport + 13) {
                *flags |= TCP_PSH;
            }
            self.closed = true;
        }
        if payload < self.segment_size {
            self.closed = true;
        }
        true
    }

    /// The frame built so far with its virtio-net header, ready for the TAP device, and
    /// empties the coalescer. One segment is returned unchanged (its checksums are complete);
    /// several get new lengths, an IPv4 header checksum and a partial TCP checksum the kernel
    /// finishes.
    pub fn take(&mut self) -> Option<&[u8]> {
        let head = self.head.take()?;
        let count = std::mem::take(&mut self.count);
        let length = std::mem::take(&mut self.length);
        self.closed = false;
        let base = VIRTIO_NET_HEADER;
        let frame = self.buffer.get_mut(base..base + length)?;
        let header = if count == 1 {
            VirtioHeader::default()
        } else {
            let ip = ETHERNET_HEADER;
            let transport_length = length - head.transport;
            let (protocol, gso_type, checksum_offset) = match (head.tcp, head.ipv4) {
                (true, true) => (PROTOCOL_TCP, GSO_TCPV4, 16),
                (true, false) => (PROTOCOL_TCP, GSO_TCPV6, 16),
                (false, _) => (PROTOCOL_UDP, GSO_UDP_L4, 6),
            };
            if !head.tcp {
                frame[head.transport + 4..head.transport + 6]
                    .copy_from_slice(&(transport_length as u16).to_be_bytes());
            }
            if head.ipv4 {
                frame[ip + 2..ip + 4].copy_from_slice(&((length - ip) as u16).to_be_bytes());
                frame[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
                let sum = !checksum_fold(checksum_add(0, &frame[ip..ip + 20]));
                frame[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
            } else {
                frame[ip + 4..ip + 6].copy_from_slice(&(transport_length as u16).to_be_bytes());
            }
            let addresses = if head.ipv4 {
                &frame[ip + 12..ip + 20]
            } else {
                &frame[ip + 8..ip + 40]
            };
            let pseudo = checksum_add(0, addresses) + u64::from(protocol) + transport_length as u64;
            // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum; the kernel adds the
            // rest (virtio 1.x 5.1.6.2).
            let partial = checksum_fold(pseudo);
            let at = head.transport + checksum_offset;
            frame[at..at + 2].copy_from_slice(&partial.to_be_bytes());
            VirtioHeader {
                flags: VIRTIO_NET_NEEDS_CHECKSUM,
                gso_type,
                header_length: head.payload as u16,
                gso_size: self.segment_size as u16,
                checksum_start: head.transport as u16,
                checksum_offset: checksum_offset as u16,
            }
        };
        debug_assert!(count > 1 || header.gso_type == GSO_NONE);
        header.write(&mut self.buffer)?;
        self.buffer.get(..base + length)
    }
}

/// Whether the bytes of `frame` from `at` are those of `run` at `ours`; `true` when either is
/// too short to tell (the kernel drops such a frame anyway: the order is kept).
fn same_bytes(frame: &[u8], at: usize, run: &[u8], ours: std::ops::Range<usize>) -> bool {
    match (frame.get(at..at + ours.len()), run.get(ours)) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => true,
    }
}

/// Whether `headers` (Ethernet to TCP or UDP) belong to the same flow and run as `current`:
/// same Ethernet header, same IP header apart from length, identification and checksum, same
/// ports, and for TCP the same acknowledgment, header length and options (the kernel's
/// `tcp_gro_receive` and `udp_gro_receive` rules).
fn same_flow(current: &[u8], headers: &[u8], head: &Segment) -> bool {
    if current.len() != headers.len() {
        return false;
    }
    let ip = ETHERNET_HEADER;
    let t = head.transport;
    let ip_same = if head.ipv4 {
        // Version/IHL and TOS; flags (DF); TTL and protocol; addresses.
        current[ip..ip + 2] == headers[ip..ip + 2]
            && current[ip + 6..ip + 10] == headers[ip + 6..ip + 10]
            && current[ip + 12..ip + 20] == headers[ip + 12..ip + 20]
    } else {
        // Version, traffic class and flow label; next header and hop limit; addresses.
        current[ip..ip + 4] == headers[ip..ip + 4]
            && current[ip + 6..ip + 40] == headers[ip + 6..ip + 40]
    };
    let transport_same = if head.tcp {
        current[t + 8..t + 13] == headers[t + 8..t + 13] && current[t + 20..] == headers[t + 20..]
    } else {
        true
    };
    ip_same
        && current[..ETHERNET_HEADER] == headers[..ETHERNET_HEADER]
        && current[t..t + 4] == headers[t..t + 4]
        && transport_same
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::offload::{GSO_TCPV4 as TCPV4, split};

    /// A complete IPv4 or IPv6 TCP frame with right checksums.
    fn frame(ipv4: bool, sequence: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![2, 0, 0, 0, 0, 12, 2, 0, 0, 0, 0, 11];
        let tcp_length = 20 + payload.len();
        if ipv4 {
            frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut ip = vec![0x45, 0, 0, 0, 0, 7, 0x40, 0, 64, PROTOCOL_TCP, 0, 0];
            ip[2..4].copy_from_slice(&((20 + tcp_length) as u16).to_be_bytes());
            ip.extend_from_slice(&[198, 18, 0, 11, 198, 18, 0, 12]);
            let sum = !checksum_fold(checksum_add(0, &ip));
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ip);
        } else {
            frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut ip = vec![0x60, 0, 0, 0, 0, 0, PROTOCOL_TCP, 64];
            ip[4..6].copy_from_slice(&(tcp_length as u16).to_be_bytes());
            ip.extend_from_slice(&[0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]);
            ip.extend_from_slice(&[0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12]);
            frame.extend_from_slice(&ip);
        }
        let transport = frame.len();
        let mut tcp = vec![0x30, 0x39, 0x14, 0x51];
        tcp.extend_from_slice(&sequence.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 9, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        frame.extend_from_slice(&tcp);
        frame.extend_from_slice(payload);
        let addresses = if ipv4 {
            frame[26..34].to_vec()
        } else {
            frame[22..54].to_vec()
        };
        let pseudo = checksum_add(0, &addresses) + 6 + tcp_length as u64;
        let sum = !checksum_fold(checksum_add(pseudo, &frame[transport..]));
        frame[transport + 16..transport + 18].copy_from_slice(&sum.to_be_bytes());
        frame
    }

    #[test]
    fn consecutive_segments_become_one_large_frame_that_splits_back_into_them() {
        for ipv4 in [true, false] {
            let payloads: Vec<Vec<u8>> = (0..4u8).map(|n| vec![n; 1000]).collect();
            let mut originals = Vec::new();
            let mut coalescer = Coalescer::new();
            for (number, payload) in payloads.iter().enumerate() {
                let flags = if number == 3 {
                    TCP_ACK | TCP_PSH
                } else {
                    TCP_ACK
                };
                let original = frame(ipv4, 5000 + 1000 * number as u32, flags, payload);
                assert!(coalescer.push(&original), "segment {number}");
                originals.push(original);
            }
            // After a push, the run is closed.
            assert!(!coalescer.push(&frame(ipv4, 9000, TCP_ACK, &[9; 1000])));
            let large = coalescer.take().expect("frame").to_vec();
            assert!(coalescer.is_empty());
            let header = VirtioHeader::parse(&large).expect("header");
            assert_eq!(header.gso_type, if ipv4 { TCPV4 } else { GSO_TCPV6 });
            assert_eq!(header.gso_size, 1000);
            // What the kernel would do with it (segment, finish checksums) gives back the
            // original frames, checksums included.
            let mut body = large[VIRTIO_NET_HEADER..].to_vec();
            let mut out = vec![0u8; 2048];
            let mut frames = Vec::new();
            split(&header, &mut body, &mut out, |frame| {
                frames.push(frame.to_vec())
            })
            .expect("split");
            assert_eq!(frames.len(), 4);
            for (number, (rebuilt, original)) in frames.iter().zip(&originals).enumerate() {
                let ip_id = if ipv4 { 18..20 } else { 0..0 };
                let mut rebuilt = rebuilt.clone();
                let mut original = original.clone();
                // IPv4 identification (and so its checksum) counts up from the first frame.
                if ipv4 {
                    rebuilt[ip_id.clone()].fill(0);
                    original[ip_id].fill(0);
                    rebuilt[24..26].fill(0);
                    original[24..26].fill(0);
                }
                assert_eq!(rebuilt, original, "frame {number} (ipv4 {ipv4})");
            }
        }
    }

    /// A complete IPv4 or IPv6 UDP frame with right checksums (from `frame`'s headers).
    fn udp_frame(ipv4: bool, payload: &[u8]) -> Vec<u8> {
        let mut udp = frame(ipv4, 0, TCP_ACK, &[]);
        let transport = if ipv4 { 34 } else { 54 };
        udp.truncate(transport);
        if ipv4 {
            udp[23] = PROTOCOL_UDP;
            udp[16..18].copy_from_slice(&((20 + 8 + payload.len()) as u16).to_be_bytes());
            udp[24..26].fill(0);
            let sum = !checksum_fold(checksum_add(0, &udp[14..34]));
            udp[24..26].copy_from_slice(&sum.to_be_bytes());
        } else {
            udp[20] = PROTOCOL_UDP;
            udp[18..20].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        }
        udp.extend_from_slice(&[0x30, 0x39, 0x14, 0x51]);
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let addresses = if ipv4 {
            udp[26..34].to_vec()
        } else {
            udp[22..54].to_vec()
        };
        let pseudo = checksum_add(0, &addresses) + 17 + (8 + payload.len()) as u64;
        let sum = !checksum_fold(checksum_add(pseudo, &udp[transport..]));
        udp[transport + 6..transport + 8].copy_from_slice(&sum.to_be_bytes());
        udp
    }

    #[test]
    fn udp_datagrams_of_one_flow_become_one_uso_frame_that_splits_back_into_them() {
        for ipv4 in [true, false] {
            let mut coalescer = Coalescer::new();
            let first = udp_frame(ipv4, &[1; 64]);
            // Without USO on the TAP, UDP is never coalesced.
            assert!(!coalescer.push(&first));
            coalescer.set_udp(true);
            let originals: Vec<Vec<u8>> = (0..5u8)
                .map(|n| udp_frame(ipv4, &vec![n; if n == 4 { 30 } else { 64 }]))
                .collect();
            for original in &originals {
                assert!(coalescer.push(original));
            }
            // The shorter last datagram closed the run.
            assert!(!coalescer.push(&udp_frame(ipv4, &[9; 64])));
            let large = coalescer.take().expect("frame").to_vec();
            let header = VirtioHeader::parse(&large).expect("header");
            assert_eq!(header.gso_type, GSO_UDP_L4);
            assert_eq!(header.gso_size, 64);
            let mut body = large[VIRTIO_NET_HEADER..].to_vec();
            let mut out = vec![0u8; 2048];
            let mut frames = Vec::new();
            split(&header, &mut body, &mut out, |frame| {
                frames.push(frame.to_vec())
            })
            .expect("split");
            assert_eq!(frames.len(), originals.len());
            for (number, (rebuilt, original)) in frames.iter().zip(&originals).enumerate() {
                let (mut rebuilt, mut original) = (rebuilt.clone(), original.clone());
                if ipv4 {
                    // Identification and so the header checksum count up from the first.
                    for bytes in [&mut rebuilt, &mut original] {
                        bytes[18..20].fill(0);
                        bytes[24..26].fill(0);
                    }
                }
                assert_eq!(rebuilt, original, "datagram {number} (ipv4 {ipv4})");
            }
            // Another port is another flow; TCP does not join a UDP run.
            assert!(coalescer.push(&udp_frame(ipv4, &[1; 64])));
            let mut other = udp_frame(ipv4, &[1; 64]);
            let port = if ipv4 { 35 } else { 55 };
            other[port] ^= 1;
            assert!(!coalescer.push(&other));
            assert!(!coalescer.push(&frame(ipv4, 1, TCP_ACK, &[1; 64])));
            // A wrong UDP length is not coalesced.
            let mut wrong = udp_frame(ipv4, &[1; 64]);
            wrong[port + 4] ^= 1;
            assert!(!Coalescer::new().push(&wrong));
        }
    }

    #[test]
    fn at_most_64_udp_datagrams_make_one_frame() {
        let mut coalescer = Coalescer::new();
        coalescer.set_udp(true);
        let datagram = udp_frame(true, &[7; 100]);
        for _ in 0..MAX_UDP_SEGMENTS {
            assert!(coalescer.is_open() || coalescer.is_empty());
            assert!(coalescer.push(&datagram));
        }
        assert!(!coalescer.is_open());
        assert!(!coalescer.push(&datagram));
    }

    #[test]
    fn a_run_is_open_until_a_push_a_shorter_segment_or_a_full_frame_ends_it() {
        let mut coalescer = Coalescer::new();
        assert!(!coalescer.is_open(), "nothing waits");
        assert!(coalescer.push(&frame(true, 0, TCP_ACK, &[1; 1000])));
        assert!(coalescer.is_open());
        assert_eq!(coalescer.segments(), 1);
        assert!(coalescer.push(&frame(true, 1000, TCP_ACK | TCP_PSH, &[1; 1000])));
        assert_eq!(coalescer.segments(), 2);
        assert!(!coalescer.is_open(), "a push ends the run");
        coalescer.take();
        assert!(coalescer.push(&frame(true, 2000, TCP_ACK, &[1; 1000])));
        assert!(coalescer.push(&frame(true, 3000, TCP_ACK, &[1; 300])));
        assert!(!coalescer.is_open(), "a shorter segment ends the run");
        coalescer.take();
        // Full: the next segment of the same size would not fit in 64 KiB.
        let mut sequence = 0;
        while coalescer.push(&frame(true, sequence, TCP_ACK, &[1; 1400])) {
            sequence += 1400;
            if !coalescer.is_open() {
                break;
            }
        }
        assert!(!coalescer.is_open());
        assert!(!coalescer.push(&frame(true, sequence, TCP_ACK, &[1; 1400])));
        assert!(coalescer.take().is_some());
        assert!(!coalescer.is_open());
    }

    #[test]
    fn only_a_frame_that_certainly_is_of_another_flow_may_pass_a_waiting_run() {
        for ipv4 in [true, false] {
            let mut coalescer = Coalescer::new();
            let data = frame(ipv4, 0, TCP_ACK, &[1; 1000]);
            assert!(!coalescer.may_be_of_run(&data), "no run waits");
            assert!(coalescer.coalescable(&data));
            assert!(coalescer.push(&data));
            // The same connection: a pure acknowledgment, a SYN, a segment out of order.
            let pure_ack = frame(ipv4, 1000, TCP_ACK, &[]);
            assert!(!coalescer.coalescable(&pure_ack));
            assert!(coalescer.may_be_of_run(&pure_ack), "ipv4 {ipv4}");
            assert!(coalescer.may_be_of_run(&frame(ipv4, 1000, 0x02, &[])));
            assert!(coalescer.may_be_of_run(&frame(ipv4, 9000, TCP_ACK, &[1; 10])));
            // Truncated before the ports: order kept.
            assert!(coalescer.may_be_of_run(&data[..14 + if ipv4 { 21 } else { 41 }]));
            // Other ports.
            let mut other = frame(ipv4, 1000, TCP_ACK, &[]);
            let transport = 14 + if ipv4 { 20 } else { 40 };
            other[transport + 1] ^= 1;
            assert!(!coalescer.may_be_of_run(&other));
            // Other addresses.
            let mut other = frame(ipv4, 1000, TCP_ACK, &[]);
            let source = 14 + if ipv4 { 12 } else { 8 };
            other[source + 3] ^= 1;
            assert!(!coalescer.may_be_of_run(&other));
            // Another protocol between the same hosts: ICMP or ICMPv6 (a ping), UDP.
            let mut ping = frame(ipv4, 1000, TCP_ACK, &[1; 10]);
            let protocol = 14 + if ipv4 { 9 } else { 6 };
            ping[protocol] = if ipv4 { 1 } else { 58 };
            assert!(!coalescer.may_be_of_run(&ping));
            ping[protocol] = PROTOCOL_UDP;
            assert!(!coalescer.may_be_of_run(&ping));
            // Another ethertype (ARP).
            let mut arp = data.clone();
            arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
            assert!(!coalescer.may_be_of_run(&arp));
            assert!(coalescer.may_be_of_run(&data[..13]), "too short to tell");
            if ipv4 {
                // A later fragment between the same hosts has no ports: it may be of the run.
                let mut fragment = frame(true, 0, TCP_ACK, &[1; 100]);
                fragment[14 + 6..14 + 8].copy_from_slice(&100u16.to_be_bytes());
                fragment[14 + 20..14 + 24].fill(0);
                assert!(coalescer.may_be_of_run(&fragment));
            } else {
                // An extension header may hide TCP.
                let mut extension = frame(false, 0, TCP_ACK, &[1; 100]);
                extension[14 + 6] = 0;
                assert!(coalescer.may_be_of_run(&extension));
            }
        }
    }

    #[test]
    fn a_single_segment_is_written_unchanged() {
        let original = frame(true, 1, TCP_ACK, &[1; 500]);
        let mut coalescer = Coalescer::new();
        assert!(coalescer.push(&original));
        let taken = coalescer.take().expect("frame").to_vec();
        assert_eq!(VirtioHeader::parse(&taken), Ok(VirtioHeader::default()));
        assert_eq!(&taken[VIRTIO_NET_HEADER..], &original[..]);
        assert!(coalescer.take().is_none());
    }

    #[test]
    fn gaps_other_flows_and_other_packets_are_not_coalesced() {
        let mut coalescer = Coalescer::new();
        assert!(coalescer.push(&frame(true, 100, TCP_ACK, &[1; 1000])));
        // A gap in sequence numbers.
        assert!(!coalescer.push(&frame(true, 1200, TCP_ACK, &[1; 1000])));
        // Another flow (other acknowledgment number).
        let mut other = frame(true, 1100, TCP_ACK, &[1; 1000]);
        other[14 + 20 + 11] ^= 1;
        assert!(!coalescer.push(&other));
        // Larger than the segment size.
        assert!(!coalescer.push(&frame(true, 1100, TCP_ACK, &[1; 1200])));
        // IPv6 after IPv4.
        assert!(!coalescer.push(&frame(false, 1100, TCP_ACK, &[1; 1000])));
        // A shorter segment continues, then closes the run.
        assert!(coalescer.push(&frame(true, 1100, TCP_ACK, &[1; 400])));
        assert!(!coalescer.push(&frame(true, 1500, TCP_ACK, &[1; 400])));
        // Not coalescable at all: SYN, pure ACK, UDP, truncated.
        let mut empty = Coalescer::new();
        assert!(!empty.push(&frame(true, 1, 0x02, &[1; 10])));
        assert!(!empty.push(&frame(true, 1, TCP_ACK, &[])));
        let mut udp = frame(true, 1, TCP_ACK, &[1; 10]);
        udp[23] = 17;
        assert!(!empty.push(&udp));
        let whole = frame(true, 1, TCP_ACK, &[1; 10]);
        for cut in 0..whole.len() {
            assert!(!empty.push(&whole[..cut]), "cut {cut}");
        }
        assert!(empty.is_empty());
    }
}
