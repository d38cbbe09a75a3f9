//! Scenario tests of the RIB: RFC 7947 export rules and per-client best path.

use std::net::{IpAddr, Ipv4Addr};

use vixp_bgp::{Announcement, AsPath, Origin, Segment, SegmentKind};

use super::*;
use crate::policy::Verdict;

const ALPHA: PeerId = PeerId(1);
const BRAVO: PeerId = PeerId(2);
const CHARLIE: PeerId = PeerId(3);
const ALPHA_V6: PeerId = PeerId(4);

fn info(member: usize, last: u8) -> PeerInfo {
    PeerInfo {
        member,
        asn: 64500 + u32::from(last),
        router_id: Ipv4Addr::new(198, 18, 0, last),
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)),
        families: vec![Family::Ipv4],
    }
}

fn prefix(text: &str) -> Prefix {
    text.parse().expect("test prefix")
}

fn attributes(asns: &[u32], next_hop_last: u8, med: Option<u32>) -> Attributes {
    let mut attributes = Attributes::new(
        Origin::Igp,
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: asns.to_vec(),
            }],
        },
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, next_hop_last)),
    );
    attributes.med = med;
    attributes
}

fn announce(attributes: Attributes, prefixes: &[&str]) -> Update {
    Update {
        withdrawn: Vec::new(),
        announcements: vec![Announcement {
            attributes,
            prefixes: prefixes.iter().map(|text| prefix(text)).collect(),
        }],
        ..Update::default()
    }
}

fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|text| prefix(text)).collect(),
        announcements: Vec::new(),
        ..Update::default()
    }
}

/// Applies an update with every route accepted.
fn rib_update(rib: &mut Rib, peer: PeerId, update: Update) -> usize {
    rib.update(peer, update, &|_, _| Verdict::Accept)
}

/// Bravo and charlie both announce 198.18.200.0/24; bravo's one-ASN path is the best,
/// charlie's (two ASNs, the second `charlie_second_asn`) the second best.
fn bravo_best_charlie_second(rib: &mut Rib, charlie_second_asn: u32) {
    rib_update(
        rib,
        BRAVO,
        announce(attributes(&[64502], 12, None), &["198.18.200.0/24"]),
    );
    rib_update(
        rib,
        CHARLIE,
        announce(
            attributes(&[64503, charlie_second_asn], 13, None),
            &["198.18.200.0/24"],
        ),
    );
}

/// Drains everything pending for `peer`.
fn drain(rib: &mut Rib, peer: PeerId) -> Export {
    let mut all = Export::default();
    while let Some(export) = rib.take_export(peer, 2) {
        all.announce.extend(export.announce);
        all.withdraw.extend(export.withdraw);
    }
    all
}

fn announced_next_hops(export: &Export, wanted: &str) -> Vec<IpAddr> {
    export
        .announce
        .iter()
        .filter(|(_, prefixes)| prefixes.contains(&prefix(wanted)))
        .map(|(attributes, _)| attributes.next_hop)
        .collect()
}

fn three_members() -> Rib {
    let mut rib = Rib::new();
    rib.peer_up(ALPHA, info(0, 11));
    rib.peer_up(BRAVO, info(1, 12));
    rib.peer_up(CHARLIE, info(2, 13));
    rib
}

#[test]
fn a_route_reaches_every_other_member_unchanged_and_never_its_originator() {
    let mut rib = three_members();
    rib_update(
        &mut rib,
        ALPHA,
        announce(
            attributes(&[64511, 65000], 11, Some(42)),
            &["198.18.128.0/24"],
        ),
    );
    for client in [BRAVO, CHARLIE] {
        let export = drain(&mut rib, client);
        assert_eq!(export.announce.len(), 1);
        let (sent, prefixes) = &export.announce[0];
        assert_eq!(prefixes, &vec![prefix("198.18.128.0/24")]);
        assert_eq!(**sent, attributes(&[64511, 65000], 11, Some(42)));
    }
    assert!(drain(&mut rib, ALPHA).is_empty(), "not reflected");
    assert_eq!(rib.counts(ALPHA, Family::Ipv4).received, 1);
    assert_eq!(rib.counts(BRAVO, Family::Ipv4).advertised, 1);
    assert_eq!(rib.counts(ALPHA, Family::Ipv4).advertised, 0);
}

