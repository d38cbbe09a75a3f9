//! The sans-IO data path of a fabric node: Ethernet frames from the TAP device in, WireGuard
//! datagrams out, and the reverse, with ARP/ND answered locally, port security and drops
//! counted by reason. Owns the peer table and one boringtun `noise::Tunn` per peer; must not
//! own sockets, tasks or clocks (time comes in as `now`; boringtun reads its own monotonic clock
//! inside `Tunn`, which the core cannot change).
//!
//! Call order for the driver:
//! - a frame read from the TAP device: [`Core::handle_frame`];
//! - a datagram read from the UDP socket: [`Core::handle_datagram`], then
//!   [`Core::poll_transmit`] until it returns `None` (packets held during a handshake);
//! - every [`TIMER_TICK`]: [`Core::handle_tick`];
//! - a new fabric: [`Core::apply_peers`].
//!
//! Per-packet calls borrow the caller's buffers (at least [`BUFFER_SIZE`] bytes) and return an
//! [`Action`]; they do not allocate (boringtun allocates only to queue a packet while a
//! handshake is in progress). They take `&self`, so several workers can call them at once:
//! the tables (MAC, key and address to peer) change only in [`Core::apply_peers`], which takes
//! `&mut self`; each peer's tunnel, endpoint and counters sit behind the peer's own lock, so
//! members never wait for each other; drop counters are atomics.

pub mod aqm;
pub mod coalesce;
mod counters;
pub mod fair;
pub mod mtu;
pub mod offload;
mod packet;
mod peers;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519;

pub use counters::{DropCounters, DropReason, SharedDropCounters};
pub use packet::{ETHERNET_HEADER, Ethernet, IpHeader};
pub use peers::{PeerConfig, PeerCounters, PeerSpec, mac_for_key};

use mtu::{MssLimit, clamp_mss, is_tcp_syn, write_too_big};
use packet::{
    Advertisement, Arp, BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    ICMPV6_ND_TYPES, icmpv6_type, is_group_mac, neighbor_solicitation_target, write_arp_reply,
    write_neighbor_advertisement,
};
use peers::{Peer, PeerState};

/// Size of every buffer handed to the core: the largest IP packet, an Ethernet header and the
/// WireGuard data overhead, rounded up.
pub const BUFFER_SIZE: usize = 65_536 + 128;
/// How often [`Core::handle_tick`] should run (boringtun's timers have this resolution).
pub const TIMER_TICK: Duration = Duration::from_millis(250);
/// How often the handshake rate limiter's count is reset.
pub const RATE_LIMIT_RESET: Duration = Duration::from_secs(1);
/// Handshake messages per second accepted before cookies are demanded (WireGuard paper
/// section 5.3). Each handshake message is counted twice (once to find its peer, once by the
/// peer's tunnel), so the limiter is given twice this.
pub const HANDSHAKES_PER_SECOND: u64 = 100;
/// WireGuard message type of a cookie reply, the only message sent before authentication.
const MESSAGE_COOKIE_REPLY: u8 = 3;
/// WireGuard message types of handshake initiation and response.
const MESSAGE_HANDSHAKE: std::ops::RangeInclusive<u8> = 1..=2;
/// WireGuard message type of transport data.
const MESSAGE_DATA: u8 = 4;
/// Upper bound of [`Core::poll_transmit`] rounds after one datagram (boringtun queues at most
/// 256 packets per peer).
const MAX_FLUSH: u16 = 512;
/// ICMP "packet too big" answers allowed per [`TIMER_TICK`] (100 per second), so that a host
/// that ignores them cannot make the node flood the LAN.
pub const TOO_BIG_PER_TICK: u32 = 25;
/// Largest SYN segment copied to clamp its MSS on the way out (a SYN carries at most a few
/// options, or TCP Fast Open data up to the MSS).
const CLAMP_COPY: usize = 1536;
/// Largest tunnel index boringtun can carry (`index << 8` must fit 32 bits).
const MAX_TUNNEL_INDEX: u32 = (1 << 24) - 1;

