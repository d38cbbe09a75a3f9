//! The load generator process. It runs inside its own network namespace, opens one BGP session
//! per peer to the route server, plays the announce and withdraw phases on command and reports
//! timings on stdout (see `control`). It is its own minimal BGP speaker (RFC 4271: OPEN,
//! KEEPALIVE, UPDATE); it must not make routing decisions, only count what it receives.
//!
//! ```text
//!  stdin --Command--> coordinator --WriterCommand--> writer task (one per session)
//!                         ^                              | TCP write half: UPDATEs, KEEPALIVEs
//!                         |                              | SessionEvent::Sent
//!                         +--SessionEvent---------------+
//!                         |
//!                         +--SessionEvent-- reader task (one per session), TCP read half,
//!                                           updates the session's Holdings
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use bytes::{Buf as _, Bytes, BytesMut};
use rustbgpd_wire::{Capability, MAX_MESSAGE_LEN, Message, decode_message};
use tokio::io::{
    AsyncBufReadExt as _, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader, Lines,
    Stdin,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, sleep, timeout_at};

use crate::control::{Command, LoadSpec, PhaseOutcome, Report};
use crate::encode::{
    HEADER_LENGTH, announcements, cease_message, keepalive_message, open_message, withdrawals,
};
use crate::scenario::{Peer, generate_prefixes};
use crate::sink::{Holdings, KEEPALIVE, NOTIFICATION, PrefixIndex, UPDATE, next_message};

/// Pause between connection attempts while the route server is still starting.
const CONNECT_RETRY: Duration = Duration::from_millis(250);
/// How long closing may wait for the sessions to end after the Cease NOTIFICATIONs.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Read buffer size per session.
const READ_BUFFER: usize = 256 * 1024;

/// What a writer task is told to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterCommand {
    Announce,
    Withdraw,
    /// Send a Cease NOTIFICATION and close the connection.
    Cease,
}

/// What a reader task tells the coordinator.
#[derive(Debug)]
enum SessionEvent {
    /// The receiver holds every prefix it should.
    Full(usize),
    /// The receiver held everything and now holds nothing.
    Empty(usize),
    /// The receiver holds exactly its armed target (see [`Holdings::target`]).
    Target(usize),
    /// The session ended.
    Down { peer: usize, reason: String },
    /// A sender's stream for this phase is all in its kernel socket buffer.
    Sent { peer: usize, phase: WriterCommand },
}

/// One established session as the coordinator sees it.
struct Session {
    peer: Peer,
    holdings: Arc<Mutex<Holdings>>,
    writer: mpsc::Sender<WriterCommand>,
}

/// Entry point of the hidden `loadgen` subcommand: reads the spec and commands from stdin,
/// writes reports to stdout.
///
/// # Errors
/// Only if stdin or stdout fail; every other problem is reported as [`Report::Failed`].
pub async fn run() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let first = lines.next_line().await?.context("no load spec on stdin")?;
    let spec: LoadSpec = serde_json::from_str(&first).context("load spec")?;
    let mut tasks = JoinSet::new();
    if let Err(error) = play(&spec, &mut lines, &mut stdout, &mut tasks).await {
        report(
            &mut stdout,
            &Report::Failed {
                reason: format!("{error:#}"),
            },
        )
        .await?;
    }
    // Let the Cease NOTIFICATIONs go out and the route server close its side.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(())
}

async fn report(output: &mut (impl AsyncWrite + Unpin), report: &Report) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(report)?;
    line.push(b'\n');
    output.write_all(&line).await?;
    output.flush().await?;
    Ok(())
}

/// The next command from the driver; a closed or garbled stdin means close.
async fn next_command(lines: &mut Lines<BufReader<Stdin>>) -> Command {
    match lines.next_line().await {
        Ok(Some(line)) => serde_json::from_str(&line).unwrap_or(Command::Close),
        _ => Command::Close,
    }
}

