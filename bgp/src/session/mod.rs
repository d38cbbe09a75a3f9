//! The per-connection RFC 4271 BGP finite state machine, sans-IO: bytes and `now` in, bytes,
//! events and a deadline out. Owns framing, OPEN checks, capability negotiation and the hold
//! and keepalive timers; must not own sockets, tasks, channels or clocks, and must not look
//! at routes beyond handing decoded UPDATEs to the caller.

mod report;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::role::{Role, RolePolicy};
use crate::types::Family;
use crate::wire::{
    self, Capabilities, CeaseSubcode, DecodeContext, EncodeContext, MAX_MESSAGE_LEN, Message,
    MessageKind, Notification, Open, Update,
};

pub use report::{Counters, DownReason, MessageCounts};

/// Hold timer while waiting for the peer's OPEN: "a large value", 4 minutes suggested
/// (RFC 4271 section 8.2.2, Event 16/17 in Connect/Active).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);
/// Hold time vixp proposes unless configured otherwise (RFC 4271 section 10 suggests 90 s).
pub const DEFAULT_HOLD_TIME: u16 = 90;

/// What this side says in its OPEN and accepts from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Local ASN (4-octet; AS_TRANS goes in the 2-octet field when it does not fit).
    pub local_asn: u32,
    /// Local BGP Identifier.
    pub local_id: Ipv4Addr,
    /// The ASN the peer must announce (RFC 4271 section 6.2, Bad Peer AS otherwise).
    pub peer_asn: u32,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Families offered with the multiprotocol capability (RFC 4760 section 8).
    pub families: Vec<Family>,
    /// Offer the extended message capability (RFC 8654).
    pub extended_messages: bool,
    /// Offer the route refresh capability (RFC 2918).
    pub route_refresh: bool,
}

/// Who opened the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// This side connected to the peer (RFC 4271 Event 16/17 from Connect).
    Outgoing,
    /// The peer connected to this side (Event 17 from Active).
    Incoming,
}

/// RFC 4271 section 8.2.2 states. A `Session` starts in OpenSent (it exists only once TCP is
/// up) and ends in Idle; Connect and Active belong to the driver that makes connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running: the session has gone down.
    Idle,
    /// Waiting for an outgoing TCP connection (driver side).
    Connect,
    /// Listening for an incoming TCP connection (driver side).
    Active,
    /// OPEN sent, waiting for the peer's OPEN.
    OpenSent,
    /// OPENs exchanged, waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Routes may flow.
    Established,
}

/// What the OPEN exchange settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's ASN.
    pub peer_asn: u32,
    /// The peer's BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// Hold time in seconds: the smaller proposal; 0 disables hold and keepalive timers.
    pub hold_time: u16,
    /// Both sides are 4-octet AS capable (RFC 6793).
    pub four_octet_as: bool,
    /// Families offered by both sides.
    pub families: Vec<Family>,
    /// Both sides offered route refresh.
    pub route_refresh: bool,
    /// Both sides offered extended messages.
    pub extended_messages: bool,
    /// 65535 with extended messages, else 4096.
    pub max_message_len: u16,
    /// The peer is in another AS (eBGP): no LOCAL_PREF is sent, RFC 7606 external rules apply.
    pub external: bool,
    /// The peer's BGP Role (RFC 9234), when this side has one and the peer announced its own.
    pub peer_role: Option<Role>,
}

impl Negotiated {
    /// How to encode UPDATEs for this peer.
    pub fn encode_context(&self) -> EncodeContext {
        EncodeContext {
            four_octet_as: self.four_octet_as,
            max_message_len: self.max_message_len,
            external: self.external,
        }
    }

    /// Keepalive interval: a third of the hold time (RFC 4271 section 10); `None` for 0.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        (self.hold_time > 0).then(|| Duration::from_secs(u64::from(self.hold_time)) / 3)
    }
}

