//! The node's TAP device and its kernel configuration: created by ioctl through `tun-rs` (MTU,
//! MAC), configured through rtnetlink (LAN addresses, link up, permanent ARP/NDP neighbour
//! entries for every other node). Must not look at packets. Closing the device removes it and
//! everything configured on it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::TryStreamExt as _;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use rtnetlink::{Handle, LinkUnspec};
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

use crate::core::PeerSpec;

/// What the kernel needs to know of the LAN: prefix lengths of its two subnets.
#[derive(Debug, Clone, Copy)]
pub struct LanPrefixes {
    /// IPv4 LAN prefix length.
    pub ipv4: u8,
    /// IPv6 LAN prefix length.
    pub ipv6: u8,
}

/// The TAP device and a netlink handle to configure it.
pub struct Link {
    /// The device's queues, one per forwarding worker (`IFF_MULTI_QUEUE` when more than one;
    /// the kernel puts each flow on one queue): reading gives frames from the kernel, writing
    /// hands frames to it (each after a virtio-net header when `offload` is on).
    pub queues: Vec<Arc<SyncDevice>>,
    /// Whether the device was opened with a virtio-net header and TSO/checksum offload.
    pub offload: bool,
    /// Its interface index.
    pub index: u32,
    /// Its name.
    pub name: String,
    handle: Handle,
}

/// Neighbour entries as `address -> MAC`.
pub type Neighbours = BTreeMap<IpAddr, [u8; 6]>;

/// The permanent neighbour entries for `peers`.
pub fn neighbours_of<'a>(peers: impl IntoIterator<Item = &'a PeerSpec>) -> Neighbours {
    let mut entries = Neighbours::new();
    for peer in peers {
        for address in peer
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(peer.ipv6.map(IpAddr::V6))
        {
            entries.insert(address, peer.mac);
        }
    }
    entries
}

impl Link {
    /// Creates the TAP device `name` with `queues` queues (at least one), `mtu` and `mac`, with
    /// `offload` a virtio-net header and
    /// TSO/checksum offload (the kernel may hand over TCP segments up to 64 KiB and partial
    /// checksums), gives it this node's LAN addresses
    /// (no duplicate address detection: the fabric guarantees uniqueness) and brings it up.
    pub async fn create(
        name: &str,
        queues: usize,
        mtu: u16,
        offload: bool,
        own: &PeerSpec,
        prefixes: LanPrefixes,
    ) -> anyhow::Result<Link> {
        let device = DeviceBuilder::new()
            .name(name)
            .layer(Layer::L2)
            .mtu(mtu)
            .mac_addr(own.mac)
            .enable(false)
            .offload(offload)
            .multi_queue(queues > 1)
            .build_sync()
            .with_context(|| format!("cannot create TAP device {name} (needs CAP_NET_ADMIN)"))?;
        let index = device
            .if_index()
            .with_context(|| format!("no interface index for {name}"))?;
        let mut devices = Vec::with_capacity(queues.max(1));
        for _ in 1..queues {
            devices.push(Arc::new(device.try_clone().with_context(|| {
                format!("cannot open another queue of TAP device {name}")
            })?));
        }
        devices.insert(0, Arc::new(device));
        let (connection, handle, _) =
            rtnetlink::new_connection().context("cannot open a netlink socket")?;
        tokio::spawn(connection);
        // RFC 4862 section 5.4: DAD is not needed where addresses are assigned uniquely by the
        // fabric file; without it the addresses are usable at once. IPv6 may be disabled.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/accept_dad"), "0");
        let link = Link {
            queues: devices,
            offload,
            index,
            name: name.to_owned(),
            handle,
        };
        link.set_addresses(None, own, prefixes).await?;
        link.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("cannot bring {name} up"))?;
        Ok(link)
    }

    /// Moves this node's LAN addresses from `old` (if any) to `new`.
    pub async fn set_addresses(
        &self,
        old: Option<&PeerSpec>,
        new: &PeerSpec,
        prefixes: LanPrefixes,
    ) -> anyhow::Result<()> {
        let wanted: Vec<(IpAddr, u8)> = new
            .ipv4
            .map(|ip| (IpAddr::V4(ip), prefixes.ipv4))
            .into_iter()
            .chain(new.ipv6.map(|ip| (IpAddr::V6(ip), prefixes.ipv6)))
            .collect();
        if let Some(old) = old {
            let stale: Vec<IpAddr> = old
                .ipv4
                .map(IpAddr::V4)
                .into_iter()
                .chain(old.ipv6.map(IpAddr::V6))
                .filter(|ip| !wanted.iter().any(|(address, _)| address == ip))
                .collect();
            let mut addresses = self
                .handle
                .address()
                .get()
                .set_link_index_filter(self.index)
                .execute();
            while let Some(message) = addresses.try_next().await? {
                let matches = message.attributes.iter().any(|attribute| {
                    matches!(attribute, AddressAttribute::Address(ip) if stale.contains(ip))
                });
                if matches {
                    self.handle.address().del(message).execute().await?;
                }
            }
        }
        for (address, prefix_length) in wanted {
            self.handle
                .address()
                .add(self.index, address, prefix_length)
                .replace()
                .execute()
                .await
                .with_context(|| {
                    format!("cannot add {address}/{prefix_length} to {}", self.name)
                })?;
        }
        Ok(())
    }

    /// Brings the permanent neighbour entries from `old` to `new`: removes entries gone,
    /// adds or replaces entries new or changed, leaves the rest untouched.
    pub async fn sync_neighbours(&self, old: &Neighbours, new: &Neighbours) -> anyhow::Result<()> {
        for (address, _) in old.iter().filter(|(address, _)| !new.contains_key(address)) {
            let mut message = NeighbourMessage::default();
            message.header.family = match address {
                IpAddr::V4(_) => AddressFamily::Inet,
                IpAddr::V6(_) => AddressFamily::Inet6,
            };
            message.header.ifindex = self.index;
            message
                .attributes
                .push(NeighbourAttribute::Destination(match address {
                    IpAddr::V4(ip) => NeighbourAddress::Inet(*ip),
                    IpAddr::V6(ip) => NeighbourAddress::Inet6(*ip),
                }));
            self.handle
                .neighbours()
                .del(message)
                .execute()
                .await
                .with_context(|| format!("cannot remove the neighbour entry for {address}"))?;
        }
        for (address, mac) in new
            .iter()
            .filter(|(address, mac)| old.get(address) != Some(mac))
        {
            self.handle
                .neighbours()
                .add(self.index, *address)
                .link_layer_address(mac)
                .replace()
                .execute()
                .await
                .with_context(|| format!("cannot add the neighbour entry for {address}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn every_lan_address_of_every_peer_gets_an_entry() {
        let peer = PeerSpec {
            name: "bravo".to_owned(),
            public_key: [1; 32],
            mac: [2, 1, 1, 1, 1, 1],
            ipv4: Some(Ipv4Addr::new(198, 18, 0, 12)),
            ipv6: Some(Ipv6Addr::new(0xfd00, 0x198, 0x18, 0, 0, 0, 0, 0x12)),
            endpoint: None,
        };
        let mut v4_only = peer.clone();
        v4_only.name = "charlie".to_owned();
        v4_only.mac = [2, 3, 3, 3, 3, 3];
        v4_only.ipv4 = Some(Ipv4Addr::new(198, 18, 0, 13));
        v4_only.ipv6 = None;
        let entries = neighbours_of([&peer, &v4_only]);
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries.get(&IpAddr::V4(Ipv4Addr::new(198, 18, 0, 13))),
            Some(&[2, 3, 3, 3, 3, 3])
        );
    }
}
