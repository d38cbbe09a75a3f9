//! One task per neighbor slot (a member over one family): owns its TCP connections and their
//! sans-IO `Session`s, resolves connection collisions (RFC 4271 section 6.8), opens connections
//! when configured to, and moves UPDATEs between its session and the RIB task. Must not make
//! routing decisions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument as _, debug, info, info_span, warn};
use vixp_bgp::session::MessageCounts;
use vixp_bgp::wire::{encode_announcements, encode_withdrawals};
use vixp_bgp::{
    CeaseSubcode, Counters, Direction, Event, Family, Prefix, Session, SessionConfig, State,
    collision_keeps_incoming,
};
use vixp_fabric::RouteServer;

use super::rib_task::{Reset, RibEvent, TaggedExport};
use super::{NeighborConfig, StatusTable};
use crate::metrics::{MessageLabels, Metrics, NotificationLabels, SessionLabels};
use crate::rib::PeerInfo;

/// Bytes queued for a connection's writer above which no further exports are taken, so a slow
/// reader holds its own backlog in the RIB's dirty set rather than in memory here.
const MAX_WRITE_BACKLOG: usize = 256 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;
/// Reads queued from connection readers to the neighbor task.
const READ_QUEUE: usize = 16;
/// How long an outgoing connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Channels a neighbor task is wired to.
pub struct Channels {
    /// Events to the RIB task.
    pub rib: mpsc::Sender<RibEvent>,
    /// Export batches from the RIB task.
    pub exports: mpsc::Receiver<TaggedExport>,
    /// Accepted connections from the listeners.
    pub incoming: mpsc::Receiver<TcpStream>,
    /// Tells the RIB task an export was taken (room for the next).
    pub wakeup: Arc<Notify>,
    /// Session resets ordered by the RIB task (lagging, max-prefix, release after reload).
    pub reset: mpsc::UnboundedReceiver<Reset>,
    /// Becomes true on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

enum Read {
    Data(Bytes),
    Closed,
}

struct Connection {
    id: u64,
    session: Session,
    writer: Option<mpsc::UnboundedSender<Bytes>>,
    backlog: Arc<AtomicUsize>,
    reader: JoinHandle<()>,
    writer_task: Option<JoinHandle<()>>,
    finished: bool,
    synced: CounterSnapshot,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Message types in the order of [`CounterSnapshot`]'s arrays, as metric labels.
const MESSAGE_KINDS: [&str; 5] = [
    "open",
    "update",
    "notification",
    "keepalive",
    "route_refresh",
];

/// Counter values already exported to metrics, so only differences are added. Built without
/// allocating (notification maps are almost always empty), so comparing it every loop is cheap.
#[derive(Default, Clone, PartialEq, Eq)]
struct CounterSnapshot {
    received: [u64; 5],
    sent: [u64; 5],
    notifications_received: Vec<((u8, u8), u64)>,
    notifications_sent: Vec<((u8, u8), u64)>,
    treated_as_withdraw: u64,
    attributes_discarded: u64,
}

impl CounterSnapshot {
    fn from_counters(counters: &Counters) -> CounterSnapshot {
        let by_type = |counts: &MessageCounts| {
            [
                counts.open,
                counts.update,
                counts.notification,
                counts.keepalive,
                counts.route_refresh,
            ]
        };
        CounterSnapshot {
            received: by_type(&counters.received),
            sent: by_type(&counters.sent),
            notifications_received: counters
                .notifications_received
                .iter()
                .map(|(key, value)| (*key, *value))
                .collect(),
            notifications_sent: counters
                .notifications_sent
                .iter()
                .map(|(key, value)| (*key, *value))
                .collect(),
            treated_as_withdraw: counters.updates_treated_as_withdraw,
            attributes_discarded: counters.attributes_discarded,
        }
    }
}

/// The neighbor task.
pub struct NeighborTask {
    config: NeighborConfig,
    session_config: SessionConfig,
    remote: SocketAddr,
    connect_retry: Duration,
    active_open: bool,
    channels: Channels,
    status: StatusTable,
    metrics: Arc<Metrics>,
    labels: SessionLabels,
    connections: Vec<Connection>,
    next_connection: u64,
    read_sender: mpsc::Sender<(u64, Read)>,
    reads: mpsc::Receiver<(u64, Read)>,
    connect_sender: mpsc::Sender<std::io::Result<TcpStream>>,
    connects: mpsc::Receiver<std::io::Result<TcpStream>>,
    connecting: bool,
    connect_at: Option<Instant>,
    established: Option<u64>,
    generation: u64,
    /// Signalled by writers after each write: a full backlog may have drained, so exports can
    /// be taken again (without it the task would sleep until its next timer).
    drained: Arc<Notify>,
    /// The BGP Role this side announces (RS) and whether members must announce theirs
    /// (RFC 9234, `policy.bgp_role`).
    role: vixp_bgp::RolePolicy,
    /// Set after a max-prefix violation: the member is refused until then (`Some(None)`: until
    /// a fabric reload or restart).
    held_off: Option<Option<Instant>>,
    /// Set when a reload removed the slot: the session ends with this Cease subcode and the
    /// task stops.
    removed: Option<CeaseSubcode>,
}

impl NeighborTask {
    /// Sets how strictly the member's BGP Role is checked (`policy.bgp_role`); the route
    /// server always announces the role RS (RFC 9234 section 4.1).
    pub fn with_bgp_role(mut self, policy: vixp_fabric::BgpRolePolicy) -> NeighborTask {
        self.role.strict = policy == vixp_fabric::BgpRolePolicy::Strict;
        self
    }

