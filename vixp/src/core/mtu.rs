//! MTU handling on the LAN: TCP MSS clamping of SYN segments (RFC 9293 section 3.7.1, RFC
//! 6691), and the ICMP "fragmentation needed" (RFC 792, RFC 1191) and ICMPv6 "packet too big"
//! (RFC 4443 section 3.2) answers to packets larger than the tunnel MTU. Pure functions over
//! packets with checked reads; must not decide when they apply (the core does) nor allocate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::offload::{checksum_add, checksum_fold};
use super::packet::{ETHERNET_HEADER, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet, icmpv6_checksum};

/// IPv4 and IPv6 fixed header plus TCP header without options: what an MSS leaves out of the
/// MTU (RFC 9293 section 3.7.1, RFC 8200 section 8.3).
pub const IPV4_TCP_OVERHEAD: u16 = 40;
/// The same for IPv6.
pub const IPV6_TCP_OVERHEAD: u16 = 60;
/// IP protocol number of TCP.
const PROTOCOL_TCP: u8 = 6;
/// IP protocol number of ICMP.
const PROTOCOL_ICMP: u8 = 1;
/// IPv6 next header of ICMPv6.
const NEXT_HEADER_ICMPV6: u8 = 58;
/// TCP SYN flag.
const TCP_SYN: u8 = 0x02;
/// TCP option kinds (RFC 9293 section 3.1).
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_MSS: u8 = 2;
/// ICMP destination unreachable, code "fragmentation needed and DF set" (RFC 792, RFC 1191).
const ICMP_UNREACHABLE: u8 = 3;
const ICMP_FRAGMENTATION_NEEDED: u8 = 4;
/// ICMP types that are error messages, never answered with another error (RFC 1122 section
/// 3.2.2): unreachable, source quench, redirect, time exceeded, parameter problem.
const ICMP_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 packet too big (RFC 4443 section 3.2).
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 types below this are errors (RFC 4443 section 2.1), never answered with an error.
const ICMPV6_FIRST_INFORMATIONAL: u8 = 128;
/// Largest ICMP error datagram for IPv4 (RFC 1812 section 4.3.2.3).
const ICMP_MAX_DATAGRAM: usize = 576;
/// Largest ICMPv6 error packet: the IPv6 minimum MTU (RFC 4443 section 2.4 (c)).
const ICMPV6_MAX_PACKET: usize = 1280;
/// TTL and hop limit of the answers.
const ANSWER_HOP_LIMIT: u8 = 64;

/// The largest MSS a SYN may announce, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MssLimit {
    /// For TCP over IPv4.
    pub ipv4: u16,
    /// For TCP over IPv6.
    pub ipv6: u16,
}

impl MssLimit {
    /// The limits that let a full segment fit `mtu` (MTU - 40 for IPv4, MTU - 60 for IPv6).
    pub fn for_mtu(mtu: u16) -> MssLimit {
        MssLimit {
            ipv4: mtu.saturating_sub(IPV4_TCP_OVERHEAD),
            ipv6: mtu.saturating_sub(IPV6_TCP_OVERHEAD),
        }
    }

    /// The same limit for both families.
    pub fn fixed(mss: u16) -> MssLimit {
        MssLimit {
            ipv4: mss,
            ipv6: mss,
        }
    }
}

/// Whether the IP `packet` is a TCP segment with SYN set (a first fragment for IPv4; IPv6
/// without extension headers): the only segments [`clamp_mss`] changes.
pub fn is_tcp_syn(packet: &[u8]) -> bool {
    tcp_start(packet).is_some_and(|(transport, _)| {
        packet
            .get(transport + 13)
            .is_some_and(|flags| flags & TCP_SYN != 0)
    })
}

