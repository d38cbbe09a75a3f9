//! Encoding UPDATE messages from project types: announcements packed into as few messages as
//! fit, withdrawals and End-of-RIB markers. Written by hand for speed (path attributes are
//! encoded once per call, NLRI straight into the message); the codec decodes what this
//! writes in the tests. Must not choose routes or apply policy.

use std::net::IpAddr;

use bytes::Bytes;

use crate::types::{AsPath, Attributes, Family, Prefix, SegmentKind};
use crate::wire::{AS_TRANS, HEADER_LEN, MessageKind, afi_safi, put_header};

/// What the peer negotiated that changes how an UPDATE is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeContext {
    /// The peer is 4-octet AS capable (RFC 6793); otherwise AS_PATH is written with 2-octet
    /// ASNs and AS4_PATH / AS4_AGGREGATOR carry the rest.
    pub four_octet_as: bool,
    /// Largest message: 4096, or 65535 with Extended Messages (RFC 8654).
    pub max_message_len: u16,
    /// The peer is in another AS: LOCAL_PREF is never sent (RFC 4271 section 5.1.5).
    pub external: bool,
}

/// Attribute flags (RFC 4271 section 4.3).
mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
    pub const WELL_KNOWN: u8 = TRANSITIVE;
    pub const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
}

/// Attribute type codes written by this module.
mod attribute_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
    /// Types generated from `Attributes` fields; never copied from `Attributes::other`.
    pub const GENERATED: [u8; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 32];
}

/// Body header: marker, length, type, withdrawn length, path attribute length.
const UPDATE_FIXED_LEN: usize = HEADER_LEN + 4;
/// MP_REACH_NLRI / MP_UNREACH_NLRI attribute header with a 2-octet length.
const MP_ATTRIBUTE_HEADER_LEN: usize = 4;

/// The path attributes of one announcement, encoded once: those that sort before the
/// MP_REACH_NLRI attribute (`low`) and after it (`high`), in ascending type order
/// (RFC 4271 section 5: SHOULD be ordered).
struct EncodedAttributes {
    low: Vec<u8>,
    high: Vec<u8>,
}

/// How the NLRI of one announcement travels.
enum Carrier {
    /// IPv4 body NLRI with a NEXT_HOP attribute (RFC 4271 section 4.3).
    Body,
    /// MP_REACH_NLRI with this next-hop field (RFC 4760 section 3, RFC 2545 section 3).
    MpReach { family: Family, next_hop: Vec<u8> },
}

