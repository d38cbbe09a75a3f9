//! `vixp up`: the tokio driver, the only async code of the node. Owns the TAP device, the UDP
//! socket, the control socket, the metrics listener, signals and the fabric file watch; every
//! decision about a frame or datagram is the core's. Packets do not pass through tokio:
//! forwarding workers (`datapath`, `workers` in the node file, one per core by default), each a
//! pair of blocking threads over its own TAP queue and UDP socket, move them, sharing the core
//! behind a read-write lock that only a fabric reload write-locks.
//!
//! ```text
//!   TAP queue i --frames--> worker i outbound: split, core.handle_frame -> UDP GSO sends
//!   UDP socket i -dgrams--> worker i inbound:  recvmmsg/GRO, core.handle_datagram -> TAP writes
//!                      +----------------------- control loop (one task) --------------------+
//!   tick 250 ms ------>| core.handle_tick (timers, rate limiter) ; snapshot -> Arc<Mutex<Status>>
//!   poll 2 s / SIGHUP >| reload fabric -> core.apply_peers, neighbour entries                 |
//!   SIGTERM/SIGINT --->| stop: threads joined, close TAP (removes it), remove control socket  |
//!                      +--------------------------------------------------------------------+
//!   control task: unix socket, JSON line in/out, reads the snapshot
//!   metrics task: HTTP GET /metrics, encodes the snapshot
//! ```
//!
//! The core takes packets one by one with borrowed buffers, so each thread keeps its own
//! buffers and batches.

mod control;
mod datapath;
mod link;

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use nix::sys::socket::{setsockopt, sockopt};
use tokio::signal::unix::{SignalKind, signal};
use vixp_common::systemd::State;
use vixp_fabric::Endpoint;

pub use control::{ControlSocket, Reply, Request, request_status};
pub use datapath::{DataPath, SharedCore, Underlay};
pub use link::{LanPrefixes, Link, Neighbours, neighbours_of};

use crate::core::{BUFFER_SIZE, Core, OwnNode, PeerConfig, PeerSpec, TIMER_TICK};
use crate::metrics::Metrics;
use crate::node::{NodeFile, Resolved, load_fabric, mac_collision, peer_specs};
use crate::status::{FabricVersion, Status};

/// Receive and send buffer of the UDP socket: bursts of a fast TCP flow fit while the loop
/// decrypts (wireguard-go uses the same 7 MiB).
pub const UDP_BUFFER_BYTES: usize = 7 << 20;

/// How often the fabric file's modification time is checked.
pub const FABRIC_POLL: Duration = Duration::from_secs(2);