    /// A task for one neighbor slot of `route_server`.
    pub fn new(
        config: NeighborConfig,
        route_server: &RouteServer,
        channels: Channels,
        status: StatusTable,
        metrics: Arc<Metrics>,
    ) -> NeighborTask {
        let session_config = SessionConfig {
            local_asn: route_server.asn.0,
            local_id: route_server.router_id,
            peer_asn: config.asn,
            hold_time: route_server.bgp.hold_time,
            families: vec![config.family],
            extended_messages: true,
            route_refresh: true,
        };
        let labels = SessionLabels {
            member: config.name.clone(),
            family: config.family.label().to_string(),
        };
        let (read_sender, reads) = mpsc::channel(READ_QUEUE);
        let (connect_sender, connects) = mpsc::channel(1);
        NeighborTask {
            remote: SocketAddr::new(config.address, route_server.bgp.port),
            connect_retry: Duration::from_secs(u64::from(route_server.bgp.connect_retry)),
            active_open: route_server.bgp.active_open && config.local_address.is_some(),
            session_config,
            config,
            channels,
            status,
            metrics,
            labels,
            connections: Vec::new(),
            next_connection: 0,
            read_sender,
            reads,
            connect_sender,
            connects,
            connecting: false,
            connect_at: Some(Instant::now()),
            established: None,
            generation: 0,
            drained: Arc::new(Notify::new()),
            held_off: None,
            role: vixp_bgp::RolePolicy {
                local: vixp_bgp::Role::RouteServer,
                strict: false,
            },
            removed: None,
        }
    }

    /// Runs until shutdown.
    pub async fn run(mut self) {
        let span =
            info_span!("neighbor", member = %self.config.name, family = self.config.family.label());
        async move {
            self.metrics.session_up.get_or_create(&self.labels).set(0);
            self.metrics
                .session_state
                .get_or_create(&self.labels)
                .set(0);
            self.metrics
                .session_established_timestamp
                .get_or_create(&self.labels)
                .set(0);
            self.register_counters();
            loop {
                if *self.channels.shutdown.borrow() {
                    self.shut_down(
                        CeaseSubcode::AdministrativeShutdown,
                        "route server shutting down",
                    )
                    .await;
                    return;
                }
                if let Some(subcode) = self.removed {
                    info!(
                        subcode = subcode.code(),
                        "neighbor removed from the fabric: session ended"
                    );
                    self.shut_down(subcode, "").await;
                    self.forget_metrics();
                    return;
                }
                self.step().await;
                self.process().await;
            }
        }
        .instrument(span)
        .await;
    }

