//! The route server's async driver: the only module with sockets, tasks and clocks. It feeds
//! bytes and time into the sans-IO cores (`vixp_bgp::Session`, [`crate::rib::Rib`]) and carries
//! out what they hand back. It must not make routing decisions.
//!
//! ```text
//!  listener (per address) --TcpStream--> neighbor task (per member and family)
//!                                            |  owns 1-2 Sessions (collision), timers,
//!                                            |  active connects; per connection:
//!                                            |  reader task --bytes--> | --bytes--> writer task
//!                                            v
//!                     RibEvent (bounded: backpressure on fast senders)
//!                                            v
//!                 rib task (owns the Rib) --Export (bounded, 2 per client)--> neighbor task
//!                         ^   \--wakeup (Notify) <-- neighbor took an export
//!                         |
//!  http task (API, /metrics) --RibQuery + oneshot reply
//! ```

mod listener;
mod neighbor;
mod rib_task;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc, watch};
use tracing::info;
use vixp_bgp::Family;
use vixp_fabric::{Fabric, RouteServer};

use crate::metrics::Metrics;
use crate::rib::PeerId;

pub use rib_task::{Reset, RibEvent, RibQuery, RibReply};

/// Static description of one neighbor session slot: a member over one transport family.
#[derive(Debug, Clone)]
pub struct NeighborConfig {
    /// Slot identifier, also the index into the status table.
    pub id: PeerId,
    /// Index of the member in the fabric.
    pub member: usize,
    /// Member name.
    pub name: String,
    /// Member description.
    pub description: Option<String>,
    /// Member ASN.
    pub asn: u32,
    /// The session's family (also the transport family).
    pub family: Family,
    /// The member's LAN address of that family.
    pub address: IpAddr,
    /// The route server's LAN address of that family (source of active connections).
    pub local_address: Option<IpAddr>,
}

/// Live status of one neighbor, shared with the HTTP API.
#[derive(Debug, Clone)]
pub struct NeighborStatus {
    /// The neighbor's configuration.
    pub config: NeighborConfig,
    /// RFC 4271 FSM state name of the best connection (`Idle` when there is none).
    pub state: &'static str,
    /// When the session became established, if it is.
    pub established_since: Option<SystemTime>,
    /// The neighbor's BGP identifier, once known.
    pub router_id: Option<std::net::Ipv4Addr>,
    /// Why the session last went down.
    pub last_error: Option<String>,
}

/// Status of every neighbor, indexed by `PeerId`.
pub type StatusTable = Arc<Mutex<Vec<NeighborStatus>>>;

/// Handles the HTTP API needs from the running route server.
#[derive(Clone)]
pub struct Handles {
    /// Neighbor status.
    pub status: StatusTable,
    /// Queries to the RIB task.
    pub queries: mpsc::Sender<(RibQuery, tokio::sync::oneshot::Sender<RibReply>)>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The fabric in force (replaced when a reload is applied).
    pub fabric: watch::Receiver<Arc<Fabric>>,
    /// Name of this route server.
    pub route_server: String,
    /// When the route server started.
    pub started: SystemTime,
}

/// The neighbor slots of a fabric for one route server: one per member and family where both
/// the member and the route server have a LAN address.
pub fn neighbors(fabric: &Fabric, route_server: &RouteServer) -> Vec<NeighborConfig> {
    let mut neighbors = Vec::new();
    for (index, member) in fabric.members.iter().enumerate() {
        let pairs = [
            (
                Family::Ipv4,
                member.ipv4.map(IpAddr::V4),
                route_server.ipv4.map(IpAddr::V4),
            ),
            (
                Family::Ipv6,
                member.ipv6.map(IpAddr::V6),
                route_server.ipv6.map(IpAddr::V6),
            ),
        ];
        for (family, address, local_address) in pairs {
            let Some(address) = address else { continue };
            if local_address.is_none() && route_server.bgp.listen.is_empty() {
                continue;
            }
            neighbors.push(NeighborConfig {
                id: PeerId(u32::try_from(neighbors.len()).unwrap_or(u32::MAX)),
                member: index,
                name: member.name.clone(),
                description: member.description.clone(),
                asn: member.asn.0,
                family,
                address,
                local_address,
            });
        }
    }
    neighbors
}