async fn play(
    spec: &LoadSpec,
    commands: &mut Lines<BufReader<Stdin>>,
    output: &mut (impl AsyncWrite + Unpin),
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let scenario = &spec.scenario;
    let peers = scenario.peer_list();
    let senders = &peers[..scenario.senders];

    let encode_started = Instant::now();
    let prefixes = generate_prefixes(scenario.total_prefixes());
    if prefixes.len() < scenario.total_prefixes() {
        bail!(
            "the IPv4 space holds only {} generated prefixes",
            prefixes.len()
        );
    }
    let mut streams = Vec::with_capacity(peers.len());
    let mut announce_octets = 0u64;
    for peer in &peers {
        if peer.index < scenario.senders {
            let share = &prefixes[peer.index * scenario.prefixes_per_sender..]
                [..scenario.prefixes_per_sender];
            let announce = announcements(peer, share)?;
            announce_octets += announce.len() as u64;
            streams.push((Arc::new(announce), Arc::new(withdrawals(share)?)));
        } else {
            streams.push((Arc::new(Vec::new()), Arc::new(Vec::new())));
        }
    }
    let index = Arc::new(PrefixIndex::new(&prefixes, scenario.prefixes_per_sender));
    drop(prefixes);
    let encode_seconds = encode_started.elapsed().as_secs_f64();

    let connect_started = Instant::now();
    let deadline = connect_started + Duration::from_secs(spec.establish_timeout_secs);
    let mut handshakes = JoinSet::new();
    for peer in peers.iter().copied() {
        let spec = spec.clone();
        handshakes.spawn(async move { (peer, establish(&spec, &peer, deadline).await) });
    }
    let (events, mut event_receiver) = mpsc::unbounded_channel();
    let mut sessions = Vec::with_capacity(peers.len());
    while let Some(joined) = handshakes.join_next().await {
        let (peer, established) = joined?;
        let (stream, leftover, hold_time) =
            established.with_context(|| format!("{} did not reach Established", peer.name()))?;
        let (read, write) = stream.into_split();
        let holdings = Arc::new(Mutex::new(Holdings::new(
            Arc::clone(&index),
            peer.index,
            scenario.senders,
        )));
        let (writer, writer_commands) = mpsc::channel(4);
        let (announce, withdraw) = streams[peer.index].clone();
        tasks.spawn(write_loop(
            write,
            writer_commands,
            (announce, withdraw),
            hold_time,
            events.clone(),
            peer.index,
        ));
        tasks.spawn(read_loop(
            read,
            leftover,
            Arc::clone(&holdings),
            events.clone(),
            peer.index,
        ));
        sessions.push(Session {
            peer,
            holdings,
            writer,
        });
    }
    sessions.sort_by_key(|session| session.peer.index);
    report(
        output,
        &Report::Established {
            encode_seconds,
            connect_seconds: connect_started.elapsed().as_secs_f64(),
            announce_octets,
        },
    )
    .await?;

    let phase_timeout = Duration::from_secs(spec.phase_timeout_secs);
    let mut announced = false;
    loop {
        match next_command(commands).await {
            Command::Announce => {
                let outcome = phase(
                    &sessions,
                    WriterCommand::Announce,
                    scenario.senders,
                    &mut event_receiver,
                    phase_timeout,
                )
                .await?;
                announced = true;
                let report_line = announce_report(outcome, &sessions, senders);
                report(output, &report_line).await?;
            }
            Command::Reload { min_ipv4_length } if announced => {
                let outcome = reload(
                    &sessions,
                    min_ipv4_length,
                    output,
                    &mut event_receiver,
                    phase_timeout,
                )
                .await?;
                let finished_unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |elapsed| elapsed.as_secs_f64());
                report(
                    output,
                    &Report::Reloaded {
                        outcome,
                        finished_unix,
                    },
                )
                .await?;
            }
            Command::Reload { .. } => bail!("reload before announce"),
            Command::Withdraw if announced => {
                let outcome = phase(
                    &sessions,
                    WriterCommand::Withdraw,
                    scenario.senders,
                    &mut event_receiver,
                    phase_timeout,
                )
                .await?;
                report(output, &Report::Withdrawn { outcome }).await?;
            }
            Command::Withdraw => bail!("withdraw before announce"),
            Command::Close => {
                for session in &sessions {
                    let _ = session.writer.send(WriterCommand::Cease).await;
                }
                return Ok(());
            }
        }
    }
}

