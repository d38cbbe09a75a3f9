//! Deployment: the hardened systemd units pass `systemd-analyze verify` and the security
//! threshold, the ansible playbook passes `ansible-lint` (production profile) and
//! `--syntax-check`, and a real run with a local connection into scratch roots (one per host of
//! a route server and two members) installs binaries, keys, checked configs, units and the
//! nftables snippet, and the members' router snippets (BIRD and FRR, sessions with both route
//! servers, parsed by bird -p and vtysh -C); a second run changes nothing; bad inventory values
//! stop the run before anything changes; a config the binary's check refuses never replaces
//! the installed one.
//!
//! Tools come from scripts/test: Debian's ansible, nftables, wireguard-tools and systemd, and
//! ansible-lint from PyPI in target/ansible-venv. A missing tool fails the test with the fix.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use vixp_tests::{TempDir, binary_path, workspace::target_dir, workspace_root};

/// The pinned ansible-lint that scripts/test installs.
const ANSIBLE_LINT_VENV: &str = "ansible-venv";

/// The three hosts of the test exchange: (inventory host, group, fabric entry YAML and host
/// variables). A second route server, rs2, is external (`vixp_external_route_servers`).
const HOSTS: [(&str, &str, &str); 3] = [
    (
        "rs1",
        "vixp_route_servers",
        "vixp_route_server: {name: rs1, asn: 64500, ipv4: 198.18.0.1, ipv6: \"fd00:198:18::1\", endpoint: \"198.18.1.1:51820\", http: \"127.0.0.1:9179\"}",
    ),
    (
        "alpha",
        "vixp_members",
        "vixp_member: {name: alpha, asn: 64501, ipv4: 198.18.0.11, ipv6: \"fd00:198:18::11\", endpoint: \"198.18.1.11:51820\", max_prefix: {ipv4: 100}}\n          \
         vixp_router_dialect: bird\n          vixp_router_prefixes: [198.18.131.0/24]\n          \
         vixp_node_settings: {receive_nice: -5, aqm: \"off\", workers: 2}",
    ),
    (
        "bravo",
        "vixp_members",
        "vixp_member: {name: bravo, asn: 64502, ipv4: 198.18.0.12}\n          vixp_router_dialect: frr",
    ),
];

fn tool(name: &str, how: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| panic!("{name} not found on PATH: {how}"))
}

fn ansible_playbook() -> PathBuf {
    tool(
        "ansible-playbook",
        "install Debian's ansible (scripts/test does: apt-get install ansible)",
    )
}

fn ansible_lint() -> PathBuf {
    let path = target_dir()
        .join(ANSIBLE_LINT_VENV)
        .join("bin")
        .join("ansible-lint");
    assert!(
        path.is_file(),
        "{} not found: scripts/test installs ansible-lint from PyPI into that venv",
        path.display()
    );
    path
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

/// `systemd-analyze verify` and the security threshold on the units in `dir`.
fn verify_units(dir: &Path, units: &[&str]) {
    let analyze = tool(
        "systemd-analyze",
        "install systemd (Debian's systemd package)",
    );
    let paths: Vec<PathBuf> = units.iter().map(|unit| dir.join(unit)).collect();
    let output = run(Command::new(&analyze).arg("verify").args(&paths));
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "systemd-analyze verify {paths:?}:\n{}",
        text(&output)
    );
    for path in &paths {
        // Exposure 0 (locked down) to 10 (unprotected): both units must stay "OK" (< 3).
        let output = run(Command::new(&analyze)
            .args(["security", "--offline=yes", "--threshold=30", "--no-pager"])
            .arg(path));
        assert!(
            output.status.success(),
            "systemd-analyze security {}: exposure above 3.0:\n{}",
            path.display(),
            text(&output)
        );
    }
}

/// Copies `units` from `from` to `to`, pointing `/usr/local/bin/` at `bin_dir` (verify wants
/// the ExecStart binaries to exist).
fn copy_units(from: &Path, to: &Path, units: &[&str], bin_dir: &Path) {
    let bin = format!("{}/", bin_dir.display());
    for unit in units {
        let source = from.join(unit);
        let text = fs::read_to_string(&source)
            .unwrap_or_else(|error| panic!("read {}: {error}", source.display()));
        let target = to.join(unit);
        fs::create_dir_all(target.parent().expect("unit directory")).expect("create unit dir");
        fs::write(&target, text.replace("/usr/local/bin/", &bin)).expect("write unit copy");
    }
}

