//! The task that owns the [`Rib`]: applies neighbor events in arrival order, hands each client
//! its exports at the pace it takes them, and answers queries. Must not touch sockets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, warn};
use vixp_bgp::{Family, Prefix, Update};

use vixp_fabric::{Fabric, MaxPrefixAction};

use super::NeighborConfig;
use crate::metrics::{FilteredLabels, Metrics, SessionLabels};
use crate::policy::{self, Neighbor};
use crate::rib::{
    Export, FamilyCounts, PeerId, PeerInfo, Rib, RibTotals, RoutePage, RouteView, Window,
};

/// Events queued from neighbor tasks to the RIB task. Bounded: a sender faster than the RIB
/// waits, and TCP flow control slows it down.
pub const EVENT_QUEUE: usize = 256;
/// Export batches queued per client.
pub const EXPORTS_IN_FLIGHT: usize = 2;
/// Prefixes per export batch.
pub const EXPORT_BATCH: usize = 4096;
/// How often RIB gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// An event from a neighbor task.
#[derive(Debug)]
pub enum RibEvent {
    /// A session became established; `generation` tags the exports meant for it.
    Up {
        /// Neighbor slot.
        peer: PeerId,
        /// What the RIB needs to know.
        info: PeerInfo,
        /// Session generation.
        generation: u64,
    },
    /// An UPDATE was received.
    Update {
        /// Neighbor slot.
        peer: PeerId,
        /// Decoded, RFC 7606-processed content.
        update: Update,
    },
    /// A ROUTE-REFRESH was received (RFC 2918).
    Refresh {
        /// Neighbor slot.
        peer: PeerId,
        /// Family to resend.
        family: Family,
    },
    /// The session went down.
    Down {
        /// Neighbor slot.
        peer: PeerId,
    },
    /// A new fabric file with the same members: apply its policy to every stored route.
    Reload(Arc<Fabric>),
    /// The RPKI payload in force changed (`None`: none left): judge every stored route again.
    Rpki(Option<Arc<crate::rpki::VrpSet>>),
}

/// What the RIB task tells a neighbor task about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// The member fell too far behind the change log: reset the session (Cease 6/8).
    Lagging,
    /// The member exceeded its max-prefix limit: end the session with Cease 6/1 and refuse the
    /// member for `hold_off` (`None`: until the route server restarts or reloads its fabric).
    MaxPrefix {
        /// The family over the limit.
        family: Family,
        /// The limit.
        limit: u32,
        /// How long the member stays refused.
        hold_off: Option<Duration>,
    },
    /// A fabric reload: a member held off by `MaxPrefix` may connect again.
    Release,
}

/// An export batch for one session generation.
#[derive(Debug)]
pub struct TaggedExport {
    /// Session generation the export was computed for; other generations drop it.
    pub generation: u64,
    /// What to send.
    pub export: Export,
}

/// A question from the HTTP API.
#[derive(Debug, Clone)]
pub enum RibQuery {
    /// Counters of every neighbor.
    Counts,
    /// A page of the routes received from one neighbor and accepted.
    RoutesFrom(PeerId, Window),
    /// A page of the routes from one neighbor refused by the import policy, with their
    /// reasons.
    FilteredFrom(PeerId, Window),
    /// A page of the routes withheld from one neighbor by their senders' action communities.
    NotExportedTo(PeerId, Window),
    /// Paths for an exact prefix.
    RoutesFor(Prefix),
    /// Paths for the most specific prefix covering an address.
    Lookup(IpAddr),
}

/// The answer to a [`RibQuery`].
#[derive(Debug, Clone)]
pub enum RibReply {
    /// Per neighbor counts (indexed by `PeerId`) and RIB totals.
    Counts(Vec<FamilyCounts>, RibTotals),
    /// Routes.
    Routes(Vec<RouteView>),
    /// A page of a listing: how many routes the whole listing holds, and the page's routes.
    Page(usize, Vec<RouteView>),
}

/// The RIB owner.
pub struct RibTask {
    rib: Rib,
    neighbors: Vec<NeighborConfig>,
    fabric: Arc<Fabric>,
    /// The import policy's view of each neighbor's member, indexed like `neighbors`.
    policy_neighbors: Vec<Neighbor>,
    /// Label sets of the filtered-by-reason gauge last set, so vanished ones are reset to 0.
    filtered_series: Vec<FilteredLabels>,
    exports: Vec<mpsc::Sender<TaggedExport>>,
    generations: Vec<Option<u64>>,
    resets: Vec<mpsc::UnboundedSender<Reset>>,
    /// Sessions already over their max-prefix limit (acted on once per session).
    over_limit: Vec<bool>,
    wakeup: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// The RPKI payload in force, handed to every neighbor's policy view.
    rpki: Option<Arc<crate::rpki::VrpSet>>,
    /// This route server's ASN, the first part of its informational communities.
    route_server_asn: u32,
}