/// What the driver must do after the core handled a frame or a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send `datagram` to `to` over UDP.
    Transmit {
        /// Destination on the underlay.
        to: SocketAddr,
        /// A WireGuard message.
        datagram: &'a [u8],
    },
    /// Write `frame` to the TAP device (a decrypted packet, or an ARP/ND answer).
    Deliver(&'a [u8]),
    /// The packet is held until the handshake with its member completes.
    Queued,
    /// Nothing to do (a keepalive or cookie was consumed).
    Done,
    /// Dropped, and counted under this reason.
    Dropped(DropReason),
}

/// This node's own identity.
pub struct OwnNode {
    /// This node's spec in the fabric.
    pub spec: PeerSpec,
    /// Its private key.
    pub secret: x25519::StaticSecret,
}

/// Who owns a LAN address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// This node.
    Own,
    /// The peer with this tunnel index.
    Peer(u32),
}

/// Which peers a call to [`Core::apply_peers`] changed, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PeerChanges {
    /// New in the fabric.
    pub added: Vec<String>,
    /// Gone from the fabric.
    pub removed: Vec<String>,
    /// Same name, new key: a new tunnel.
    pub rekeyed: Vec<String>,
    /// Same key, other addresses or endpoint: tunnel kept.
    pub updated: Vec<String>,
}

/// The status of one peer, for `vixp status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's spec.
    pub spec: PeerSpec,
    /// Where datagrams go now.
    pub endpoint: Option<SocketAddr>,
    /// Time since the current session's handshake, if there is a session.
    pub since_handshake: Option<Duration>,
    /// Counters.
    pub counters: PeerCounters,
}

/// The data path of one node. See the module documentation for the call order.
pub struct Core {
    own: OwnNode,
    own_public: x25519::PublicKey,
    lan_broadcast: Option<Ipv4Addr>,
    persistent_keepalive: Option<u16>,
    rate_limiter: Arc<RateLimiter>,
    peers: HashMap<u32, Peer>,
    by_name: HashMap<String, u32>,
    by_mac: HashMap<[u8; 6], u32>,
    by_key: HashMap<[u8; 32], u32>,
    by_address: HashMap<IpAddr, Owner>,
    next_index: u32,
    /// Peers whose handshake just completed, with the packets flushed so far; `flushing` says
    /// whether the list may be non-empty, so that the common case reads one flag.
    flush: Mutex<Vec<(u32, u16)>>,
    flushing: AtomicBool,
    last_rate_reset: Mutex<Option<Instant>>,
    drops: SharedDropCounters,
    handshakes: AtomicU64,
    /// Largest IP packet a tunnel carries; larger ones are answered with ICMP.
    mtu: Option<u16>,
    /// MSS clamping of SYN segments in both directions.
    mss: Option<MssLimit>,
    /// ICMP "packet too big" answers left until the next tick.
    too_big_budget: AtomicU32,
    /// ICMP "packet too big" answers sent.
    too_big_answers: AtomicU64,
}

impl Core {
    /// A core for `own`, with no peers yet. `lan_broadcast` is the IPv4 LAN's broadcast
    /// address (packets to it are dropped); `persistent_keepalive` applies to every peer.
    pub fn new(
        own: OwnNode,
        lan_broadcast: Option<Ipv4Addr>,
        persistent_keepalive: Option<u16>,
    ) -> Core {
        let own_public = x25519::PublicKey::from(&own.secret);
        let rate_limiter = Arc::new(RateLimiter::new(&own_public, HANDSHAKES_PER_SECOND * 2));
        let mut core = Core {
            own,
            own_public,
            lan_broadcast,
            persistent_keepalive,
            rate_limiter,
            peers: HashMap::new(),
            by_name: HashMap::new(),
            by_mac: HashMap::new(),
            by_key: HashMap::new(),
            by_address: HashMap::new(),
            next_index: 1,
            flush: Mutex::new(Vec::new()),
            flushing: AtomicBool::new(false),
            last_rate_reset: Mutex::new(None),
            drops: SharedDropCounters::default(),
            handshakes: AtomicU64::new(0),
            mtu: None,
            mss: None,
            too_big_budget: AtomicU32::new(TOO_BIG_PER_TICK),
            too_big_answers: AtomicU64::new(0),
        };
        core.rebuild_tables();
        core
    }

