//! The forwarding workers of `vixp up`: each worker is one blocking thread per direction
//! between its own queue of the (multi-queue) TAP device and its own UDP socket of the
//! listening port (`SO_REUSEPORT`), each thread with its own buffers. The kernel keeps a flow on
//! one TAP queue and a peer's datagrams on one socket, so no flow is reordered across workers.
//! The sans-IO [`Core`] is shared: read-locked once per batch (written only by a fabric
//! reload); per packet, only the lock of the member concerned is taken. Owns the batching: large TCP/UDP segments from the TAP (virtio-net header, TSO)
//! are split before encryption, datagrams to one member leave in one UDP GSO send, datagrams
//! arrive by `recvmmsg` with UDP GRO (both through `quinn-udp`, which falls back to one
//! datagram per call when the kernel refuses GSO), and consecutive TCP segments (and, with USO,
//! UDP datagrams) of a flow reach the kernel as one large frame. Decides nothing about packets: every frame
//! and datagram goes through the core.
//!
//! ```text
//!   worker i, outbound: TAP queue i read (vnet header, up to 64 KiB) -> split -> per frame:
//!                       handle_frame (locks that member only) -> datagram train -> UDP GSO
//!                       sendmsg on socket i
//!   worker i, inbound:  recvmmsg on socket i (GRO) -> per datagram: handle_datagram,
//!                       poll_transmit -> coalesce TCP runs -> TAP queue i write (vnet header)
//!   each batch runs under a read lock of the core; all poll their descriptor with a short
//!   timeout and stop when `stop` is set
//! ```

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::poll::{PollFd, PollFlags, poll, ppoll};
use nix::sys::time::TimeSpec;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tun_rs::SyncDevice;

use crate::core::aqm::Codel;
use crate::core::coalesce::Coalescer;
use crate::core::fair::{FairQueues, flow_hash};
use crate::core::offload::{VIRTIO_NET_HEADER, VirtioHeader, split};
use crate::core::{Action, BUFFER_SIZE, Core, DropReason};

/// Most frames read from the TAP device per round.
pub const TAP_BATCH: usize = 64;
/// Buffers of frames read from the TAP device and not yet encrypted, per worker (up to 64 KiB
/// each): room for the standing queue of a bulk TCP flow, which then waits here, in fair
/// order with other flows, instead of in the TAP device's ring.
pub const TAP_BUFFERS: usize = 48;
/// Bytes of frames encrypted per round before the TAP device is read again: a ping that
/// arrives meanwhile waits at most this long (about 200 us at 10 Gbit/s of crypto).
pub const SERVE_BYTES: usize = 256 * 1024;
/// Smallest decrypted packet CoDel may drop: bulk data, not ACKs or pings.
pub const AQM_DROPPABLE: usize = 576;
/// Receive buffers handed to one `recvmmsg`.
pub const RECEIVE_BATCH: usize = 16;
/// Size of one receive buffer: room for a full UDP GRO burst (64 datagrams of an Ethernet-MTU
/// underlay, as quinn-udp asks).
pub const RECEIVE_BUFFER: usize = 64 * 1500;
/// Most bytes in one UDP GSO send (the kernel refuses more than an IP packet can carry).
pub const MAX_TRAIN_BYTES: usize = 65_000;
/// How long a run of two or more segments that may still grow waits for the rest when the
/// socket is empty, before it is written as it is (what the kernel's `gro_flush_timeout` does
/// for a NIC): about what a sender takes to encrypt its next train of 44 datagrams, small
/// against any round trip. A run ended by a push, and a lone packet, never wait; a packet of
/// another flow that cannot be coalesced (a ping) does not wait behind it.
pub const RUN_WAIT: Duration = Duration::from_micros(50);
/// How long a thread waits for its descriptor before checking whether to stop (ms).
pub const WAKE_MILLISECONDS: u16 = 100;
/// Pause after a read error that is not about one packet (a device gone, a socket error).
pub const ERROR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);

