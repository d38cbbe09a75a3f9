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
//!
//!  SIGHUP, control socket task (`route-server reload`) --ReloadRequest--> main loop:
//!      plans the reload (reload.rs), stops removed neighbor tasks (Reset::Remove), spawns new
//!      ones, re-points the listeners, sends RibEvent::Reload and answers once the RIB is done
//! ```

mod control;
mod listener;
mod neighbor;
mod reload;
mod rib_task;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::{error, info, warn};
use vixp_bgp::Family;
use vixp_common::systemd::State;
use vixp_fabric::{Fabric, RouteServer};

use crate::control::{ReloadReport, ReloadResult};
use crate::metrics::Metrics;
use crate::rib::PeerId;

pub use control::SocketPlace;
pub use rib_task::{Reset, RibEvent, RibQuery, RibReply};

/// Static description of one neighbor session slot: a member over one transport family.
#[derive(Debug, Clone)]
pub struct NeighborConfig {
    /// Slot identifier; never reused while the route server runs.
    pub id: PeerId,
    /// The member's number for this route server's lifetime (its position in the start-up
    /// fabric, or a fresh number for a member added by a reload): paths never go back to it.
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

/// Status of every neighbor slot in force, in slot order (find one by its `config.id`).
pub type StatusTable = Arc<Mutex<Vec<NeighborStatus>>>;

/// The status entry of slot `id`, if the slot is still in force.
pub fn status_entry(table: &mut [NeighborStatus], id: PeerId) -> Option<&mut NeighborStatus> {
    table.iter_mut().find(|entry| entry.config.id == id)
}

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

/// How the driver runs, beyond the fabric.
pub struct Options {
    /// Where the control socket goes (`None`: no control socket; SIGHUP still reloads).
    pub control_socket: Option<SocketPlace>,
    /// Applied to every fabric a reload reads before it is compared (the command line's
    /// overrides of the route server's listeners).
    pub adjust: Box<dyn Fn(&mut Fabric) + Send + Sync>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            control_socket: None,
            adjust: Box::new(|_| {}),
        }
    }
}

/// The driver side of one neighbor slot in force.
struct Live {
    config: NeighborConfig,
    incoming: mpsc::Sender<TcpStream>,
    reset: mpsc::UnboundedSender<Reset>,
}

/// What starting a neighbor slot needs.
struct Spawner {
    route_server: RouteServer,
    rib_events: mpsc::Sender<RibEvent>,
    wakeup: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    status: StatusTable,
    metrics: Arc<Metrics>,
    /// `policy.bgp_role` of the fabric the route server started with.
    bgp_role: vixp_fabric::BgpRolePolicy,
}

impl Spawner {
    /// Builds the task of a slot, registers its status entry, and returns the task (to spawn),
    /// the driver's handles and the RIB task's handles.
    fn prepare(
        &self,
        config: &NeighborConfig,
    ) -> (neighbor::NeighborTask, Live, rib_task::NewNeighbor) {
        let (export_sender, export_receiver) = mpsc::channel(rib_task::EXPORTS_IN_FLIGHT);
        let (incoming_sender, incoming_receiver) = mpsc::channel(4);
        let (reset_sender, reset) = mpsc::unbounded_channel();
        if let Ok(mut table) = self.status.lock() {
            table.push(NeighborStatus {
                config: config.clone(),
                state: "Idle",
                established_since: None,
                router_id: None,
                last_error: None,
            });
        }
        let task = neighbor::NeighborTask::new(
            config.clone(),
            &self.route_server,
            neighbor::Channels {
                rib: self.rib_events.clone(),
                exports: export_receiver,
                incoming: incoming_receiver,
                wakeup: Arc::clone(&self.wakeup),
                reset,
                shutdown: self.shutdown.clone(),
            },
            Arc::clone(&self.status),
            Arc::clone(&self.metrics),
        )
        .with_bgp_role(self.bgp_role);
        let live = Live {
            config: config.clone(),
            incoming: incoming_sender,
            reset: reset_sender.clone(),
        };
        let for_rib = rib_task::NewNeighbor {
            config: config.clone(),
            exports: export_sender,
            reset: reset_sender,
        };
        (task, live, for_rib)
    }
}

/// The listeners' view of the slots in force.
fn routing(live: &[Live]) -> listener::Routing {
    Arc::new(
        live.iter()
            .map(|slot| (slot.config.address, slot.incoming.clone()))
            .collect::<HashMap<_, _>>(),
    )
}