/// Appends UPDATE messages announcing `prefixes` with `attributes` to `out`, as many prefixes
/// per message as fit in `cx.max_message_len`.
///
/// All prefixes must share the family of the first (checked in debug builds; in release
/// builds prefixes of the other family are left out). IPv4 goes in the body NLRI with
/// NEXT_HOP (in MP_REACH_NLRI with an IPv6 next hop, RFC 8950, when the next hop is IPv6);
/// IPv6 goes in MP_REACH_NLRI with the global and optional link-local next hop (RFC 2545;
/// an IPv4 next hop is sent IPv4-mapped). LOCAL_PREF is left out when `cx.external`
/// (RFC 4271 section 5.1.5); optional transitive attributes from `attributes.other` gain the
/// Partial bit (RFC 4271 section 5) except OTC, which vixp recognizes, other kinds of `other` entries are not sent. A peer that
/// is not 4-octet capable gets AS_TRANS in AS_PATH and AGGREGATOR plus AS4_PATH and
/// AS4_AGGREGATOR (RFC 6793 section 4.2.2).
///
/// When the attributes alone leave no room for a prefix in a message, nothing is written
/// for these routes: such routes cannot be sent to this peer ([`announcement_fits`] says so
/// in advance).
pub fn encode_announcements(
    attributes: &Attributes,
    prefixes: &[Prefix],
    cx: &EncodeContext,
    out: &mut Vec<Bytes>,
) {
    let Some(first) = prefixes.first() else {
        return;
    };
    let family = Family::of(first);
    debug_assert!(
        prefixes.iter().all(|prefix| Family::of(prefix) == family),
        "encode_announcements: all prefixes must share one family"
    );
    let carrier = carrier(attributes, family);
    let encoded = encode_attributes(attributes, matches!(carrier, Carrier::Body), cx);
    let max = usize::from(cx.max_message_len);
    let of_family = prefixes
        .iter()
        .filter(|prefix| Family::of(prefix) == family);
    match carrier {
        Carrier::Body => {
            let attributes_len = encoded.low.len() + encoded.high.len();
            let overhead = UPDATE_FIXED_LEN + attributes_len;
            let open = |message: &mut Vec<u8>| {
                put_header(message, 0, MessageKind::Update);
                message.extend_from_slice(&[0, 0]);
                message.extend_from_slice(&(attributes_len as u16).to_be_bytes());
                message.extend_from_slice(&encoded.low);
                message.extend_from_slice(&encoded.high);
            };
            let close = |message: &mut Vec<u8>, _nlri_len: usize| set_length(message);
            pack(of_family, max, overhead, open, close, out);
        }
        Carrier::MpReach { family, next_hop } => {
            let (afi, safi) = afi_safi(family);
            let mp_fixed = MP_ATTRIBUTE_HEADER_LEN + 5 + next_hop.len();
            let overhead = UPDATE_FIXED_LEN + encoded.low.len() + mp_fixed + encoded.high.len();
            let mp_length_at = UPDATE_FIXED_LEN + encoded.low.len() + 2;
            let open = |message: &mut Vec<u8>| {
                put_header(message, 0, MessageKind::Update);
                message.extend_from_slice(&[0, 0, 0, 0]);
                message.extend_from_slice(&encoded.low);
                message.extend_from_slice(&[
                    flag::OPTIONAL | flag::EXTENDED_LENGTH,
                    attribute_type::MP_REACH_NLRI,
                    0,
                    0,
                ]);
                message.extend_from_slice(&afi.to_be_bytes());
                message.push(safi);
                message.push(next_hop.len() as u8);
                message.extend_from_slice(&next_hop);
                message.push(0);
            };
            let close = |message: &mut Vec<u8>, nlri_len: usize| {
                message.extend_from_slice(&encoded.high);
                let mp_len = mp_fixed - MP_ATTRIBUTE_HEADER_LEN + nlri_len;
                message[mp_length_at..mp_length_at + 2]
                    .copy_from_slice(&(mp_len as u16).to_be_bytes());
                let attributes_len = message.len() - UPDATE_FIXED_LEN;
                message[HEADER_LEN + 2..UPDATE_FIXED_LEN]
                    .copy_from_slice(&(attributes_len as u16).to_be_bytes());
                set_length(message);
            };
            pack(of_family, max, overhead, open, close, out);
        }
    }
}

/// Whether an announcement with these attributes fits in one message for this peer.
pub fn announcement_fits(attributes: &Attributes, family: Family, cx: &EncodeContext) -> bool {
    let carrier = carrier(attributes, family);
    let encoded = encode_attributes(attributes, matches!(carrier, Carrier::Body), cx);
    let mp = match &carrier {
        Carrier::Body => 0,
        Carrier::MpReach { next_hop, .. } => MP_ATTRIBUTE_HEADER_LEN + 5 + next_hop.len(),
    };
    let largest_prefix = match family {
        Family::Ipv4 => 5,
        Family::Ipv6 => 17,
    };
    UPDATE_FIXED_LEN + encoded.low.len() + encoded.high.len() + mp + largest_prefix
        <= usize::from(cx.max_message_len)
}