/// Runs the node described by the node file at `config` until SIGTERM or SIGINT.
pub async fn up(config: &Path) -> anyhow::Result<()> {
    let node = NodeFile::load(config)?;
    let Resolved {
        node,
        fabric,
        fabric_digest,
        private_key,
        own,
        peers,
        listen_port,
    } = node.resolve()?;
    let prefixes = LanPrefixes {
        ipv4: fabric.lan.ipv4.prefix_len(),
        ipv6: fabric.lan.ipv6.prefix_len(),
    };
    let mut core = Core::new(
        OwnNode {
            spec: own.clone(),
            secret: private_key.secret(),
        },
        Some(fabric.lan.ipv4.broadcast()),
        node.persistent_keepalive,
    );
    core.set_mtu(node.mtu, node.mss_clamp.limit(node.mtu));
    core.apply_peers(own.clone(), resolve_endpoints(&peers).await);
    let core: SharedCore = Arc::new(RwLock::new(core));

    let workers = worker_count(node.workers);
    let underlays = bind_udp(listen_port, workers)?
        .into_iter()
        .map(|socket| Underlay::new(socket).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .context("UDP socket")?;
    let underlay = underlays.first().cloned().context("no UDP socket")?;
    let link = Link::create(
        &node.interface,
        workers,
        node.mtu,
        node.offload,
        &own,
        prefixes,
    )
    .await?;
    let mut neighbours = neighbours_of(&peers);
    link.sync_neighbours(&Neighbours::new(), &neighbours)
        .await?;

    let fabric_label = node.fabric.display().to_string();
    let mut fabric_version = FabricVersion::started(fabric_digest, SystemTime::now());
    let status = Arc::new(Mutex::new(snapshot_of(
        &datapath::read(&core),
        &node.interface,
        listen_port,
        &fabric_label,
        &fabric_version,
    )));
    let codel = node.aqm == crate::node::Aqm::Codel;
    let data_path = DataPath::start(
        Arc::clone(&core),
        &link.queues,
        link.offload,
        codel,
        &underlays,
        node.receive_nice,
    )
    .context("cannot start the forwarding threads")?;
    let control = ControlSocket::bind(&node.control_socket).await?;
    let control_task = tokio::spawn(control.serve(Arc::clone(&status)));
    let metrics_listener = tokio::net::TcpListener::bind(node.metrics)
        .await
        .with_context(|| format!("cannot listen for /metrics on {}", node.metrics))?;
    let metrics_task = tokio::spawn(serve_metrics(
        metrics_listener,
        Arc::new(Metrics::new(Arc::clone(&status))),
    ));
    tracing::info!(
        node = %own.name,
        interface = %node.interface,
        port = listen_port,
        peers = peers.len(),
        metrics = %node.metrics,
        control = %node.control_socket.display(),
        "vixp node up"
    );

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // TAP, UDP socket, control socket and signal handlers are up: a `Type=notify` unit may
    // count the node as started.
    tell_systemd(&[State::Ready]);
    let mut tick = tokio::time::interval(TIMER_TICK);
    let mut fabric_poll = tokio::time::interval(FABRIC_POLL);
    let mut fabric_modified = modified(&node.fabric);
    let mut out = vec![0u8; BUFFER_SIZE];
    let mut timer_sends: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    let mut reload_requested = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let fresh = {
                    let core = datapath::read(&core);
                    core.handle_tick(Instant::now(), &mut out, |to, datagram| {
                        timer_sends.push((to, datagram.to_vec()));
                    });
                    snapshot_of(&core, &node.interface, listen_port, &fabric_label, &fabric_version)
                };
                for (to, datagram) in timer_sends.drain(..) {
                    underlay.send(to, &datagram);
                }
                if let Ok(mut shared) = status.lock() {
                    *shared = fresh;
                }
            }
            _ = fabric_poll.tick() => {
                let now_modified = modified(&node.fabric);
                if now_modified != fabric_modified {
                    fabric_modified = now_modified;
                    reload_requested = true;
                }
            }
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the fabric");
                reload_requested = true;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
        if reload_requested {
            reload_requested = false;
            tell_systemd(&[State::Reloading]);
            match reload(
                &node,
                &private_key.public_key(),
                &core,
                &link,
                &mut neighbours,
                prefixes,
            )
            .await
            {
                Ok(digest) => fabric_version.applied(digest, SystemTime::now()),
                Err(error) => {
                    fabric_version.rejected(format!("{error:#}"), SystemTime::now());
                    tracing::error!(
                        "fabric {} refused, keeping the previous one:\n{error:#}",
                        node.fabric.display()
                    );
                }
            }
            tell_systemd(&[State::Ready]);
        }
    }
    tell_systemd(&[State::Stopping]);
    tracing::info!(interface = %node.interface, "stopping: removing the TAP device and control socket");
    data_path.stop();
    control_task.abort();
    metrics_task.abort();
    let _ = control_task.await;
    let _ = metrics_task.await;
    drop(link);
    Ok(())
}