#[test]
fn the_systemd_units_pass_verify_and_the_security_threshold() {
    let dir = TempDir::new("units").expect("temp dir");
    binary_path("vixp");
    binary_path("route-server");
    let units = ["vixp.service", "route-server.service"];
    copy_units(
        &workspace_root().join("configs/systemd"),
        dir.path(),
        &units,
        &target_dir().join("debug"),
    );
    verify_units(dir.path(), &units);
    let node = fs::read_to_string(dir.path().join("vixp.service")).expect("read unit");
    for line in [
        "Type=notify",
        "CapabilityBoundingSet=CAP_NET_ADMIN\n",
        "DeviceAllow=/dev/net/tun rw",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(node.contains(line), "vixp.service lacks {line:?}");
    }
    let route_server =
        fs::read_to_string(dir.path().join("route-server.service")).expect("read unit");
    for line in [
        "Type=notify",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
        "DynamicUser=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(
            route_server.contains(line),
            "route-server.service lacks {line:?}"
        );
    }
}

#[test]
fn the_playbook_is_lint_clean_with_the_production_profile() {
    let lint = ansible_lint();
    let venv_bin = lint.parent().expect("venv bin").to_path_buf();
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let output = run(Command::new(&lint)
        .current_dir(workspace_root().join("ansible"))
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .args(["--offline", "--profile", "production"]));
    assert!(output.status.success(), "ansible-lint:\n{}", text(&output));
    assert!(
        text(&output).contains("0 failure(s), 0 warning(s)"),
        "ansible-lint:\n{}",
        text(&output)
    );
}

#[test]
fn the_playbook_passes_the_syntax_check() {
    let ansible = workspace_root().join("ansible");
    let output = run(Command::new(ansible_playbook())
        .current_dir(&ansible)
        .args(["-i", "inventory/example.yml", "site.yml", "--syntax-check"]));
    assert!(output.status.success(), "syntax check:\n{}", text(&output));
}

/// A scratch deployment: one root directory per host, an inventory pointing at them.
struct Deployment {
    dir: TempDir,
}

impl Deployment {
    fn new() -> Self {
        let dir = TempDir::new("ansible").expect("temp dir");
        // The release directory the playbook installs from: a copy, so that a rebuild of
        // target/debug during the test does not look like a change between runs.
        let release = dir.path().join("release");
        fs::create_dir_all(&release).expect("create release dir");
        for binary in ["vixp", "route-server"] {
            fs::copy(binary_path(binary), release.join(binary)).expect("copy binary");
        }
        for (host, _, _) in HOSTS {
            fs::create_dir_all(dir.path().join("roots").join(host)).expect("create root");
        }
        fs::create_dir_all(dir.path().join("ansible-tmp")).expect("create ansible tmp");
        Self { dir }
    }

    fn root(&self, host: &str) -> PathBuf {
        self.dir.path().join("roots").join(host)
    }

    /// The inventory; `edit` may change its text (to plant a bad value).
    fn inventory(&self, edit: impl Fn(String) -> String) -> PathBuf {
        let mut groups: BTreeMap<&str, String> = BTreeMap::new();
        for (host, group, entry) in HOSTS {
            groups.entry(group).or_default().push_str(&format!(
                "        {host}:\n          vixp_root: {root}\n          {entry}\n",
                root = self.root(host).display()
            ));
        }
        let mut children = String::new();
        for (group, hosts) in groups {
            children.push_str(&format!("    {group}:\n      hosts:\n{hosts}"));
        }
        let text = format!(
            "vixp:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: /usr/bin/python3\n    \
             vixp_manage_services: false\n    vixp_release_dir: {release}\n    \
             vixp_exchange: {{name: VIXP-Deploy-Test, contact: noc@example.net}}\n    \
             vixp_lan: {{ipv4: 198.18.0.0/24, ipv6: \"fd00:198:18::/64\"}}\n    \
             vixp_policy: {{allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false}}\n    \
             vixp_external_route_servers:\n      - {{name: rs2, asn: 64500, ipv4: 198.18.0.2, ipv6: \"fd00:198:18::2\", public_key: \"wXSpcjliqzsPb3VBinPpXzMK6yV1gpS8Bd2AjwYccRQ=\"}}\n    \
             vixp_router_reload_command: \"touch {markers}/router-reloaded-{{{{ inventory_hostname }}}}\"\n    \
             vixp_external_members:\n      - {{name: charlie, asn: 64503, ipv4: 198.18.0.13, public_key: \"1qUUmoGpHvzGyNi8ollQkmgu9aA3ZhWDhqh/y4VySgQ=\"}}\n  \
             children:\n{children}",
            release = self.dir.path().join("release").display(),
            markers = self.dir.path().display(),
        );
        let path = self.dir.path().join("inventory.yml");
        fs::write(&path, edit(text)).expect("write inventory");
        path
    }