/// Reads the fabric file again on SIGHUP. A file with errors, or one that changes the members
/// or this route server (which need a restart), is refused and logged; the running policy stays.
/// Returns the new fabric when its policy can be applied without touching any session.
fn reload(current: &Fabric, route_server: &str, metrics: &Metrics) -> Option<Fabric> {
    let outcome = |result: &str| {
        metrics
            .fabric_reloads
            .get_or_create(&crate::metrics::ReloadLabels {
                result: result.to_string(),
            })
            .inc();
        metrics
            .fabric_reload_success
            .set(i64::from(result == "applied"));
        if result == "applied" {
            metrics.fabric_applied(std::time::SystemTime::now());
        }
    };
    // The members' IRR files are read again too: a reload after `irr refresh` applies them.
    let fresh = match crate::irr::load_fabric(&current.source) {
        Ok((fresh, _)) => fresh,
        Err(error) => {
            tracing::error!("fabric reload refused, the running policy stays:\n{error}");
            outcome("invalid");
            return None;
        }
    };
    let same_members = fresh.members.len() == current.members.len()
        && fresh
            .members
            .iter()
            .zip(&current.members)
            .all(|(new, old)| {
                new.name == old.name
                    && new.asn == old.asn
                    && new.ipv4 == old.ipv4
                    && new.ipv6 == old.ipv6
            });
    let same_route_server = fresh
        .route_server(Some(route_server))
        .map(|rs| (rs.asn, rs.ipv4, rs.ipv6))
        == current
            .route_server(Some(route_server))
            .map(|rs| (rs.asn, rs.ipv4, rs.ipv6));
    if !same_members || !same_route_server {
        tracing::error!(
            "fabric reload refused: members or this route server changed; restart the route server to apply membership changes (the running policy stays)"
        );
        outcome("needs_restart");
        return None;
    }
    info!(fabric = %fresh.source.display(), "fabric reloaded: applying the policy to every stored route");
    outcome("applied");
    Some(fresh)
}