/// What the session tells its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The session reached Established.
    Established(Negotiated),
    /// An UPDATE after RFC 7606 handling.
    Update(Update),
    /// The peer asked for its Adj-RIB-Out of this family again (RFC 2918 section 4).
    RouteRefresh(Family),
    /// The session is over; flush `poll_transmit`, then close the connection.
    Down(DownReason),
}

/// One BGP session on one TCP connection.
///
/// Call order, as in quinn-proto: create with [`Session::new`] when the connection is up
/// (this queues the OPEN); feed every chunk read from the socket to
/// [`handle_received`](Session::handle_received); call
/// [`handle_timeout`](Session::handle_timeout) at or after [`poll_timeout`](Session::poll_timeout);
/// report EOF or errors with [`handle_connection_closed`](Session::handle_connection_closed).
/// After each call drain [`poll_transmit`](Session::poll_transmit) to the socket in order and
/// [`poll_event`](Session::poll_event) to the application. After [`Event::Down`] flush the
/// remaining transmits and close; the session ignores further input.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    direction: Direction,
    state: State,
    received: BytesMut,
    transmit: VecDeque<Bytes>,
    events: VecDeque<Event>,
    hold_deadline: Option<Instant>,
    keepalive_deadline: Option<Instant>,
    peer_id: Option<Ipv4Addr>,
    negotiated: Option<Negotiated>,
    decode_context: DecodeContext,
    counters: Counters,
    role: Option<RolePolicy>,
}

impl Session {
    /// A session on a connection that just came up: OPEN queued, state OpenSent, hold timer
    /// at 240 s (RFC 4271 section 8.2.2, Event 16/17).
    pub fn new(config: SessionConfig, direction: Direction, now: Instant) -> Session {
        Session::with_role(config, None, direction, now)
    }

    /// [`Session::new`] for a session with a BGP Role (RFC 9234): the OPEN carries the Role
    /// capability, and the peer's OPEN is refused with Role Mismatch when its role does not
    /// match (or, in strict mode, is missing).
    pub fn with_role(
        config: SessionConfig,
        role: Option<RolePolicy>,
        direction: Direction,
        now: Instant,
    ) -> Session {
        let external = config.local_asn != config.peer_asn;
        let mut session = Session {
            config,
            direction,
            state: State::OpenSent,
            received: BytesMut::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            hold_deadline: Some(now + OPEN_HOLD_TIME),
            keepalive_deadline: None,
            peer_id: None,
            negotiated: None,
            decode_context: DecodeContext {
                external,
                ..DecodeContext::INITIAL
            },
            counters: Counters::default(),
            role,
        };
        let capabilities = Capabilities {
            families: session.config.families.clone(),
            route_refresh: session.config.route_refresh,
            extended_message: session.config.extended_messages,
            roles: role.map(|role| role.local.value()).into_iter().collect(),
            ..Capabilities::default()
        };
        let open = Open::new(
            session.config.local_asn,
            session.config.hold_time,
            session.config.local_id,
            capabilities,
        );
        session.queue(MessageKind::Open, wire::encode_open(&open));
        session
    }

    /// Feeds bytes read from the connection; any split of the stream is fine.
    pub fn handle_received(&mut self, bytes: &[u8], now: Instant) {
        if self.state == State::Idle {
            return;
        }
        self.received.extend_from_slice(bytes);
        while self.state != State::Idle {
            let max_message_len = self.decode_context.max_message_len;
            let length = match wire::frame_length(&self.received, max_message_len) {
                Ok(Some(length)) => length,
                Ok(None) => break,
                Err(error) => {
                    self.fail(error.notification());
                    break;
                }
            };
            let message = self.received.split_to(length).freeze();
            match wire::decode_message(message, &self.decode_context) {
                Ok(message) => {
                    self.counters.received.add(message.kind());
                    self.handle_message(message, now);
                }
                Err(error) => self.fail(error.notification()),
            }
        }
        if self.state == State::Idle {
            self.received = BytesMut::new();
        }
    }

