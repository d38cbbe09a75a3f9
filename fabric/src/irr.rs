//! A member's IRR data as the route server checks routes against it: the prefixes it may
//! announce, each with the lengths allowed (bgpq4's `exact`, `greater-equal` and `less-equal`),
//! and the origin ASNs it may announce them from. Owns the lookup structures; must not read
//! files (the route server's `irr` module reads bgpq4 output) nor decide what a miss means.
//!
//! [`PrefixSet`] keeps, per family, one sorted array of networks per prefix length present.
//! A lookup for a route of length `n` masks the route to each present length `<= n` and
//! binary-searches that array: at most 33 (IPv4) or 129 (IPv6) searches, in practice as many
//! as there are distinct lengths in the AS-SET (about ten). Building is one sort, so a
//! 50,000-prefix AS-SET loads in milliseconds.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::Asn;

/// One allowed prefix and the lengths of routes it allows: the prefix itself and any more
/// specific prefix inside it whose length is in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixRange {
    prefix: IpNet,
    min: u8,
    max: u8,
}

/// Why a prefix range is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The text is not `PREFIX`, `PREFIX le N`, `PREFIX ge N` or `PREFIX ge N le M`.
    #[error("expected PREFIX, PREFIX le N or PREFIX ge N le M, like 198.18.0.0/16 le 24")]
    Syntax,
    /// The prefix has host bits set.
    #[error("{prefix} has host bits set; use {network}")]
    HostBits {
        /// The prefix as written.
        prefix: IpNet,
        /// The prefix with host bits cleared.
        network: IpNet,
    },
    /// The lengths are not `prefix length <= min <= max <= 32 or 128`.
    #[error("lengths {min}-{max} do not fit {prefix}: use prefix length <= ge <= le <= {longest}")]
    Lengths {
        /// The prefix.
        prefix: IpNet,
        /// Shortest length allowed.
        min: u8,
        /// Longest length allowed.
        max: u8,
        /// Longest length of the family.
        longest: u8,
    },
}

impl PrefixRange {
    /// `prefix` with routes of lengths `min..=max` inside it allowed.
    pub fn new(prefix: IpNet, min: u8, max: u8) -> Result<PrefixRange, RangeError> {
        if prefix.trunc() != prefix {
            return Err(RangeError::HostBits {
                prefix,
                network: prefix.trunc(),
            });
        }
        let longest = prefix.max_prefix_len();
        if min < prefix.prefix_len() || min > max || max > longest {
            return Err(RangeError::Lengths {
                prefix,
                min,
                max,
                longest,
            });
        }
        Ok(PrefixRange { prefix, min, max })
    }

    /// Only `prefix` itself.
    pub fn exact(prefix: IpNet) -> Result<PrefixRange, RangeError> {
        PrefixRange::new(prefix, prefix.prefix_len(), prefix.prefix_len())
    }

    /// The covering prefix.
    pub fn prefix(&self) -> IpNet {
        self.prefix
    }

    /// Shortest route length allowed.
    pub fn min(&self) -> u8 {
        self.min
    }

    /// Longest route length allowed.
    pub fn max(&self) -> u8 {
        self.max
    }

    /// Whether a route for `route` is allowed by this entry.
    pub fn allows(&self, route: &IpNet) -> bool {
        (self.min..=self.max).contains(&route.prefix_len()) && self.prefix.contains(route)
    }
}

impl fmt::Display for PrefixRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if self.min > self.prefix.prefix_len() {
            write!(f, " ge {}", self.min)?;
        }
        if self.max > self.min || self.min > self.prefix.prefix_len() {
            write!(f, " le {}", self.max)?;
        }
        Ok(())
    }
}

impl FromStr for PrefixRange {
    type Err = RangeError;

    /// `198.18.0.0/16`, `198.18.0.0/16 le 24`, `198.18.0.0/16 ge 20` (up to the family's
    /// longest) or `198.18.0.0/16 ge 20 le 24`, as in router prefix lists.
    fn from_str(text: &str) -> Result<PrefixRange, RangeError> {
        let mut words = text.split_whitespace();
        let prefix: IpNet = words
            .next()
            .and_then(|word| word.parse().ok())
            .ok_or(RangeError::Syntax)?;
        let mut min = None;
        let mut max = None;
        while let Some(keyword) = words.next() {
            let value: u8 = words
                .next()
                .and_then(|word| word.parse().ok())
                .ok_or(RangeError::Syntax)?;
            let slot = match keyword {
                "ge" if max.is_none() => &mut min,
                "le" => &mut max,
                _ => return Err(RangeError::Syntax),
            };
            if slot.replace(value).is_some() {
                return Err(RangeError::Syntax);
            }
        }
        let min_length = min.unwrap_or(prefix.prefix_len());
        let max_length = match (min, max) {
            (_, Some(max)) => max,
            (Some(_), None) => prefix.max_prefix_len(),
            (None, None) => prefix.prefix_len(),
        };
        PrefixRange::new(prefix, min_length, max_length)
    }
}