/// Runs the route server until `shutdown` becomes true; then ends every session with a Cease
/// NOTIFICATION (Administrative Shutdown) and returns.
pub async fn run(
    fabric: Fabric,
    route_server_name: &str,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let route_server = fabric
        .route_server(Some(route_server_name))
        .cloned()
        .with_context(|| format!("no route server named {route_server_name} in the fabric"))?;
    let fabric = Arc::new(fabric);
    let metrics = Arc::new(Metrics::new());
    let neighbor_configs = neighbors(&fabric, &route_server);
    let status: StatusTable = Arc::new(Mutex::new(
        neighbor_configs
            .iter()
            .map(|config| NeighborStatus {
                config: config.clone(),
                state: "Idle",
                established_since: None,
                router_id: None,
                last_error: None,
            })
            .collect(),
    ));

    let listen: Vec<IpAddr> = if route_server.bgp.listen.is_empty() {
        route_server
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(route_server.ipv6.map(IpAddr::V6))
            .collect()
    } else {
        route_server.bgp.listen.clone()
    };
    let mut listeners = Vec::new();
    for address in listen {
        let socket = SocketAddr::new(address, route_server.bgp.port);
        let listener =
            listener::bind(socket).with_context(|| format!("cannot listen for BGP on {socket}"))?;
        info!(%socket, "listening for BGP");
        listeners.push(listener);
    }
    let http_listener = tokio::net::TcpListener::bind(route_server.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", route_server.http_listen))?;
    info!(address = %route_server.http_listen, "HTTP API and /metrics listening");

    let (rib_events, rib_receiver) = mpsc::channel(rib_task::EVENT_QUEUE);
    let (query_sender, query_receiver) = mpsc::channel(16);
    let wakeup = Arc::new(Notify::new());
    let mut export_senders = Vec::new();
    let mut resets = Vec::new();
    let mut incoming_senders = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();

    for config in &neighbor_configs {
        let (export_sender, export_receiver) = mpsc::channel(rib_task::EXPORTS_IN_FLIGHT);
        let (incoming_sender, incoming_receiver) = mpsc::channel(4);
        export_senders.push(export_sender);
        let (reset_sender, reset) = mpsc::unbounded_channel();
        resets.push(reset_sender);
        incoming_senders.push(incoming_sender);
        let task = neighbor::NeighborTask::new(
            config.clone(),
            &route_server,
            neighbor::Channels {
                rib: rib_events.clone(),
                exports: export_receiver,
                incoming: incoming_receiver,
                wakeup: Arc::clone(&wakeup),
                reset,
                shutdown: shutdown.clone(),
            },
            Arc::clone(&status),
            Arc::clone(&metrics),
        );
        tasks.spawn(task.run());
    }
    let rib_reload = rib_events.clone();
    // RPKI payload (RTR caches, VRP file) reaches the RIB task as `RibEvent::Rpki`.
    if let Some(rpki) = fabric.policy.rpki.clone() {
        tasks.spawn(crate::rpki::rtr::run(
            rpki,
            Arc::clone(&metrics),
            rib_events.clone(),
            shutdown.clone(),
        ));
    }
    drop(rib_events);

    // Listed from start-up, so alerts on refusals work before the first one.
    for reason in ["unknown_address", "neighbor_busy", "max_prefix_hold_off"] {
        metrics
            .connections_refused
            .get_or_create(&crate::metrics::RefusedLabels {
                reason: reason.to_string(),
            })
            .inc_by(0);
    }
    metrics
        .fabric_reloads
        .get_or_create(&crate::metrics::ReloadLabels {
            result: "applied".to_string(),
        })
        .inc_by(0);
    let neighbor_addresses = neighbor_configs
        .iter()
        .map(|config| (config.address, config.id))
        .collect::<std::collections::HashMap<_, _>>();
    let neighbor_addresses = Arc::new(neighbor_addresses);
    for listener in listeners {
        tasks.spawn(listener::accept_loop(
            listener,
            Arc::clone(&neighbor_addresses),
            incoming_senders.clone(),
            Arc::clone(&metrics),
            shutdown.clone(),
        ));
    }
    drop(incoming_senders);

    let rib = rib_task::RibTask::new(
        Arc::clone(&fabric),
        route_server.asn.0,
        neighbor_configs.clone(),
        export_senders,
        resets,
        Arc::clone(&wakeup),
        Arc::clone(&metrics),
    );
    let rib_handle = tokio::spawn(rib.run(rib_receiver, query_receiver));

    let (fabric_in_force, fabric_view) = watch::channel(Arc::clone(&fabric));
    let handles = Handles {
        status,
        queries: query_sender,
        metrics: Arc::clone(&metrics),
        fabric: fabric_view,
        route_server: route_server.name.clone(),
        started: SystemTime::now(),
    };
    let http_shutdown = shutdown.clone();
    tasks.spawn(async move {
        crate::http::serve(http_listener, handles, http_shutdown).await;
    });

    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    let mut current = fabric;
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = hangup.recv() => {
                if let Some(fabric) = reload(&current, &route_server.name, &metrics) {
                    current = Arc::new(fabric);
                    fabric_in_force.send_replace(Arc::clone(&current));
                    let _ = rib_reload.send(RibEvent::Reload(Arc::clone(&current))).await;
                }
            }
        }
    }
    info!("shutting down: ending sessions");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        info!("sessions did not end within 5 s; exiting anyway");
    }
    rib_handle.abort();
    Ok(())
}