/// The core as the workers and the control loop share it: read-locked for packets and timers,
/// write-locked only to apply a new fabric.
pub type SharedCore = Arc<RwLock<Core>>;

/// Read-locks the core (shared with every other worker); a thread that panicked while holding
/// it left counters at worst half updated, so the lock is taken anyway.
pub fn read(core: &RwLock<Core>) -> RwLockReadGuard<'_, Core> {
    core.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write-locks the core: the workers wait until the guard is dropped.
pub fn write(core: &RwLock<Core>) -> RwLockWriteGuard<'_, Core> {
    core.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The UDP socket of the tunnels with its offload state.
pub struct Underlay {
    socket: UdpSocket,
    state: UdpSocketState,
    is_ipv6: bool,
}

impl Underlay {
    /// Takes over `socket` (made non-blocking; GRO enabled where the kernel has it).
    pub fn new(socket: UdpSocket) -> io::Result<Underlay> {
        let state = UdpSocketState::new((&socket).into())?;
        let is_ipv6 = socket.local_addr()?.is_ipv6();
        Ok(Underlay {
            socket,
            state,
            is_ipv6,
        })
    }

    /// How many datagrams one send may carry (1 when the kernel refused GSO).
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Datagrams the kernel may coalesce into one receive (1 without GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Sends one datagram.
    pub fn send(&self, to: SocketAddr, datagram: &[u8]) {
        self.send_train(to, datagram, datagram.len());
    }

    /// Sends `contents`, datagrams of `segment` bytes each (the last may be shorter), to `to`:
    /// one GSO send when the socket allows it, else one send per datagram.
    pub fn send_train(&self, to: SocketAddr, contents: &[u8], segment: usize) {
        if contents.is_empty() || segment == 0 {
            return;
        }
        let destination = match (self.is_ipv6, to.ip()) {
            (true, IpAddr::V4(ip)) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), to.port()),
            _ => to,
        };
        if contents.len() > segment && self.max_segments() > 1 {
            let transmit = Transmit {
                destination,
                ecn: None,
                contents,
                segment_size: Some(segment),
                src_ip: None,
            };
            match self.try_send(&transmit) {
                Ok(()) => return,
                // GSO refused: quinn-udp has switched it off; send one by one below.
                Err(_) if self.max_segments() == 1 => {}
                Err(error) => {
                    tracing::debug!(%to, %error, "UDP send failed");
                    return;
                }
            }
        }
        for datagram in contents.chunks(segment) {
            let transmit = Transmit {
                destination,
                ecn: None,
                contents: datagram,
                segment_size: None,
                src_ip: None,
            };
            if let Err(error) = self.try_send(&transmit) {
                tracing::debug!(%to, %error, "UDP send failed");
            }
        }
    }

    /// One send; when the socket buffer is full, waits for room once (bounded) and retries.
    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        match self.state.try_send((&self.socket).into(), transmit) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_for(self.socket.as_fd(), PollFlags::POLLOUT);
                self.state.try_send((&self.socket).into(), transmit)
            }
            other => other,
        }
    }
}

