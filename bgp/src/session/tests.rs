//! Scenario tests on a virtual clock: two sessions wired back to back, and raw-byte peers.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::types::{AsPath, Attributes, Origin, Prefix, Segment, SegmentKind};
use crate::wire::{encode_announcements, encode_end_of_rib};

const SPEAKER_A: u32 = 64512;
const SPEAKER_B: u32 = 4_200_000_001;

fn config(local_asn: u32, local_id: [u8; 4], peer_asn: u32) -> SessionConfig {
    SessionConfig {
        local_asn,
        local_id: Ipv4Addr::from(local_id),
        peer_asn,
        hold_time: DEFAULT_HOLD_TIME,
        families: vec![Family::Ipv4, Family::Ipv6],
        extended_messages: true,
        route_refresh: true,
    }
}

fn config_a() -> SessionConfig {
    config(SPEAKER_A, [198, 18, 0, 1], SPEAKER_B)
}

fn config_b() -> SessionConfig {
    config(SPEAKER_B, [198, 18, 0, 2], SPEAKER_A)
}

/// Two sessions back to back, bytes shuttled by hand, time advanced by hand.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    events_a: Vec<Event>,
    events_b: Vec<Event>,
}

impl Pair {
    fn new(config_a: SessionConfig, config_b: SessionConfig) -> Pair {
        let now = Instant::now();
        Pair {
            a: Session::new(config_a, Direction::Outgoing, now),
            b: Session::new(config_b, Direction::Incoming, now),
            now,
            events_a: Vec::new(),
            events_b: Vec::new(),
        }
    }

    fn established() -> Pair {
        let mut pair = Pair::new(config_a(), config_b());
        pair.shuttle();
        assert_eq!(
            (pair.a.state(), pair.b.state()),
            (State::Established, State::Established)
        );
        pair
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn shuttle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.a.poll_transmit() {
                self.b.handle_received(&bytes, self.now);
                moved = true;
            }
            while let Some(bytes) = self.b.poll_transmit() {
                self.a.handle_received(&bytes, self.now);
                moved = true;
            }
            self.events_a
                .extend(std::iter::from_fn(|| self.a.poll_event()));
            self.events_b
                .extend(std::iter::from_fn(|| self.b.poll_event()));
            if !moved {
                break;
            }
        }
    }

    /// Advances the clock by `duration`, firing timers on the way and shuttling after each.
    fn advance(&mut self, duration: Duration) {
        let end = self.now + duration;
        for _ in 0..100_000 {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(deadline) if deadline <= end => {
                    self.now = self.now.max(deadline);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.shuttle();
                }
                _ => break,
            }
        }
        self.now = end;
    }
}

/// A session talking to raw bytes: the test plays the peer.
struct RawPeer {
    session: Session,
    now: Instant,
}

impl RawPeer {
    fn new(config: SessionConfig) -> RawPeer {
        let now = Instant::now();
        RawPeer {
            session: Session::new(config, Direction::Incoming, now),
            now,
        }
    }

    fn established() -> RawPeer {
        let mut peer = RawPeer::new(config_a());
        peer.send(&open_from_b(DEFAULT_HOLD_TIME, Capabilities::default()));
        peer.send(&wire::encode_keepalive());
        assert_eq!(peer.session.state(), State::Established);
        peer.sent();
        peer.events();
        peer
    }

    fn send(&mut self, bytes: &[u8]) {
        self.session.handle_received(bytes, self.now);
    }