/// Appends UPDATE messages withdrawing `prefixes` to `out`, packed: IPv4 in the body
/// withdrawn routes, IPv6 in MP_UNREACH_NLRI (RFC 4760 section 4). Mixed families are fine.
pub fn encode_withdrawals(prefixes: &[Prefix], cx: &EncodeContext, out: &mut Vec<Bytes>) {
    let max = usize::from(cx.max_message_len);
    let ipv4 = prefixes
        .iter()
        .filter(|prefix| Family::of(prefix) == Family::Ipv4);
    let open = |message: &mut Vec<u8>| {
        put_header(message, 0, MessageKind::Update);
        message.extend_from_slice(&[0, 0]);
    };
    let close = |message: &mut Vec<u8>, nlri_len: usize| {
        message[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&(nlri_len as u16).to_be_bytes());
        message.extend_from_slice(&[0, 0]);
        set_length(message);
    };
    pack(ipv4, max, UPDATE_FIXED_LEN, open, close, out);

    let ipv6 = prefixes
        .iter()
        .filter(|prefix| Family::of(prefix) == Family::Ipv6);
    let (afi, safi) = afi_safi(Family::Ipv6);
    let open = |message: &mut Vec<u8>| {
        put_header(message, 0, MessageKind::Update);
        message.extend_from_slice(&[0, 0, 0, 0]);
        message.extend_from_slice(&[
            flag::OPTIONAL | flag::EXTENDED_LENGTH,
            attribute_type::MP_UNREACH_NLRI,
            0,
            0,
        ]);
        message.extend_from_slice(&afi.to_be_bytes());
        message.push(safi);
    };
    let close = |message: &mut Vec<u8>, nlri_len: usize| {
        let mp_len = 3 + nlri_len;
        message[UPDATE_FIXED_LEN + 2..UPDATE_FIXED_LEN + 4]
            .copy_from_slice(&(mp_len as u16).to_be_bytes());
        let attributes_len = MP_ATTRIBUTE_HEADER_LEN + mp_len;
        message[HEADER_LEN + 2..UPDATE_FIXED_LEN]
            .copy_from_slice(&(attributes_len as u16).to_be_bytes());
        set_length(message);
    };
    pack(
        ipv6,
        max,
        UPDATE_FIXED_LEN + MP_ATTRIBUTE_HEADER_LEN + 3,
        open,
        close,
        out,
    );
}

/// The End-of-RIB marker of `family` (RFC 4724 section 2): an empty UPDATE for IPv4, an
/// UPDATE with an empty MP_UNREACH_NLRI for IPv6.
pub fn encode_end_of_rib(family: Family) -> Bytes {
    let mut message = Vec::with_capacity(UPDATE_FIXED_LEN + 6);
    put_header(&mut message, 0, MessageKind::Update);
    match family {
        Family::Ipv4 => message.extend_from_slice(&[0, 0, 0, 0]),
        Family::Ipv6 => {
            let (afi, safi) = afi_safi(family);
            message.extend_from_slice(&[
                0,
                0,
                0,
                6,
                flag::OPTIONAL,
                attribute_type::MP_UNREACH_NLRI,
                3,
            ]);
            message.extend_from_slice(&afi.to_be_bytes());
            message.push(safi);
        }
    }
    set_length(&mut message);
    Bytes::from(message)
}

/// Fills messages with NLRI: `open` writes everything before the NLRI, `close` everything
/// after it and the length fields; `overhead` is the size of a message without NLRI.
fn pack<'a>(
    prefixes: impl Iterator<Item = &'a Prefix>,
    max: usize,
    overhead: usize,
    open: impl Fn(&mut Vec<u8>),
    close: impl Fn(&mut Vec<u8>, usize),
    out: &mut Vec<Bytes>,
) {
    let Some(room) = max.checked_sub(overhead) else {
        return;
    };
    let mut prefixes = prefixes.peekable();
    while prefixes.peek().is_some() {
        let mut message = Vec::with_capacity(max);
        open(&mut message);
        let start = message.len();
        while let Some(prefix) = prefixes.peek() {
            let length = prefix.prefix_len();
            let octets = usize::from(length).div_ceil(8);
            if message.len() - start + 1 + octets > room {
                break;
            }
            message.push(length);
            match prefix.network() {
                IpAddr::V4(address) => message.extend_from_slice(&address.octets()[..octets]),
                IpAddr::V6(address) => message.extend_from_slice(&address.octets()[..octets]),
            }
            prefixes.next();
        }
        let nlri_len = message.len() - start;
        if nlri_len == 0 {
            return;
        }
        close(&mut message, nlri_len);
        out.push(Bytes::from(message));
    }
}

