//! Pages of the RIB's route listings (a neighbor's received, filtered and not-exported
//! routes, sorted by prefix) for the API and the looking glass. Only the page's routes are
//! copied out: a listing is gathered as (prefix, position) pairs, compact so that comparing
//! them does not chase pointers into the table, the page is picked from them by selection
//! (linear time on average) and only the page is sorted, so a request never clones, sorts or
//! sends a whole table, whichever page it asks for. Read-only; must not change the RIB.

use std::sync::Arc;

use vixp_bgp::{Family, Prefix};

use super::{PeerId, Rib, RouteView, actions};

/// Which routes of a listing a page holds: `len` routes from position `start` (0-based) in
/// the listing's order (by prefix, then by the neighbor it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Position of the page's first route.
    pub start: usize,
    /// Most routes on the page.
    pub len: usize,
}

impl Window {
    /// The whole listing.
    pub const ALL: Window = Window {
        start: 0,
        len: usize::MAX,
    };
}

/// One page of a listing and the listing's length.
#[derive(Debug, Clone, Default)]
pub struct RoutePage {
    /// Routes in the whole listing.
    pub total: usize,
    /// The page's routes, in order.
    pub routes: Vec<RouteView>,
}

/// The items of `items` at the positions of `window` in the order of `key` (unique per item),
/// sorted, and how many items there were. Selection puts the page's items first without
/// sorting the rest; only the page is sorted.
fn select<T>(
    mut items: Vec<T>,
    window: Window,
    key: impl Fn(&T) -> (Prefix, PeerId) + Copy,
) -> (usize, Vec<T>) {
    let total = items.len();
    let start = window.start.min(total);
    let end = start.saturating_add(window.len).min(total);
    if start > 0 && start < total {
        items.select_nth_unstable_by_key(start, key);
    }
    items.drain(..start);
    let len = end - start;
    if len < items.len() {
        if len > 0 {
            items.select_nth_unstable_by_key(len, key);
        }
        items.truncate(len);
    }
    items.sort_unstable_by_key(key);
    (total, items)
}

impl Rib {
    /// A page of the routes received from `peer` and accepted, by prefix.
    pub fn routes_from_page(&self, peer: PeerId, window: Window) -> RoutePage {
        let found: Vec<(Prefix, usize)> = self
            .table
            .iter()
            .filter_map(|(prefix, paths)| {
                paths
                    .iter()
                    .position(|path| path.peer == peer)
                    .map(|index| (*prefix, index))
            })
            .collect();
        let (total, page) = select(found, window, |(prefix, _)| (*prefix, peer));
        let routes = page
            .into_iter()
            .filter_map(|(prefix, index)| {
                let path = self.table.get(&prefix)?.get(index)?;
                Some(RouteView {
                    prefix,
                    peer,
                    attributes: Arc::clone(&path.attributes),
                    best: index == 0,
                    filtered: None,
                    withheld: None,
                })
            })
            .collect();
        RoutePage { total, routes }
    }

    /// A page of the routes from `peer` refused by the import policy, by prefix.
    pub fn filtered_from_page(&self, peer: PeerId, window: Window) -> RoutePage {
        let found: Vec<_> = self
            .rejected
            .iter()
            .filter(|((from, _), _)| *from == peer)
            .map(|((_, prefix), stored)| (*prefix, stored))
            .collect();
        let (total, page) = select(found, window, |(prefix, _)| (*prefix, peer));
        let routes = page
            .into_iter()
            .map(|(prefix, (attributes, reason))| RouteView {
                prefix,
                peer,
                attributes: Arc::clone(attributes),
                best: false,
                filtered: Some(reason.clone()),
                withheld: None,
            })
            .collect();
        RoutePage { total, routes }
    }

