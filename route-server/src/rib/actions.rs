//! Euro-IX action communities: what a member asks the route server to do with a route when
//! exporting it (announce to whom, prepend, NO_EXPORT), with the route server's own ASN as the
//! community's global part. Pure functions of a path's attributes and a client's ASN; must not
//! store anything.
//!
//! | standard | large | meaning |
//! |---|---|---|
//! | `0:peer` | `rs:0:peer` | do not announce to `peer` |
//! | `0:rs` | `rs:0:0` | announce to no one ... |
//! | `rs:peer` | `rs:1:peer` | ... except (also) to `peer` |
//! | | `rs:101..103:peer` / `rs:101..103:0` | prepend the member's ASN 1-3 times to `peer` / to all |
//! | | `rs:65281:peer` | add NO_EXPORT when announcing to `peer` |
//!
//! Standard communities only exist for 16-bit ASNs. Action communities are removed before
//! export; every other community passes unchanged.

use vixp_bgp::{Attributes, LargeCommunity, Segment, SegmentKind};

/// NO_EXPORT (RFC 1997).
pub const NO_EXPORT: u32 = 0xffff_ff01;
/// Large community "function" of a do-not-announce-to action.
pub const DO_NOT_ANNOUNCE: u32 = 0;
/// Large community function of an announce-to action.
pub const ANNOUNCE: u32 = 1;
/// Large community functions of the prepend actions (1, 2, 3 times).
pub const PREPEND: std::ops::RangeInclusive<u32> = 101..=103;
/// Large community function of add-NO_EXPORT-to-peer.
pub const ADD_NO_EXPORT: u32 = 65281;

/// Whether a standard community is an action community of the route server `rs`.
fn standard_action(community: u32, rs: u32) -> bool {
    let high = community >> 16;
    high == 0 || (rs <= 0xffff && high == rs)
}

/// Whether the attributes carry any action community for the route server `rs`.
pub fn has_actions(attributes: &Attributes, rs: u32) -> bool {
    attributes
        .communities
        .iter()
        .any(|community| standard_action(*community, rs))
        || attributes
            .large_communities
            .iter()
            .any(|community| community.0 == rs)
}

/// Whether the route may be announced to a client with ASN `client` (the deny list wins over
/// everything; "announce to no one" is lifted only for the peers listed as announce-to).
pub fn allowed(attributes: &Attributes, rs: u32, client: u32) -> bool {
    let short = |value: u32| value <= 0xffff;
    let mut none = false;
    let mut listed = false;
    for community in &attributes.communities {
        let (high, low) = (community >> 16, community & 0xffff);
        if high == 0 && short(client) && low == client {
            return false;
        }
        if high == 0 && short(rs) && low == rs {
            none = true;
        }
        if short(rs) && high == rs && short(client) && low == client {
            listed = true;
        }
    }
    for LargeCommunity(global, function, peer) in &attributes.large_communities {
        if *global != rs {
            continue;
        }
        match (*function, *peer) {
            (DO_NOT_ANNOUNCE, 0) => none = true,
            (DO_NOT_ANNOUNCE, peer) if peer == client => return false,
            (ANNOUNCE, peer) if peer == client => listed = true,
            _ => {}
        }
    }
    !none || listed
}

/// Why the route is withheld from a client with ASN `client`, in plain words naming the
/// community, or `None` when it may be announced to it.
pub fn withheld_because(attributes: &Attributes, rs: u32, client: u32) -> Option<String> {
    if allowed(attributes, rs, client) {
        return None;
    }
    let short = |value: u32| value <= 0xffff;
    if short(client) && attributes.communities.contains(&client) {
        return Some(format!(
            "the sender asked not to announce it to AS{client} (0:{client})"
        ));
    }
    if attributes
        .large_communities
        .contains(&LargeCommunity(rs, DO_NOT_ANNOUNCE, client))
    {
        return Some(format!(
            "the sender asked not to announce it to AS{client} ({rs}:0:{client})"
        ));
    }
    Some(format!(
        "the sender asked to announce it to no one but the peers it lists ({rs}:0:0 or 0:{rs}), and AS{client} is not among them"
    ))
}