/// The networks of one prefix length, sorted, each with its allowed route lengths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LengthGroup {
    length: u8,
    /// `(network bits, min, max)`, sorted by network; the same network may repeat with other
    /// ranges.
    entries: Vec<(u128, u8, u8)>,
}

/// One family's groups, sorted by length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FamilyTable {
    groups: Vec<LengthGroup>,
}

impl FamilyTable {
    fn build(mut entries: Vec<(u8, u128, u8, u8)>) -> FamilyTable {
        entries.sort_unstable();
        entries.dedup();
        let mut groups: Vec<LengthGroup> = Vec::new();
        for (length, network, min, max) in entries {
            match groups.last_mut() {
                Some(group) if group.length == length => group.entries.push((network, min, max)),
                _ => groups.push(LengthGroup {
                    length,
                    entries: vec![(network, min, max)],
                }),
            }
        }
        FamilyTable { groups }
    }

    /// Whether a route of `length` whose address bits are `bits` (left-aligned in `width`
    /// bits) is allowed by an entry.
    fn covers(&self, bits: u128, length: u8, width: u8) -> bool {
        for group in &self.groups {
            if group.length > length {
                break;
            }
            let network = mask(bits, group.length, width);
            let start = group
                .entries
                .partition_point(|(entry, _, _)| *entry < network);
            let allowed = group.entries[start..]
                .iter()
                .take_while(|(entry, _, _)| *entry == network)
                .any(|(_, min, max)| (*min..=*max).contains(&length));
            if allowed {
                return true;
            }
        }
        false
    }

    /// Whether a route of `length` with address `bits` lies inside an entry's prefix, whatever
    /// the entry's length range.
    fn within(&self, bits: u128, length: u8, width: u8) -> bool {
        self.groups
            .iter()
            .take_while(|group| group.length <= length)
            .any(|group| {
                let network = mask(bits, group.length, width);
                let start = group
                    .entries
                    .partition_point(|(entry, _, _)| *entry < network);
                group
                    .entries
                    .get(start)
                    .is_some_and(|(entry, _, _)| *entry == network)
            })
    }

    fn len(&self) -> usize {
        self.groups.iter().map(|group| group.entries.len()).sum()
    }
}

/// `bits` (an address of `width` bits held in the low bits of a u128) with all but the first
/// `length` bits cleared.
fn mask(bits: u128, length: u8, width: u8) -> u128 {
    if length == 0 {
        return 0;
    }
    let host_bits = u32::from(width - length.min(width));
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    bits & (all << host_bits) & all
}

/// A member's allowed prefixes, both families, for fast "is this route covered" lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixSet {
    ipv4: FamilyTable,
    ipv6: FamilyTable,
}

impl PrefixSet {
    /// The set of `ranges` (duplicates are kept once).
    pub fn new(ranges: impl IntoIterator<Item = PrefixRange>) -> PrefixSet {
        let mut ipv4 = Vec::new();
        let mut ipv6 = Vec::new();
        for range in ranges {
            match range.prefix {
                IpNet::V4(net) => ipv4.push((
                    net.prefix_len(),
                    u128::from(u32::from(net.network())),
                    range.min,
                    range.max,
                )),
                IpNet::V6(net) => ipv6.push((
                    net.prefix_len(),
                    u128::from(net.network()),
                    range.min,
                    range.max,
                )),
            }
        }
        PrefixSet {
            ipv4: FamilyTable::build(ipv4),
            ipv6: FamilyTable::build(ipv6),
        }
    }

    /// Whether some entry allows a route for `route`.
    pub fn covers(&self, route: &IpNet) -> bool {
        match route {
            IpNet::V4(net) => {
                self.ipv4
                    .covers(u128::from(u32::from(net.network())), net.prefix_len(), 32)
            }
            IpNet::V6(net) => self
                .ipv6
                .covers(u128::from(net.network()), net.prefix_len(), 128),
        }
    }

    /// Whether `route` lies inside (or is) an entry's prefix, whatever the entry's length
    /// range: the member's own space, for BLACKHOLE routes down to /32 and /128 (RFC 7999).
    pub fn contains_within(&self, route: &IpNet) -> bool {
        match route {
            IpNet::V4(net) => {
                self.ipv4
                    .within(u128::from(u32::from(net.network())), net.prefix_len(), 32)
            }
            IpNet::V6(net) => self
                .ipv6
                .within(u128::from(net.network()), net.prefix_len(), 128),
        }
    }

