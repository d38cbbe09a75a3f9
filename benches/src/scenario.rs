//! Benchmark scenarios and the synthetic routing table they announce: which peers exist, which
//! of them send, and which prefixes and path attributes each sender owns. Pure data and
//! arithmetic; this module must not touch sockets, processes or files.

use std::net::Ipv4Addr;

use rustbgpd_wire::{AsPath, AsPathSegment, Ipv4Prefix, LargeCommunity, Origin, PathAttribute};
use serde::{Deserialize, Serialize};

/// The route server's address on the benchmark peering LAN (198.18.0.0/15, RFC 2544).
pub const ROUTE_SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Prefix length of the benchmark peering LAN 198.18.0.0/24.
pub const LAN_PREFIX_LENGTH: u8 = 24;
/// Host number of the first peer on the LAN; peer `i` uses `198.18.0.(10 + i)`.
pub const FIRST_PEER_HOST: u8 = 10;
/// Most peers the /24 LAN can hold after the route server and the first hosts.
pub const MAX_PEERS: usize = 254 - FIRST_PEER_HOST as usize;
/// ASN of the route server (private, RFC 6996).
pub const ROUTE_SERVER_ASN: u32 = 64512;
/// ASN of peer 0; peer `i` uses `FIRST_PEER_ASN + i` (4-octet private range, RFC 6996).
pub const FIRST_PEER_ASN: u32 = 4_200_000_010;
/// First ASN used for the upstream networks behind a sender in generated AS paths.
pub const FIRST_UPSTREAM_ASN: u32 = 4_200_100_000;
/// How many consecutive prefixes of one sender share one attribute set (and one UPDATE).
pub const PREFIXES_PER_ATTRIBUTE_SET: usize = 100;

/// Prefix lengths handed out in turn: mostly /24, as in the global table, with shorter ones
/// mixed in.
const LENGTH_CYCLE: [u8; 20] = [
    24, 24, 22, 24, 23, 24, 24, 21, 24, 24, 22, 24, 20, 24, 24, 23, 24, 22, 24, 19,
];

/// Address space the generator never hands out: special-purpose and bogon ranges (RFC 6890),
/// so that route-server prefix filters accept every generated prefix. Sorted by start.
const RESERVED_RANGES: [(Ipv4Addr, u8); 14] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 88, 99, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 3),
];

/// First address the generator hands out.
const FIRST_GENERATED_ADDRESS: Ipv4Addr = Ipv4Addr::new(11, 0, 0, 0);

/// One benchmark scenario: `peers` sessions, the first `senders` of them announce
/// `prefixes_per_sender` distinct prefixes each, every peer receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Short name used on the command line and in tables.
    pub name: String,
    /// Number of member sessions.
    pub peers: usize,
    /// Number of peers (the first ones) that announce prefixes.
    pub senders: usize,
    /// Distinct prefixes announced by each sender.
    pub prefixes_per_sender: usize,
}

impl Scenario {
    /// 10 peers, 5 of them announce 10,000 prefixes each.
    pub fn small() -> Self {
        Self::new("small", 10, 5, 10_000)
    }

    /// 50 peers, 25 of them announce 20,000 prefixes each.
    pub fn medium() -> Self {
        Self::new("medium", 50, 25, 20_000)
    }

    /// One sender with 800,000 prefixes fanned out to 20 receiving peers (21 sessions).
    pub fn fanout() -> Self {
        Self::new("fanout", 21, 1, 800_000)
    }

    /// One sender with 100,000 prefixes and 4 receivers: the JSON API benchmark's member with
    /// 100k routes (`--api`), quick to converge.
    pub fn api() -> Self {
        Self::new("api", 5, 1, 100_000)
    }

    /// A scenario with the given shape.
    pub fn new(name: &str, peers: usize, senders: usize, prefixes_per_sender: usize) -> Self {
        Self {
            name: name.to_owned(),
            peers,
            senders,
            prefixes_per_sender,
        }
    }

    /// Total distinct prefixes (and paths) the route server has to hold.
    pub fn total_prefixes(&self) -> usize {
        self.senders * self.prefixes_per_sender
    }

    /// Prefixes peer `peer` must hold at convergence: everything from every sender but itself.
    pub fn expected_at(&self, peer: usize) -> usize {
        if peer < self.senders {
            self.total_prefixes() - self.prefixes_per_sender
        } else {
            self.total_prefixes()
        }
    }

    /// Route updates the route server has to deliver in total to reach convergence.
    pub fn total_deliveries(&self) -> usize {
        (0..self.peers).map(|peer| self.expected_at(peer)).sum()
    }

    /// The peers of this scenario, in order.
    pub fn peer_list(&self) -> Vec<Peer> {
        (0..self.peers).map(Peer::numbered).collect()
    }
}

/// One member session of the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Position in the scenario (0-based); peers below `senders` announce.
    pub index: usize,
    /// The peer's LAN address, also its BGP identifier and its NEXT_HOP.
    pub address: Ipv4Addr,
    /// The peer's ASN.
    pub asn: u32,
}

impl Peer {
    /// Peer number `index` of any scenario.
    pub fn numbered(index: usize) -> Self {
        let host = u32::from(FIRST_PEER_HOST) + index as u32;
        Self {
            index,
            address: Ipv4Addr::from(u32::from(ROUTE_SERVER_ADDRESS) - 1 + host),
            asn: FIRST_PEER_ASN + index as u32,
        }
    }