/// The forwarding workers; [`DataPath::stop`] ends them.
pub struct DataPath {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DataPath {
    /// Starts one worker (an outbound and an inbound thread) per pair of TAP queue and UDP
    /// socket: `taps[i]` (opened with a virtio-net header when `offload`) with `underlays[i]`;
    /// with `codel`, each inbound thread runs CoDel on its socket's queue. Each inbound thread
    /// asks for the nice value `receive_nice` first ([`set_thread_nice`]).
    pub fn start(
        core: SharedCore,
        taps: &[Arc<SyncDevice>],
        offload: bool,
        codel: bool,
        underlays: &[Arc<Underlay>],
        receive_nice: i8,
    ) -> io::Result<DataPath> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut data_path = DataPath {
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for (worker, (tap, underlay)) in taps.iter().zip(underlays).enumerate() {
            tap.set_nonblocking(true)?;
            let outbound = {
                let (core, tap, underlay, stop) = (
                    Arc::clone(&core),
                    Arc::clone(tap),
                    Arc::clone(underlay),
                    Arc::clone(&stop),
                );
                std::thread::Builder::new()
                    .name(format!("vixp-out-{worker}"))
                    .spawn(move || outbound(&core, &tap, offload, &underlay, &stop))
            };
            let inbound = {
                let (core, tap, underlay, stop) = (
                    Arc::clone(&core),
                    Arc::clone(tap),
                    Arc::clone(underlay),
                    Arc::clone(&stop),
                );
                std::thread::Builder::new()
                    .name(format!("vixp-in-{worker}"))
                    .spawn(move || {
                        set_thread_nice(receive_nice);
                        inbound(&core, &tap, offload, codel, &underlay, &stop);
                    })
            };
            for thread in [outbound, inbound] {
                match thread {
                    Ok(thread) => data_path.threads.push(thread),
                    Err(error) => {
                        data_path.stop();
                        return Err(error);
                    }
                }
            }
        }
        let first = underlays.first();
        tracing::info!(
            workers = data_path.threads.len() / 2,
            offload,
            codel,
            receive_nice,
            udp_coalescing = offload && taps.first().is_some_and(|tap| tap.udp_gso()),
            gso_segments = first.map(|underlay| underlay.max_segments()),
            gro_segments = first.map(|underlay| underlay.gro_segments()),
            "data path started"
        );
        Ok(data_path)
    }

    /// Stops every worker and waits for them (each notices within [`WAKE_MILLISECONDS`]).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Set when a worker could not take its nice value, so that the warning comes once.
static NICE_REFUSED: AtomicBool = AtomicBool::new(false);

/// Gives the calling thread the nice value `nice` (a worker's receiving thread is scheduled
/// ahead of the programs around it, docs/datapath.md); 0 leaves it as the process. Lowering it
/// needs CAP_SYS_NICE or an RLIMIT_NICE that allows it (the systemd unit's `LimitNICE=`);
/// without either, the thread keeps the process's value, and the node says so once unless that
/// value already is `nice` or better.
fn set_thread_nice(nice: i8) {
    if nice == 0 {
        return;
    }
    match setpriority_thread(i32::from(nice)) {
        Ok(()) => {}
        Err(error) => {
            let current = thread_nice();
            if current.is_some_and(|current| current <= i32::from(nice))
                || NICE_REFUSED.swap(true, Ordering::Relaxed)
            {
                return;
            }
            tracing::warn!(
                %error,
                wanted = nice,
                current,
                "receiving threads keep their priority: allow it with LimitNICE= in the node's \
                 systemd unit (or CAP_SYS_NICE), or set receive_nice: 0"
            );
        }
    }
}

/// setpriority(2) on the calling thread: with `PRIO_PROCESS`, Linux takes a thread ID and
/// changes that thread alone.
#[allow(unsafe_code)]
fn setpriority_thread(nice: i32) -> io::Result<()> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let thread = unsafe { libc::gettid() };
    let id = libc::id_t::try_from(thread).map_err(|_| io::Error::other("negative thread ID"))?;
    // SAFETY: setpriority reads its three integers and touches no memory of this process.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, id, nice) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's nice value (field 19 of `/proc/thread-self/stat`).
fn thread_nice() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(16)?.parse().ok()
}

/// Waits until `fd` is ready for `events` or [`WAKE_MILLISECONDS`] pass.
fn wait_for(fd: BorrowedFd<'_>, events: PollFlags) {
    let mut fds = [PollFd::new(fd, events)];
    let _ = poll(&mut fds, WAKE_MILLISECONDS);
}

/// Waits until `fd` is readable or `timeout` (under a second) passes; whether it is readable.
fn readable_within(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let timeout = TimeSpec::new(0, i64::from(timeout.subsec_nanos()));
    matches!(ppoll(&mut fds, Some(timeout), None), Ok(ready) if ready > 0)
}

/// Encrypted datagrams to one destination, back to back, waiting to leave in one GSO send.
struct Train {
    buffer: Vec<u8>,
    length: usize,
    to: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// A datagram shorter than `segment` ended the train.
    closed: bool,
}

impl Train {
    fn new() -> Train {
        Train {
            buffer: vec![0u8; MAX_TRAIN_BYTES + BUFFER_SIZE],
            length: 0,
            to: None,
            segment: 0,
            count: 0,
            closed: false,
        }
    }

