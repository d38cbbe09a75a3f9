//! The route server as a running daemon, fed by raw BGP peers: bad input from one member
//! (garbage, oversized messages, malformed attributes, a wrong ASN, an unknown address) gets the
//! right NOTIFICATION or is refused and counted, and never disturbs another member's session or
//! routes; `/metrics` passes `promtool check metrics`; shutdown ends sessions cleanly.
//!
//! Topology: the route server runs in its own namespace; a veth pair joins it to the test's
//! namespace, whose end carries the members' addresses (a /24 of 198.19.0.0/16 per test), so
//! the test's own sessions come from members' LAN addresses.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpSocket;
use vixp_bgp::{AsPath, Attributes, LargeCommunity, Origin, Prefix, Segment, SegmentKind};
use vixp_tests::{Daemon, Netns, TempDir, binary_path};

const RS_ASN: u32 = 64500;
const BGP_PORT: u16 = 179;
const HTTP_PORT: u16 = 9179;
static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

/// The route server in a namespace, reachable from this namespace over a veth.
struct Fixture {
    subnet: u8,
    dir: TempDir,
    fabric: String,
    route_server: Option<Daemon>,
    // Dropped last: deleting the namespace removes the veth pair too.
    _netns: Netns,
}

fn key(seed: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([seed; 32])
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let subnet = u8::try_from(100 + NEXT_SUBNET.fetch_add(1, Ordering::Relaxed))
            .expect("fewer than 156 fixtures per run");
        let netns = Netns::new().expect("namespace");
        let host_link = format!("vxr{}x{subnet}", std::process::id() % 100_000);
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
        for host in [11, 12, 13, 14, 99] {
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("198.19.{subnet}.{host}/24"),
                    "dev",
                    &host_link,
                ],
            );
        }
        run("ip", &["link", "set", &host_link, "up"]);
        netns
            .run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("198.19.{subnet}.1/24"),
                    "dev",
                    "lan0",
                ],
            )
            .expect("address");
        netns
            .run("ip", &["link", "set", "lan0", "up"])
            .expect("link up");

        let dir = TempDir::new(label).expect("temp dir");
        let fabric = format!(
            r#"version: 1
exchange: {{name: DAEMON-TEST}}
lan: {{ipv4: 198.19.{subnet}.0/24, ipv6: "fd00:19:{subnet}::/64"}}
policy: {{allow_prefixes: [198.18.0.0/15, "fd00::/8"], reject_private_asns: false}}
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
  - {{name: charlie, asn: 64503, ipv4: 198.19.{subnet}.13, public_key: "{charlie}"}}
"#,
            rs_key = key(1),
            alpha = key(11),
            bravo = key(12),
            charlie = key(13),
        );
        let fabric_path = dir.write("fabric.yaml", &fabric).expect("fabric file");
        let binary = binary_path("route-server");
        let args = vec![
            "run".to_string(),
            "-c".to_string(),
            fabric_path.display().to_string(),
            "--control-socket".to_string(),
            dir.path().join("control.sock").display().to_string(),
        ];
        let log = dir.path().join("route-server.log");
        let route_server = Daemon::spawn(
            "route-server",
            &netns,
            &binary.display().to_string(),
            &args,
            &log,
        )
        .expect("route server starts");
        let fixture = Fixture {
            subnet,
            fabric,
            dir,
            route_server: Some(route_server),
            _netns: netns,
        };
        fixture.wait_for_http();
        fixture
    }

    /// Rewrites the fabric file and sends the route server SIGHUP.
    fn reload(&self, fabric: &str) {
        self.dir.write("fabric.yaml", fabric).expect("fabric file");
        let pid = self
            .route_server
            .as_ref()
            .and_then(Daemon::pid)
            .expect("route server pid");
        run("kill", &["-HUP", &pid.to_string()]);
    }

    /// Rewrites the fabric file and runs `route-server reload` against the control socket.
    fn reload_command(&self, fabric: &str) -> std::process::Output {
        self.dir.write("fabric.yaml", fabric).expect("fabric file");
        Command::new(binary_path("route-server"))
            .arg("reload")
            .arg("--control-socket")
            .arg(self.dir.path().join("control.sock"))
            .output()
            .expect("route-server reload runs")
    }

    fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.subnet, host)
    }

    fn bgp(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.address(1)), BGP_PORT)
    }

    fn wait_for_http(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.http_get("/api/v1/status").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("route server did not come up:\n{}", self.log());
    }

    fn log(&self) -> String {
        self.route_server
            .as_ref()
            .map(|daemon| daemon.log_tail(40))
            .unwrap_or_default()
    }

    fn http_get(&self, path: &str) -> std::io::Result<String> {
        let address = SocketAddr::new(IpAddr::V4(self.address(1)), HTTP_PORT);
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Ok(body)
    }

    fn metrics(&self) -> String {
        self.http_get("/metrics").expect("metrics scrape")
    }

    /// The value of one sample line of `/metrics`, if present.
    fn metric(&self, series: &str) -> Option<f64> {
        self.metrics().lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|error| panic!("{program} {args:?}: {error}"));
    assert!(status.success(), "{program} {args:?} failed");
}

