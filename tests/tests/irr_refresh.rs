//! `route-server irr refresh` with the real bgpq4 against an IRR server on loopback: a small
//! responder in this test that speaks the IRRd query protocol bgpq4 uses (`!!`, `!n`, `!a`,
//! `!s`, `!i SET,1`, `!g asN`, `!6 asN`), serving a fixed AS-SET. Proves that refresh runs
//! bgpq4 with the member's AS-SET and sources, writes files the route server then reads
//! (`route-server check` counts them), reports per member, and fails clearly when the
//! server is unreachable, the AS-SET unknown or bgpq4 missing. What it cannot prove: the
//! answers of the public IRR servers (this machine has no route to them).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use vixp_tests::{TempDir, binary_path};

/// The IRR data served: AS-ALPHA holds AS64501 and AS64510.
fn answer(query: &str) -> Option<String> {
    let sets: HashMap<&str, &str> = HashMap::from([("AS-ALPHA", "AS64501 AS64510")]);
    let ipv4: HashMap<&str, &str> = HashMap::from([
        ("64501", "198.18.10.0/24 198.18.11.0/24"),
        ("64510", "198.18.20.0/24"),
    ]);
    let ipv6: HashMap<&str, &str> = HashMap::from([("64501", "fd00:10::/48")]);
    let data = |text: Option<&&str>| match text {
        Some(text) => format!("A{}\n{text}\nC\n", text.len() + 1),
        None => "C\n".to_owned(),
    };
    Some(match query {
        "!!" => return None,
        "!a" => "F unrecognized command\n".to_owned(),
        "!s-lc" => data(Some(&"RIPE")),
        _ if query.starts_with("!n") || query.starts_with("!s") => "C\n".to_owned(),
        _ if query.starts_with("!i") => {
            let name = query[2..].split(',').next().unwrap_or_default();
            match sets.get(name) {
                Some(members) => data(Some(members)),
                None => "D\n".to_owned(),
            }
        }
        _ if query.starts_with("!gas") => data(ipv4.get(&query[4..])),
        _ if query.starts_with("!6as") => data(ipv6.get(&query[4..])),
        _ => "F unknown command\n".to_owned(),
    })
}

/// Serves IRRd queries on 127.0.0.1 until the test ends; records every query.
fn start_irrd() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let queries = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&queries);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || serve(stream, &log));
        }
    });
    (port, queries)
}

fn serve(stream: TcpStream, log: &Mutex<Vec<String>>) {
    let mut writer = stream.try_clone().expect("clone stream");
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let query = line.trim().to_owned();
        log.lock().expect("log").push(query.clone());
        if query == "!q" {
            return;
        }
        if let Some(reply) = answer(&query)
            && writer.write_all(reply.as_bytes()).is_err()
        {
            return;
        }
    }
}

const FABRIC: &str = concat!(
    "version: 1\nexchange: {name: VIXP-Test}\n",
    "lan: {ipv4: 198.18.0.0/24, ipv6: \"fd00:198:18::/64\"}\n",
    "policy: {allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false}\n",
    "route_servers:\n",
    "  - {name: rs1, asn: 64500, ipv4: 198.18.0.1, ",
    "public_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\"}\n",
    "members:\n",
    "  - name: alpha\n    asn: 64501\n    ipv4: 198.18.0.11\n",
    "    public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"\n",
    "    irr: {as_set: AS-ALPHA, sources: [RIPE], prefixes_file: irr/alpha.prefixes.json, ",
    "asns_file: irr/alpha.asns.json}\n",
    "  - name: bravo\n    asn: 64502\n    ipv4: 198.18.0.12\n",
    "    public_key: \"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\"\n",
    "    irr: {prefixes: [\"198.18.12.0/24\"]}\n",
);

