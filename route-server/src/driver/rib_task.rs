//! The task that owns the [`Rib`]: applies neighbor events in arrival order, hands each client
//! its exports at the pace it takes them, and answers queries. Must not touch sockets.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, info, warn};
use vixp_bgp::{CeaseSubcode, Family, Prefix, Update};
use vixp_fabric::{Fabric, MaxPrefixAction, Member};

use super::NeighborConfig;
use crate::max_prefix;
use crate::metrics::{FilteredLabels, Metrics, SessionLabels};
use crate::policy::{self, Neighbor};
use crate::rib::{
    Export, FamilyCounts, PeerId, PeerInfo, Reevaluation, Rib, RibTotals, RoutePage, RouteView,
    Window,
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
    /// A new fabric file: take on and drop neighbors, and judge stored routes again.
    Reload(Box<Reconfigure>),
    /// The RPKI payload in force changed (`None`: none left): judge every stored route again.
    Rpki(Option<Arc<crate::rpki::VrpSet>>),
}

/// A neighbor slot the RIB task takes on at a reload.
#[derive(Debug)]
pub struct NewNeighbor {
    /// The slot.
    pub config: NeighborConfig,
    /// Reaches the slot's neighbor task.
    pub exports: mpsc::Sender<TaggedExport>,
    /// Tells the slot's neighbor task to reset its session.
    pub reset: mpsc::UnboundedSender<Reset>,
}

/// A reload as the RIB task applies it (planned by the driver, see `reload.rs`).
#[derive(Debug)]
pub struct Reconfigure {
    /// The fabric now in force.
    pub fabric: Arc<Fabric>,
    /// Every slot that stays, with its configuration as of the new fabric.
    pub kept: Vec<NeighborConfig>,
    /// Slots that start now.
    pub added: Vec<NewNeighbor>,
    /// Slots that end now: their routes are withdrawn from every client and forgotten.
    pub removed: Vec<PeerId>,
    /// Slots whose stored routes are judged again (`None`: every slot).
    pub reevaluate: Option<Vec<PeerId>>,
    /// Told what was done once the RIB reflects the new fabric.
    pub done: oneshot::Sender<Reevaluation>,
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
    /// The slot is gone from the fabric (or its member's address or ASN changed): end the
    /// session with this Cease subcode (RFC 4486: 3 Peer De-configured, 6 Other Configuration
    /// Change) and stop the task.
    Remove(CeaseSubcode),
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
    /// Per neighbor counts (indexed by `PeerId`; zero for slots that are gone) and RIB totals.
    Counts(Vec<FamilyCounts>, RibTotals),
    /// Routes.
    Routes(Vec<RouteView>),
    /// A page of a listing: how many routes the whole listing holds, and the page's routes.
    Page(usize, Vec<RouteView>),
}

/// One neighbor slot as the RIB task sees it.
struct Slot {
    config: NeighborConfig,
    /// Position of the slot's member in the fabric in force.
    member: usize,
    /// The import policy's view of the slot's member.
    policy: Neighbor,
    exports: mpsc::Sender<TaggedExport>,
    reset: mpsc::UnboundedSender<Reset>,
    /// Generation of the established session, if any.
    generation: Option<u64>,
    /// Max-prefix thresholds crossed (each acted on once).
    watch: max_prefix::Watch,
}