use vixp_tests::RawPeer as Peer;

/// A member's session from `host` as AS `asn`, established.
async fn established(fixture: &Fixture, name: &'static str, host: u8, asn: u32) -> Peer {
    let mut peer = connect(fixture, host, asn).await;
    let up = peer
        .pump_until(Duration::from_secs(10), |peer| peer.established)
        .await;
    assert!(
        up,
        "{name}: session not established ({:?})\n{}",
        peer.down,
        fixture.log()
    );
    peer
}

/// A member's connection from `host` as AS `asn`, not yet established.
async fn connect(fixture: &Fixture, host: u8, asn: u32) -> Peer {
    Peer::connect(fixture.address(host), fixture.bgp(), asn, RS_ASN).await
}

fn prefix(text: &str) -> Prefix {
    text.parse().expect("prefix")
}

fn alpha_attributes(fixture: &Fixture) -> Attributes {
    let mut attributes = Attributes::new(
        Origin::Igp,
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns: vec![64501, 65010],
            }],
        },
        IpAddr::V4(fixture.address(11)),
    );
    attributes.med = Some(77);
    attributes.communities = vec![(64501 << 16) | 100];
    attributes.large_communities = vec![LargeCommunity(64501, 1, 2)];
    attributes
}

/// An UPDATE for one /24 with a raw attribute section.
fn raw_update(attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let length = 19 + 2 + 2 + attributes.len() + nlri.len();
    let mut message = vec![0xff; 16];
    message.extend_from_slice(&u16::try_from(length).expect("short").to_be_bytes());
    message.push(2);
    message.extend_from_slice(&[0, 0]);
    message.extend_from_slice(
        &u16::try_from(attributes.len())
            .expect("short")
            .to_be_bytes(),
    );
    message.extend_from_slice(attributes);
    message.extend_from_slice(nlri);
    message
}

/// Alpha announces a route that bravo receives; returns both peers.
async fn alpha_announces_to_bravo(fixture: &Fixture) -> (Peer, Peer) {
    let mut alpha = established(fixture, "alpha", 11, 64501).await;
    let mut bravo = established(fixture, "bravo", 12, 64502).await;
    let attributes = alpha_attributes(fixture);
    alpha
        .announce(
            &attributes,
            &[prefix("198.18.128.0/24"), prefix("198.18.129.0/24")],
        )
        .await;
    let received = bravo
        .pump_until(Duration::from_secs(10), |peer| peer.routes.len() == 2)
        .await;
    assert!(
        received,
        "bravo did not receive alpha's routes: {:?}",
        bravo.routes
    );
    (alpha, bravo)
}