/// Everything a reload changes, owned by the main loop.
struct Running {
    name: String,
    route_server: RouteServer,
    current: Arc<Fabric>,
    live: Vec<Live>,
    next_id: u32,
    keys: reload::MemberKeys,
    spawner: Spawner,
    routing: watch::Sender<listener::Routing>,
    fabric_in_force: watch::Sender<Arc<Fabric>>,
    adjust: Box<dyn Fn(&mut Fabric) + Send + Sync>,
    metrics: Arc<Metrics>,
    /// The RPKI task, while the fabric has a `policy.rpki` block.
    rpki: Option<crate::rpki::rtr::RpkiTask>,
}

impl Running {
    fn count(&self, result: ReloadResult) {
        self.metrics
            .fabric_reloads
            .get_or_create(&crate::metrics::ReloadLabels {
                result: result.label().to_string(),
            })
            .inc();
        self.metrics
            .fabric_reload_success
            .set(i64::from(result == ReloadResult::Applied));
        if result == ReloadResult::Applied {
            self.metrics.fabric_applied(std::time::SystemTime::now());
        }
    }

    fn refuse(&self, result: ReloadResult, error: String) -> ReloadReport {
        error!("fabric reload refused, the running configuration stays:\n{error}");
        self.count(result);
        ReloadReport::unchanged(&self.current.source, result, Some(error))
    }

    /// Hands the reloaded `policy.rpki` and VRP file to the RPKI task: starts it when the block
    /// is new, ends it when the block is gone.
    fn reload_rpki(
        &mut self,
        fresh: &Fabric,
        file: Option<Arc<crate::rpki::VrpSet>>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        let Some(policy) = fresh.policy.rpki.clone() else {
            self.rpki = None;
            return;
        };
        let input = crate::rpki::rtr::Input { policy, file };
        match &self.rpki {
            Some(task) => task.update(input),
            None => {
                self.rpki = Some(crate::rpki::rtr::RpkiTask::spawn(
                    input,
                    Arc::clone(&self.metrics),
                    self.spawner.rib_events.clone(),
                    self.spawner.shutdown.clone(),
                    tasks,
                ));
            }
        }
    }