    /// Runs site.yml with `inventory`; returns success and the whole output.
    fn play(&self, inventory: &Path) -> (bool, String) {
        let temp = self.dir.path().join("ansible-tmp");
        let output = run(Command::new(ansible_playbook())
            .current_dir(workspace_root().join("ansible"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_LOCAL_TEMP", &temp)
            .env("ANSIBLE_REMOTE_TEMP", &temp)
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .arg("-i")
            .arg(inventory)
            .arg("site.yml"));
        (output.status.success(), text(&output))
    }

    /// Every file and directory of the scratch roots: mode, size, modification time, and the
    /// contents of the small ones.
    fn snapshot(&self) -> BTreeMap<PathBuf, (u32, u64, SystemTime, Vec<u8>)> {
        let mut found = BTreeMap::new();
        let mut pending = vec![self.dir.path().join("roots")];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("dir entry").path();
                let metadata = fs::symlink_metadata(&path).expect("metadata");
                let contents = if metadata.is_file() && metadata.len() < 1 << 20 {
                    fs::read(&path).expect("read file")
                } else {
                    Vec::new()
                };
                if metadata.is_dir() {
                    pending.push(path.clone());
                }
                found.insert(
                    path,
                    (
                        metadata.permissions().mode(),
                        metadata.len(),
                        metadata.modified().expect("mtime"),
                        contents,
                    ),
                );
            }
        }
        found
    }
}

/// `changed=` of every host in the PLAY RECAP.
fn changed_counts(output: &str) -> Vec<(String, u32)> {
    let recap = output.split("PLAY RECAP").nth(1).unwrap_or("");
    recap
        .lines()
        .filter_map(|line| {
            let host = line.split_whitespace().next()?.to_owned();
            let changed = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("changed="))?;
            Some((host, changed.parse().ok()?))
        })
        .collect()
}

