//! Harness for the node's system tests: network namespaces joined by veth pairs, keys and
//! fabric files in a temporary directory, `vixp up` processes stopped by PID. Everything is
//! removed on drop; traffic stays inside the namespaces (198.18.0.0/15, fd00::/8).

#![allow(dead_code)]

pub mod transfer;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `vixp` binary under test.
pub const VIXP: &str = env!("CARGO_BIN_EXE_vixp");

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process: `<prefix><pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a command succeeds.
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Waits until `condition` holds, at most `limit`.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

/// Fails the test clearly when not root: namespaces need it.
pub fn require_root() {
    let uid = run("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "these tests create network namespaces: run them as root (scripts/test does)"
    );
}

/// A network namespace named `vixp-t<pid>-<n>`, deleted on drop.
pub struct Namespace {
    /// Its name.
    pub name: String,
}

impl Namespace {
    /// Creates a namespace with loopback up.
    pub fn new() -> Namespace {
        let name = unique("vixp-t");
        run("ip", &["netns", "add", &name]);
        let namespace = Namespace { name };
        namespace.ip(&["link", "set", "lo", "up"]);
        namespace
    }

    /// `ip -n <name> ...`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs a command inside the namespace and returns its stdout; panics when it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Whether a command inside the namespace succeeds.
    pub fn succeeds(&self, program: &str, args: &[&str]) -> bool {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        succeeds("ip", &full)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins two namespaces with a veth pair and gives each end an underlay address (`/24`).
pub fn connect(a: &Namespace, a_address: &str, b: &Namespace, b_address: &str) {
    let suffix = unique("");
    let a_end = format!("va{}", &suffix[suffix.len().saturating_sub(10)..]);
    let b_end = format!("vb{}", &suffix[suffix.len().saturating_sub(10)..]);
    run(
        "ip",
        &[
            "link", "add", &a_end, "netns", &a.name, "type", "veth", "peer", "name", &b_end,
            "netns", &b.name,
        ],
    );
    a.ip(&["addr", "add", &format!("{a_address}/24"), "dev", &a_end]);
    b.ip(&["addr", "add", &format!("{b_address}/24"), "dev", &b_end]);
    a.ip(&["link", "set", &a_end, "up"]);
    b.ip(&["link", "set", &b_end, "up"]);
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/vixp-test-<pid>-<n>`.
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(unique("vixp-test-"));
        fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }

    /// A path inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Writes a new private key with `vixp keygen` and returns its public key.
pub fn keygen(path: &Path) -> String {
    let path = path.to_str().expect("utf-8 path");
    run(VIXP, &["keygen", "--output", path]).trim().to_owned()
}

/// One node of a test fabric.
pub struct FabricNode {
    /// Name.
    pub name: &'static str,
    /// Host part of its LAN and underlay addresses.
    pub host: u8,
    /// Public key.
    pub public_key: String,
}

impl FabricNode {
    /// A node whose key `vixp keygen` writes into `directory` as `NAME.key`.
    pub fn generate(directory: &TempDir, name: &'static str, host: u8) -> FabricNode {
        FabricNode {
            name,
            host,
            public_key: keygen(&directory.join(&format!("{name}.key"))),
        }
    }

    /// Its IPv4 LAN address.
    pub fn ipv4(&self) -> String {
        format!("198.18.0.{}", self.host)
    }

    /// Its IPv6 LAN address.
    pub fn ipv6(&self) -> String {
        format!("fd00:198:18::{}", self.host)
    }

    /// Its underlay address.
    pub fn underlay(&self) -> String {
        format!("198.18.1.{}", self.host)
    }
}

/// The usual two-site test bed: route server `rs1` (not running) and members `alpha` and
/// `bravo` in `fabric.yaml`, with alpha's namespace `a` and bravo's `b` joined by a veth on
/// the underlay. Bind it with a pattern in this field order: bindings drop in reverse, so the
/// namespaces go before the directory, and nodes started later go before both.
pub struct TwoSites {
    /// Keys, node files, fabric file and logs.
    pub directory: TempDir,
    /// The route server's node (keys and addresses only).
    pub rs: FabricNode,
    /// Member alpha.
    pub alpha: FabricNode,
    /// Member bravo.
    pub bravo: FabricNode,
    /// Alpha's namespace.
    pub a: Namespace,
    /// Bravo's namespace.
    pub b: Namespace,
}