    /// Number of entries (both families).
    pub fn len(&self) -> usize {
        self.ipv4.len() + self.ipv6.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, IPv4 first, each family by length then address.
    pub fn ranges(&self) -> impl Iterator<Item = PrefixRange> + '_ {
        let v4 = self.ipv4.groups.iter().flat_map(|group| {
            group.entries.iter().filter_map(move |(bits, min, max)| {
                let address = Ipv4Addr::from(u32::try_from(*bits).ok()?);
                let net = Ipv4Net::new(address, group.length).ok()?;
                Some(PrefixRange {
                    prefix: IpNet::V4(net),
                    min: *min,
                    max: *max,
                })
            })
        });
        let v6 = self.ipv6.groups.iter().flat_map(|group| {
            group.entries.iter().filter_map(move |(bits, min, max)| {
                let net = Ipv6Net::new(Ipv6Addr::from(*bits), group.length).ok()?;
                Some(PrefixRange {
                    prefix: IpNet::V6(net),
                    min: *min,
                    max: *max,
                })
            })
        });
        v4.chain(v6)
    }
}

/// A member's allowed origin ASNs, sorted, for binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsnSet(Vec<u32>);

impl AsnSet {
    /// The set of `asns` (duplicates are kept once).
    pub fn new(asns: impl IntoIterator<Item = Asn>) -> AsnSet {
        let mut asns: Vec<u32> = asns.into_iter().map(|asn| asn.0).collect();
        asns.sort_unstable();
        asns.dedup();
        AsnSet(asns)
    }

    /// Whether `asn` is in the set.
    pub fn contains(&self, asn: u32) -> bool {
        self.0.binary_search(&asn).is_ok()
    }

    /// Number of ASNs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a member may announce according to its IRR data. A check whose list is `None` is not
/// applied: a member with no prefix data has no IRR prefix filter, one with no origin data no
/// IRR origin filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IrrData {
    /// Allowed prefixes (inline `prefixes:` and `prefixes_file:` together).
    pub prefixes: Option<PrefixSet>,
    /// Allowed origin ASNs (inline `origins:` and `asns_file:` together).
    pub origins: Option<AsnSet>,
}