fn assert_installed(deployment: &Deployment, host: &str) {
    let root = deployment.root(host);
    let mode = |path: &str| {
        fs::metadata(root.join(path))
            .unwrap_or_else(|error| panic!("{host}: {path}: {error}"))
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("usr/local/bin/vixp"), 0o755, "{host}: vixp binary");
    assert_eq!(mode("etc/vixp/private.key"), 0o600, "{host}: private key");
    for path in [
        "etc/vixp/fabric.yaml",
        "etc/vixp/node.yaml",
        "etc/systemd/system/vixp.service",
        "etc/nftables.d/vixp.nft",
    ] {
        assert_eq!(mode(path), 0o644, "{host}: {path}");
    }

    // The public key in the fabric file is the key generated on the host, as wg computes it.
    let wg = tool("wg", "install wireguard-tools (scripts/test does)");
    let key = fs::File::open(root.join("etc/vixp/private.key")).expect("open key");
    let output = Command::new(wg)
        .arg("pubkey")
        .stdin(key)
        .output()
        .expect("run wg pubkey");
    let public = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(public.len(), 44, "wg pubkey: {}", text(&output));
    let fabric = fs::read_to_string(root.join("etc/vixp/fabric.yaml")).expect("read fabric");
    let entry = fabric
        .split("- name: ")
        .find(|entry| entry.starts_with(host))
        .unwrap_or_else(|| panic!("{host} has no entry in its fabric file:\n{fabric}"));
    assert!(
        entry.contains(&format!("public_key: {public}")),
        "{host}: the fabric entry does not carry the host's public key {public}:\n{entry}"
    );

    // Further node fields from vixp_node_settings reach the node file as given.
    if host == "alpha" {
        let node = fs::read_to_string(root.join("etc/vixp/node.yaml")).expect("read node file");
        for line in ["aqm: \"off\"\n", "receive_nice: -5\n", "workers: 2\n"] {
            assert!(
                node.contains(line),
                "alpha's node file lacks {line:?}:\n{node}"
            );
        }
    }

    // The binaries' own checks accept what was installed.
    let check = run(Command::new(binary_path("vixp"))
        .args(["check", "--config"])
        .arg(root.join("etc/vixp/node.yaml")));
    assert!(
        check.status.success(),
        "{host}: vixp check:\n{}",
        text(&check)
    );
    let check = run(Command::new(binary_path("route-server"))
        .arg("check")
        .arg(root.join("etc/vixp/fabric.yaml")));
    assert!(
        check.status.success(),
        "{host}: route-server check:\n{}",
        text(&check)
    );

    // The nftables snippet is valid inside an input chain.
    let nft = tool("nft", "install nftables (scripts/test does)");
    let wrapper = deployment.dir.path().join(format!("{host}-nft-check.nft"));
    fs::write(
        &wrapper,
        format!(
            "table inet vixp_test_check {{\n chain input {{\n  include \"{}\"\n }}\n}}\n",
            root.join("etc/nftables.d/vixp.nft").display()
        ),
    )
    .expect("write nft wrapper");
    let output = run(Command::new(nft).arg("-c").arg("-f").arg(&wrapper));
    assert!(
        output.status.success(),
        "{host}: nft -c:\n{}",
        text(&output)
    );
    let snippet = fs::read_to_string(root.join("etc/nftables.d/vixp.nft")).expect("read nft");
    assert!(snippet.contains("udp dport 51820 accept"), "{snippet}");

    // The installed units verify against the installed binaries.
    let units_dir = deployment.dir.path().join(format!("{host}-units"));
    let mut units = vec!["vixp.service"];
    if host == "rs1" {
        units.extend(["route-server.service", "route-server.service.d/vixp.conf"]);
    }
    copy_units(
        &root.join("etc/systemd/system"),
        &units_dir,
        &units,
        &root.join("usr/local/bin"),
    );
    let services: Vec<&str> = units
        .iter()
        .copied()
        .filter(|unit| unit.ends_with(".service"))
        .collect();
    verify_units(&units_dir, &services);
}

/// The members' router snippets, rendered on their hosts by `vixp router-config` from the
/// installed node and fabric files: sessions with both route servers, exactly what the binary
/// prints, parsed by the routers' own parsers; the opted-in reload command ran once each.
fn assert_router_snippets(deployment: &Deployment) {
    let alpha = deployment.root("alpha");
    let bird_conf = alpha.join("etc/vixp/router/bird.conf");
    let snippet = fs::read_to_string(&bird_conf).expect("read alpha's BIRD snippet");
    for line in [
        "neighbor 198.18.0.1 as 64500;",
        "neighbor fd00:198:18::1 as 64500;",
        "neighbor 198.18.0.2 as 64500;",
        "neighbor fd00:198:18::2 as 64500;",
        "define VIXP_OWN_V4 = [ 198.18.131.0/24 ];",
    ] {
        assert!(
            snippet.contains(line),
            "alpha's snippet lacks {line:?}:\n{snippet}"
        );
    }
    let printed = run(Command::new(binary_path("vixp"))
        .args(["router-config", "bird", "--prefix", "198.18.131.0/24", "-c"])
        .arg(alpha.join("etc/vixp/node.yaml")));
    assert!(
        printed.status.success(),
        "router-config: {}",
        text(&printed)
    );
    assert_eq!(
        snippet,
        format!("{}\n", String::from_utf8_lossy(&printed.stdout).trim_end()),
        "alpha's snippet is not what vixp router-config prints from the installed files"
    );
    let wrapper = deployment.dir.path().join("alpha-bird.conf");
    fs::write(
        &wrapper,
        format!(
            "router id 198.18.0.11;\nprotocol device {{ }}\ninclude \"{}\";\n",
            bird_conf.display()
        ),
    )
    .expect("write bird wrapper");
    let bird = tool("bird", "install bird2 (scripts/test does)");
    let output = run(Command::new(bird).arg("-p").arg("-c").arg(&wrapper));
    assert!(output.status.success(), "bird -p: {}", text(&output));

    let frr_conf = deployment.root("bravo").join("etc/vixp/router/frr.conf");
    let snippet = fs::read_to_string(&frr_conf).expect("read bravo's FRR snippet");
    for line in [
        " neighbor 198.18.0.1 remote-as 64500\n",
        " neighbor 198.18.0.2 remote-as 64500\n",
    ] {
        assert!(
            snippet.contains(line),
            "bravo's snippet lacks {line:?}:\n{snippet}"
        );
    }
    let vtysh = tool("vtysh", "install frr (scripts/test does)");
    let output = run(Command::new(vtysh).arg("-C").arg("-f").arg(&frr_conf));
    assert!(output.status.success(), "vtysh -C: {}", text(&output));

    assert!(
        !deployment.root("rs1").join("etc/vixp/router").exists(),
        "rs1 (dialect none) got a router snippet"
    );
    for host in ["alpha", "bravo"] {
        let marker = deployment
            .dir
            .path()
            .join(format!("router-reloaded-{host}"));
        assert!(marker.is_file(), "{host}'s reload command did not run");
        fs::remove_file(&marker).expect("remove marker");
    }
}

