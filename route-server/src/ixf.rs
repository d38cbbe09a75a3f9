//! The IX-F member export (Euro-IX / IX-F member list, JSON schema version 1.0), built from the
//! fabric file alone. Pure: takes the fabric and the time of export; must not read the clock,
//! the RIB or any file, and must not expose keys, endpoints or anything not listed below.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use vixp_fabric::{Fabric, Member};

/// Version of the IX-F member list schema this export follows.
pub const SCHEMA_VERSION: &str = "1.0";
/// The `ixp_id` of the exchange in the export: a fabric file describes one exchange, so the
/// value is fixed (the schema leaves it free to the IXP as long as it is persistent).
pub const IXP_ID: u32 = 1;
/// The `ixf_id` written when the fabric has no `exchange.ixf_id`: the schema requires an
/// integer, and 0 is never assigned by the IX-F database.
pub const UNREGISTERED_IXF_ID: u32 = 0;
/// The id of the one peering LAN in `vlan` and in every connection's `vlan_list`. The overlay
/// LAN carries no 802.1Q tag; the schema leaves the value free to the IXP.
pub const VLAN_ID: u32 = 1;

/// The IX-F member export of `fabric`, stamped with `now` (RFC 3339, UTC).
///
/// One `ixp_list` entry for the exchange with its peering LAN; one `member_list` entry per
/// member (route servers are not members) with one active connection whose VLAN entry holds
/// the member's LAN address per family, its AS-SET as `as_macro`, its max-prefix, and
/// `routeserver: true` when a route server of the exchange has an address of that family.
pub fn member_export(fabric: &Fabric, now: SystemTime) -> Value {
    json!({
        "version": SCHEMA_VERSION,
        "timestamp": rfc3339_utc(now),
        "ixp_list": [exchange_entry(fabric)],
        "member_list": fabric
            .members
            .iter()
            .map(|member| member_entry(fabric, member))
            .collect::<Vec<_>>(),
    })
}

fn exchange_entry(fabric: &Fabric) -> Value {
    let exchange = &fabric.exchange;
    let mut entry = Map::new();
    entry.insert("ixp_id".into(), json!(IXP_ID));
    entry.insert(
        "ixf_id".into(),
        json!(exchange.ixf_id.unwrap_or(UNREGISTERED_IXF_ID)),
    );
    entry.insert("shortname".into(), json!(exchange.name));
    if let Some(description) = &exchange.description {
        entry.insert("name".into(), json!(description));
    }
    match exchange.contact.as_deref().map(Contact::classify) {
        Some(Contact::Email(address)) => {
            entry.insert("support_email".into(), json!(address));
        }
        Some(Contact::Url(url)) => {
            entry.insert("url".into(), json!(url));
        }
        None => {}
    }
    let lan = &fabric.lan;
    entry.insert(
        "vlan".into(),
        json!([{
            "id": VLAN_ID,
            "name": format!("{} peering LAN", exchange.name),
            "ipv4": {
                "prefix": lan.ipv4.network().to_string(),
                "mask_length": lan.ipv4.prefix_len(),
            },
            "ipv6": {
                "prefix": lan.ipv6.network().to_string(),
                "mask_length": lan.ipv6.prefix_len(),
            },
        }]),
    );
    Value::Object(entry)
}