/// The end-of-announce report: totals over all receivers and, if the phase finished, the
/// sample route check of every receiver.
fn announce_report(outcome: PhaseOutcome, sessions: &[Session], senders: &[Peer]) -> Report {
    let finished = matches!(outcome, PhaseOutcome::Finished { .. });
    let (mut samples_checked, mut reflected, mut unknown, mut updates_received) = (0, 0, 0, 0);
    let mut sample_error = None;
    for session in sessions {
        let holdings = lock(&session.holdings);
        reflected += holdings.reflected;
        unknown += holdings.unknown;
        updates_received += holdings.updates;
        if finished && sample_error.is_none() {
            match holdings.check_samples(senders) {
                Ok(checked) => samples_checked += checked as u64,
                Err(error) => sample_error = Some(format!("at {}: {error}", session.peer.name())),
            }
        }
    }
    Report::Announced {
        outcome,
        samples_checked,
        sample_error,
        reflected,
        unknown,
        updates_received,
    }
}

/// Starts a phase on every sender and waits until every receiver with something to hold has
/// reported the phase's target, the phase times out, or a session goes down.
async fn phase(
    sessions: &[Session],
    command: WriterCommand,
    senders: usize,
    events: &mut mpsc::UnboundedReceiver<SessionEvent>,
    timeout: Duration,
) -> anyhow::Result<PhaseOutcome> {
    let mut waiting: Vec<bool> = sessions
        .iter()
        .map(|session| lock(&session.holdings).expected > 0)
        .collect();
    let mut remaining = waiting.iter().filter(|waiting| **waiting).count();
    let mut sent = vec![false; senders];
    let mut sent_seconds = None;
    let started = Instant::now();
    let deadline = started + timeout;
    for session in sessions {
        if session.peer.index < senders {
            session
                .writer
                .send(command)
                .await
                .map_err(|_| anyhow!("writer of {} ended", session.peer.name()))?;
        }
    }
    while remaining > 0 {
        let event = match timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => bail!("all sessions ended"),
            Err(_) => {
                let target: u64 = match command {
                    WriterCommand::Announce => sessions
                        .iter()
                        .map(|session| lock(&session.holdings).expected as u64)
                        .sum(),
                    WriterCommand::Withdraw | WriterCommand::Cease => 0,
                };
                let held = sessions
                    .iter()
                    .map(|session| lock(&session.holdings).held as u64)
                    .sum();
                return Ok(PhaseOutcome::TimedOut {
                    seconds: timeout.as_secs_f64(),
                    sent_seconds,
                    held,
                    target,
                });
            }
        };
        let reached = match (event, command) {
            (SessionEvent::Full(peer), WriterCommand::Announce)
            | (SessionEvent::Empty(peer), WriterCommand::Withdraw) => peer,
            (SessionEvent::Sent { peer, phase }, command) if phase == command => {
                if let Some(slot) = sent.get_mut(peer)
                    && !std::mem::replace(slot, true)
                    && sent.iter().all(|sent| *sent)
                {
                    sent_seconds = Some(started.elapsed().as_secs_f64());
                }
                continue;
            }
            (SessionEvent::Down { peer, reason }, _) => {
                bail!(
                    "session of {} went down: {reason}",
                    Peer::numbered(peer).name()
                )
            }
            _ => continue,
        };
        if let Some(slot) = waiting.get_mut(reached)
            && std::mem::take(slot)
        {
            remaining -= 1;
        }
    }
    Ok(PhaseOutcome::Finished {
        seconds: started.elapsed().as_secs_f64(),
        sent_seconds,
    })
}