    /// Reads the fabric file again and applies it: see `reload.rs` for what changes. A file
    /// with errors, or one that changes the route server's own identity, is refused as a whole
    /// and the running configuration stays.
    async fn reload(&mut self, tasks: &mut tokio::task::JoinSet<()>) -> ReloadReport {
        let started = Instant::now();
        // The members' IRR files are read again too: a reload after `irr refresh` applies them.
        let mut fresh = match crate::irr::load_fabric(&self.current.source) {
            Ok((fresh, _)) => fresh,
            Err(error) => return self.refuse(ReloadResult::Invalid, error),
        };
        (self.adjust)(&mut fresh);
        // The VRP file is read again too; a malformed one refuses the reload and the RPKI
        // payload in force stays.
        let vrp_file = match fresh
            .policy
            .rpki
            .as_ref()
            .map(crate::rpki::rtr::read_file)
            .transpose()
        {
            Ok(file) => file.flatten(),
            Err(error) => {
                self.metrics.rpki.vrp_file_error.set(1);
                let error = format!("{error}; the RPKI payload in force stays");
                return self.refuse(ReloadResult::Invalid, error);
            }
        };
        let Some(new_route_server) = fresh.route_server(Some(&self.name)).cloned() else {
            let error = format!(
                "{}: route_servers: {} is no longer in the file; restart the route server to \
                 run another one",
                fresh.source.display(),
                self.name
            );
            return self.refuse(ReloadResult::NeedsRestart, error);
        };
        let changes = reload::identity_changes(&self.route_server, &new_route_server);
        if !changes.is_empty() {
            let error = format!(
                "{}: route_servers: {}: the route server's own {} changed; a reload cannot \
                 apply that, restart the route server",
                fresh.source.display(),
                self.name,
                changes.join(", ")
            );
            return self.refuse(ReloadResult::NeedsRestart, error);
        }
        let configs: Vec<NeighborConfig> =
            self.live.iter().map(|slot| slot.config.clone()).collect();
        let plan = reload::plan(
            &self.current,
            &fresh,
            &new_route_server,
            &configs,
            &mut self.next_id,
            &mut self.keys,
        );
        let fresh = Arc::new(fresh);
        self.reload_rpki(&fresh, vrp_file, tasks);

        let mut report = ReloadReport::unchanged(&fresh.source, ReloadResult::Applied, None);
        let mut removed = Vec::new();
        for (config, subcode) in &plan.removed {
            // Out of the status table first: the task, once it ends, forgets its metric series
            // unless a slot of the same member and family is listed there.
            if let Ok(mut table) = self.spawner.status.lock() {
                table.retain(|entry| entry.config.id != config.id);
            }
            if let Some(position) = self
                .live
                .iter()
                .position(|slot| slot.config.id == config.id)
            {
                let slot = self.live.remove(position);
                let _ = slot.reset.send(Reset::Remove(*subcode));
            }
            removed.push(config.id);
            report.sessions_ended.push(slot_name(config));
        }
        for config in &plan.kept {
            if let Some(slot) = self
                .live
                .iter_mut()
                .find(|slot| slot.config.id == config.id)
            {
                slot.config = config.clone();
            }
            if let Ok(mut table) = self.spawner.status.lock()
                && let Some(entry) = status_entry(&mut table, config.id)
            {
                entry.config = config.clone();
            }
        }
        let mut starting = Vec::new();
        let mut added = Vec::new();
        for config in &plan.added {
            let (task, live, for_rib) = self.spawner.prepare(config);
            starting.push(task);
            self.live.push(live);
            added.push(for_rib);
            report.sessions_started.push(slot_name(config));
        }
        self.routing.send_replace(routing(&self.live));
        let (done, outcome) = oneshot::channel();
        let event = RibEvent::Reload(Box::new(rib_task::Reconfigure {
            fabric: Arc::clone(&fresh),
            kept: plan.kept.clone(),
            added,
            removed,
            reevaluate: plan.reevaluate.clone(),
            done,
        }));
        // The RIB learns of new slots before their tasks can report anything.
        // Counted as applied from here: the new file is in force for everything that follows.
        self.count(ReloadResult::Applied);
        let _ = self.spawner.rib_events.send(event).await;
        for task in starting {
            tasks.spawn(task.run());
        }
        self.current = Arc::clone(&fresh);
        self.fabric_in_force.send_replace(fresh);
        match tokio::time::timeout(RELOAD_TIMEOUT, outcome).await {
            Ok(Ok(outcome)) => {
                report.routes_reevaluated = outcome.routes;
                report.routes_accepted = outcome.accepted;
                report.routes_refused = outcome.refused;
            }
            _ => warn!("the RIB did not confirm the reload in time"),
        }
        while tasks.try_join_next().is_some() {}
        report.members_added = plan.members_added;
        report.members_removed = plan.members_removed;
        report.members_changed = plan.members_changed;
        report.policy_changed = plan.policy_changed;
        report.seconds = started.elapsed().as_secs_f64();
        info!(
            fabric = %report.fabric.display(),
            added = ?report.members_added,
            removed = ?report.members_removed,
            changed = report.members_changed.len(),
            policy_changed = report.policy_changed,
            routes_reevaluated = report.routes_reevaluated,
            routes_accepted = report.routes_accepted,
            routes_refused = report.routes_refused,
            seconds = report.seconds,
            "fabric reloaded"
        );
        report
    }
}

/// How long a reload waits for the RIB to confirm it.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(110);

fn slot_name(config: &NeighborConfig) -> String {
    format!("{}.{}", config.name, config.family.label())
}

