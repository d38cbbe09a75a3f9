//! The nodes of the fabric as the data path knows them: identity (name, key, derived MAC, LAN
//! addresses), one boringtun tunnel each behind the peer's own lock, the current endpoint and
//! plain counters. Owns the MAC derivation; must not do I/O.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

use blake2::{Blake2s256, Digest as _};
use boringtun::noise::Tunn;
use vixp_fabric::Endpoint;

/// Domain separation for the MAC derivation, so the MAC is not a prefix of any other hash of
/// the key.
const MAC_DERIVATION_LABEL: &[u8] = b"vixp fabric MAC v1";

/// The fixed MAC of the node with this WireGuard public key: `02` (locally administered,
/// unicast; IEEE 802 section 8.2) followed by 5 bytes of BLAKE2s over a label and the key.
pub fn mac_for_key(public_key: &[u8; 32]) -> [u8; 6] {
    let mut hasher = Blake2s256::new();
    hasher.update(MAC_DERIVATION_LABEL);
    hasher.update(public_key);
    let digest = hasher.finalize();
    let mut mac = [0x02, 0, 0, 0, 0, 0];
    mac[1..].copy_from_slice(&digest[..5]);
    mac
}

/// A node of the fabric (member or route server) as the fabric file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Name in the fabric.
    pub name: String,
    /// WireGuard public key.
    pub public_key: [u8; 32],
    /// MAC derived from the key ([`mac_for_key`]).
    pub mac: [u8; 6],
    /// IPv4 LAN address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 LAN address.
    pub ipv6: Option<Ipv6Addr>,
    /// Underlay endpoint from the fabric (address or DNS name).
    pub endpoint: Option<Endpoint>,
}

/// A peer as the core is told about it: its spec and the endpoint to start from (the fabric's
/// address, or the driver's resolution of its DNS name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The node in the fabric.
    pub spec: PeerSpec,
    /// Where to send until the peer is heard from elsewhere.
    pub endpoint: Option<SocketAddr>,
}

/// Traffic counters of one peer, counted in the core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// IP packets handed to the tunnel for this peer.
    pub sent_packets: u64,
    /// Bytes of those IP packets (without Ethernet or WireGuard overhead).
    pub sent_bytes: u64,
    /// IP packets received from this peer and written to the TAP device.
    pub received_packets: u64,
    /// Bytes of those IP packets.
    pub received_bytes: u64,
    /// Handshakes completed with this peer.
    pub handshakes: u64,
}

/// One peer in the core: spec and what changes per packet, behind the peer's own lock so that
/// workers serving other members never wait for it.
pub(crate) struct Peer {
    /// The node in the fabric.
    pub spec: PeerSpec,
    /// The endpoint from the fabric, kept to notice when a reload changes it.
    pub configured_endpoint: Option<SocketAddr>,
    /// Tunnel, endpoint and counters.
    pub state: Mutex<PeerState>,
}

impl Peer {
    /// Locks the peer's state; a worker that panicked while holding it left counters at worst
    /// half updated, so the lock is taken anyway.
    pub fn lock(&self) -> MutexGuard<'_, PeerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What changes per packet for one peer.
pub(crate) struct PeerState {
    /// Where datagrams go now: the configured endpoint until an authenticated datagram arrives
    /// from elsewhere (roaming).
    pub endpoint: Option<SocketAddr>,
    /// The WireGuard state machine.
    pub tunnel: Tunn,
    /// Counters.
    pub counters: PeerCounters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_locally_administered_unicast_and_stable() {
        let mac = mac_for_key(&[0u8; 32]);
        assert_eq!(mac[0], 0x02);
        assert_eq!(mac[0] & 1, 0);
        assert_eq!(mac, mac_for_key(&[0u8; 32]));
        assert_ne!(mac, mac_for_key(&[1u8; 32]));
        // Pinned (computed with Python's hashlib.blake2s) so that a change of derivation, which
        // would break fabrics of mixed versions, is seen.
        assert_eq!(mac, [0x02, 0x45, 0x41, 0xf1, 0x2e, 0x53]);
    }
}