#[test]
fn the_originator_of_the_best_route_gets_the_second_best() {
    let mut rib = three_members();
    bravo_best_charlie_second(&mut rib, 64999);
    let to_alpha = drain(&mut rib, ALPHA);
    let to_bravo = drain(&mut rib, BRAVO);
    let to_charlie = drain(&mut rib, CHARLIE);
    let bravo_hop = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 12));
    let charlie_hop = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 13));
    assert_eq!(
        announced_next_hops(&to_alpha, "198.18.200.0/24").last(),
        Some(&bravo_hop)
    );
    assert_eq!(
        announced_next_hops(&to_bravo, "198.18.200.0/24"),
        vec![charlie_hop]
    );
    assert_eq!(
        announced_next_hops(&to_charlie, "198.18.200.0/24"),
        vec![bravo_hop]
    );
}

#[test]
fn a_withdrawal_falls_back_to_the_next_path_or_withdraws() {
    let mut rib = three_members();
    bravo_best_charlie_second(&mut rib, 1);
    drain(&mut rib, ALPHA);
    drain(&mut rib, BRAVO);
    drain(&mut rib, CHARLIE);

    rib_update(&mut rib, BRAVO, withdraw(&["198.18.200.0/24"]));
    let to_alpha = drain(&mut rib, ALPHA);
    assert_eq!(
        announced_next_hops(&to_alpha, "198.18.200.0/24"),
        vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 13))]
    );
    let to_charlie = drain(&mut rib, CHARLIE);
    assert_eq!(to_charlie.withdraw, vec![prefix("198.18.200.0/24")]);
    assert!(
        drain(&mut rib, BRAVO).is_empty(),
        "bravo already had charlie's path: its choice did not change"
    );

    rib_update(&mut rib, CHARLIE, withdraw(&["198.18.200.0/24"]));
    assert_eq!(
        drain(&mut rib, ALPHA).withdraw,
        vec![prefix("198.18.200.0/24")]
    );
    drop((to_alpha, to_charlie));
    rib.collect_garbage();
    assert_eq!(rib.totals().paths, 0);
    assert_eq!(rib.totals().prefixes, 0);
    assert_eq!(
        rib.totals().attribute_sets,
        0,
        "released attribute sets are freed"
    );
}

#[test]
fn a_session_that_drops_withdraws_all_its_routes_from_the_others() {
    let mut rib = three_members();
    rib_update(
        &mut rib,
        ALPHA,
        announce(
            attributes(&[64511], 11, None),
            &["198.18.128.0/24", "198.18.129.0/24"],
        ),
    );
    drain(&mut rib, BRAVO);
    rib.peer_down(ALPHA);
    let mut withdrawn = drain(&mut rib, BRAVO).withdraw;
    withdrawn.sort();
    assert_eq!(
        withdrawn,
        vec![prefix("198.18.128.0/24"), prefix("198.18.129.0/24")]
    );
    assert_eq!(rib.totals().paths, 0);
}

#[test]
fn a_new_client_gets_the_full_table_and_refresh_sends_it_again() {
    let mut rib = Rib::new();
    rib.peer_up(ALPHA, info(0, 11));
    rib_update(
        &mut rib,
        ALPHA,
        announce(
            attributes(&[64511], 11, None),
            &["198.18.128.0/24", "198.18.129.0/24"],
        ),
    );
    rib.peer_up(BRAVO, info(1, 12));
    assert_eq!(drain(&mut rib, BRAVO).prefix_count(), 2);
    assert!(rib.take_export(BRAVO, 10).is_none());
    rib.refresh(BRAVO, Family::Ipv4);
    assert_eq!(drain(&mut rib, BRAVO).prefix_count(), 2);
    assert_eq!(rib.counts(BRAVO, Family::Ipv4).advertised, 2);
}

