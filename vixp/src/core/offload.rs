//! TAP offloads: the virtio-net header the kernel puts before every frame of a TAP opened with
//! `IFF_VNET_HDR`, finishing partial checksums, and splitting a large TCP or UDP segment
//! (TSO/USO) into frames that fit the tunnel MTU, with IPv4 (RFC 791), IPv6 (RFC 8200), TCP
//! (RFC 9293) and UDP (RFC 768) headers and checksums (RFC 1071) made right for each. Every
//! read is checked; nothing here allocates. Must not decide where a frame goes.

use crate::core::packet::{ETHERNET_HEADER, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Length of the virtio-net header before every frame on a TAP with `IFF_VNET_HDR` (the legacy
/// `struct virtio_net_hdr`, which the TAP uses unless told otherwise).
pub const VIRTIO_NET_HEADER: usize = 10;
/// Flag: the checksum from `checksum_start` to the end must still be computed.
pub const VIRTIO_NET_NEEDS_CHECKSUM: u8 = 1;
/// GSO type: not a large segment.
pub const GSO_NONE: u8 = 0;
/// GSO type: TCP over IPv4.
pub const GSO_TCPV4: u8 = 1;
/// GSO type: TCP over IPv6.
pub const GSO_TCPV6: u8 = 4;
/// GSO type: UDP (USO), either IP version.
pub const GSO_UDP_L4: u8 = 5;
/// GSO flag: the segment carries ECN CWR, which only the first frame keeps.
pub const GSO_ECN: u8 = 0x80;

/// IP protocol number of TCP.
const PROTOCOL_TCP: u8 = 6;
/// IP protocol number of UDP.
const PROTOCOL_UDP: u8 = 17;
/// TCP flags FIN and PSH, which only the last frame of a split segment keeps.
const TCP_FIN_PSH: u8 = 0x01 | 0x08;
/// TCP flag CWR, which only the first frame of a split segment keeps.
const TCP_CWR: u8 = 0x80;

/// The virtio-net header (virtio 1.x section 5.1.6, fields in the host's byte order, as the
/// TAP uses them by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VirtioHeader {
    /// `VIRTIO_NET_HDR_F_*` flags.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*` type, possibly with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers (Ethernet to transport) of a large segment.
    pub header_length: u16,
    /// Payload bytes per frame of a large segment.
    pub gso_size: u16,
    /// Where checksumming starts (the transport header), from the start of the frame.
    pub checksum_start: u16,
    /// Where the checksum goes, from `checksum_start`.
    pub checksum_offset: u16,
}

/// Why a frame from the TAP could not be made into tunnel-sized frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// Shorter than the virtio-net header.
    #[error("frame shorter than the virtio-net header")]
    TruncatedHeader,
    /// A GSO type this node did not ask for.
    #[error("unsupported GSO type {gso_type}")]
    UnsupportedGso {
        /// The type received.
        gso_type: u8,
    },
    /// Headers that do not fit the frame or contradict the virtio-net header.
    #[error("malformed large segment")]
    Malformed,
    /// The output buffer cannot hold one frame.
    #[error("output buffer too small for a {needed}-byte frame")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl VirtioHeader {
    /// The header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<VirtioHeader, OffloadError> {
        let header: &[u8; VIRTIO_NET_HEADER] = bytes
            .get(..VIRTIO_NET_HEADER)
            .and_then(|header| header.try_into().ok())
            .ok_or(OffloadError::TruncatedHeader)?;
        let field = |at: usize| u16::from_ne_bytes([header[at], header[at + 1]]);
        Ok(VirtioHeader {
            flags: header[0],
            gso_type: header[1],
            header_length: field(2),
            gso_size: field(4),
            checksum_start: field(6),
            checksum_offset: field(8),
        })
    }

    /// Writes the header into the first [`VIRTIO_NET_HEADER`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) -> Option<()> {
        let header = out.get_mut(..VIRTIO_NET_HEADER)?;
        header[0] = self.flags;
        header[1] = self.gso_type;
        header[2..4].copy_from_slice(&self.header_length.to_ne_bytes());
        header[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        header[6..8].copy_from_slice(&self.checksum_start.to_ne_bytes());
        header[8..10].copy_from_slice(&self.checksum_offset.to_ne_bytes());
        Some(())
    }
}