/// The reload phase: arms every receiver with the number of prefixes it holds once the route
/// server refuses IPv4 prefixes shorter than `min_length`, reports [`Report::Armed`] and waits
/// until every receiver holds exactly that many.
async fn reload(
    sessions: &[Session],
    min_length: u8,
    output: &mut (impl AsyncWrite + Unpin),
    events: &mut mpsc::UnboundedReceiver<SessionEvent>,
    timeout: Duration,
) -> anyhow::Result<PhaseOutcome> {
    let mut waiting = vec![false; sessions.len()];
    let (mut to_withdraw, mut target_total) = (0u64, 0u64);
    for (position, session) in sessions.iter().enumerate() {
        let mut holdings = lock(&session.holdings);
        let target = holdings.expected_with_min_length(min_length);
        to_withdraw += holdings.held.saturating_sub(target) as u64;
        target_total += target as u64;
        if holdings.held != target {
            holdings.target = Some(target);
            waiting[position] = true;
        }
    }
    let mut remaining = waiting.iter().filter(|waiting| **waiting).count();
    report(output, &Report::Armed { to_withdraw }).await?;
    let started = Instant::now();
    let deadline = started + timeout;
    while remaining > 0 {
        let event = match timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => bail!("all sessions ended"),
            Err(_) => {
                let held = sessions
                    .iter()
                    .map(|session| lock(&session.holdings).held as u64)
                    .sum();
                return Ok(PhaseOutcome::TimedOut {
                    seconds: timeout.as_secs_f64(),
                    sent_seconds: None,
                    held,
                    target: target_total,
                });
            }
        };
        let reached = match event {
            SessionEvent::Target(peer) => peer,
            SessionEvent::Down { peer, reason } => {
                bail!(
                    "session of {} went down: {reason}",
                    Peer::numbered(peer).name()
                )
            }
            _ => continue,
        };
        if let Some(position) = sessions
            .iter()
            .position(|session| session.peer.index == reached)
            && std::mem::take(&mut waiting[position])
        {
            remaining -= 1;
        }
    }
    Ok(PhaseOutcome::Finished {
        seconds: started.elapsed().as_secs_f64(),
        sent_seconds: None,
    })
}

/// Locks a session's holdings; a reader task that panicked leaves them readable.
fn lock(holdings: &Mutex<Holdings>) -> MutexGuard<'_, Holdings> {
    holdings.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connects from the peer's own LAN address and runs the OPEN exchange until Established
/// (RFC 4271 section 8.2.2: OpenSent, OpenConfirm, Established). Returns the stream, any bytes
/// already read past the KEEPALIVE, and the negotiated hold time.
async fn establish(
    spec: &LoadSpec,
    peer: &Peer,
    deadline: Instant,
) -> anyhow::Result<(TcpStream, BytesMut, u16)> {
    let target = SocketAddr::from((spec.route_server, spec.port));
    let mut stream = loop {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((peer.address, 0)))?;
        match timeout_at(deadline, socket.connect(target)).await {
            Ok(Ok(stream)) => break stream,
            // Refused while the daemon is still starting: try again.
            Ok(Err(_)) if Instant::now() + CONNECT_RETRY < deadline => sleep(CONNECT_RETRY).await,
            Ok(Err(error)) => return Err(error).context("connecting to the route server"),
            Err(_) => bail!("timed out connecting to the route server"),
        }
    };
    stream.set_nodelay(true)?;
    stream
        .write_all(&open_message(peer, spec.hold_time)?)
        .await?;
    let mut buffer = BytesMut::with_capacity(READ_BUFFER);
    let open = match timeout_at(deadline, next_whole(&mut stream, &mut buffer)).await?? {
        Message::Open(open) => open,
        Message::Notification(notification) => {
            bail!(
                "NOTIFICATION {}/{} instead of OPEN",
                notification.code,
                notification.subcode
            )
        }
        other => bail!("{other} instead of OPEN"),
    };
    if !open
        .capabilities
        .iter()
        .any(|capability| matches!(capability, Capability::FourOctetAs { .. }))
    {
        bail!("the route server does not offer 4-octet ASNs (RFC 6793)");
    }
    if open.four_byte_as() != spec.route_server_asn {
        bail!(
            "the route server is AS{}, expected AS{}",
            open.four_byte_as(),
            spec.route_server_asn
        );
    }
    stream.write_all(&keepalive_message()).await?;
    match timeout_at(deadline, next_whole(&mut stream, &mut buffer)).await?? {
        Message::Keepalive => {}
        Message::Notification(notification) => {
            bail!(
                "NOTIFICATION {}/{} instead of KEEPALIVE",
                notification.code,
                notification.subcode
            )
        }
        other => bail!("{other} instead of KEEPALIVE"),
    }
    // RFC 4271 section 4.2: the hold time is the smaller of the two proposals.
    Ok((stream, buffer, spec.hold_time.min(open.hold_time)))
}