/// The attributes as exported to a client with ASN `client`: action communities removed,
/// prepends and NO_EXPORT applied. Only call it when [`has_actions`] is true.
pub fn export_view(attributes: &Attributes, rs: u32, client: u32) -> Attributes {
    let mut prepend = 0u32;
    let mut no_export = false;
    for LargeCommunity(global, function, peer) in &attributes.large_communities {
        if *global != rs {
            continue;
        }
        if PREPEND.contains(function) && (*peer == 0 || *peer == client) {
            prepend = prepend.max(function - PREPEND.start() + 1);
        }
        if *function == ADD_NO_EXPORT && *peer == client {
            no_export = true;
        }
    }
    let mut exported = attributes.clone();
    exported
        .communities
        .retain(|community| !standard_action(*community, rs));
    exported
        .large_communities
        .retain(|community| community.0 != rs);
    if no_export && !exported.communities.contains(&NO_EXPORT) {
        exported.communities.push(NO_EXPORT);
    }
    if prepend > 0
        && let Some(first) = exported.as_path.first_asn()
    {
        let extra = std::iter::repeat_n(first, usize::try_from(prepend).unwrap_or(0));
        match exported.as_path.segments.first_mut() {
            Some(segment) if segment.kind == SegmentKind::Sequence => {
                let mut asns: Vec<u32> = extra.collect();
                asns.append(&mut segment.asns);
                segment.asns = asns;
            }
            _ => exported.as_path.segments.insert(
                0,
                Segment {
                    kind: SegmentKind::Sequence,
                    asns: extra.collect(),
                },
            ),
        }
    }
    exported
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use vixp_bgp::{AsPath, Origin};

    use super::*;

    const RS: u32 = 64500;

    fn with(communities: &[u32], large: &[(u32, u32, u32)]) -> Attributes {
        let mut attributes = Attributes::new(
            Origin::Igp,
            AsPath {
                segments: vec![Segment {
                    kind: SegmentKind::Sequence,
                    asns: vec![64501, 65010],
                }],
            },
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)),
        );
        attributes.communities = communities.to_vec();
        attributes.large_communities = large
            .iter()
            .map(|(a, b, c)| LargeCommunity(*a, *b, *c))
            .collect();
        attributes
    }

    #[test]
    fn do_not_announce_to_one_peer() {
        let standard = with(&[64502], &[]);
        assert!(!allowed(&standard, RS, 64502));
        assert!(allowed(&standard, RS, 64503));
        let large = with(&[], &[(RS, 0, 64502)]);
        assert!(!allowed(&large, RS, 64502));
        assert!(allowed(&large, RS, 64503));
        assert!(has_actions(&large, RS));
    }

    #[test]
    fn announce_to_no_one_except_the_listed_peers() {
        let standard = with(&[RS, (RS << 16) | 64503], &[]);
        assert!(!allowed(&standard, RS, 64502));
        assert!(allowed(&standard, RS, 64503));
        let large = with(&[], &[(RS, 0, 0), (RS, 1, 64503)]);
        assert!(!allowed(&large, RS, 64502));
        assert!(allowed(&large, RS, 64503));
    }

    #[test]
    fn the_reason_names_the_community() {
        let large = with(&[], &[(RS, 0, 64502)]);
        let reason = withheld_because(&large, RS, 64502).expect("withheld");
        assert!(reason.contains("64500:0:64502"), "{reason}");
        assert_eq!(withheld_because(&large, RS, 64503), None);
        let none = with(&[RS], &[]);
        let reason = withheld_because(&none, RS, 64503).expect("withheld");
        assert!(reason.contains("no one"), "{reason}");
    }

    #[test]
    fn other_communities_are_not_actions_and_pass_unchanged() {
        let plain = with(&[(64501 << 16) | 100], &[(64501, 1, 2)]);
        assert!(!has_actions(&plain, RS));
        assert!(allowed(&plain, RS, 64502));
        let mixed = with(
            &[(64501 << 16) | 100, 64502],
            &[(64501, 1, 2), (RS, 0, 64502)],
        );
        let exported = export_view(&mixed, RS, 64503);
        assert_eq!(exported.communities, vec![(64501 << 16) | 100]);
        assert_eq!(
            exported.large_communities,
            vec![LargeCommunity(64501, 1, 2)]
        );
    }

    #[test]
    fn prepends_apply_to_the_named_peer_or_to_all() {
        let to_bravo = with(&[], &[(RS, 102, 64502)]);
        assert_eq!(
            export_view(&to_bravo, RS, 64502).as_path.segments[0].asns,
            vec![64501, 64501, 64501, 65010]
        );
        assert_eq!(
            export_view(&to_bravo, RS, 64503).as_path.segments[0].asns,
            vec![64501, 65010]
        );
        let to_all = with(&[], &[(RS, 101, 0)]);
        assert_eq!(
            export_view(&to_all, RS, 64503).as_path.segments[0].asns,
            vec![64501, 64501, 65010]
        );
    }

    #[test]
    fn no_export_is_added_for_the_named_peer() {
        let attributes = with(&[], &[(RS, 65281, 64502)]);
        assert_eq!(
            export_view(&attributes, RS, 64502).communities,
            vec![NO_EXPORT]
        );
        assert!(export_view(&attributes, RS, 64503).communities.is_empty());
    }
}
