//! Why the data path drops a frame or datagram, and the plain counters per reason. Owns the
//! reason names that status, logs and metrics show; must not export anything itself.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a frame from the TAP device or a datagram from the underlay was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A frame that is neither IPv4, IPv6, ARP nor neighbour discovery (e.g. VLAN tagged,
    /// LLDP), or a decrypted packet that is not IP.
    NotIp,
    /// A unicast frame to a MAC address that no member owns.
    UnknownMac,
    /// A broadcast frame or packet; broadcasts never cross the fabric.
    Broadcast,
    /// A multicast frame or packet; multicast never crosses the fabric.
    Multicast,
    /// A packet whose source address belongs to another member (port security), or an ARP or
    /// neighbour solicitation claiming another member's address.
    SpoofedSource,
    /// An ARP request for an address that is not another member's.
    ArpNotForMember,
    /// A neighbour solicitation for an address that is not another member's.
    NeighborSolicitationNotForMember,
    /// Neighbour discovery or redirect received through a tunnel (RFC 4861 section 6-8
    /// messages are link-local and never cross the fabric).
    NeighborDiscoveryFromFabric,
    /// A frame for a member whose endpoint is not known yet (behind NAT, not yet heard from).
    NoEndpoint,
    /// A datagram that is not WireGuard.
    NotWireguard,
    /// A handshake message with a wrong MAC1 (not meant for this node's key).
    BadMac,
    /// A handshake refused because the node is under load and the sender has no cookie yet.
    UnderLoad,
    /// A handshake from a key that is not in the fabric, or a message for an unknown index.
    UnknownPeer,
    /// Authentication or decryption failed.
    DecryptFailed,
    /// A data packet or handshake seen before (anti-replay window, WireGuard paper section 5.4.6).
    Replayed,
    /// A data packet for a session that does not exist (any more).
    NoSession,
    /// A frame or packet too short or with inconsistent lengths.
    Malformed,
    /// A frame or datagram larger than the node's buffers.
    TooLarge,
    /// An IP packet larger than the tunnel MTU (answered with ICMP "fragmentation needed" or
    /// ICMPv6 "packet too big" within a rate limit).
    ExceedsMtu,
    /// A frame from the TAP device dropped because the worker's queue was full: the oldest
    /// frame of the flow with the most bytes queued (RFC 8290 section 4.1).
    QueueFull,
    /// A decrypted data packet dropped by CoDel (RFC 8289) because datagrams had waited in the
    /// worker's UDP socket longer than the target for a whole interval.
    AqmDrop,
}

impl DropReason {
    /// Every reason, in the order status and metrics list them.
    pub const ALL: [DropReason; 21] = [
        DropReason::NotIp,
        DropReason::UnknownMac,
        DropReason::Broadcast,
        DropReason::Multicast,
        DropReason::SpoofedSource,
        DropReason::ArpNotForMember,
        DropReason::NeighborSolicitationNotForMember,
        DropReason::NeighborDiscoveryFromFabric,
        DropReason::NoEndpoint,
        DropReason::NotWireguard,
        DropReason::BadMac,
        DropReason::UnderLoad,
        DropReason::UnknownPeer,
        DropReason::DecryptFailed,
        DropReason::Replayed,
        DropReason::NoSession,
        DropReason::Malformed,
        DropReason::TooLarge,
        DropReason::ExceedsMtu,
        DropReason::QueueFull,
        DropReason::AqmDrop,
    ];

    /// The name used in status output and in the `reason` label of `vixp_drops_total`.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NotIp => "not_ip",
            DropReason::UnknownMac => "unknown_mac",
            DropReason::Broadcast => "broadcast",
            DropReason::Multicast => "multicast",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::ArpNotForMember => "arp_not_for_member",
            DropReason::NeighborSolicitationNotForMember => "neighbor_solicitation_not_for_member",
            DropReason::NeighborDiscoveryFromFabric => "neighbor_discovery_from_fabric",
            DropReason::NoEndpoint => "no_endpoint",
            DropReason::NotWireguard => "not_wireguard",
            DropReason::BadMac => "bad_mac",
            DropReason::UnderLoad => "under_load",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::DecryptFailed => "decrypt_failed",
            DropReason::Replayed => "replayed",
            DropReason::NoSession => "no_session",
            DropReason::Malformed => "malformed",
            DropReason::TooLarge => "too_large",
            DropReason::ExceedsMtu => "exceeds_mtu",
            DropReason::QueueFull => "queue_full",
            DropReason::AqmDrop => "aqm_drop",
        }
    }

    /// Position in [`DropReason::ALL`].
    fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Drops counted by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl DropCounters {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        self.0[reason.slot()] += 1;
    }

    /// Drops counted for `reason`.
    pub fn of(&self, reason: DropReason) -> u64 {
        self.0[reason.slot()]
    }

    /// Every reason with its count, in [`DropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|reason| (*reason, self.of(*reason)))
    }

    /// All drops together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Drops counted by reason, shared by the forwarding workers (a drop is one relaxed atomic
/// increment; drops are the exception, so the shared counters are not a hot spot).
#[derive(Debug, Default)]
pub struct SharedDropCounters([AtomicU64; DropReason::ALL.len()]);

impl SharedDropCounters {
    /// Counts one drop.
    pub fn count(&self, reason: DropReason) {
        self.0[reason.slot()].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> DropCounters {
        DropCounters(std::array::from_fn(|slot| {
            self.0[slot].load(Ordering::Relaxed)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_list_and_names_are_unique() {
        for (index, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.slot(), index);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|reason| reason.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }

    #[test]
    fn counts_add_up() {
        let mut counters = DropCounters::default();
        counters.count(DropReason::Broadcast);
        counters.count(DropReason::Broadcast);
        counters.count(DropReason::Replayed);
        assert_eq!(counters.of(DropReason::Broadcast), 2);
        assert_eq!(counters.of(DropReason::Replayed), 1);
        assert_eq!(counters.total(), 3);
    }
}