    /// Sets the tunnel MTU (the largest IP packet a tunnel carries: larger ones are dropped and
    /// answered with ICMP "fragmentation needed" or ICMPv6 "packet too big") and the MSS
    /// clamping of TCP SYN segments in both directions (`None`: off). Without this call the
    /// core forwards any size its buffers take and leaves SYNs alone.
    pub fn set_mtu(&mut self, mtu: u16, mss: Option<MssLimit>) {
        self.mtu = Some(mtu);
        self.mss = mss;
    }

    /// This node's spec.
    pub fn own(&self) -> &PeerSpec {
        &self.own.spec
    }

    /// Drops counted so far, by reason.
    pub fn drops(&self) -> DropCounters {
        self.drops.snapshot()
    }

    /// Counts a drop the driver decided on (a frame from the TAP device that its offload
    /// header made impossible to split, for instance).
    pub fn count_drop(&self, reason: DropReason) {
        self.drops.count(reason);
    }

    /// ICMP "fragmentation needed" and ICMPv6 "packet too big" answers sent to the LAN.
    pub fn too_big_answers(&self) -> u64 {
        self.too_big_answers.load(Ordering::Relaxed)
    }

    /// Handshakes completed with any peer.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// The status of every peer, sorted by name.
    pub fn peer_status(&self) -> Vec<PeerStatus> {
        let mut status: Vec<PeerStatus> = self
            .peers
            .values()
            .map(|peer| {
                let state = peer.lock();
                PeerStatus {
                    spec: peer.spec.clone(),
                    endpoint: state.endpoint,
                    since_handshake: state.tunnel.time_since_last_handshake(),
                    counters: state.counters,
                }
            })
            .collect();
        status.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        status
    }

    /// Replaces the peer set with `peers` (every other node of a new fabric) and this node's
    /// spec with `own` (same key; addresses may change). Peers with the same name and key keep
    /// their tunnel, session and counters; a new key gets a new tunnel.
    pub fn apply_peers(&mut self, own: PeerSpec, peers: Vec<PeerConfig>) -> PeerChanges {
        let mut changes = PeerChanges::default();
        self.own.spec = own;
        let mut keep: HashMap<u32, Peer> = HashMap::new();
        for config in peers {
            let existing = self.by_name.get(&config.spec.name).copied();
            match existing.and_then(|index| self.peers.remove(&index).map(|peer| (index, peer))) {
                Some((index, mut peer)) if peer.spec.public_key == config.spec.public_key => {
                    if peer.spec != config.spec || peer.configured_endpoint != config.endpoint {
                        changes.updated.push(config.spec.name.clone());
                        if peer.configured_endpoint != config.endpoint {
                            let state =
                                peer.state.get_mut().unwrap_or_else(PoisonError::into_inner);
                            state.endpoint = config.endpoint.or(state.endpoint);
                        }
                        peer.configured_endpoint = config.endpoint;
                        peer.spec = config.spec;
                    }
                    keep.insert(index, peer);
                }
                previous => {
                    if previous.is_some() {
                        changes.rekeyed.push(config.spec.name.clone());
                    } else {
                        changes.added.push(config.spec.name.clone());
                    }
                    let index = self.allocate_index(&keep);
                    keep.insert(index, self.new_peer(index, config));
                }
            }
        }
        changes.removed = self
            .peers
            .values()
            .map(|peer| peer.spec.name.clone())
            .collect();
        changes.removed.sort();
        self.peers = keep;
        self.rebuild_tables();
        self.flush
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.flushing.store(false, Ordering::Relaxed);
        changes
    }