    /// Where the core writes the next datagram.
    fn tail(&mut self) -> &mut [u8] {
        &mut self.buffer[self.length..]
    }

    /// Adds the `length`-byte datagram the core wrote at the tail; sends what came before when
    /// it does not fit the train.
    fn commit(&mut self, to: SocketAddr, length: usize, underlay: &Underlay) {
        let fits = self.count > 0
            && self.to == Some(to)
            && !self.closed
            && length <= self.segment
            && self.count < underlay.max_segments()
            && self.length + length <= MAX_TRAIN_BYTES;
        if !fits && self.count > 0 {
            self.flush(underlay);
            // The new datagram moves to the front.
            self.buffer
                .copy_within(self.length..self.length + length, 0);
            self.length = 0;
        }
        if self.count == 0 {
            self.to = Some(to);
            self.segment = length;
            self.closed = false;
        } else if length < self.segment {
            self.closed = true;
        }
        self.length += length;
        self.count += 1;
    }

    /// Sends the train. The length stays so that `commit` can find a datagram at the tail.
    fn flush(&mut self, underlay: &Underlay) {
        if let Some(to) = self.to.take() {
            underlay.send_train(to, &self.buffer[..self.length], self.segment);
        }
        self.count = 0;
        self.closed = false;
    }

    /// Sends the train and empties it.
    fn finish(&mut self, underlay: &Underlay) {
        self.flush(underlay);
        self.length = 0;
    }
}

/// What one outbound worker keeps between frames.
struct Outbound<'a> {
    core: &'a Core,
    tap: &'a SyncDevice,
    offload: bool,
    underlay: &'a Underlay,
    segment: &'a mut [u8],
    reply: &'a mut [u8],
    train: &'a mut Train,
}

impl Outbound<'_> {
    /// Splits the frame read from the TAP device (`bytes`, after its virtio-net header with
    /// `offload`), lets the core encrypt each piece and adds the datagrams to the train.
    fn forward(&mut self, bytes: &mut [u8]) {
        let (header, frame) = if self.offload {
            match VirtioHeader::parse(bytes) {
                Ok(header) => (header, &mut bytes[VIRTIO_NET_HEADER..]),
                Err(error) => {
                    tracing::debug!(%error, "frame from the TAP device dropped");
                    self.core.count_drop(DropReason::Malformed);
                    return;
                }
            }
        } else {
            // No header: a plain frame, which `split` passes on as it is.
            (VirtioHeader::default(), bytes)
        };
        let mut answer = None;
        let (core, train, underlay, reply) =
            (self.core, &mut *self.train, self.underlay, &mut *self.reply);
        // The member is locked per MTU-sized frame, not per large segment, so that an
        // inbound thread (ACKs) never waits for a whole 64 KiB to be encrypted.
        let split = split(&header, frame, self.segment, |frame| {
            let sent = match core.handle_frame(frame, train.tail()) {
                Action::Transmit { to, datagram } => Some((to, datagram.len())),
                Action::Deliver(local) => {
                    // An ARP, neighbour or ICMP answer for the kernel (one per frame at most).
                    let length = local.len();
                    if let Some(room) = reply.get_mut(VIRTIO_NET_HEADER..)
                        && let Some(target) = room.get_mut(..length)
                    {
                        target.copy_from_slice(local);
                        answer = Some(length);
                    }
                    None
                }
                Action::Queued | Action::Done | Action::Dropped(_) => None,
            };
            if let Some((to, length)) = sent {
                train.commit(to, length, underlay);
            }
        });
        if let Err(error) = split {
            tracing::debug!(%error, "large segment from the TAP device dropped");
            self.core.count_drop(DropReason::Malformed);
        }
        if let Some(length) = answer {
            write_frame(self.tap, self.offload, self.reply, length);
        }
    }
}