#[test]
fn the_playbook_deploys_an_exchange_into_scratch_roots_and_refuses_bad_input() {
    let deployment = Deployment::new();
    let good = deployment.inventory(|text| text);

    let (ok, output) = deployment.play(&good);
    assert!(ok, "first run failed:\n{output}");
    for (host, _, _) in HOSTS {
        assert_installed(&deployment, host);
    }
    let rs1 = deployment.root("rs1");
    let drop_in =
        fs::read_to_string(rs1.join("etc/systemd/system/route-server.service.d/vixp.conf"))
            .expect("read drop-in");
    assert!(drop_in.contains("--route-server rs1"), "{drop_in}");
    assert!(rs1.join("usr/local/bin/route-server").is_file());
    assert!(
        !deployment
            .root("alpha")
            .join("usr/local/bin/route-server")
            .exists()
    );
    let fabric = fs::read(rs1.join("etc/vixp/fabric.yaml")).expect("read fabric");
    for host in ["alpha", "bravo"] {
        let other = fs::read(deployment.root(host).join("etc/vixp/fabric.yaml")).expect("read");
        assert_eq!(fabric, other, "{host} and rs1 hold different fabric files");
    }
    assert_router_snippets(&deployment);

    // A second run changes nothing.
    let before = deployment.snapshot();
    let (ok, output) = deployment.play(&good);
    assert!(ok, "second run failed:\n{output}");
    let counts = changed_counts(&output);
    assert_eq!(counts.len(), 3, "no recap for three hosts:\n{output}");
    assert!(
        counts.iter().all(|(_, changed)| *changed == 0),
        "second run changed something: {counts:?}\n{output}"
    );
    for host in ["alpha", "bravo"] {
        let marker = deployment
            .dir
            .path()
            .join(format!("router-reloaded-{host}"));
        assert!(
            !marker.exists(),
            "{host}'s router reloaded for an unchanged snippet"
        );
    }
    assert!(
        before == deployment.snapshot(),
        "second run touched the scratch roots"
    );

    // Bad inventory values stop the run in its first play, with a message naming the
    // problem, and nothing in any root changes.
    let bad_values: [(&str, &str, &str); 5] = [
        ("asn: 64501,", "asn: 4294967295,", "alpha: vixp_member"),
        (
            "ipv4: 198.18.0.12}",
            "ipv4: 198.19.0.12}",
            "members[1].ipv4: 198.19.0.12",
        ),
        (
            ", public_key: \"1qUUmoGpHvzGyNi8ollQkmgu9aA3ZhWDhqh/y4VySgQ=\"",
            "",
            "public_key missing",
        ),
        (
            "vixp_router_dialect: bird",
            "vixp_router_dialect: quagga",
            "valid is none (the default: no snippet), bird, frr or openbgpd",
        ),
        (
            "[198.18.131.0/24]",
            "[198.18.131.1/24]",
            "host bits are set; did you mean 198.18.131.0/24?",
        ),
    ];
    for (from, to, message) in bad_values {
        let bad = deployment.inventory(|text| {
            assert!(text.contains(from), "inventory lacks {from:?}");
            text.replacen(from, to, 1)
        });
        let (ok, output) = deployment.play(&bad);
        assert!(!ok, "a run with {to:?} succeeded:\n{output}");
        assert!(
            output.contains(message),
            "the run with {to:?} does not say {message:?}:\n{output}"
        );
        assert!(
            output.contains("Check the inventory before changing anything")
                && !output.contains("PLAY [Generate each node's private key"),
            "the run with {to:?} went past the inventory check:\n{output}"
        );
        assert!(
            before == deployment.snapshot(),
            "the run with {to:?} changed the scratch roots"
        );
    }

    // A node file that vixp check refuses (MTU below 1280) is not installed: the previous
    // one stays in place, byte for byte, and the check's message is shown.
    let node_file = deployment.root("alpha").join("etc/vixp/node.yaml");
    let installed = fs::read(&node_file).expect("read node file");
    let bad = deployment.inventory(|text| {
        text.replacen(
            "vixp_member: {name: alpha",
            "vixp_node_mtu: 100\n          vixp_member: {name: alpha",
            1,
        )
    });
    let (ok, output) = deployment.play(&bad);
    assert!(!ok, "a run with MTU 100 succeeded:\n{output}");
    assert!(
        output.contains("mtu"),
        "the failed check is not shown:\n{output}"
    );
    assert_eq!(
        installed,
        fs::read(&node_file).expect("read node file"),
        "the refused node file replaced the installed one"
    );
    let check = run(Command::new(binary_path("vixp"))
        .args(["check", "--config"])
        .arg(&node_file));
    assert!(
        check.status.success(),
        "installed node file:\n{}",
        text(&check)
    );
}