fn route_server(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary_path("route-server"))
        .args(args)
        .output()
        .expect("route-server runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn refresh_writes_the_members_files_from_the_irr_and_the_route_server_reads_them() {
    let dir = TempDir::new("irr-refresh").expect("temp dir");
    let fabric = dir.write("fabric.yaml", FABRIC).expect("fabric");
    let fabric = fabric.to_string_lossy().into_owned();
    // Before the first refresh the files do not exist: the fabric is refused, by file.
    let (ok, _, stderr) = route_server(&["check", &fabric]);
    assert!(!ok);
    assert!(
        stderr.contains("alpha.prefixes.json: cannot read: ")
            && stderr.contains("(named by members[0].irr.prefixes_file of member alpha)"),
        "{stderr}"
    );

    let (port, queries) = start_irrd();
    let server = format!("127.0.0.1:{port}");
    let (ok, stdout, stderr) =
        route_server(&["irr", "refresh", "-c", &fabric, "--irr-server", &server]);
    assert!(ok, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("alpha: ok: 4 prefix entries and 2 origin ASNs written to "),
        "{stdout}"
    );
    assert_eq!(lines[1], "bravo: skipped: no as_set to query");
    let queries = queries.lock().expect("log").clone();
    for expected in [
        "!sRIPE",
        "!iAS-ALPHA,1",
        "!gas64501",
        "!gas64510",
        "!6as64501",
    ] {
        assert!(
            queries.iter().any(|q| q == expected),
            "{expected} not asked: {queries:?}"
        );
    }

    let prefixes =
        std::fs::read_to_string(dir.path().join("irr/alpha.prefixes.json")).expect("prefixes file");
    assert!(prefixes.contains("\"198.18.20.0\\/24\""), "{prefixes}");
    assert!(prefixes.contains("\"fd00:10::\\/48\""), "{prefixes}");
    let asns = std::fs::read_to_string(dir.path().join("irr/alpha.asns.json")).expect("asns");
    assert!(asns.contains("64501") && asns.contains("64510"), "{asns}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("irr"))
        .expect("irr dir")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let (ok, stdout, stderr) = route_server(&["check", &fabric]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("IRR files of 1 member(s): 4 prefix entries, 2 origin ASNs"),
        "{stdout}"
    );
}

#[test]
fn refresh_fails_clearly_and_keeps_the_old_files() {
    let dir = TempDir::new("irr-refresh-fail").expect("temp dir");
    let fabric = dir
        .write("fabric.yaml", &FABRIC.replace("AS-ALPHA", "AS-UNKNOWN"))
        .expect("fabric");
    let fabric = fabric.to_string_lossy().into_owned();
    let old = "{ \"ipv4\": [\n] }\n";
    std::fs::create_dir_all(dir.path().join("irr")).expect("irr dir");
    std::fs::write(dir.path().join("irr/alpha.prefixes.json"), old).expect("old file");

    // An AS-SET the IRR does not know: bgpq4 1.9 prints an empty list and exits 0; refresh
    // refuses to write it (it would refuse every route of the member).
    let (port, _) = start_irrd();
    let server = format!("127.0.0.1:{port}");
    let (ok, stdout, _) = route_server(&["irr", "refresh", "-c", &fabric, "--irr-server", &server]);
    assert!(!ok);
    assert!(
        stdout.starts_with(
            "alpha: failed: the IRR returned no prefixes for AS-UNKNOWN (an unknown AS-SET, or \
             one without route objects); the old files stay"
        ),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("irr/alpha.prefixes.json")).expect("old file"),
        old
    );

    // No IRR server listening: the network is unavailable.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("address").port();
    drop(closed);
    let server = format!("127.0.0.1:{closed_port}");
    let (ok, stdout, _) = route_server(&[
        "irr",
        "refresh",
        "-c",
        &fabric,
        "--member",
        "alpha",
        "--irr-server",
        &server,
    ]);
    assert!(!ok);
    assert!(
        stdout.starts_with(&format!(
            "alpha: failed: cannot query the IRR server {server}: "
        )),
        "{stdout}"
    );

    // No bgpq4: one clear error, nothing per member.
    let (ok, stdout, stderr) = route_server(&[
        "irr",
        "refresh",
        "-c",
        &fabric,
        "--bgpq4",
        "/nonexistent/bgpq4",
    ]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("cannot run /nonexistent/bgpq4: ")
            && stderr.contains("install bgpq4 (apt-get install bgpq4) or pass --bgpq4 PATH"),
        "{stderr}"
    );
    // An unknown member.
    let (ok, _, stderr) = route_server(&["irr", "refresh", "-c", &fabric, "--member", "zulu"]);
    assert!(!ok);
    assert!(
        stderr.contains("no member named zulu in the fabric"),
        "{stderr}"
    );
}
