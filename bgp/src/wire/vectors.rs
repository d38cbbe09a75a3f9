//! Hand-checked byte vectors for every message type in both directions, and malformed
//! input with its RFC 4271 / RFC 7606 outcome. Test code only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use crate::types::{
    AsPath, Attributes, Family, LargeCommunity, Origin, Prefix, Segment, SegmentKind,
};
use crate::wire::{
    Announcement, Capabilities, CeaseSubcode, DecodeContext, DecodeError, EncodeContext, Message,
    Notification, Open, RouteRefresh, Update, decode_message, encode_announcements, encode_open,
    encode_route_refresh,
};

const FOUR_OCTET: DecodeContext = DecodeContext {
    four_octet_as: true,
    ..DecodeContext::INITIAL
};

fn with_header(type_code: u8, body: &[u8]) -> Bytes {
    let mut message = vec![0xff; 16];
    message.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    message.push(type_code);
    message.extend_from_slice(body);
    Bytes::from(message)
}

fn update_message(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Bytes {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    body.extend_from_slice(attributes);
    body.extend_from_slice(nlri);
    with_header(2, &body)
}

fn decode_update(message: Bytes, cx: &DecodeContext) -> Update {
    match decode_message(message, cx) {
        Ok(Message::Update(update)) => update,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn net(text: &str) -> Prefix {
    text.parse()
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn v6(text: &str) -> Ipv6Addr {
    text.parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
}

fn path(asns: &[u32]) -> AsPath {
    AsPath {
        segments: vec![Segment {
            kind: SegmentKind::Sequence,
            asns: asns.to_vec(),
        }],
    }
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
const AS_PATH_64512_4: [u8; 9] = [0x40, 2, 6, 2, 1, 0, 0, 0xfc, 0x00];
const NEXT_HOP_198_18_0_2: [u8; 7] = [0x40, 3, 4, 198, 18, 0, 2];
const NLRI_198_18_1_0_24: [u8; 4] = [24, 198, 18, 1];

fn basic_attributes(extra: &[u8]) -> Vec<u8> {
    let mut attributes = [
        ORIGIN_IGP.as_slice(),
        &AS_PATH_64512_4,
        &NEXT_HOP_198_18_0_2,
    ]
    .concat();
    attributes.extend_from_slice(extra);
    attributes
}

#[rustfmt::skip]
const OPEN_VECTOR: [u8; 53] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x35, 0x01,                   // length 53, OPEN
    0x04, 0xfc, 0x00, 0x00, 0x5a,       // version 4, AS 64512, hold 90
    0xc6, 0x12, 0x00, 0x01, 0x18,       // BGP identifier 198.18.0.1, 24 octets of parameters
    0x02, 0x16,                         // Capabilities parameter, 22 octets
    0x01, 0x04, 0x00, 0x01, 0x00, 0x01, // multiprotocol IPv4 unicast
    0x01, 0x04, 0x00, 0x02, 0x00, 0x01, // multiprotocol IPv6 unicast
    0x02, 0x00,                         // route refresh
    0x06, 0x00,                         // extended message
    0x41, 0x04, 0x00, 0x00, 0xfc, 0x00, // 4-octet AS 64512
];

#[test]
fn open_with_capabilities_matches_the_vector_both_ways() {
    let capabilities = Capabilities {
        families: vec![Family::Ipv4, Family::Ipv6],
        route_refresh: true,
        extended_message: true,
        ..Capabilities::default()
    };
    let open = Open::new(64512, 90, Ipv4Addr::new(198, 18, 0, 1), capabilities);
    assert_eq!(encode_open(&open).as_ref(), OPEN_VECTOR.as_slice());
    let decoded = decode_message(Bytes::from_static(&OPEN_VECTOR), &DecodeContext::INITIAL);
    assert_eq!(decoded, Ok(Message::Open(open)));
}

#[test]
fn open_with_bad_version_or_unknown_parameter_gets_open_errors() {
    let mut bad_version = OPEN_VECTOR;
    bad_version[19] = 3;
    let error = decode_message(
        Bytes::copy_from_slice(&bad_version),
        &DecodeContext::INITIAL,
    )
    .err();
    assert_eq!(
        error.map(|e| e.notification()),
        Some(Notification::new(2, 1, vec![0, 4]))
    );
    let mut unknown_parameter = OPEN_VECTOR;
    unknown_parameter[29] = 9;
    let error = decode_message(
        Bytes::copy_from_slice(&unknown_parameter),
        &DecodeContext::INITIAL,
    );
    assert_eq!(
        error
            .err()
            .map(|e| (e.notification().code, e.notification().subcode)),
        Some((2, 4))
    );
}

#[rustfmt::skip]
const UPDATE_IPV4_VECTOR: [u8; 83] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x53, 0x02,                   // length 83, UPDATE
    0x00, 0x00,                         // no withdrawn routes
    0x00, 0x35,                         // 53 octets of path attributes
    0x40, 0x01, 0x01, 0x00,             // ORIGIN IGP
    0x40, 0x02, 0x0a, 0x02, 0x02, 0x00, 0x00, 0xfc, 0x00, 0x00, 0x00, 0xfc, 0x01, // AS_PATH 64512 64513
    0x40, 0x03, 0x04, 0xc6, 0x12, 0x00, 0x02, // NEXT_HOP 198.18.0.2
    0x80, 0x04, 0x04, 0x00, 0x00, 0x00, 0x64, // MED 100
    0xc0, 0x08, 0x04, 0xfc, 0x00, 0x00, 0x01, // COMMUNITIES 64512:1
    0xc0, 0x20, 0x0c, 0x00, 0x00, 0xfc, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // LARGE 64512:1:2
    0x18, 0xc6, 0x12, 0x01,             // 198.18.1.0/24
    0x10, 0xc6, 0x13,                   // 198.19.0.0/16
];

fn ipv4_vector_attributes() -> Attributes {
    let mut attributes = Attributes::new(
        Origin::Igp,
        path(&[64512, 64513]),
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
    );
    attributes.med = Some(100);
    attributes.communities = vec![0xfc00_0001];
    attributes.large_communities = vec![LargeCommunity(64512, 1, 2)];
    attributes
}

#[test]
fn ipv4_update_with_communities_matches_the_vector_both_ways() {
    let attributes = ipv4_vector_attributes();
    let prefixes = vec![net("198.18.1.0/24"), net("198.19.0.0/16")];
    let cx = EncodeContext {
        four_octet_as: true,
        max_message_len: 4096,
        external: true,
    };
    let mut out = Vec::new();
    encode_announcements(&attributes, &prefixes, &cx, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref(), UPDATE_IPV4_VECTOR.as_slice());
    let update = decode_update(Bytes::from_static(&UPDATE_IPV4_VECTOR), &FOUR_OCTET);
    let expected = Update {
        announcements: vec![Announcement {
            attributes,
            prefixes,
        }],
        ..Update::default()
    };
    assert_eq!(update, expected);
}

#[rustfmt::skip]
const UPDATE_IPV6_VECTOR: [u8; 89] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x59, 0x02,                   // length 89, UPDATE
    0x00, 0x00, 0x00, 0x42,             // no withdrawn routes, 66 octets of path attributes
    0x40, 0x01, 0x01, 0x00,             // ORIGIN IGP
    0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfc, 0x00, // AS_PATH 64512
    0x90, 0x0e, 0x00, 0x31,             // MP_REACH_NLRI, extended length 49
    0x00, 0x02, 0x01, 0x20,             // AFI 2, SAFI 1, next hop length 32
    0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // fd00::2
    0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // fe80::2
    0x00,                               // reserved
    0x20, 0xfd, 0x00, 0x00, 0x01,       // fd00:1::/32
    0x30, 0xfd, 0x00, 0x00, 0x02, 0x00, 0x03, // fd00:2:3::/48
];

#[test]
fn ipv6_mp_reach_update_matches_the_vector_both_ways() {
    let mut attributes = Attributes::new(Origin::Igp, path(&[64512]), IpAddr::V6(v6("fd00::2")));
    attributes.link_local_next_hop = Some(v6("fe80::2"));
    let prefixes = vec![net("fd00:1::/32"), net("fd00:2:3::/48")];
    let cx = EncodeContext {
        four_octet_as: true,
        max_message_len: 4096,
        external: true,
    };
    let mut out = Vec::new();
    encode_announcements(&attributes, &prefixes, &cx, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref(), UPDATE_IPV6_VECTOR.as_slice());
    let update = decode_update(Bytes::from_static(&UPDATE_IPV6_VECTOR), &FOUR_OCTET);
    assert_eq!(
        update.announcements,
        vec![Announcement {
            attributes,
            prefixes
        }]
    );
}

#[test]
fn notification_and_route_refresh_match_the_vectors_both_ways() {
    let mut vector = vec![0xff; 16];
    vector.extend_from_slice(&[0x00, 0x19, 0x03, 0x06, 0x02, 0x03, b'b', b'y', b'e']);
    let notification = Notification::cease(CeaseSubcode::AdministrativeShutdown, "bye");
    assert_eq!(notification.encode(4096).as_ref(), vector.as_slice());
    let decoded = decode_message(Bytes::from(vector), &DecodeContext::INITIAL);
    assert_eq!(decoded, Ok(Message::Notification(notification)));

    let mut vector = vec![0xff; 16];
    vector.extend_from_slice(&[0x00, 0x17, 0x05, 0x00, 0x01, 0x00, 0x01]);
    assert_eq!(
        encode_route_refresh(Family::Ipv4).as_ref(),
        vector.as_slice()
    );
    let decoded = decode_message(Bytes::from(vector), &DecodeContext::INITIAL);
    assert_eq!(
        decoded,
        Ok(Message::RouteRefresh(RouteRefresh::new(Family::Ipv4)))
    );
}

#[test]
fn truncated_message_and_bad_header_get_message_header_errors() {
    let truncated = Bytes::copy_from_slice(&UPDATE_IPV4_VECTOR[..60]);
    let error = decode_message(truncated, &FOUR_OCTET).err();
    assert_eq!(
        error.map(|e| (e.notification().code, e.notification().subcode)),
        Some((1, 2))
    );
    let mut bad_marker = UPDATE_IPV4_VECTOR;
    bad_marker[5] = 0xfe;
    let error = decode_message(Bytes::copy_from_slice(&bad_marker), &FOUR_OCTET);
    assert_eq!(error, Err(DecodeError::ConnectionNotSynchronized));
    let error = decode_message(with_header(6, &[]), &FOUR_OCTET).err();
    assert_eq!(
        error.map(|e| e.notification()),
        Some(Notification::new(1, 3, vec![6]))
    );
    let error = decode_message(with_header(3, &[6]), &FOUR_OCTET).err();
    assert_eq!(
        error.map(|e| (e.notification().code, e.notification().subcode)),
        Some((1, 2))
    );
}

#[test]
fn withdrawn_length_beyond_the_body_is_malformed_attribute_list() {
    let mut body = vec![0x00, 0x40, 24, 198, 18, 1];
    body.extend_from_slice(&[0, 0]);
    let error = decode_message(with_header(2, &body), &FOUR_OCTET).err();
    assert_eq!(
        error.map(|e| (e.notification().code, e.notification().subcode)),
        Some((3, 1))
    );
}

#[test]
fn attribute_length_overrunning_the_section_is_treat_as_withdraw() {
    let mut attributes = basic_attributes(&[]);
    attributes.extend_from_slice(&[0x80, 4, 9, 0, 0]);
    let update = decode_update(
        update_message(&[], &attributes, &NLRI_198_18_1_0_24),
        &FOUR_OCTET,
    );
    assert!(update.treated_as_withdraw);
    assert!(update.announcements.is_empty());
    assert_eq!(update.withdrawn, vec![net("198.18.1.0/24")]);
}

#[test]
fn bad_attribute_flags_on_origin_is_treat_as_withdraw() {
    let attributes = [
        [0xc0, 1, 1, 0].as_slice(),
        &AS_PATH_64512_4,
        &NEXT_HOP_198_18_0_2,
    ]
    .concat();
    let update = decode_update(
        update_message(&[], &attributes, &NLRI_198_18_1_0_24),
        &FOUR_OCTET,
    );
    assert!(update.treated_as_withdraw);
    assert_eq!(update.withdrawn, vec![net("198.18.1.0/24")]);
}

#[test]
fn as_path_with_bad_segment_type_or_length_is_treat_as_withdraw() {
    for as_path in [
        [0x40, 2, 6, 7, 1, 0, 0, 0xfc, 0x00],
        [0x40, 2, 6, 2, 5, 0, 0, 0xfc, 0x00],
    ] {
        let attributes = [ORIGIN_IGP.as_slice(), &as_path, &NEXT_HOP_198_18_0_2].concat();
        let update = decode_update(
            update_message(&[], &attributes, &NLRI_198_18_1_0_24),
            &FOUR_OCTET,
        );
        assert!(update.treated_as_withdraw, "{as_path:?}");
        assert_eq!(update.withdrawn, vec![net("198.18.1.0/24")]);
    }
}

#[test]
fn missing_next_hop_for_external_peer_is_treat_as_withdraw() {
    let attributes = [ORIGIN_IGP.as_slice(), &AS_PATH_64512_4].concat();
    let update = decode_update(
        update_message(&[], &attributes, &NLRI_198_18_1_0_24),
        &FOUR_OCTET,
    );
    assert!(update.treated_as_withdraw);
}

#[test]
fn bad_aggregator_length_is_discarded_and_routes_are_kept() {
    let attributes = basic_attributes(&[0xc0, 7, 5, 0, 0, 0, 0, 1]);
    let update = decode_update(
        update_message(&[], &attributes, &NLRI_198_18_1_0_24),
        &FOUR_OCTET,
    );
    assert!(!update.treated_as_withdraw);
    assert_eq!(update.discarded_attributes, vec![7]);
    assert_eq!(update.announcements.len(), 1);
    assert_eq!(update.announcements[0].attributes.aggregator, None);
    assert_eq!(update.announcements[0].prefixes, vec![net("198.18.1.0/24")]);
}

#[test]
fn bad_nlri_prefix_length_resets_the_session_with_invalid_network_field() {
    let update = update_message(&[], &basic_attributes(&[]), &[33, 198, 18, 1, 0, 0]);
    let error = decode_message(update, &FOUR_OCTET).err();
    assert_eq!(
        error.map(|e| (e.notification().code, e.notification().subcode)),
        Some((3, 10))
    );
}

#[test]
fn truncated_mp_reach_resets_the_session() {
    let attributes = [
        ORIGIN_IGP.as_slice(),
        &AS_PATH_64512_4,
        &[0x80, 14, 5, 0, 2, 1, 16, 0xfd],
    ]
    .concat();
    let error = decode_message(update_message(&[], &attributes, &[]), &FOUR_OCTET).err();
    assert_eq!(error.map(|e| e.notification().code), Some(3));
}

#[test]
fn non_unicast_families_are_ignored_and_counted() {
    // MP_UNREACH_NLRI for AFI 1 / SAFI 2 (multicast) with one prefix.
    let attributes = [0x80, 15, 7, 0, 1, 2, 24, 198, 18, 1];
    let update = decode_update(update_message(&[], &attributes, &[]), &FOUR_OCTET);
    assert_eq!(update.ignored_non_unicast, 1);
    assert!(update.is_empty());
    assert_eq!(update.end_of_rib, None);
}

#[test]
fn as4_path_from_a_two_octet_peer_is_merged_into_as_path() {
    // AS_PATH 64512 AS_TRANS (2-octet) and AS4_PATH 64512 4200000001.
    let as_path = [0x40, 2, 6, 2, 2, 0xfc, 0x00, 0x5b, 0xa0];
    let as4_path = [0xc0, 17, 10, 2, 2, 0, 0, 0xfc, 0x00, 0xfa, 0x56, 0xea, 0x01];
    let attributes = [
        ORIGIN_IGP.as_slice(),
        &as_path,
        &NEXT_HOP_198_18_0_2,
        &as4_path,
    ]
    .concat();
    let update = decode_update(
        update_message(&[], &attributes, &NLRI_198_18_1_0_24),
        &DecodeContext::INITIAL,
    );
    assert_eq!(
        update.announcements[0].attributes.as_path,
        path(&[64512, 4_200_000_001])
    );
}

#[test]
fn body_withdrawals_decode() {
    let update = decode_update(update_message(&[24, 198, 18, 1, 0], &[], &[]), &FOUR_OCTET);
    assert_eq!(
        update.withdrawn,
        vec![net("198.18.1.0/24"), net("0.0.0.0/0")]
    );
    assert_eq!(update.end_of_rib, None);
}