    /// Runs expired timers: hold timer (RFC 4271 Event 10) and keepalive timer (Event 11).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Idle {
            return;
        }
        if self.hold_deadline.is_some_and(|deadline| deadline <= now) {
            // RFC 4271 section 8.2.2, Event 10 HoldTimer_Expires: NOTIFICATION 4/0.
            let notification = Notification::new(4, 0, Vec::new());
            self.go_down(notification, DownReason::HoldTimerExpired);
            return;
        }
        if let Some(deadline) = self.keepalive_deadline
            && deadline <= now
        {
            // RFC 4271 section 8.2.2, Event 11 KeepaliveTimer_Expires.
            self.queue(MessageKind::Keepalive, wire::encode_keepalive());
            self.restart_keepalive_timer(now);
        }
    }

    /// The connection closed or failed (RFC 4271 Event 18 TcpConnectionFails).
    pub fn handle_connection_closed(&mut self, _now: Instant) {
        if self.state == State::Idle {
            return;
        }
        self.enter_idle();
        self.events
            .push_back(Event::Down(DownReason::ConnectionClosed));
    }

    /// Stops the session with a Cease (RFC 4271 Event 2 ManualStop, RFC 4486); `message` is
    /// sent as the RFC 9003 shutdown communication for Administrative Shutdown and Reset.
    /// Ending the loser of a collision uses `CeaseSubcode::ConnectionCollisionResolution`.
    pub fn stop(&mut self, subcode: CeaseSubcode, message: &str, _now: Instant) {
        if self.state == State::Idle {
            return;
        }
        let notification = Notification::cease(subcode, message);
        let reason = match subcode {
            CeaseSubcode::ConnectionCollisionResolution => DownReason::CollisionLost,
            _ => DownReason::LocalStop(notification.clone()),
        };
        self.go_down(notification, reason);
    }

    /// Queues a pre-encoded UPDATE. Only in Established; ignored otherwise. Restarts the
    /// keepalive timer (RFC 4271 section 4.4: a KEEPALIVE is needed only when nothing else
    /// was sent).
    pub fn send_update(&mut self, message: Bytes, now: Instant) {
        if self.state != State::Established {
            return;
        }
        self.queue(MessageKind::Update, message);
        self.restart_keepalive_timer(now);
    }

    /// Asks the peer to resend its routes of `family` (RFC 2918 section 3). Only sent in
    /// Established when route refresh and the family were negotiated.
    pub fn request_route_refresh(&mut self, family: Family, _now: Instant) {
        let allowed = self.state == State::Established
            && self.negotiated.as_ref().is_some_and(|negotiated| {
                negotiated.route_refresh && negotiated.families.contains(&family)
            });
        if allowed {
            self.queue(
                MessageKind::RouteRefresh,
                wire::encode_route_refresh(family),
            );
        }
    }

    /// Next bytes to write to the connection, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Session::handle_timeout) next; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.hold_deadline, self.keepalive_deadline) {
            (Some(hold), Some(keepalive)) => Some(hold.min(keepalive)),
            (hold, keepalive) => hold.or(keepalive),
        }
    }

    /// Current FSM state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The peer's BGP Identifier, once its OPEN was accepted.
    pub fn peer_id(&self) -> Option<Ipv4Addr> {
        self.peer_id
    }

    /// What the OPEN exchange settled, once the peer's OPEN was accepted.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Message and error counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The FSM proper: one received message in the current state (RFC 4271 section 8.2.2).
    fn handle_message(&mut self, message: Message, now: Instant) {
        match (self.state, message) {
            // Not running, or states that belong to the connecting driver: nothing to do.
            (State::Idle | State::Connect | State::Active, _) => {}
            // RFC 4271 8.2.2, Events 24/25 NotifMsgVerErr / NotifMsg, in any running state.
            (
                State::OpenSent | State::OpenConfirm | State::Established,
                Message::Notification(notification),
            ) => {
                *self
                    .counters
                    .notifications_received
                    .entry((notification.code, notification.subcode))
                    .or_default() += 1;
                self.enter_idle();
                self.events
                    .push_back(Event::Down(DownReason::NotificationReceived(notification)));
            }
            // RFC 4271 8.2.2, Event 19 BGPOpen in OpenSent.
            (State::OpenSent, Message::Open(open)) => self.handle_open(&open, now),
            // RFC 4271 8.2.2, Events 26/27 KeepAliveMsg / UpdateMsg, and ROUTE-REFRESH, in
            // OpenSent: FSM error, RFC 6608 subcode 1.
            (
                State::OpenSent,
                Message::Keepalive | Message::Update(_) | Message::RouteRefresh(_),
            ) => {
                self.fail(Notification::new(5, 1, Vec::new()));
            }
            // RFC 4271 8.2.2, Event 26 KeepAliveMsg in OpenConfirm: Established.
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                self.restart_hold_timer(now);
                if let Some(negotiated) = self.negotiated.clone() {
                    self.events.push_back(Event::Established(negotiated));
                }
            }
            // RFC 4271 8.2.2, Events 19/27 (and ROUTE-REFRESH) in OpenConfirm: FSM error,
            // RFC 6608 subcode 2. Collisions are resolved by the driver across sessions.
            (
                State::OpenConfirm,
                Message::Open(_) | Message::Update(_) | Message::RouteRefresh(_),
            ) => {
                self.fail(Notification::new(5, 2, Vec::new()));
            }
            // RFC 4271 8.2.2, Event 26 KeepAliveMsg in Established.
            (State::Established, Message::Keepalive) => self.restart_hold_timer(now),
            // RFC 4271 8.2.2, Event 27 UpdateMsg in Established.
            (State::Established, Message::Update(update)) => {
                self.restart_hold_timer(now);
                if update.treated_as_withdraw {
                    self.counters.updates_treated_as_withdraw += 1;
                }
                self.counters.attributes_discarded += update.discarded_attributes.len() as u64;
                self.counters.non_unicast_ignored += u64::from(update.ignored_non_unicast);
                self.events.push_back(Event::Update(update));
            }
            // RFC 2918 section 4: a request for a family not negotiated is ignored.
            (State::Established, Message::RouteRefresh(request)) => {
                let negotiated = self.negotiated.as_ref().and_then(|negotiated| {
                    request
                        .family()
                        .filter(|family| negotiated.families.contains(family))
                });
                match negotiated {
                    Some(family) if request.subtype == 0 => {
                        self.events.push_back(Event::RouteRefresh(family));
                    }
                    _ => self.counters.route_refresh_ignored += 1,
                }
            }
            // RFC 4271 8.2.2, Event 19 BGPOpen in Established: FSM error, RFC 6608 subcode 3.
            (State::Established, Message::Open(_)) => {
                self.fail(Notification::new(5, 3, Vec::new()))
            }
        }
    }

    /// Checks the peer's OPEN (RFC 4271 section 6.2) and moves to OpenConfirm.
    fn handle_open(&mut self, open: &Open, now: Instant) {
        if let Err(notification) = self.check_open(open) {
            self.fail(notification);
            return;
        }
        // RFC 9234 section 4.2: the roles must match; a session without a role of its own
        // ignores the peer's.
        let peer_role = match self.role.map(|role| role.check(&open.capabilities.roles)) {
            None => None,
            Some(Ok(role)) => role,
            Some(Err(notification)) => {
                self.fail(notification);
                return;
            }
        };
        let peer = &open.capabilities;
        let peer_families = peer.unicast_families();
        let families: Vec<Family> = self
            .config
            .families
            .iter()
            .copied()
            .filter(|family| peer_families.contains(family))
            .collect();
        let extended_messages = self.config.extended_messages && peer.extended_message;
        let negotiated = Negotiated {
            peer_asn: open.asn,
            peer_id: open.bgp_identifier,
            hold_time: self.config.hold_time.min(open.hold_time),
            four_octet_as: peer.four_octet_as.is_some(),
            families,
            route_refresh: self.config.route_refresh && peer.route_refresh,
            extended_messages,
            max_message_len: if extended_messages {
                wire::EXTENDED_MAX_MESSAGE_LEN
            } else {
                MAX_MESSAGE_LEN
            },
            external: self.decode_context.external,
            peer_role,
        };
        self.decode_context.four_octet_as = negotiated.four_octet_as;
        self.decode_context.max_message_len = negotiated.max_message_len;
        self.peer_id = Some(open.bgp_identifier);
        self.negotiated = Some(negotiated);
        self.queue(MessageKind::Keepalive, wire::encode_keepalive());
        self.state = State::OpenConfirm;
        self.restart_hold_timer(now);
        self.restart_keepalive_timer(now);
    }

    /// The OPEN checks of RFC 4271 section 6.2 that need configuration.
    fn check_open(&self, open: &Open) -> Result<(), Notification> {
        // Bad Peer AS: compared with the 4-octet AS capability when present (RFC 6793
        // section 4.1), else the 2-octet field.
        if open.asn != self.config.peer_asn {
            return Err(Notification::new(2, 2, Vec::new()));
        }
        // Bad BGP Identifier: zero, or equal to ours within one AS (RFC 6286 section 2.2).
        let same_as = self.config.peer_asn == self.config.local_asn;
        if open.bgp_identifier.is_unspecified()
            || same_as && open.bgp_identifier == self.config.local_id
        {
            return Err(Notification::new(
                2,
                3,
                open.bgp_identifier.octets().to_vec(),
            ));
        }
        // Unacceptable Hold Time: 1 and 2 seconds are refused (RFC 4271 section 4.2).
        if matches!(open.hold_time, 1 | 2) {
            return Err(Notification::new(2, 6, Vec::new()));
        }
        Ok(())
    }

    fn restart_hold_timer(&mut self, now: Instant) {
        let hold = self
            .negotiated
            .as_ref()
            .map_or(0, |negotiated| negotiated.hold_time);
        self.hold_deadline = (hold > 0).then(|| now + Duration::from_secs(u64::from(hold)));
    }

    fn restart_keepalive_timer(&mut self, now: Instant) {
        let interval = self
            .negotiated
            .as_ref()
            .and_then(Negotiated::keepalive_interval);
        self.keepalive_deadline = interval.map(|interval| now + interval);
    }

    fn queue(&mut self, kind: MessageKind, message: Bytes) {
        self.counters.sent.add(kind);
        self.transmit.push_back(message);
    }

    /// An error found here: NOTIFICATION out, session down.
    fn fail(&mut self, notification: Notification) {
        self.go_down(
            notification.clone(),
            DownReason::NotificationSent(notification),
        );
    }

    fn go_down(&mut self, notification: Notification, reason: DownReason) {
        *self
            .counters
            .notifications_sent
            .entry((notification.code, notification.subcode))
            .or_default() += 1;
        self.queue(
            MessageKind::Notification,
            notification.encode(self.decode_context.max_message_len),
        );
        self.enter_idle();
        self.events.push_back(Event::Down(reason));
    }

    fn enter_idle(&mut self) {
        self.state = State::Idle;
        self.hold_deadline = None;
        self.keepalive_deadline = None;
    }
}

/// RFC 4271 section 6.8 connection collision: whether the connection the peer opened
/// (incoming) survives. The side with the higher BGP Identifier keeps the connection it
/// initiated, so the incoming one survives exactly when the local identifier is lower.
pub fn collision_keeps_incoming(local_id: Ipv4Addr, peer_id: Ipv4Addr) -> bool {
    u32::from(local_id) < u32::from(peer_id)
}