/// TAP to UDP: drains the TAP device's ring into the worker's buffers (so that the standing
/// queue of a bulk flow is here, not in the kernel), and sends in fair order
/// ([`FairQueues`]): each round reads what waits, then encrypts up to [`SERVE_BYTES`] of frames
/// (with `offload`, large segments split first) and sends the datagrams in trains. When every
/// buffer is taken, the oldest frame of the fattest flow is dropped (`queue_full`).
fn outbound(
    core: &RwLock<Core>,
    tap: &SyncDevice,
    offload: bool,
    underlay: &Underlay,
    stop: &AtomicBool,
) {
    let mut pool: Vec<Vec<u8>> = (0..=TAP_BUFFERS)
        .map(|_| vec![0u8; VIRTIO_NET_HEADER + 65_536 + 64])
        .collect();
    // One buffer is always free to read into; the others hold queued frames or are free.
    let mut spare = TAP_BUFFERS;
    let mut free: Vec<usize> = (0..TAP_BUFFERS).rev().collect();
    let mut queues = FairQueues::new(TAP_BUFFERS);
    let mut segment = vec![0u8; BUFFER_SIZE];
    let mut reply = vec![0u8; VIRTIO_NET_HEADER + BUFFER_SIZE];
    let mut train = Train::new();
    while !stop.load(Ordering::Relaxed) {
        let guard = read(core);
        let mut frames = 0;
        while frames < TAP_BATCH {
            let Some(buffer) = pool.get_mut(spare) else {
                break;
            };
            let length = match tap.recv(buffer) {
                Ok(length) => length,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // Not a packet problem: back off, so a broken device is not a busy loop.
                    tracing::warn!(%error, "cannot read from the TAP device");
                    std::thread::sleep(ERROR_BACKOFF);
                    break;
                }
            };
            frames += 1;
            let start = if offload { VIRTIO_NET_HEADER } else { 0 };
            let hash = flow_hash(buffer.get(start..length).unwrap_or(&[]));
            queues.push(hash, spare, length);
            spare = match free.pop() {
                Some(next) => next,
                None => match queues.drop_from_fattest() {
                    Some(dropped) => {
                        guard.count_drop(DropReason::QueueFull);
                        dropped
                    }
                    // Unreachable: a frame was just queued.
                    None => break,
                },
            };
        }
        let mut served = 0;
        let mut forward = Outbound {
            core: &guard,
            tap,
            offload,
            underlay,
            segment: &mut segment,
            reply: &mut reply,
            train: &mut train,
        };
        while served < SERVE_BYTES {
            let Some((buffer, length)) = queues.pop() else {
                break;
            };
            if let Some(bytes) = pool
                .get_mut(buffer)
                .and_then(|bytes| bytes.get_mut(..length))
            {
                forward.forward(bytes);
            }
            free.push(buffer);
            served += length.max(1);
        }
        drop(guard);
        train.finish(underlay);
        if frames == 0 && queues.is_empty() {
            wait_for(tap.as_fd(), PollFlags::POLLIN);
        }
    }
}

