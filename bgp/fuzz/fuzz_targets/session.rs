//! Fuzz target: an established session fed arbitrary stream bytes; must never panic.
#![no_main]

use std::net::Ipv4Addr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use vixp_bgp::wire::{self, Capabilities, Open};
use vixp_bgp::{Direction, Family, Session, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let config = SessionConfig {
        local_asn: 64512,
        local_id: Ipv4Addr::new(198, 18, 0, 1),
        peer_asn: 64513,
        hold_time: 90,
        families: vec![Family::Ipv4, Family::Ipv6],
        extended_messages: true,
        route_refresh: true,
    };
    let mut session = Session::new(config, Direction::Incoming, now);
    let capabilities = Capabilities {
        families: vec![Family::Ipv4, Family::Ipv6],
        route_refresh: true,
        extended_message: true,
        ..Capabilities::default()
    };
    let open = Open::new(64513, 90, Ipv4Addr::new(198, 18, 0, 2), capabilities);
    session.handle_received(&wire::encode_open(&open), now);
    session.handle_received(&wire::encode_keepalive(), now);
    for chunk in data.chunks(97) {
        session.handle_received(chunk, now);
    }
    while session.poll_transmit().is_some() {}
    while session.poll_event().is_some() {}
});