fn member_entry(fabric: &Fabric, member: &Member) -> Value {
    let mut entry = Map::new();
    entry.insert("asnum".into(), json!(member.asn.0));
    entry.insert("member_type".into(), json!("peering"));
    entry.insert(
        "name".into(),
        json!(member.description.as_deref().unwrap_or(&member.name)),
    );
    match member.contact.as_deref().map(Contact::classify) {
        Some(Contact::Email(address)) => {
            entry.insert("contact_email".into(), json!([address]));
        }
        Some(Contact::Url(url)) => {
            entry.insert("url".into(), json!(url));
        }
        None => {}
    }
    let mut vlan = Map::new();
    vlan.insert("vlan_id".into(), json!(VLAN_ID));
    if let Some(address) = member.ipv4 {
        vlan.insert(
            "ipv4".into(),
            address_entry(
                address.to_string(),
                member,
                member.max_prefix.ipv4,
                route_server_ipv4(fabric),
            ),
        );
    }
    if let Some(address) = member.ipv6 {
        vlan.insert(
            "ipv6".into(),
            address_entry(
                address.to_string(),
                member,
                member.max_prefix.ipv6,
                route_server_ipv6(fabric),
            ),
        );
    }
    entry.insert(
        "connection_list".into(),
        json!([{
            "ixp_id": IXP_ID,
            "state": "active",
            "vlan_list": [Value::Object(vlan)],
        }]),
    );
    Value::Object(entry)
}

fn address_entry(address: String, member: &Member, max_prefix: u32, routeserver: bool) -> Value {
    let mut entry = Map::new();
    entry.insert("address".into(), json!(address));
    if let Some(as_set) = member.irr.as_ref().and_then(|irr| irr.as_set.as_ref()) {
        entry.insert("as_macro".into(), json!(as_set));
    }
    entry.insert("routeserver".into(), json!(routeserver));
    entry.insert("max_prefix".into(), json!(max_prefix));
    Value::Object(entry)
}

/// Whether a member can reach a route server over IPv4: some route server has an IPv4 address.
fn route_server_ipv4(fabric: &Fabric) -> bool {
    fabric
        .route_servers
        .iter()
        .any(|route_server| route_server.ipv4.is_some())
}

/// Whether a member can reach a route server over IPv6: some route server has an IPv6 address.
fn route_server_ipv6(fabric: &Fabric) -> bool {
    fabric
        .route_servers
        .iter()
        .any(|route_server| route_server.ipv6.is_some())
}