/// Reports `states` to systemd when run as a `Type=notify` service (nothing otherwise); a
/// failure is logged, never fatal.
fn tell_systemd(states: &[State]) {
    if let Err(error) = vixp_common::systemd::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// A status snapshot at the current wall-clock time.
fn snapshot_of(
    core: &Core,
    interface: &str,
    port: u16,
    fabric: &str,
    version: &FabricVersion,
) -> Status {
    Status::capture(core, interface, port, fabric, version, SystemTime::now())
}

/// Re-reads the fabric and applies it: peers added, removed or re-keyed, this node's addresses,
/// neighbour entries. Unchanged peers keep their tunnels. A fabric that is invalid, lacks this
/// node, gives it another key or derives colliding MACs is refused whole. Returns the applied
/// file's digest.
async fn reload(
    node: &NodeFile,
    own_public_key: &[u8; 32],
    core: &RwLock<Core>,
    link: &Link,
    neighbours: &mut Neighbours,
    prefixes: LanPrefixes,
) -> anyhow::Result<String> {
    let (fabric, digest) = load_fabric(&node.fabric)?;
    let specs = peer_specs(&fabric);
    if let Some((mac, first, second)) = mac_collision(&specs) {
        anyhow::bail!("{first} and {second} both derive the MAC address {mac}");
    }
    let Some(own) = specs.iter().find(|spec| spec.name == node.member).cloned() else {
        anyhow::bail!("{} is no longer in the fabric", node.member);
    };
    if &own.public_key != own_public_key {
        anyhow::bail!(
            "the fabric gives {} another public key; restart with the matching private key",
            node.member
        );
    }
    let new_prefixes = LanPrefixes {
        ipv4: fabric.lan.ipv4.prefix_len(),
        ipv6: fabric.lan.ipv6.prefix_len(),
    };
    let peers: Vec<PeerSpec> = specs
        .into_iter()
        .filter(|spec| spec.name != node.member)
        .collect();
    let configs = resolve_endpoints(&peers).await;
    let (old_own, changes) = {
        let mut core = datapath::write(core);
        let old_own = core.own().clone();
        (old_own, core.apply_peers(own.clone(), configs))
    };
    if old_own.ipv4 != own.ipv4
        || old_own.ipv6 != own.ipv6
        || new_prefixes.ipv4 != prefixes.ipv4
        || new_prefixes.ipv6 != prefixes.ipv6
    {
        link.set_addresses(Some(&old_own), &own, new_prefixes)
            .await?;
    }
    let new_neighbours = neighbours_of(&peers);
    link.sync_neighbours(neighbours, &new_neighbours).await?;
    *neighbours = new_neighbours;
    tracing::info!(
        added = ?changes.added,
        removed = ?changes.removed,
        rekeyed = ?changes.rekeyed,
        updated = ?changes.updated,
        "fabric reloaded"
    );
    Ok(digest)
}

/// The fabric's endpoints as socket addresses; DNS names are resolved now (a name that does
/// not resolve leaves the peer without endpoint until it is heard from).
async fn resolve_endpoints(peers: &[PeerSpec]) -> Vec<PeerConfig> {
    let mut resolved: HashMap<String, Option<SocketAddr>> = HashMap::new();
    for peer in peers {
        let endpoint = match &peer.endpoint {
            Some(Endpoint::Address(address)) => Some(*address),
            Some(Endpoint::Name { host, port }) => {
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(mut addresses) => addresses.next(),
                    Err(error) => {
                        tracing::warn!(peer = %peer.name, %host, %error, "endpoint does not resolve");
                        None
                    }
                }
            }
            None => None,
        };
        resolved.insert(peer.name.clone(), endpoint);
    }
    peers
        .iter()
        .map(|peer| PeerConfig {
            spec: peer.clone(),
            endpoint: resolved.get(&peer.name).copied().flatten(),
        })
        .collect()
}

/// Forwarding workers: as the node file says, else one per core.
fn worker_count(configured: Option<u16>) -> usize {
    configured.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        usize::from,
    )
}