#[tokio::test(flavor = "current_thread")]
async fn routes_pass_unchanged_and_metrics_pass_promtool() {
    let fixture = Fixture::new("rs-daemon-metrics");
    let (mut alpha, bravo) = alpha_announces_to_bravo(&fixture).await;
    let sent = alpha_attributes(&fixture);
    let got = &bravo.routes[&prefix("198.18.128.0/24")];
    assert_eq!(got.as_path, sent.as_path, "no route server ASN inserted");
    assert_eq!(got.next_hop, sent.next_hop);
    assert_eq!(got.med, Some(77));
    assert_eq!(got.communities, sent.communities);
    assert_eq!(got.large_communities, sent.large_communities);
    assert_eq!(got.local_pref, None, "no LOCAL_PREF to an external peer");
    alpha.pump(Duration::from_millis(1500)).await;
    assert!(
        alpha.routes.is_empty(),
        "alpha's routes are not reflected back"
    );

    let metrics = fixture.metrics();
    let path = fixture
        .dir
        .write("metrics.txt", &metrics)
        .expect("write metrics");
    let output = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).expect("metrics file"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("promtool runs (apt package prometheus)");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for series in [
        "route_server_session_up{member=\"alpha\",family=\"ipv4\"} 1",
        "route_server_session_up{member=\"charlie\",family=\"ipv4\"} 0",
        // Counter families are listed from start-up, at zero for a member never seen.
        "route_server_messages_received_total{member=\"charlie\",family=\"ipv4\",type=\"open\"} 0",
        "route_server_session_established_total{member=\"charlie\",family=\"ipv4\"} 0",
        "route_server_connections_refused_total{reason=\"unknown_address\"} 0",
        "route_server_messages_received_total{member=\"alpha\",family=\"ipv4\",type=\"update\"}",
        "route_server_messages_sent_total{member=\"bravo\",family=\"ipv4\",type=\"update\"}",
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
    let wait = Instant::now() + Duration::from_secs(3);
    while fixture.metric("route_server_prefixes_received{member=\"alpha\",family=\"ipv4\"}")
        != Some(2.0)
    {
        assert!(
            Instant::now() < wait,
            "prefixes_received gauge never reached 2"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fixture.metric("route_server_prefixes_advertised{member=\"bravo\",family=\"ipv4\"}"),
        Some(2.0)
    );

    // The operator's view through the CLI.
    let api = format!("{}:{HTTP_PORT}", fixture.address(1));
    let neighbors = cli(&["show", "neighbors", "--api", &api]);
    let alpha_line = neighbors
        .lines()
        .find(|line| line.starts_with("alpha.ipv4"))
        .unwrap_or_else(|| panic!("no alpha.ipv4 in\n{neighbors}"));
    assert!(alpha_line.contains("Established"), "{alpha_line}");
    assert!(
        neighbors
            .lines()
            .any(|line| line.starts_with("charlie.ipv4") && line.contains("Idle")),
        "{neighbors}"
    );
    let routes = cli(&["show", "routes", "--neighbor", "alpha", "--api", &api]);
    assert!(routes.contains("198.18.128.0/24"), "{routes}");
    assert!(routes.contains("64501 65010"), "{routes}");
    let lookup = cli(&[
        "show",
        "routes",
        "--prefix",
        "198.18.129.7",
        "--api",
        &api,
        "--json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&lookup).expect("JSON");
    assert_eq!(value["routes"][0]["network"], "198.18.129.0/24", "{lookup}");
    assert_eq!(value["routes"][0]["learnt_from"], "alpha");
}

fn cli(args: &[&str]) -> String {
    let output = Command::new(binary_path("route-server"))
        .args(args)
        .output()
        .expect("route-server runs");
    assert!(
        output.status.success(),
        "route-server {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn an_unknown_address_is_refused_and_counted() {
    let fixture = Fixture::new("rs-daemon-unknown");
    let mut alpha = established(&fixture, "alpha", 11, 64501).await;
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(fixture.address(99)), 0))
        .expect("bind");
    let mut stranger = socket.connect(fixture.bgp()).await.expect("tcp connects");
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stranger.read(&mut buffer))
        .await
        .expect("the route server closes the connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "no BGP is spoken to a stranger"
    );
    assert_eq!(
        fixture.metric("route_server_connections_refused_total{reason=\"unknown_address\"}"),
        Some(1.0)
    );
    alpha.pump(Duration::from_millis(500)).await;
    assert!(
        alpha.established && alpha.down.is_none(),
        "alpha undisturbed"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_from_one_member_resets_only_its_own_session() {
    let fixture = Fixture::new("rs-daemon-garbage");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let mut charlie = established(&fixture, "charlie", 13, 64503).await;
    // A header with a broken marker: RFC 4271 section 6.1, Connection Not Synchronized.
    let mut garbage = vec![0xffu8; 16];
    garbage[3] = 0;
    garbage.extend_from_slice(&[0, 19, 4]);
    charlie.send_raw(&garbage).await;
    charlie.pump(Duration::from_secs(5)).await;
    assert_eq!(
        charlie.notification_received(),
        Some((1, 1)),
        "{:?}",
        charlie.down
    );

    bravo.pump(Duration::from_millis(1500)).await;
    alpha.pump(Duration::from_millis(100)).await;
    assert!(
        alpha.established && bravo.established,
        "other sessions stay up"
    );
    assert_eq!(bravo.routes.len(), 2, "bravo keeps alpha's routes");
    assert_eq!(
        fixture.metric(
            "route_server_notifications_sent_total{member=\"charlie\",code=\"1\",subcode=\"1\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_oversized_message_gets_bad_message_length() {
    let fixture = Fixture::new("rs-daemon-oversized");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let mut charlie = established(&fixture, "charlie", 13, 64503).await;
    // 5000 bytes: over 4096, and extended messages were not negotiated (RFC 8654).
    let mut oversized = vec![0xffu8; 16];
    oversized.extend_from_slice(&5000u16.to_be_bytes());
    oversized.push(2);
    oversized.resize(5000, 0);
    charlie.send_raw(&oversized).await;
    charlie.pump(Duration::from_secs(5)).await;
    assert_eq!(
        charlie.notification_received(),
        Some((1, 2)),
        "{:?}",
        charlie.down
    );
    bravo.pump(Duration::from_millis(1000)).await;
    alpha.pump(Duration::from_millis(100)).await;
    assert!(alpha.established && bravo.established);
    assert_eq!(bravo.routes.len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_malformed_attribute_is_treated_as_withdraw_and_the_session_stays_up() {
    let fixture = Fixture::new("rs-daemon-7606");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let hop = fixture.address(11).octets();
    let mut attributes = vec![0x40, 1, 1, 5]; // ORIGIN 5: undefined (RFC 7606 section 7.1)
    attributes.extend_from_slice(&[0x40, 2, 6, 2, 1]);
    attributes.extend_from_slice(&64501u32.to_be_bytes());
    attributes.extend_from_slice(&[0x40, 3, 4]);
    attributes.extend_from_slice(&hop);
    alpha
        .send_raw(&raw_update(&attributes, &[24, 198, 18, 128]))
        .await;
    let withdrawn = bravo
        .pump_until(Duration::from_secs(10), |peer| {
            !peer.routes.contains_key(&prefix("198.18.128.0/24"))
        })
        .await;
    assert!(withdrawn, "the route is treated as withdrawn");
    assert!(
        bravo.routes.contains_key(&prefix("198.18.129.0/24")),
        "other routes kept"
    );
    alpha.pump(Duration::from_millis(1000)).await;
    assert!(
        alpha.established && alpha.down.is_none(),
        "alpha's session stays up"
    );
    assert_eq!(
        fixture.metric(
            "route_server_updates_treated_as_withdraw_total{member=\"alpha\",family=\"ipv4\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn two_connections_from_one_member_leave_exactly_one_working_session() {
    let fixture = Fixture::new("rs-daemon-collision");
    let mut bravo = established(&fixture, "bravo", 12, 64502).await;
    // RFC 4271 section 6.8: two connections from alpha at once; the route server keeps one and
    // closes the other with Cease / Connection Collision Resolution (6/7).
    let mut first = connect(&fixture, 11, 64501).await;
    let mut second = connect(&fixture, 11, 64501).await;
    for _ in 0..30 {
        first.pump(Duration::from_millis(50)).await;
        second.pump(Duration::from_millis(50)).await;
    }
    let (mut survivor, loser) = match (first.established, second.established) {
        (true, false) => (first, second),
        (false, true) => (second, first),
        other => panic!("expected exactly one established session, got {other:?}"),
    };
    assert_eq!(
        loser.notification_received(),
        Some((6, 7)),
        "{:?}",
        loser.down
    );
    drop(loser);
    let attributes = alpha_attributes(&fixture);
    survivor
        .announce(&attributes, &[prefix("198.18.140.0/24")])
        .await;
    let received = bravo
        .pump_until(Duration::from_secs(10), |peer| {
            peer.routes.contains_key(&prefix("198.18.140.0/24"))
        })
        .await;
    assert!(
        received,
        "the surviving session's routes reach bravo\n{}",
        fixture.log()
    );
    survivor.pump(Duration::from_millis(500)).await;
    assert!(survivor.established && survivor.down.is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn a_filtered_route_is_kept_with_its_reason_and_never_exported() {
    let fixture = Fixture::new("rs-daemon-filtered");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    // A next hop that is not alpha's LAN address (Euro-IX reason 8), and a bogon (reason 3).
    let mut wrong_hop = alpha_attributes(&fixture);
    wrong_hop.next_hop = IpAddr::V4(fixture.address(99));
    alpha
        .announce(&wrong_hop, &[prefix("198.18.150.0/24")])
        .await;
    alpha
        .announce(&alpha_attributes(&fixture), &[prefix("10.1.0.0/24")])
        .await;
    // The replacement of an accepted route by a refused one withdraws it.
    alpha
        .announce(&wrong_hop, &[prefix("198.18.129.0/24")])
        .await;
    let withdrawn = bravo
        .pump_until(Duration::from_secs(10), |peer| {
            !peer.routes.contains_key(&prefix("198.18.129.0/24"))
        })
        .await;
    assert!(withdrawn, "a route replaced by a refused one is withdrawn");
    bravo.pump(Duration::from_millis(500)).await;
    assert_eq!(
        bravo.routes.keys().copied().collect::<Vec<_>>(),
        vec![prefix("198.18.128.0/24")],
        "refused routes never reach other members"
    );

    let body = fixture
        .http_get("/api/v1/neighbors/alpha.ipv4/routes/filtered")
        .expect("filtered routes");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let routes = value["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), 3, "{body}");
    let bogon = routes
        .iter()
        .find(|route| route["network"] == "10.1.0.0/24")
        .expect("the bogon is listed");
    assert_eq!(bogon["filtered"]["code"], 3, "{body}");
    assert_eq!(
        bogon["filtered"]["large_community"],
        serde_json::json!([RS_ASN, 1101, 3])
    );
    let hop = routes
        .iter()
        .find(|route| route["network"] == "198.18.150.0/24")
        .expect("the wrong next hop is listed");
    assert_eq!(hop["filtered"]["label"], "next_hop_not_peer", "{body}");
    assert_eq!(hop["filtered"]["code"], 8);
    let reason = hop["filtered"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&fixture.address(99).to_string()),
        "{reason}"
    );

    let neighbors = fixture.http_get("/api/v1/neighbors").expect("neighbors");
    let value: serde_json::Value = serde_json::from_str(&neighbors).expect("JSON");
    let alpha_view = value["neighbors"]
        .as_array()
        .and_then(|list| list.iter().find(|neighbor| neighbor["id"] == "alpha.ipv4"))
        .expect("alpha listed")
        .clone();
    assert_eq!(alpha_view["routes_received"], 4, "{alpha_view}");
    assert_eq!(alpha_view["routes_accepted"], 1, "{alpha_view}");
    assert_eq!(alpha_view["routes_filtered"], 3, "{alpha_view}");

    let api = format!("{}:{HTTP_PORT}", fixture.address(1));
    let shown = cli(&[
        "show",
        "routes",
        "--neighbor",
        "alpha.ipv4",
        "--filtered",
        "--api",
        &api,
    ]);
    assert!(shown.contains("FILTERED: "), "{shown}");
    let wait = Instant::now() + Duration::from_secs(3);
    let series = "route_server_routes_filtered{member=\"alpha\",family=\"ipv4\",reason=\"next_hop_not_peer\"}";
    while fixture.metric(series) != Some(2.0) {
        assert!(
            Instant::now() < wait,
            "{series} never reached 2:\n{}",
            fixture.metrics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Announced again correctly, the route is accepted and exported.
    alpha
        .announce(&alpha_attributes(&fixture), &[prefix("198.18.150.0/24")])
        .await;
    let exported = bravo
        .pump_until(Duration::from_secs(10), |peer| {
            peer.routes.contains_key(&prefix("198.18.150.0/24"))
        })
        .await;
    assert!(exported, "a corrected route is accepted and exported");
}

#[tokio::test(flavor = "current_thread")]
async fn a_policy_reload_applies_to_stored_routes_without_resetting_sessions() {
    let fixture = Fixture::new("rs-daemon-reload");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let original = fixture.fabric.clone();
    // IPv4 prefixes up to /23 only: alpha's /24s become "prefix too long" (Euro-IX code 1).
    let tightened = original
        .replace(
            "reject_private_asns: false}",
            "reject_private_asns: false, prefix_length: {ipv4: [8, 23], ipv6: [12, 48]}}",
        )
        .replace("name: DAEMON-TEST}", "name: DAEMON-TEST-RELOADED}");
    assert_ne!(tightened, original);
    fixture.reload(&tightened);
    let withdrawn = bravo
        .pump_until(Duration::from_secs(10), |peer| peer.routes.is_empty())
        .await;
    assert!(
        withdrawn,
        "routes refused by the new policy are withdrawn\n{}",
        fixture.log()
    );
    let body = fixture
        .http_get("/api/v1/neighbors/alpha.ipv4/routes/filtered")
        .expect("filtered");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(value["routes"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(
        value["routes"][0]["filtered"]["label"], "prefix_too_long",
        "{body}"
    );
    assert_eq!(
        fixture.metric("route_server_fabric_reloads_total{result=\"applied\"}"),
        Some(1.0)
    );
    let status = fixture.http_get("/api/v1/status").expect("status");
    assert!(
        status.contains("\"exchange\":\"DAEMON-TEST-RELOADED\""),
        "{status}"
    );

    // A broken file is refused; the running policy stays.
    fixture.reload("version: 1\nexchange: [\n");
    let wait = Instant::now() + Duration::from_secs(5);
    while fixture.metric("route_server_fabric_reloads_total{result=\"invalid\"}") != Some(1.0) {
        assert!(Instant::now() < wait, "the broken reload was not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fixture.metric("route_server_fabric_reload_success"),
        Some(0.0)
    );

    fixture.reload(&original);
    let restored = bravo
        .pump_until(Duration::from_secs(10), |peer| peer.routes.len() == 2)
        .await;
    assert!(restored, "routes come back under the original policy");
    alpha.pump(Duration::from_millis(200)).await;
    assert!(
        alpha.established && bravo.established,
        "no session was reset"
    );
    assert!(alpha.down.is_none() && bravo.down.is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_over_its_max_prefix_limit_is_cut_off_until_a_reload() {
    let fixture = Fixture::new("rs-daemon-max-prefix");
    let limited = fixture
        .fabric
        .replace(
            "reject_private_asns: false}",
            "reject_private_asns: false, max_prefix_action: shutdown}",
        )
        .replace(
            "{name: alpha, asn: 64501,",
            "{name: alpha, asn: 64501, max_prefix: {ipv4: 2},",
        );
    assert_ne!(limited, fixture.fabric);
    fixture.reload(&limited);
    let wait = Instant::now() + Duration::from_secs(5);
    while fixture.metric("route_server_max_prefix_limit{member=\"alpha\",family=\"ipv4\"}")
        != Some(2.0)
    {
        assert!(
            Instant::now() < wait,
            "the limit was not applied:\n{}",
            fixture.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    alpha
        .announce(&alpha_attributes(&fixture), &[prefix("198.18.130.0/24")])
        .await;
    alpha.pump(Duration::from_secs(5)).await;
    // RFC 4486: Cease, Maximum Number of Prefixes Reached.
    assert_eq!(
        alpha.notification_received(),
        Some((6, 1)),
        "{:?}",
        alpha.down
    );
    let withdrawn = bravo
        .pump_until(Duration::from_secs(10), |peer| peer.routes.is_empty())
        .await;
    assert!(
        withdrawn,
        "alpha's routes are withdrawn when its session ends"
    );
    assert_eq!(
        fixture.metric("route_server_max_prefix_exceeded_total{member=\"alpha\",family=\"ipv4\"}"),
        Some(1.0)
    );

    // Held off: a new connection is closed without BGP.
    let mut again = connect(&fixture, 11, 64501).await;
    again.pump(Duration::from_secs(2)).await;
    assert!(!again.established, "a held-off member is refused");
    assert_eq!(
        fixture.metric("route_server_connections_refused_total{reason=\"max_prefix_hold_off\"}"),
        Some(1.0)
    );

    // A reload releases the hold-off.
    fixture.reload(&limited);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let back = established(&fixture, "alpha", 11, 64501).await;
    assert!(back.established);
    bravo.pump(Duration::from_millis(200)).await;
    assert!(bravo.established, "bravo was never disturbed");
}

#[tokio::test(flavor = "current_thread")]
async fn an_action_community_keeps_a_route_from_one_member_only() {
    let fixture = Fixture::new("rs-daemon-actions");
    let mut alpha = established(&fixture, "alpha", 11, 64501).await;
    let mut bravo = established(&fixture, "bravo", 12, 64502).await;
    let mut charlie = established(&fixture, "charlie", 13, 64503).await;
    // Euro-IX rs:0:peer: do not announce to bravo (AS64502); prepend once to everyone.
    let mut attributes = alpha_attributes(&fixture);
    attributes
        .large_communities
        .push(LargeCommunity(RS_ASN, 0, 64502));
    attributes
        .large_communities
        .push(LargeCommunity(RS_ASN, 101, 0));
    alpha
        .announce(&attributes, &[prefix("198.18.160.0/24")])
        .await;
    let received = charlie
        .pump_until(Duration::from_secs(10), |peer| {
            peer.routes.contains_key(&prefix("198.18.160.0/24"))
        })
        .await;
    assert!(received, "charlie receives the route");
    let got = &charlie.routes[&prefix("198.18.160.0/24")];
    assert_eq!(
        got.large_communities,
        vec![LargeCommunity(64501, 1, 2)],
        "actions removed"
    );
    assert_eq!(
        got.as_path.asns().collect::<Vec<_>>(),
        vec![64501, 64501, 65010]
    );
    bravo.pump(Duration::from_millis(1500)).await;
    assert!(
        !bravo.routes.contains_key(&prefix("198.18.160.0/24")),
        "bravo never receives it"
    );

    // Bravo can see what it does not get, and why.
    let body = fixture
        .http_get("/api/v1/neighbors/bravo.ipv4/routes/not-exported")
        .expect("not-exported routes");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(value["routes"][0]["network"], "198.18.160.0/24", "{body}");
    assert_eq!(value["routes"][0]["learnt_from"], "alpha", "{body}");
    let reason = value["routes"][0]["not_exported"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("64500:0:64502"), "{reason}");
    let charlie_view = fixture
        .http_get("/api/v1/neighbors/charlie.ipv4/routes/not-exported")
        .expect("not-exported routes");
    assert!(charlie_view.contains("\"routes\":[]"), "{charlie_view}");
    let api = format!("{}:{HTTP_PORT}", fixture.address(1));
    let shown = cli(&[
        "show",
        "routes",
        "--neighbor",
        "bravo.ipv4",
        "--not-exported",
        "--api",
        &api,
    ]);
    assert!(shown.contains("NOT EXPORTED: "), "{shown}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_asn_gets_bad_peer_as() {
    let fixture = Fixture::new("rs-daemon-bad-as");
    let mut impostor = connect(&fixture, 11, 65000).await;
    impostor.pump(Duration::from_secs(5)).await;
    assert_eq!(
        impostor.notification_received(),
        Some((2, 2)),
        "{:?}",
        impostor.down
    );
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_ends_sessions_with_administrative_shutdown() {
    let fixture = Fixture::new("rs-daemon-shutdown");
    let mut alpha = established(&fixture, "alpha", 11, 64501).await;
    let pid = fixture
        .route_server
        .as_ref()
        .and_then(Daemon::pid)
        .expect("route server pid");
    run("kill", &["-TERM", &pid.to_string()]);
    alpha.pump(Duration::from_secs(5)).await;
    assert_eq!(
        alpha.notification_received(),
        Some((6, 2)),
        "{:?}",
        alpha.down
    );
}

#[test]
fn check_reports_file_line_field_and_what_is_valid() {
    let dir = TempDir::new("rs-check").expect("temp dir");
    let file = dir
        .write(
            "fabric.yaml",
            "version: 1\nexchange: {name: X}\nlan: {ipv4: 198.18.0.0/24, ipv6: \"fd00::/64\"}\nroute_servers: []\nmembers: []\n",
        )
        .expect("write");
    let output = Command::new(binary_path("route-server"))
        .arg("check")
        .arg(&file)
        .output()
        .expect("route-server check runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(&format!("{}:4: route_servers: ", file.display())) && line.contains("; "),
        "unexpected message: {stderr}"
    );
    let valid = Command::new(binary_path("route-server"))
        .arg("check")
        .arg(vixp_tests::workspace_root().join("configs/fabric.yaml"))
        .output()
        .expect("runs");
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
}

/// Attributes of a route from the member at `host` with `asn`, through `path` after it.
fn member_attributes(fixture: &Fixture, host: u8, asn: u32, path: &[u32]) -> Attributes {
    let mut asns = vec![asn];
    asns.extend_from_slice(path);
    Attributes::new(
        Origin::Igp,
        AsPath {
            segments: vec![Segment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        },
        IpAddr::V4(fixture.address(host)),
    )
}

/// Polls `/metrics` until `done` holds for it (5 s at most); returns the last scrape.
async fn metrics_until(fixture: &Fixture, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = fixture.metrics();
        if done(&metrics) || Instant::now() >= deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_added_by_a_reload_comes_up_and_no_other_session_is_reset() {
    let fixture = Fixture::new("rs-reload-add");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let with_delta = format!(
        "{}  - {{name: delta, asn: 64504, ipv4: 198.19.{}.14, public_key: \"{}\"}}\n",
        fixture.fabric,
        fixture.subnet,
        key(14)
    );
    let output = fixture.reload_command(&with_delta);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}\n{}",
        text(&output.stderr),
        fixture.log()
    );
    assert!(stdout.contains("members added: delta"), "{stdout}");
    assert!(stdout.contains("members removed: none"), "{stdout}");
    assert!(stdout.contains("sessions started: delta.ipv4"), "{stdout}");

    let mut delta = established(&fixture, "delta", 14, 64504).await;
    let full_table = delta
        .pump_until(Duration::from_secs(10), |peer| peer.routes.len() == 2)
        .await;
    assert!(full_table, "delta gets alpha's routes: {:?}", delta.routes);
    delta
        .announce(
            &member_attributes(&fixture, 14, 64504, &[]),
            &[prefix("198.18.140.0/24")],
        )
        .await;
    let received = bravo
        .pump_until(Duration::from_secs(10), |peer| {
            peer.routes.contains_key(&prefix("198.18.140.0/24"))
        })
        .await;
    assert!(received, "bravo receives the new member's route");
    let received = alpha
        .pump_until(Duration::from_secs(10), |peer| {
            peer.routes.contains_key(&prefix("198.18.140.0/24"))
        })
        .await;
    assert!(received, "alpha receives the new member's route");

    assert!(alpha.established && bravo.established && delta.established);
    assert!(alpha.down.is_none() && bravo.down.is_none());
    for member in ["alpha", "bravo", "delta"] {
        assert_eq!(
            fixture.metric(&format!(
                "route_server_session_established_total{{member=\"{member}\",family=\"ipv4\"}}"
            )),
            Some(1.0),
            "{member} established exactly once"
        );
    }
    let neighbors = fixture.http_get("/api/v1/neighbors").expect("neighbors");
    assert!(neighbors.contains("\"id\":\"delta.ipv4\""), "{neighbors}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_member_removed_by_a_reload_gets_peer_deconfigured_and_its_routes_vanish() {
    let fixture = Fixture::new("rs-reload-remove");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let without_alpha: String = fixture
        .fabric
        .lines()
        .filter(|line| !line.contains("name: alpha"))
        .map(|line| format!("{line}\n"))
        .collect();
    let output = fixture.reload_command(&without_alpha);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("members removed: alpha"), "{stdout}");
    assert!(stdout.contains("ended: alpha.ipv4"), "{stdout}");

    alpha
        .pump_until(Duration::from_secs(10), |peer| peer.down.is_some())
        .await;
    // RFC 4486: Cease, Peer De-configured.
    assert_eq!(
        alpha.notification_received(),
        Some((6, 3)),
        "{:?}",
        alpha.down
    );
    let withdrawn = bravo
        .pump_until(Duration::from_secs(10), |peer| peer.routes.is_empty())
        .await;
    assert!(withdrawn, "alpha's routes are withdrawn from bravo");
    assert!(bravo.established && bravo.down.is_none(), "bravo stays up");

    let neighbors = fixture.http_get("/api/v1/neighbors").expect("neighbors");
    assert!(!neighbors.contains("alpha.ipv4"), "{neighbors}");
    // Every per-session series goes; per-member NOTIFICATION counters stay (history).
    let alpha_series = |metrics: &str| {
        metrics
            .lines()
            .any(|line| line.contains("member=\"alpha\"") && !line.contains("notifications_"))
    };
    let metrics = metrics_until(&fixture, |metrics| !alpha_series(metrics)).await;
    assert!(
        !alpha_series(&metrics),
        "alpha's series are gone:\n{metrics}\n{}",
        fixture.log()
    );
    // Its address is no longer a member's: a new connection is refused and counted.
    let mut again = connect(&fixture, 11, 64501).await;
    again.pump(Duration::from_secs(1)).await;
    assert!(!again.established);
    assert_eq!(
        fixture.metric("route_server_connections_refused_total{reason=\"unknown_address\"}"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_changed_filter_parameter_changes_only_the_affected_routes() {
    let fixture = Fixture::new("rs-reload-filter");
    let mut alpha = established(&fixture, "alpha", 11, 64501).await;
    let mut bravo = established(&fixture, "bravo", 12, 64502).await;
    let short = prefix("198.18.128.0/24");
    let long = prefix("198.18.150.0/24");
    alpha
        .announce(&member_attributes(&fixture, 11, 64501, &[65010]), &[short])
        .await;
    alpha
        .announce(
            &member_attributes(&fixture, 11, 64501, &[65010, 65011, 65012]),
            &[long],
        )
        .await;
    let received = bravo
        .pump_until(Duration::from_secs(10), |peer| peer.routes.len() == 2)
        .await;
    assert!(received, "bravo gets both routes: {:?}", bravo.routes);
    let before = bravo.routes[&short].clone();
    let updates_to_bravo =
        "route_server_messages_sent_total{member=\"bravo\",family=\"ipv4\",type=\"update\"}";
    let sent_before = fixture.metric(updates_to_bravo).expect("update counter");

    // AS paths of at most 3 ASNs; and bravo gets a description (no reset for that).
    let tightened = fixture
        .fabric
        .replace(
            "reject_private_asns: false}",
            "reject_private_asns: false, max_as_path_length: 3}",
        )
        .replace(
            "{name: bravo, asn: 64502,",
            "{name: bravo, asn: 64502, description: Bravo Networks,",
        );
    assert_ne!(tightened, fixture.fabric);
    let output = fixture.reload_command(&tightened);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("policy changed: yes"), "{stdout}");
    assert!(
        stdout.contains("members changed: bravo (description; no reset)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("routes judged again: 2 (0 now accepted, 1 now refused)"),
        "{stdout}"
    );
    let withdrawn = bravo
        .pump_until(Duration::from_secs(10), |peer| {
            !peer.routes.contains_key(&long)
        })
        .await;
    assert!(withdrawn, "the too-long path is withdrawn");
    bravo.pump(Duration::from_millis(500)).await;
    assert_eq!(bravo.routes.len(), 1);
    assert_eq!(bravo.routes[&short], before, "the other route is untouched");
    assert_eq!(
        fixture.metric(updates_to_bravo),
        Some(sent_before + 1.0),
        "only the difference is sent: one UPDATE (the withdrawal)"
    );
    let filtered = fixture
        .http_get("/api/v1/neighbors/alpha.ipv4/routes/filtered")
        .expect("filtered");
    assert!(filtered.contains("198.18.150.0/24"), "{filtered}");
    let neighbors = fixture.http_get("/api/v1/neighbors").expect("neighbors");
    assert!(neighbors.contains("Bravo Networks"), "{neighbors}");
    alpha.pump(Duration::from_millis(200)).await;
    assert!(
        alpha.established && bravo.established,
        "no session was reset"
    );
    assert!(alpha.down.is_none() && bravo.down.is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn an_invalid_or_identity_changing_fabric_is_refused_by_the_reload_command() {
    let fixture = Fixture::new("rs-reload-refused");
    let (mut alpha, mut bravo) = alpha_announces_to_bravo(&fixture).await;
    let original = fixture.fabric.clone();

    // bravo's ASN is not a number: FILE:LINE: field: problem, and nothing changes.
    let line = original
        .lines()
        .position(|line| line.contains("name: bravo"))
        .expect("bravo's line")
        + 1;
    let broken = original.replace("asn: 64502", "asn: sixty-four");
    let output = fixture.reload_command(&broken);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let file = fixture.dir.path().join("fabric.yaml");
    assert!(
        stderr.contains(&format!("{}:{line}: members[1].asn", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("reload refused (invalid)"), "{stderr}");
    assert_eq!(
        fixture.metric("route_server_fabric_reloads_total{result=\"invalid\"}"),
        Some(1.0)
    );

    // The route server's own ASN needs a restart: refused, naming the field.
    let other_asn = original.replace(&format!("asn: {RS_ASN}\n"), "asn: 64599\n");
    assert_ne!(other_asn, original);
    let output = fixture.reload_command(&other_asn);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("reload refused (needs_restart)"),
        "{stderr}"
    );
    assert!(stderr.contains("asn (64500 -> 64599)"), "{stderr}");
    assert_eq!(
        fixture.metric("route_server_fabric_reloads_total{result=\"needs_restart\"}"),
        Some(1.0)
    );
    assert_eq!(
        fixture.metric("route_server_fabric_reload_success"),
        Some(0.0)
    );

    // Nothing changed: both sessions up, bravo still has alpha's routes.
    bravo.pump(Duration::from_millis(300)).await;
    alpha.pump(Duration::from_millis(100)).await;
    assert_eq!(bravo.routes.len(), 2);
    assert!(alpha.established && bravo.established);

    // And the original file applies cleanly again.
    let output = fixture.reload_command(&original);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        fixture.metric("route_server_fabric_reload_success"),
        Some(1.0)
    );
}