/// Writes the total length into the header of a finished message.
fn set_length(message: &mut [u8]) {
    let length = message.len() as u16;
    message[16..18].copy_from_slice(&length.to_be_bytes());
}

/// Body NLRI or MP_REACH_NLRI, and the next-hop field for the latter.
fn carrier(attributes: &Attributes, family: Family) -> Carrier {
    match (family, attributes.next_hop) {
        (Family::Ipv4, IpAddr::V4(_)) => Carrier::Body,
        (_, next_hop) => {
            let global = match next_hop {
                IpAddr::V4(address) => address.to_ipv6_mapped(),
                IpAddr::V6(address) => address,
            };
            let mut field = global.octets().to_vec();
            if let (Family::Ipv6, Some(link_local)) = (family, attributes.link_local_next_hop) {
                field.extend_from_slice(&link_local.octets());
            }
            Carrier::MpReach {
                family,
                next_hop: field,
            }
        }
    }
}

/// Encodes every path attribute except MP_REACH_NLRI, sorted by type code.
fn encode_attributes(
    attributes: &Attributes,
    body_next_hop: bool,
    cx: &EncodeContext,
) -> EncodedAttributes {
    let mut list: Vec<(u8, u8, Vec<u8>)> = Vec::with_capacity(12);
    let origin = match attributes.origin {
        crate::types::Origin::Igp => 0,
        crate::types::Origin::Egp => 1,
        crate::types::Origin::Incomplete => 2,
    };
    list.push((attribute_type::ORIGIN, flag::WELL_KNOWN, vec![origin]));
    list.push((
        attribute_type::AS_PATH,
        flag::WELL_KNOWN,
        as_path(&attributes.as_path, cx.four_octet_as),
    ));
    if body_next_hop && let IpAddr::V4(next_hop) = attributes.next_hop {
        list.push((
            attribute_type::NEXT_HOP,
            flag::WELL_KNOWN,
            next_hop.octets().to_vec(),
        ));
    }
    if let Some(med) = attributes.med {
        list.push((
            attribute_type::MED,
            flag::OPTIONAL,
            med.to_be_bytes().to_vec(),
        ));
    }
    if let Some(local_pref) = attributes.local_pref
        && !cx.external
    {
        list.push((
            attribute_type::LOCAL_PREF,
            flag::WELL_KNOWN,
            local_pref.to_be_bytes().to_vec(),
        ));
    }
    if attributes.atomic_aggregate {
        list.push((
            attribute_type::ATOMIC_AGGREGATE,
            flag::WELL_KNOWN,
            Vec::new(),
        ));
    }
    if let Some((asn, address)) = attributes.aggregator {
        let mut value = Vec::with_capacity(8);
        if cx.four_octet_as {
            value.extend_from_slice(&asn.to_be_bytes());
        } else {
            value.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes());
            if asn > u32::from(u16::MAX) {
                let mut as4 = asn.to_be_bytes().to_vec();
                as4.extend_from_slice(&address.octets());
                list.push((
                    attribute_type::AS4_AGGREGATOR,
                    flag::OPTIONAL_TRANSITIVE,
                    as4,
                ));
            }
        }
        value.extend_from_slice(&address.octets());
        list.push((attribute_type::AGGREGATOR, flag::OPTIONAL_TRANSITIVE, value));
    }
    if !attributes.communities.is_empty() {
        let value = attributes
            .communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        list.push((
            attribute_type::COMMUNITIES,
            flag::OPTIONAL_TRANSITIVE,
            value,
        ));
    }
    if !attributes.extended_communities.is_empty() {
        let value = attributes
            .extended_communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        list.push((
            attribute_type::EXTENDED_COMMUNITIES,
            flag::OPTIONAL_TRANSITIVE,
            value,
        ));
    }
    if !cx.four_octet_as
        && attributes
            .as_path
            .asns()
            .any(|asn| asn > u32::from(u16::MAX))
    {
        list.push((
            attribute_type::AS4_PATH,
            flag::OPTIONAL_TRANSITIVE,
            as4_path(&attributes.as_path),
        ));
    }
    if !attributes.large_communities.is_empty() {
        let value = attributes
            .large_communities
            .iter()
            .flat_map(|c| [c.0.to_be_bytes(), c.1.to_be_bytes(), c.2.to_be_bytes()])
            .flatten()
            .collect();
        list.push((
            attribute_type::LARGE_COMMUNITY,
            flag::OPTIONAL_TRANSITIVE,
            value,
        ));
    }
    for raw in &attributes.other {
        let optional_transitive =
            raw.flags & flag::OPTIONAL_TRANSITIVE == flag::OPTIONAL_TRANSITIVE;
        if optional_transitive && !attribute_type::GENERATED.contains(&raw.type_code) {
            // RFC 4271 section 5: an unrecognized optional transitive attribute passed on
            // gets the Partial bit; OTC (RFC 9234 section 5) is recognized and keeps its flags.
            let flags = if raw.type_code == crate::role::OTC_ATTRIBUTE {
                raw.flags
            } else {
                raw.flags | flag::PARTIAL
            };
            list.push((raw.type_code, flags, raw.value.clone()));
        }
    }
    list.sort_by_key(|(type_code, _, _)| *type_code);
    let mut encoded = EncodedAttributes {
        low: Vec::with_capacity(64),
        high: Vec::new(),
    };
    for (type_code, flags, value) in list {
        let buffer = if type_code < attribute_type::MP_REACH_NLRI {
            &mut encoded.low
        } else {
            &mut encoded.high
        };
        put_attribute(buffer, flags, type_code, &value);
    }
    encoded
}