/// The UDP sockets of the tunnels, one per worker, all on `port` (`SO_REUSEPORT` when more
/// than one: the kernel hashes each peer's address onto one of them): dual-stack `[::]:port`
/// where IPv6 exists, else `0.0.0.0:port`, with [`UDP_BUFFER_BYTES`] buffers (forced past
/// `net.core.rmem_max` when allowed).
fn bind_udp(port: u16, count: usize) -> anyhow::Result<Vec<UdpSocket>> {
    let reuse = count > 1;
    let first = match bind_one(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), reuse) {
        Ok(socket) => socket,
        Err(_) => bind_one(
            SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)),
            reuse,
        )
        .with_context(|| format!("cannot bind UDP port {port}"))?,
    };
    let address = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(
            bind_one(address, true)
                .with_context(|| format!("cannot bind another UDP socket to {address}"))?,
        );
    }
    for socket in &sockets {
        let forced = setsockopt(socket, sockopt::RcvBufForce, &UDP_BUFFER_BYTES)
            .and_then(|()| setsockopt(socket, sockopt::SndBufForce, &UDP_BUFFER_BYTES));
        if forced.is_err() {
            let capped = setsockopt(socket, sockopt::RcvBuf, &UDP_BUFFER_BYTES)
                .and_then(|()| setsockopt(socket, sockopt::SndBuf, &UDP_BUFFER_BYTES));
            if let Err(error) = capped {
                tracing::warn!(%error, "cannot enlarge the UDP socket buffers");
            }
        }
    }
    Ok(sockets)
}

/// One UDP socket bound to `address` (IPv6: dual-stack), with `SO_REUSEPORT` when `reuse`.
fn bind_one(address: SocketAddr, reuse: bool) -> std::io::Result<UdpSocket> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, bind, socket,
    };
    let family = if address.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    if reuse {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    match address {
        SocketAddr::V6(v6) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &false)?;
            bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn6::from(v6))?;
        }
        SocketAddr::V4(v4) => bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(v4))?,
    }
    Ok(UdpSocket::from(fd))
}

/// An address as the core sees it: IPv4-mapped IPv6 addresses of the dual-stack socket as IPv4.
fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

/// The file's modification time, if it can be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

/// Serves `GET /metrics` until the task is dropped.
async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        vixp_common::metrics::CONTENT_TYPE,
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    if let Err(error) = axum::serve(listener, router).await {
        tracing::error!(%error, "metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    #[test]
    fn mapped_addresses_become_ipv4() {
        let mapped = SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(198, 18, 1, 11).to_ipv6_mapped()),
            51820,
        );
        assert_eq!(
            canonical(mapped),
            SocketAddr::from((Ipv4Addr::new(198, 18, 1, 11), 51820))
        );
        let v6: SocketAddr = "[fd00::1]:51820".parse().expect("address");
        assert_eq!(canonical(v6), v6);
    }

    #[tokio::test]
    async fn literal_endpoints_resolve_and_absent_ones_stay_absent() {
        let spec = |name: &str, endpoint| PeerSpec {
            name: name.to_owned(),
            public_key: [0; 32],
            mac: [2, 0, 0, 0, 0, 1],
            ipv4: None,
            ipv6: None,
            endpoint,
        };
        let address = SocketAddr::from((Ipv4Addr::new(198, 18, 1, 12), 51820));
        let configs = resolve_endpoints(&[
            spec("a", Some(Endpoint::Address(address))),
            spec("b", None),
            spec(
                "c",
                Some(Endpoint::Name {
                    host: "localhost".to_owned(),
                    port: 51821,
                }),
            ),
        ])
        .await;
        assert_eq!(configs[0].endpoint, Some(address));
        assert_eq!(configs[1].endpoint, None);
        assert_eq!(
            configs[2].endpoint.map(|endpoint| endpoint.port()),
            Some(51821)
        );
    }
}