    fn deadline(&self) -> Option<Instant> {
        let sessions = self
            .connections
            .iter()
            .filter_map(|connection| connection.session.poll_timeout());
        let connect = if self.wants_connect() {
            match self.held_off {
                Some(None) => None,
                Some(Some(until)) => self.connect_at.map(|at| at.max(until)),
                None => self.connect_at,
            }
        } else {
            None
        };
        sessions.chain(connect).min()
    }

    fn wants_connect(&self) -> bool {
        self.active_open && self.connections.is_empty() && !self.connecting
    }

    fn can_export(&self) -> bool {
        self.established
            .and_then(|id| self.connection(id))
            .is_some_and(|connection| {
                connection.backlog.load(Ordering::Relaxed) < MAX_WRITE_BACKLOG
            })
    }

    fn connection(&self, id: u64) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|connection| connection.id == id)
    }

    fn connection_mut(&mut self, id: u64) -> Option<&mut Connection> {
        self.connections
            .iter_mut()
            .find(|connection| connection.id == id)
    }

    /// Waits for one input and feeds it to the right core.
    async fn step(&mut self) {
        let deadline = self.deadline();
        let sleep = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        let can_export = self.can_export();
        tokio::select! {
            biased;
            _ = self.channels.shutdown.changed() => {}
            () = self.drained.notified(), if !can_export && self.established.is_some() => {}
            reset = self.channels.reset.recv() => {
                if let Some(reset) = reset {
                    self.reset(reset);
                }
            }
            read = self.reads.recv() => {
                let Some((id, read)) = read else { return };
                let now = Instant::now();
                if let Some(connection) = self.connection_mut(id) {
                    match read {
                        Read::Data(bytes) => connection.session.handle_received(&bytes, now),
                        // RFC 4271 8.2.2, Event 18: TcpConnectionFails.
                        Read::Closed => connection.session.handle_connection_closed(now),
                    }
                }
            }
            stream = self.channels.incoming.recv() => {
                if let Some(stream) = stream {
                    if self.is_held_off(Instant::now()) {
                        debug!("refused connection: held off after exceeding max-prefix");
                        self.metrics
                            .connections_refused
                            .get_or_create(&crate::metrics::RefusedLabels {
                                reason: "max_prefix_hold_off".to_string(),
                            })
                            .inc();
                    } else {
                        self.add_connection(stream, Direction::Incoming);
                    }
                }
            }
            result = self.connects.recv() => {
                self.connecting = false;
                self.connect_at = Some(Instant::now() + self.connect_retry);
                match result {
                    Some(Ok(stream)) => self.add_connection(stream, Direction::Outgoing),
                    Some(Err(error)) => debug!(%error, remote = %self.remote, "connect failed"),
                    None => {}
                }
            }
            export = self.channels.exports.recv(), if can_export => {
                self.channels.wakeup.notify_one();
                if let Some(export) = export {
                    self.send_export(export);
                }
            }
            () = sleep => {
                let now = Instant::now();
                for connection in &mut self.connections {
                    if connection.session.poll_timeout().is_some_and(|at| at <= now) {
                        connection.session.handle_timeout(now);
                    }
                }
                if self.wants_connect()
                    && self.connect_at.is_some_and(|at| at <= now)
                    && !self.is_held_off(now)
                {
                    self.start_connect();
                }
            }
        }
    }