/// One attribute, with the Extended Length bit set exactly when the value needs it.
fn put_attribute(buffer: &mut Vec<u8>, flags: u8, type_code: u8, value: &[u8]) {
    match u8::try_from(value.len()) {
        Ok(length) => {
            buffer.extend_from_slice(&[flags & !flag::EXTENDED_LENGTH, type_code, length])
        }
        Err(_) => {
            let length = u16::try_from(value.len()).unwrap_or(u16::MAX);
            buffer.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, type_code]);
            buffer.extend_from_slice(&length.to_be_bytes());
        }
    }
    buffer.extend_from_slice(value);
}

fn segment_type(kind: SegmentKind) -> u8 {
    match kind {
        SegmentKind::Set => 1,
        SegmentKind::Sequence => 2,
        SegmentKind::ConfedSequence => 3,
        SegmentKind::ConfedSet => 4,
    }
}

/// AS_PATH value; segments longer than 255 ASNs are split (RFC 4271 section 4.3). In
/// 2-octet form, ASNs above 65535 become AS_TRANS (RFC 6793 section 4.2.2).
fn as_path(path: &AsPath, four_octet_as: bool) -> Vec<u8> {
    let mut value = Vec::with_capacity(
        2 + path
            .segments
            .iter()
            .map(|s| s.asns.len() * 4 + 2)
            .sum::<usize>(),
    );
    for segment in &path.segments {
        for chunk in segment.asns.chunks(255) {
            value.push(segment_type(segment.kind));
            value.push(chunk.len() as u8);
            for asn in chunk {
                if four_octet_as {
                    value.extend_from_slice(&asn.to_be_bytes());
                } else {
                    value.extend_from_slice(&u16::try_from(*asn).unwrap_or(AS_TRANS).to_be_bytes());
                }
            }
        }
    }
    value
}

