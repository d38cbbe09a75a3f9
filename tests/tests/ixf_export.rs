//! The IX-F member export against the official IX-F member list schema 1.0: every published
//! fabric file's export validates (Debian's python3-jsonschema, with format checks) and says
//! what the fabric says, a broken export is refused, and the running route server serves it.
//! Owns one temporary directory and one route server process per test; talks to loopback only.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use route_server::ixf::member_export;
use serde_json::{Value, json};
use vixp_fabric::Fabric;
use vixp_tests::{TempDir, binary_path, try_wait_until, workspace_root};

/// Validates argv[1] against the draft-04 schema in argv[2], checking formats too
/// (`ipv4`, `ipv6`, `email`, `uri`); exits non-zero with the first error on stderr.
const VALIDATOR: &str = "import json, sys, jsonschema
instance = json.load(open(sys.argv[1]))
schema = json.load(open(sys.argv[2]))
jsonschema.validate(instance, schema, cls=jsonschema.Draft4Validator,
                    format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)";

fn schema_path() -> PathBuf {
    workspace_root().join("../shared/data/ixf/ixp-member-list-1.0.schema.json")
}

/// Every fabric file the project publishes: `configs/fabric.yaml` and `configs/examples/`.
fn fabric_files() -> Vec<PathBuf> {
    let root = workspace_root().join("configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("read configs/examples")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    files.insert(0, root.join("fabric.yaml"));
    files
}

/// Runs the official schema over `export`; `Err` holds the validator's complaint.
fn validate(directory: &TempDir, name: &str, export: &Value) -> Result<(), String> {
    let schema = schema_path();
    assert!(
        schema.is_file(),
        "the IX-F schema is missing at {} (CI keeps shared/ beside the checkout)",
        schema.display()
    );
    let file = directory
        .write(name, &export.to_string())
        .expect("write the export");
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(VALIDATOR)
        .arg(&file)
        .arg(&schema)
        .output()
        .expect("run /usr/bin/python3 (install python3-jsonschema; scripts/test does)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "python3-jsonschema is not installed: {stderr}"
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(stderr.into_owned())
    }
}

/// The address entry of `member` for `family` (`ipv4` or `ipv6`) in an export.
fn address_entry<'a>(member: &'a Value, family: &str) -> &'a Value {
    &member["connection_list"][0]["vlan_list"][0][family]
}

/// Checks that `export` says what `fabric` says: the exchange, its LAN, and for every member
/// its ASN, addresses, AS-SET, max-prefix and route-server flag; nothing else is a member.
fn assert_export_matches(fabric: &Fabric, export: &Value) {
    let source = fabric.source.display();
    let exchange = &export["ixp_list"][0];
    assert_eq!(
        exchange["shortname"],
        json!(fabric.exchange.name),
        "{source}"
    );
    assert_eq!(
        exchange["ixf_id"],
        json!(fabric.exchange.ixf_id.unwrap_or(0)),
        "{source}"
    );
    let vlan = &exchange["vlan"][0];
    assert_eq!(
        format!(
            "{}/{}",
            vlan["ipv4"]["prefix"].as_str().unwrap_or_default(),
            vlan["ipv4"]["mask_length"]
        ),
        fabric.lan.ipv4.to_string(),
        "{source}"
    );
    assert_eq!(
        format!(
            "{}/{}",
            vlan["ipv6"]["prefix"].as_str().unwrap_or_default(),
            vlan["ipv6"]["mask_length"]
        ),
        fabric.lan.ipv6.to_string(),
        "{source}"
    );
    let members = export["member_list"].as_array().expect("member_list");
    assert_eq!(
        members.len(),
        fabric.members.len(),
        "{source}: one entry per member"
    );
    let route_server_ipv4 = fabric.route_servers.iter().any(|rs| rs.ipv4.is_some());
    let route_server_ipv6 = fabric.route_servers.iter().any(|rs| rs.ipv6.is_some());
    for member in &fabric.members {
        let entry = members
            .iter()
            .find(|entry| entry["asnum"] == json!(member.asn.0))
            .unwrap_or_else(|| panic!("{source}: {} is missing from the export", member.asn));
        let families = [
            (
                "ipv4",
                member.ipv4.map(|a| a.to_string()),
                member.max_prefix.ipv4,
                route_server_ipv4,
            ),
            (
                "ipv6",
                member.ipv6.map(|a| a.to_string()),
                member.max_prefix.ipv6,
                route_server_ipv6,
            ),
        ];
        for (family, address, max_prefix, routeserver) in families {
            let exported = address_entry(entry, family);
            let Some(address) = address else {
                assert!(
                    exported.is_null(),
                    "{source}: {} has no {family}",
                    member.name
                );
                continue;
            };
            assert_eq!(
                exported["address"],
                json!(address),
                "{source}: {}",
                member.name
            );
            assert_eq!(
                exported["max_prefix"],
                json!(max_prefix),
                "{source}: {}",
                member.name
            );
            assert_eq!(
                exported["routeserver"],
                json!(routeserver),
                "{source}: {}",
                member.name
            );
            match &member.irr {
                Some(irr) => assert_eq!(exported["as_macro"], json!(irr.as_set)),
                None => assert!(exported.get("as_macro").is_none()),
            }
        }
    }
    for route_server in &fabric.route_servers {
        assert!(
            members
                .iter()
                .all(|entry| entry["asnum"] != json!(route_server.asn.0)),
            "{source}: route server {} is not a member",
            route_server.name
        );
    }
}