    /// A page of the accepted routes from other members that `peer` does not receive because
    /// their senders' action communities withhold them, each with the reason, by prefix.
    pub fn not_exported_page(&self, peer: PeerId, window: Window) -> RoutePage {
        let Some(state) = self.peer(peer) else {
            return RoutePage::default();
        };
        let rs = self.route_server_asn;
        if rs == 0 {
            return RoutePage::default();
        }
        let found: Vec<(Prefix, PeerId, usize, String)> = self
            .table
            .iter()
            .filter(|(prefix, _)| state.info.families.contains(&Family::of(prefix)))
            .flat_map(|(prefix, paths)| {
                paths.iter().enumerate().filter_map(move |(index, path)| {
                    if path.member == state.member {
                        return None;
                    }
                    actions::withheld_because(&path.attributes, rs, state.info.asn)
                        .map(|reason| (*prefix, path.peer, index, reason))
                })
            })
            .collect();
        let (total, page) = select(found, window, |(prefix, from, _, _)| (*prefix, *from));
        let routes = page
            .into_iter()
            .filter_map(|(prefix, _, index, reason)| {
                let path = self.table.get(&prefix)?.get(index)?;
                Some(RouteView {
                    prefix,
                    peer: path.peer,
                    attributes: Arc::clone(&path.attributes),
                    best: index == 0,
                    filtered: None,
                    withheld: Some(reason),
                })
            })
            .collect();
        RoutePage { total, routes }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use vixp_bgp::{Announcement, AsPath, Attributes, LargeCommunity, Origin, Segment, Update};
    use vixp_bgp::{Family, SegmentKind};

    use super::*;
    use crate::policy::{Reason, Verdict};
    use crate::rib::PeerInfo;

    const SENDER: PeerId = PeerId(1);
    const OTHER: PeerId = PeerId(2);
    const RECEIVER: PeerId = PeerId(3);
    const RS: u32 = 64500;

    fn info(member: usize, last: u8) -> PeerInfo {
        PeerInfo {
            member,
            asn: 64500 + u32::from(last),
            router_id: Ipv4Addr::new(198, 18, 0, last),
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)),
            families: vec![Family::Ipv4],
        }
    }

    fn attributes(asn: u32, last: u8, large: Vec<LargeCommunity>) -> Attributes {
        let mut attributes = Attributes::new(
            Origin::Igp,
            AsPath {
                segments: vec![Segment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn],
                }],
            },
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)),
        );
        attributes.large_communities = large;
        attributes
    }

    /// Up to `count` distinct prefixes of mixed lengths, in no particular order.
    fn prefixes(count: u32) -> Vec<Prefix> {
        let mut seen = std::collections::HashSet::new();
        (0..count)
            .map(|n| {
                let spread = n.wrapping_mul(2_654_435_761) % 65_536;
                let length = [24, 22, 20][(n % 3) as usize];
                Prefix::new(
                    IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (spread << 8))),
                    length,
                )
                .expect("a prefix")
                .trunc()
            })
            .filter(|prefix| seen.insert(*prefix))
            .collect()
    }

    fn update(attributes: Attributes, prefixes: Vec<Prefix>) -> Update {
        Update {
            announcements: vec![Announcement {
                attributes,
                prefixes,
            }],
            ..Update::default()
        }
    }

    /// The sender announces `count` prefixes, every seventh refused; the other member
    /// announces every third of them too, withheld from the receiver by a large community.
    fn rib_with(count: u32) -> (Rib, Vec<Prefix>) {
        let mut rib = Rib::new();
        rib.set_route_server_asn(RS);
        rib.peer_up(SENDER, info(0, 11));
        rib.peer_up(OTHER, info(1, 12));
        rib.peer_up(RECEIVER, info(2, 13));
        let all = prefixes(count);
        let mut unique = all.clone();
        unique.sort();
        let refused: Vec<Prefix> = unique.iter().copied().step_by(7).collect();
        rib.update(
            SENDER,
            update(attributes(64511, 11, Vec::new()), all),
            &|prefix, _| {
                if refused.contains(prefix) {
                    Verdict::Reject(Reason::AsPathEmpty)
                } else {
                    Verdict::Accept
                }
            },
        );
        let withheld = vec![LargeCommunity(RS, actions::DO_NOT_ANNOUNCE, 64513)];
        let thirds: Vec<Prefix> = unique.iter().copied().step_by(3).collect();
        rib.update(
            OTHER,
            update(attributes(64512, 12, withheld), thirds),
            &|_, _| Verdict::Accept,
        );
        (rib, unique)
    }

    /// Walks every page of a listing at `size` per page and returns the routes in order,
    /// checking that every page reports the same total.
    fn walk(listing: &dyn Fn(Window) -> RoutePage, size: usize) -> Vec<(Prefix, PeerId)> {
        let total = listing(Window { start: 0, len: 1 }).total;
        let mut seen = Vec::new();
        for page in 0..total.div_ceil(size) {
            let answer = listing(Window {
                start: page * size,
                len: size,
            });
            assert_eq!(answer.total, total);
            assert_eq!(answer.routes.len(), size.min(total - page * size));
            seen.extend(answer.routes.iter().map(|route| (route.prefix, route.peer)));
        }
        assert!(
            listing(Window {
                start: total,
                len: size
            })
            .routes
            .is_empty()
        );
        seen
    }

    fn assert_every_route_once_in_order(seen: &[(Prefix, PeerId)], whole: &RoutePage) {
        let mut expected: Vec<(Prefix, PeerId)> = whole
            .routes
            .iter()
            .map(|route| (route.prefix, route.peer))
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(expected.len(), whole.total, "no route twice in the listing");
        assert_eq!(seen, expected.as_slice());
    }

    #[test]
    fn pages_of_received_routes_cover_every_route_once_in_prefix_order() {
        let (rib, unique) = rib_with(1_000);
        let whole = rib.routes_from_page(SENDER, Window::ALL);
        assert_eq!(whole.total, unique.len() - unique.len().div_ceil(7));
        for size in [1, 7, 250, 10_000] {
            let seen = walk(&|window| rib.routes_from_page(SENDER, window), size);
            assert_every_route_once_in_order(&seen, &whole);
        }
        assert!(whole.routes.iter().all(|route| route.peer == SENDER));
        assert!(
            whole
                .routes
                .windows(2)
                .all(|pair| pair[0].prefix < pair[1].prefix)
        );
    }

    #[test]
    fn pages_of_filtered_routes_cover_every_refused_route_once_with_its_reason() {
        let (rib, unique) = rib_with(1_000);
        let whole = rib.filtered_from_page(SENDER, Window::ALL);
        assert_eq!(whole.total, unique.len().div_ceil(7));
        for size in [1, 9, 250] {
            let seen = walk(&|window| rib.filtered_from_page(SENDER, window), size);
            assert_every_route_once_in_order(&seen, &whole);
        }
        assert!(
            whole
                .routes
                .iter()
                .all(|route| route.filtered == Some(Reason::AsPathEmpty))
        );
        assert_eq!(rib.filtered_from_page(OTHER, Window::ALL).total, 0);
    }

    #[test]
    fn pages_of_not_exported_routes_cover_every_withheld_path_once() {
        let (rib, unique) = rib_with(600);
        let whole = rib.not_exported_page(RECEIVER, Window::ALL);
        assert_eq!(whole.total, unique.len().div_ceil(3));
        for size in [1, 4, 250] {
            let seen = walk(&|window| rib.not_exported_page(RECEIVER, window), size);
            assert_every_route_once_in_order(&seen, &whole);
        }
        assert!(whole.routes.iter().all(|route| {
            route.peer == OTHER
                && route
                    .withheld
                    .as_deref()
                    .is_some_and(|reason| reason.contains("AS64513"))
        }));
        assert_eq!(rib.not_exported_page(SENDER, Window::ALL).total, 0);
    }

    #[test]
    fn a_window_past_the_end_is_empty_but_still_counts_the_listing() {
        let (rib, _) = rib_with(100);
        let total = rib.routes_from_page(SENDER, Window::ALL).total;
        for start in [total, total + 1, usize::MAX] {
            let page = rib.routes_from_page(SENDER, Window { start, len: 250 });
            assert_eq!((page.total, page.routes.len()), (total, 0));
        }
        let last = rib.routes_from_page(
            SENDER,
            Window {
                start: total - 1,
                len: usize::MAX,
            },
        );
        assert_eq!(last.routes.len(), 1);
        assert_eq!(rib.routes_from_page(PeerId(99), Window::ALL).total, 0);
    }
}