/// AS4_PATH value: the 4-octet path without confederation segments (RFC 6793 section 3).
fn as4_path(path: &AsPath) -> Vec<u8> {
    let confed_free = AsPath {
        segments: path
            .segments
            .iter()
            .filter(|segment| matches!(segment.kind, SegmentKind::Sequence | SegmentKind::Set))
            .cloned()
            .collect(),
    };
    as_path(&confed_free, true)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use ipnet::{Ipv4Net, Ipv6Net};

    use super::*;
    use crate::types::{LargeCommunity, Origin, RawAttribute, Segment};
    use crate::wire::{DecodeContext, Message, decode_message};

    /// Whether an IPv6 address is link-local (fe80::/10), as RFC 2545 section 3 expects of
    /// the second next hop.
    fn is_link_local(address: Ipv6Addr) -> bool {
        address.segments()[0] & 0xffc0 == 0xfe80
    }

    fn context(four_octet_as: bool, max_message_len: u16) -> EncodeContext {
        EncodeContext {
            four_octet_as,
            max_message_len,
            external: true,
        }
    }

    fn attributes(next_hop: IpAddr) -> Attributes {
        let path = AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64512, 4_200_000_001],
            }],
        };
        Attributes::new(Origin::Igp, path, next_hop)
    }

    fn slash_24s(count: u32) -> Vec<Prefix> {
        (0..count)
            .map(|index| {
                let address = Ipv4Addr::from(0xc612_0000 + (index << 8));
                Prefix::V4(Ipv4Net::new_assert(address, 24))
            })
            .collect()
    }

    fn decode_all(messages: &[Bytes], cx: &DecodeContext) -> Vec<crate::wire::Update> {
        messages
            .iter()
            .map(|message| match decode_message(message.clone(), cx) {
                Ok(Message::Update(update)) => update,
                other => panic!("not an UPDATE: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn hundred_thousand_slash_24s_pack_into_few_messages() {
        let prefixes = slash_24s(100_000);
        let attributes = attributes(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        let mut out = Vec::new();
        encode_announcements(&attributes, &prefixes, &context(true, 4096), &mut out);
        // 4 octets per /24; about 4040 octets of NLRI per message.
        assert!(out.len() <= 100, "{} messages", out.len());
        assert!(out.iter().all(|message| message.len() <= 4096));
        let decoded = decode_all(
            &out,
            &DecodeContext {
                four_octet_as: true,
                ..DecodeContext::INITIAL
            },
        );
        let received: Vec<Prefix> = decoded
            .iter()
            .flat_map(|u| u.announcements.iter().flat_map(|a| a.prefixes.clone()))
            .collect();
        assert_eq!(received, prefixes);
        assert!(
            decoded
                .iter()
                .all(|u| u.announcements[0].attributes == attributes)
        );

        let mut extended = Vec::new();
        encode_announcements(&attributes, &prefixes, &context(true, 65535), &mut extended);
        assert!(extended.len() <= 7, "{} extended messages", extended.len());
    }

    #[test]
    fn two_octet_peer_gets_as_trans_and_as4_path_that_merge_back() {
        let mut attributes = attributes(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        attributes.aggregator = Some((4_200_000_001, Ipv4Addr::new(198, 18, 0, 9)));
        let mut out = Vec::new();
        let prefixes = slash_24s(3);
        encode_announcements(&attributes, &prefixes, &context(false, 4096), &mut out);
        assert_eq!(out.len(), 1);
        let message = &out[0];
        // AS_PATH: 40 02 06 02 02 fc00 5ba0 (64512, AS_TRANS).
        let as_path = [0x40, 2, 6, 2, 2, 0xfc, 0x00, 0x5b, 0xa0];
        assert!(message.windows(as_path.len()).any(|w| w == as_path));
        let decoded = decode_all(&out, &DecodeContext::INITIAL);
        assert_eq!(decoded[0].announcements[0].attributes, attributes);
    }

    #[test]
    fn external_peer_never_gets_local_pref_and_unknown_transitive_gets_partial() {
        let mut attributes = attributes(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        attributes.local_pref = Some(200);
        attributes.other.push(RawAttribute {
            flags: 0xc0,
            type_code: 99,
            value: vec![1, 2],
        });
        attributes.other.push(RawAttribute {
            flags: 0x80,
            type_code: 98,
            value: vec![3],
        });
        let mut out = Vec::new();
        encode_announcements(&attributes, &slash_24s(1), &context(true, 4096), &mut out);
        let decoded = decode_all(
            &out,
            &DecodeContext {
                four_octet_as: true,
                ..DecodeContext::INITIAL
            },
        );
        let received = &decoded[0].announcements[0].attributes;
        assert_eq!(received.local_pref, None);
        assert_eq!(
            received.other,
            vec![RawAttribute {
                flags: 0xe0,
                type_code: 99,
                value: vec![1, 2]
            }]
        );

        let internal = EncodeContext {
            external: false,
            ..context(true, 4096)
        };
        let mut out = Vec::new();
        encode_announcements(&attributes, &slash_24s(1), &internal, &mut out);
        let cx = DecodeContext {
            four_octet_as: true,
            external: false,
            ..DecodeContext::INITIAL
        };
        assert_eq!(
            decode_all(&out, &cx)[0].announcements[0]
                .attributes
                .local_pref,
            Some(200)
        );
    }

    #[test]
    fn ipv6_announcements_and_withdrawals_round_trip_through_the_codec() {
        let link_local = "fe80::1".parse().ok();
        let mut attributes =
            attributes(IpAddr::V6("fd00::2".parse().unwrap_or(Ipv6Addr::LOCALHOST)));
        attributes.link_local_next_hop = link_local;
        attributes.large_communities = (0..200)
            .map(|index| LargeCommunity(64512, index, 2))
            .collect();
        assert!(link_local.is_some_and(is_link_local));
        let prefixes: Vec<Prefix> = (0..5000u128)
            .map(|index| {
                Prefix::V6(Ipv6Net::new_assert(
                    Ipv6Addr::from((0xfd00u128 << 112) + (index << 80)),
                    48,
                ))
            })
            .collect();
        let mut out = Vec::new();
        let cx = context(true, 4096);
        assert!(announcement_fits(&attributes, Family::Ipv6, &cx));
        encode_announcements(&attributes, &prefixes, &cx, &mut out);
        assert!(out.len() > 1 && out.iter().all(|m| m.len() <= 4096));
        let dcx = DecodeContext {
            four_octet_as: true,
            ..DecodeContext::INITIAL
        };
        let decoded = decode_all(&out, &dcx);
        let received: Vec<Prefix> = decoded
            .iter()
            .flat_map(|u| u.announcements.iter().flat_map(|a| a.prefixes.clone()))
            .collect();
        assert_eq!(received, prefixes);
        assert_eq!(decoded[0].announcements[0].attributes, attributes);

        let mut mixed = prefixes.clone();
        mixed.extend(slash_24s(2000));
        let mut out = Vec::new();
        encode_withdrawals(&mixed, &cx, &mut out);
        let withdrawn: Vec<Prefix> = decode_all(&out, &dcx)
            .into_iter()
            .flat_map(|u| u.withdrawn)
            .collect();
        assert_eq!(withdrawn.len(), mixed.len());
        assert!(mixed.iter().all(|p| withdrawn.contains(p)));
    }

    #[test]
    fn attributes_too_large_for_the_message_produce_nothing() {
        let mut attributes = attributes(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        attributes.communities = vec![0xfc00_0001; 1100];
        let cx = context(true, 4096);
        assert!(!announcement_fits(&attributes, Family::Ipv4, &cx));
        let mut out = Vec::new();
        encode_announcements(&attributes, &slash_24s(10), &cx, &mut out);
        assert!(out.is_empty());
        let extended = context(true, 65535);
        assert!(announcement_fits(&attributes, Family::Ipv4, &extended));
        encode_announcements(&attributes, &slash_24s(10), &extended, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn end_of_rib_markers_decode_as_empty_updates() {
        for family in Family::ALL {
            let decoded = decode_all(&[encode_end_of_rib(family)], &DecodeContext::INITIAL);
            assert!(decoded[0].is_empty());
            assert_eq!(decoded[0].end_of_rib, Some(family));
        }
        assert_eq!(encode_end_of_rib(Family::Ipv4).len(), 23);
        assert_eq!(encode_end_of_rib(Family::Ipv6).len(), 29);
    }
}