impl RibTask {
    /// A RIB task for these neighbors; `exports[i]` reaches the task of neighbor `i`, and
    /// `resets[i]` tells it to reset its session (it fell too far behind).
    pub fn new(
        fabric: Arc<Fabric>,
        route_server_asn: u32,
        neighbors: Vec<NeighborConfig>,
        exports: Vec<mpsc::Sender<TaggedExport>>,
        resets: Vec<mpsc::UnboundedSender<Reset>>,
        wakeup: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> RibTask {
        let generations = vec![None; neighbors.len()];
        let over_limit = vec![false; neighbors.len()];
        let policy_neighbors = policy_neighbors(&fabric, &neighbors);
        // Every session and reason at zero from start-up, so the family is always listed.
        let filtered_series: Vec<FilteredLabels> = neighbors
            .iter()
            .flat_map(|neighbor| {
                crate::policy::Reason::LABELS
                    .iter()
                    .map(|reason| FilteredLabels {
                        member: neighbor.name.clone(),
                        family: neighbor.family.label().to_string(),
                        reason: (*reason).to_string(),
                    })
            })
            .collect();
        for labels in &filtered_series {
            metrics.routes_filtered.get_or_create(labels).set(0);
        }
        let mut rib = Rib::new();
        rib.set_route_server_asn(route_server_asn);
        rib.set_blackhole(fabric.policy.blackhole);
        RibTask {
            rib,
            neighbors,
            fabric,
            policy_neighbors,
            filtered_series,
            exports,
            generations,
            resets,
            over_limit,
            wakeup,
            metrics,
            rpki: None,
            route_server_asn,
        }
    }

    /// Runs until every neighbor task has gone.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<RibEvent>,
        mut queries: mpsc::Receiver<(RibQuery, oneshot::Sender<RibReply>)>,
    ) {
        let mut gauges = tokio::time::interval(GAUGE_INTERVAL);
        gauges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { return };
                    self.handle(event);
                    // Take what is already queued before exporting, so exports are batched.
                    for _ in 0..EVENT_QUEUE {
                        match events.try_recv() {
                            Ok(event) => self.handle(event),
                            Err(_) => break,
                        }
                    }
                }
                () = self.wakeup.notified() => {}
                query = queries.recv() => {
                    if let Some((query, reply)) = query {
                        let _ = reply.send(self.answer(query));
                    }
                }
                _ = gauges.tick() => self.update_gauges(),
            }
            for peer in self.rib.take_lagging() {
                if let Some(reset) = self.resets.get(index(peer)) {
                    let _ = reset.send(Reset::Lagging);
                }
            }
            self.flush();
        }
    }

    fn handle(&mut self, event: RibEvent) {
        match event {
            RibEvent::Up {
                peer,
                info,
                generation,
            } => {
                debug!(peer = peer.0, "session up in RIB");
                if let Some(flag) = self.over_limit.get_mut(index(peer)) {
                    *flag = false;
                }
                if let Some(slot) = self.generations.get_mut(index(peer)) {
                    *slot = Some(generation);
                }
                self.rib.peer_up(peer, info);
            }
            RibEvent::Update { peer, update } => {
                let Some(neighbor) = self.policy_neighbors.get(index(peer)) else {
                    return;
                };
                let fabric = &self.fabric;
                let import = |prefix: &Prefix, attributes: &vixp_bgp::Attributes| {
                    policy::import(prefix, attributes, neighbor, &fabric.policy, &fabric.lan)
                };
                self.rib.update(peer, update, &import);
                self.check_max_prefix(peer);
            }
            RibEvent::Refresh { peer, family } => self.rib.refresh(peer, family),
            RibEvent::Down { peer } => {
                if let Some(slot) = self.generations.get_mut(index(peer)) {
                    *slot = None;
                }
                self.rib.peer_down(peer);
            }
            RibEvent::Reload(fabric) => {
                self.policy_neighbors = policy_neighbors(&fabric, &self.neighbors);
                for neighbor in &mut self.policy_neighbors {
                    neighbor.rpki = self.rpki.clone();
                }
                self.fabric = fabric;
                self.rib.set_blackhole(self.fabric.policy.blackhole);
                for reset in &self.resets {
                    let _ = reset.send(Reset::Release);
                }
                for neighbor in &self.neighbors {
                    let position = index(neighbor.id);
                    let up = self.generations.get(position).copied().flatten().is_some();
                    let Some(policy_neighbor) = self.policy_neighbors.get(position) else {
                        continue;
                    };
                    if !up {
                        continue;
                    }
                    let fabric = &self.fabric;
                    let import = |prefix: &Prefix, attributes: &vixp_bgp::Attributes| {
                        policy::import(
                            prefix,
                            attributes,
                            policy_neighbor,
                            &fabric.policy,
                            &fabric.lan,
                        )
                    };
                    self.rib.reevaluate(neighbor.id, &import);
                }
                self.update_gauges();
            }
            RibEvent::Rpki(vrps) => self.rpki_changed(vrps),
        }
    }

    /// New RPKI payload (issue 5 item 2): every established neighbor's stored routes, accepted
    /// and refused, are judged again, so routes that became invalid are withdrawn from clients
    /// and routes that became valid (or not found) are announced; unchanged ones send nothing.
    fn rpki_changed(&mut self, vrps: Option<Arc<crate::rpki::VrpSet>>) {
        self.rpki = vrps;
        for neighbor in &mut self.policy_neighbors {
            neighbor.rpki = self.rpki.clone();
        }
        if self.fabric.policy.rpki.is_none() {
            return;
        }
        for neighbor in &self.neighbors {
            let position = index(neighbor.id);
            let up = self.generations.get(position).copied().flatten().is_some();
            let Some(policy_neighbor) = self.policy_neighbors.get(position) else {
                continue;
            };
            if !up {
                continue;
            }
            let fabric = &self.fabric;
            let import = |prefix: &Prefix, attributes: &vixp_bgp::Attributes| {
                policy::import(prefix, attributes, policy_neighbor, &fabric.policy, &fabric.lan)
            };
            self.rib.reevaluate(neighbor.id, &import);
        }
        debug!("RPKI payload changed: stored routes judged again");
        self.update_gauges();
    }

    /// RFC 4486 subcode 1: acts once per session when a member announces more prefixes of the
    /// session's family than its `max_prefix` allows (accepted and filtered alike).
    fn check_max_prefix(&mut self, peer: PeerId) {
        let position = index(peer);
        let Some(neighbor) = self.neighbors.get(position) else {
            return;
        };
        if self.over_limit.get(position).copied().unwrap_or(true) {
            return;
        }
        let Some(member) = self.fabric.members.get(neighbor.member) else {
            return;
        };
        let limit = match neighbor.family {
            Family::Ipv4 => member.max_prefix.ipv4,
            Family::Ipv6 => member.max_prefix.ipv6,
        };
        let received = self.rib.counts(peer, neighbor.family).received;
        if received <= usize::try_from(limit).unwrap_or(usize::MAX) {
            return;
        }
        if let Some(flag) = self.over_limit.get_mut(position) {
            *flag = true;
        }
        let labels = SessionLabels {
            member: neighbor.name.clone(),
            family: neighbor.family.label().to_string(),
        };
        self.metrics
            .max_prefix_exceeded
            .get_or_create(&labels)
            .inc();
        let hold_off = match self.fabric.policy.max_prefix_action {
            MaxPrefixAction::Warn => {
                warn!(member = %neighbor.name, family = neighbor.family.label(), received, limit,
                    "member over its max-prefix limit (action warn: session kept)");
                return;
            }
            MaxPrefixAction::Shutdown => None,
            MaxPrefixAction::Restart { minutes } => {
                Some(Duration::from_secs(u64::from(minutes) * 60))
            }
        };
        warn!(member = %neighbor.name, family = neighbor.family.label(), received, limit,
            "member over its max-prefix limit: ending the session");
        if let Some(reset) = self.resets.get(position) {
            let _ = reset.send(Reset::MaxPrefix {
                family: neighbor.family,
                limit,
                hold_off,
            });
        }
    }

    /// Hands every client with pending work as many batches as its queue has room for.
    fn flush(&mut self) {
        for (position, sender) in self.exports.iter().enumerate() {
            let peer = PeerId(u32::try_from(position).unwrap_or(u32::MAX));
            let Some(generation) = self.generations.get(position).copied().flatten() else {
                continue;
            };
            while sender.capacity() > 0 && self.rib.has_pending(peer) {
                let Some(export) = self.rib.take_export(peer, EXPORT_BATCH) else {
                    break;
                };
                if sender
                    .try_send(TaggedExport { generation, export })
                    .is_err()
                {
                    break;
                }
            }
        }
    }

    fn answer(&self, query: RibQuery) -> RibReply {
        match query {
            RibQuery::Counts => {
                let counts = self
                    .neighbors
                    .iter()
                    .map(|neighbor| self.rib.counts(neighbor.id, neighbor.family))
                    .collect();
                RibReply::Counts(counts, self.rib.totals())
            }
            RibQuery::RoutesFrom(peer, window) => {
                self.shown_page(self.rib.routes_from_page(peer, window))
            }
            RibQuery::FilteredFrom(peer, window) => {
                let page = self.rib.filtered_from_page(peer, window);
                RibReply::Page(page.total, page.routes)
            }
            RibQuery::NotExportedTo(peer, window) => {
                self.shown_page(self.rib.not_exported_page(peer, window))
            }
            RibQuery::RoutesFor(prefix) => self.shown(self.rib.routes_for(&prefix.trunc())),
            RibQuery::Lookup(address) => self.shown(
                self.rib
                    .longest_match(address)
                    .map(|prefix| self.rib.routes_for(&prefix))
                    .unwrap_or_default(),
            ),
        }
    }

    /// Routes as the looking glass and the API show them: each accepted route with the
    /// informational RPKI (and ASPA) state communities of [`crate::rpki::informational`]
    /// added. Only these views get them; exports never do.
    fn shown(&self, mut routes: Vec<crate::rib::RouteView>) -> RibReply {
        if let Some(policy) = &self.fabric.policy.rpki {
            for route in routes.iter_mut().filter(|route| route.filtered.is_none()) {
                let tags = crate::rpki::informational(
                    &route.prefix,
                    &route.attributes,
                    self.rpki.as_deref(),
                    policy,
                    self.route_server_asn,
                );
                let mut attributes = vixp_bgp::Attributes::clone(&route.attributes);
                attributes.large_communities.extend(tags);
                route.attributes = Arc::new(attributes);
            }
        }
        RibReply::Routes(routes)
    }

    /// A page as [`Self::shown`] shows its routes (only the page's routes are touched).
    fn shown_page(&self, page: RoutePage) -> RibReply {
        match self.shown(page.routes) {
            RibReply::Routes(routes) => RibReply::Page(page.total, routes),
            other => other,
        }
    }

    fn update_gauges(&mut self) {
        self.rib.collect_garbage();
        let mut series = Vec::new();
        for (peer, reason, count) in self.rib.filtered_by_reason() {
            let Some(neighbor) = self.neighbors.get(index(peer)) else {
                continue;
            };
            let labels = FilteredLabels {
                member: neighbor.name.clone(),
                family: neighbor.family.label().to_string(),
                reason: reason.to_string(),
            };
            self.metrics
                .routes_filtered
                .get_or_create(&labels)
                .set(saturating_i64(count));
            series.push(labels);
        }
        for stale in self
            .filtered_series
            .iter()
            .filter(|old| !series.contains(old))
        {
            self.metrics.routes_filtered.get_or_create(stale).set(0);
        }
        self.filtered_series = series;
        let totals = self.rib.totals();
        self.metrics
            .rib_prefixes
            .set(saturating_i64(totals.prefixes));
        self.metrics.rib_paths.set(saturating_i64(totals.paths));
        self.metrics
            .rib_attribute_sets
            .set(saturating_i64(totals.attribute_sets));
        for neighbor in &self.neighbors {
            if let Some(member) = self.fabric.members.get(neighbor.member) {
                let limit = match neighbor.family {
                    Family::Ipv4 => member.max_prefix.ipv4,
                    Family::Ipv6 => member.max_prefix.ipv6,
                };
                self.metrics
                    .max_prefix_limit
                    .get_or_create(&SessionLabels {
                        member: neighbor.name.clone(),
                        family: neighbor.family.label().to_string(),
                    })
                    .set(i64::from(limit));
            }
            let counts = self.rib.counts(neighbor.id, neighbor.family);
            let labels = SessionLabels {
                member: neighbor.name.clone(),
                family: neighbor.family.label().to_string(),
            };
            self.metrics
                .prefixes_received
                .get_or_create(&labels)
                .set(saturating_i64(counts.received));
            self.metrics
                .prefixes_accepted
                .get_or_create(&labels)
                .set(saturating_i64(counts.accepted));
            self.metrics
                .prefixes_filtered
                .get_or_create(&labels)
                .set(saturating_i64(counts.filtered));
            self.metrics
                .prefixes_advertised
                .get_or_create(&labels)
                .set(saturating_i64(counts.advertised));
        }
    }
}

/// The import policy's view of each neighbor slot's member.
fn policy_neighbors(fabric: &Fabric, neighbors: &[NeighborConfig]) -> Vec<Neighbor> {
    neighbors
        .iter()
        .map(|neighbor| {
            fabric.members.get(neighbor.member).map_or_else(
                || Neighbor {
                    name: Arc::from(neighbor.name.as_str()),
                    asn: vixp_fabric::Asn(neighbor.asn),
                    addresses: vec![neighbor.address],
                    same_asn_addresses: vec![neighbor.address],
                    irr: None,
                    rpki: None,
                    blackhole: false,
                },
                |member| Neighbor::new(member, &fabric.members),
            )
        })
        .collect()
}

fn index(peer: PeerId) -> usize {
    usize::try_from(peer.0).unwrap_or(usize::MAX)
}

fn saturating_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