#[test]
fn routes_with_identical_attributes_are_grouped_for_packing() {
    let mut rib = three_members();
    let prefixes: Vec<String> = (0..50)
        .map(|i| format!("198.18.{}.0/24", 128 + i))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, None), &refs),
    );
    let export = rib.take_export(BRAVO, 1000).expect("pending");
    assert_eq!(export.announce.len(), 1);
    assert_eq!(export.announce[0].1.len(), 50);
    assert_eq!(rib.totals().attribute_sets, 1);
}

#[test]
fn a_member_with_two_sessions_never_gets_its_own_routes_back() {
    let mut rib = three_members();
    let mut v6 = info(0, 11);
    v6.families = vec![Family::Ipv6];
    v6.address = "fd00:198:18::11".parse().expect("address");
    rib.peer_up(ALPHA_V6, v6);
    let mut own = attributes(&[64511], 11, None);
    own.next_hop = "fd00:198:18::11".parse().expect("address");
    rib_update(&mut rib, ALPHA_V6, announce(own, &["fd00:1:11::/48"]));
    assert!(
        drain(&mut rib, ALPHA).is_empty(),
        "v4 session of the same member"
    );
    assert!(
        drain(&mut rib, BRAVO).is_empty(),
        "bravo has no IPv6 session"
    );
}

#[test]
fn prefixes_of_a_family_not_negotiated_are_ignored() {
    let mut rib = three_members();
    let ignored = rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, None), &["fd00:1::/48"]),
    );
    assert_eq!(ignored, 1);
    assert_eq!(rib.totals().paths, 0);
}

#[test]
fn longest_match_finds_the_most_specific_prefix() {
    let mut rib = three_members();
    rib_update(
        &mut rib,
        ALPHA,
        announce(
            attributes(&[64511], 11, None),
            &["198.18.128.0/17", "198.18.130.0/24"],
        ),
    );
    let address = IpAddr::V4(Ipv4Addr::new(198, 18, 130, 7));
    assert_eq!(rib.longest_match(address), Some(prefix("198.18.130.0/24")));
    let other = IpAddr::V4(Ipv4Addr::new(198, 18, 131, 7));
    assert_eq!(rib.longest_match(other), Some(prefix("198.18.128.0/17")));
    assert_eq!(
        rib.longest_match(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1))),
        None
    );
}

#[test]
fn a_changed_announcement_replaces_the_old_path() {
    let mut rib = three_members();
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, Some(1)), &["198.18.128.0/24"]),
    );
    drain(&mut rib, BRAVO);
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, Some(2)), &["198.18.128.0/24"]),
    );
    let export = drain(&mut rib, BRAVO);
    assert_eq!(export.announce[0].0.med, Some(2));
    assert_eq!(rib.totals().paths, 1);
    assert_eq!(rib.counts(ALPHA, Family::Ipv4).received, 1);
    assert_eq!(rib.totals().attribute_sets, 1);
}

#[test]
fn the_change_log_is_trimmed_once_every_client_has_read_it() {
    let mut rib = three_members();
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, None), &["198.18.128.0/24"]),
    );
    assert_eq!(rib.totals().pending_changes, 1);
    drain(&mut rib, BRAVO);
    assert_eq!(
        rib.totals().pending_changes,
        1,
        "charlie has not read it yet"
    );
    drain(&mut rib, CHARLIE);
    drain(&mut rib, ALPHA);
    assert_eq!(rib.totals().pending_changes, 0);
}

#[test]
fn a_client_that_stops_reading_is_reported_and_does_not_pin_the_log() {
    let mut rib = Rib::with_lag_limit(4);
    rib.peer_up(ALPHA, info(0, 11));
    rib.peer_up(BRAVO, info(1, 12));
    rib.peer_up(CHARLIE, info(2, 13));
    for third in 0..10u8 {
        let text = format!("198.18.{}.0/24", 128 + third);
        rib_update(
            &mut rib,
            ALPHA,
            announce(attributes(&[64511], 11, None), &[text.as_str()]),
        );
        drain(&mut rib, ALPHA);
        drain(&mut rib, BRAVO);
    }
    assert_eq!(rib.take_lagging(), vec![CHARLIE]);
    assert!(rib.totals().pending_changes <= 4);
    assert_eq!(drain(&mut rib, BRAVO).prefix_count(), 0, "bravo kept up");
}