    /// A tunnel index unused by `keep` and by the peers not yet moved there.
    fn allocate_index(&mut self, keep: &HashMap<u32, Peer>) -> u32 {
        loop {
            let index = self.next_index;
            self.next_index = if index >= MAX_TUNNEL_INDEX {
                1
            } else {
                index + 1
            };
            if !keep.contains_key(&index) && !self.peers.contains_key(&index) {
                return index;
            }
        }
    }

    fn new_peer(&self, index: u32, config: PeerConfig) -> Peer {
        let tunnel = Tunn::new(
            self.own.secret.clone(),
            x25519::PublicKey::from(config.spec.public_key),
            None,
            self.persistent_keepalive,
            index,
            Some(Arc::clone(&self.rate_limiter)),
        );
        Peer {
            spec: config.spec,
            configured_endpoint: config.endpoint,
            state: Mutex::new(PeerState {
                endpoint: config.endpoint,
                tunnel,
                counters: PeerCounters::default(),
            }),
        }
    }

    /// Rebuilds the lookup tables from the peers and this node's spec.
    fn rebuild_tables(&mut self) {
        self.by_name.clear();
        self.by_mac.clear();
        self.by_key.clear();
        self.by_address.clear();
        for address in lan_addresses(&self.own.spec) {
            self.by_address.insert(address, Owner::Own);
        }
        for (index, peer) in &self.peers {
            self.by_name.insert(peer.spec.name.clone(), *index);
            self.by_mac.insert(peer.spec.mac, *index);
            self.by_key.insert(peer.spec.public_key, *index);
            for address in lan_addresses(&peer.spec) {
                self.by_address.insert(address, Owner::Peer(*index));
            }
        }
    }

    /// Counts a drop and says so.
    fn drop_with<'a>(&self, reason: DropReason) -> Action<'a> {
        self.drops.count(reason);
        Action::Dropped(reason)
    }

