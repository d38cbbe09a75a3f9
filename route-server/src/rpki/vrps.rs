//! The validated payload the route server holds: VRPs (prefix, maxLength, ASN) for route
//! origin validation (RFC 6811) and ASPA records (customer ASN, provider ASNs) for path
//! verification. Plain data, immutable once built: a change builds a new set and swaps it in.
//! Must not fetch payload (`rtr` and `json` do).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxBuildHasher;
use vixp_bgp::{Family, Prefix};

/// A validated ROA payload (RFC 6811 section 1): `asn` may originate `prefix` and any
/// more-specific of it up to `max_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vrp {
    /// The ROA prefix (host bits zero).
    pub prefix: IpNet,
    /// Longest prefix the ROA allows, at least the prefix length.
    pub max_length: u8,
    /// The authorised origin; AS0 (RFC 6483 section 4) authorises nobody.
    pub asn: u32,
}

impl fmt::Display for Vrp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{} AS{}", self.prefix, self.max_length, self.asn)
    }
}

/// The RFC 6811 section 2 validation state of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginState {
    /// A VRP covers the prefix and matches origin and length.
    Valid,
    /// VRPs cover the prefix and none matches; the first covering VRP, for the reason text.
    Invalid(Vrp),
    /// No VRP covers the prefix.
    NotFound,
}

impl OriginState {
    /// `valid`, `invalid` or `not_found`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid(_) => "invalid",
            Self::NotFound => "not_found",
        }
    }
}

/// The VRPs of one address family as one sorted array of (length, left-aligned network,
/// maxLength, ASN), and for each prefix length present the range of its entries, so a lookup
/// does one binary search per length that exists (about 25 of 129 in the global table).
/// Building is one sort: 500k VRPs take tens of milliseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Table {
    entries: Vec<(u8, u128, u8, u32)>,
    lengths: Vec<(u8, usize, usize)>,
}

/// The address of `prefix` as a left-aligned 128-bit number (IPv4 in the top 32 bits).
fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The prefix of a left-aligned number and a length (at most 32 for IPv4, 128 for IPv6).
fn unbits(network: u128, length: u8, v4: bool) -> IpNet {
    if v4 {
        let address = Ipv4Addr::from(u32::try_from(network >> 96).unwrap_or(0));
        IpNet::V4(Ipv4Net::new(address, length.min(32)).unwrap_or_default())
    } else {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(network), length.min(128)).unwrap_or_default())
    }
}

/// `value` with all but the first `length` bits zero.
fn mask(value: u128, length: u8) -> u128 {
    match length {
        0 => 0,
        128.. => value,
        _ => value & !(u128::MAX >> length),
    }
}

impl Table {
    fn build(mut entries: Vec<(u8, u128, u8, u32)>) -> Table {
        entries.sort_unstable();
        entries.dedup();
        let mut lengths: Vec<(u8, usize, usize)> = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            match lengths.last_mut() {
                Some((length, _, end)) if *length == entry.0 => *end = position + 1,
                _ => lengths.push((entry.0, position, position + 1)),
            }
        }
        Table { entries, lengths }
    }

    fn count(&self) -> usize {
        self.entries.len()
    }

    /// Every VRP covering a route of `prefix` (ROA prefix length at most the route's).
    fn covering(&self, prefix: &Prefix) -> impl Iterator<Item = Vrp> + '_ {
        let route = bits(prefix.network());
        let length = prefix.prefix_len();
        let v4 = prefix.addr().is_ipv4();
        self.lengths
            .iter()
            .take_while(move |(candidate, _, _)| *candidate <= length)
            .flat_map(move |(candidate, start, end)| {
                let network = mask(route, *candidate);
                let slice = self.entries.get(*start..*end).unwrap_or_default();
                let first = slice.partition_point(|entry| entry.1 < network);
                let roa = unbits(network, *candidate, v4);
                slice
                    .get(first..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(move |entry| entry.1 == network)
                    .map(move |entry| Vrp {
                        prefix: roa,
                        max_length: entry.2,
                        asn: entry.3,
                    })
            })
    }
}

/// The ASPA records: customer ASN to its sorted provider ASNs.
pub type Aspas = HashMap<u32, Vec<u32>, FxBuildHasher>;

/// The whole validated payload. Cheap to query from many threads; never changed in place.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VrpSet {
    ipv4: Table,
    ipv6: Table,
    aspas: Aspas,
}

impl VrpSet {
    /// A set of these VRPs and ASPA records (duplicates counted once).
    pub fn new(vrps: impl IntoIterator<Item = Vrp>, aspas: Aspas) -> VrpSet {
        let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
        for vrp in vrps {
            let entry = (
                vrp.prefix.prefix_len(),
                bits(vrp.prefix.network()),
                vrp.max_length,
                vrp.asn,
            );
            match vrp.prefix {
                IpNet::V4(_) => ipv4.push(entry),
                IpNet::V6(_) => ipv6.push(entry),
            }
        }
        let mut set = VrpSet {
            ipv4: Table::build(ipv4),
            ipv6: Table::build(ipv6),
            aspas,
        };
        for providers in set.aspas.values_mut() {
            providers.sort_unstable();
            providers.dedup();
        }
        set
    }

    fn table(&self, prefix: &Prefix) -> &Table {
        match prefix {
            IpNet::V4(_) => &self.ipv4,
            IpNet::V6(_) => &self.ipv6,
        }
    }

    /// Number of distinct VRPs of `family`.
    pub fn count(&self, family: Family) -> usize {
        match family {
            Family::Ipv4 => self.ipv4.count(),
            Family::Ipv6 => self.ipv6.count(),
        }
    }

    /// Number of ASPA records.
    pub fn aspa_count(&self) -> usize {
        self.aspas.len()
    }

