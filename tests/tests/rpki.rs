//! RPKI in the running route server, fed by real RTR caches (tests/src/rtr.rs, the `rpki`
//! crate's server) and raw BGP members: an RPKI-invalid route is filtered with reason
//! `rpki_invalid` and never exported; a new VRP set from the cache re-validates the stored
//! routes (newly valid announced, newly invalid withdrawn); a cache that stops keeps its VRPs
//! and shows in `route_server_rpki_cache_up`; the next cache takes over. A malformed VRP file
//! is refused with the entry named.
//!
//! Topology: the route server runs in its own namespace; a veth pair joins it to the test's
//! namespace, whose end carries the members' addresses and the caches' (a /24 of
//! 198.19.0.0/16 per test, from 198.19.40.0 up), so the route server reaches both.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vixp_bgp::{AsPath, Attributes, Origin, Prefix, Segment, SegmentKind};
use vixp_tests::{AspaRecord, Daemon, Netns, Roa, RtrCache, TempDir, binary_path};

const RS_ASN: u32 = 64500;
const BGP_PORT: u16 = 179;
const HTTP_PORT: u16 = 9179;
/// The origin behind member alpha (AS64501) in every announcement.
const ORIGIN: u32 = 65010;
/// An origin no member uses: a VRP for it makes alpha's route invalid.
const OTHER: u32 = 65099;
static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

fn key(seed: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([seed; 32])
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|error| panic!("{program} {args:?}: {error}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// A namespace for the route server joined by a veth to this namespace, whose end has the
/// members' addresses (.11, .12) and the caches' (.98, .99).
struct Lan {
    subnet: u8,
    netns: Netns,
}

impl Lan {
    fn new() -> Lan {
        let subnet = u8::try_from(40 + NEXT_SUBNET.fetch_add(1, Ordering::Relaxed))
            .expect("few fixtures per run");
        let netns = Netns::new().expect("namespace");
        let host_link = format!("vxk{}x{subnet}", std::process::id() % 100_000);
        run(
            "ip",
            &[
                "link",
                "add",
                &host_link,
                "type",
                "veth",
                "peer",
                "name",
                "lan0",
                "netns",
                netns.name(),
            ],
        );
        for host in [11, 12, 98, 99] {
            let address = format!("198.19.{subnet}.{host}/24");
            run("ip", &["addr", "add", &address, "dev", &host_link]);
        }
        run("ip", &["link", "set", &host_link, "up"]);
        let address = format!("198.19.{subnet}.1/24");
        netns
            .run("ip", &["addr", "add", &address, "dev", "lan0"])
            .expect("address");
        netns
            .run("ip", &["link", "set", "lan0", "up"])
            .expect("link up");
        Lan { subnet, netns }
    }

    fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.subnet, host)
    }

    /// A cache listening on this namespace's `host` address.
    fn cache(&self, host: u8, roas: &[Roa]) -> RtrCache {
        self.cache_with_aspas(host, roas, &[])
    }

    /// A cache serving ASPA records too (RTR version 2).
    fn cache_with_aspas(&self, host: u8, roas: &[Roa], aspas: &[AspaRecord]) -> RtrCache {
        RtrCache::start(
            SocketAddr::new(IpAddr::V4(self.address(host)), 0),
            roas,
            aspas,
        )
        .expect("RTR cache starts")
    }

    /// The fabric file with `rpki` as the policy's `rpki` block (flow style).
    fn fabric(&self, rpki: &str) -> String {
        let subnet = self.subnet;
        format!(
            r#"version: 1
exchange: {{name: RPKI-TEST}}
lan: {{ipv4: 198.19.{subnet}.0/24, ipv6: "fd00:19:{subnet}::/64"}}
policy:
  allow_prefixes: [198.18.0.0/15, "fd00::/8"]
  reject_private_asns: false
  rpki: {rpki}
route_servers:
  - name: rs1
    asn: {RS_ASN}
    ipv4: 198.19.{subnet}.1
    public_key: "{rs_key}"
    bgp: {{hold_time: 30, active_open: false}}
    http: 198.19.{subnet}.1:{HTTP_PORT}
members:
  - {{name: alpha, asn: 64501, ipv4: 198.19.{subnet}.11, public_key: "{alpha}"}}
  - {{name: bravo, asn: 64502, ipv4: 198.19.{subnet}.12, public_key: "{bravo}"}}
"#,
            rs_key = key(1),
            alpha = key(11),
            bravo = key(12),
        )
    }
}