fn refuse_med_99(_: &Prefix, attributes: &Attributes) -> Verdict {
    if attributes.med == Some(99) {
        Verdict::Reject(crate::policy::Reason::AsPathEmpty)
    } else {
        Verdict::Accept
    }
}

#[test]
fn a_refused_route_is_kept_counted_and_never_exported() {
    let mut rib = three_members();
    rib.update(
        ALPHA,
        announce(attributes(&[64511], 11, Some(99)), &["198.18.128.0/24"]),
        &refuse_med_99,
    );
    assert!(drain(&mut rib, BRAVO).is_empty());
    let counts = rib.counts(ALPHA, Family::Ipv4);
    assert_eq!(
        (counts.received, counts.accepted, counts.filtered),
        (1, 0, 1)
    );
    let filtered = rib.filtered_from(ALPHA);
    assert_eq!(filtered.len(), 1);
    assert_eq!(
        filtered[0].filtered,
        Some(crate::policy::Reason::AsPathEmpty)
    );
    assert_eq!(rib.filtered_by_reason(), vec![(ALPHA, "as_path_empty", 1)]);

    // Accepted later: exported, and no longer counted as filtered.
    rib.update(
        ALPHA,
        announce(attributes(&[64511], 11, Some(1)), &["198.18.128.0/24"]),
        &refuse_med_99,
    );
    assert_eq!(drain(&mut rib, BRAVO).prefix_count(), 1);
    assert!(rib.filtered_from(ALPHA).is_empty());
    // Refused again: withdrawn from the others.
    rib.update(
        ALPHA,
        announce(attributes(&[64511], 11, Some(99)), &["198.18.128.0/24"]),
        &refuse_med_99,
    );
    assert_eq!(
        drain(&mut rib, BRAVO).withdraw,
        vec![prefix("198.18.128.0/24")]
    );
    rib.peer_down(ALPHA);
    assert_eq!(
        rib.totals().filtered,
        0,
        "a session going down drops its refused routes"
    );
}

#[test]
fn reevaluation_applies_a_new_policy_to_stored_routes() {
    let mut rib = three_members();
    rib.update(
        ALPHA,
        announce(attributes(&[64511], 11, Some(99)), &["198.18.128.0/24"]),
        &|_, _| Verdict::Accept,
    );
    assert_eq!(drain(&mut rib, BRAVO).prefix_count(), 1);
    rib.reevaluate(ALPHA, &refuse_med_99);
    assert_eq!(
        drain(&mut rib, BRAVO).withdraw,
        vec![prefix("198.18.128.0/24")]
    );
    rib.reevaluate(ALPHA, &|_, _| Verdict::Accept);
    assert_eq!(drain(&mut rib, BRAVO).announce.len(), 1);
    assert_eq!(rib.counts(ALPHA, Family::Ipv4).filtered, 0);
}

#[test]
fn reevaluating_several_members_sends_only_the_routes_whose_verdict_changed() {
    let mut rib = three_members();
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, Some(99)), &["198.18.128.0/24"]),
    );
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, Some(1)), &["198.18.129.0/24"]),
    );
    rib_update(
        &mut rib,
        BRAVO,
        announce(attributes(&[64512], 12, Some(99)), &["198.18.130.0/24"]),
    );
    drain(&mut rib, CHARLIE);
    let outcome = rib.reevaluate_peers(&[ALPHA, BRAVO], &|_, prefix, attributes| {
        refuse_med_99(prefix, attributes)
    });
    assert_eq!(
        outcome,
        Reevaluation {
            routes: 3,
            accepted: 0,
            refused: 2
        }
    );
    let mut withdrawn = drain(&mut rib, CHARLIE).withdraw;
    withdrawn.sort();
    assert_eq!(
        withdrawn,
        vec![prefix("198.18.128.0/24"), prefix("198.18.130.0/24")],
        "the accepted route that stays accepted is not sent again"
    );
    // The same policy again changes nothing and sends nothing.
    let again = rib.reevaluate_peers(&[ALPHA, BRAVO], &|_, prefix, attributes| {
        refuse_med_99(prefix, attributes)
    });
    assert_eq!((again.accepted, again.refused), (0, 0));
    assert!(drain(&mut rib, CHARLIE).is_empty());
    // Only the members named are judged: charlie's peer id is not, so nothing of alpha's
    // changes when only charlie is named.
    let none = rib.reevaluate_peers(&[CHARLIE], &|_, _, _| Verdict::Accept);
    assert_eq!(none.routes, 0);
    assert_eq!(rib.counts(ALPHA, Family::Ipv4).filtered, 1);
}