    /// The ASPA records.
    pub fn aspas(&self) -> &Aspas {
        &self.aspas
    }

    /// RFC 6811 section 2: the state of a route of `prefix` originated by `origin` (`None`
    /// when the AS_PATH ends in an AS_SET, which no VRP matches).
    pub fn validate(&self, prefix: &Prefix, origin: Option<u32>) -> OriginState {
        let length = prefix.prefix_len();
        let mut first = None;
        for vrp in self.table(prefix).covering(prefix) {
            if origin.is_some_and(|asn| asn == vrp.asn && asn != 0) && length <= vrp.max_length {
                return OriginState::Valid;
            }
            first.get_or_insert(vrp);
        }
        match first {
            Some(vrp) => OriginState::Invalid(vrp),
            None => OriginState::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrp(prefix: &str, max_length: u8, asn: u32) -> Vrp {
        Vrp {
            prefix: prefix.parse().expect("test prefix is valid"),
            max_length,
            asn,
        }
    }

    fn prefix(text: &str) -> Prefix {
        text.parse().expect("test prefix is valid")
    }

    fn set(vrps: &[Vrp]) -> VrpSet {
        VrpSet::new(vrps.iter().copied(), Aspas::default())
    }

    #[test]
    fn exact_match_of_origin_and_length_is_valid() {
        let set = set(&[vrp("198.18.0.0/16", 16, 64510)]);
        assert_eq!(
            set.validate(&prefix("198.18.0.0/16"), Some(64510)),
            OriginState::Valid
        );
    }

    #[test]
    fn a_longer_prefix_than_max_length_is_invalid() {
        let roa = vrp("198.18.0.0/16", 20, 64510);
        let set = set(&[roa]);
        assert_eq!(
            set.validate(&prefix("198.18.16.0/20"), Some(64510)),
            OriginState::Valid
        );
        assert_eq!(
            set.validate(&prefix("198.18.16.0/24"), Some(64510)),
            OriginState::Invalid(roa)
        );
    }

    #[test]
    fn a_covering_vrp_of_another_asn_makes_the_route_invalid() {
        let roa = vrp("198.18.0.0/15", 24, 64511);
        let set = set(&[roa]);
        assert_eq!(
            set.validate(&prefix("198.19.5.0/24"), Some(64510)),
            OriginState::Invalid(roa)
        );
    }

    #[test]
    fn any_matching_vrp_among_several_covering_ones_makes_it_valid() {
        let set = set(&[
            vrp("198.18.0.0/15", 15, 64511),
            vrp("198.18.0.0/16", 24, 64510),
        ]);
        assert_eq!(
            set.validate(&prefix("198.18.7.0/24"), Some(64510)),
            OriginState::Valid
        );
    }

    #[test]
    fn uncovered_and_less_specific_routes_are_not_found() {
        let set = set(&[vrp("198.18.0.0/16", 24, 64510)]);
        assert_eq!(
            set.validate(&prefix("198.19.0.0/16"), Some(64510)),
            OriginState::NotFound
        );
        // A route shorter than the ROA prefix is not covered by it.
        assert_eq!(
            set.validate(&prefix("198.18.0.0/15"), Some(64510)),
            OriginState::NotFound
        );
    }

    #[test]
    fn as0_and_an_as_set_origin_never_match() {
        let as0 = vrp("198.18.0.0/16", 24, 0);
        let set = set(&[as0]);
        assert_eq!(
            set.validate(&prefix("198.18.1.0/24"), Some(0)),
            OriginState::Invalid(as0)
        );
        let roa = vrp("fd00:10::/32", 48, 64510);
        let set = super::VrpSet::new([roa], Aspas::default());
        assert_eq!(
            set.validate(&prefix("fd00:10:1::/48"), None),
            OriginState::Invalid(roa)
        );
        assert_eq!(
            set.validate(&prefix("fd00:10:1::/48"), Some(64510)),
            OriginState::Valid
        );
    }

    #[test]
    fn families_are_kept_apart_and_counted_without_duplicates() {
        let set = set(&[
            vrp("198.18.0.0/16", 24, 64510),
            vrp("198.18.0.0/16", 24, 64510),
            vrp("fd00::/16", 48, 64510),
            vrp("0.0.0.0/0", 32, 64512),
        ]);
        assert_eq!(set.count(Family::Ipv4), 2);
        assert_eq!(set.count(Family::Ipv6), 1);
        assert_eq!(
            set.validate(&prefix("fd01::/32"), Some(64510)),
            OriginState::NotFound
        );
        // The IPv4 default VRP covers everything of IPv4 and nothing of IPv6.
        assert!(matches!(
            set.validate(&prefix("203.0.113.0/24"), Some(64510)),
            OriginState::Invalid(_)
        ));
    }

    #[test]
    fn half_a_million_vrps_load_and_answer() {
        let vrps = (0..500_000u32).map(|index| Vrp {
            prefix: IpNet::V4(
                ipnet::Ipv4Net::new((0x0a00_0000u32 + (index << 8)).into(), 24)
                    .expect("valid length"),
            ),
            max_length: 24,
            asn: 64_512 + index % 1000,
        });
        let start = std::time::Instant::now();
        let set = VrpSet::new(vrps, Aspas::default());
        let elapsed = start.elapsed();
        assert_eq!(set.count(Family::Ipv4), 500_000);
        eprintln!("500k VRPs built in {elapsed:?}");
        assert_eq!(
            set.validate(&prefix("10.0.1.0/24"), Some(64_513)),
            OriginState::Valid
        );
        assert!(matches!(
            set.validate(&prefix("10.0.1.0/24"), Some(64_512)),
            OriginState::Invalid(_)
        ));
    }
}
