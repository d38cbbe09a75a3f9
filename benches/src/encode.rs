//! Pre-encoding of everything the load generator sends: OPEN, KEEPALIVE and the UPDATE streams
//! of each sender, packed into large buffers before the clock starts. Must not do any I/O.

use rustbgpd_wire::{
    Afi, Capability, EncodeError, Ipv4NlriEntry, Ipv4Prefix, Ipv4UnicastMode, MAX_MESSAGE_LEN,
    OpenMessage, Safi, UpdateMessage,
};

use crate::scenario::{PREFIXES_PER_ATTRIBUTE_SET, Peer, attribute_set};

/// BGP message header length (RFC 4271 section 4.1).
pub const HEADER_LENGTH: usize = 19;
/// `AS_TRANS`, the 2-octet stand-in for a 4-octet ASN in OPEN (RFC 6793 section 9).
pub const AS_TRANS: u16 = 23456;
/// Fixed part of an UPDATE body: withdrawn routes length and total path attribute length
/// (RFC 4271 section 4.3).
const UPDATE_FIXED_LENGTH: usize = 4;

/// The OPEN a load generator peer sends: BGP 4, IPv4 unicast (RFC 4760), route refresh
/// (RFC 2918) and 4-octet ASN (RFC 6793).
///
/// # Errors
/// Fails only if the codec cannot encode the capabilities.
pub fn open_message(peer: &Peer, hold_time: u16) -> Result<Vec<u8>, EncodeError> {
    let open = OpenMessage {
        version: 4,
        my_as: u16::try_from(peer.asn).unwrap_or(AS_TRANS),
        hold_time,
        bgp_identifier: peer.address,
        capabilities: vec![
            Capability::MultiProtocol {
                afi: Afi::Ipv4,
                safi: Safi::Unicast,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs { asn: peer.asn },
        ],
    };
    let mut buffer = Vec::with_capacity(open.encoded_len());
    open.encode(&mut buffer)?;
    Ok(buffer)
}

/// A KEEPALIVE message: the bare header (RFC 4271 section 4.4).
pub fn keepalive_message() -> [u8; HEADER_LENGTH] {
    let mut message = [0xff; HEADER_LENGTH];
    message[16] = 0;
    message[17] = HEADER_LENGTH as u8;
    message[18] = 4;
    message
}

/// NOTIFICATION Cease / Administrative Shutdown (RFC 4271 section 4.5, RFC 4486 section 3),
/// sent when the benchmark closes its sessions.
pub fn cease_message() -> [u8; HEADER_LENGTH + 2] {
    let mut message = [0xff; HEADER_LENGTH + 2];
    message[16] = 0;
    message[17] = (HEADER_LENGTH + 2) as u8;
    message[18] = 3;
    message[19] = 6;
    message[20] = 2;
    message
}

/// Octets one prefix takes in an NLRI or withdrawn-routes field (RFC 4271 section 4.3).
pub fn nlri_length(prefix: &Ipv4Prefix) -> usize {
    1 + usize::from(prefix.len).div_ceil(8)
}

fn entries(prefixes: &[Ipv4Prefix]) -> Vec<Ipv4NlriEntry> {
    prefixes
        .iter()
        .map(|prefix| Ipv4NlriEntry {
            path_id: 0,
            prefix: *prefix,
        })
        .collect()
}

/// All announcements of `sender` for `prefixes` (its own share of the table), one UPDATE per
/// attribute set of [`PREFIXES_PER_ATTRIBUTE_SET`] prefixes, concatenated.
///
/// # Errors
/// Fails if an UPDATE would exceed 4,096 octets or the codec rejects an attribute.
pub fn announcements(sender: &Peer, prefixes: &[Ipv4Prefix]) -> Result<Vec<u8>, EncodeError> {
    let mut stream = Vec::with_capacity(prefixes.len() * 8);
    for (set, chunk) in prefixes.chunks(PREFIXES_PER_ATTRIBUTE_SET).enumerate() {
        let update = UpdateMessage::try_build(
            &entries(chunk),
            &[],
            &attribute_set(sender, set),
            true,
            false,
            Ipv4UnicastMode::Body,
        )?;
        update.encode(&mut stream)?;
    }
    Ok(stream)
}

/// Withdrawals of all `prefixes`, packed into as few UPDATEs as the 4,096-octet limit allows
/// (withdrawn-routes field only, no attributes: RFC 4271 section 4.3).
///
/// # Errors
/// Fails only if the codec refuses a message, which the packing rules out.
pub fn withdrawals(prefixes: &[Ipv4Prefix]) -> Result<Vec<u8>, EncodeError> {
    let room = usize::from(MAX_MESSAGE_LEN) - HEADER_LENGTH - UPDATE_FIXED_LENGTH;
    let mut stream = Vec::with_capacity(prefixes.len() * 5);
    let mut start = 0;
    while start < prefixes.len() {
        let mut used = 0;
        let mut end = start;
        while end < prefixes.len() && used + nlri_length(&prefixes[end]) <= room {
            used += nlri_length(&prefixes[end]);
            end += 1;
        }
        let update = UpdateMessage::try_build(
            &[],
            &entries(&prefixes[start..end]),
            &[],
            true,
            false,
            Ipv4UnicastMode::Body,
        )?;
        update.encode(&mut stream)?;
        start = end;
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rustbgpd_wire::{Message, decode_message};

    use super::*;
    use crate::scenario::generate_prefixes;

    fn split(stream: &[u8]) -> Vec<UpdateMessage> {
        let mut bytes = Bytes::copy_from_slice(stream);
        let mut updates = Vec::new();
        while !bytes.is_empty() {
            match decode_message(&mut bytes, MAX_MESSAGE_LEN) {
                Ok(Message::Update(update)) => updates.push(update),
                other => panic!("not an UPDATE: {other:?}"),
            }
        }
        updates
    }

    #[test]
    fn withdrawals_fill_messages_to_the_limit_and_cover_every_prefix_once() {
        let prefixes = generate_prefixes(5_000);
        let stream = withdrawals(&prefixes).expect("encodes");
        let updates = split(&stream);
        let mut withdrawn = Vec::new();
        for update in &updates {
            assert!(update.encoded_len() <= usize::from(MAX_MESSAGE_LEN));
            let parsed = update.parse(true, false, &[]).expect("parses");
            assert!(parsed.announced.is_empty() && parsed.attributes.is_empty());
            withdrawn.extend(parsed.withdrawn.iter().map(|entry| entry.prefix));
        }
        assert_eq!(withdrawn, prefixes);
        let full = &updates[..updates.len() - 1];
        assert!(full.iter().all(|update| update.encoded_len() > 4_090));
    }

    #[test]
    fn announcements_carry_one_attribute_set_per_hundred_prefixes() {
        let sender = Peer::numbered(2);
        let prefixes = generate_prefixes(250);
        let updates = split(&announcements(&sender, &prefixes).expect("encodes"));
        assert_eq!(updates.len(), 3);
        let parsed = updates[1].parse(true, false, &[]).expect("parses");
        assert_eq!(parsed.announced.len(), 100);
        assert_eq!(parsed.attributes, attribute_set(&sender, 1));
    }

    #[test]
    fn cease_is_an_administrative_shutdown_notification() {
        let mut bytes = Bytes::copy_from_slice(&cease_message());
        match decode_message(&mut bytes, MAX_MESSAGE_LEN) {
            Ok(Message::Notification(notification)) => {
                assert_eq!((notification.code.as_u8(), notification.subcode), (6, 2));
            }
            other => panic!("not a NOTIFICATION: {other:?}"),
        }
    }

    #[test]
    fn open_uses_as_trans_for_four_octet_asns() {
        let open = open_message(&Peer::numbered(0), 90).expect("encodes");
        let mut bytes = Bytes::from(open);
        match decode_message(&mut bytes, MAX_MESSAGE_LEN) {
            Ok(Message::Open(open)) => {
                assert_eq!(open.my_as, AS_TRANS);
                assert_eq!(open.four_byte_as(), Peer::numbered(0).asn);
            }
            other => panic!("not an OPEN: {other:?}"),
        }
    }
}