    /// Handles one Ethernet frame the kernel wrote to the TAP device: answers ARP and neighbour
    /// solicitations for members, drops broadcast and multicast, and encrypts IP packets for
    /// the member that owns the destination MAC.
    pub fn handle_frame<'a>(&self, frame: &[u8], out: &'a mut [u8]) -> Action<'a> {
        let Some((ethernet, payload)) = Ethernet::parse(frame) else {
            return self.drop_with(DropReason::Malformed);
        };
        if ethernet.ethertype == ETHERTYPE_ARP {
            return self.answer_arp(payload, out);
        }
        let header = match ethernet.ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => match IpHeader::parse(payload) {
                Some(header) if header.ethertype() == ethernet.ethertype => header,
                _ => return self.drop_with(DropReason::Malformed),
            },
            _ => return self.drop_with(DropReason::NotIp),
        };
        if let Some(target) = neighbor_solicitation_target(&header, payload) {
            return self.answer_neighbor_solicitation(&ethernet, &header, target, out);
        }
        if ethernet.destination == BROADCAST_MAC {
            return self.drop_with(DropReason::Broadcast);
        }
        if is_group_mac(&ethernet.destination) {
            return self.drop_with(DropReason::Multicast);
        }
        let Some(&index) = self.by_mac.get(&ethernet.destination) else {
            return self.drop_with(DropReason::UnknownMac);
        };
        let packet = payload.get(..header.total_length()).unwrap_or(payload);
        if out.len() < packet.len() + 32 || out.len() < 148 {
            return self.drop_with(DropReason::TooLarge);
        }
        let Some(peer) = self.peers.get(&index) else {
            return self.drop_with(DropReason::UnknownMac);
        };
        if let Some(mtu) = self.mtu
            && packet.len() > usize::from(mtu)
        {
            let source = match header {
                IpHeader::V4 { .. } => peer.spec.ipv4.map(IpAddr::V4),
                IpHeader::V6 { .. } => peer.spec.ipv6.map(IpAddr::V6),
            };
            return self.answer_too_big(&ethernet, packet, mtu, source, out);
        }
        let mut copy = [0u8; CLAMP_COPY];
        let packet = match self.mss {
            Some(limit) if packet.len() <= CLAMP_COPY && is_tcp_syn(packet) => {
                let copy = &mut copy[..packet.len()];
                copy.copy_from_slice(packet);
                clamp_mss(copy, limit);
                &*copy
            }
            _ => packet,
        };
        let mut state = peer.lock();
        let Some(endpoint) = state.endpoint else {
            return self.drop_with(DropReason::NoEndpoint);
        };
        state.counters.sent_packets += 1;
        state.counters.sent_bytes += packet.len() as u64;
        match state.tunnel.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(datagram) => Action::Transmit {
                to: endpoint,
                datagram,
            },
            TunnResult::Done => Action::Queued,
            TunnResult::Err(error) => self.drop_with(reason_for(&error)),
            TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => Action::Done,
        }
    }

    /// Drops `packet` (too large for the tunnel) and answers it with ICMP from `source`, within
    /// the rate limit.
    fn answer_too_big<'a>(
        &self,
        ethernet: &Ethernet,
        packet: &[u8],
        mtu: u16,
        source: Option<IpAddr>,
        out: &'a mut [u8],
    ) -> Action<'a> {
        self.drops.count(DropReason::ExceedsMtu);
        let allowed = self
            .too_big_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if !allowed {
            return Action::Dropped(DropReason::ExceedsMtu);
        }
        match source.and_then(|source| write_too_big(out, ethernet, packet, mtu, source)) {
            Some(length) => {
                self.too_big_answers.fetch_add(1, Ordering::Relaxed);
                Action::Deliver(&out[..length])
            }
            None => Action::Dropped(DropReason::ExceedsMtu),
        }
    }

    /// Answers an ARP request for another member's IPv4 address (RFC 826) with its MAC.
    fn answer_arp<'a>(&self, payload: &[u8], out: &'a mut [u8]) -> Action<'a> {
        let Some(arp) = Arp::parse(payload) else {
            return self.drop_with(DropReason::Malformed);
        };
        if matches!(
            self.by_address.get(&IpAddr::V4(arp.sender_ip)),
            Some(Owner::Peer(_))
        ) {
            return self.drop_with(DropReason::SpoofedSource);
        }
        let owner = match self.by_address.get(&IpAddr::V4(arp.target_ip)) {
            Some(Owner::Peer(index)) if arp.operation == Arp::REQUEST => {
                self.peers.get(index).map(|peer| peer.spec.mac)
            }
            _ => None,
        };
        let Some(owner_mac) = owner else {
            return self.drop_with(DropReason::ArpNotForMember);
        };
        match write_arp_reply(out, &arp, owner_mac, arp.target_ip) {
            Some(length) => Action::Deliver(&out[..length]),
            None => self.drop_with(DropReason::TooLarge),
        }
    }

    /// Answers a neighbour solicitation for another member's IPv6 address (RFC 4861 section
    /// 7.2.4) with its MAC.
    fn answer_neighbor_solicitation<'a>(
        &self,
        ethernet: &Ethernet,
        header: &IpHeader,
        target: std::net::Ipv6Addr,
        out: &'a mut [u8],
    ) -> Action<'a> {
        let IpHeader::V6 { source, .. } = *header else {
            return self.drop_with(DropReason::Malformed);
        };
        if matches!(
            self.by_address.get(&IpAddr::V6(source)),
            Some(Owner::Peer(_))
        ) {
            return self.drop_with(DropReason::SpoofedSource);
        }
        let owner = match self.by_address.get(&IpAddr::V6(target)) {
            Some(Owner::Peer(index)) => self.peers.get(index).map(|peer| peer.spec.mac),
            _ => None,
        };
        let Some(owner_mac) = owner else {
            return self.drop_with(DropReason::NeighborSolicitationNotForMember);
        };
        let answer = Advertisement {
            requester_mac: ethernet.source,
            requester_ip: source,
            target,
            owner_mac,
        };
        match write_neighbor_advertisement(out, &answer) {
            Some(length) => Action::Deliver(&out[..length]),
            None => self.drop_with(DropReason::TooLarge),
        }
    }

    /// Handles one UDP datagram from `from`: finds its peer (by receiver index, or for a
    /// handshake initiation by the initiator's static key), lets the peer's tunnel decrypt it,
    /// applies port security and returns the frame for the TAP device or a reply to send.
    pub fn handle_datagram<'a>(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        out: &'a mut [u8],
    ) -> Action<'a> {
        if out.len() < ETHERNET_HEADER + datagram.len().max(148) {
            return self.drop_with(DropReason::TooLarge);
        }
        let index = match self
            .rate_limiter
            .verify_packet(Some(from.ip()), datagram, out)
        {
            Ok(Packet::HandshakeInit(init)) => {
                match parse_handshake_anon(&self.own.secret, &self.own_public, &init) {
                    Ok(half) => match self.by_key.get(&half.peer_static_public) {
                        Some(index) => *index,
                        None => return self.drop_with(DropReason::UnknownPeer),
                    },
                    Err(error) => return self.drop_with(reason_for(&error)),
                }
            }
            Ok(Packet::HandshakeResponse(response)) => response.receiver_idx >> 8,
            Ok(Packet::PacketCookieReply(cookie)) => cookie.receiver_idx >> 8,
            Ok(Packet::PacketData(data)) => data.receiver_idx >> 8,
            Err(TunnResult::WriteToNetwork(cookie)) => {
                // Under load: the sender must prove its address first (WireGuard paper 5.3).
                let length = cookie.len();
                return Action::Transmit {
                    to: from,
                    datagram: &out[..length],
                };
            }
            Err(TunnResult::Err(WireGuardError::InvalidPacket)) => {
                return self.drop_with(DropReason::NotWireguard);
            }
            Err(TunnResult::Err(error)) => return self.drop_with(reason_for(&error)),
            Err(_) => return self.drop_with(DropReason::Malformed),
        };
        let message_type = datagram.first().copied().unwrap_or(0);
        let Some(peer) = self.peers.get(&index) else {
            return self.drop_with(DropReason::UnknownPeer);
        };
        let mut state = peer.lock();
        let body = &mut out[ETHERNET_HEADER..];
        let base = body.as_ptr() as usize;
        let outcome = match state.tunnel.decapsulate(Some(from.ip()), datagram, body) {
            TunnResult::WriteToNetwork(reply) => match offset_in(base, reply) {
                Some(offset) => Outcome::Network(offset, reply.len()),
                None => Outcome::Error(DropReason::Malformed),
            },
            TunnResult::WriteToTunnelV4(packet, _) | TunnResult::WriteToTunnelV6(packet, _) => {
                match offset_in(base, packet) {
                    Some(offset) => Outcome::Tunnel(offset, packet.len()),
                    None => Outcome::Error(DropReason::Malformed),
                }
            }
            TunnResult::Done => Outcome::Done,
            TunnResult::Err(error) => Outcome::Error(reason_for(&error)),
        };
        match outcome {
            Outcome::Network(offset, length) => {
                let start = ETHERNET_HEADER + offset;
                let Some(reply) = out.get(start..start + length) else {
                    return self.drop_with(DropReason::TooLarge);
                };
                if reply.first() != Some(&MESSAGE_COOKIE_REPLY) {
                    // Authenticated: a handshake completed or a keepalive answers one.
                    state.endpoint = Some(from);
                    if MESSAGE_HANDSHAKE.contains(&message_type) {
                        state.counters.handshakes += 1;
                        self.handshakes.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(state);
                    self.start_flush(index);
                }
                Action::Transmit {
                    to: from,
                    datagram: reply,
                }
            }
            Outcome::Done => {
                if message_type == MESSAGE_DATA {
                    // A keepalive, authenticated by its AEAD tag.
                    state.endpoint = Some(from);
                }
                Action::Done
            }
            Outcome::Error(reason) => self.drop_with(reason),
            Outcome::Tunnel(offset, length) => {
                state.endpoint = Some(from);
                let sender_mac = peer.spec.mac;
                let start = ETHERNET_HEADER + offset;
                let Some(packet) = out.get(start..start + length) else {
                    return self.drop_with(DropReason::TooLarge);
                };
                if let Some(reason) = self.port_security(index, packet) {
                    return self.drop_with(reason);
                }
                let Some(header) = IpHeader::parse(packet) else {
                    return self.drop_with(DropReason::Malformed);
                };
                if let Some(limit) = self.mss
                    && let Some(packet) = out.get_mut(start..start + length)
                {
                    clamp_mss(packet, limit);
                }
                state.counters.received_packets += 1;
                state.counters.received_bytes += length as u64;
                drop(state);
                if offset != 0 {
                    out.copy_within(start..start + length, ETHERNET_HEADER);
                }
                let ethernet = Ethernet {
                    destination: self.own.spec.mac,
                    source: sender_mac,
                    ethertype: header.ethertype(),
                };
                if ethernet.write(out).is_none() {
                    return self.drop_with(DropReason::TooLarge);
                }
                match out.get(..ETHERNET_HEADER + length) {
                    Some(frame) => Action::Deliver(frame),
                    None => self.drop_with(DropReason::TooLarge),
                }
            }
        }
    }

    /// Why a packet received from peer `index` must not reach the LAN, if it must not: its
    /// source is another node's LAN address, its destination is broadcast or multicast, or it
    /// is neighbour discovery, which is link-local (RFC 4861 section 6-8).
    fn port_security(&self, index: u32, packet: &[u8]) -> Option<DropReason> {
        let Some(header) = IpHeader::parse(packet) else {
            return Some(DropReason::Malformed);
        };
        let (source, destination_group) = match header {
            IpHeader::V4 {
                source,
                destination,
                ..
            } => (
                IpAddr::V4(source),
                if destination.is_broadcast() || Some(destination) == self.lan_broadcast {
                    Some(DropReason::Broadcast)
                } else if destination.is_multicast() {
                    Some(DropReason::Multicast)
                } else {
                    None
                },
            ),
            IpHeader::V6 {
                source,
                destination,
                ..
            } => (
                IpAddr::V6(source),
                destination.is_multicast().then_some(DropReason::Multicast),
            ),
        };
        match self.by_address.get(&source) {
            Some(Owner::Peer(owner)) if *owner == index => {}
            Some(_) => return Some(DropReason::SpoofedSource),
            None => {}
        }
        if destination_group.is_some() {
            return destination_group;
        }
        if icmpv6_type(&header, packet).is_some_and(|kind| ICMPV6_ND_TYPES.contains(&kind)) {
            return Some(DropReason::NeighborDiscoveryFromFabric);
        }
        None
    }

    /// Marks peer `index` for [`Core::poll_transmit`]: its handshake just completed.
    fn start_flush(&self, index: u32) {
        let mut flush = self.flush.lock().unwrap_or_else(PoisonError::into_inner);
        if !flush.iter().any(|(waiting, _)| *waiting == index) {
            flush.push((index, 0));
        }
        self.flushing.store(true, Ordering::Release);
    }

    /// After [`Core::handle_datagram`]: the next packet held during a handshake that just
    /// completed, encrypted, with where to send it. Call until `None`. Any worker may send
    /// them; one flag is read when there is nothing to send.
    pub fn poll_transmit<'a>(&self, out: &'a mut [u8]) -> Option<(SocketAddr, &'a [u8])> {
        if !self.flushing.load(Ordering::Acquire) || out.len() < 148 {
            return None;
        }
        let mut flush = self.flush.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(&(index, rounds)) = flush.first() {
            let sent = if rounds < MAX_FLUSH
                && let Some(peer) = self.peers.get(&index)
            {
                let mut state = peer.lock();
                match state.endpoint {
                    Some(endpoint) => match state.tunnel.decapsulate(None, &[], out) {
                        TunnResult::WriteToNetwork(datagram) => Some((endpoint, datagram.len())),
                        _ => None,
                    },
                    None => None,
                }
            } else {
                None
            };
            match sent {
                Some((endpoint, length)) => {
                    flush[0].1 = rounds + 1;
                    return Some((endpoint, &out[..length]));
                }
                None => {
                    flush.remove(0);
                }
            }
        }
        self.flushing.store(false, Ordering::Release);
        None
    }

    /// Runs the timers: resets the handshake rate limiter every [`RATE_LIMIT_RESET`] and lets
    /// every tunnel retransmit handshakes, rekey and send keepalives; each datagram to send is
    /// passed to `transmit`. Call every [`TIMER_TICK`].
    pub fn handle_tick(
        &self,
        now: Instant,
        out: &mut [u8],
        mut transmit: impl FnMut(SocketAddr, &[u8]),
    ) {
        {
            let mut last_reset = self
                .last_rate_reset
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last_reset.is_none_or(|last| now.saturating_duration_since(last) >= RATE_LIMIT_RESET)
            {
                self.rate_limiter.reset_count();
                *last_reset = Some(now);
            }
        }
        self.too_big_budget
            .store(TOO_BIG_PER_TICK, Ordering::Relaxed);
        if out.len() < 148 {
            return;
        }
        for peer in self.peers.values() {
            let mut state = peer.lock();
            let endpoint = state.endpoint;
            if let TunnResult::WriteToNetwork(datagram) = state.tunnel.update_timers(out) {
                match endpoint {
                    Some(endpoint) => transmit(endpoint, datagram),
                    None => self.drops.count(DropReason::NoEndpoint),
                }
            }
        }
    }
}

