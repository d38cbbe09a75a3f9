//! The route server's RIB: every path from every neighbor, kept per prefix in preference order,
//! and what each client still has to be told. Sans-IO plain data: it owns no sockets, tasks or
//! clocks, and never encodes messages.
//!
//! RFC 7947 route server semantics live here: paths are stored as received (the next hop, AS
//! path and MED pass unchanged), a path is never exported to the member it came from, and the
//! best path is chosen per client, so a client whose own route is the overall best receives the
//! best path it is allowed to have (RFC 7947 section 2.3.2.1, no path hiding).
//!
//! There is no per-client Adj-RIB-Out. A client's export is a pure function of the sorted paths
//! (the first path not from the client's own member). A change that alters some client's export
//! goes into one shared change log, naming exactly which clients it concerns; each client reads
//! the log through its own cursor at the pace its session drains, and is sent its current choice
//! for each prefix it reads. A new or refreshed client first walks the whole table. Memory is one
//! log entry per change, shared by all clients, instead of one entry per change per client.

pub(crate) mod actions;
pub(crate) mod best;
mod intern;
mod log;
mod page;
mod well_known;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;
use vixp_bgp::{Attributes, Family, Prefix, Update};

use crate::policy::{Reason, Verdict};

pub use best::{Source, compare};
pub use intern::Interner;
pub use log::{Change, ChangeLog};
pub use page::{RoutePage, Window};
pub use well_known::WellKnown;

/// How far (in log entries) a client may fall behind before its session is reset: a client that
/// stops reading must not pin the shared log for ever. The limit grows with the table.
pub const MIN_LAG_LIMIT: usize = 1 << 20;

/// Identifies one neighbor session slot (a member over one transport family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u32);

impl PeerId {
    fn index(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// What the RIB knows about a neighbor whose session is established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Index of the member in the fabric. Paths never go back to the same member, whichever of
    /// its sessions they came from.
    pub member: usize,
    /// The neighbor's ASN.
    pub asn: u32,
    /// The neighbor's BGP identifier.
    pub router_id: Ipv4Addr,
    /// The neighbor's transport address.
    pub address: IpAddr,
    /// Families negotiated on the session: accepted from it and exported to it.
    pub families: Vec<Family>,
}

/// The paths of one prefix, best first. Most prefixes at an exchange have one path, which is
/// kept inline (no allocation of its own).
type Paths = SmallVec<[Path; 1]>;

/// One stored path: 16 bytes.
#[derive(Debug, Clone)]
struct Path {
    peer: PeerId,
    member: u32,
    attributes: Arc<Attributes>,
}

/// Per-family counters of one neighbor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// Prefixes the neighbor currently announces to us (Adj-RIB-In): accepted plus filtered.
    pub received: usize,
    /// Prefixes the import policy accepted (candidates for export).
    pub accepted: usize,
    /// Prefixes the import policy refused (kept with their reason, never exported).
    pub filtered: usize,
    /// Prefixes the client is (or is about to be) told about (its Adj-RIB-Out, derived).
    pub advertised: usize,
}

#[derive(Debug)]
struct PeerState {
    info: PeerInfo,
    member: u32,
    /// Accepted paths per family.
    received: [usize; 2],
    /// Refused routes per family.
    filtered: [usize; 2],
    /// Next log entry to read.
    cursor: u64,
    /// Prefixes still to send from a full-table walk (new session or route refresh).
    walk: Vec<Prefix>,
}

/// Work for one client: routes to announce, grouped by shared attributes and family, and
/// prefixes to withdraw.
#[derive(Debug, Default, Clone)]
pub struct Export {
    /// Announcements: every prefix in a group has the same family.
    pub announce: Vec<(Arc<Attributes>, Vec<Prefix>)>,
    /// Withdrawals, any family.
    pub withdraw: Vec<Prefix>,
}

impl Export {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }

    /// Number of prefixes in the export.
    pub fn prefix_count(&self) -> usize {
        self.withdraw.len()
            + self
                .announce
                .iter()
                .map(|(_, prefixes)| prefixes.len())
                .sum::<usize>()
    }
}