    /// Short name used in daemon configurations and fabric files, e.g. `peer10`.
    pub fn name(&self) -> String {
        format!("peer{}", usize::from(FIRST_PEER_HOST) + self.index)
    }
}

/// Generates `count` distinct, non-overlapping, non-reserved IPv4 prefixes in address order.
pub fn generate_prefixes(count: usize) -> Vec<Ipv4Prefix> {
    let mut prefixes = Vec::with_capacity(count);
    let mut cursor = u64::from(u32::from(FIRST_GENERATED_ADDRESS));
    let mut turn = 0usize;
    while prefixes.len() < count {
        let length = LENGTH_CYCLE[turn % LENGTH_CYCLE.len()];
        let size = 1u64 << (32 - u32::from(length));
        let start = cursor.div_ceil(size) * size;
        let end = start + size;
        if end > 1u64 << 32 {
            break;
        }
        if let Some(reserved_end) = overlapping_reserved_end(start, end) {
            cursor = reserved_end;
            continue;
        }
        prefixes.push(Ipv4Prefix::new(Ipv4Addr::from(start as u32), length));
        cursor = end;
        turn += 1;
    }
    prefixes
}

/// End (exclusive) of the reserved range overlapping `[start, end)`, if any.
fn overlapping_reserved_end(start: u64, end: u64) -> Option<u64> {
    RESERVED_RANGES.iter().find_map(|(address, length)| {
        let reserved_start = u64::from(u32::from(*address));
        let reserved_end = reserved_start + (1u64 << (32 - u32::from(*length)));
        (start < reserved_end && reserved_start < end).then_some(reserved_end)
    })
}

/// Small deterministic generator (xorshift64*) so that every run announces the same table.
fn mix(sender: usize, set: usize, salt: u64) -> u64 {
    let mut state = (sender as u64) << 32 ^ set as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    state ^= 0x2545_F491_4F6C_DD1D;
    for _ in 0..3 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
    }
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The AS path of attribute set `set` of `sender`: 2 to 5 ASNs starting with the sender's.
pub fn as_path(sender: &Peer, set: usize) -> Vec<u32> {
    let upstreams = 1 + (mix(sender.index, set, 1) % 4) as usize;
    let mut path = Vec::with_capacity(upstreams + 1);
    path.push(sender.asn);
    for hop in 0..upstreams {
        path.push(FIRST_UPSTREAM_ASN + (mix(sender.index, set, 10 + hop as u64) % 20_000) as u32);
    }
    path
}

/// The path attributes of attribute set `set` of `sender`, as a member router would send them
/// to an IXP route server: ORIGIN, AS_PATH, NEXT_HOP (its own LAN address), MED on every third
/// set, 1 to 3 standard communities and a large community on every fourth set.
pub fn attribute_set(sender: &Peer, set: usize) -> Vec<PathAttribute> {
    let origin = if mix(sender.index, set, 2).is_multiple_of(8) {
        Origin::Incomplete
    } else {
        Origin::Igp
    };
    let mut attributes = vec![
        PathAttribute::Origin(origin),
        PathAttribute::AsPath(AsPath {
            segments: vec![AsPathSegment::AsSequence(as_path(sender, set))],
        }),
        PathAttribute::NextHop(sender.address),
    ];
    if set.is_multiple_of(3) {
        attributes.push(PathAttribute::Med(
            (mix(sender.index, set, 3) % 1000) as u32,
        ));
    }
    let communities = 1 + (mix(sender.index, set, 4) % 3) as u32;
    attributes.push(PathAttribute::Communities(
        (0..communities)
            .map(|n| ((65_000 + n) << 16) | (100 + (set as u32 % 400)))
            .collect(),
    ));
    if set.is_multiple_of(4) {
        attributes.push(PathAttribute::LargeCommunities(vec![LargeCommunity::new(
            sender.asn, 1, set as u32,
        )]));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_prefixes_are_distinct_ordered_and_avoid_reserved_space() {
        let prefixes = generate_prefixes(800_000);
        assert_eq!(prefixes.len(), 800_000);
        let mut previous_end = 0u64;
        for prefix in &prefixes {
            let start = u64::from(u32::from(prefix.addr));
            let end = start + (1u64 << (32 - u32::from(prefix.len)));
            assert!(start >= previous_end, "{prefix} overlaps its predecessor");
            assert!(
                overlapping_reserved_end(start, end).is_none(),
                "{prefix} is reserved"
            );
            previous_end = end;
        }
        let slash24 = prefixes.iter().filter(|prefix| prefix.len == 24).count();
        assert_eq!(slash24 * 20, 800_000 * 12);
    }

    #[test]
    fn as_paths_start_with_the_sender_and_hold_two_to_five_asns() {
        let sender = Peer::numbered(3);
        for set in 0..500 {
            let path = as_path(&sender, set);
            assert_eq!(path[0], sender.asn);
            assert!((2..=5).contains(&path.len()), "{path:?}");
        }
    }

    #[test]
    fn senders_do_not_expect_their_own_prefixes() {
        let scenario = Scenario::small();
        assert_eq!(scenario.expected_at(0), 40_000);
        assert_eq!(scenario.expected_at(9), 50_000);
        assert_eq!(scenario.total_deliveries(), 5 * 40_000 + 5 * 50_000);
        assert_eq!(Peer::numbered(0).address, Ipv4Addr::new(198, 18, 0, 10));
    }
}
