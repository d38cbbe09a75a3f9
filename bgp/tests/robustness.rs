//! Bounded robustness run: 20,000 pseudo-random and mutated messages (fixed seed, a tiny
//! xorshift, no extra dependency) go to the wire decoder and to an established session.
//! Nothing may panic; every rejection must be a NOTIFICATION with an RFC error code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use bytes::Bytes;
use vixp_bgp::wire::{
    self, Capabilities, DecodeContext, EncodeContext, Message, Notification, Open,
};
use vixp_bgp::{
    AsPath, Attributes, CeaseSubcode, DownReason, Event, Family, LargeCommunity, Origin, Prefix,
    RawAttribute, Segment, SegmentKind, Session, SessionConfig, State,
};

const ITERATIONS: usize = 20_000;

/// xorshift64 (Marsaglia 2003).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Bytes> {
    let path = AsPath {
        segments: vec![Segment {
            kind: SegmentKind::Sequence,
            asns: vec![64513, 4_200_000_001],
        }],
    };
    let mut attributes =
        Attributes::new(Origin::Igp, path, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
    attributes.med = Some(10);
    attributes.communities = vec![0xfc00_0001, 0xfc00_0002];
    attributes.large_communities = vec![LargeCommunity(64513, 1, 2)];
    attributes.extended_communities = vec![0x0002_fc01_0000_0001];
    attributes.aggregator = Some((4_200_000_001, Ipv4Addr::new(198, 18, 0, 9)));
    attributes.atomic_aggregate = true;
    attributes.other.push(RawAttribute {
        flags: 0xc0,
        type_code: 99,
        value: vec![1, 2, 3],
    });
    let ipv4: Vec<Prefix> = (0..40u32)
        .map(|index| {
            Prefix::V4(ipnet::Ipv4Net::new_assert(
                Ipv4Addr::from(0xc612_0000 + (index << 8)),
                24,
            ))
        })
        .collect();
    let ipv6: Vec<Prefix> = (0..20u128)
        .map(|index| {
            Prefix::V6(ipnet::Ipv6Net::new_assert(
                Ipv6Addr::from((0xfd00u128 << 112) + (index << 80)),
                48,
            ))
        })
        .collect();
    let mut ipv6_attributes = attributes.clone();
    ipv6_attributes.next_hop = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    ipv6_attributes.link_local_next_hop = Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
    let mut out = Vec::new();
    for four_octet_as in [true, false] {
        let cx = EncodeContext {
            four_octet_as,
            max_message_len: 4096,
            external: true,
        };
        wire::encode_announcements(&attributes, &ipv4, &cx, &mut out);
        wire::encode_announcements(&ipv6_attributes, &ipv6, &cx, &mut out);
        wire::encode_withdrawals(&[ipv4.clone(), ipv6.clone()].concat(), &cx, &mut out);
    }
    out.push(wire::encode_end_of_rib(Family::Ipv4));
    out.push(wire::encode_end_of_rib(Family::Ipv6));
    out.push(wire::encode_keepalive());
    out.push(wire::encode_route_refresh(Family::Ipv6));
    out.push(Notification::cease(CeaseSubcode::AdministrativeShutdown, "bye").encode(4096));
    out.push(wire::encode_open(&Open::new(
        64513,
        90,
        Ipv4Addr::new(198, 18, 0, 2),
        Capabilities::default(),
    )));
    out
}