/// A stored route as shown by queries.
#[derive(Debug, Clone)]
pub struct RouteView {
    /// The prefix.
    pub prefix: Prefix,
    /// The neighbor it came from.
    pub peer: PeerId,
    /// Its attributes, as received.
    pub attributes: Arc<Attributes>,
    /// Whether it is the overall best path for the prefix.
    pub best: bool,
    /// Why the import policy refused it (`None`: accepted).
    pub filtered: Option<Reason>,
    /// Why it is not exported to the neighbor asked about (only in not-exported listings).
    pub withheld: Option<String>,
}

/// What a re-evaluation (policy reload) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reevaluation {
    /// Stored routes judged again (accepted and refused).
    pub routes: usize,
    /// Routes refused before and accepted now (announced to clients).
    pub accepted: usize,
    /// Routes accepted before and refused now (withdrawn from clients).
    pub refused: usize,
}

/// Totals for the whole RIB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RibTotals {
    /// Distinct prefixes.
    pub prefixes: usize,
    /// Stored paths.
    pub paths: usize,
    /// Distinct attribute sets.
    pub attribute_sets: usize,
    /// Change log entries not yet read by every client.
    pub pending_changes: usize,
    /// Routes refused by the import policy.
    pub filtered: usize,
}

/// Identity of a path as a client's choice: which neighbor, and the address of its shared
/// attribute set (unique while the set is alive; the interner keeps equal sets in one
/// allocation). Two choices are the same export when these are equal.
type Choice = Option<(PeerId, usize)>;

fn identity(path: &Path) -> (PeerId, usize) {
    (path.peer, Arc::as_ptr(&path.attributes) as usize)
}

/// The export of a prefix to a client of `member`: the most preferred path that did not come
/// from that member (RFC 7947 section 2.3.2.1). Ignores action communities: see [`choose_for`].
fn choose(paths: &[Path], member: u32) -> Option<&Path> {
    paths.iter().find(|path| path.member != member)
}

/// Who a client is, for export decisions.
#[derive(Debug, Clone, Copy)]
struct Client {
    member: u32,
    asn: u32,
}

/// The export of a prefix to `client`: the most preferred path not from its own member and not
/// withheld from it by the sender's action communities, so a client excluded from the best path
/// gets the best one it may have (RFC 7947 section 2.3.2.1, no path hiding). `rs` is the route
/// server's ASN (0: action communities are not interpreted).
fn choose_for(paths: &[Path], client: Client, rs: u32) -> Option<&Path> {
    paths.iter().find(|path| {
        path.member != client.member
            && (rs == 0
                || !actions::has_actions(&path.attributes, rs)
                || actions::allowed(&path.attributes, rs, client.asn))
    })
}

/// The best path's member and the choices that matter: the best path (what everyone else gets)
/// and the best path from another member (what the best path's member gets).
fn summary(paths: &[Path]) -> Option<(u32, Choice, Choice)> {
    let top = paths.first()?;
    Some((
        top.member,
        Some(identity(top)),
        choose(paths, top.member).map(identity),
    ))
}

/// If every path comes from one member, that member (it is the one client without an export).
fn sole_member(paths: &[Path]) -> Option<u32> {
    let first = paths.first()?.member;
    paths
        .iter()
        .all(|path| path.member == first)
        .then_some(first)
}

