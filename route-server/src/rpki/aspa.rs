//! ASPA verification of an AS_PATH received from a route server client
//! (draft-ietf-sidrops-aspa-verification, section 6: "upstream" verification, which the draft
//! applies to routes a route server receives from its RS-clients, as BIRD 2.16's
//! `aspa_check_upstream` and OpenBGPD do). Pure: path and ASPA records in, state out.

use vixp_bgp::{AsPath, SegmentKind};

use super::vrps::Aspas;

/// The outcome of ASPA verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AspaState {
    /// Every hop is attested customer-to-provider.
    Valid,
    /// Some AS on the path has an ASPA that does not list the next AS as its provider (or the
    /// path holds an AS_SET): the path is a leak or forged. The pair is (customer, next AS).
    Invalid {
        /// The AS whose ASPA does not allow the hop.
        customer: u32,
        /// The AS the route went to from it.
        next: u32,
    },
    /// No hop is refused, but some are not attested.
    Unknown,
}

impl AspaState {
    /// `valid`, `invalid` or `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid { .. } => "invalid",
            Self::Unknown => "unknown",
        }
    }
}

/// The hop function of the draft (section 5): is `provider` attested as a provider of
/// `customer`? `None`: `customer` has no ASPA ("No Attestation").
fn provider(aspas: &Aspas, customer: u32, provider: u32) -> Option<bool> {
    aspas
        .get(&customer)
        .map(|providers| providers.binary_search(&provider).is_ok())
}

/// Upstream verification (section 6.1) of `path` as received from the member, whose ASN is
/// the path's first.
pub fn verify_upstream(path: &AsPath, aspas: &Aspas) -> AspaState {
    let mut asns: Vec<u32> = Vec::new();
    for segment in &path.segments {
        match segment.kind {
            SegmentKind::Sequence => asns.extend(segment.asns.iter().copied()),
            // An AS_SET makes the path Invalid (section 6, step 1); confederation segments
            // never reach a route server.
            SegmentKind::Set | SegmentKind::ConfedSequence | SegmentKind::ConfedSet => {
                if let (Some(first), Some(next)) = (asns.last(), segment.asns.first()) {
                    return AspaState::Invalid {
                        customer: *next,
                        next: *first,
                    };
                }
                return AspaState::Invalid {
                    customer: segment.asns.first().copied().unwrap_or(0),
                    next: 0,
                };
            }
        }
    }
    // Prepends collapse to one AS; the draft numbers the path from the origin (AS(1)) to the
    // neighbor (AS(N)).
    asns.dedup();
    asns.reverse();
    if asns.len() <= 1 {
        return AspaState::Valid;
    }
    let mut all_attested = true;
    for pair in asns.windows(2) {
        let [customer, next] = [pair[0], pair[1]];
        match provider(aspas, customer, next) {
            Some(true) => {}
            Some(false) => return AspaState::Invalid { customer, next },
            None => all_attested = false,
        }
    }
    if all_attested {
        AspaState::Valid
    } else {
        AspaState::Unknown
    }
}

#[cfg(test)]
mod tests {
    use vixp_bgp::Segment;

    use super::*;

    fn path(asns: &[u32]) -> AsPath {
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: asns.to_vec(),
            }],
        }
    }

    fn aspas(records: &[(u32, &[u32])]) -> Aspas {
        records
            .iter()
            .map(|(customer, providers)| (*customer, providers.to_vec()))
            .collect()
    }

    #[test]
    fn a_member_originating_its_own_route_is_valid() {
        assert_eq!(
            verify_upstream(&path(&[64501, 64501, 64501]), &Aspas::default()),
            AspaState::Valid
        );
    }

    #[test]
    fn a_customer_route_through_an_attested_provider_is_valid() {
        // 64510 is a customer of the member 64501.
        let records = aspas(&[(64510, &[64501, 64520])]);
        assert_eq!(
            verify_upstream(&path(&[64501, 64510]), &records),
            AspaState::Valid
        );
    }

    #[test]
    fn a_hop_the_customer_did_not_attest_is_invalid() {
        // 64510 names only 64520 as its provider: the member 64501 leaks its route.
        let records = aspas(&[(64510, &[64520])]);
        assert_eq!(
            verify_upstream(&path(&[64501, 64510]), &records),
            AspaState::Invalid {
                customer: 64510,
                next: 64501
            }
        );
    }

    #[test]
    fn a_hop_without_an_aspa_is_unknown() {
        let records = aspas(&[(64510, &[64511])]);
        // 64510 -> 64511 attested, 64511 has no ASPA.
        assert_eq!(
            verify_upstream(&path(&[64501, 64511, 64510]), &records),
            AspaState::Unknown
        );
    }

    #[test]
    fn an_invalid_hop_anywhere_wins_over_unknown_ones() {
        let records = aspas(&[(64512, &[64999])]);
        assert_eq!(
            verify_upstream(&path(&[64501, 64511, 64512]), &records),
            AspaState::Invalid {
                customer: 64512,
                next: 64511
            }
        );
    }

    #[test]
    fn an_as_set_makes_the_path_invalid() {
        let mut with_set = path(&[64501, 64510]);
        with_set.segments.push(Segment {
            kind: SegmentKind::Set,
            asns: vec![64511, 64512],
        });
        assert!(matches!(
            verify_upstream(&with_set, &Aspas::default()),
            AspaState::Invalid { .. }
        ));
    }
}