/// UDP to TAP: receives datagrams in batches, lets the core decrypt each and writes the frames
/// to the TAP device (with `offload`, runs of a TCP flow coalesced); handshake answers and
/// packets held during a handshake go out at once.
fn inbound(
    core: &RwLock<Core>,
    tap: &SyncDevice,
    offload: bool,
    codel_on: bool,
    underlay: &Underlay,
    stop: &AtomicBool,
) {
    let mut buffers: Vec<Vec<u8>> = (0..RECEIVE_BATCH)
        .map(|_| vec![0u8; RECEIVE_BUFFER])
        .collect();
    let mut slices: Vec<IoSliceMut<'_>> = buffers
        .iter_mut()
        .map(|buffer| IoSliceMut::new(buffer))
        .collect();
    let mut metas = [RecvMeta::default(); RECEIVE_BATCH];
    let mut frame = vec![0u8; VIRTIO_NET_HEADER + BUFFER_SIZE];
    let mut send = vec![0u8; BUFFER_SIZE];
    let mut coalescer = Coalescer::new();
    // UDP runs too when the kernel took UDP segmentation offload on the TAP (Linux 6.2).
    coalescer.set_udp(offload && tap.udp_gso());
    let mut codel = Codel::default();
    // Whether the waiting run has already waited for the socket since datagrams last came (a
    // socket readable for a datagram the kernel then discards must not hold it again).
    let mut waited = false;
    while !stop.load(Ordering::Relaxed) {
        let received = match underlay
            .state
            .recv((&underlay.socket).into(), &mut slices, &mut metas)
        {
            Ok(received) => {
                waited = false;
                received
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // The rest of a burst is usually on its way (a sender's train seldom ends where
                // its TCP segment does): a short wait for it saves the receiver's kernel a
                // frame and its TCP an acknowledgment. A lone packet does not wait.
                if coalescer.is_open()
                    && coalescer.segments() > 1
                    && !waited
                    && readable_within(underlay.socket.as_fd(), RUN_WAIT)
                {
                    waited = true;
                    continue;
                }
                // Nothing more to add to a run: it goes before the thread sleeps.
                write_run(tap, &mut coalescer);
                wait_for(underlay.socket.as_fd(), PollFlags::POLLIN);
                continue;
            }
            Err(error) => {
                tracing::debug!(%error, "UDP receive failed");
                write_run(tap, &mut coalescer);
                std::thread::sleep(ERROR_BACKOFF);
                continue;
            }
        };
        let core = read(core);
        let mut extended = false;
        for (meta, slice) in metas.iter().zip(slices.iter()).take(received) {
            let from = super::canonical(meta.addr);
            // The kernel's arrival stamp (SO_TIMESTAMPNS, which quinn-udp turns on) is wall
            // clock time; a datagram without one counts as not having waited. Read only for
            // CoDel.
            let (now, sojourn) = if codel_on {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let sojourn = meta
                    .timestamp
                    .map_or(Duration::ZERO, |arrived| now.saturating_sub(arrived));
                (now, sojourn)
            } else {
                (Duration::ZERO, Duration::ZERO)
            };
            let Some(bytes) = slice.get(..meta.len) else {
                continue;
            };
            let stride = if meta.stride == 0 {
                meta.len
            } else {
                meta.stride
            };
            for datagram in bytes.chunks(stride.max(1)) {
                let deliver =
                    match core.handle_datagram(from, datagram, &mut frame[VIRTIO_NET_HEADER..]) {
                        Action::Deliver(decrypted) => Some(decrypted.len()),
                        Action::Transmit { to, datagram } => {
                            underlay.send(to, datagram);
                            None
                        }
                        Action::Queued | Action::Done | Action::Dropped(_) => None,
                    };
                while let Some((to, datagram)) = core.poll_transmit(&mut send) {
                    underlay.send(to, datagram);
                }
                let Some(length) = deliver else { continue };
                let Some(decrypted) = frame.get(VIRTIO_NET_HEADER..VIRTIO_NET_HEADER + length)
                else {
                    continue;
                };
                if codel_on && codel.should_drop(now, sojourn, length >= AQM_DROPPABLE) {
                    core.count_drop(DropReason::AqmDrop);
                    continue;
                }
                if !offload {
                    write_frame(tap, offload, &mut frame, length);
                    continue;
                }
                if coalescer.push(decrypted) {
                    extended = true;
                    continue;
                }
                // With no run waiting, a frame the coalescer refused starts none: as it is. A
                // packet that starts no run (a ping, an acknowledgment) of another flow goes
                // ahead of the run, which may still grow.
                if coalescer.is_empty()
                    || (!coalescer.may_be_of_run(decrypted) && !coalescer.coalescable(decrypted))
                {
                    write_frame(tap, offload, &mut frame, length);
                    continue;
                }
                // Not the next segment of the run: the run goes first, in order.
                write_run(tap, &mut coalescer);
                if coalescer.push(decrypted) {
                    extended = true;
                } else {
                    write_frame(tap, offload, &mut frame, length);
                }
            }
        }
        // A run that may go on waits for the next receive, which comes at once while datagrams
        // are queued (a train of the sender seldom ends where its TCP segment does); one that
        // cannot grow, or did not in this batch, is written now.
        if !coalescer.is_open() || !extended {
            write_run(tap, &mut coalescer);
        }
    }
    // Stopping: a run still waiting is written, not dropped.
    write_run(tap, &mut coalescer);
}

