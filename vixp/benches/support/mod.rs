//! Set-up shared by the per-packet benchmark (`benches/per_packet.rs`) and the `per_packet`
//! example: two node cores with a WireGuard session between them, handshake done in memory,
//! and the frames they forward.

use std::net::{Ipv4Addr, SocketAddr};

use vixp::core::{Action, BUFFER_SIZE, Core, OwnNode, PeerConfig, PeerSpec, mac_for_key};
use vixp::keys::PrivateKey;

fn spec(name: &str, host: u8) -> (PeerSpec, PrivateKey) {
    let key = PrivateKey::from_bytes([host; 32]);
    let public_key = key.public_key();
    let spec = PeerSpec {
        name: name.to_owned(),
        public_key,
        mac: mac_for_key(&public_key),
        ipv4: Some(Ipv4Addr::new(198, 18, 0, host)),
        ipv6: None,
        endpoint: None,
    };
    (spec, key)
}

fn core_for(own: &(PeerSpec, PrivateKey), other: &PeerSpec, other_address: SocketAddr) -> Core {
    let mut core = Core::new(
        OwnNode {
            spec: own.0.clone(),
            secret: own.1.secret(),
        },
        Some(Ipv4Addr::new(198, 18, 0, 255)),
        None,
    );
    core.set_mtu(1420, None);
    core.apply_peers(
        own.0.clone(),
        vec![PeerConfig {
            spec: other.clone(),
            endpoint: Some(other_address),
        }],
    );
    core
}

/// An Ethernet frame with an IPv4 UDP packet of `ip_length` bytes from alpha to bravo.
pub fn udp_frame(alpha: &PeerSpec, bravo: &PeerSpec, ip_length: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + ip_length);
    frame.extend_from_slice(&bravo.mac);
    frame.extend_from_slice(&alpha.mac);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&(ip_length as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    frame.extend_from_slice(&Ipv4Addr::new(198, 18, 0, 11).octets());
    frame.extend_from_slice(&Ipv4Addr::new(198, 18, 0, 12).octets());
    frame.extend_from_slice(&[0x30, 0x39, 0x14, 0x51]);
    frame.extend_from_slice(&((ip_length - 20) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.resize(14 + ip_length, 0xa5);
    frame
}

/// Two cores with a session between them (handshake done in memory), alpha sending to bravo.
pub struct Pair {
    /// Alpha's core.
    pub sender: Core,
    /// Bravo's core.
    pub receiver: Core,
    /// Alpha's LAN identity.
    pub alpha: PeerSpec,
    /// Bravo's LAN identity.
    pub bravo: PeerSpec,
    /// Alpha's underlay address, as bravo sees it.
    pub alpha_address: SocketAddr,
}

/// Alpha and bravo with their session established.
pub fn pair() -> Pair {
    let alpha = spec("alpha", 11);
    let bravo = spec("bravo", 12);
    let alpha_address = SocketAddr::from((Ipv4Addr::new(198, 18, 1, 11), 51820));
    let bravo_address = SocketAddr::from((Ipv4Addr::new(198, 18, 1, 12), 51820));
    let sender = core_for(&alpha, &bravo.0, bravo_address);
    let receiver = core_for(&bravo, &alpha.0, alpha_address);
    let mut datagram = vec![0u8; BUFFER_SIZE];
    let mut frame_out = vec![0u8; BUFFER_SIZE];
    let mut reply = vec![0u8; BUFFER_SIZE];
    // The first frame is queued behind the handshake initiation.
    let first = udp_frame(&alpha.0, &bravo.0, 64);
    let Action::Transmit { datagram: init, .. } = sender.handle_frame(&first, &mut datagram) else {
        panic!("no handshake initiation");
    };
    let Action::Transmit {
        datagram: response, ..
    } = receiver.handle_datagram(alpha_address, init, &mut frame_out)
    else {
        panic!("no handshake response");
    };
    let response = response.to_vec();
    let _ = sender.handle_datagram(bravo_address, &response, &mut reply);
    while let Some((_, queued)) = sender.poll_transmit(&mut datagram) {
        let queued = queued.to_vec();
        let _ = receiver.handle_datagram(alpha_address, &queued, &mut frame_out);
    }
    Pair {
        sender,
        receiver,
        alpha: alpha.0,
        bravo: bravo.0,
        alpha_address,
    }
}
