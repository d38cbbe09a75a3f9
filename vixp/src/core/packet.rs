//! Reading and writing the few headers the data path looks at: Ethernet II, ARP (RFC 826),
//! IPv4 (RFC 791), IPv6 (RFC 8200) and ICMPv6 neighbour discovery (RFC 4861). Every read is
//! checked (`get`, never an index before a length check); nothing here allocates. Must not
//! decide what to do with a packet.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of an Ethernet II header.
pub const ETHERNET_HEADER: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// IPv6 next header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// ICMPv6 types of neighbour discovery and redirect (RFC 4861 section 4): router
/// solicitation 133 to redirect 137.
pub const ICMPV6_ND_TYPES: std::ops::RangeInclusive<u8> = 133..=137;
/// ICMPv6 neighbour solicitation (RFC 4861 section 4.3).
const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 neighbour advertisement (RFC 4861 section 4.4).
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Length of an ARP packet for IPv4 over Ethernet.
const ARP_LENGTH: usize = 28;
/// Length of the neighbour advertisement this node writes: ICMPv6 header, flags, target and
/// one target link-layer address option.
const NEIGHBOR_ADVERTISEMENT_LENGTH: usize = 32;

/// Two bytes, big-endian, at `offset`.
fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    let slice = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_be_bytes([*slice.first()?, *slice.get(1)?]))
}

/// `N` bytes at `offset`.
fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    /// Destination MAC.
    pub destination: [u8; 6],
    /// Source MAC.
    pub source: [u8; 6],
    /// EtherType.
    pub ethertype: u16,
}

impl Ethernet {
    /// The header of `frame` and its payload.
    pub fn parse(frame: &[u8]) -> Option<(Ethernet, &[u8])> {
        let header = Ethernet {
            destination: read_array(frame, 0)?,
            source: read_array(frame, 6)?,
            ethertype: read_u16(frame, 12)?,
        };
        Some((header, frame.get(ETHERNET_HEADER..)?))
    }

    /// Writes the header into the first 14 bytes of `out`; `None` when `out` is shorter.
    pub fn write(&self, out: &mut [u8]) -> Option<()> {
        let header = out.get_mut(..ETHERNET_HEADER)?;
        header[..6].copy_from_slice(&self.destination);
        header[6..12].copy_from_slice(&self.source);
        header[12..].copy_from_slice(&self.ethertype.to_be_bytes());
        Some(())
    }
}

/// Whether a MAC address is a group (broadcast or multicast) address.
pub fn is_group_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// The addresses of an IP packet, checked against its own length fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpHeader {
    /// IPv4.
    V4 {
        /// Source address.
        source: Ipv4Addr,
        /// Destination address.
        destination: Ipv4Addr,
        /// Total length from the header (RFC 791 section 3.1).
        total_length: usize,
    },
    /// IPv6.
    V6 {
        /// Source address.
        source: Ipv6Addr,
        /// Destination address.
        destination: Ipv6Addr,
        /// Header plus payload length (RFC 8200 section 3).
        total_length: usize,
        /// Next header of the fixed header.
        next_header: u8,
        /// Hop limit.
        hop_limit: u8,
    },
}

impl IpHeader {
    /// The IP header at the start of `packet`; `None` when it is not IPv4 or IPv6 or its
    /// lengths do not fit the bytes given.
    pub fn parse(packet: &[u8]) -> Option<IpHeader> {
        let first = *packet.first()?;
        match first >> 4 {
            4 => {
                let header_length = usize::from(first & 0x0f) * 4;
                let total_length = usize::from(read_u16(packet, 2)?);
                if header_length < 20 || total_length < header_length || total_length > packet.len()
                {
                    return None;
                }
                Some(IpHeader::V4 {
                    source: Ipv4Addr::from(read_array::<4>(packet, 12)?),
                    destination: Ipv4Addr::from(read_array::<4>(packet, 16)?),
                    total_length,
                })
            }
            6 => {
                let total_length = 40 + usize::from(read_u16(packet, 4)?);
                if packet.len() < total_length {
                    return None;
                }
                Some(IpHeader::V6 {
                    source: Ipv6Addr::from(read_array::<16>(packet, 8)?),
                    destination: Ipv6Addr::from(read_array::<16>(packet, 24)?),
                    total_length,
                    next_header: *packet.get(6)?,
                    hop_limit: *packet.get(7)?,
                })
            }
            _ => None,
        }
    }