/// The RIB owner.
pub struct RibTask {
    rib: Rib,
    /// Slots indexed by `PeerId`; `None` once a reload removed the slot (ids are never reused,
    /// so a late event from a removed slot's task finds nothing).
    slots: Vec<Option<Slot>>,
    fabric: Arc<Fabric>,
    /// Label sets of the filtered-by-reason gauge last set, so vanished ones are reset to 0.
    filtered_series: Vec<FilteredLabels>,
    wakeup: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// The RPKI payload in force, handed to every slot's policy view.
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
        let mut rib = Rib::new();
        rib.set_route_server_asn(route_server_asn);
        rib.set_blackhole(fabric.policy.blackhole);
        let mut task = RibTask {
            rib,
            slots: Vec::new(),
            fabric,
            filtered_series: Vec::new(),
            wakeup,
            metrics,
            rpki: None,
            route_server_asn,
        };
        for ((config, exports), reset) in neighbors.into_iter().zip(exports).zip(resets) {
            task.add(NewNeighbor {
                config,
                exports,
                reset,
            });
        }
        task
    }

    /// Takes on a slot; its filtered-by-reason series are listed at zero from the start, so
    /// the family is always there.
    fn add(&mut self, neighbor: NewNeighbor) {
        for reason in crate::policy::Reason::LABELS {
            let labels = FilteredLabels {
                member: neighbor.config.name.clone(),
                family: neighbor.config.family.label().to_string(),
                reason: (*reason).to_string(),
            };
            self.metrics.routes_filtered.get_or_create(&labels).set(0);
            self.filtered_series.push(labels);
        }
        let position = index(neighbor.config.id);
        if self.slots.len() <= position {
            self.slots.resize_with(position + 1, || None);
        }
        let (member, mut policy) = policy_view(&self.fabric, &neighbor.config);
        policy.rpki = self.rpki.clone();
        self.slots[position] = Some(Slot {
            config: neighbor.config,
            member,
            policy,
            exports: neighbor.exports,
            reset: neighbor.reset,
            generation: None,
            watch: max_prefix::Watch::new(),
        });
    }

    fn slot(&self, peer: PeerId) -> Option<&Slot> {
        self.slots.get(index(peer)).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, peer: PeerId) -> Option<&mut Slot> {
        self.slots.get_mut(index(peer)).and_then(Option::as_mut)
    }

    fn live(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().flatten()
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
                if let Some(slot) = self.slot(peer) {
                    let _ = slot.reset.send(Reset::Lagging);
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
                // A slot removed by a reload is never registered again.
                let Some(slot) = self.slot_mut(peer) else {
                    return;
                };
                debug!(peer = peer.0, "session up in RIB");
                slot.watch.reset();
                slot.generation = Some(generation);
                self.rib.peer_up(peer, info);
            }
            RibEvent::Update { peer, update } => {
                let Some(slot) = self.slots.get(index(peer)).and_then(Option::as_ref) else {
                    return;
                };
                let neighbor = &slot.policy;
                let fabric = &self.fabric;
                let import = |prefix: &Prefix, attributes: &vixp_bgp::Attributes| {
                    policy::import(prefix, attributes, neighbor, &fabric.policy, &fabric.lan)
                };
                self.rib.update(peer, update, &import);
                self.check_max_prefix(peer);
            }
            RibEvent::Refresh { peer, family } => self.rib.refresh(peer, family),
            RibEvent::Down { peer } => {
                let Some(slot) = self.slot_mut(peer) else {
                    return;
                };
                slot.generation = None;
                self.rib.peer_down(peer);
            }
            RibEvent::Reload(reconfigure) => self.reconfigure(*reconfigure),
            RibEvent::Rpki(vrps) => self.rpki_changed(vrps),
        }
    }

    /// Applies a reload: removed slots' routes are withdrawn from every client, new slots are
    /// taken on (their sessions start in their own tasks), and the stored routes of the slots
    /// named are judged again with the new policy, so only the differences are sent.
    fn reconfigure(&mut self, reconfigure: Reconfigure) {
        let Reconfigure {
            fabric,
            kept,
            added,
            removed,
            reevaluate,
            done,
        } = reconfigure;
        let old = std::mem::replace(&mut self.fabric, fabric);
        self.rib.set_blackhole(self.fabric.policy.blackhole);
        for peer in removed {
            let Some(slot) = self.slots.get_mut(index(peer)).and_then(Option::take) else {
                continue;
            };
            self.rib.peer_down(peer);
            self.filtered_series.retain(|labels| {
                labels.member != slot.config.name || labels.family != slot.config.family.label()
            });
            info!(member = %slot.config.name, family = slot.config.family.label(),
                "neighbor removed by a reload: its routes are withdrawn");
        }
        for config in kept {
            let (member, mut policy) = policy_view(&self.fabric, &config);
            policy.rpki = self.rpki.clone();
            let limit = self.fabric.members.get(member).map(|m| m.max_prefix);
            if let Some(slot) = self.slot_mut(config.id) {
                let limits_changed = limit != old.members.get(slot.member).map(|m| m.max_prefix);
                slot.member = member;
                slot.policy = policy;
                slot.config = config;
                if limits_changed {
                    slot.watch.reset();
                }
            }
        }
        for neighbor in added {
            self.add(neighbor);
        }
        let peers: Vec<PeerId> = match reevaluate {
            Some(peers) => peers,
            None => self.live().map(|slot| slot.config.id).collect(),
        };
        let peers: Vec<PeerId> = peers
            .into_iter()
            .filter(|peer| {
                self.slot(*peer)
                    .is_some_and(|slot| slot.generation.is_some())
            })
            .collect();
        let slots = &self.slots;
        let fabric = &self.fabric;
        let import = |peer: PeerId, prefix: &Prefix, attributes: &vixp_bgp::Attributes| match slots
            .get(index(peer))
            .and_then(Option::as_ref)
        {
            Some(slot) => policy::import(
                prefix,
                attributes,
                &slot.policy,
                &fabric.policy,
                &fabric.lan,
            ),
            None => policy::Verdict::Accept,
        };
        let outcome = self.rib.reevaluate_peers(&peers, &import);
        for slot in self.live() {
            let _ = slot.reset.send(Reset::Release);
        }
        let up: Vec<PeerId> = self
            .live()
            .filter(|slot| slot.generation.is_some())
            .map(|slot| slot.config.id)
            .collect();
        for peer in up {
            self.check_max_prefix(peer);
        }
        self.update_gauges();
        let _ = done.send(outcome);
    }

    /// New RPKI payload (issue 5 item 2): every established slot's stored routes, accepted and
    /// refused, are judged again, so routes that became invalid are withdrawn from clients and
    /// routes that became valid (or not found) are announced; unchanged ones send nothing.
    fn rpki_changed(&mut self, vrps: Option<Arc<crate::rpki::VrpSet>>) {
        self.rpki = vrps;
        for slot in self.slots.iter_mut().flatten() {
            slot.policy.rpki = self.rpki.clone();
        }
        if self.fabric.policy.rpki.is_none() {
            return;
        }
        let peers: Vec<PeerId> = self
            .live()
            .filter(|slot| slot.generation.is_some())
            .map(|slot| slot.config.id)
            .collect();
        let slots = &self.slots;
        let fabric = &self.fabric;
        let import = |peer: PeerId, prefix: &Prefix, attributes: &vixp_bgp::Attributes| match slots
            .get(index(peer))
            .and_then(Option::as_ref)
        {
            Some(slot) => policy::import(
                prefix,
                attributes,
                &slot.policy,
                &fabric.policy,
                &fabric.lan,
            ),
            None => policy::Verdict::Accept,
        };
        let outcome = self.rib.reevaluate_peers(&peers, &import);
        info!(?outcome, "RPKI payload changed: stored routes judged again");
        self.update_gauges();
    }

    /// Watches the prefixes a member announces in the session's family (accepted and filtered
    /// alike) against its `max_prefix`: logs once when they reach
    /// [`max_prefix::WARNING_PERCENT`] of it; once they go over it, counts the violation and
    /// applies `policy.max_prefix_action`. With `shutdown` or `restart` (RFC 4486 subcode 1)
    /// the member's routes are withdrawn here, before the next export, so no other member is
    /// sent a route of the UPDATE that crossed the limit; the neighbor task ends the session.
    fn check_max_prefix(&mut self, peer: PeerId) {
        let Some(slot) = self.slot(peer) else {
            return;
        };
        let Some(member) = self.fabric.members.get(slot.member) else {
            return;
        };
        let family = slot.config.family;
        let limit = limit_of(member, family);
        let received = self.rib.counts(peer, family).received;
        let Some(crossing) = self
            .slot_mut(peer)
            .and_then(|slot| slot.watch.observe(received, limit))
        else {
            return;
        };
        let Some(slot) = self.slot(peer) else {
            return;
        };
        let name = slot.config.name.clone();
        let reset = slot.reset.clone();
        if crossing == max_prefix::Crossing::Warning {
            warn!(member = %name, family = family.label(), received, limit,
                threshold_percent = max_prefix::WARNING_PERCENT,
                "member reached the warning threshold of its max-prefix limit");
            return;
        }
        let labels = SessionLabels {
            member: name.clone(),
            family: family.label().to_string(),
        };
        self.metrics
            .max_prefix_exceeded
            .get_or_create(&labels)
            .inc();
        let hold_off = match self.fabric.policy.max_prefix_action {
            MaxPrefixAction::Warn => {
                warn!(member = %name, family = family.label(), received, limit,
                    "member over its max-prefix limit (action warn: session kept, routes accepted)");
                return;
            }
            MaxPrefixAction::Shutdown => None,
            MaxPrefixAction::Restart { minutes } => {
                Some(Duration::from_secs(u64::from(minutes) * 60))
            }
        };
        warn!(member = %name, family = family.label(), received, limit,
            "member over its max-prefix limit: routes withdrawn, ending the session");
        self.rib.peer_down(peer);
        let _ = reset.send(Reset::MaxPrefix {
            family,
            limit,
            hold_off,
        });
    }

    /// Hands every client with pending work as many batches as its queue has room for.
    fn flush(&mut self) {
        for slot in self.slots.iter().flatten() {
            let peer = slot.config.id;
            let Some(generation) = slot.generation else {
                continue;
            };
            while slot.exports.capacity() > 0 && self.rib.has_pending(peer) {
                let Some(export) = self.rib.take_export(peer, EXPORT_BATCH) else {
                    break;
                };
                if slot
                    .exports
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
                    .slots
                    .iter()
                    .map(|slot| {
                        slot.as_ref().map_or_else(FamilyCounts::default, |slot| {
                            self.rib.counts(slot.config.id, slot.config.family)
                        })
                    })
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
            let Some(slot) = self.slot(peer) else {
                continue;
            };
            let labels = FilteredLabels {
                member: slot.config.name.clone(),
                family: slot.config.family.label().to_string(),
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
        for slot in self.slots.iter().flatten() {
            let neighbor = &slot.config;
            let labels = SessionLabels {
                member: neighbor.name.clone(),
                family: neighbor.family.label().to_string(),
            };
            let counts = self.rib.counts(neighbor.id, neighbor.family);
            if let Some(member) = self.fabric.members.get(slot.member) {
                let limit = limit_of(member, neighbor.family);
                self.metrics
                    .max_prefix_limit
                    .get_or_create(&labels)
                    .set(i64::from(limit));
                self.metrics
                    .max_prefix_usage_ratio
                    .get_or_create(&labels)
                    .set(max_prefix::usage_ratio(counts.received, limit));
                self.metrics
                    .max_prefix_warning
                    .get_or_create(&labels)
                    .set(i64::from(max_prefix::at_warning(counts.received, limit)));
            }
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

/// The position of a slot's member in `fabric` and the import policy's view of it.
fn policy_view(fabric: &Fabric, config: &NeighborConfig) -> (usize, Neighbor) {
    match fabric
        .members
        .iter()
        .position(|member| member.name == config.name)
    {
        Some(position) => (
            position,
            Neighbor::new(&fabric.members[position], &fabric.members),
        ),
        None => (
            usize::MAX,
            Neighbor {
                name: Arc::from(config.name.as_str()),
                asn: vixp_fabric::Asn(config.asn),
                addresses: vec![config.address],
                same_asn_addresses: vec![config.address],
                rpki: None,
                irr: None,
                blackhole: false,
            },
        ),
    }
}

/// A member's max-prefix limit for one family.
fn limit_of(member: &Member, family: Family) -> u32 {
    match family {
        Family::Ipv4 => member.max_prefix.ipv4,
        Family::Ipv6 => member.max_prefix.ipv6,
    }
}

fn index(peer: PeerId) -> usize {
    usize::try_from(peer.0).unwrap_or(usize::MAX)
}

fn saturating_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