/// Where the TCP header of `packet` starts and whether it is IPv4; `None` if it is not TCP
/// or not the first fragment.
fn tcp_start(packet: &[u8]) -> Option<(usize, bool)> {
    let first = *packet.first()?;
    match first >> 4 {
        4 => {
            let header = usize::from(first & 0x0f) * 4;
            let fragment_offset = read_u16(packet, 6)? & 0x1fff;
            (header >= 20 && *packet.get(9)? == PROTOCOL_TCP && fragment_offset == 0)
                .then_some((header, true))
        }
        6 => (*packet.get(6)? == PROTOCOL_TCP).then_some((40, false)),
        _ => None,
    }
}

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in the IP `packet` to the limit of its
/// family, updating the TCP checksum incrementally (RFC 1624 equation 3). Returns whether the
/// packet changed. Packets that are not TCP SYN, IPv4 fragments after the first, IPv6 packets
/// with extension headers and malformed option lists are left alone.
pub fn clamp_mss(packet: &mut [u8], limit: MssLimit) -> bool {
    let Some((transport, ipv4)) = tcp_start(packet) else {
        return false;
    };
    let maximum = if ipv4 { limit.ipv4 } else { limit.ipv6 };
    let Some(flags) = packet.get(transport + 13) else {
        return false;
    };
    if flags & TCP_SYN == 0 {
        return false;
    }
    let Some(data_offset) = packet.get(transport + 12) else {
        return false;
    };
    let options_end = transport + usize::from(data_offset >> 4) * 4;
    if options_end > packet.len() {
        return false;
    }
    let mut at = transport + 20;
    while at < options_end {
        let kind = packet[at];
        match kind {
            OPTION_END => return false,
            OPTION_NOP => at += 1,
            _ => {
                let Some(&length) = packet.get(at + 1) else {
                    return false;
                };
                let length = usize::from(length);
                if length < 2 || at + length > options_end {
                    return false;
                }
                if kind == OPTION_MSS && length == 4 {
                    let Some(mss) = read_u16(packet, at + 2) else {
                        return false;
                    };
                    if mss <= maximum {
                        return false;
                    }
                    write_u16_updating_checksum(packet, transport, at + 2, maximum);
                    return true;
                }
                at += length;
            }
        }
    }
    false
}

/// Writes `value` at `offset` of `packet` and updates the TCP checksum of the segment that
/// starts at `transport` (16-bit words counted from `transport`, which is even).
fn write_u16_updating_checksum(packet: &mut [u8], transport: usize, offset: usize, value: u16) {
    let checksum_at = transport + 16;
    let Some(old_checksum) = read_u16(packet, checksum_at) else {
        return;
    };
    // The aligned words the two bytes fall in (two words when the option starts at an odd
    // offset).
    let first_word = transport + ((offset - transport) & !1);
    let last_word = transport + ((offset + 1 - transport) & !1);
    let old: [u16; 2] = [
        read_u16(packet, first_word).unwrap_or(0),
        read_u16(packet, last_word).unwrap_or(0),
    ];
    packet[offset..offset + 2].copy_from_slice(&value.to_be_bytes());
    let new: [u16; 2] = [
        read_u16(packet, first_word).unwrap_or(0),
        read_u16(packet, last_word).unwrap_or(0),
    ];
    let words = if first_word == last_word { 1 } else { 2 };
    // RFC 1624 equation 3: HC' = ~(~HC + ~m + m').
    let mut sum = u64::from(!old_checksum);
    for index in 0..words {
        sum += u64::from(!old[index]) + u64::from(new[index]);
    }
    let checksum = !checksum_fold(sum);
    packet[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
}

/// Two bytes, big-endian, at `offset`.
fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *bytes.get(offset)?,
        *bytes.get(offset.checked_add(1)?)?,
    ]))
}