/// Where the decrypted bytes or reply sit in the output buffer, without borrowing it.
enum Outcome {
    /// A message to send: offset and length after the Ethernet header room.
    Network(usize, usize),
    /// A decrypted IP packet: offset and length after the Ethernet header room.
    Tunnel(usize, usize),
    /// Nothing to do.
    Done,
    /// Refused.
    Error(DropReason),
}

/// Where `slice`, written by boringtun into the buffer starting at address `base`, starts in
/// it; `None` if it is not inside (which boringtun never does).
fn offset_in(base: usize, slice: &[u8]) -> Option<usize> {
    (slice.as_ptr() as usize).checked_sub(base)
}

/// A node's LAN addresses.
fn lan_addresses(spec: &PeerSpec) -> impl Iterator<Item = IpAddr> {
    spec.ipv4
        .map(IpAddr::V4)
        .into_iter()
        .chain(spec.ipv6.map(IpAddr::V6))
}

/// The drop reason for a boringtun error.
fn reason_for(error: &WireGuardError) -> DropReason {
    match error {
        WireGuardError::InvalidAeadTag
        | WireGuardError::WrongKey
        | WireGuardError::InvalidTai64nTimestamp => DropReason::DecryptFailed,
        WireGuardError::DuplicateCounter
        | WireGuardError::InvalidCounter
        | WireGuardError::WrongTai64nTimestamp => DropReason::Replayed,
        WireGuardError::NoCurrentSession
        | WireGuardError::WrongIndex
        | WireGuardError::ConnectionExpired => DropReason::NoSession,
        WireGuardError::InvalidMac => DropReason::BadMac,
        WireGuardError::UnderLoad => DropReason::UnderLoad,
        WireGuardError::InvalidPacket => DropReason::NotIp,
        WireGuardError::DestinationBufferTooSmall => DropReason::TooLarge,
        WireGuardError::IncorrectPacketLength
        | WireGuardError::UnexpectedPacket
        | WireGuardError::WrongPacketType
        | WireGuardError::LockFailed => DropReason::Malformed,
    }
}
