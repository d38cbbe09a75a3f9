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
//! (`choose`); when a change alters that choice, the prefix goes into the client's dirty set, and
//! the driver drains dirty sets at the pace each client reads. A slow client costs at most one
//! entry per prefix and never holds up the others.

mod best;
mod intern;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use indexmap::IndexSet;
use vixp_bgp::{Attributes, Family, Prefix, Update};

pub use best::{Source, compare};
pub use intern::Interner;

/// Identifies one neighbor session slot (a member over one transport family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u32);

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

/// One stored path.
#[derive(Debug, Clone)]
struct Path {
    peer: PeerId,
    attributes: Arc<Attributes>,
}

/// Per-family counters of one neighbor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// Prefixes the neighbor currently announces to us (Adj-RIB-In).
    pub received: usize,
    /// Prefixes the client is (or is about to be) told about (its Adj-RIB-Out, derived).
    pub advertised: usize,
}

#[derive(Debug)]
struct PeerState {
    info: PeerInfo,
    /// False while the peer is being torn down: it then receives no more exports.
    exporting: bool,
    counts: [FamilyCounts; 2],
    dirty: IndexSet<Prefix>,
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
}

/// Identity of a client's current choice for a prefix: which path (by neighbor and the address
/// of its shared attribute set). Two choices are the same export when these are equal.
type Choice = Option<(PeerId, usize)>;

/// The route server RIB. See the module documentation.
#[derive(Debug, Default)]
pub struct Rib {
    interner: Interner,
    table: HashMap<Prefix, Vec<Path>>,
    peers: HashMap<PeerId, PeerState>,
    paths: usize,
    /// Reused between updates: the clients and their choices before a change.
    scratch: Vec<(PeerId, Choice)>,
}

/// The identity of a shared attribute set: the address of its allocation, which is unique
/// while the set is alive (the interner keeps equal sets in one allocation).
fn attributes_identity(attributes: &Arc<Attributes>) -> usize {
    Arc::as_ptr(attributes) as usize
}