/// Reads until one whole message is buffered and decodes it with the codec.
async fn next_whole(stream: &mut TcpStream, buffer: &mut BytesMut) -> anyhow::Result<Message> {
    loop {
        if let Some((_, length)) = next_message(buffer)? {
            let mut message = Bytes::copy_from_slice(&buffer[..length]);
            buffer.advance(length);
            return decode_message(&mut message, MAX_MESSAGE_LEN)
                .map_err(|error| anyhow!("undecodable message during OPEN exchange: {error}"));
        }
        if stream.read_buf(buffer).await? == 0 {
            bail!("connection closed during OPEN exchange");
        }
    }
}

/// Sends the pre-encoded streams on command and a KEEPALIVE every third of the hold time
/// (RFC 4271 section 10).
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut commands: mpsc::Receiver<WriterCommand>,
    (announce, withdraw): (Arc<Vec<u8>>, Arc<Vec<u8>>),
    hold_time: u16,
    events: mpsc::UnboundedSender<SessionEvent>,
    peer: usize,
) {
    let interval = if hold_time == 0 {
        Duration::from_secs(3600)
    } else {
        Duration::from_secs(u64::from(hold_time / 3).max(1))
    };
    let mut keepalives = tokio::time::interval_at(Instant::now() + interval, interval);
    keepalives.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let keepalive = keepalive_message();
    loop {
        let result = tokio::select! {
            command = commands.recv() => {
                let Some(phase) = command else { return };
                let stream = match phase {
                    WriterCommand::Announce => &announce,
                    WriterCommand::Withdraw => &withdraw,
                    WriterCommand::Cease => {
                        let _ = write.write_all(&cease_message()).await;
                        let _ = write.shutdown().await;
                        return;
                    }
                };
                let result = write.write_all(stream).await;
                if result.is_ok() {
                    let _ = events.send(SessionEvent::Sent { peer, phase });
                }
                result
            }
            _ = keepalives.tick() => write.write_all(&keepalive).await,
        };
        if result.is_err() {
            return;
        }
    }
}

/// Frames and applies everything the route server sends, and reports when the receiver
/// becomes full or, after that, empty.
async fn read_loop(
    mut read: OwnedReadHalf,
    mut buffer: BytesMut,
    holdings: Arc<Mutex<Holdings>>,
    events: mpsc::UnboundedSender<SessionEvent>,
    peer: usize,
) {
    let mut full = false;
    let mut empty = false;
    let reason = loop {
        let outcome = {
            let mut holdings = lock(&holdings);
            let outcome = drain(&mut buffer, &mut holdings);
            if !full && holdings.expected > 0 && holdings.held == holdings.expected {
                full = true;
                let _ = events.send(SessionEvent::Full(peer));
            }
            if full && !empty && holdings.held == 0 {
                empty = true;
                let _ = events.send(SessionEvent::Empty(peer));
            }
            if holdings.target == Some(holdings.held) {
                holdings.target = None;
                let _ = events.send(SessionEvent::Target(peer));
            }
            outcome
        };
        if let Err(reason) = outcome {
            break reason;
        }
        if buffer.capacity() - buffer.len() < usize::from(MAX_MESSAGE_LEN) {
            buffer.reserve(READ_BUFFER);
        }
        match read.read_buf(&mut buffer).await {
            Ok(0) => break "the route server closed the connection".to_owned(),
            Ok(_) => {}
            Err(error) => break format!("read error: {error}"),
        }
    };
    let _ = events.send(SessionEvent::Down { peer, reason });
}

/// Applies every whole message in `buffer`; an error ends the session.
fn drain(buffer: &mut BytesMut, holdings: &mut Holdings) -> Result<(), String> {
    loop {
        match next_message(buffer) {
            Ok(Some((kind, length))) => {
                let body = &buffer[HEADER_LENGTH..length];
                match kind {
                    UPDATE => holdings
                        .apply_update(body)
                        .map_err(|error| error.to_string())?,
                    KEEPALIVE => {}
                    NOTIFICATION => {
                        let code = body.first().copied().unwrap_or(0);
                        let subcode = body.get(1).copied().unwrap_or(0);
                        return Err(format!("NOTIFICATION {code}/{subcode} received"));
                    }
                    other => return Err(format!("unexpected message type {other}")),
                }
                buffer.advance(length);
            }
            Ok(None) => return Ok(()),
            Err(error) => return Err(error.to_string()),
        }
    }
}
