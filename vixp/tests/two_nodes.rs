//! Two `vixp up` nodes in two network namespaces joined by a veth underlay (198.18.1.0/24):
//! pings across `vixp0` both ways on the LAN (198.18.0.0/24, fd00:198:18::/64), status and
//! metrics counters, a fabric change applied without touching the live session, a bad fabric
//! refused, and a clean stop that removes the TAP device.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::{
    FabricNode, TempDir, TwoSites, fabric_text, keygen, peer, start_node, status, wait_for,
};

#[test]
fn two_nodes_ping_across_the_fabric_and_apply_a_fabric_change_live() {
    let TwoSites {
        directory,
        rs,
        alpha,
        bravo,
        a,
        b,
    } = TwoSites::new();
    let charlie = FabricNode::generate(&directory, "charlie", 13);
    let fabric = directory.join("fabric.yaml");

    let mut alpha_node = start_node(&a, &directory, "alpha");
    let mut bravo_node = start_node(&b, &directory, "bravo");

    // The LAN as the kernel sees it: addresses, MTU, MAC and permanent neighbours.
    let link = a.ip(&["-d", "link", "show", "vixp0"]);
    assert!(link.contains("mtu 1420"), "{link}");
    let alpha_status = status(&directory, "alpha");
    assert!(
        link.contains(alpha_status["mac"].as_str().expect("mac")),
        "{link}"
    );
    let neighbours = a.ip(&["neigh", "show", "dev", "vixp0"]);
    assert!(
        neighbours.contains(&format!("{} lladdr", bravo.ipv4())),
        "{neighbours}"
    );
    assert!(neighbours.contains("PERMANENT"), "{neighbours}");

    assert!(
        a.succeeds("ping", &["-c", "3", "-i", "0.2", "-W", "2", &bravo.ipv4()]),
        "IPv4 ping alpha -> bravo failed:\n{}\n{}",
        alpha_node.log_text(),
        bravo_node.log_text()
    );
    assert!(
        b.succeeds(
            "ping",
            &["-6", "-c", "3", "-i", "0.2", "-W", "2", &alpha.ipv6()]
        ),
        "IPv6 ping bravo -> alpha failed"
    );

    // Counters, as `vixp status --json` shows them (snapshots are taken every 250 ms).
    let counted = wait_for(Duration::from_secs(3), || {
        let bravo_status = status(&directory, "bravo");
        let from_alpha = peer(&bravo_status, "alpha");
        from_alpha["received_packets"].as_u64() >= Some(6)
            && from_alpha["sent_packets"].as_u64() >= Some(6)
    });
    assert!(counted, "{}", status(&directory, "bravo"));
    let bravo_status = status(&directory, "bravo");
    let from_alpha = peer(&bravo_status, "alpha");
    assert_eq!(
        from_alpha["endpoint"],
        format!("{}:51820", alpha.underlay())
    );
    assert!(from_alpha["latest_handshake"].as_u64() > Some(1_700_000_000));
    assert_eq!(bravo_status["handshakes"], 1);
    assert_eq!(peer(&bravo_status, "rs1")["received_packets"], 0);
    // The kernel's own multicast (MLD, router solicitations) never crossed: counted instead.
    assert!(bravo_status["drops"]["multicast"].as_u64() > Some(0));

    // Metrics pass promtool and carry the same counters.
    let metrics = a.run("curl", &["-sf", "http://127.0.0.1:9180/metrics"]);
    assert!(
        metrics.contains("vixp_received_packets_total{member=\"bravo\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("vixp_fabric_members 3\n"), "{metrics}");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    std::io::Write::write_all(
        &mut promtool.stdin.take().expect("stdin"),
        metrics.as_bytes(),
    )
    .expect("write to promtool");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A fabric change (charlie joins) is picked up from the file, without SIGHUP, and leaves
    // the alpha-bravo session alone.
    fs::write(&fabric, fabric_text(&rs, &[&alpha, &bravo, &charlie])).expect("fabric");
    let applied = wait_for(Duration::from_secs(8), || {
        let alpha_status = status(&directory, "alpha");
        alpha_status["peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|peer| peer["name"] == "charlie"))
    });
    assert!(applied, "charlie not added:\n{}", alpha_node.log_text());
    assert!(wait_for(Duration::from_secs(3), || {
        a.ip(&["neigh", "show", "dev", "vixp0"])
            .contains(&format!("{} lladdr", charlie.ipv4()))
    }));
    assert!(a.succeeds("ping", &["-c", "1", "-W", "2", &bravo.ipv4()]));
    assert_eq!(status(&directory, "alpha")["handshakes"], 1, "session kept");

    // A broken fabric, signalled with SIGHUP, is refused and the running one stays.
    fs::write(&fabric, "version: 1\nmembers: [\n").expect("fabric");
    alpha_node.signal("HUP");
    assert!(wait_for(Duration::from_secs(3), || {
        alpha_node
            .log_text()
            .contains("refused, keeping the previous one")
    }));
    assert!(alpha_node.log_text().contains("fabric.yaml:"));
    assert!(a.succeeds("ping", &["-c", "1", "-W", "2", &bravo.ipv4()]));
    // Charlie leaves again (the file is fixed): its neighbour entry goes.
    fs::write(&fabric, fabric_text(&rs, &[&alpha, &bravo])).expect("fabric");
    alpha_node.signal("HUP");
    assert!(wait_for(Duration::from_secs(3), || {
        !a.ip(&["neigh", "show", "dev", "vixp0"])
            .contains(&format!("{} lladdr", charlie.ipv4()))
    }));

    // A clean stop removes the TAP device and the control socket.
    assert!(alpha_node.stop(), "{}", alpha_node.log_text());
    assert!(!a.succeeds("ip", &["link", "show", "vixp0"]));
    assert!(!directory.join("alpha.sock").exists());
    assert!(bravo_node.stop());
}

#[test]
fn check_reports_a_node_file_that_does_not_fit_its_fabric() {
    let directory = TempDir::new();
    let node = |name, host| FabricNode {
        name,
        host,
        public_key: keygen(&directory.join(&format!("{name}.key"))),
    };
    let rs = node("rs1", 1);
    let alpha = node("alpha", 11);
    // keygen: mode 0600, and Debian's `wg pubkey` derives the public key it printed.
    let key_path = directory.join("alpha.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(&key_path).expect("key").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let derived = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("wg pubkey < {}", key_path.display()))
        .output()
        .expect("wg pubkey");
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout).trim(),
        alpha.public_key
    );
    fs::write(directory.join("fabric.yaml"), fabric_text(&rs, &[&alpha])).expect("fabric");
    let node_file = common::node_file(&directory, "alpha");
    let node_path = node_file.to_str().expect("utf-8");
    let output = std::process::Command::new(common::VIXP)
        .args(["check", "-c", node_path])
        .output()
        .expect("vixp check");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The key of another node: refused with both public keys named.
    fs::copy(directory.join("rs1.key"), directory.join("alpha.key")).expect("copy key");
    let output = std::process::Command::new(common::VIXP)
        .args(["check", "-c", node_path])
        .output()
        .expect("vixp check");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        message.starts_with(&format!(
            "{node_path}:2: private_key_file: the private key's"
        )),
        "{message}"
    );
    assert!(message.contains(&rs.public_key), "{message}");
    assert!(message.contains(&alpha.public_key), "{message}");
}