impl TwoSites {
    /// Builds the test bed; needs root.
    pub fn new() -> TwoSites {
        require_root();
        let directory = TempDir::new();
        let rs = FabricNode::generate(&directory, "rs1", 1);
        let alpha = FabricNode::generate(&directory, "alpha", 11);
        let bravo = FabricNode::generate(&directory, "bravo", 12);
        std::fs::write(
            directory.join("fabric.yaml"),
            fabric_text(&rs, &[&alpha, &bravo]),
        )
        .expect("fabric");
        let a = Namespace::new();
        let b = Namespace::new();
        connect(&a, &alpha.underlay(), &b, &bravo.underlay());
        TwoSites {
            directory,
            rs,
            alpha,
            bravo,
            a,
            b,
        }
    }
}

/// A fabric file with route server `rs` and `members`.
pub fn fabric_text(rs: &FabricNode, members: &[&FabricNode]) -> String {
    let mut text = format!(
        "version: 1\nexchange:\n  name: VIXP-Test\nlan:\n  ipv4: 198.18.0.0/24\n  ipv6: fd00:198:18::/64\n\
         route_servers:\n  - name: {}\n    asn: 64500\n    ipv4: {}\n    ipv6: \"{}\"\n    \
         public_key: \"{}\"\n    endpoint: {}:51820\nmembers:\n",
        rs.name,
        rs.ipv4(),
        rs.ipv6(),
        rs.public_key,
        rs.underlay()
    );
    for member in members {
        text.push_str(&format!(
            "  - name: {}\n    asn: {}\n    ipv4: {}\n    ipv6: \"{}\"\n    public_key: \"{}\"\n    \
             endpoint: {}:51820\n",
            member.name,
            64500 + u32::from(member.host),
            member.ipv4(),
            member.ipv6(),
            member.public_key,
            member.underlay()
        ));
    }
    text
}

/// A node file for `member` in `directory`, with its control socket there too.
pub fn node_file(directory: &TempDir, member: &str) -> PathBuf {
    node_file_with(directory, member, "")
}

/// A node file for `member` in `directory` with `extra` lines appended.
pub fn node_file_with(directory: &TempDir, member: &str, extra: &str) -> PathBuf {
    let path = directory.join(&format!("{member}.yaml"));
    fs::write(
        &path,
        format!(
            "member: {member}\nprivate_key_file: {member}.key\nfabric: fabric.yaml\n\
             control_socket: {}\n{extra}",
            directory.join(&format!("{member}.sock")).display()
        ),
    )
    .expect("node file");
    path
}

/// A process started by the test, stopped by PID on drop.
pub struct Process {
    child: Child,
    /// Its stderr log file.
    pub log: PathBuf,
}

impl Process {
    /// Starts `command` with stdout and stderr to `log`.
    pub fn start(mut command: Command, log: PathBuf) -> Process {
        let file = fs::File::create(&log).expect("log file");
        let child = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start process");
        Process { child, log }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by PID.
    pub fn signal(&self, signal: &str) {
        run("kill", &[&format!("-{signal}"), &self.pid().to_string()]);
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        self.signal("TERM");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Starts `vixp up -c <node file>` inside `namespace` and waits for its control socket.
pub fn start_node(namespace: &Namespace, directory: &TempDir, member: &str) -> Process {
    start_node_with(namespace, directory, member, "")
}

/// [`start_node`] with `extra` lines in the node file.
pub fn start_node_with(
    namespace: &Namespace,
    directory: &TempDir,
    member: &str,
    extra: &str,
) -> Process {
    let node_file = node_file_with(directory, member, extra);
    let mut command = namespace.command(VIXP);
    command.args(["up", "-c", node_file.to_str().expect("utf-8 path")]);
    let mut process = Process::start(command, directory.join(&format!("{member}.log")));
    let socket = directory.join(&format!("{member}.sock"));
    let up = wait_for(Duration::from_secs(10), || socket.exists());
    assert!(
        up && process.is_running(),
        "vixp up for {member} did not start:\n{}",
        process.log_text()
    );
    process
}

/// `vixp status --json` of a node, parsed.
pub fn status(directory: &TempDir, member: &str) -> serde_json::Value {
    let node_file = directory.join(&format!("{member}.yaml"));
    let text = run(
        VIXP,
        &[
            "status",
            "--json",
            "-c",
            node_file.to_str().expect("utf-8 path"),
        ],
    );
    serde_json::from_str(&text).expect("status JSON")
}

/// The entry of peer `name` in a status.
pub fn peer<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|peer| peer["name"] == name))
        .unwrap_or_else(|| panic!("no peer {name} in {status}"))
}