fn family_index(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

impl Rib {
    /// An empty RIB.
    pub fn new() -> Rib {
        Rib::default()
    }

    /// Registers a neighbor whose session just became established and schedules the full
    /// table for it (every prefix it may receive goes into its dirty set).
    pub fn peer_up(&mut self, peer: PeerId, info: PeerInfo) {
        self.peer_down(peer);
        self.peers.insert(
            peer,
            PeerState {
                info,
                exporting: true,
                counts: [FamilyCounts::default(); 2],
                dirty: IndexSet::new(),
            },
        );
        for family in Family::ALL {
            self.refresh(peer, family);
        }
    }

    /// Removes a neighbor: withdraws all its paths (the change reaches every other client) and
    /// forgets what it still had to be told. Does nothing for an unknown neighbor.
    pub fn peer_down(&mut self, peer: PeerId) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.exporting = false;
        state.dirty = IndexSet::new();
        let prefixes: Vec<Prefix> = self
            .table
            .iter()
            .filter(|(_, paths)| paths.iter().any(|path| path.peer == peer))
            .map(|(prefix, _)| *prefix)
            .collect();
        for prefix in prefixes {
            self.change(prefix, peer, None);
        }
        self.peers.remove(&peer);
    }

    /// Applies an UPDATE received from `peer`. Prefixes of families not negotiated with the
    /// peer are ignored (RFC 4760 section 6); returns how many were ignored.
    pub fn update(&mut self, peer: PeerId, update: Update) -> usize {
        let Some(state) = self.peers.get(&peer) else {
            return 0;
        };
        let families = state.info.families.clone();
        let mut ignored = 0;
        for prefix in update.withdrawn {
            if families.contains(&Family::of(&prefix)) {
                self.change(prefix, peer, None);
            } else {
                ignored += 1;
            }
        }
        for announcement in update.announcements {
            let attributes = self.interner.intern(announcement.attributes);
            for prefix in announcement.prefixes {
                if families.contains(&Family::of(&prefix)) {
                    self.change(prefix, peer, Some(Arc::clone(&attributes)));
                } else {
                    ignored += 1;
                }
            }
            self.interner.release(attributes);
        }
        ignored
    }

    /// Schedules every prefix of `family` the client may receive to be sent again (route
    /// refresh, RFC 2918 section 4, or a new session).
    pub fn refresh(&mut self, peer: PeerId, family: Family) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        if !state.info.families.contains(&family) {
            return;
        }
        let member = state.info.member;
        let mut dirty = Vec::new();
        for (prefix, paths) in &self.table {
            if Family::of(prefix) == family && self.choose_for_member(paths, member).is_some() {
                dirty.push(*prefix);
            }
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.counts[family_index(family)].advertised = dirty.len();
            state.dirty.extend(dirty);
        }
    }

    /// Takes up to `max` prefixes from the client's dirty set and returns what to send for them
    /// now. `None` when there is nothing to send.
    pub fn take_export(&mut self, peer: PeerId, max: usize) -> Option<Export> {
        let state = self.peers.get_mut(&peer)?;
        if state.dirty.is_empty() || !state.exporting {
            return None;
        }
        let member = state.info.member;
        let count = max.min(state.dirty.len());
        let start = state.dirty.len() - count;
        let batch: Vec<Prefix> = state.dirty.drain(start..).collect();
        let mut export = Export::default();
        let mut groups: HashMap<(usize, Family), usize> = HashMap::new();
        for prefix in batch {
            let chosen = self
                .table
                .get(&prefix)
                .and_then(|paths| self.choose_for_member(paths, member));
            match chosen {
                Some(path) => {
                    let key = (attributes_identity(&path.attributes), Family::of(&prefix));
                    let index = *groups.entry(key).or_insert_with(|| {
                        export
                            .announce
                            .push((Arc::clone(&path.attributes), Vec::new()));
                        export.announce.len() - 1
                    });
                    export.announce[index].1.push(prefix);
                }
                None => export.withdraw.push(prefix),
            }
        }
        Some(export)
    }

    /// Whether the client still has prefixes to be told about.
    pub fn has_pending(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|state| state.exporting && !state.dirty.is_empty())
    }

    /// Number of prefixes the client still has to be told about.
    pub fn pending(&self, peer: PeerId) -> usize {
        self.peers.get(&peer).map_or(0, |state| state.dirty.len())
    }

    /// Counters of a neighbor for one family.
    pub fn counts(&self, peer: PeerId, family: Family) -> FamilyCounts {
        self.peers
            .get(&peer)
            .map_or_else(FamilyCounts::default, |state| {
                state.counts[family_index(family)]
            })
    }

    /// Totals for the whole RIB.
    pub fn totals(&self) -> RibTotals {
        RibTotals {
            prefixes: self.table.len(),
            paths: self.paths,
            attribute_sets: self.interner.len(),
        }
    }

    /// Frees attribute sets that were still held by exports in flight when their last route
    /// went. Cheap (one pass over the distinct sets); the driver calls it periodically.
    pub fn collect_garbage(&mut self) {
        self.interner.sweep();
    }

    /// Routes received from `peer`, sorted by prefix.
    pub fn routes_from(&self, peer: PeerId) -> Vec<RouteView> {
        let mut routes: Vec<RouteView> = self
            .table
            .iter()
            .filter_map(|(prefix, paths)| {
                paths
                    .iter()
                    .position(|path| path.peer == peer)
                    .map(|index| RouteView {
                        prefix: *prefix,
                        peer,
                        attributes: Arc::clone(&paths[index].attributes),
                        best: index == 0,
                    })
            })
            .collect();
        routes.sort_by_key(|route| route.prefix);
        routes
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

    /// What the client of `member` receives for a prefix: the most preferred path that did not
    /// come from that member (RFC 7947 section 2.3.2.1).
    fn choose_for_member<'a>(&self, paths: &'a [Path], member: usize) -> Option<&'a Path> {
        paths.iter().find(|path| {
            self.peers
                .get(&path.peer)
                .is_some_and(|source| source.info.member != member)
        })
    }

    fn choice(&self, prefix: &Prefix, client: &PeerState) -> Choice {
        if !client.exporting || !client.info.families.contains(&Family::of(prefix)) {
            return None;
        }
        self.table
            .get(prefix)
            .and_then(|paths| self.choose_for_member(paths, client.info.member))
            .map(|path| (path.peer, attributes_identity(&path.attributes)))
    }

    fn source(&self, peer: PeerId) -> Source {
        self.peers.get(&peer).map_or(
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

    /// Replaces (or with `None` removes) `peer`'s path for `prefix`, keeps the paths sorted, and
    /// marks the prefix dirty for every client whose choice changed.
    fn change(&mut self, prefix: Prefix, peer: PeerId, attributes: Option<Arc<Attributes>>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for (client, state) in &self.peers {
            scratch.push((*client, self.choice(&prefix, state)));
        }

        let family = Family::of(&prefix);
        let source = self.source(peer);
        let paths = self.table.entry(prefix).or_default();
        let mut released = None;
        let mut delta: isize = 0;
        if let Some(index) = paths.iter().position(|path| path.peer == peer) {
            released = Some(paths.remove(index).attributes);
            delta -= 1;
        }
        if let Some(attributes) = attributes {
            let position = {
                let peers = &self.peers;
                let source_of = |peer: PeerId| {
                    peers.get(&peer).map_or(source, |state| Source {
                        router_id: state.info.router_id,
                        address: state.info.address,
                    })
                };
                paths.partition_point(|existing| {
                    compare(
                        &existing.attributes,
                        source_of(existing.peer),
                        &attributes,
                        source,
                    )
                    .is_le()
                })
            };
            paths.insert(position, Path { peer, attributes });
            delta += 1;
        }
        if paths.is_empty() {
            self.table.remove(&prefix);
        }
        self.paths = self.paths.saturating_add_signed(delta);
        if let Some(state) = self.peers.get_mut(&peer) {
            let received = &mut state.counts[family_index(family)].received;
            *received = received.saturating_add_signed(delta);
        }
        if let Some(old) = released {
            self.interner.release(old);
        }

        for (client, before) in scratch.drain(..) {
            let after = match self.peers.get(&client) {
                Some(state) => self.choice(&prefix, state),
                None => continue,
            };
            if before == after {
                continue;
            }
            if let Some(state) = self.peers.get_mut(&client) {
                let advertised = &mut state.counts[family_index(family)].advertised;
                match (before.is_some(), after.is_some()) {
                    (false, true) => *advertised += 1,
                    (true, false) => *advertised = advertised.saturating_sub(1),
                    _ => {}
                }
                state.dirty.insert(prefix);
            }
        }
        self.scratch = scratch;
    }
}

#[cfg(test)]
mod tests;
