//! Plans a fabric reload: compares the fabric in force with the new one and says which
//! neighbor slots stay, start and end, and whose stored routes are judged again. Pure
//! functions over the fabric model; the driver carries the plan out. Must not touch tasks or
//! sockets.
//!
//! The rules (docs/route-server.md, "Reloading the fabric file"):
//! - a member added: its sessions start; a member removed: its sessions end with Cease 6/3
//!   (Peer De-configured) and its routes are withdrawn from everyone;
//! - a member's LAN address changed: that session ends (6/3) and one for the new address
//!   starts; its ASN changed: its sessions end with Cease 6/6 (Other Configuration Change) and
//!   start again;
//! - anything else about a member (max-prefix, IRR, description, ...): no reset, its stored
//!   routes are judged again; the exchange-wide policy or the LAN changed: every stored route
//!   is judged again;
//! - the route server's own identity or listeners changed: refused, a restart is needed.

use std::collections::HashMap;

use vixp_bgp::CeaseSubcode;
use vixp_fabric::{Fabric, Member, RouteServer};

use super::NeighborConfig;
use crate::control::MemberChange;
use crate::rib::PeerId;

/// The fields of the route server's own entry a reload cannot change, with their values in
/// `old` and `new` when they differ: `asn`, `router_id`, `ipv4`, `ipv6`, `bgp.port`,
/// `bgp.listen`, `bgp.hold_time`, `bgp.connect_retry`, `bgp.active_open`, `http`.
pub fn identity_changes(old: &RouteServer, new: &RouteServer) -> Vec<String> {
    let mut changes = Vec::new();
    let mut compare = |field: &str, before: String, after: String| {
        if before != after {
            changes.push(format!("{field} ({before} -> {after})"));
        }
    };
    compare("asn", old.asn.0.to_string(), new.asn.0.to_string());
    compare(
        "router_id",
        old.router_id.to_string(),
        new.router_id.to_string(),
    );
    compare("ipv4", shown(old.ipv4), shown(new.ipv4));
    compare("ipv6", shown(old.ipv6), shown(new.ipv6));
    compare(
        "bgp.port",
        old.bgp.port.to_string(),
        new.bgp.port.to_string(),
    );
    compare(
        "bgp.listen",
        format!("{:?}", old.bgp.listen),
        format!("{:?}", new.bgp.listen),
    );
    compare(
        "bgp.hold_time",
        old.bgp.hold_time.to_string(),
        new.bgp.hold_time.to_string(),
    );
    compare(
        "bgp.connect_retry",
        old.bgp.connect_retry.to_string(),
        new.bgp.connect_retry.to_string(),
    );
    compare(
        "bgp.active_open",
        old.bgp.active_open.to_string(),
        new.bgp.active_open.to_string(),
    );
    compare(
        "http",
        old.http_listen.to_string(),
        new.http_listen.to_string(),
    );
    changes
}

fn shown<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_string(), |value| value.to_string())
}

/// Stable numbers for members, so a path never goes back to the member it came from even when
/// a reload moves members around in the file.
#[derive(Debug, Default)]
pub struct MemberKeys {
    keys: HashMap<String, usize>,
    next: usize,
}

impl MemberKeys {
    /// Numbers for the members of the start-up fabric: their positions.
    pub fn new(fabric: &Fabric) -> MemberKeys {
        let keys: HashMap<String, usize> = fabric
            .members
            .iter()
            .enumerate()
            .map(|(position, member)| (member.name.clone(), position))
            .collect();
        MemberKeys {
            next: fabric.members.len(),
            keys,
        }
    }

    /// The number of member `name`, a fresh one for a member never seen.
    pub fn key(&mut self, name: &str) -> usize {
        if let Some(key) = self.keys.get(name) {
            return *key;
        }
        let key = self.next;
        self.next += 1;
        self.keys.insert(name.to_string(), key);
        key
    }
}

/// What a reload changes.
#[derive(Debug, Default)]
pub struct Plan {
    /// Slots that stay, with their configuration as of the new fabric.
    pub kept: Vec<NeighborConfig>,
    /// Slots that start, with fresh ids.
    pub added: Vec<NeighborConfig>,
    /// Slots that end, and the Cease subcode their session ends with.
    pub removed: Vec<(NeighborConfig, CeaseSubcode)>,
    /// Slots whose stored routes are judged again (`None`: every slot).
    pub reevaluate: Option<Vec<PeerId>>,
    /// Members that joined.
    pub members_added: Vec<String>,
    /// Members that left.
    pub members_removed: Vec<String>,
    /// Members whose entry changed.
    pub members_changed: Vec<MemberChange>,
    /// Whether the exchange-wide policy or the LAN changed.
    pub policy_changed: bool,
}