#[test]
fn every_published_fabric_exports_a_member_list_the_official_schema_accepts() {
    let directory = TempDir::new("ixf-export").expect("temp dir");
    let files = fabric_files();
    assert!(files.len() >= 4, "fabric.yaml and the examples: {files:?}");
    for path in files {
        let fabric = Fabric::load(&path).unwrap_or_else(|error| panic!("{error}"));
        let export = member_export(&fabric, SystemTime::now());
        let name = format!(
            "{}.json",
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or("fabric")
        );
        if let Err(complaint) = validate(&directory, &name, &export) {
            panic!(
                "{}: export refused by the schema:\n{complaint}\n{export:#}",
                path.display()
            );
        }
        assert_export_matches(&fabric, &export);
    }
}

#[test]
fn an_export_with_a_string_asnum_is_refused_by_the_validator() {
    let directory = TempDir::new("ixf-export-broken").expect("temp dir");
    let fabric = Fabric::load(&workspace_root().join("configs/fabric.yaml")).expect("fabric");
    let mut export = member_export(&fabric, SystemTime::now());
    validate(&directory, "good.json", &export).expect("the unbroken export validates");
    export["member_list"][0]["asnum"] = json!("AS64501");
    let complaint = validate(&directory, "broken.json", &export)
        .expect_err("a string asnum must fail validation");
    assert!(
        complaint.contains("is not of type 'integer'"),
        "the validator names the type error: {complaint}"
    );
}

/// A route server process started by this test, killed by its PID on drop.
struct RouteServer {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Drop for RouteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

impl RouteServer {
    /// Runs the route server for `fabric` on loopback only: BGP and HTTP on free ports,
    /// passive (it never connects out to the fabric's member addresses).
    fn start(fabric: &Path, log: PathBuf) -> RouteServer {
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_loopback_port()));
        let output = std::fs::File::create(&log).expect("create the log");
        let errors = output.try_clone().expect("clone the log");
        let child = Command::new(binary_path("route-server"))
            .arg("run")
            .arg("-c")
            .arg(fabric)
            .args(["--listen", "127.0.0.1", "--passive"])
            .args(["--port", &free_loopback_port().to_string()])
            .args(["--http", &http.to_string()])
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .expect("start route-server");
        RouteServer { child, http, log }
    }

    fn http_get(&self, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.http, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn the_route_server_serves_the_export_of_its_fabric() {
    let directory = TempDir::new("ixf-export-served").expect("temp dir");
    let path = workspace_root().join("configs/fabric.yaml");
    let fabric = Fabric::load(&path).expect("fabric");
    let server = RouteServer::start(&path, directory.path().join("route-server.log"));
    let mut response = String::new();
    let answered = try_wait_until(Duration::from_secs(10), || {
        match server.http_get("/ixf-member-export.json") {
            Ok(text) => {
                response = text;
                true
            }
            Err(_) => false,
        }
    });
    assert!(
        answered,
        "no answer from the route server:\n{}",
        server.log()
    );
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let served: Value = serde_json::from_str(body).expect("JSON body");
    validate(&directory, "served.json", &served).expect("the served export validates");
    assert_export_matches(&fabric, &served);
    let mut expected = member_export(&fabric, SystemTime::now());
    expected["timestamp"] = served["timestamp"].clone();
    assert_eq!(served, expected, "the server exports exactly its fabric");
}