/// Writes the run waiting in `coalescer`, if any, to the TAP device.
fn write_run(tap: &SyncDevice, coalescer: &mut Coalescer) {
    if let Some(large) = coalescer.take() {
        send_to_tap(tap, large);
    }
}

/// Writes the `length`-byte frame that sits after the virtio-net header room of `buffer` to
/// the TAP device; with `offload` after a header that asks for nothing (checksums are
/// complete).
fn write_frame(tap: &SyncDevice, offload: bool, buffer: &mut [u8], length: usize) {
    let start = if offload {
        if VirtioHeader::default().write(buffer).is_none() {
            return;
        }
        0
    } else {
        VIRTIO_NET_HEADER
    };
    if let Some(bytes) = buffer.get(start..VIRTIO_NET_HEADER + length) {
        send_to_tap(tap, bytes);
    }
}

/// Writes `bytes` (a virtio-net header and a frame) to the TAP device; when its queue is full,
/// waits for room once (bounded), then drops.
fn send_to_tap(tap: &SyncDevice, bytes: &[u8]) {
    loop {
        match tap.send(bytes) {
            Ok(_) => return,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_for(tap.as_fd(), PollFlags::POLLOUT);
                if tap.send(bytes).is_err() {
                    tracing::debug!("TAP device full: frame dropped");
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot write to the TAP device");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn a_receive_nice_value_is_its_thread_s_alone() {
        let before = thread_nice().expect("own nice value");
        // Raising the value (lower priority) needs no privilege.
        let wanted = i8::try_from(before + 3).expect("small");
        let inside = std::thread::spawn(move || {
            set_thread_nice(wanted);
            thread_nice()
        })
        .join()
        .expect("thread");
        assert_eq!(inside, Some(i32::from(wanted)));
        assert_eq!(
            thread_nice(),
            Some(before),
            "the calling thread is unchanged"
        );
    }

    fn loopback_pair() -> (Underlay, UdpSocket) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        (Underlay::new(socket).expect("underlay"), receiver)
    }

    #[test]
    fn a_train_arrives_as_the_datagrams_it_was_made_of() {
        let (underlay, receiver) = loopback_pair();
        let to = receiver.local_addr().expect("address");
        let mut train = Train::new();
        let sizes = [1452usize, 1452, 1452, 700, 1452, 90];
        for (number, size) in sizes.iter().enumerate() {
            let tail = train.tail();
            tail[..*size].fill(number as u8);
            train.commit(to, *size, &underlay);
        }
        train.finish(&underlay);
        let mut buffer = [0u8; 2048];
        for (number, size) in sizes.iter().enumerate() {
            let (length, _) = receiver.recv_from(&mut buffer).expect("datagram");
            assert_eq!(length, *size, "datagram {number}");
            assert!(buffer[..length].iter().all(|byte| *byte == number as u8));
        }
    }

    #[test]
    fn a_train_to_another_destination_sends_the_first_one_before() {
        let (underlay, first) = loopback_pair();
        let second = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        second
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let mut train = Train::new();
        for (to, byte) in [(&first, 1u8), (&first, 2), (&second, 3)] {
            train.tail()[..100].fill(byte);
            train.commit(to.local_addr().expect("address"), 100, &underlay);
        }
        train.finish(&underlay);
        let mut buffer = [0u8; 256];
        for (socket, byte) in [(&first, 1u8), (&first, 2), (&second, 3)] {
            let (length, _) = socket.recv_from(&mut buffer).expect("datagram");
            assert_eq!(length, 100);
            assert_eq!(buffer[0], byte);
        }
    }
}