    fn reset(&mut self, reset: Reset) {
        let now = Instant::now();
        match reset {
            Reset::Lagging => {
                if let Some(id) = self.established
                    && let Some(connection) = self.connection_mut(id)
                {
                    warn!(
                        "session reset: the member fell too far behind the route server's updates"
                    );
                    // RFC 4486: Cease, Out of Resources. The member gets the full table again
                    // when it reconnects.
                    connection.session.stop(
                        CeaseSubcode::OutOfResources,
                        "fell too far behind the route server's updates",
                        now,
                    );
                }
            }
            Reset::MaxPrefix {
                family,
                limit,
                hold_off,
            } => {
                warn!(
                    family = family.label(),
                    limit,
                    ?hold_off,
                    "max-prefix limit exceeded: session ended"
                );
                self.held_off = Some(hold_off.map(|duration| now + duration));
                for connection in &mut self.connections {
                    // RFC 4486 subcode 1: Maximum Number of Prefixes Reached.
                    connection
                        .session
                        .stop(CeaseSubcode::MaximumPrefixesReached, "", now);
                }
            }
            Reset::Release => {
                if self.held_off.take().is_some() {
                    info!("max-prefix hold-off released by a fabric reload");
                    self.connect_at = Some(now);
                }
            }
            Reset::Remove(subcode) => self.removed = Some(subcode),
        }
    }

    /// Whether the member is refused for now after a max-prefix violation.
    fn is_held_off(&mut self, now: Instant) -> bool {
        match self.held_off {
            None => false,
            Some(None) => true,
            Some(Some(until)) if now >= until => {
                self.held_off = None;
                false
            }
            Some(Some(_)) => true,
        }
    }