/// The route server of one test, in the [`Lan`]'s namespace.
struct RouteServer {
    dir: TempDir,
    daemon: Daemon,
    subnet: u8,
}

impl RouteServer {
    fn start(lan: &Lan, dir: TempDir, fabric: &str) -> RouteServer {
        let path = dir.write("fabric.yaml", fabric).expect("fabric file");
        let args = vec![
            "run".to_string(),
            "-c".to_string(),
            path.display().to_string(),
            "--control-socket".to_string(),
            dir.path().join("control.sock").display().to_string(),
        ];
        let daemon = Daemon::spawn(
            "route-server",
            &lan.netns,
            &binary_path("route-server").display().to_string(),
            &args,
            &dir.path().join("route-server.log"),
        )
        .expect("route server starts");
        let server = RouteServer {
            dir,
            daemon,
            subnet: lan.subnet,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.http_get("/api/v1/status").is_err() {
            assert!(
                Instant::now() < deadline,
                "route server did not come up:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log(&self) -> String {
        self.daemon.log_tail(40)
    }

    fn http_get(&self, path: &str) -> std::io::Result<String> {
        let address = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(198, 19, self.subnet, 1)),
            HTTP_PORT,
        );
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default())
    }

    /// The value of one sample line of `/metrics`, if present.
    fn metric(&self, series: &str) -> Option<f64> {
        let metrics = self.http_get("/metrics").ok()?;
        metrics.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    /// Alpha's filtered routes: prefix to the reason's label.
    fn filtered(&self) -> HashMap<String, serde_json::Value> {
        let body = self
            .http_get("/api/v1/neighbors/alpha.ipv4/routes/filtered")
            .expect("filtered routes");
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        value["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|route| {
                (
                    route["network"].as_str().unwrap_or_default().to_string(),
                    route["filtered"].clone(),
                )
            })
            .collect()
    }

    /// Runs `route-server reload` against the control socket.
    fn reload(&self) -> std::process::Output {
        Command::new(binary_path("route-server"))
            .arg("reload")
            .arg("--control-socket")
            .arg(self.dir.path().join("control.sock"))
            .output()
            .expect("route-server reload runs")
    }
}

use vixp_tests::RawPeer as Peer;

/// A member's session from `host` as AS `asn`, established.
async fn established(lan: &Lan, server: &RouteServer, host: u8, asn: u32) -> Peer {
    let mut peer = Peer::connect(
        lan.address(host),
        SocketAddr::new(IpAddr::V4(lan.address(1)), BGP_PORT),
        asn,
        RS_ASN,
    )
    .await;
    let up = peer
        .pump_until(Duration::from_secs(10), |peer| peer.established)
        .await;
    assert!(up, "AS{asn}: session not established\n{}", server.log());
    peer
}

fn prefix(text: &str) -> Prefix {
    text.parse().expect("prefix")
}

/// Alpha's route attributes: AS_PATH 64501 65010, next hop alpha itself.
fn alpha_attributes(lan: &Lan) -> Attributes {
    Attributes::new(
        Origin::Igp,
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64501, ORIGIN],
            }],
        },
        IpAddr::V4(lan.address(11)),
    )
}

/// Waits (pumping both sessions) until bravo holds exactly `expected`.
async fn bravo_holds(
    server: &RouteServer,
    alpha: &mut Peer,
    bravo: &mut Peer,
    expected: &[&str],
    what: &str,
) {
    let expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if bravo
            .pump_until(Duration::from_millis(200), |peer| {
                peer.prefixes() == expected
            })
            .await
        {
            // Settled: nothing more arrives.
            alpha
                .pump_until(Duration::from_millis(100), |_| false)
                .await;
            bravo
                .pump_until(Duration::from_millis(300), |_| false)
                .await;
            assert_eq!(bravo.prefixes(), expected, "{what}\n{}", server.log());
            return;
        }
        alpha.pump_until(Duration::from_millis(50), |_| false).await;
    }
    panic!(
        "{what}: bravo holds {:?}, expected {expected:?}\n{}",
        bravo.prefixes(),
        server.log()
    );
}

