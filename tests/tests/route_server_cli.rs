//! The `route-server` binary's handling of fabric files, as an operator meets it: a malformed
//! file stops `run` and `check` with a `FILE:LINE: field: problem` message. Must not leave the
//! process running.

use std::{
    io::Read as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use vixp_tests::{MemberKind, MemberSpec, TempDir, binary_path, exchange::fabric_yaml};

/// How long a route server may take to reject a bad file.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn members() -> Vec<MemberSpec> {
    ["alpha", "bravo"]
        .iter()
        .zip(11u8..)
        .map(|(name, host)| MemberSpec {
            name: (*name).to_owned(),
            asn: 64490 + u32::from(host),
            host,
            kind: MemberKind::Bird,
            announcements: Vec::new(),
        })
        .collect()
}

/// The test fabric with bravo's ASN changed to alpha's; returns the text and bravo's ASN line.
fn duplicate_asn_fabric() -> (String, usize) {
    let yaml = fabric_yaml(&members());
    let lines: Vec<&str> = yaml.lines().collect();
    let bravo = lines
        .iter()
        .position(|line| line.trim() == "- name: bravo")
        .expect("bravo in fabric");
    let asn = bravo + 1;
    assert_eq!(lines[asn].trim(), "asn: 64502");
    let mut changed: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
    changed[asn] = "    asn: 64501".to_owned();
    (changed.join("\n") + "\n", asn + 1)
}

/// Runs the route server binary with `args`, killing it if it outlives [`EXIT_TIMEOUT`];
/// returns (success, stderr).
fn run_route_server(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(binary_path("route-server"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start route-server");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > EXIT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("route-server {args:?} still running after {EXIT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("read stderr");
    }
    (status.success(), stderr)
}

fn assert_reports_duplicate_asn(stderr: &str, path: &Path, line: usize) {
    let expected = format!("{}:{line}: members[1].asn: ", path.display());
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&expected) && l.contains("64501")),
        "expected a line with {expected:?} in:\n{stderr}"
    );
}

#[test]
fn run_with_a_malformed_fabric_exits_non_zero_naming_file_line_and_field() {
    let dir = TempDir::new("rs-malformed").expect("temp dir");
    let (yaml, line) = duplicate_asn_fabric();
    let path = dir.write("fabric.yaml", &yaml).expect("write fabric");
    let (success, stderr) = run_route_server(&["run", "-c", &path.to_string_lossy()]);
    assert!(!success, "run accepted a malformed fabric:\n{stderr}");
    assert_reports_duplicate_asn(&stderr, &path, line);
}

#[test]
fn check_rejects_a_malformed_fabric_and_accepts_the_test_fabric() {
    let dir = TempDir::new("rs-check").expect("temp dir");
    let (yaml, line) = duplicate_asn_fabric();
    let bad = dir.write("bad.yaml", &yaml).expect("write fabric");
    let (success, stderr) = run_route_server(&["check", &bad.to_string_lossy()]);
    assert!(!success, "check accepted a malformed fabric:\n{stderr}");
    assert_reports_duplicate_asn(&stderr, &bad, line);

    let good = dir
        .write("good.yaml", &fabric_yaml(&members()))
        .expect("write fabric");
    let (success, stderr) = run_route_server(&["check", &good.to_string_lossy()]);
    assert!(success, "check rejected the test fabric:\n{stderr}");
}