    /// The packet's length from its header.
    pub fn total_length(&self) -> usize {
        match self {
            IpHeader::V4 { total_length, .. } | IpHeader::V6 { total_length, .. } => *total_length,
        }
    }

    /// The EtherType that carries this packet.
    pub fn ethertype(&self) -> u16 {
        match self {
            IpHeader::V4 { .. } => ETHERTYPE_IPV4,
            IpHeader::V6 { .. } => ETHERTYPE_IPV6,
        }
    }
}

/// An ARP packet for IPv4 over Ethernet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// ARP request operation.
    pub const REQUEST: u16 = 1;
    /// ARP reply operation.
    pub const REPLY: u16 = 2;

    /// The ARP packet in an Ethernet payload; `None` unless it is Ethernet/IPv4 ARP.
    pub fn parse(payload: &[u8]) -> Option<Arp> {
        let hardware = read_u16(payload, 0)?;
        let protocol = read_u16(payload, 2)?;
        if hardware != 1
            || protocol != ETHERTYPE_IPV4
            || payload.get(4) != Some(&6)
            || payload.get(5) != Some(&4)
        {
            return None;
        }
        Some(Arp {
            operation: read_u16(payload, 6)?,
            sender_mac: read_array(payload, 8)?,
            sender_ip: Ipv4Addr::from(read_array::<4>(payload, 14)?),
            target_ip: Ipv4Addr::from(read_array::<4>(payload, 24)?),
        })
    }
}