/// A contact from the fabric file: an e-mail address or a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact<'a> {
    Email(&'a str),
    Url(&'a str),
}

impl<'a> Contact<'a> {
    /// `mailto:` and bare `local@domain` are e-mail addresses; anything else is a URL.
    fn classify(contact: &'a str) -> Self {
        let contact = contact.trim();
        let address = contact.strip_prefix("mailto:").unwrap_or(contact);
        if !address.contains("://") && address.contains('@') {
            Self::Email(address)
        } else {
            Self::Url(contact)
        }
    }
}

/// `time` as RFC 3339 `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds); times before 1970 are
/// written as the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    const FABRIC: &str = r#"
version: 1
exchange:
  name: VIXP-Test
  description: Test exchange
  ixf_id: 4321
  contact: noc@ix.example
lan:
  ipv4: 198.18.0.0/24
  ipv6: fd00:198:18::/64
route_servers:
  - name: rs1
    asn: 64500
    ipv4: 198.18.0.1
    public_key: "bQFSGAFGz4WAtR5J4mFdMG03v4oNIsmuIMwLVktSHYM="
members:
  - name: alpha
    asn: 64501
    description: Alpha Networks
    ipv4: 198.18.0.11
    ipv6: "fd00:198:18::11"
    public_key: "mJtAa3uh8CHjXSzC7D08/dNe0F58uCM9H8//s4zbTJQ="
    max_prefix: {ipv4: 1000, ipv6: 200}
    irr: {as_set: AS-ALPHA, sources: [RIPE]}
    contact: noc@alpha.example
  - name: bravo
    asn: 4200000001
    ipv4: 198.18.0.12
    public_key: "xOBpM3YZQdcOgZc59Fnnl/nIOA2AVRtqgPiZJzYrGFs="
    contact: https://bravo.example/peering
"#;

    fn fabric() -> Fabric {
        Fabric::parse(FABRIC, Path::new("test.yaml")).expect("test fabric parses")
    }

    fn export() -> Value {
        member_export(&fabric(), UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(4_107_542_399)),
            "2100-02-28T23:59:59Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(10)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn the_exchange_entry_carries_ids_names_contact_and_the_lan() {
        let export = export();
        assert_eq!(export["version"], "1.0");
        assert_eq!(export["timestamp"], "2023-11-14T22:13:20Z");
        let exchange = &export["ixp_list"][0];
        assert_eq!(exchange["ixp_id"], json!(IXP_ID));
        assert_eq!(exchange["ixf_id"], 4321);
        assert_eq!(exchange["shortname"], "VIXP-Test");
        assert_eq!(exchange["name"], "Test exchange");
        assert_eq!(exchange["support_email"], "noc@ix.example");
        let vlan = &exchange["vlan"][0];
        assert_eq!(vlan["id"], json!(VLAN_ID));
        assert_eq!(
            vlan["ipv4"],
            json!({"prefix": "198.18.0.0", "mask_length": 24})
        );
        assert_eq!(
            vlan["ipv6"],
            json!({"prefix": "fd00:198:18::", "mask_length": 64})
        );
    }

    #[test]
    fn a_member_has_its_addresses_as_set_limits_and_route_server_flag() {
        let export = export();
        let alpha = &export["member_list"][0];
        assert_eq!(alpha["asnum"], 64501);
        assert_eq!(alpha["member_type"], "peering");
        assert_eq!(alpha["name"], "Alpha Networks");
        assert_eq!(alpha["contact_email"], json!(["noc@alpha.example"]));
        let connection = &alpha["connection_list"][0];
        assert_eq!(connection["ixp_id"], json!(IXP_ID));
        assert_eq!(connection["state"], "active");
        let vlan = &connection["vlan_list"][0];
        assert_eq!(vlan["vlan_id"], json!(VLAN_ID));
        assert_eq!(
            vlan["ipv4"],
            json!({"address": "198.18.0.11", "as_macro": "AS-ALPHA",
                   "routeserver": true, "max_prefix": 1000})
        );
        // The only route server has no IPv6 address: alpha cannot peer with it over IPv6.
        assert_eq!(
            vlan["ipv6"],
            json!({"address": "fd00:198:18::11", "as_macro": "AS-ALPHA",
                   "routeserver": false, "max_prefix": 200})
        );
    }

    #[test]
    fn optional_fields_are_left_out_rather_than_invented() {
        let export = export();
        let bravo = &export["member_list"][1];
        assert_eq!(bravo["asnum"], 4_200_000_001_u32);
        assert_eq!(bravo["name"], "bravo");
        assert_eq!(bravo["url"], "https://bravo.example/peering");
        assert!(bravo.get("contact_email").is_none());
        let vlan = &bravo["connection_list"][0]["vlan_list"][0];
        assert!(vlan.get("ipv6").is_none());
        assert!(vlan["ipv4"].get("as_macro").is_none());
        assert_eq!(
            vlan["ipv4"]["max_prefix"],
            vixp_fabric::DEFAULT_MAX_PREFIX_IPV4
        );
    }

    #[test]
    fn route_servers_are_not_listed_as_members() {
        let export = export();
        let members = export["member_list"].as_array().expect("member list");
        assert_eq!(members.len(), 2);
        assert!(members.iter().all(|member| member["asnum"] != 64500));
    }

    #[test]
    fn nothing_secret_or_internal_is_exported() {
        let text = export().to_string();
        assert!(
            !text.contains("mJtAa3uh8CHjXSzC7D08"),
            "public keys stay out"
        );
        assert!(
            !text.contains("RIPE"),
            "IRR sources are not part of the schema"
        );
    }

    #[test]
    fn a_fabric_without_ixf_id_exports_zero() {
        let mut fabric = fabric();
        fabric.exchange.ixf_id = None;
        fabric.exchange.contact = Some("mailto:noc@ix.example".into());
        let export = member_export(&fabric, UNIX_EPOCH);
        assert_eq!(export["ixp_list"][0]["ixf_id"], json!(UNREGISTERED_IXF_ID));
        assert_eq!(export["ixp_list"][0]["support_email"], "noc@ix.example");
    }
}