    fn sent(&mut self) -> Vec<Bytes> {
        std::iter::from_fn(|| self.session.poll_transmit()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// The NOTIFICATION the session sent last, as (code, subcode).
    fn last_notification(&mut self) -> Option<(u8, u8)> {
        self.sent()
            .iter()
            .rev()
            .find(|m| m.get(18) == Some(&3))
            .map(|m| (m[19], m[20]))
    }
}

fn open_from_b(hold_time: u16, capabilities: Capabilities) -> Bytes {
    let capabilities = Capabilities {
        families: vec![Family::Ipv4, Family::Ipv6],
        route_refresh: true,
        ..capabilities
    };
    wire::encode_open(&Open::new(
        SPEAKER_B,
        hold_time,
        Ipv4Addr::new(198, 18, 0, 2),
        capabilities,
    ))
}

fn down_reason(events: &[Event]) -> Option<&DownReason> {
    events.iter().find_map(|event| match event {
        Event::Down(reason) => Some(reason),
        _ => None,
    })
}

fn announcement(prefixes: &[Prefix], four_octet_as: bool, max: u16) -> Vec<Bytes> {
    let path = AsPath {
        segments: vec![Segment {
            kind: SegmentKind::Sequence,
            asns: vec![SPEAKER_B],
        }],
    };
    let attributes = Attributes::new(Origin::Igp, path, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
    let cx = EncodeContext {
        four_octet_as,
        max_message_len: max,
        external: true,
    };
    let mut out = Vec::new();
    encode_announcements(&attributes, prefixes, &cx, &mut out);
    out
}

fn slash_24s(count: u32) -> Vec<Prefix> {
    (0..count)
        .map(|index| {
            Prefix::V4(ipnet::Ipv4Net::new_assert(
                Ipv4Addr::from(0xc612_0000 + (index << 8)),
                24,
            ))
        })
        .collect()
}

#[test]
fn established_after_open_and_keepalive_exchange() {
    let mut pair = Pair::new(config_a(), config_b());
    assert_eq!(pair.a.state(), State::OpenSent);
    pair.shuttle();
    assert_eq!(pair.a.state(), State::Established);
    assert_eq!(pair.b.state(), State::Established);
    let Some(Event::Established(negotiated)) = pair.events_a.first() else {
        panic!("no Established event: {:?}", pair.events_a)
    };
    assert_eq!(negotiated.peer_asn, SPEAKER_B);
    assert_eq!(negotiated.peer_id, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(negotiated.hold_time, 90);
    assert!(negotiated.four_octet_as && negotiated.route_refresh && negotiated.extended_messages);
    assert_eq!(negotiated.families, vec![Family::Ipv4, Family::Ipv6]);
    assert_eq!(negotiated.max_message_len, 65535);
    assert!(negotiated.external && negotiated.encode_context().external);
    assert_eq!(pair.a.peer_id(), Some(Ipv4Addr::new(198, 18, 0, 2)));
    assert_eq!(pair.a.counters().sent.open, 1);
    assert_eq!(pair.a.counters().received.keepalive, 1);
    assert_eq!(pair.a.direction(), Direction::Outgoing);
}

#[test]
fn stream_delivered_one_byte_at_a_time_still_establishes() {
    let mut peer = RawPeer::new(config_a());
    let mut stream = open_from_b(90, Capabilities::default()).to_vec();
    stream.extend_from_slice(&wire::encode_keepalive());
    for byte in stream {
        peer.send(&[byte]);
    }
    assert_eq!(peer.session.state(), State::Established);
}

#[test]
fn internal_peer_gets_an_internal_encode_context() {
    let mut pair = Pair::new(
        config(SPEAKER_A, [198, 18, 0, 1], SPEAKER_A),
        config(SPEAKER_A, [198, 18, 0, 2], SPEAKER_A),
    );
    pair.shuttle();
    assert_eq!(pair.a.state(), State::Established);
    assert_eq!(
        pair.a.negotiated().map(|n| n.encode_context().external),
        Some(false)
    );
}

#[test]
fn internal_peer_with_our_identifier_gets_notification_2_3() {
    let mut pair = Pair::new(
        config(SPEAKER_A, [198, 18, 0, 1], SPEAKER_A),
        config(SPEAKER_A, [198, 18, 0, 1], SPEAKER_A),
    );
    pair.shuttle();
    assert_eq!(pair.a.state(), State::Idle);
    assert_eq!(pair.a.counters().notifications_sent.get(&(2, 3)), Some(&1));
}

#[test]
fn hold_time_is_the_smaller_proposal_and_keepalive_a_third() {
    let mut peer = RawPeer::new(config_a());
    peer.send(&open_from_b(30, Capabilities::default()));
    peer.send(&wire::encode_keepalive());
    let negotiated = peer.session.negotiated().cloned();
    assert_eq!(negotiated.as_ref().map(|n| n.hold_time), Some(30));
    assert_eq!(
        negotiated.and_then(|n| n.keepalive_interval()),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        peer.session.poll_timeout(),
        Some(peer.now + Duration::from_secs(10))
    );
}

#[test]
fn keepalives_keep_an_idle_session_up() {
    let mut pair = Pair::established();
    pair.advance(Duration::from_secs(600));
    assert_eq!(
        (pair.a.state(), pair.b.state()),
        (State::Established, State::Established)
    );
    // One KEEPALIVE every 30 s for 10 minutes, plus the one that confirmed the OPEN.
    let keepalives = pair.a.counters().sent.keepalive;
    assert!((20..=22).contains(&keepalives), "{keepalives} keepalives");
}

#[test]
fn hold_timer_expiry_sends_notification_4_0() {
    let mut peer = RawPeer::established();
    peer.now += Duration::from_secs(89);
    peer.session.handle_timeout(peer.now);
    assert_eq!(peer.session.state(), State::Established);
    peer.now += Duration::from_secs(1);
    peer.session.handle_timeout(peer.now);
    assert_eq!(peer.session.state(), State::Idle);
    assert_eq!(peer.last_notification(), Some((4, 0)));
    assert_eq!(
        down_reason(&peer.events()),
        Some(&DownReason::HoldTimerExpired)
    );
    assert_eq!(
        peer.session.counters().notifications_sent.get(&(4, 0)),
        Some(&1)
    );
    assert_eq!(peer.session.poll_timeout(), None);
}

#[test]
fn peer_that_never_sends_open_is_dropped_after_240s() {
    let mut peer = RawPeer::new(config_a());
    assert_eq!(peer.session.poll_timeout(), Some(peer.now + OPEN_HOLD_TIME));
    peer.now += Duration::from_secs(239);
    peer.session.handle_timeout(peer.now);
    assert_eq!(peer.session.state(), State::OpenSent);
    peer.now += Duration::from_secs(1);
    peer.session.handle_timeout(peer.now);
    assert_eq!(peer.session.state(), State::Idle);
    assert_eq!(peer.last_notification(), Some((4, 0)));
}

#[test]
fn hold_time_zero_disables_both_timers() {
    let mut peer = RawPeer::new(config_a());
    peer.send(&open_from_b(0, Capabilities::default()));
    peer.send(&wire::encode_keepalive());
    assert_eq!(peer.session.state(), State::Established);
    assert_eq!(peer.session.poll_timeout(), None);
    peer.now += Duration::from_secs(3600);
    peer.session.handle_timeout(peer.now);
    assert_eq!(peer.session.state(), State::Established);
}

#[test]
fn bad_peer_as_gets_notification_2_2() {
    let mut peer = RawPeer::new(config(SPEAKER_A, [198, 18, 0, 1], 64999));
    peer.send(&open_from_b(90, Capabilities::default()));
    assert_eq!(peer.session.state(), State::Idle);
    assert_eq!(peer.last_notification(), Some((2, 2)));
    let events = peer.events();
    let reason = down_reason(&events).map(ToString::to_string);
    assert_eq!(
        reason.as_deref(),
        Some("sent NOTIFICATION OPEN Message Error / Bad Peer AS (2/2)")
    );
}

#[test]
fn two_octet_peer_is_checked_against_its_my_as_field() {
    let mut peer = RawPeer::new(config(SPEAKER_A, [198, 18, 0, 1], 65001));
    let mut open = Open::new(
        65001,
        90,
        Ipv4Addr::new(198, 18, 0, 9),
        Capabilities::default(),
    );
    open.capabilities.four_octet_as = None;
    peer.send(&wire::encode_open(&open));
    peer.send(&wire::encode_keepalive());
    assert_eq!(peer.session.state(), State::Established);
    let negotiated = peer.session.negotiated();
    assert_eq!(
        negotiated.map(|n| (n.four_octet_as, n.families.clone())),
        Some((false, vec![Family::Ipv4]))
    );
}

#[test]
fn unacceptable_hold_time_gets_notification_2_6() {
    let mut peer = RawPeer::new(config_a());
    peer.send(&open_from_b(2, Capabilities::default()));
    assert_eq!(peer.last_notification(), Some((2, 6)));
}

#[test]
fn zero_bgp_identifier_gets_notification_2_3() {
    let mut peer = RawPeer::new(config_a());
    let open = Open::new(
        SPEAKER_B,
        90,
        Ipv4Addr::UNSPECIFIED,
        Capabilities::default(),
    );
    peer.send(&wire::encode_open(&open));
    assert_eq!(peer.last_notification(), Some((2, 3)));
}

#[test]
fn unsupported_version_gets_notification_2_1() {
    let mut peer = RawPeer::new(config_a());
    let mut open = open_from_b(90, Capabilities::default()).to_vec();
    open[19] = 3;
    peer.send(&open);
    assert_eq!(peer.last_notification(), Some((2, 1)));
}

#[test]
fn update_before_established_gets_fsm_error_5_1() {
    let mut peer = RawPeer::new(config_a());
    peer.send(&encode_end_of_rib(Family::Ipv4));
    assert_eq!(peer.last_notification(), Some((5, 1)));
}

#[test]
fn update_in_open_confirm_gets_fsm_error_5_2() {
    let mut peer = RawPeer::new(config_a());
    peer.send(&open_from_b(90, Capabilities::default()));
    assert_eq!(peer.session.state(), State::OpenConfirm);
    peer.send(&encode_end_of_rib(Family::Ipv4));
    assert_eq!(peer.last_notification(), Some((5, 2)));
}

#[test]
fn open_in_established_gets_fsm_error_5_3() {
    let mut peer = RawPeer::established();
    peer.send(&open_from_b(90, Capabilities::default()));
    assert_eq!(peer.last_notification(), Some((5, 3)));
    assert_eq!(peer.session.state(), State::Idle);
}

#[test]
fn updates_flow_and_end_of_rib_is_reported() {
    let mut pair = Pair::established();
    let negotiated = pair.b.negotiated().cloned();
    let cx = negotiated.map(|n| n.encode_context());
    assert_eq!(cx.map(|cx| cx.max_message_len), Some(65535));
    for message in announcement(&slash_24s(5000), true, 65535) {
        pair.b.send_update(message, pair.now);
    }
    pair.b
        .send_update(encode_end_of_rib(Family::Ipv4), pair.now);
    pair.shuttle();
    let updates: Vec<&Update> = pair
        .events_a
        .iter()
        .filter_map(|event| match event {
            Event::Update(update) => Some(update),
            _ => None,
        })
        .collect();
    let announced: usize = updates.iter().map(|update| update.announced_len()).sum();
    assert_eq!(announced, 5000);
    assert_eq!(
        updates.last().and_then(|update| update.end_of_rib),
        Some(Family::Ipv4)
    );
}

#[test]
fn malformed_attribute_is_treated_as_withdraw_and_session_stays_up() {
    let mut peer = RawPeer::established();
    let mut message = announcement(&slash_24s(2), true, 4096).remove(0).to_vec();
    // ORIGIN value 7 (RFC 7606 section 7.1: treat-as-withdraw).
    let origin_at = message
        .windows(3)
        .position(|w| w == [0x40, 1, 1])
        .map_or(0, |at| at + 3);
    message[origin_at] = 7;
    peer.send(&message);
    assert_eq!(peer.session.state(), State::Established);
    let events = peer.events();
    let Some(Event::Update(update)) = events.first() else {
        panic!("no update: {events:?}")
    };
    assert!(update.treated_as_withdraw);
    assert_eq!(update.withdrawn, slash_24s(2));
    assert!(update.announcements.is_empty());
    assert_eq!(peer.session.counters().updates_treated_as_withdraw, 1);
    assert!(peer.sent().is_empty());
}

#[test]
fn oversized_message_gets_bad_message_length() {
    let mut peer = RawPeer::established();
    let big = announcement(&slash_24s(2000), true, 65535);
    assert!(big[0].len() > 4096);
    peer.send(&big[0]);
    assert_eq!(peer.last_notification(), Some((1, 2)));
    assert_eq!(peer.session.state(), State::Idle);
}

#[test]
fn extended_messages_when_both_agree() {
    let mut peer = RawPeer::new(config_a());
    let capabilities = Capabilities {
        extended_message: true,
        ..Capabilities::default()
    };
    peer.send(&open_from_b(90, capabilities));
    peer.send(&wire::encode_keepalive());
    assert_eq!(
        peer.session.negotiated().map(|n| n.max_message_len),
        Some(65535)
    );
    let big = announcement(&slash_24s(2000), true, 65535);
    assert!(big[0].len() > 4096);
    peer.send(&big[0]);
    assert_eq!(peer.session.state(), State::Established);
    let events = peer.events();
    let announced: usize = events
        .iter()
        .map(|event| match event {
            Event::Update(update) => update.announced_len(),
            _ => 0,
        })
        .sum();
    assert_eq!((big.len(), announced), (1, 2000));
}

#[test]
fn extended_messages_need_both_sides() {
    let mut config = config_a();
    config.extended_messages = false;
    let mut pair = Pair::new(config, config_b());
    pair.shuttle();
    assert_eq!(pair.b.negotiated().map(|n| n.max_message_len), Some(4096));
}

#[test]
fn bad_marker_gets_connection_not_synchronized() {
    let mut peer = RawPeer::established();
    let mut keepalive = wire::encode_keepalive().to_vec();
    keepalive[0] = 0;
    peer.send(&keepalive);
    assert_eq!(peer.last_notification(), Some((1, 1)));
}

#[test]
fn unknown_message_type_gets_bad_message_type() {
    let mut peer = RawPeer::established();
    let mut keepalive = wire::encode_keepalive().to_vec();
    keepalive[18] = 42;
    peer.send(&keepalive);
    assert_eq!(peer.last_notification(), Some((1, 3)));
}

#[test]
fn notification_received_ends_the_session_with_its_text() {
    let mut pair = Pair::established();
    pair.b.stop(
        CeaseSubcode::AdministrativeShutdown,
        "maintenance until 18:00",
        pair.now,
    );
    pair.shuttle();
    assert_eq!((pair.a.state(), pair.b.state()), (State::Idle, State::Idle));
    let Some(DownReason::NotificationReceived(notification)) = down_reason(&pair.events_a) else {
        panic!("{:?}", pair.events_a)
    };
    assert_eq!(notification.describe(), "Cease / Administrative Shutdown");
    assert_eq!(
        notification.shutdown_message().as_deref(),
        Some("maintenance until 18:00")
    );
    assert!(matches!(
        down_reason(&pair.events_b),
        Some(DownReason::LocalStop(_))
    ));
    assert_eq!(
        pair.a.counters().notifications_received.get(&(6, 2)),
        Some(&1)
    );
}

#[test]
fn connection_closed_ends_the_session_without_notification() {
    let mut peer = RawPeer::established();
    peer.session.handle_connection_closed(peer.now);
    assert_eq!(peer.session.state(), State::Idle);
    assert_eq!(
        down_reason(&peer.events()),
        Some(&DownReason::ConnectionClosed)
    );
    assert!(peer.sent().is_empty());
    peer.send(&wire::encode_keepalive());
    assert!(peer.events().is_empty());
}

#[test]
fn route_refresh_is_reported_only_for_negotiated_families() {
    let mut peer = RawPeer::new(config_a());
    let capabilities = Capabilities::default();
    let open = Open::new(
        SPEAKER_B,
        90,
        Ipv4Addr::new(198, 18, 0, 2),
        Capabilities {
            families: vec![Family::Ipv4],
            route_refresh: true,
            ..capabilities
        },
    );
    peer.send(&wire::encode_open(&open));
    peer.send(&wire::encode_keepalive());
    peer.events();
    peer.send(&wire::encode_route_refresh(Family::Ipv6));
    assert!(peer.events().is_empty());
    assert_eq!(peer.session.counters().route_refresh_ignored, 1);
    peer.send(&wire::encode_route_refresh(Family::Ipv4));
    assert_eq!(peer.events(), vec![Event::RouteRefresh(Family::Ipv4)]);
    assert_eq!(peer.session.state(), State::Established);
}

#[test]
fn route_refresh_request_is_sent_when_negotiated() {
    let mut pair = Pair::established();
    pair.a.request_route_refresh(Family::Ipv6, pair.now);
    pair.shuttle();
    assert!(pair.events_b.contains(&Event::RouteRefresh(Family::Ipv6)));
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    let low = Ipv4Addr::new(198, 18, 0, 1);
    let high = Ipv4Addr::new(198, 18, 0, 2);
    assert!(collision_keeps_incoming(low, high));
    assert!(!collision_keeps_incoming(high, low));
    let mut pair = Pair::established();
    pair.a
        .stop(CeaseSubcode::ConnectionCollisionResolution, "", pair.now);
    pair.shuttle();
    assert_eq!(
        down_reason(&pair.events_a),
        Some(&DownReason::CollisionLost)
    );
    let Some(DownReason::NotificationReceived(notification)) = down_reason(&pair.events_b) else {
        panic!("{:?}", pair.events_b)
    };
    assert_eq!((notification.code, notification.subcode), (6, 7));
}

#[test]
fn send_update_outside_established_is_dropped() {
    let mut peer = RawPeer::new(config_a());
    peer.sent();
    peer.session
        .send_update(encode_end_of_rib(Family::Ipv4), peer.now);
    assert!(peer.sent().is_empty());
}

/// A pair whose two sides have the given BGP roles (RFC 9234).
fn role_pair(a: Option<RolePolicy>, b: Option<RolePolicy>) -> Pair {
    let now = Instant::now();
    let mut pair = Pair {
        a: Session::with_role(config_a(), a, Direction::Outgoing, now),
        b: Session::with_role(config_b(), b, Direction::Incoming, now),
        now,
        events_a: Vec::new(),
        events_b: Vec::new(),
    };
    pair.shuttle();
    pair
}

const ROUTE_SERVER: RolePolicy = RolePolicy {
    local: Role::RouteServer,
    strict: false,
};

fn client(role: Role) -> Option<RolePolicy> {
    Some(RolePolicy {
        local: role,
        strict: false,
    })
}

#[test]
fn a_route_server_and_an_rs_client_establish_and_learn_each_others_role() {
    let pair = role_pair(Some(ROUTE_SERVER), client(Role::RouteServerClient));
    assert_eq!(
        (pair.a.state(), pair.b.state()),
        (State::Established, State::Established)
    );
    let peer_roles = (
        pair.a.negotiated().and_then(|n| n.peer_role),
        pair.b.negotiated().and_then(|n| n.peer_role),
    );
    assert_eq!(
        peer_roles,
        (Some(Role::RouteServerClient), Some(Role::RouteServer))
    );
}

#[test]
fn a_peer_without_a_role_is_accepted_unless_strict() {
    let pair = role_pair(Some(ROUTE_SERVER), None);
    assert_eq!(pair.a.state(), State::Established);
    assert_eq!(pair.a.negotiated().and_then(|n| n.peer_role), None);

    let strict = RolePolicy {
        strict: true,
        ..ROUTE_SERVER
    };
    let pair = role_pair(Some(strict), None);
    assert_eq!(pair.a.state(), State::Idle);
    let sent = pair.events_a.iter().find_map(|event| match event {
        Event::Down(DownReason::NotificationSent(notification)) => Some(notification.clone()),
        _ => None,
    });
    assert_eq!(sent.map(|n| (n.code, n.subcode)), Some((2, 11)));
}

#[test]
fn a_mismatching_role_is_refused_with_role_mismatch() {
    for wrong in [
        Role::Customer,
        Role::Provider,
        Role::Peer,
        Role::RouteServer,
    ] {
        let pair = role_pair(Some(ROUTE_SERVER), client(wrong));
        assert_eq!(pair.a.state(), State::Idle, "{wrong:?}");
        // Both sides check: whichever reads the other's OPEN first sends the NOTIFICATION.
        let reasons: Vec<String> = [down_reason(&pair.events_a), down_reason(&pair.events_b)]
            .into_iter()
            .flatten()
            .filter_map(|reason| reason.notification().map(Notification::describe))
            .collect();
        assert!(
            reasons.iter().all(|text| text.contains("Role Mismatch")) && !reasons.is_empty(),
            "{wrong:?}: {reasons:?}"
        );
    }
}

#[test]
fn the_route_servers_open_carries_role_rs_in_capability_9() {
    let now = Instant::now();
    let mut session = Session::with_role(config_a(), Some(ROUTE_SERVER), Direction::Outgoing, now);
    let open = session.poll_transmit().expect("OPEN queued");
    assert!(
        open.windows(3).any(|window| window == [9, 1, 1]),
        "{open:02x?}"
    );
    let plain = Session::new(config_a(), Direction::Outgoing, now)
        .poll_transmit()
        .expect("OPEN queued");
    assert!(
        !plain.windows(2).any(|window| window == [9, 1]),
        "{plain:02x?}"
    );
}

#[test]
fn the_route_server_itself_refuses_a_customer_role_in_the_peers_open() {
    let now = Instant::now();
    let mut session = Session::with_role(config_a(), Some(ROUTE_SERVER), Direction::Incoming, now);
    let capabilities = Capabilities {
        families: vec![Family::Ipv4],
        roles: vec![Role::Customer.value()],
        ..Capabilities::default()
    };
    let open = Open::new(SPEAKER_B, 90, Ipv4Addr::new(198, 18, 0, 2), capabilities);
    session.handle_received(&wire::encode_open(&open), now);
    assert_eq!(session.state(), State::Idle);
    let sent: Vec<Bytes> = std::iter::from_fn(|| session.poll_transmit()).collect();
    // OPEN, then NOTIFICATION 2/11 with no data: 19-byte header + code + subcode.
    let notification = sent.last().expect("NOTIFICATION sent");
    assert_eq!(notification.len(), 21, "{notification:02x?}");
    assert_eq!(&notification[18..], &[3, 2, 11]);
}