/// Waits until `/metrics` shows `series` at `value`.
async fn metric_becomes(server: &RouteServer, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.metric(series) != Some(value) {
        assert!(
            Instant::now() < deadline,
            "{series} is {:?}, expected {value}\n{}",
            server.metric(series),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The label and code of a filtered route's reason.
fn reason(filtered: &HashMap<String, serde_json::Value>, network: &str) -> Option<(String, i64)> {
    let reason = filtered.get(network)?;
    Some((
        reason["label"].as_str().unwrap_or_default().to_string(),
        reason["code"].as_i64().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "current_thread")]
async fn rtr_data_filters_invalid_routes_revalidates_on_change_and_survives_a_lost_cache() {
    let lan = Lan::new();
    let p64 = "198.18.64.0/24";
    let p65 = "198.18.65.0/24";
    let p66 = "198.18.66.0/24";
    // 64 valid, 65 invalid (another origin's VRP), 66 not found.
    let first = [Roa::new(p64, 24, ORIGIN), Roa::new(p65, 24, OTHER)];
    // 64 invalid, 65 valid, 66 still not found.
    let second = [Roa::new(p64, 24, OTHER), Roa::new(p65, 24, ORIGIN)];
    // The standby cache: everything of alpha's valid.
    let standby = [Roa::new("198.18.64.0/22", 24, ORIGIN)];
    let mut primary = lan.cache(99, &first);
    let backup = lan.cache(98, &standby);
    let fabric = lan.fabric(&format!(
        r#"{{caches: ["{}", "{}"], retry: 1}}"#,
        primary.address(),
        backup.address()
    ));
    let server = RouteServer::start(&lan, TempDir::new("rpki-rtr").expect("dir"), &fabric);
    let primary_up = format!(
        "route_server_rpki_cache_up{{cache=\"{}\"}}",
        primary.address()
    );
    let backup_up = format!(
        "route_server_rpki_cache_up{{cache=\"{}\"}}",
        backup.address()
    );
    metric_becomes(&server, &primary_up, 1.0).await;
    metric_becomes(&server, "route_server_rpki_vrps{family=\"ipv4\"}", 2.0).await;
    assert_eq!(server.metric(&backup_up), Some(0.0));
    assert_eq!(server.metric("route_server_rpki_serial"), Some(1.0));

    let mut alpha = established(&lan, &server, 11, 64501).await;
    let mut bravo = established(&lan, &server, 12, 64502).await;
    alpha
        .announce(
            &alpha_attributes(&lan),
            &[prefix(p64), prefix(p65), prefix(p66)],
        )
        .await;
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64, p66], "first VRPs").await;
    let filtered = server.filtered();
    assert_eq!(
        reason(&filtered, p65),
        Some(("rpki_invalid".to_string(), 13)),
        "{filtered:?}"
    );
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    assert_eq!(
        filtered[p65]["large_community"],
        serde_json::json!([RS_ASN, 1101, 13])
    );
    let text = filtered[p65]["reason"].as_str().unwrap_or_default();
    assert!(
        text.contains("AS65010") && text.contains("198.18.65.0/24-24 AS65099"),
        "{text}"
    );
    metric_becomes(
        &server,
        "route_server_routes_filtered{member=\"alpha\",family=\"ipv4\",reason=\"rpki_invalid\"}",
        1.0,
    )
    .await;

    // New serial: 65 becomes valid and is announced, 64 becomes invalid and is withdrawn.
    assert_eq!(primary.update(&second, &[]).expect("VRPs"), 2);
    bravo_holds(&server, &mut alpha, &mut bravo, &[p65, p66], "second VRPs").await;
    metric_becomes(&server, "route_server_rpki_serial", 2.0).await;
    let filtered = server.filtered();
    assert_eq!(
        reason(&filtered, p64),
        Some(("rpki_invalid".to_string(), 13))
    );
    assert_eq!(filtered.len(), 1, "{filtered:?}");

    // The primary goes away: the route server fails over to the backup at once. Its session
    // first shows as down, then the backup's VRPs (all valid) apply.
    primary.stop();
    metric_becomes(&server, &primary_up, 0.0).await;
    metric_becomes(&server, &backup_up, 1.0).await;
    bravo_holds(
        &server,
        &mut alpha,
        &mut bravo,
        &[p64, p65, p66],
        "backup VRPs",
    )
    .await;
    assert!(server.filtered().is_empty(), "{:?}", server.filtered());
    assert_eq!(
        server.metric("route_server_rpki_vrps{family=\"ipv4\"}"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_cache_that_goes_away_keeps_its_vrps_in_force() {
    let lan = Lan::new();
    let p64 = "198.18.64.0/24";
    let p65 = "198.18.65.0/24";
    let mut cache = lan.cache(99, &[Roa::new(p65, 24, OTHER)]);
    let fabric = lan.fabric(&format!(r#"{{caches: ["{}"]}}"#, cache.address()));
    let server = RouteServer::start(&lan, TempDir::new("rpki-lost").expect("dir"), &fabric);
    let up = format!(
        "route_server_rpki_cache_up{{cache=\"{}\"}}",
        cache.address()
    );
    metric_becomes(&server, &up, 1.0).await;
    assert_eq!(server.metric("route_server_rpki_stale"), Some(0.0));

    let mut alpha = established(&lan, &server, 11, 64501).await;
    let mut bravo = established(&lan, &server, 12, 64502).await;
    alpha
        .announce(&alpha_attributes(&lan), &[prefix(p64), prefix(p65)])
        .await;
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64], "with the cache").await;

    cache.stop();
    metric_becomes(&server, &up, 0.0).await;
    metric_becomes(&server, "route_server_rpki_stale", 1.0).await;
    // The VRPs stay until they expire (600 s from the cache's End of Data): nothing changes.
    assert_eq!(
        server.metric("route_server_rpki_vrps{family=\"ipv4\"}"),
        Some(1.0)
    );
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64], "cache gone").await;
    assert_eq!(
        reason(&server.filtered(), p65),
        Some(("rpki_invalid".to_string(), 13))
    );
}

/// A VRP file as rpki-client `-j` writes it.
fn vrp_file(roas: &[(&str, u8, u32)]) -> String {
    let entries: Vec<String> = roas
        .iter()
        .map(|(prefix, max_length, asn)| {
            format!(
                r#"{{"asn": {asn}, "prefix": "{prefix}", "maxLength": {max_length}, "ta": "test"}}"#
            )
        })
        .collect();
    format!(
        "{{\"metadata\": {{\"buildtime\": \"2026-11-21T00:00:00Z\"}},\n\"roas\": [\n{}\n]}}\n",
        entries.join(",\n")
    )
}

/// A file whose second entry has a maxLength shorter than its prefix.
const MALFORMED: &str = r#"{"roas": [
{"asn": 65010, "prefix": "198.18.64.0/24", "maxLength": 24},
{"asn": 65010, "prefix": "198.18.0.0/16", "maxLength": 8}
]}"#;

#[test]
fn a_malformed_vrp_file_fails_the_check_and_the_start_with_the_entry_named() {
    let lan = Lan::new();
    let dir = TempDir::new("rpki-malformed").expect("dir");
    let vrps = dir.write("vrps.json", MALFORMED).expect("VRP file");
    let fabric = lan.fabric(&format!(r#"{{vrp_file: "{}"}}"#, vrps.display()));
    let fabric_path = dir.write("fabric.yaml", &fabric).expect("fabric file");
    let expected = format!("{}: roas[1]: maxLength 8", vrps.display());

    let check = Command::new(binary_path("route-server"))
        .arg("check")
        .arg(&fabric_path)
        .output()
        .expect("route-server check runs");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "check passed a malformed VRP file");
    assert!(stderr.contains(&expected), "{stderr}");

    // `run` stops before it listens; bounded by `timeout` in case it did not.
    let binary = binary_path("route-server").display().to_string();
    let args = [
        binary,
        "run".to_string(),
        "-c".to_string(),
        fabric_path.display().to_string(),
        "--control-socket".to_string(),
        dir.path().join("control.sock").display().to_string(),
    ];
    let mut command = vec!["10".to_string(), "ip".to_string()];
    command.extend(lan.netns.exec_args(&args[0], &args[1..]));
    let start = Command::new("timeout")
        .args(&command)
        .output()
        .expect("route-server run runs");
    let stderr = String::from_utf8_lossy(&start.stderr);
    assert_eq!(start.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");

    // The same fabric with a good file passes the check and names what it holds.
    dir.write("vrps.json", &vrp_file(&[("198.18.64.0/24", 24, ORIGIN)]))
        .expect("VRP file");
    let check = Command::new(binary_path("route-server"))
        .arg("check")
        .arg(&fabric_path)
        .output()
        .expect("route-server check runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_reload_reads_the_vrp_file_again_and_refuses_a_malformed_one() {
    let lan = Lan::new();
    let p64 = "198.18.64.0/24";
    let p65 = "198.18.65.0/24";
    let dir = TempDir::new("rpki-reload").expect("dir");
    let vrps = dir
        .write("vrps.json", &vrp_file(&[(p65, 24, OTHER)]))
        .expect("VRP file");
    let fabric = lan.fabric(&format!(r#"{{vrp_file: "{}"}}"#, vrps.display()));
    let server = RouteServer::start(&lan, dir, &fabric);
    metric_becomes(&server, "route_server_rpki_vrps{family=\"ipv4\"}", 1.0).await;

    let mut alpha = established(&lan, &server, 11, 64501).await;
    let mut bravo = established(&lan, &server, 12, 64502).await;
    alpha
        .announce(&alpha_attributes(&lan), &[prefix(p64), prefix(p65)])
        .await;
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64], "first file").await;

    // rpki-client wrote a new export: 64 invalid, 65 valid. A reload applies it.
    server
        .dir
        .write(
            "vrps.json",
            &vrp_file(&[(p64, 24, OTHER), (p65, 24, ORIGIN)]),
        )
        .expect("VRP file");
    let reload = server.reload();
    assert!(
        reload.status.success(),
        "{}{}",
        String::from_utf8_lossy(&reload.stdout),
        String::from_utf8_lossy(&reload.stderr)
    );
    bravo_holds(&server, &mut alpha, &mut bravo, &[p65], "second file").await;
    metric_becomes(&server, "route_server_rpki_vrps{family=\"ipv4\"}", 2.0).await;
    assert_eq!(
        reason(&server.filtered(), p64),
        Some(("rpki_invalid".to_string(), 13))
    );
    assert_eq!(server.metric("route_server_rpki_vrp_file_error"), Some(0.0));

    // A malformed export: the reload is refused with the entry named; nothing changes.
    server.dir.write("vrps.json", MALFORMED).expect("VRP file");
    let reload = server.reload();
    let stderr = String::from_utf8_lossy(&reload.stderr);
    assert!(!reload.status.success(), "a malformed VRP file was applied");
    assert!(
        stderr.contains(&format!("{}: roas[1]: maxLength 8", vrps.display()))
            && stderr.contains("the RPKI payload in force stays"),
        "{stderr}"
    );
    assert_eq!(server.metric("route_server_rpki_vrp_file_error"), Some(1.0));
    assert_eq!(
        server.metric("route_server_rpki_vrps{family=\"ipv4\"}"),
        Some(2.0)
    );
    bravo_holds(&server, &mut alpha, &mut bravo, &[p65], "malformed file").await;
    assert_eq!(
        reason(&server.filtered(), p64),
        Some(("rpki_invalid".to_string(), 13))
    );
}

/// Alpha's accepted routes as the API shows them: prefix to the route server's own large
/// communities on it.
fn shown_tags(server: &RouteServer) -> HashMap<String, Vec<[u32; 3]>> {
    let body = server
        .http_get("/api/v1/neighbors/alpha.ipv4/routes/received")
        .expect("received routes");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    value["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .map(|route| {
            let tags = route["bgp"]["large_communities"]
                .as_array()
                .expect("large communities")
                .iter()
                .filter_map(|community| serde_json::from_value::<[u32; 3]>(community.clone()).ok())
                .filter(|community| community[0] == RS_ASN)
                .collect();
            (
                route["network"].as_str().unwrap_or_default().to_string(),
                tags,
            )
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn with_tag_policies_invalid_routes_pass_and_only_the_looking_glass_shows_their_state() {
    let lan = Lan::new();
    let p64 = "198.18.64.0/24";
    let p65 = "198.18.65.0/24";
    // 65 RPKI-invalid; alpha's origin names only AS64530 as its provider, so alpha (AS64501)
    // passing its routes on is an ASPA-invalid hop.
    let cache = lan.cache_with_aspas(
        99,
        &[Roa::new(p65, 24, OTHER)],
        &[AspaRecord {
            customer: ORIGIN,
            providers: vec![64530],
        }],
    );
    let fabric = lan.fabric(&format!(
        r#"{{caches: ["{}"], invalid: tag, aspa: tag}}"#,
        cache.address()
    ));
    let server = RouteServer::start(&lan, TempDir::new("rpki-tag").expect("dir"), &fabric);
    metric_becomes(&server, "route_server_rpki_aspas", 1.0).await;

    let mut alpha = established(&lan, &server, 11, 64501).await;
    let mut bravo = established(&lan, &server, 12, 64502).await;
    alpha
        .announce(&alpha_attributes(&lan), &[prefix(p64), prefix(p65)])
        .await;
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64, p65], "tag policies").await;
    assert!(server.filtered().is_empty(), "{:?}", server.filtered());
    for (network, attributes) in &bravo.routes {
        assert!(
            attributes
                .large_communities
                .iter()
                .all(|community| community.0 != RS_ASN),
            "bravo received the informational communities on {network}: {attributes:?}"
        );
    }
    let tags = shown_tags(&server);
    assert_eq!(
        tags.get(p65),
        Some(&vec![[RS_ASN, 1000, 4], [RS_ASN, 1002, 4]]),
        "{tags:?}"
    );
    assert_eq!(
        tags.get(p64),
        Some(&vec![[RS_ASN, 1000, 2], [RS_ASN, 1002, 4]]),
        "{tags:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_reload_keeps_a_listed_cache_session_and_closes_an_unlisted_one() {
    let lan = Lan::new();
    let p64 = "198.18.64.0/24";
    let p65 = "198.18.65.0/24";
    let mut primary = lan.cache(99, &[Roa::new(p65, 24, OTHER)]);
    let other = lan.cache(98, &[Roa::new("198.18.64.0/22", 24, ORIGIN)]);
    let dir = TempDir::new("rpki-reload-caches").expect("dir");
    let fabric = lan.fabric(&format!(r#"{{caches: ["{}"]}}"#, primary.address()));
    let server = RouteServer::start(&lan, dir, &fabric);
    let primary_up = format!(
        "route_server_rpki_cache_up{{cache=\"{}\"}}",
        primary.address()
    );
    let other_up = format!(
        "route_server_rpki_cache_up{{cache=\"{}\"}}",
        other.address()
    );
    metric_becomes(&server, &primary_up, 1.0).await;

    let mut alpha = established(&lan, &server, 11, 64501).await;
    let mut bravo = established(&lan, &server, 12, 64502).await;
    alpha
        .announce(&alpha_attributes(&lan), &[prefix(p64), prefix(p65)])
        .await;
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64], "first VRPs").await;

    // A reload that keeps the cache (and adds the other behind it) leaves the session alone:
    // the primary's next serial still arrives over it.
    let both = lan.fabric(&format!(
        r#"{{caches: ["{}", "{}"]}}"#,
        primary.address(),
        other.address()
    ));
    server.dir.write("fabric.yaml", &both).expect("fabric file");
    let reload = server.reload();
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    metric_becomes(&server, &other_up, 0.0).await;
    primary
        .update(&[Roa::new(p64, 24, OTHER)], &[])
        .expect("VRPs");
    bravo_holds(&server, &mut alpha, &mut bravo, &[p65], "second serial").await;
    assert_eq!(server.metric(&primary_up), Some(1.0));
    metric_becomes(&server, "route_server_rpki_serial", 2.0).await;

    // A reload that drops the primary closes its session and moves to the other cache at once.
    let only_other = lan.fabric(&format!(r#"{{caches: ["{}"]}}"#, other.address()));
    server
        .dir
        .write("fabric.yaml", &only_other)
        .expect("fabric file");
    let reload = server.reload();
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    metric_becomes(&server, &primary_up, 0.0).await;
    metric_becomes(&server, &other_up, 1.0).await;
    bravo_holds(&server, &mut alpha, &mut bravo, &[p64, p65], "other cache").await;
}