/// Writes an Ethernet frame with the ARP reply "`owner_ip` is at `owner_mac`" to `request`'s
/// sender; returns the frame length, `None` when `out` is too short.
pub fn write_arp_reply(
    out: &mut [u8],
    request: &Arp,
    owner_mac: [u8; 6],
    owner_ip: Ipv4Addr,
) -> Option<usize> {
    let length = ETHERNET_HEADER + ARP_LENGTH;
    Ethernet {
        destination: request.sender_mac,
        source: owner_mac,
        ethertype: ETHERTYPE_ARP,
    }
    .write(out)?;
    let arp = out.get_mut(ETHERNET_HEADER..length)?;
    arp[0..2].copy_from_slice(&1u16.to_be_bytes());
    arp[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    arp[4] = 6;
    arp[5] = 4;
    arp[6..8].copy_from_slice(&Arp::REPLY.to_be_bytes());
    arp[8..14].copy_from_slice(&owner_mac);
    arp[14..18].copy_from_slice(&owner_ip.octets());
    arp[18..24].copy_from_slice(&request.sender_mac);
    arp[24..28].copy_from_slice(&request.sender_ip.octets());
    Some(length)
}

/// The target of a neighbour solicitation, when `packet` (an IPv6 packet with header
/// `header`) is one: ICMPv6 type 135 code 0 directly after the fixed header, hop limit 255
/// (RFC 4861 section 7.1.1).
pub fn neighbor_solicitation_target(header: &IpHeader, packet: &[u8]) -> Option<Ipv6Addr> {
    let IpHeader::V6 {
        next_header,
        hop_limit,
        total_length,
        ..
    } = header
    else {
        return None;
    };
    if *next_header != NEXT_HEADER_ICMPV6 || *hop_limit != 255 {
        return None;
    }
    let icmp = packet.get(40..*total_length)?;
    if icmp.first() != Some(&ICMPV6_NEIGHBOR_SOLICITATION) || icmp.get(1) != Some(&0) {
        return None;
    }
    Some(Ipv6Addr::from(read_array::<16>(icmp, 8)?))
}

/// The ICMPv6 type of an IPv6 packet whose fixed header is followed directly by ICMPv6.
pub fn icmpv6_type(header: &IpHeader, packet: &[u8]) -> Option<u8> {
    match header {
        IpHeader::V6 {
            next_header: NEXT_HEADER_ICMPV6,
            ..
        } => packet.get(40).copied(),
        _ => None,
    }
}

/// What a neighbour advertisement answers.
#[derive(Debug, Clone, Copy)]
pub struct Advertisement {
    /// MAC of the node that asked (the frame's source).
    pub requester_mac: [u8; 6],
    /// IPv6 source of the solicitation (`::` during duplicate address detection).
    pub requester_ip: Ipv6Addr,
    /// The address asked for.
    pub target: Ipv6Addr,
    /// The MAC that owns it.
    pub owner_mac: [u8; 6],
}

/// All-nodes multicast group, the destination of an advertisement answering duplicate address
/// detection (RFC 4861 section 7.2.4).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Writes an Ethernet frame with the neighbour advertisement answering a solicitation (RFC 4861
/// sections 4.4 and 7.2.4): solicited and override flags set, with a target link-layer
/// address option. Returns the frame length, `None` when `out` is too short.
pub fn write_neighbor_advertisement(out: &mut [u8], answer: &Advertisement) -> Option<usize> {
    let duplicate_address_detection = answer.requester_ip.is_unspecified();
    let (destination_ip, destination_mac) = if duplicate_address_detection {
        (ALL_NODES, [0x33, 0x33, 0, 0, 0, 1])
    } else {
        (answer.requester_ip, answer.requester_mac)
    };
    let length = ETHERNET_HEADER + 40 + NEIGHBOR_ADVERTISEMENT_LENGTH;
    Ethernet {
        destination: destination_mac,
        source: answer.owner_mac,
        ethertype: ETHERTYPE_IPV6,
    }
    .write(out)?;
    let ip = out.get_mut(ETHERNET_HEADER..length)?;
    ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(NEIGHBOR_ADVERTISEMENT_LENGTH as u16).to_be_bytes());
    ip[6] = NEXT_HEADER_ICMPV6;
    ip[7] = 255;
    ip[8..24].copy_from_slice(&answer.target.octets());
    ip[24..40].copy_from_slice(&destination_ip.octets());
    let icmp = &mut ip[40..];
    icmp.fill(0);
    icmp[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
    // Flags: router 0, solicited unless answering DAD, override 1 (RFC 4861 section 4.4).
    icmp[4] = if duplicate_address_detection {
        0x20
    } else {
        0x60
    };
    icmp[8..24].copy_from_slice(&answer.target.octets());
    icmp[24] = 2; // Target Link-Layer Address option (RFC 4861 section 4.6.1)
    icmp[25] = 1; // in units of 8 bytes
    icmp[26..32].copy_from_slice(&answer.owner_mac);
    let checksum = icmpv6_checksum(&answer.target, &destination_ip, icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    Some(length)
}

/// The ICMPv6 checksum of `message` (checksum field zero or the value to verify) between two
/// addresses (RFC 4443 section 2.3, pseudo-header of RFC 8200 section 8.1).
pub fn icmpv6_checksum(source: &Ipv6Addr, destination: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let high = u64::from(pair.first().copied().unwrap_or(0));
            let low = u64::from(pair.get(1).copied().unwrap_or(0));
            sum += (high << 8) | low;
        }
    };
    add(&source.octets());
    add(&destination.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(message);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_frames_are_not_ethernet() {
        for length in 0..ETHERNET_HEADER {
            assert!(Ethernet::parse(&[0u8; 20][..length]).is_none());
        }
        let (header, payload) = Ethernet::parse(&[0u8; 14]).expect("header only");
        assert_eq!(header.ethertype, 0);
        assert!(payload.is_empty());
    }

    #[test]
    fn ip_lengths_must_fit() {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert!(IpHeader::parse(&packet).is_some());
        packet[2..4].copy_from_slice(&21u16.to_be_bytes());
        assert!(IpHeader::parse(&packet).is_none());
        packet[0] = 0x44; // header length 16 bytes
        packet[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert!(IpHeader::parse(&packet).is_none());
        let mut six = [0u8; 40];
        six[0] = 0x60;
        assert!(IpHeader::parse(&six).is_some());
        six[5] = 1;
        assert!(IpHeader::parse(&six).is_none());
        assert!(IpHeader::parse(&[0x60; 39]).is_none());
        assert!(IpHeader::parse(&[]).is_none());
    }

    #[test]
    fn an_arp_reply_answers_the_request() {
        let request = Arp {
            operation: Arp::REQUEST,
            sender_mac: [2, 1, 1, 1, 1, 1],
            sender_ip: Ipv4Addr::new(198, 18, 0, 11),
            target_ip: Ipv4Addr::new(198, 18, 0, 12),
        };
        let mut out = [0u8; 64];
        let length = write_arp_reply(&mut out, &request, [2, 2, 2, 2, 2, 2], request.target_ip)
            .expect("fits");
        assert_eq!(length, 42);
        let (ethernet, payload) = Ethernet::parse(&out[..length]).expect("frame");
        assert_eq!(ethernet.destination, request.sender_mac);
        assert_eq!(ethernet.ethertype, ETHERTYPE_ARP);
        let reply = Arp::parse(payload).expect("arp");
        assert_eq!(reply.operation, Arp::REPLY);
        assert_eq!(reply.sender_mac, [2, 2, 2, 2, 2, 2]);
        assert_eq!(reply.sender_ip, request.target_ip);
        assert_eq!(reply.target_ip, request.sender_ip);
        assert!(write_arp_reply(&mut [0u8; 41], &request, [2; 6], request.target_ip).is_none());
    }

    #[test]
    fn a_neighbor_advertisement_has_a_valid_checksum() {
        let answer = Advertisement {
            requester_mac: [2, 1, 1, 1, 1, 1],
            requester_ip: "fd00:198:18::11".parse().expect("address"),
            target: "fd00:198:18::12".parse().expect("address"),
            owner_mac: [2, 2, 2, 2, 2, 2],
        };
        let mut out = [0u8; 128];
        let length = write_neighbor_advertisement(&mut out, &answer).expect("fits");
        let (ethernet, packet) = Ethernet::parse(&out[..length]).expect("frame");
        assert_eq!(ethernet.destination, answer.requester_mac);
        let header = IpHeader::parse(packet).expect("ipv6");
        assert_eq!(icmpv6_type(&header, packet), Some(136));
        // Summing a message with its checksum in place gives zero (RFC 1071).
        assert_eq!(
            icmpv6_checksum(&answer.target, &answer.requester_ip, &packet[40..]),
            0
        );
    }

    #[test]
    fn the_checksum_matches_a_known_packet() {
        // ICMPv6 echo request from fe80::1 to fe80::2, id 0x1234 seq 1, no data; checksum
        // computed by hand from RFC 1071's one's complement sum.
        let source: Ipv6Addr = "fe80::1".parse().expect("address");
        let destination: Ipv6Addr = "fe80::2".parse().expect("address");
        let message = [128u8, 0, 0, 0, 0x12, 0x34, 0, 1];
        // Words: fe80+0001+fe80+0002+0008+003a+8000+1234+0001 = 0x2_8f7a, folded 0x8f7c,
        // complemented 0x7083.
        assert_eq!(icmpv6_checksum(&source, &destination, &message), 0x7083);
    }

    #[test]
    fn a_solicitation_needs_hop_limit_255() {
        let mut packet = [0u8; 64];
        packet[0] = 0x60;
        packet[4..6].copy_from_slice(&24u16.to_be_bytes());
        packet[6] = NEXT_HEADER_ICMPV6;
        packet[7] = 255;
        packet[40] = 135;
        let target: Ipv6Addr = "fd00::12".parse().expect("address");
        packet[48..64].copy_from_slice(&target.octets());
        let header = IpHeader::parse(&packet).expect("ipv6");
        assert_eq!(neighbor_solicitation_target(&header, &packet), Some(target));
        packet[7] = 64;
        let header = IpHeader::parse(&packet).expect("ipv6");
        assert_eq!(neighbor_solicitation_target(&header, &packet), None);
    }
}