/// Plans the move from `old` to `new` for `route_server` (whose identity did not change, see
/// [`identity_changes`]), given the `live` slots; new slots get ids from `next_id` on.
pub fn plan(
    old: &Fabric,
    new: &Fabric,
    route_server: &RouteServer,
    live: &[NeighborConfig],
    next_id: &mut u32,
    keys: &mut MemberKeys,
) -> Plan {
    let mut plan = Plan::default();
    let wanted = super::neighbors(new, route_server);
    let mut reset_members: Vec<String> = Vec::new();
    for config in live {
        let successor = wanted
            .iter()
            .find(|slot| slot.name == config.name && slot.family == config.family);
        match successor {
            Some(slot) if slot.address == config.address && slot.asn == config.asn => {
                plan.kept.push(NeighborConfig {
                    id: config.id,
                    member: config.member,
                    ..slot.clone()
                });
            }
            Some(slot) => {
                let subcode = if slot.asn == config.asn {
                    CeaseSubcode::PeerDeconfigured
                } else {
                    CeaseSubcode::OtherConfigurationChange
                };
                plan.removed.push((config.clone(), subcode));
                reset_members.push(config.name.clone());
            }
            None => plan
                .removed
                .push((config.clone(), CeaseSubcode::PeerDeconfigured)),
        }
    }
    for slot in wanted {
        let kept = plan
            .kept
            .iter()
            .any(|kept| kept.name == slot.name && kept.family == slot.family);
        if kept {
            continue;
        }
        let id = PeerId(*next_id);
        *next_id = next_id.saturating_add(1);
        plan.added.push(NeighborConfig {
            id,
            member: keys.key(&slot.name),
            ..slot
        });
    }

    let by_name = |fabric: &'_ Fabric| -> HashMap<String, Member> {
        fabric
            .members
            .iter()
            .map(|member| (member.name.clone(), member.clone()))
            .collect()
    };
    let (before, after) = (by_name(old), by_name(new));
    for member in &new.members {
        match before.get(&member.name) {
            None => plan.members_added.push(member.name.clone()),
            Some(previous) if previous != member => plan.members_changed.push(MemberChange {
                name: member.name.clone(),
                fields: changed_fields(previous, member),
                reset: reset_members.contains(&member.name),
            }),
            Some(_) => {}
        }
    }
    for member in &old.members {
        if !after.contains_key(&member.name) {
            plan.members_removed.push(member.name.clone());
        }
    }

    plan.policy_changed = old.policy != new.policy || old.lan != new.lan;
    plan.reevaluate = if plan.policy_changed {
        None
    } else {
        Some(
            plan.kept
                .iter()
                .filter(|slot| {
                    plan.members_changed
                        .iter()
                        .any(|change| change.name == slot.name)
                })
                .map(|slot| slot.id)
                .collect(),
        )
    };
    plan
}