/// Writes into `out` the Ethernet frame that answers `frame` (an Ethernet frame carrying the
/// IP packet `packet`, too large for a tunnel of `mtu`) with ICMP "fragmentation needed"
/// (IPv4) or ICMPv6 "packet too big", from `source` (the LAN address, of the packet's family,
/// of the member the packet was for) to the packet's sender. Returns the frame's length, or
/// `None` when no answer is due: IPv4 without DF (the packet is dropped; the node does not
/// fragment), an ICMP error, a fragment after the first, a source that cannot be answered, or
/// `out` too short.
pub fn write_too_big(
    out: &mut [u8],
    frame: &Ethernet,
    packet: &[u8],
    mtu: u16,
    source: IpAddr,
) -> Option<usize> {
    let answer = Ethernet {
        destination: frame.source,
        source: frame.destination,
        ethertype: frame.ethertype,
    };
    match (frame.ethertype, source) {
        (ETHERTYPE_IPV4, IpAddr::V4(source)) => {
            write_fragmentation_needed(out, &answer, packet, mtu, source)
        }
        (ETHERTYPE_IPV6, IpAddr::V6(source)) => {
            write_packet_too_big(out, &answer, packet, mtu, source)
        }
        _ => None,
    }
}

/// RFC 792 destination unreachable, code 4, with the next-hop MTU of RFC 1191 section 4.
fn write_fragmentation_needed(
    out: &mut [u8],
    ethernet: &Ethernet,
    packet: &[u8],
    mtu: u16,
    source: Ipv4Addr,
) -> Option<usize> {
    let header_length = usize::from(*packet.first()? & 0x0f) * 4;
    let flags_fragment = read_u16(packet, 6)?;
    let dont_fragment = flags_fragment & 0x4000 != 0;
    if !dont_fragment || flags_fragment & 0x1fff != 0 {
        return None;
    }
    if *packet.get(9)? == PROTOCOL_ICMP && ICMP_ERRORS.contains(packet.get(header_length)?) {
        return None;
    }
    let destination = Ipv4Addr::from(<[u8; 4]>::try_from(packet.get(12..16)?).ok()?);
    if destination.is_unspecified() || destination.is_broadcast() || destination.is_multicast() {
        return None;
    }
    let quoted = packet.len().min(ICMP_MAX_DATAGRAM - 20 - 8);
    let total = 20 + 8 + quoted;
    let frame = out.get_mut(..ETHERNET_HEADER + total)?;
    ethernet.write(frame)?;
    let ip = &mut frame[ETHERNET_HEADER..];
    ip[..20].fill(0);
    ip[0] = 0x45;
    // Internetwork control (RFC 791 section 3.1), as routers send ICMP.
    ip[1] = 0xc0;
    ip[8] = ANSWER_HOP_LIMIT;
    ip[9] = PROTOCOL_ICMP;
    ip[12..16].copy_from_slice(&source.octets());
    ip[16..20].copy_from_slice(&destination.octets());
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    let header_checksum = !checksum_fold(checksum_add(0, &ip[..20]));
    ip[10..12].copy_from_slice(&header_checksum.to_be_bytes());
    let icmp = &mut ip[20..];
    icmp[..8].copy_from_slice(&[
        ICMP_UNREACHABLE,
        ICMP_FRAGMENTATION_NEEDED,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
    icmp[8..].copy_from_slice(packet.get(..quoted)?);
    let checksum = !checksum_fold(checksum_add(0, icmp));
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    Some(ETHERNET_HEADER + total)
}

/// RFC 4443 section 3.2: packet too big with the MTU, quoting as much of the packet as fits
/// the IPv6 minimum MTU.
fn write_packet_too_big(
    out: &mut [u8],
    ethernet: &Ethernet,
    packet: &[u8],
    mtu: u16,
    source: Ipv6Addr,
) -> Option<usize> {
    let destination = Ipv6Addr::from(<[u8; 16]>::try_from(packet.get(8..24)?).ok()?);
    if destination.is_unspecified() || destination.is_multicast() {
        return None;
    }
    if *packet.get(6)? == NEXT_HEADER_ICMPV6 && *packet.get(40)? < ICMPV6_FIRST_INFORMATIONAL {
        return None;
    }
    let quoted = packet.len().min(ICMPV6_MAX_PACKET - 40 - 8);
    let message_length = 8 + quoted;
    let frame = out.get_mut(..ETHERNET_HEADER + 40 + message_length)?;
    ethernet.write(frame)?;
    let ip = &mut frame[ETHERNET_HEADER..];
    ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(message_length as u16).to_be_bytes());
    ip[6] = NEXT_HEADER_ICMPV6;
    ip[7] = ANSWER_HOP_LIMIT;
    ip[8..24].copy_from_slice(&source.octets());
    ip[24..40].copy_from_slice(&destination.octets());
    let icmp = &mut ip[40..];
    icmp[..4].copy_from_slice(&[ICMPV6_PACKET_TOO_BIG, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
    icmp[8..].copy_from_slice(packet.get(..quoted)?);
    let checksum = icmpv6_checksum(&source, &destination, icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    Some(ETHERNET_HEADER + 40 + message_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 checksum written independently of `offload`: 16-bit words, end-around carry.
    fn ones_complement(chunks: &[&[u8]]) -> u16 {
        let mut bytes = Vec::new();
        for chunk in chunks {
            bytes.extend_from_slice(chunk);
        }
        if !bytes.len().is_multiple_of(2) {
            bytes.push(0);
        }
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            sum += u32::from(pair[0]) << 8 | u32::from(pair[1]);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// Whether the TCP checksum of an IPv4 or IPv6 packet (no extension headers) verifies.
    fn tcp_checksum_verifies(packet: &[u8]) -> bool {
        let (transport, pseudo) = if packet[0] >> 4 == 4 {
            let header = usize::from(packet[0] & 0x0f) * 4;
            let length = (packet.len() - header) as u16;
            let mut pseudo = packet[12..20].to_vec();
            pseudo.extend_from_slice(&[0, PROTOCOL_TCP]);
            pseudo.extend_from_slice(&length.to_be_bytes());
            (header, pseudo)
        } else {
            let length = (packet.len() - 40) as u32;
            let mut pseudo = packet[8..40].to_vec();
            pseudo.extend_from_slice(&length.to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, PROTOCOL_TCP]);
            (40, pseudo)
        };
        ones_complement(&[&pseudo, &packet[transport..]]) == 0
    }

    /// A SYN with `options` (padded to 4 bytes) over IPv4 or IPv6, checksums complete.
    fn syn(ipv4: bool, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut options = options.to_vec();
        while !options.len().is_multiple_of(4) {
            options.push(OPTION_END);
        }
        let tcp_length = 20 + options.len() + payload.len();
        let mut packet = if ipv4 {
            let mut header = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, PROTOCOL_TCP, 0, 0];
            header.extend_from_slice(&[198, 18, 0, 11, 198, 18, 0, 12]);
            let total = (20 + tcp_length) as u16;
            header[2..4].copy_from_slice(&total.to_be_bytes());
            let checksum = ones_complement(&[&header]);
            header[10..12].copy_from_slice(&checksum.to_be_bytes());
            header
        } else {
            let mut header = vec![0x60, 0, 0, 0];
            header.extend_from_slice(&(tcp_length as u16).to_be_bytes());
            header.extend_from_slice(&[PROTOCOL_TCP, 64]);
            header.extend_from_slice(&"fd00::11".parse::<Ipv6Addr>().expect("ip").octets());
            header.extend_from_slice(&"fd00::12".parse::<Ipv6Addr>().expect("ip").octets());
            header
        };
        let transport = packet.len();
        packet.extend_from_slice(&[0xc3, 0x50, 0x00, 0xb3]); // ports 50000 -> 179
        packet.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        packet.extend_from_slice(&0u32.to_be_bytes());
        packet.push((((20 + options.len()) / 4) << 4) as u8);
        packet.push(TCP_SYN);
        packet.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
        packet.extend_from_slice(&options);
        packet.extend_from_slice(payload);
        // Checksum last, over the pseudo-header.
        let checksum = {
            let copy = packet.clone();
            let (pseudo, segment) = if ipv4 {
                let mut pseudo = copy[12..20].to_vec();
                pseudo.extend_from_slice(&[0, PROTOCOL_TCP]);
                pseudo.extend_from_slice(&(tcp_length as u16).to_be_bytes());
                (pseudo, copy[transport..].to_vec())
            } else {
                let mut pseudo = copy[8..40].to_vec();
                pseudo.extend_from_slice(&(tcp_length as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, PROTOCOL_TCP]);
                (pseudo, copy[transport..].to_vec())
            };
            ones_complement(&[&pseudo, &segment])
        };
        packet[transport + 16..transport + 18].copy_from_slice(&checksum.to_be_bytes());
        assert!(tcp_checksum_verifies(&packet));
        packet
    }

    fn mss_of(packet: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([packet[at], packet[at + 1]])
    }

    #[test]
    fn a_syn_announcing_more_than_fits_is_clamped_with_a_valid_checksum() {
        let limit = MssLimit::for_mtu(1420);
        // MSS first (even offset), as Linux sends it, for both families.
        for ipv4 in [true, false] {
            let mut packet = syn(ipv4, &[OPTION_MSS, 4, 0x05, 0xb4, 1, 1, 4, 2], b"");
            let transport = if ipv4 { 20 } else { 40 };
            assert!(is_tcp_syn(&packet));
            assert!(clamp_mss(&mut packet, limit));
            let expected = if ipv4 { 1380 } else { 1360 };
            assert_eq!(mss_of(&packet, transport + 22), expected);
            assert!(tcp_checksum_verifies(&packet), "ipv4 {ipv4}");
            // Already small enough: left alone.
            assert!(!clamp_mss(&mut packet, limit));
        }
    }

    #[test]
    fn an_mss_option_at_an_odd_offset_keeps_the_checksum_valid() {
        // NOP, then MSS: the value straddles two 16-bit words. A payload of odd length too.
        for ipv4 in [true, false] {
            let mut packet = syn(
                ipv4,
                &[OPTION_NOP, OPTION_MSS, 4, 0x23, 0x28, 1, 1, 1],
                b"tfo",
            );
            let transport = if ipv4 { 20 } else { 40 };
            assert!(clamp_mss(&mut packet, MssLimit::fixed(1300)));
            assert_eq!(mss_of(&packet, transport + 23), 1300);
            assert!(tcp_checksum_verifies(&packet), "ipv4 {ipv4}");
        }
    }

    #[test]
    fn segments_without_syn_or_with_broken_options_are_left_alone() {
        let limit = MssLimit::fixed(1000);
        let mut ack = syn(true, &[OPTION_MSS, 4, 0x05, 0xb4], b"");
        ack[20 + 13] = 0x10;
        let before = ack.clone();
        assert!(!is_tcp_syn(&ack));
        assert!(!clamp_mss(&mut ack, limit));
        assert_eq!(ack, before);
        // An option length of 0, of 1, and one running past the header.
        for broken in [[5u8, 0, 0, 0], [5, 1, 0, 0], [5, 9, 0, 0]] {
            let mut packet = syn(true, &broken, b"");
            let before = packet.clone();
            assert!(!clamp_mss(&mut packet, limit));
            assert_eq!(packet, before);
        }
        // A data offset past the packet's end.
        let mut packet = syn(true, &[OPTION_MSS, 4, 0x05, 0xb4], b"");
        packet[20 + 12] = 0xf0;
        assert!(!clamp_mss(&mut packet, limit));
        // Truncated at every length: never a panic.
        let full = syn(false, &[OPTION_MSS, 4, 0x05, 0xb4], b"");
        for length in 0..full.len() {
            let mut cut = full[..length].to_vec();
            let _ = clamp_mss(&mut cut, limit);
        }
    }

    fn ethernet(ethertype: u16) -> Ethernet {
        Ethernet {
            destination: [2, 0, 0, 0, 0, 0x12],
            source: [2, 0, 0, 0, 0, 0x11],
            ethertype,
        }
    }

    #[test]
    fn a_large_ipv4_packet_with_df_gets_fragmentation_needed() {
        let packet = syn(true, &[], &[0x5a; 1480]);
        let mut out = [0u8; 2048];
        let source = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 12));
        let length = write_too_big(&mut out, &ethernet(ETHERTYPE_IPV4), &packet, 1420, source)
            .expect("answered");
        let frame = &out[..length];
        assert_eq!(&frame[..6], &[2, 0, 0, 0, 0, 0x11], "back to the sender");
        assert_eq!(&frame[6..12], &[2, 0, 0, 0, 0, 0x12]);
        let ip = &frame[14..];
        assert_eq!(ip.len(), ICMP_MAX_DATAGRAM, "RFC 1812: at most 576 bytes");
        assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), ip.len());
        assert_eq!(ones_complement(&[&ip[..20]]), 0, "IPv4 header checksum");
        assert_eq!(&ip[12..16], &[198, 18, 0, 12]);
        assert_eq!(&ip[16..20], &[198, 18, 0, 11]);
        let icmp = &ip[20..];
        assert_eq!((icmp[0], icmp[1]), (3, 4));
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1420, "next-hop MTU");
        assert_eq!(ones_complement(&[icmp]), 0, "ICMP checksum");
        assert_eq!(&icmp[8..], &packet[..icmp.len() - 8], "the packet quoted");
        // Without DF: no answer (dropped only).
        let mut no_df = packet.clone();
        no_df[6] = 0;
        assert_eq!(
            write_too_big(&mut out, &ethernet(ETHERTYPE_IPV4), &no_df, 1420, source),
            None
        );
    }

    #[test]
    fn a_large_ipv6_packet_gets_packet_too_big() {
        let packet = syn(false, &[], &[0xa5; 1600]);
        let mut out = [0u8; 2048];
        let source: Ipv6Addr = "fd00::12".parse().expect("ip");
        let length = write_too_big(
            &mut out,
            &ethernet(ETHERTYPE_IPV6),
            &packet,
            1420,
            IpAddr::V6(source),
        )
        .expect("answered");
        let ip = &out[14..length];
        assert_eq!(
            ip.len(),
            ICMPV6_MAX_PACKET,
            "RFC 4443: within the minimum MTU"
        );
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[4], ip[5]])) + 40,
            ip.len()
        );
        assert_eq!(ip[6], NEXT_HEADER_ICMPV6);
        let destination: Ipv6Addr = "fd00::11".parse().expect("ip");
        assert_eq!(&ip[24..40], &destination.octets());
        let icmp = &ip[40..];
        assert_eq!((icmp[0], icmp[1]), (2, 0));
        assert_eq!(
            u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            1420
        );
        let mut pseudo = source.octets().to_vec();
        pseudo.extend_from_slice(&destination.octets());
        pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
        assert_eq!(ones_complement(&[&pseudo, icmp]), 0, "ICMPv6 checksum");
        assert_eq!(&icmp[8..], &packet[..icmp.len() - 8]);
    }

    #[test]
    fn icmp_errors_are_not_answered_with_errors() {
        let mut out = [0u8; 2048];
        let mut packet = syn(true, &[], &[0; 1500]);
        packet[9] = PROTOCOL_ICMP;
        packet[20] = ICMP_UNREACHABLE;
        let source = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 12));
        assert_eq!(
            write_too_big(&mut out, &ethernet(ETHERTYPE_IPV4), &packet, 1420, source),
            None
        );
        packet[20] = 8; // echo request: answered
        assert!(
            write_too_big(&mut out, &ethernet(ETHERTYPE_IPV4), &packet, 1420, source).is_some()
        );
        let mut packet = syn(false, &[], &[0; 1500]);
        packet[6] = NEXT_HEADER_ICMPV6;
        packet[40] = ICMPV6_PACKET_TOO_BIG;
        let source = IpAddr::V6("fd00::12".parse().expect("ip"));
        assert_eq!(
            write_too_big(&mut out, &ethernet(ETHERTYPE_IPV6), &packet, 1420, source),
            None
        );
        // Truncated packets never panic.
        let v4_source = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 12));
        for (ipv4, ethertype, source) in [
            (true, ETHERTYPE_IPV4, v4_source),
            (false, ETHERTYPE_IPV6, source),
        ] {
            let full = syn(ipv4, &[], &[0; 100]);
            for length in 0..full.len() {
                let _ = write_too_big(
                    &mut out,
                    &ethernet(ethertype),
                    &full[..length],
                    1420,
                    source,
                );
            }
        }
    }
}