/// Runs the route server until `shutdown` becomes true; then ends every session with a Cease
/// NOTIFICATION (Administrative Shutdown) and returns. SIGHUP and the control socket's
/// `reload` apply a changed fabric file (see `reload.rs`).
pub async fn run(
    fabric: Fabric,
    route_server_name: &str,
    shutdown: watch::Receiver<bool>,
    options: Options,
) -> anyhow::Result<()> {
    let route_server = fabric
        .route_server(Some(route_server_name))
        .cloned()
        .with_context(|| format!("no route server named {route_server_name} in the fabric"))?;
    // A VRP file that cannot be used stops the start, as a broken fabric or IRR file does.
    let rpki_file = match &fabric.policy.rpki {
        Some(policy) => {
            crate::rpki::rtr::read_file(policy).map_err(|error| anyhow::anyhow!("{error}"))?
        }
        None => None,
    };
    let fabric = Arc::new(fabric);
    let metrics = Arc::new(Metrics::new());
    let neighbor_configs = neighbors(&fabric, &route_server);
    let status: StatusTable = Arc::new(Mutex::new(Vec::new()));

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
    let control_socket = match &options.control_socket {
        Some(place) => control::bind(place)?,
        None => None,
    };

    let (rib_events, rib_receiver) = mpsc::channel(rib_task::EVENT_QUEUE);
    let (query_sender, query_receiver) = mpsc::channel(16);
    let wakeup = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    let spawner = Spawner {
        route_server: route_server.clone(),
        rib_events: rib_events.clone(),
        wakeup: Arc::clone(&wakeup),
        shutdown: shutdown.clone(),
        status: Arc::clone(&status),
        metrics: Arc::clone(&metrics),
        bgp_role: fabric.policy.bgp_role,
    };
    // RPKI payload (RTR caches, VRP file) reaches the RIB task as `RibEvent::Rpki`.
    let rpki = match &fabric.policy.rpki {
        Some(policy) => {
            let input = crate::rpki::rtr::Input {
                policy: policy.clone(),
                file: rpki_file,
            };
            Some(crate::rpki::rtr::RpkiTask::spawn(
                input,
                Arc::clone(&metrics),
                rib_events.clone(),
                shutdown.clone(),
                &mut tasks,
            ))
        }
        None => None,
    };
    drop(rib_events);

    let mut live = Vec::new();
    let mut for_rib = Vec::new();
    for config in &neighbor_configs {
        let (task, slot, rib_side) = spawner.prepare(config);
        live.push(slot);
        for_rib.push(rib_side);
        tasks.spawn(task.run());
    }

    // Listed from start-up, so alerts on refusals work before the first one.
    for reason in ["unknown_address", "neighbor_busy", "max_prefix_hold_off"] {
        metrics
            .connections_refused
            .get_or_create(&crate::metrics::RefusedLabels {
                reason: reason.to_string(),
            })
            .inc_by(0);
    }
    for result in [
        ReloadResult::Applied,
        ReloadResult::Invalid,
        ReloadResult::NeedsRestart,
    ] {
        metrics
            .fabric_reloads
            .get_or_create(&crate::metrics::ReloadLabels {
                result: result.label().to_string(),
            })
            .inc_by(0);
    }
    let (routing_sender, routing_view) = watch::channel(routing(&live));
    for listener in listeners {
        tasks.spawn(listener::accept_loop(
            listener,
            routing_view.clone(),
            Arc::clone(&metrics),
            shutdown.clone(),
        ));
    }

    let (exports, resets): (Vec<_>, Vec<_>) = for_rib
        .into_iter()
        .map(|neighbor| (neighbor.exports, neighbor.reset))
        .unzip();
    let rib = rib_task::RibTask::new(
        Arc::clone(&fabric),
        route_server.asn.0,
        neighbor_configs.clone(),
        exports,
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
    let (control_sender, mut control_requests) = mpsc::channel::<control::ReloadRequest>(4);
    if let Some(socket) = control_socket {
        tasks.spawn(control::serve(socket, control_sender, shutdown.clone()));
    } else {
        drop(control_sender);
    }

    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    let mut running = Running {
        name: route_server.name.clone(),
        route_server,
        next_id: u32::try_from(live.len()).unwrap_or(u32::MAX),
        keys: reload::MemberKeys::new(&fabric),
        current: fabric,
        live,
        spawner,
        routing: routing_sender,
        fabric_in_force,
        adjust: options.adjust,
        metrics,
        rpki,
    };
    // Listeners are bound and SIGHUP is handled: a `Type=notify` unit may count us as started.
    tell_systemd(&[State::Ready]);
    let mut shutdown = shutdown;
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = hangup.recv() => {
                info!("SIGHUP: reloading the fabric file");
                tell_systemd(&[State::Reloading]);
                running.reload(&mut tasks).await;
                tell_systemd(&[State::Ready]);
            }
            Some(reply) = control_requests.recv() => {
                info!("control socket: reloading the fabric file");
                tell_systemd(&[State::Reloading]);
                let report = running.reload(&mut tasks).await;
                tell_systemd(&[State::Ready]);
                let _ = reply.send(report);
            }
        }
    }
    info!("shutting down: ending sessions");
    tell_systemd(&[State::Stopping]);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        info!("sessions did not end within 5 s; exiting anyway");
    }
    rib_handle.abort();
    Ok(())
}

/// Reports `states` to systemd when run as a `Type=notify` service (nothing otherwise); a
/// failure is logged, never fatal.
fn tell_systemd(states: &[State]) {
    if let Err(error) = vixp_common::systemd::notify(states) {
        warn!(%error, "cannot notify systemd");
    }
}