/// The unprivileged user the daemons run as in the least-privilege tests.
const NOBODY: u32 = 65534;

/// A datagram socket standing in for systemd's notification socket; `nobody` may send to it.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).expect("chmod socket");
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("read timeout");
        Self { socket, path }
    }

    /// Waits for the next notification and checks it is `wanted`.
    fn expect(&self, wanted: &str, daemon: &vixp_tests::Daemon) {
        let mut buffer = [0u8; 4096];
        let length = self.socket.recv(&mut buffer).unwrap_or_else(|error| {
            panic!(
                "no {wanted:?} from {}: {error}\n{}",
                daemon.label(),
                daemon.log_tail(40)
            )
        });
        assert_eq!(
            String::from_utf8_lossy(&buffer[..length]),
            wanted,
            "{}",
            daemon.log_tail(40)
        );
    }
}

/// `setpriv` arguments running `program` with only capability `capability` (none when
/// empty), as `nobody` when `nobody` is true (else as uid 0, which without CAP_DAC_OVERRIDE
/// still only opens what root owns), with NOTIFY_SOCKET set as systemd would.
fn restricted(
    nobody: bool,
    capability: &str,
    notify: &Path,
    program: &Path,
    args: &[&str],
) -> Vec<String> {
    let caps = if capability.is_empty() {
        "-all".to_owned()
    } else {
        format!("-all,+{capability}")
    };
    let mut full = Vec::new();
    if nobody {
        full.extend([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_owned(),
        ]);
    }
    full.extend([
        format!("--inh-caps={caps}"),
        format!("--ambient-caps={caps}"),
        format!("--bounding-set={caps}"),
        "env".to_owned(),
        format!("NOTIFY_SOCKET={}", notify.display()),
        program.display().to_string(),
    ]);
    full.extend(args.iter().map(|arg| (*arg).to_owned()));
    full
}

/// Name and nice value of every thread of process `pid` (`/proc/PID/task/*/stat`).
fn thread_nice_values(pid: u32) -> Vec<(String, i32)> {
    let mut threads = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let stat = fs::read_to_string(task.expect("task").path().join("stat")).unwrap_or_default();
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("", |(_, name)| name).to_owned();
        // Field 19 (nice) is the 17th after the command name.
        if let Some(nice) = tail
            .split_whitespace()
            .nth(16)
            .and_then(|nice| nice.parse().ok())
        {
            threads.push((name, nice));
        }
    }
    threads
}

/// Starts `label` in `netns` under `setpriv` with `arguments` (from [`restricted`]) and waits
/// for its READY notification.
fn start_restricted(
    label: &str,
    netns: &vixp_tests::Netns,
    notify: &NotifySocket,
    arguments: &[String],
    log: &Path,
) -> vixp_tests::Daemon {
    let daemon = vixp_tests::Daemon::spawn(label, netns, "setpriv", arguments, log)
        .unwrap_or_else(|error| panic!("start {label}: {error}"));
    notify.expect("READY=1\n", &daemon);
    daemon
}