/// Names of the fields that differ between two entries of one member.
fn changed_fields(old: &Member, new: &Member) -> Vec<String> {
    let mut fields = Vec::new();
    let mut differs = |field: &str, changed: bool| {
        if changed {
            fields.push(field.to_string());
        }
    };
    differs("asn", old.asn != new.asn);
    differs("ipv4", old.ipv4 != new.ipv4);
    differs("ipv6", old.ipv6 != new.ipv6);
    differs("description", old.description != new.description);
    differs("public_key", old.public_key != new.public_key);
    differs("endpoint", old.endpoint != new.endpoint);
    differs("max_prefix", old.max_prefix != new.max_prefix);
    differs("irr", old.irr != new.irr);
    differs("contact", old.contact != new.contact);
    if fields.is_empty() {
        // A field this list does not name yet (the model grows): still a change.
        fields.push("other".to_string());
    }
    fields
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn fabric(members: &str, policy: &str) -> Fabric {
        let text = format!(
            "version: 1\n\
             exchange: {{name: TEST}}\n\
             lan: {{ipv4: 198.18.0.0/24, ipv6: \"fd00::/64\"}}\n\
             policy: {{allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false{policy}}}\n\
             route_servers:\n\
             \x20 - {{name: rs1, asn: 64512, ipv4: 198.18.0.1, public_key: \"{KEY}\", http: 127.0.0.1:9179}}\n\
             members:\n{members}"
        );
        Fabric::parse(&text, Path::new("fabric.yaml")).expect("valid fabric")
    }

    fn member(name: &str, asn: u32, host: u8, extra: &str) -> String {
        format!(
            "  - {{name: {name}, asn: {asn}, ipv4: 198.18.0.{host}, public_key: \"{}\"{extra}}}\n",
            key(u8::try_from(asn % 26).expect("small"))
        )
    }

    /// A distinct well-formed WireGuard key per seed below 26 (base64 of 32 octets).
    fn key(seed: u8) -> String {
        format!("{}{}=", char::from(b'A' + seed), "A".repeat(42))
    }

    fn start(fabric: &Fabric) -> (Vec<NeighborConfig>, u32, MemberKeys) {
        let route_server = fabric.route_server(None).expect("rs").clone();
        let live = super::super::neighbors(fabric, &route_server);
        let next = u32::try_from(live.len()).expect("few");
        (live, next, MemberKeys::new(fabric))
    }

    fn plan_between(old: &Fabric, new: &Fabric) -> Plan {
        let (live, mut next, mut keys) = start(old);
        let route_server = new.route_server(None).expect("rs").clone();
        plan(old, new, &route_server, &live, &mut next, &mut keys)
    }

    #[test]
    fn an_unchanged_fabric_changes_nothing() {
        let members = member("alpha", 64501, 11, "") + &member("bravo", 64502, 12, "");
        let old = fabric(&members, "");
        let plan = plan_between(&old, &old.clone());
        assert_eq!(plan.kept.len(), 2);
        assert!(plan.added.is_empty() && plan.removed.is_empty());
        assert_eq!(plan.reevaluate, Some(Vec::new()));
        assert!(!plan.policy_changed);
    }

    #[test]
    fn members_added_removed_and_readdressed_get_new_slots_and_the_rest_stay() {
        let old = fabric(
            &(member("alpha", 64501, 11, "")
                + &member("bravo", 64502, 12, "")
                + &member("charlie", 64503, 13, "")),
            "",
        );
        // bravo leaves, charlie moves to .23, delta joins, alpha stays (now last in the file).
        let new = fabric(
            &(member("delta", 64504, 14, "")
                + &member("charlie", 64503, 23, "")
                + &member("alpha", 64501, 11, "")),
            "",
        );
        let plan = plan_between(&old, &new);
        assert_eq!(plan.kept.len(), 1);
        assert_eq!(plan.kept[0].name, "alpha");
        assert_eq!(plan.kept[0].id, PeerId(0));
        assert_eq!(plan.kept[0].member, 0, "alpha keeps its member number");
        let removed: Vec<(&str, u8)> = plan
            .removed
            .iter()
            .map(|(slot, subcode)| (slot.name.as_str(), subcode.code()))
            .collect();
        assert_eq!(removed, [("bravo", 3), ("charlie", 3)]);
        let added: Vec<(&str, u32, usize)> = plan
            .added
            .iter()
            .map(|slot| (slot.name.as_str(), slot.id.0, slot.member))
            .collect();
        assert_eq!(
            added,
            [("delta", 3, 3), ("charlie", 4, 2)],
            "fresh ids, and charlie keeps its member number"
        );
        assert_eq!(plan.members_added, ["delta"]);
        assert_eq!(plan.members_removed, ["bravo"]);
        assert_eq!(plan.members_changed.len(), 1);
        assert_eq!(plan.members_changed[0].fields, ["ipv4"]);
        assert!(plan.members_changed[0].reset);
    }

    #[test]
    fn an_asn_change_resets_with_other_configuration_change() {
        let old = fabric(&member("alpha", 64501, 11, ""), "");
        let new = fabric(&member("alpha", 64601, 11, ""), "");
        let plan = plan_between(&old, &new);
        assert_eq!(plan.removed.len(), 1);
        assert_eq!(plan.removed[0].1, CeaseSubcode::OtherConfigurationChange);
        assert_eq!(plan.added.len(), 1);
        assert_eq!(plan.added[0].asn, 64601);
    }

    #[test]
    fn a_max_prefix_or_description_change_keeps_the_session_and_reevaluates_that_member() {
        let old = fabric(
            &(member("alpha", 64501, 11, "") + &member("bravo", 64502, 12, "")),
            "",
        );
        let new = fabric(
            &(member(
                "alpha",
                64501,
                11,
                ", max_prefix: {ipv4: 10}, description: Alpha",
            ) + &member("bravo", 64502, 12, "")),
            "",
        );
        let plan = plan_between(&old, &new);
        assert_eq!(plan.kept.len(), 2);
        assert!(plan.removed.is_empty() && plan.added.is_empty());
        assert_eq!(plan.kept[0].description.as_deref(), Some("Alpha"));
        assert_eq!(plan.reevaluate, Some(vec![PeerId(0)]));
        assert_eq!(
            plan.members_changed[0].fields,
            ["description", "max_prefix"]
        );
        assert!(!plan.members_changed[0].reset);
    }

    #[test]
    fn a_policy_change_reevaluates_everyone() {
        let members = member("alpha", 64501, 11, "");
        let old = fabric(&members, "");
        let new = fabric(&members, ", max_as_path_length: 4");
        let plan = plan_between(&old, &new);
        assert!(plan.policy_changed);
        assert_eq!(plan.reevaluate, None);
        assert_eq!(plan.kept.len(), 1);
    }

    #[test]
    fn identity_changes_name_each_field() {
        let old = fabric(&member("alpha", 64501, 11, ""), "");
        let mut new = old.clone();
        let route_server = &mut new.route_servers[0];
        route_server.asn = vixp_fabric::Asn(64513);
        route_server.http_listen = "127.0.0.1:8080".parse().expect("address");
        let changes = identity_changes(&old.route_servers[0], &new.route_servers[0]);
        assert_eq!(
            changes,
            [
                "asn (64512 -> 64513)",
                "http (127.0.0.1:9179 -> 127.0.0.1:8080)"
            ]
        );
        assert!(identity_changes(&old.route_servers[0], &old.route_servers[0]).is_empty());
    }
}