    fn start_connect(&mut self) {
        self.connecting = true;
        let remote = self.remote;
        let local = self.config.local_address;
        let sender = self.connect_sender.clone();
        tokio::spawn(async move {
            let attempt = async {
                let socket = match remote {
                    SocketAddr::V4(_) => TcpSocket::new_v4()?,
                    SocketAddr::V6(_) => TcpSocket::new_v6()?,
                };
                if let Some(local) = local {
                    socket.bind(SocketAddr::new(local, 0))?;
                }
                socket.connect(remote).await
            };
            let result = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection attempt timed out",
                )),
            };
            let _ = sender.send(result).await;
        });
    }

    fn add_connection(&mut self, stream: TcpStream, direction: Direction) {
        let _ = stream.set_nodelay(true);
        let id = self.next_connection;
        self.next_connection += 1;
        let (read_half, write_half) = stream.into_split();
        let (writer, writer_receiver) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let reader = tokio::spawn(read_loop(id, read_half, self.read_sender.clone()));
        let writer_task = tokio::spawn(write_loop(
            write_half,
            writer_receiver,
            Arc::clone(&backlog),
            Arc::clone(&self.drained),
        ));
        let now = Instant::now();
        // RFC 4271 8.2.2, Events 16/17: the TCP connection is up; the session sends OPEN.
        let mut session =
            Session::with_role(self.session_config.clone(), Some(self.role), direction, now);
        if self.established.is_some() {
            // RFC 4271 section 6.8: a connection colliding with an Established one is closed.
            session.stop(CeaseSubcode::ConnectionCollisionResolution, "", now);
        }
        debug!(?direction, connection = id, "connection up");
        self.connections.push(Connection {
            id,
            session,
            writer: Some(writer),
            backlog,
            reader,
            writer_task: Some(writer_task),
            finished: false,
            synced: CounterSnapshot::default(),
        });
    }

    fn send_export(&mut self, tagged: TaggedExport) {
        if tagged.generation != self.generation {
            return;
        }
        let Some(id) = self.established else { return };
        let Some(connection) = self.connection_mut(id) else {
            return;
        };
        let Some(context) = connection
            .session
            .negotiated()
            .map(|negotiated| negotiated.encode_context())
        else {
            return;
        };
        let mut messages = Vec::new();
        for (attributes, prefixes) in &tagged.export.announce {
            encode_announcements(attributes, prefixes, &context, &mut messages);
        }
        for family in Family::ALL {
            let withdrawn: Vec<Prefix> = tagged
                .export
                .withdraw
                .iter()
                .filter(|prefix| Family::of(prefix) == family)
                .copied()
                .collect();
            if !withdrawn.is_empty() {
                encode_withdrawals(&withdrawn, &context, &mut messages);
            }
        }
        let now = Instant::now();
        for message in messages {
            connection.session.send_update(message, now);
        }
    }

    /// Carries out what the sessions handed back: bytes to write, events for the RIB, collisions.
    async fn process(&mut self) {
        loop {
            self.resolve_collision();
            let mut events = Vec::new();
            for connection in &mut self.connections {
                flush(connection);
                while let Some(event) = connection.session.poll_event() {
                    events.push((connection.id, event));
                }
                flush(connection);
            }
            if events.is_empty() {
                break;
            }
            for (id, event) in events {
                self.handle_event(id, event).await;
            }
        }
        self.sync_metrics();
        // Dropping a finished connection drops its writer's sender: the writer task flushes what
        // is queued (the NOTIFICATION) and closes the socket on its own.
        self.connections.retain(|connection| !connection.finished);
        self.publish_status();
    }

    async fn handle_event(&mut self, id: u64, event: Event) {
        match event {
            Event::Established(negotiated) => {
                // An Established event from a connection already closed by collision resolution
                // is stale; one from a second connection while another is the session loses
                // (RFC 4271 section 6.8).
                let alive = self
                    .connection(id)
                    .is_some_and(|connection| connection.session.state() == State::Established);
                if !alive {
                    return;
                }
                if let Some(current) = self.established
                    && current != id
                    && self.connection(current).is_some_and(|c| !c.finished)
                {
                    if let Some(connection) = self.connection_mut(id) {
                        connection.session.stop(
                            CeaseSubcode::ConnectionCollisionResolution,
                            "",
                            Instant::now(),
                        );
                    }
                    return;
                }
                self.generation += 1;
                self.established = Some(id);
                info!(peer_id = %negotiated.peer_id, hold_time = negotiated.hold_time, "session established");
                let info = PeerInfo {
                    member: self.config.member,
                    asn: self.config.asn,
                    router_id: negotiated.peer_id,
                    address: self.config.address,
                    families: negotiated.families.clone(),
                };
                self.metrics.session_up.get_or_create(&self.labels).set(1);
                self.metrics
                    .session_established
                    .get_or_create(&self.labels)
                    .inc();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0));
                self.metrics
                    .session_established_timestamp
                    .get_or_create(&self.labels)
                    .set(now);
                if let Ok(mut table) = self.status.lock()
                    && let Some(entry) = super::status_entry(&mut table, self.config.id)
                {
                    entry.established_since = Some(SystemTime::now());
                    entry.router_id = Some(negotiated.peer_id);
                }
                let _ = self
                    .channels
                    .rib
                    .send(RibEvent::Up {
                        peer: self.config.id,
                        info,
                        generation: self.generation,
                    })
                    .await;
            }
            Event::Update(update) => {
                if self.established == Some(id) {
                    let _ = self
                        .channels
                        .rib
                        .send(RibEvent::Update {
                            peer: self.config.id,
                            update,
                        })
                        .await;
                }
            }
            Event::RouteRefresh(family) => {
                if self.established == Some(id) {
                    let _ = self
                        .channels
                        .rib
                        .send(RibEvent::Refresh {
                            peer: self.config.id,
                            family,
                        })
                        .await;
                }
            }
            Event::Down(reason) => {
                if let Some(connection) = self.connection_mut(id) {
                    connection.finished = true;
                }
                if self.established == Some(id) {
                    self.established = None;
                    self.generation += 1;
                    warn!(%reason, "session down");
                    self.metrics.session_up.get_or_create(&self.labels).set(0);
                    if let Ok(mut table) = self.status.lock()
                        && let Some(entry) = super::status_entry(&mut table, self.config.id)
                    {
                        entry.established_since = None;
                        entry.last_error = Some(reason.to_string());
                    }
                    let _ = self
                        .channels
                        .rib
                        .send(RibEvent::Down {
                            peer: self.config.id,
                        })
                        .await;
                } else {
                    debug!(%reason, connection = id, "connection closed before establishment");
                    if let Ok(mut table) = self.status.lock()
                        && let Some(entry) = super::status_entry(&mut table, self.config.id)
                    {
                        entry.last_error = Some(reason.to_string());
                    }
                }
                if self
                    .connections
                    .iter()
                    .all(|connection| connection.finished)
                {
                    self.connect_at = Some(Instant::now() + self.connect_retry);
                }
            }
        }
    }

    /// RFC 4271 section 6.8: when two connections both know the peer's BGP identifier, keep one.
    /// A connection that is already the established session always wins. Otherwise (both
    /// reached OpenConfirm, or both went straight to Established because OPEN and KEEPALIVE came
    /// in one read) the BGP identifiers decide, as the peer decides too, so both sides keep the
    /// same connection.
    fn resolve_collision(&mut self) {
        let open: Vec<usize> = self
            .connections
            .iter()
            .enumerate()
            .filter(|(_, connection)| {
                !connection.finished
                    && connection.session.peer_id().is_some()
                    && matches!(
                        connection.session.state(),
                        State::OpenSent | State::OpenConfirm | State::Established
                    )
            })
            .map(|(position, _)| position)
            .collect();
        if open.len() < 2 {
            return;
        }
        let keep = match open
            .iter()
            .copied()
            .find(|position| Some(self.connections[*position].id) == self.established)
        {
            Some(established) => established,
            None => {
                let Some(peer_id) = self.connections[open[0]].session.peer_id() else {
                    return;
                };
                let keep_incoming = collision_keeps_incoming(self.session_config.local_id, peer_id);
                open.iter()
                    .copied()
                    .find(|position| {
                        let incoming = matches!(
                            self.connections[*position].session.direction(),
                            Direction::Incoming
                        );
                        incoming == keep_incoming
                    })
                    .unwrap_or(open[0])
            }
        };
        let now = Instant::now();
        for position in open {
            if position == keep {
                continue;
            }
            let connection = &mut self.connections[position];
            debug!(
                connection = connection.id,
                "closing connection: collision resolution"
            );
            connection
                .session
                .stop(CeaseSubcode::ConnectionCollisionResolution, "", now);
        }
    }

    /// Ends every connection with a Cease NOTIFICATION of `subcode` (RFC 4486) and waits up to
    /// 2 s for the writers to send it.
    async fn shut_down(&mut self, subcode: CeaseSubcode, message: &str) {
        let now = Instant::now();
        for connection in &mut self.connections {
            connection.session.stop(subcode, message, now);
            flush(connection);
            connection.writer = None;
        }
        for connection in &mut self.connections {
            if let Some(writer) = connection.writer_task.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            }
        }
        self.sync_metrics();
    }

    /// Removes this session's series from the metrics once its slot is gone from the fabric,
    /// unless a new slot with the same member and family took over (an address change).
    fn forget_metrics(&self) {
        let replaced = self.status.lock().is_ok_and(|table| {
            table.iter().any(|entry| {
                entry.config.name == self.config.name && entry.config.family == self.config.family
            })
        });
        if !replaced {
            self.metrics.forget_session(&self.labels);
        }
    }

    fn publish_status(&self) {
        let best = self
            .established
            .and_then(|id| self.connection(id))
            .or_else(|| {
                self.connections
                    .iter()
                    .max_by_key(|c| state_rank(c.session.state()))
            });
        let state = best.map_or(State::Idle, |connection| connection.session.state());
        let shown = if best.is_none() && self.connecting {
            State::Connect
        } else if best.is_none() && self.active_open {
            State::Active
        } else {
            state
        };
        self.metrics
            .session_state
            .get_or_create(&self.labels)
            .set(state_rank(shown));
        if let Ok(mut table) = self.status.lock()
            && let Some(entry) = super::status_entry(&mut table, self.config.id)
        {
            entry.state = state_name(shown);
        }
    }

    fn sync_metrics(&mut self) {
        let mut changes = Vec::new();
        for connection in &mut self.connections {
            let current = CounterSnapshot::from_counters(connection.session.counters());
            if current != connection.synced {
                let previous = std::mem::replace(&mut connection.synced, current.clone());
                changes.push((previous, current));
            }
        }
        for (previous, current) in changes {
            for (position, kind) in MESSAGE_KINDS.iter().enumerate() {
                let added = current.received[position].saturating_sub(previous.received[position]);
                if added > 0 {
                    self.metrics
                        .messages_received
                        .get_or_create(&self.message_labels(kind))
                        .inc_by(added);
                }
                let added = current.sent[position].saturating_sub(previous.sent[position]);
                if added > 0 {
                    self.metrics
                        .messages_sent
                        .get_or_create(&self.message_labels(kind))
                        .inc_by(added);
                }
            }
            for ((code, subcode), value) in &current.notifications_received {
                let before = lookup(&previous.notifications_received, &(*code, *subcode));
                if *value > before {
                    self.metrics
                        .notifications_received
                        .get_or_create(&self.notification_labels(*code, *subcode))
                        .inc_by(*value - before);
                }
            }
            for ((code, subcode), value) in &current.notifications_sent {
                let before = lookup(&previous.notifications_sent, &(*code, *subcode));
                if *value > before {
                    self.metrics
                        .notifications_sent
                        .get_or_create(&self.notification_labels(*code, *subcode))
                        .inc_by(*value - before);
                }
            }
            if current.treated_as_withdraw > previous.treated_as_withdraw {
                self.metrics
                    .updates_treated_as_withdraw
                    .get_or_create(&self.labels)
                    .inc_by(current.treated_as_withdraw - previous.treated_as_withdraw);
            }
            if current.attributes_discarded > previous.attributes_discarded {
                self.metrics
                    .attributes_discarded
                    .get_or_create(&self.labels)
                    .inc_by(current.attributes_discarded - previous.attributes_discarded);
            }
        }
    }

    /// Creates this session's counter series at zero, so every counter family is in `/metrics`
    /// from start-up (dashboards and alerts can rely on them before the first event).
    fn register_counters(&self) {
        for kind in MESSAGE_KINDS {
            let labels = self.message_labels(kind);
            self.metrics
                .messages_received
                .get_or_create(&labels)
                .inc_by(0);
            self.metrics.messages_sent.get_or_create(&labels).inc_by(0);
        }
        self.metrics
            .session_established
            .get_or_create(&self.labels)
            .inc_by(0);
        self.metrics
            .updates_treated_as_withdraw
            .get_or_create(&self.labels)
            .inc_by(0);
        self.metrics
            .attributes_discarded
            .get_or_create(&self.labels)
            .inc_by(0);
        self.metrics
            .max_prefix_exceeded
            .get_or_create(&self.labels)
            .inc_by(0);
    }

    fn message_labels(&self, kind: &str) -> MessageLabels {
        MessageLabels {
            member: self.config.name.clone(),
            family: self.config.family.label().to_string(),
            r#type: kind.to_string(),
        }
    }

    fn notification_labels(&self, code: u8, subcode: u8) -> NotificationLabels {
        NotificationLabels {
            member: self.config.name.clone(),
            code,
            subcode,
        }
    }
}