fn signal(daemon: &vixp_tests::Daemon, name: &str) {
    let pid = daemon.pid().expect("daemon running").to_string();
    let output = run(Command::new("kill").arg(format!("-{name}")).arg(&pid));
    assert!(
        output.status.success(),
        "kill -{name} {pid}: {}",
        text(&output)
    );
}

fn wait_for_exit(daemon: &mut vixp_tests::Daemon) {
    let ended =
        vixp_tests::try_wait_until(std::time::Duration::from_secs(15), || !daemon.is_running());
    assert!(
        ended,
        "{} did not stop:\n{}",
        daemon.label(),
        daemon.log_tail(40)
    );
}

/// A fabric with route server rs1 and member alpha; the key of alpha is `alpha_key`.
fn small_fabric(alpha_key: &str) -> String {
    format!(
        "version: 1\nexchange: {{name: VIXP-Notify-Test}}\nlan: {{ipv4: 198.18.0.0/24, ipv6: \"fd00:198:18::/64\"}}\n\
         route_servers:\n  - {{name: rs1, asn: 64500, ipv4: 198.18.0.1, public_key: \"bQFSGAFGz4WAtR5J4mFdMG03v4oNIsmuIMwLVktSHYM=\", \
         bgp: {{active_open: false}}, http: \"127.0.0.1:9179\"}}\n\
         members:\n  - {{name: alpha, asn: 64501, ipv4: 198.18.0.11, public_key: \"{alpha_key}\"}}\n\
         policy: {{allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false}}\n"
    )
}

/// Copies a workspace binary where `nobody` may run it.
fn binary_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    fs::copy(binary_path(name), &path).expect("copy binary");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod binary");
    path
}