/// One test message: a mutated corpus message or random bytes behind a plausible header.
fn message(random: &mut XorShift, corpus: &[Bytes]) -> Vec<u8> {
    let mut bytes = if random.below(4) == 0 {
        let length = 19 + random.below(120);
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&(length as u16).to_be_bytes());
        bytes.push(1 + random.below(5) as u8);
        bytes.extend((19..length).map(|_| random.next() as u8));
        bytes
    } else {
        let mut bytes = corpus[random.below(corpus.len())].to_vec();
        for _ in 0..1 + random.below(4) {
            let at = 19 + random.below(bytes.len().saturating_sub(19));
            if let Some(byte) = bytes.get_mut(at) {
                *byte = random.next() as u8;
            }
        }
        match random.below(8) {
            0 => bytes.truncate(19 + random.below(bytes.len().saturating_sub(19))),
            1 => bytes.extend((0..random.below(16)).map(|_| random.next() as u8)),
            _ => {}
        }
        bytes
    };
    // Mostly keep the length field honest so the body decoders are reached.
    if random.below(8) != 0
        && let Ok(length) = u16::try_from(bytes.len())
    {
        bytes[16..18].copy_from_slice(&length.to_be_bytes());
    }
    if random.below(50) == 0 {
        let at = random.below(19);
        bytes[at] = random.next() as u8;
    }
    bytes
}

fn established_session(now: Instant) -> Session {
    let config = SessionConfig {
        local_asn: 64512,
        local_id: Ipv4Addr::new(198, 18, 0, 1),
        peer_asn: 64513,
        hold_time: 90,
        families: vec![Family::Ipv4, Family::Ipv6],
        extended_messages: false,
        route_refresh: true,
    };
    let mut session = Session::new(config, vixp_bgp::Direction::Incoming, now);
    let capabilities = Capabilities {
        families: vec![Family::Ipv4, Family::Ipv6],
        route_refresh: true,
        ..Capabilities::default()
    };
    let open = Open::new(64513, 90, Ipv4Addr::new(198, 18, 0, 2), capabilities);
    session.handle_received(&wire::encode_open(&open), now);
    session.handle_received(&wire::encode_keepalive(), now);
    assert_eq!(session.state(), State::Established);
    while session.poll_transmit().is_some() {}
    while session.poll_event().is_some() {}
    session
}

#[test]
fn twenty_thousand_random_and_mutated_messages_never_panic() {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let corpus = corpus();
    let now = Instant::now();
    let contexts = [
        DecodeContext {
            four_octet_as: true,
            ..DecodeContext::INITIAL
        },
        DecodeContext::INITIAL,
        DecodeContext {
            four_octet_as: true,
            max_message_len: 65535,
            external: false,
        },
    ];
    let (mut decoded, mut rejected, mut treated_as_withdraw) = (0, 0, 0);
    let (mut stayed_up, mut sessions_down) = (0, 0);
    let mut session = established_session(now);
    for _ in 0..ITERATIONS {
        let bytes = message(&mut random, &corpus);
        for cx in &contexts {
            match wire::decode_message(Bytes::copy_from_slice(&bytes), cx) {
                Ok(Message::Update(update)) => {
                    decoded += 1;
                    treated_as_withdraw += usize::from(update.treated_as_withdraw);
                }
                Ok(_) => decoded += 1,
                Err(error) => {
                    let notification = error.notification();
                    assert!((1..=7).contains(&notification.code), "{error}");
                    rejected += 1;
                }
            }
        }
        session.handle_received(&bytes, now);
        let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
        if session.state() == State::Idle {
            sessions_down += 1;
            let last_sent = std::iter::from_fn(|| session.poll_transmit()).last();
            let down = events.iter().find_map(|event| match event {
                Event::Down(reason) => Some(reason.clone()),
                _ => None,
            });
            match down {
                Some(DownReason::NotificationSent(notification)) => {
                    assert!((1..=6).contains(&notification.code), "{notification}");
                    assert_eq!(last_sent.and_then(|m| m.get(18).copied()), Some(3));
                }
                Some(DownReason::NotificationReceived(_)) => {}
                other => panic!("unexpected end: {other:?}"),
            }
            session = established_session(now);
        } else {
            stayed_up += 1;
        }
    }
    // The generator must exercise both outcomes for the run to mean anything.
    assert!(
        decoded > 1000 && rejected > 1000,
        "decoded {decoded}, rejected {rejected}"
    );
    assert!(
        treated_as_withdraw > 100,
        "treat-as-withdraw {treated_as_withdraw}"
    );
    assert!(
        stayed_up > 1000 && sessions_down > 1000,
        "up {stayed_up}, down {sessions_down}"
    );
}