fn lookup<K: PartialEq>(values: &[(K, u64)], key: &K) -> u64 {
    values
        .iter()
        .find(|(candidate, _)| candidate == key)
        .map_or(0, |(_, value)| *value)
}

/// Moves the session's pending bytes to the connection's writer.
fn flush(connection: &mut Connection) {
    while let Some(bytes) = connection.session.poll_transmit() {
        if let Some(writer) = &connection.writer {
            connection.backlog.fetch_add(bytes.len(), Ordering::Relaxed);
            let _ = writer.send(bytes);
        }
    }
}

/// RFC 4271 FSM states in order, as exported by `route_server_session_state`.
fn state_rank(state: State) -> i64 {
    match state {
        State::Idle => 0,
        State::Connect => 1,
        State::Active => 2,
        State::OpenSent => 3,
        State::OpenConfirm => 4,
        State::Established => 5,
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Idle => "Idle",
        State::Connect => "Connect",
        State::Active => "Active",
        State::OpenSent => "OpenSent",
        State::OpenConfirm => "OpenConfirm",
        State::Established => "Established",
    }
}

async fn read_loop(id: u64, mut read_half: OwnedReadHalf, sender: mpsc::Sender<(u64, Read)>) {
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    loop {
        buffer.reserve(READ_CHUNK);
        match read_half.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = sender.send((id, Read::Closed)).await;
                return;
            }
            Ok(_) => {
                if sender
                    .send((id, Read::Data(buffer.split().freeze())))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Writes queued messages, coalescing what is already queued into one write.
async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    mut write_half: W,
    mut receiver: mpsc::UnboundedReceiver<Bytes>,
    backlog: Arc<AtomicUsize>,
    drained: Arc<Notify>,
) {
    const COALESCE: usize = 256 * 1024;
    let mut out = BytesMut::new();
    while let Some(first) = receiver.recv().await {
        out.extend_from_slice(&first);
        while out.len() < COALESCE {
            match receiver.try_recv() {
                Ok(more) => out.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        let written = out.len();
        if write_half.write_all(&out).await.is_err() {
            return;
        }
        let before = backlog.fetch_sub(written, Ordering::Relaxed);
        if before >= MAX_WRITE_BACKLOG && before - written < MAX_WRITE_BACKLOG {
            drained.notify_one();
        }
        out.clear();
    }
    let _ = write_half.shutdown().await;
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    /// A neighbor task that stopped taking exports because its backlog was full must be woken
    /// when the writer drains it, not at its next keepalive (a 28-58 s stall seen in bgp-bench).
    #[tokio::test]
    async fn the_writer_wakes_the_task_when_a_full_backlog_drains() {
        let (writer_end, mut reader_end) = tokio::io::duplex(4096);
        let (sender, receiver) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let chunk = Bytes::from(vec![0u8; 4096]);
        let chunks = MAX_WRITE_BACKLOG / chunk.len() + 8;
        for _ in 0..chunks {
            backlog.fetch_add(chunk.len(), Ordering::Relaxed);
            sender.send(chunk.clone()).expect("queued");
        }
        assert!(backlog.load(Ordering::Relaxed) >= MAX_WRITE_BACKLOG);
        let writer = tokio::spawn(write_loop(
            writer_end,
            receiver,
            Arc::clone(&backlog),
            Arc::clone(&drained),
        ));
        let woken = drained.notified();
        let mut sink = vec![0u8; 65536];
        let mut read = 0;
        let reading = async {
            while read < chunks * chunk.len() {
                read += reader_end.read(&mut sink).await.expect("read");
            }
        };
        let (_, ()) = tokio::join!(reading, async {
            tokio::time::timeout(Duration::from_secs(5), woken)
                .await
                .expect("woken once the backlog drains");
        });
        assert!(backlog.load(Ordering::Relaxed) < MAX_WRITE_BACKLOG);
        drop(sender);
        writer.await.expect("writer ends when the sender goes");
    }
}