#[test]
fn the_route_server_runs_as_nobody_with_only_net_bind_service_and_notifies_systemd() {
    let dir = TempDir::new("notify-rs").expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let binary = binary_copy(dir.path(), "route-server");
    let fabric = dir
        .write(
            "fabric.yaml",
            &small_fabric("mJtAa3uh8CHjXSzC7D08/dNe0F58uCM9H8//s4zbTJQ="),
        )
        .expect("write fabric");
    let fabric = fabric.display().to_string();
    // The unit's RuntimeDirectory= gives the route server its control socket directory.
    let runtime = dir.path().join("run");
    fs::create_dir(&runtime).expect("create runtime dir");
    std::os::unix::fs::chown(&runtime, Some(NOBODY), Some(NOBODY)).expect("chown runtime dir");
    let runtime = runtime.display().to_string();
    let args = [
        "run",
        "--config",
        &fabric,
        "--listen",
        "127.0.0.1",
        "--port",
        "179",
        "--passive",
        "--runtime-dir",
        &runtime,
    ];
    let netns = vixp_tests::Netns::new().expect("netns");
    let notify = NotifySocket::bind(dir.path());

    // Without the capability, port 179 is refused: the capability is what makes it work.
    let refused = netns.run(
        "setpriv",
        &restricted(true, "", &notify.path, &binary, &args)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let message = format!("{refused:?}");
    assert!(
        refused.is_err() && message.contains("cannot listen for BGP on 127.0.0.1:179"),
        "route-server without CAP_NET_BIND_SERVICE: {message}"
    );

    let mut daemon = start_restricted(
        "route-server",
        &netns,
        &notify,
        &restricted(true, "net_bind_service", &notify.path, &binary, &args),
        &dir.path().join("route-server.log"),
    );
    let listening = netns
        .run("ss", &["-Hltn", "sport", "=", ":179"])
        .expect("ss");
    assert!(
        listening.contains("127.0.0.1:179"),
        "not listening: {listening}"
    );
    signal(&daemon, "HUP");
    notify.expect("RELOADING=1\n", &daemon);
    notify.expect("READY=1\n", &daemon);
    signal(&daemon, "TERM");
    notify.expect("STOPPING=1\n", &daemon);
    wait_for_exit(&mut daemon);
}

#[test]
fn the_node_runs_with_only_net_admin_and_notifies_systemd() {
    // As uid 0 without any other capability: this machine's /dev/net/tun is mode 0600 (udev
    // makes it 0666 on a normal host, where the unit's user `vixp` opens it).
    let dir = TempDir::new("notify-node").expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let binary = binary_copy(dir.path(), "vixp");
    let key = dir.path().join("private.key");
    let keygen = run(Command::new(&binary).args(["keygen", "--output"]).arg(&key));
    assert!(keygen.status.success(), "keygen: {}", text(&keygen));
    let public = String::from_utf8_lossy(&keygen.stdout).trim().to_owned();
    let run_dir = dir.path().join("run");
    fs::create_dir(&run_dir).expect("create run dir");
    dir.write("fabric.yaml", &small_fabric(&public))
        .expect("write fabric");
    let node = dir
        .write(
            "node.yaml",
            &format!(
                "member: alpha\nprivate_key_file: private.key\nfabric: fabric.yaml\n\
                 interface: vixpn0\nlisten_port: 51820\nmetrics: 127.0.0.1:9180\n\
                 control_socket: {}\n",
                run_dir.join("vixpn0.sock").display()
            ),
        )
        .expect("write node file");
    let node = node.display().to_string();
    let args = ["up", "--config", &node];
    let netns = vixp_tests::Netns::new().expect("netns");
    let notify = NotifySocket::bind(dir.path());

    // Without the capability the TAP device cannot be created.
    let refused = netns.run(
        "setpriv",
        &restricted(false, "", &notify.path, &binary, &args)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let message = format!("{refused:?}");
    assert!(
        refused.is_err() && message.contains("cannot create TAP device vixpn0"),
        "vixp up without CAP_NET_ADMIN: {message}"
    );

    let mut daemon = start_restricted(
        "vixp",
        &netns,
        &notify,
        &restricted(false, "net_admin", &notify.path, &binary, &args),
        &dir.path().join("vixp.log"),
    );
    // Without CAP_SYS_NICE or an RLIMIT_NICE (the unit's LimitNICE=, which this container
    // cannot raise) the receiving threads keep nice 0, and the node says so once.
    vixp_tests::try_wait_until(std::time::Duration::from_secs(5), || {
        daemon.log_tail(200).contains("keep their priority")
    });
    let threads = thread_nice_values(daemon.pid().expect("running"));
    assert!(
        threads.iter().all(|(_, nice)| *nice == 0),
        "threads: {threads:?}"
    );
    assert_eq!(
        daemon.log_tail(200).matches("keep their priority").count(),
        1,
        "{}",
        daemon.log_tail(40)
    );
    let link = netns
        .run("ip", &["-br", "address", "show", "vixpn0"])
        .expect("ip");
    assert!(
        link.contains("198.18.0.11/24"),
        "vixpn0 lacks its address: {link}"
    );
    signal(&daemon, "HUP");
    notify.expect("RELOADING=1\n", &daemon);
    notify.expect("READY=1\n", &daemon);
    signal(&daemon, "TERM");
    notify.expect("STOPPING=1\n", &daemon);
    wait_for_exit(&mut daemon);

    // Allowed to lower its threads' nice value, the node gives receive_nice's default to the
    // receiving threads alone.
    let mut daemon = start_restricted(
        "vixp",
        &netns,
        &notify,
        &restricted(false, "net_admin,+sys_nice", &notify.path, &binary, &args),
        &dir.path().join("vixp-nice.log"),
    );
    let pid = daemon.pid().expect("running");
    // The threads set their value when they start, which may come just after READY.
    vixp_tests::try_wait_until(std::time::Duration::from_secs(5), || {
        thread_nice_values(pid).iter().any(|(_, nice)| *nice == -10)
    });
    let threads = thread_nice_values(pid);
    let named = |prefix: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, nice)| *nice)
            .collect()
    };
    let (receiving, sending) = (named("vixp-in-"), named("vixp-out-"));
    assert!(
        !receiving.is_empty() && receiving.iter().all(|nice| *nice == -10),
        "threads: {threads:?}\n{}",
        daemon.log_tail(40)
    );
    assert!(
        !sending.is_empty() && sending.iter().all(|nice| *nice == 0),
        "threads: {threads:?}"
    );
    assert!(!daemon.log_tail(200).contains("keep their priority"));
    signal(&daemon, "TERM");
    notify.expect("STOPPING=1\n", &daemon);
    wait_for_exit(&mut daemon);
}