fn family_index(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

/// The route server RIB. See the module documentation.
#[derive(Debug, Default)]
pub struct Rib {
    interner: Interner,
    table: HashMap<Prefix, Paths, FxBuildHasher>,
    peers: Vec<Option<PeerState>>,
    log: ChangeLog,
    paths: usize,
    prefixes_per_family: [usize; 2],
    /// Per member: prefixes whose every path is that member's (it receives no export for them).
    sole: HashMap<u32, [usize; 2], FxBuildHasher>,
    /// Clients that fell too far behind and must be reset.
    lagging: Vec<PeerId>,
    /// Lag limit in log entries; 0 means [`MIN_LAG_LIMIT`] or twice the table, whichever is more.
    lag_limit: usize,
    /// Routes refused by the import policy, kept with their reason (Adj-RIB-In, RFC 7947
    /// section 2.3.1: refused routes are never exported).
    rejected: HashMap<(PeerId, Prefix), (Arc<Attributes>, Reason), FxBuildHasher>,
    /// The route server's ASN, the global part of action communities (0: not interpreted).
    route_server_asn: u32,
    /// Well-known behaviour on export (BLACKHOLE).
    well_known: WellKnown,
}

impl Rib {
    /// An empty RIB.
    pub fn new() -> Rib {
        Rib::default()
    }

    /// Interprets Euro-IX action communities addressed to the route server `asn`.
    pub fn set_route_server_asn(&mut self, asn: u32) {
        self.route_server_asn = asn;
    }

    /// Sets the exchange's BLACKHOLE next hops (`policy.blackhole`), used from the next export
    /// on.
    pub fn set_blackhole(&mut self, blackhole: vixp_fabric::BlackholePolicy) {
        self.well_known.blackhole = blackhole;
    }

    /// An empty RIB that resets clients more than `limit` log entries behind.
    pub fn with_lag_limit(limit: usize) -> Rib {
        Rib {
            lag_limit: limit,
            ..Rib::default()
        }
    }

    fn peer(&self, peer: PeerId) -> Option<&PeerState> {
        self.peers.get(peer.index()).and_then(Option::as_ref)
    }

    fn peer_mut(&mut self, peer: PeerId) -> Option<&mut PeerState> {
        self.peers.get_mut(peer.index()).and_then(Option::as_mut)
    }

    /// Registers a neighbor whose session just became established and schedules the full
    /// table for it.
    pub fn peer_up(&mut self, peer: PeerId, info: PeerInfo) {
        self.peer_down(peer);
        let index = peer.index();
        if self.peers.len() <= index {
            self.peers.resize_with(index + 1, || None);
        }
        let member = u32::try_from(info.member).unwrap_or(u32::MAX);
        let families = info.families.clone();
        self.peers[index] = Some(PeerState {
            info,
            member,
            received: [0; 2],
            filtered: [0; 2],
            cursor: self.log.end(),
            walk: Vec::new(),
        });
        for family in families {
            self.refresh(peer, family);
        }
    }

    /// Removes a neighbor: withdraws all its paths (the change reaches every other client) and
    /// forgets its export state. Does nothing for an unknown neighbor.
    pub fn peer_down(&mut self, peer: PeerId) {
        if self.peer(peer).is_none() {
            return;
        }
        let prefixes: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(_, paths)| paths.iter().any(|path| path.peer == peer))
            .map(|(prefix, _)| *prefix)
            .collect();
        for prefix in prefixes {
            self.change(prefix, peer, None);
        }
        self.rejected.retain(|(from, _), _| *from != peer);
        if let Some(slot) = self.peers.get_mut(peer.index()) {
            *slot = None;
        }
        self.trim();
    }

    /// Applies an UPDATE received from `peer`, judging each announced route with `import`
    /// (the import policy). Accepted routes become candidates for export; refused ones are kept
    /// with their reason and replace any earlier accepted path of the same prefix. Prefixes of
    /// families not negotiated with the peer are ignored (RFC 4760 section 6); returns how many
    /// were ignored.
    pub fn update(
        &mut self,
        peer: PeerId,
        update: Update,
        import: &dyn Fn(&Prefix, &Attributes) -> Verdict,
    ) -> usize {
        let Some(state) = self.peer(peer) else {
            return 0;
        };
        let families = state.info.families.clone();
        let mut ignored = 0;
        for prefix in update.withdrawn {
            if families.contains(&Family::of(&prefix)) {
                self.change(prefix, peer, None);
                self.unreject(peer, prefix);
            } else {
                ignored += 1;
            }
        }
        for announcement in update.announcements {
            let attributes = self.interner.intern(announcement.attributes);
            for prefix in announcement.prefixes {
                if !families.contains(&Family::of(&prefix)) {
                    ignored += 1;
                    continue;
                }
                match import(&prefix, &attributes) {
                    Verdict::Accept => {
                        self.unreject(peer, prefix);
                        self.change(prefix, peer, Some(Arc::clone(&attributes)));
                    }
                    Verdict::Reject(reason) => {
                        self.change(prefix, peer, None);
                        self.reject(peer, prefix, Arc::clone(&attributes), reason);
                    }
                }
            }
            self.interner.release(attributes);
        }
        self.check_lag();
        ignored
    }

    /// Judges every stored route of `peer` again with `import` (a policy reload): routes that
    /// became acceptable are announced, routes that became unacceptable are withdrawn.
    pub fn reevaluate(&mut self, peer: PeerId, import: &dyn Fn(&Prefix, &Attributes) -> Verdict) {
        self.reevaluate_peers(&[peer], &|_, prefix, attributes| import(prefix, attributes));
    }

    /// Judges every stored route (accepted and refused) of each of `peers` again with `import`,
    /// in one pass over the table (a policy reload). Only routes whose verdict or reason
    /// changed are touched, so clients are sent only the differences: routes that became
    /// acceptable are announced, routes that became unacceptable are withdrawn.
    pub fn reevaluate_peers(
        &mut self,
        peers: &[PeerId],
        import: &dyn Fn(PeerId, &Prefix, &Attributes) -> Verdict,
    ) -> Reevaluation {
        let mut wanted = vec![false; self.peers.len()];
        for peer in peers {
            if let Some(flag) = wanted.get_mut(peer.index()) {
                *flag = true;
            }
        }
        let is_wanted = |peer: PeerId| wanted.get(peer.index()).copied().unwrap_or(false);
        let mut routes: Vec<(PeerId, Prefix, Arc<Attributes>, bool)> = Vec::new();
        for (prefix, paths) in &self.table {
            for path in paths {
                if is_wanted(path.peer) {
                    routes.push((path.peer, *prefix, Arc::clone(&path.attributes), true));
                }
            }
        }
        for ((peer, prefix), (attributes, _)) in &self.rejected {
            if is_wanted(*peer) {
                routes.push((*peer, *prefix, Arc::clone(attributes), false));
            }
        }
        let mut outcome = Reevaluation {
            routes: routes.len(),
            ..Reevaluation::default()
        };
        for (peer, prefix, attributes, accepted) in routes {
            match import(peer, &prefix, &attributes) {
                Verdict::Accept => {
                    if !accepted {
                        self.unreject(peer, prefix);
                        self.change(prefix, peer, Some(attributes));
                        outcome.accepted += 1;
                    }
                }
                Verdict::Reject(reason) => {
                    if accepted {
                        self.change(prefix, peer, None);
                        outcome.refused += 1;
                    } else if self
                        .rejected
                        .get(&(peer, prefix))
                        .is_some_and(|(_, old)| *old == reason)
                    {
                        continue;
                    }
                    self.reject(peer, prefix, attributes, reason);
                }
            }
        }
        self.check_lag();
        outcome
    }

    fn reject(
        &mut self,
        peer: PeerId,
        prefix: Prefix,
        attributes: Arc<Attributes>,
        reason: Reason,
    ) {
        let family = family_index(Family::of(&prefix));
        if self
            .rejected
            .insert((peer, prefix), (attributes, reason))
            .is_none()
            && let Some(state) = self.peer_mut(peer)
        {
            state.filtered[family] += 1;
        }
    }

    fn unreject(&mut self, peer: PeerId, prefix: Prefix) {
        let family = family_index(Family::of(&prefix));
        if let Some((attributes, _)) = self.rejected.remove(&(peer, prefix)) {
            self.interner.release(attributes);
            if let Some(state) = self.peer_mut(peer) {
                state.filtered[family] = state.filtered[family].saturating_sub(1);
            }
        }
    }

    /// Routes from `peer` refused by the import policy, sorted by prefix.
    pub fn filtered_from(&self, peer: PeerId) -> Vec<RouteView> {
        self.filtered_from_page(peer, Window::ALL).routes
    }

    /// Accepted routes from other members that `peer` does not receive because their senders'
    /// action communities withhold them, each with the reason, sorted by prefix.
    pub fn not_exported_to(&self, peer: PeerId) -> Vec<RouteView> {
        self.not_exported_page(peer, Window::ALL).routes
    }

    /// Refused routes per member-level reason label, for metrics: (peer, label, count).
    pub fn filtered_by_reason(&self) -> Vec<(PeerId, &'static str, usize)> {
        let mut counts: HashMap<(PeerId, &'static str), usize, FxBuildHasher> = HashMap::default();
        for ((peer, _), (_, reason)) in &self.rejected {
            *counts.entry((*peer, reason.label())).or_default() += 1;
        }
        let mut list: Vec<(PeerId, &'static str, usize)> = counts
            .into_iter()
            .map(|((peer, label), count)| (peer, label, count))
            .collect();
        list.sort_unstable();
        list
    }

    /// Schedules every prefix of `family` the client may receive to be sent again (route
    /// refresh, RFC 2918 section 4, or a new session).
    pub fn refresh(&mut self, peer: PeerId, family: Family) {
        let Some(state) = self.peer(peer) else {
            return;
        };
        if !state.info.families.contains(&family) {
            return;
        }
        let client = Client {
            member: state.member,
            asn: state.info.asn,
        };
        let rs = self.route_server_asn;
        let walk: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(prefix, paths)| {
                Family::of(prefix) == family && choose_for(paths, client, rs).is_some()
            })
            .map(|(prefix, _)| *prefix)
            .collect();
        if let Some(state) = self.peer_mut(peer) {
            state.walk.extend(walk);
        }
    }

    /// Takes up to `max` prefixes of work for the client and returns what to send for them now:
    /// first any full-table walk, then the change log. `None` when there is nothing to send.
    pub fn take_export(&mut self, peer: PeerId, max: usize) -> Option<Export> {
        let mut export = Export::default();
        let mut groups: HashMap<(usize, Family), usize, FxBuildHasher> = HashMap::default();
        let mut budget = max;
        let index = peer.index();
        let rs = self.route_server_asn;
        let state = self.peers.get_mut(index)?.as_mut()?;
        let client = Client {
            member: state.member,
            asn: state.info.asn,
        };
        let families = state.info.families.clone();
        let interner = &mut self.interner;
        // The attributes a client is sent: as stored, or cleaned of action communities with
        // prepends and NO_EXPORT applied (interned, so clients with the same view share it).
        let mut view = |path: &Path| {
            if rs != 0 && actions::has_actions(&path.attributes, rs) {
                interner.intern(actions::export_view(&path.attributes, rs, client.asn))
            } else {
                Arc::clone(&path.attributes)
            }
        };
        while budget > 0 {
            let Some(prefix) = state.walk.pop() else {
                break;
            };
            budget -= 1;
            if let Some(path) = self
                .table
                .get(&prefix)
                .and_then(|paths| choose_for(paths, client, rs))
            {
                add(&mut export, &mut groups, prefix, view(path));
            }
        }
        while budget > 0 {
            let Some(change) = self.log.get(state.cursor) else {
                break;
            };
            state.cursor += 1;
            if !change.concerns(client.member) || !families.contains(&Family::of(&change.prefix)) {
                continue;
            }
            budget -= 1;
            let prefix = change.prefix;
            match self
                .table
                .get(&prefix)
                .and_then(|paths| choose_for(paths, client, rs))
            {
                Some(path) => add(&mut export, &mut groups, prefix, view(path)),
                None => export.withdraw.push(prefix),
            }
        }
        self.well_known.apply(&mut export, interner, rs);
        self.trim();
        (!export.is_empty()).then_some(export)
    }

    /// Whether the client still has work pending.
    pub fn has_pending(&self, peer: PeerId) -> bool {
        self.peer(peer)
            .is_some_and(|state| !state.walk.is_empty() || state.cursor < self.log.end())
    }

    /// Clients that fell so far behind that their session must be reset (they get the full
    /// table when it comes back). Taking them clears the list.
    pub fn take_lagging(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.lagging)
    }

    /// Counters of a neighbor for one family.
    pub fn counts(&self, peer: PeerId, family: Family) -> FamilyCounts {
        let Some(state) = self.peer(peer) else {
            return FamilyCounts::default();
        };
        let index = family_index(family);
        let advertised = if state.info.families.contains(&family) {
            let sole = self
                .sole
                .get(&state.member)
                .map_or(0, |counts| counts[index]);
            self.prefixes_per_family[index].saturating_sub(sole)
        } else {
            0
        };
        FamilyCounts {
            received: state.received[index] + state.filtered[index],
            accepted: state.received[index],
            filtered: state.filtered[index],
            advertised,
        }
    }

    /// Totals for the whole RIB.
    pub fn totals(&self) -> RibTotals {
        RibTotals {
            prefixes: self.table.len(),
            paths: self.paths,
            attribute_sets: self.interner.len(),
            pending_changes: self.log.len(),
            filtered: self.rejected.len(),
        }
    }

    /// Frees attribute sets that were still held by exports in flight when their last route
    /// went. Cheap (one pass over the distinct sets); the driver calls it periodically.
    pub fn collect_garbage(&mut self) {
        self.interner.sweep();
    }

    /// Routes received from `peer`, sorted by prefix.
    pub fn routes_from(&self, peer: PeerId) -> Vec<RouteView> {
        self.routes_from_page(peer, Window::ALL).routes
    }

    /// Every path for exactly `prefix`, best first.
    pub fn routes_for(&self, prefix: &Prefix) -> Vec<RouteView> {
        self.table
            .get(prefix)
            .map(|paths| {
                paths
                    .iter()
                    .enumerate()
                    .map(|(index, path)| RouteView {
                        prefix: *prefix,
                        peer: path.peer,
                        attributes: Arc::clone(&path.attributes),
                        best: index == 0,
                        filtered: None,
                        withheld: None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The most specific stored prefix covering `address`, if any (longest-prefix match by
    /// probing each length, at most 33 or 129 lookups).
    pub fn longest_match(&self, address: IpAddr) -> Option<Prefix> {
        let max = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (0..=max).rev().find_map(|length| {
            let prefix = Prefix::new(address, length).ok()?.trunc();
            self.table.contains_key(&prefix).then_some(prefix)
        })
    }

    fn source(&self, peer: PeerId) -> Source {
        self.peer(peer).map_or(
            Source {
                router_id: Ipv4Addr::UNSPECIFIED,
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            },
            |state| Source {
                router_id: state.info.router_id,
                address: state.info.address,
            },
        )
    }

    /// Drops log entries every client has read.
    fn trim(&mut self) {
        let oldest = self
            .peers
            .iter()
            .flatten()
            .map(|state| state.cursor)
            .min()
            .unwrap_or_else(|| self.log.end());
        self.log.trim(oldest);
    }

    /// Marks clients that are too far behind the log, and moves their cursors to the end so the
    /// log can be trimmed; the driver resets their sessions.
    fn check_lag(&mut self) {
        let limit = if self.lag_limit > 0 {
            self.lag_limit
        } else {
            MIN_LAG_LIMIT.max(self.table.len().saturating_mul(2))
        };
        if self.log.len() <= limit {
            return;
        }
        let end = self.log.end();
        let threshold = end.saturating_sub(limit as u64);
        for (index, slot) in self.peers.iter_mut().enumerate() {
            if let Some(state) = slot
                && state.cursor < threshold
            {
                state.cursor = end;
                state.walk.clear();
                let peer = PeerId(u32::try_from(index).unwrap_or(u32::MAX));
                if !self.lagging.contains(&peer) {
                    self.lagging.push(peer);
                }
            }
        }
        self.trim();
    }

    /// Replaces (or with `None` removes) `peer`'s path for `prefix`, keeps the paths sorted, and
    /// logs the change when it alters some client's export.
    fn change(&mut self, prefix: Prefix, peer: PeerId, attributes: Option<Arc<Attributes>>) {
        let family = family_index(Family::of(&prefix));
        let source = self.source(peer);
        let member = self.peer(peer).map_or(u32::MAX, |state| state.member);
        let peers = &self.peers;
        let rs = self.route_server_asn;
        let restricted = |paths: &Paths| {
            rs != 0
                && paths
                    .iter()
                    .any(|path| actions::has_actions(&path.attributes, rs))
        };
        let paths = self.table.entry(prefix).or_default();
        let restricted_before = restricted(paths);
        let before = summary(paths);
        let sole_before = sole_member(paths);
        let was_empty = paths.is_empty();

        let mut released = None;
        let mut delta: isize = 0;
        if let Some(index) = paths.iter().position(|path| path.peer == peer) {
            released = Some(paths.remove(index).attributes);
            delta -= 1;
        }
        if let Some(attributes) = attributes {
            let source_of = |other: PeerId| {
                peers
                    .get(other.index())
                    .and_then(Option::as_ref)
                    .map_or(source, |state| Source {
                        router_id: state.info.router_id,
                        address: state.info.address,
                    })
            };
            let position = paths.partition_point(|existing| {
                compare(
                    &existing.attributes,
                    source_of(existing.peer),
                    &attributes,
                    source,
                )
                .is_le()
            });
            paths.insert(
                position,
                Path {
                    peer,
                    member,
                    attributes,
                },
            );
            delta += 1;
        }
        let after = summary(paths);
        let restricted_after = restricted(paths);
        let sole_after = sole_member(paths);
        let now_empty = paths.is_empty();
        if now_empty {
            self.table.remove(&prefix);
        }

        self.paths = self.paths.saturating_add_signed(delta);
        if let Some(state) = self.peer_mut(peer) {
            state.received[family] = state.received[family].saturating_add_signed(delta);
        }
        match (was_empty, now_empty) {
            (true, false) => self.prefixes_per_family[family] += 1,
            (false, true) => {
                self.prefixes_per_family[family] =
                    self.prefixes_per_family[family].saturating_sub(1);
            }
            _ => {}
        }
        if sole_before != sole_after {
            if let Some(member) = sole_before {
                let counts = self.sole.entry(member).or_default();
                counts[family] = counts[family].saturating_sub(1);
            }
            if let Some(member) = sole_after {
                self.sole.entry(member).or_default()[family] += 1;
            }
        }
        if let Some(old) = released {
            self.interner.release(old);
        }
        if restricted_before || restricted_after {
            // Action communities make a client's export depend on who it is: every client
            // reads this change and is sent its own current choice.
            self.log.push(Change {
                prefix,
                others: true,
                named: [None, None],
            });
        } else if let Some(change) = concerned(prefix, before, after) {
            self.log.push(change);
        }
    }
}

/// The log entry for a change from `before` to `after` (see [`summary`]), or `None` when no
/// client's export changed.
fn concerned(
    prefix: Prefix,
    before: Option<(u32, Choice, Choice)>,
    after: Option<(u32, Choice, Choice)>,
) -> Option<Change> {
    let top = |summary: Option<(u32, Choice, Choice)>| summary.and_then(|(_, top, _)| top);
    let choice_of = |summary: Option<(u32, Choice, Choice)>, member: u32| match summary {
        Some((top_member, top, alternative)) => {
            if top_member == member {
                alternative
            } else {
                top
            }
        }
        None => None,
    };
    let others = top(before) != top(after);
    let mut named = [None, None];
    let members = [before.map(|(m, _, _)| m), after.map(|(m, _, _)| m)];
    for (slot, member) in members.into_iter().enumerate() {
        let Some(member) = member else { continue };
        if slot == 1 && members[0] == Some(member) {
            continue;
        }
        let changed = choice_of(before, member) != choice_of(after, member);
        named[slot] = Some((member, changed));
    }
    let any = others || named.iter().flatten().any(|(_, changed)| *changed);
    any.then_some(Change {
        prefix,
        others,
        named,
    })
}

fn add(
    export: &mut Export,
    groups: &mut HashMap<(usize, Family), usize, FxBuildHasher>,
    prefix: Prefix,
    attributes: Arc<Attributes>,
) {
    let key = (Arc::as_ptr(&attributes) as usize, Family::of(&prefix));
    // Consecutive prefixes usually share an attribute set: skip the lookup then.
    if let Some(last) = export.announce.last_mut()
        && Arc::as_ptr(&last.0) as usize == key.0
        && last
            .1
            .last()
            .is_some_and(|previous| Family::of(previous) == key.1)
    {
        last.1.push(prefix);
        return;
    }
    let index = *groups.entry(key).or_insert_with(|| {
        export.announce.push((attributes, Vec::new()));
        export.announce.len() - 1
    });
    export.announce[index].1.push(prefix);
}

#[cfg(test)]
mod tests;
