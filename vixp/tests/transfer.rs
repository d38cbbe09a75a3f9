//! Payloads survive the data path: TCP transfers across the fabric between two `vixp up` nodes
//! in namespaces (IPv4 one way, IPv6 the other), compared byte for byte at the receiver. The
//! sender's kernel hands the TAP large TCP segments (TSO), which the node splits before
//! encryption, so this checks sequence numbers, lengths and checksums end to end.

mod common;

use common::transfer::transfer;
use common::{TwoSites, start_node_with};

/// Bytes sent each way.
const TRANSFER_BYTES: usize = 48 << 20;

#[test]
fn tcp_payloads_cross_the_fabric_unchanged_both_ways_with_offloads() {
    payloads_cross_unchanged(true);
}

#[test]
fn tcp_payloads_cross_the_fabric_unchanged_both_ways_without_offloads() {
    payloads_cross_unchanged(false);
}

/// Both transfers between two fresh nodes with TAP offloads on or off.
fn payloads_cross_unchanged(offload: bool) {
    let TwoSites {
        directory,
        rs: _,
        alpha,
        bravo,
        a,
        b,
    } = TwoSites::new();
    let extra = format!("offload: {offload}\n");
    let alpha_node = start_node_with(&a, &directory, "alpha", &extra);
    let bravo_node = start_node_with(&b, &directory, "bravo", &extra);
    assert!(
        alpha_node
            .log_text()
            .contains(&format!("offload={offload}")),
        "{}",
        alpha_node.log_text()
    );
    assert!(
        a.succeeds("ping", &["-c", "1", "-W", "3", &bravo.ipv4()]),
        "no path:\n{}\n{}",
        alpha_node.log_text(),
        bravo_node.log_text()
    );

    let (received, first_wrong) = transfer(
        &a,
        &b,
        bravo.ipv4().parse().expect("address"),
        TRANSFER_BYTES,
    );
    assert_eq!(received, TRANSFER_BYTES, "{}", bravo_node.log_text());
    assert_eq!(first_wrong, None, "IPv4 alpha -> bravo corrupted");
    let (received, first_wrong) = transfer(
        &b,
        &a,
        alpha.ipv6().parse().expect("address"),
        TRANSFER_BYTES,
    );
    assert_eq!(received, TRANSFER_BYTES, "{}", alpha_node.log_text());
    assert_eq!(first_wrong, None, "IPv6 bravo -> alpha corrupted");
}