#[test]
fn a_member_draining_with_graceful_shutdown_loses_its_best_paths() {
    let mut rib = three_members();
    bravo_best_charlie_second(&mut rib, 1);
    drain(&mut rib, ALPHA);
    let mut draining = attributes(&[64502], 12, None);
    draining.communities.push(super::best::GRACEFUL_SHUTDOWN);
    rib_update(&mut rib, BRAVO, announce(draining, &["198.18.200.0/24"]));
    assert_eq!(
        announced_next_hops(&drain(&mut rib, ALPHA), "198.18.200.0/24"),
        vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 13))],
        "RFC 8326: traffic moves to charlie before bravo's session goes down"
    );
}

#[test]
fn a_client_excluded_by_an_action_community_gets_the_next_best_path() {
    let mut rib = three_members();
    rib.set_route_server_asn(64500);
    // Bravo's path is best but must not go to alpha (AS64511): rs:0:64511.
    let mut restricted = attributes(&[64512], 12, None);
    restricted.large_communities = vec![vixp_bgp::LargeCommunity(64500, 0, 64511)];
    rib_update(&mut rib, BRAVO, announce(restricted, &["198.18.200.0/24"]));
    rib_update(
        &mut rib,
        CHARLIE,
        announce(attributes(&[64513, 1], 13, None), &["198.18.200.0/24"]),
    );
    let charlie_hop = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 13));
    let bravo_hop = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 12));
    let to_alpha = drain(&mut rib, ALPHA);
    assert_eq!(
        announced_next_hops(&to_alpha, "198.18.200.0/24").last(),
        Some(&charlie_hop)
    );
    let to_charlie = drain(&mut rib, CHARLIE);
    let (sent, _) = to_charlie
        .announce
        .iter()
        .rev()
        .find(|(_, prefixes)| prefixes.contains(&prefix("198.18.200.0/24")))
        .expect("charlie gets bravo's path");
    assert_eq!(sent.next_hop, bravo_hop);
    assert!(
        sent.large_communities.is_empty(),
        "action communities are removed on export"
    );

    // Without the restriction alpha moves to bravo's path.
    rib_update(
        &mut rib,
        BRAVO,
        announce(attributes(&[64512], 12, None), &["198.18.200.0/24"]),
    );
    assert_eq!(
        announced_next_hops(&drain(&mut rib, ALPHA), "198.18.200.0/24").last(),
        Some(&bravo_hop)
    );
}

#[test]
fn announce_to_no_one_withdraws_from_everyone_but_the_listed_peer() {
    let mut rib = three_members();
    rib.set_route_server_asn(64500);
    rib_update(
        &mut rib,
        ALPHA,
        announce(attributes(&[64511], 11, None), &["198.18.128.0/24"]),
    );
    drain(&mut rib, BRAVO);
    drain(&mut rib, CHARLIE);
    let mut only_charlie = attributes(&[64511], 11, None);
    only_charlie.large_communities = vec![
        vixp_bgp::LargeCommunity(64500, 0, 0),
        vixp_bgp::LargeCommunity(64500, 1, 64513),
    ];
    rib_update(
        &mut rib,
        ALPHA,
        announce(only_charlie, &["198.18.128.0/24"]),
    );
    assert_eq!(
        drain(&mut rib, BRAVO).withdraw,
        vec![prefix("198.18.128.0/24")]
    );
    let to_charlie = drain(&mut rib, CHARLIE);
    assert_eq!(to_charlie.announce.len(), 1);
    assert!(to_charlie.announce[0].0.large_communities.is_empty());
}