/// The Internet checksum's running sum (RFC 1071) of `bytes` added to `sum`, unfolded.
pub fn checksum_add(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0; 8]));
        sum = sum
            .wrapping_add(word >> 32)
            .wrapping_add(word & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for pair in &mut rest {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = rest.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a running sum to 16 bits (not complemented).
pub fn checksum_fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Where the IP header of an Ethernet frame starts and what it is.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// IPv4 (else IPv6).
    ipv4: bool,
    /// Start of the transport header.
    transport: usize,
    /// Length of all headers up to the payload.
    headers: usize,
    /// TCP (else UDP).
    tcp: bool,
}

/// The pseudo-header sum (RFC 9293 section 3.1, RFC 8200 section 8.1) for `frame`'s addresses,
/// `protocol` and transport `length`.
fn pseudo_header_sum(frame: &[u8], ipv4: bool, protocol: u8, length: usize) -> Option<u64> {
    let ip = ETHERNET_HEADER;
    let addresses = if ipv4 {
        frame.get(ip + 12..ip + 20)?
    } else {
        frame.get(ip + 8..ip + 40)?
    };
    let sum = checksum_add(0, addresses);
    Some(sum + u64::from(protocol) + length as u64)
}

/// Splits the large segment `frame` (an Ethernet frame after its virtio-net `header`) into
/// frames of at most `header.gso_size` payload bytes, each written into `out` and passed to
/// `emit`; a frame that is not a large segment is passed on with its checksum finished if the
/// kernel left it partial. Returns how many frames were emitted. `frame` is modified in place
/// (checksums).
pub fn split(
    header: &VirtioHeader,
    frame: &mut [u8],
    out: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, OffloadError> {
    let gso_type = header.gso_type & !GSO_ECN;
    if gso_type == GSO_NONE {
        if header.flags & VIRTIO_NET_NEEDS_CHECKSUM != 0 {
            finish_checksum(header, frame)?;
        }
        emit(frame);
        return Ok(1);
    }
    if !matches!(gso_type, GSO_TCPV4 | GSO_TCPV6 | GSO_UDP_L4) {
        return Err(OffloadError::UnsupportedGso { gso_type });
    }
    let layout = layout_of(header, frame)?;
    if (gso_type == GSO_UDP_L4) == layout.tcp {
        return Err(OffloadError::Malformed);
    }
    let segment = usize::from(header.gso_size);
    if segment == 0 {
        return Err(OffloadError::Malformed);
    }
    let payload = frame.get(layout.headers..).ok_or(OffloadError::Malformed)?;
    let headers = frame.get(..layout.headers).ok_or(OffloadError::Malformed)?;
    if payload.is_empty() {
        return Err(OffloadError::Malformed);
    }
    let count = payload.len().div_ceil(segment);
    let needed = layout.headers + segment.min(payload.len());
    if out.len() < needed {
        return Err(OffloadError::BufferTooSmall { needed });
    }
    let ip = ETHERNET_HEADER;
    let first_id = if layout.ipv4 {
        u16::from_be_bytes([headers[ip + 4], headers[ip + 5]])
    } else {
        0
    };
    let first_sequence = if layout.tcp {
        u32::from_be_bytes(
            headers
                .get(layout.transport + 4..layout.transport + 8)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(OffloadError::Malformed)?,
        )
    } else {
        0
    };
    for (number, chunk) in payload.chunks(segment).enumerate() {
        let length = layout.headers + chunk.len();
        let frame_out = &mut out[..length];
        frame_out[..layout.headers].copy_from_slice(headers);
        frame_out[layout.headers..].copy_from_slice(chunk);
        let transport_length = length - layout.transport;
        if layout.ipv4 {
            let total = (length - ip) as u16;
            frame_out[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
            let id = first_id.wrapping_add(number as u16);
            frame_out[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
            frame_out[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
            let header_end = layout.transport;
            let sum = checksum_fold(checksum_add(0, &frame_out[ip..header_end]));
            frame_out[ip + 10..ip + 12].copy_from_slice(&(!sum).to_be_bytes());
        } else {
            let payload_length = (length - ip - 40) as u16;
            frame_out[ip + 4..ip + 6].copy_from_slice(&payload_length.to_be_bytes());
        }
        let transport = layout.transport;
        let checksum_at = if layout.tcp {
            let offset = (segment * number) as u32;
            let sequence = first_sequence.wrapping_add(offset);
            frame_out[transport + 4..transport + 8].copy_from_slice(&sequence.to_be_bytes());
            let flags = &mut frame_out[transport + 13];
            if number + 1 < count {
                *flags &= !TCP_FIN_PSH;
            }
            if number > 0 {
                *flags &= !TCP_CWR;
            }
            transport + 16
        } else {
            let udp_length = transport_length as u16;
            frame_out[transport + 4..transport + 6].copy_from_slice(&udp_length.to_be_bytes());
            transport + 6
        };
        frame_out[checksum_at..checksum_at + 2].copy_from_slice(&[0, 0]);
        let protocol = if layout.tcp {
            PROTOCOL_TCP
        } else {
            PROTOCOL_UDP
        };
        let pseudo = pseudo_header_sum(frame_out, layout.ipv4, protocol, transport_length)
            .ok_or(OffloadError::Malformed)?;
        let mut checksum = !checksum_fold(checksum_add(pseudo, &frame_out[transport..]));
        if !layout.tcp && checksum == 0 {
            // RFC 768: a computed zero is sent as all ones.
            checksum = 0xffff;
        }
        frame_out[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
        emit(frame_out);
    }
    Ok(count)
}

/// Checks the headers of a large segment against its virtio-net header.
fn layout_of(header: &VirtioHeader, frame: &[u8]) -> Result<Layout, OffloadError> {
    let ethertype = frame
        .get(12..14)
        .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
        .ok_or(OffloadError::Malformed)?;
    let ip = ETHERNET_HEADER;
    let ipv4 = match ethertype {
        ETHERTYPE_IPV4 => true,
        ETHERTYPE_IPV6 => false,
        _ => return Err(OffloadError::Malformed),
    };
    let transport = usize::from(header.checksum_start);
    let (protocol, minimum) = if ipv4 {
        let first = *frame.get(ip).ok_or(OffloadError::Malformed)?;
        let header_length = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_length < 20 || ip + header_length != transport {
            return Err(OffloadError::Malformed);
        }
        (*frame.get(ip + 9).ok_or(OffloadError::Malformed)?, ip + 20)
    } else {
        let first = *frame.get(ip).ok_or(OffloadError::Malformed)?;
        if first >> 4 != 6 {
            return Err(OffloadError::Malformed);
        }
        // Extension headers would sit between; only a transport header right after the fixed
        // header is split (the kernel's TSO6 hands over nothing else for this device).
        if ip + 40 != transport {
            return Err(OffloadError::Malformed);
        }
        (*frame.get(ip + 6).ok_or(OffloadError::Malformed)?, ip + 40)
    };
    if transport < minimum {
        return Err(OffloadError::Malformed);
    }
    let (tcp, transport_header) = match protocol {
        PROTOCOL_TCP => {
            let offset = *frame.get(transport + 12).ok_or(OffloadError::Malformed)?;
            let length = usize::from(offset >> 4) * 4;
            if length < 20 {
                return Err(OffloadError::Malformed);
            }
            (true, length)
        }
        PROTOCOL_UDP => (false, 8),
        _ => return Err(OffloadError::Malformed),
    };
    let headers = transport + transport_header;
    if headers > frame.len() {
        return Err(OffloadError::Malformed);
    }
    Ok(Layout {
        ipv4,
        transport,
        headers,
        tcp,
    })
}

/// Finishes a partial checksum: the sum from `checksum_start` to the end, complemented, at
/// `checksum_start + checksum_offset` (the field holds the pseudo-header sum already).
fn finish_checksum(header: &VirtioHeader, frame: &mut [u8]) -> Result<(), OffloadError> {
    let start = usize::from(header.checksum_start);
    let at = start + usize::from(header.checksum_offset);
    if at + 2 > frame.len() || start > frame.len() {
        return Err(OffloadError::Malformed);
    }
    let checksum = !checksum_fold(checksum_add(0, &frame[start..]));
    frame[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 or IPv6 header and a TCP header (no options) before
    /// `payload`, checksums left zero.
    fn tcp_frame(ipv4: bool, sequence: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; ETHERNET_HEADER];
        frame[12..14]
            .copy_from_slice(&(if ipv4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 }).to_be_bytes());
        let transport_length = 20 + payload.len();
        if ipv4 {
            let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, PROTOCOL_TCP, 0, 0];
            ip[2..4].copy_from_slice(&((20 + transport_length) as u16).to_be_bytes());
            ip.extend_from_slice(&[198, 18, 0, 11, 198, 18, 0, 12]);
            frame.extend_from_slice(&ip);
        } else {
            let mut ip = vec![0x60, 0, 0, 0, 0, 0, PROTOCOL_TCP, 64];
            ip[4..6].copy_from_slice(&(transport_length as u16).to_be_bytes());
            ip.extend_from_slice(&[0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11]);
            ip.extend_from_slice(&[0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12]);
            frame.extend_from_slice(&ip);
        }
        let mut tcp = vec![0x30, 0x39, 0x14, 0x51];
        tcp.extend_from_slice(&sequence.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        frame.extend_from_slice(&tcp);
        frame.extend_from_slice(payload);
        frame
    }

    /// Whether the IPv4 header checksum (if any) and the TCP or UDP checksum of `frame` verify.
    fn checksums_verify(frame: &[u8]) -> bool {
        let ipv4 = frame[12..14] == ETHERTYPE_IPV4.to_be_bytes();
        let (transport, protocol) = if ipv4 {
            if checksum_fold(checksum_add(0, &frame[14..34])) != 0xffff {
                return false;
            }
            (34, frame[23])
        } else {
            (54, frame[20])
        };
        let pseudo = pseudo_header_sum(frame, ipv4, protocol, frame.len() - transport)
            .expect("pseudo header");
        checksum_fold(checksum_add(pseudo, &frame[transport..])) == 0xffff
    }

    fn large_segment_header(gso_type: u8, gso_size: u16, ipv4: bool) -> VirtioHeader {
        let transport = if ipv4 { 34 } else { 54 };
        VirtioHeader {
            flags: VIRTIO_NET_NEEDS_CHECKSUM,
            gso_type,
            header_length: transport + 20,
            gso_size,
            checksum_start: transport,
            checksum_offset: 16,
        }
    }

    #[test]
    fn the_header_round_trips_through_its_bytes() {
        let header = large_segment_header(GSO_TCPV4, 1368, true);
        let mut bytes = [0u8; VIRTIO_NET_HEADER];
        header.write(&mut bytes).expect("room");
        assert_eq!(VirtioHeader::parse(&bytes), Ok(header));
        assert_eq!(
            VirtioHeader::parse(&bytes[..9]),
            Err(OffloadError::TruncatedHeader)
        );
    }

    #[test]
    fn checksum_of_the_rfc_1071_example() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (folded).
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum_fold(checksum_add(0, &bytes)), 0xddf2);
        assert_eq!(checksum_fold(checksum_add(0, &bytes[..6])), 0xe6fa);
        assert_eq!(checksum_fold(checksum_add(0, &[0x01])), 0x0100);
    }

    #[test]
    fn a_tcp_large_segment_becomes_frames_with_right_sequence_flags_and_checksums() {
        for ipv4 in [true, false] {
            let payload: Vec<u8> = (0..4000u32).map(|byte| (byte % 251) as u8).collect();
            let gso_type = if ipv4 { GSO_TCPV4 } else { GSO_TCPV6 };
            let header = large_segment_header(gso_type, 1400, ipv4);
            let mut frame = tcp_frame(ipv4, 0xffff_fc00, 0x18 | 0x01 | TCP_CWR, &payload);
            let mut out = vec![0u8; 2048];
            let mut frames = Vec::new();
            let count = split(&header, &mut frame, &mut out, |frame| {
                frames.push(frame.to_vec())
            })
            .expect("split");
            assert_eq!(count, 3);
            assert_eq!(frames.len(), 3);
            let transport = if ipv4 { 34 } else { 54 };
            let mut rebuilt = Vec::new();
            for (number, frame) in frames.iter().enumerate() {
                assert!(checksums_verify(frame), "frame {number} (ipv4 {ipv4})");
                let sequence =
                    u32::from_be_bytes(frame[transport + 4..transport + 8].try_into().expect("4"));
                assert_eq!(sequence, 0xffff_fc00u32.wrapping_add(1400 * number as u32));
                let flags = frame[transport + 13];
                assert_eq!(flags & TCP_FIN_PSH != 0, number == 2, "FIN/PSH on the last");
                assert_eq!(flags & TCP_CWR != 0, number == 0, "CWR on the first");
                if ipv4 {
                    let total = u16::from_be_bytes([frame[16], frame[17]]);
                    assert_eq!(usize::from(total), frame.len() - 14);
                    assert_eq!(
                        u16::from_be_bytes([frame[18], frame[19]]),
                        0x1234 + number as u16
                    );
                } else {
                    let length = u16::from_be_bytes([frame[18], frame[19]]);
                    assert_eq!(usize::from(length), frame.len() - 54);
                }
                rebuilt.extend_from_slice(&frame[transport + 20..]);
            }
            assert_eq!(rebuilt, payload);
            assert_eq!(frames[2].len(), transport + 20 + 1200);
        }
    }

    #[test]
    fn a_udp_large_segment_becomes_datagrams() {
        let mut frame = tcp_frame(true, 0, 0, &[]);
        frame.truncate(34);
        frame[23] = PROTOCOL_UDP;
        frame.extend_from_slice(&[0x30, 0x39, 0x14, 0x51, 0, 0, 0, 0]);
        frame.extend((0..3000u32).map(|byte| byte as u8));
        let header = VirtioHeader {
            flags: VIRTIO_NET_NEEDS_CHECKSUM,
            gso_type: GSO_UDP_L4,
            header_length: 42,
            gso_size: 1000,
            checksum_start: 34,
            checksum_offset: 6,
        };
        let mut out = vec![0u8; 2048];
        let mut frames = Vec::new();
        split(&header, &mut frame, &mut out, |frame| {
            frames.push(frame.to_vec())
        })
        .expect("split");
        assert_eq!(frames.len(), 3);
        for frame in &frames {
            assert_eq!(frame.len(), 42 + 1000);
            assert_eq!(u16::from_be_bytes([frame[38], frame[39]]), 1008);
            assert!(checksums_verify(frame));
        }
    }

    #[test]
    fn a_partial_checksum_is_finished() {
        let mut frame = tcp_frame(true, 7, 0x18, b"hello, fabric");
        let length = frame.len() - 34;
        let pseudo =
            checksum_fold(pseudo_header_sum(&frame, true, PROTOCOL_TCP, length).expect("ip"));
        frame[50..52].copy_from_slice(&pseudo.to_be_bytes());
        let ip_sum = !checksum_fold(checksum_add(0, &frame[14..34]));
        frame[24..26].copy_from_slice(&ip_sum.to_be_bytes());
        let header = VirtioHeader {
            flags: VIRTIO_NET_NEEDS_CHECKSUM,
            checksum_start: 34,
            checksum_offset: 16,
            ..VirtioHeader::default()
        };
        let mut out = [0u8; 0];
        let mut frames = Vec::new();
        split(&header, &mut frame, &mut out, |frame| {
            frames.push(frame.to_vec())
        })
        .expect("split");
        assert_eq!(frames.len(), 1);
        assert!(checksums_verify(&frames[0]));
    }

    #[test]
    fn malformed_large_segments_are_refused_without_panicking() {
        let header = large_segment_header(GSO_TCPV4, 1400, true);
        let frame = tcp_frame(true, 1, 0x10, &[0u8; 3000]);
        let mut out = vec![0u8; 2048];
        for cut in 0..=54 {
            let mut truncated = frame[..cut].to_vec();
            assert!(
                split(&header, &mut truncated, &mut out, |_| {}).is_err(),
                "cut {cut}"
            );
        }
        let mut zero_size = header;
        zero_size.gso_size = 0;
        assert_eq!(
            split(&zero_size, &mut frame.clone(), &mut out, |_| {}),
            Err(OffloadError::Malformed)
        );
        let mut wrong_start = header;
        wrong_start.checksum_start = 30;
        assert!(split(&wrong_start, &mut frame.clone(), &mut out, |_| {}).is_err());
        let mut unknown = header;
        unknown.gso_type = 3;
        assert_eq!(
            split(&unknown, &mut frame.clone(), &mut out, |_| {}),
            Err(OffloadError::UnsupportedGso { gso_type: 3 })
        );
        let mut small = [0u8; 100];
        assert_eq!(
            split(&header, &mut frame.clone(), &mut small, |_| {}),
            Err(OffloadError::BufferTooSmall { needed: 1454 })
        );
        let mut bad_checksum_place = VirtioHeader {
            flags: VIRTIO_NET_NEEDS_CHECKSUM,
            checksum_start: 60_000,
            ..VirtioHeader::default()
        };
        assert!(split(&bad_checksum_place, &mut frame.clone(), &mut out, |_| {}).is_err());
        bad_checksum_place.checksum_start = 34;
        bad_checksum_place.checksum_offset = 60_000;
        assert!(split(&bad_checksum_place, &mut frame.clone(), &mut out, |_| {}).is_err());
    }
}