impl IrrData {
    /// Whether `address` lies in one of the allowed prefixes (any length), used to decide
    /// whether a host route is in the member's own space.
    pub fn covers_address(&self, address: IpAddr) -> Option<bool> {
        let prefixes = self.prefixes.as_ref()?;
        let host = IpNet::from(address);
        Some(prefixes.ranges().any(|range| range.prefix.contains(&host)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().expect("test prefix is valid")
    }

    fn range(text: &str) -> PrefixRange {
        text.parse().expect("test range is valid")
    }

    #[test]
    fn contains_within_ignores_the_length_range() {
        let set = PrefixSet::new([range("198.18.16.0/20 le 24"), range("fd00:1::/32")]);
        assert!(set.contains_within(&net("198.18.17.1/32")));
        assert!(set.contains_within(&net("198.18.16.0/20")));
        assert!(!set.covers(&net("198.18.17.1/32")));
        assert!(!set.contains_within(&net("198.18.32.1/32")));
        assert!(!set.contains_within(&net("198.18.0.0/16")));
        assert!(set.contains_within(&net("fd00:1:2::1/128")));
        assert!(!set.contains_within(&net("fd00:2::1/128")));
        assert!(!PrefixSet::default().contains_within(&net("198.18.17.1/32")));
    }

    #[test]
    fn ranges_read_like_router_prefix_lists() {
        assert_eq!(range("198.18.0.0/16").to_string(), "198.18.0.0/16");
        assert_eq!(
            range("198.18.0.0/16 le 24").to_string(),
            "198.18.0.0/16 le 24"
        );
        assert_eq!(
            range("198.18.0.0/16 ge 20 le 24").to_string(),
            "198.18.0.0/16 ge 20 le 24"
        );
        assert_eq!(range("fd00::/32 ge 48").max(), 128);
        assert_eq!(range("fd00::/32 ge 48").min(), 48);
        for bad in [
            "",
            "198.18.0.0",
            "198.18.0.0/16 le",
            "198.18.0.0/16 le x",
            "198.18.0.0/16 lt 24",
            "198.18.0.0/16 le 24 ge 20",
            "198.18.0.0/16 le 24 le 25",
        ] {
            assert_eq!(bad.parse::<PrefixRange>(), Err(RangeError::Syntax), "{bad}");
        }
        assert!(matches!(
            "198.18.0.0/16 le 33".parse::<PrefixRange>(),
            Err(RangeError::Lengths { .. })
        ));
        assert!(matches!(
            "198.18.0.0/16 le 8".parse::<PrefixRange>(),
            Err(RangeError::Lengths { .. })
        ));
        assert_eq!(
            "198.18.0.1/16"
                .parse::<PrefixRange>()
                .map_err(|e| e.to_string()),
            Err("198.18.0.1/16 has host bits set; use 198.18.0.0/16".to_owned())
        );
    }

    #[test]
    fn exact_entries_allow_only_themselves() {
        let set = PrefixSet::new([range("198.18.10.0/24"), range("fd00:10::/48")]);
        assert!(set.covers(&net("198.18.10.0/24")));
        assert!(!set.covers(&net("198.18.10.0/25")));
        assert!(!set.covers(&net("198.18.0.0/16")));
        assert!(!set.covers(&net("198.18.11.0/24")));
        assert!(set.covers(&net("fd00:10::/48")));
        assert!(!set.covers(&net("fd00:10::/64")));
        assert!(!set.covers(&net("198.18.10.0/24").trunc().supernet().expect("has one")));
    }

    #[test]
    fn ranges_allow_more_specifics_within_their_lengths() {
        let set = PrefixSet::new([
            range("198.18.0.0/16 ge 20 le 24"),
            range("fd00:20::/32 le 48"),
            range("0.0.0.0/0 ge 32 le 32"),
        ]);
        assert!(!set.covers(&net("198.18.0.0/16")));
        assert!(set.covers(&net("198.18.16.0/20")));
        assert!(set.covers(&net("198.18.200.0/24")));
        assert!(!set.covers(&net("198.18.200.0/25")));
        assert!(set.covers(&net("fd00:20::/32")));
        assert!(set.covers(&net("fd00:20:5::/48")));
        assert!(!set.covers(&net("fd00:21::/48")));
        // A /0 entry with ge 32: every IPv4 host route.
        assert!(set.covers(&net("203.0.113.9/32")));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn the_same_network_with_two_ranges_allows_both() {
        let set = PrefixSet::new([
            range("198.18.0.0/16"),
            range("198.18.0.0/16 ge 24 le 24"),
            range("198.18.0.0/16"),
        ]);
        assert_eq!(set.len(), 2);
        assert!(set.covers(&net("198.18.0.0/16")));
        assert!(set.covers(&net("198.18.7.0/24")));
        assert!(!set.covers(&net("198.18.0.0/20")));
        let listed: Vec<String> = set.ranges().map(|range| range.to_string()).collect();
        assert_eq!(listed, ["198.18.0.0/16", "198.18.0.0/16 ge 24 le 24"]);
    }

    #[test]
    fn asn_sets_find_members() {
        let set = AsnSet::new([Asn(64510), Asn(64501), Asn(64510)]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(64501));
        assert!(!set.contains(64502));
    }

    #[test]
    fn host_routes_inside_allowed_space_are_found() {
        let data = IrrData {
            prefixes: Some(PrefixSet::new([range("198.18.10.0/24")])),
            origins: None,
        };
        assert_eq!(
            data.covers_address("198.18.10.7".parse().expect("valid")),
            Some(true)
        );
        assert_eq!(
            data.covers_address("198.18.11.7".parse().expect("valid")),
            Some(false)
        );
        assert_eq!(
            IrrData::default().covers_address("198.18.10.7".parse().expect("valid")),
            None
        );
    }

    /// 50,000 IPv4 /24s and 10,000 IPv6 /48s with mixed ranges: building and 100,000 lookups.
    /// Prints the figures; asserts only the results (a test is not a benchmark).
    #[test]
    fn a_50k_prefix_as_set_builds_and_answers() {
        let mut ranges = Vec::new();
        for index in 0..50_000u32 {
            let address = Ipv4Addr::from(0x0b00_0000 + (index << 8));
            let prefix = IpNet::V4(Ipv4Net::new(address, 24).expect("valid"));
            ranges.push(PrefixRange::exact(prefix).expect("valid"));
        }
        for index in 0..10_000u128 {
            let address = Ipv6Addr::from((0x2a00u128 << 112) | (index << 80));
            let prefix = IpNet::V6(Ipv6Net::new(address, 48).expect("valid"));
            ranges.push(PrefixRange::new(prefix, 48, 48).expect("valid"));
        }
        ranges.push(range("100.0.0.0/8 le 24"));
        let started = Instant::now();
        let set = PrefixSet::new(ranges);
        let built = started.elapsed();
        assert_eq!(set.len(), 60_001);
        let started = Instant::now();
        let mut hits = 0usize;
        for index in 0..100_000u32 {
            let address = Ipv4Addr::from(0x0b00_0000 + ((index % 60_000) << 8));
            let route = IpNet::V4(Ipv4Net::new(address, 24).expect("valid"));
            hits += usize::from(set.covers(&route));
        }
        let looked_up = started.elapsed();
        // Indexes 0-59,999 then 0-39,999; those below 50,000 are in the set.
        assert_eq!(hits, 50_000 + 40_000);
        println!(
            "PrefixSet: built 60,001 entries in {built:?}; 100,000 lookups in {looked_up:?} \
             ({:?} each)",
            looked_up / 100_000
        );
    }
}
