//! Routes as the tests compare them, independent of which daemon showed them. Owns the common
//! route shape; must not know any daemon's output format.

use std::net::IpAddr;

use ipnet::IpNet;

/// A standard community (RFC 1997) as `(ASN, value)`.
pub type Community = (u16, u16);

/// A large community (RFC 8092) as `(global administrator, local data 1, local data 2)`.
pub type LargeCommunity = (u32, u32, u32);

/// One path to a prefix as a daemon's CLI showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination.
    pub prefix: IpNet,
    /// The BGP NEXT_HOP (the first, global one for IPv6).
    pub next_hop: IpAddr,
    /// The AS_PATH as a flat sequence (AS_SET members in order, which the tests never use).
    pub as_path: Vec<u32>,
    /// MULTI_EXIT_DISC, when present.
    pub med: Option<u32>,
    /// COMMUNITIES, in the order shown.
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITIES, in the order shown.
    pub large_communities: Vec<LargeCommunity>,
    /// Where the daemon learnt it: a BIRD protocol name or a GoBGP neighbour address.
    pub learnt_from: String,
}

/// A prefix a member announces, with the attributes it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The announced prefix.
    pub prefix: IpNet,
    /// MULTI_EXIT_DISC to set, if any.
    pub med: Option<u32>,
    /// Standard communities to attach.
    pub communities: Vec<Community>,
    /// Large communities to attach.
    pub large_communities: Vec<LargeCommunity>,
    /// How many extra times the member prepends its own ASN.
    pub prepend: usize,
    /// ASNs put into the path behind the member's own ASN (BIRD members only): how a test
    /// announces a transit-free or reserved ASN the route server must refuse.
    pub foreign_path: Vec<u32>,
    /// A NEXT_HOP other than the member's own address (BIRD members only), which the route
    /// server must refuse.
    pub next_hop: Option<std::net::IpAddr>,
    /// An OTC (Only to Customer, RFC 9234) attribute with this ASN (BIRD members only): a
    /// leaked route the route server must refuse.
    pub otc: Option<u32>,
}

impl Announcement {
    /// An announcement of `prefix` with no attributes set.
    pub fn new(prefix: IpNet) -> Self {
        Self {
            prefix,
            med: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            prepend: 0,
            foreign_path: Vec::new(),
            next_hop: None,
            otc: None,
        }
    }

    /// The AS_PATH a neighbour of a member with `asn` receives through a transparent route
    /// server (RFC 7947 section 2.2.2.1: the route server adds no ASN).
    pub fn expected_as_path(&self, asn: u32) -> Vec<u32> {
        vec![asn; self.prepend + 1]
    }

    /// Whether `route` carries this announcement's prefix and attributes unchanged, as sent by
    /// a member with `asn` from `next_hop`.
    pub fn matches(&self, route: &Route, asn: u32, next_hop: IpAddr) -> bool {
        route.prefix == self.prefix
            && route.next_hop == next_hop
            && route.as_path == self.expected_as_path(asn)
            && route.med == self.med
            && sorted(&route.communities) == sorted(&self.communities)
            && sorted(&route.large_communities) == sorted(&self.large_communities)
    }
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route {
            prefix: "198.18.128.0/24".parse().expect("prefix"),
            next_hop: "198.18.0.11".parse().expect("next hop"),
            as_path: vec![64501, 64501],
            med: Some(10),
            communities: vec![(64501, 2), (64501, 1)],
            large_communities: vec![(64501, 1, 1)],
            learnt_from: "rs4".to_owned(),
        }
    }

    fn announcement() -> Announcement {
        Announcement {
            med: Some(10),
            communities: vec![(64501, 1), (64501, 2)],
            large_communities: vec![(64501, 1, 1)],
            prepend: 1,
            ..Announcement::new("198.18.128.0/24".parse().expect("prefix"))
        }
    }

    #[test]
    fn unchanged_route_matches_regardless_of_community_order() {
        let next_hop = "198.18.0.11".parse().expect("next hop");
        assert!(announcement().matches(&route(), 64501, next_hop));
    }

    #[test]
    fn any_changed_attribute_does_not_match() {
        let next_hop = "198.18.0.11".parse().expect("next hop");
        let announcement = announcement();
        let mut changed = route();
        changed.as_path.insert(0, 64500);
        assert!(!announcement.matches(&changed, 64501, next_hop));
        let mut changed = route();
        changed.med = None;
        assert!(!announcement.matches(&changed, 64501, next_hop));
        let mut changed = route();
        changed.large_communities.clear();
        assert!(!announcement.matches(&changed, 64501, next_hop));
        let route_server = "198.18.0.1".parse().expect("next hop");
        assert!(!announcement.matches(&route(), 64501, route_server));
    }
}
