//! The receiving side of the load generator: frames BGP messages out of a byte stream and keeps,
//! per receiving peer, which prefixes of the benchmark table it holds right now. It counts NLRI
//! and withdrawals only and decodes full path attributes of one sample route per sender. It
//! must not do I/O, and bytes from the route server must never make it panic.

use std::ops::Range;
use std::sync::Arc;

use rustbgpd_wire::attribute::decode_path_attributes;
use rustbgpd_wire::{Ipv4Prefix, MAX_MESSAGE_LEN, PathAttribute};

use crate::encode::HEADER_LENGTH;
use crate::scenario::{PREFIXES_PER_ATTRIBUTE_SET, Peer, ROUTE_SERVER_ASN, attribute_set};

/// BGP message type code of UPDATE (RFC 4271 section 4.1).
pub const UPDATE: u8 = 2;
/// BGP message type code of NOTIFICATION (RFC 4271 section 4.1).
pub const NOTIFICATION: u8 = 3;
/// BGP message type code of KEEPALIVE (RFC 4271 section 4.1).
pub const KEEPALIVE: u8 = 4;

/// What went wrong with bytes received from the route server, or with a sample route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The 16-octet marker is not all ones (RFC 4271 section 4.1).
    #[error("message header marker is not all ones")]
    Marker,
    /// The header length is outside 19..=4096 (RFC 4271 section 4.1).
    #[error("message length {length} is outside 19..=4096")]
    MessageLength {
        /// Length field of the header.
        length: usize,
    },
    /// A length field inside an UPDATE points past the end of the message.
    #[error("UPDATE field {field} runs past the end of the message")]
    Truncated {
        /// The field that did not fit.
        field: &'static str,
    },
    /// An NLRI prefix length above 32 (RFC 4271 section 4.3).
    #[error("IPv4 prefix length {length} is above 32")]
    PrefixLength {
        /// The length octet received.
        length: u8,
    },
    /// No route of `sender` was captured for the sample check.
    #[error("no sample route of {sender} was received")]
    SampleMissing {
        /// Name of the sending peer.
        sender: String,
    },
    /// The sample route's attributes could not be decoded.
    #[error("sample route of {sender} has undecodable attributes: {reason}")]
    SampleUndecodable {
        /// Name of the sending peer.
        sender: String,
        /// Decoder message.
        reason: String,
    },
    /// A sample route differs from what its sender announced.
    #[error("sample route of {sender}: {field} is {received}, the sender announced {expected}")]
    SampleMismatch {
        /// Name of the sending peer.
        sender: String,
        /// Which attribute differs.
        field: &'static str,
        /// What the sender announced.
        expected: String,
        /// What arrived at the receiver.
        received: String,
    },
}

/// Maps every prefix of the benchmark table to its position; sender `s` owns positions
/// `s * per_sender .. (s + 1) * per_sender`. The generated prefixes are at most /24 long and
/// do not overlap, so each starts in its own /24 block: a direct table indexed by block finds
/// a prefix with one memory access, and neighbouring prefixes of one UPDATE sit side by side.
pub struct PrefixIndex {
    first_block: u32,
    /// Position + 1 of the prefix starting at each /24 block, 0 for none.
    slots: Vec<u32>,
    lengths: Vec<u8>,
    per_sender: usize,
}

impl PrefixIndex {
    /// Indexes `prefixes`, the whole table in sender order, each /24 or shorter.
    pub fn new(prefixes: &[Ipv4Prefix], per_sender: usize) -> Self {
        let block = |prefix: &Ipv4Prefix| u32::from(prefix.addr) >> 8;
        let first_block = prefixes.iter().map(block).min().unwrap_or(0);
        let last_block = prefixes.iter().map(block).max().unwrap_or(0);
        let mut slots = vec![0u32; (last_block - first_block) as usize + 1];
        for (position, prefix) in prefixes.iter().enumerate() {
            if prefix.len <= 24 {
                slots[(block(prefix) - first_block) as usize] = position as u32 + 1;
            }
        }
        Self {
            first_block,
            slots,
            lengths: prefixes.iter().map(|prefix| prefix.len).collect(),
            per_sender: per_sender.max(1),
        }
    }

    /// Position of a prefix in the table, if it is one of ours.
    pub fn position(&self, address: u32, length: u8) -> Option<usize> {
        if address & 0xff != 0 {
            return None;
        }
        let slot = (address >> 8).checked_sub(self.first_block)?;
        let position = (*self.slots.get(slot as usize)?).checked_sub(1)? as usize;
        (self.lengths.get(position) == Some(&length)).then_some(position)
    }

    /// Number of prefixes in the table.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
}

/// Splits the next complete message off the front of `buffer`: its type and total length, or
/// `None` if more bytes are needed (RFC 4271 section 4.1).
///
/// # Errors
/// A bad marker or length: the stream cannot be framed any further.
pub fn next_message(buffer: &[u8]) -> Result<Option<(u8, usize)>, SinkError> {
    let Some(header) = buffer.get(..HEADER_LENGTH) else {
        return Ok(None);
    };
    if header[..16].iter().any(|octet| *octet != 0xff) {
        return Err(SinkError::Marker);
    }
    let length = usize::from(u16::from_be_bytes([header[16], header[17]]));
    if !(HEADER_LENGTH..=usize::from(MAX_MESSAGE_LEN)).contains(&length) {
        return Err(SinkError::MessageLength { length });
    }
    if buffer.len() < length {
        return Ok(None);
    }
    Ok(Some((header[18], length)))
}

/// Reads the big-endian u16 at `offset`.
fn read_u16(bytes: &[u8], offset: usize, field: &'static str) -> Result<u16, SinkError> {
    match bytes.get(offset..offset + 2) {
        Some(pair) => Ok(u16::from_be_bytes([pair[0], pair[1]])),
        None => Err(SinkError::Truncated { field }),
    }
}

/// Calls `each(address, length)` for every IPv4 prefix of an NLRI-encoded field
/// (RFC 4271 section 4.3).
fn for_each_prefix(mut field: &[u8], mut each: impl FnMut(u32, u8)) -> Result<(), SinkError> {
    while let Some((&length, rest)) = field.split_first() {
        if length > 32 {
            return Err(SinkError::PrefixLength { length });
        }
        let octets = usize::from(length).div_ceil(8);
        let Some(address_octets) = rest.get(..octets) else {
            return Err(SinkError::Truncated { field: "NLRI" });
        };
        let mut address = [0u8; 4];
        address[..octets].copy_from_slice(address_octets);
        each(u32::from_be_bytes(address), length);
        field = &rest[octets..];
    }
    Ok(())
}

/// What one receiving peer holds from the benchmark table.
pub struct Holdings {
    index: Arc<PrefixIndex>,
    own: Range<usize>,
    bits: Vec<u64>,
    /// Raw path attributes of each sender's first (slot `2s`) and last (slot `2s + 1`)
    /// prefix, as last received.
    samples: Vec<Option<Vec<u8>>>,
    /// Prefixes of the table held now.
    pub held: usize,
    /// Prefixes to hold at convergence.
    pub expected: usize,
    /// Announcements of the receiver's own prefixes sent back to it (RFC 7947 forbids it).
    pub reflected: u64,
    /// Announced prefixes that are not in the table.
    pub unknown: u64,
    /// UPDATE messages received.
    pub updates: u64,
    /// A number of prefixes the coordinator waits for this receiver to hold (after a policy
    /// reload); the reader reports it once and clears it.
    pub target: Option<usize>,
}

impl Holdings {
    /// Holdings of `receiver`, empty; `senders` peers announce `per_sender` prefixes each.
    pub fn new(index: Arc<PrefixIndex>, receiver: usize, senders: usize) -> Self {
        let per_sender = index.per_sender;
        let own = if receiver < senders {
            receiver * per_sender..(receiver + 1) * per_sender
        } else {
            0..0
        };
        let expected = index.len() - own.len();
        Self {
            bits: vec![0; index.len().div_ceil(64)],
            samples: vec![None; 2 * senders],
            index,
            own,
            held: 0,
            expected,
            reflected: 0,
            unknown: 0,
            updates: 0,
            target: None,
        }
    }

    /// Prefixes this receiver holds at convergence once every IPv4 prefix shorter than
    /// `min_length` is refused by the route server.
    pub fn expected_with_min_length(&self, min_length: u8) -> usize {
        self.index
            .lengths
            .iter()
            .enumerate()
            .filter(|(position, length)| !self.own.contains(position) && **length >= min_length)
            .count()
    }

    /// Applies one UPDATE body (the message without its 19-octet header): withdrawals first,
    /// then announcements (RFC 4271 section 4.3). Keeps the attributes of the first prefix of
    /// each sender as that sender's sample route.
    ///
    /// # Errors
    /// A length field that does not fit the message, or a prefix length above 32.
    pub fn apply_update(&mut self, body: &[u8]) -> Result<(), SinkError> {
        self.updates += 1;
        let withdrawn_length = usize::from(read_u16(body, 0, "withdrawn routes length")?);
        let withdrawn = body
            .get(2..2 + withdrawn_length)
            .ok_or(SinkError::Truncated {
                field: "withdrawn routes",
            })?;
        let attributes_at = 2 + withdrawn_length;
        let attributes_length = usize::from(read_u16(
            body,
            attributes_at,
            "total path attribute length",
        )?);
        let attributes = body
            .get(attributes_at + 2..attributes_at + 2 + attributes_length)
            .ok_or(SinkError::Truncated {
                field: "path attributes",
            })?;
        let nlri = &body[attributes_at + 2 + attributes_length..];

        for_each_prefix(withdrawn, |address, length| {
            if let Some(position) = self.index.position(address, length) {
                self.clear(position);
            }
        })?;
        let per_sender = self.index.per_sender;
        let mut sampled = [None, None];
        for_each_prefix(nlri, |address, length| {
            match self.index.position(address, length) {
                Some(position) if self.own.contains(&position) => self.reflected += 1,
                Some(position) => {
                    self.set(position);
                    let (sender, offset) = (position / per_sender, position % per_sender);
                    if offset == 0 {
                        sampled[0] = Some(2 * sender);
                    } else if offset == per_sender - 1 {
                        sampled[1] = Some(2 * sender + 1);
                    }
                }
                None => self.unknown += 1,
            }
        })?;
        for slot in sampled.into_iter().flatten() {
            if let Some(sample) = self.samples.get_mut(slot) {
                *sample = Some(attributes.to_vec());
            }
        }
        Ok(())
    }

    fn set(&mut self, position: usize) {
        let (word, bit) = (position / 64, 1u64 << (position % 64));
        if let Some(slot) = self.bits.get_mut(word)
            && *slot & bit == 0
        {
            *slot |= bit;
            self.held += 1;
        }
    }

    fn clear(&mut self, position: usize) {
        let (word, bit) = (position / 64, 1u64 << (position % 64));
        if let Some(slot) = self.bits.get_mut(word)
            && *slot & bit != 0
        {
            *slot &= !bit;
            self.held -= 1;
        }
    }

    /// Checks the sample routes (first and last prefix) of every sender but the receiver itself
    /// against what the sender announced: same NEXT_HOP and AS_PATH (RFC 7947 sections 2.2.1 and 2.2.2: a transparent
    /// route server changes neither and never adds its own ASN), same MED and communities.
    ///
    /// # Errors
    /// The first sample that is missing or differs.
    pub fn check_samples(&self, senders: &[Peer]) -> Result<usize, SinkError> {
        let per_sender = self.index.per_sender;
        let last_set = (per_sender - 1) / PREFIXES_PER_ATTRIBUTE_SET;
        let mut checked = 0;
        for sender in senders {
            if self.own.contains(&(sender.index * per_sender)) {
                continue;
            }
            let mut wanted = vec![(2 * sender.index, 0)];
            if per_sender > 1 {
                wanted.push((2 * sender.index + 1, last_set));
            }
            for (slot, set) in wanted {
                let raw = self
                    .samples
                    .get(slot)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| SinkError::SampleMissing {
                        sender: sender.name(),
                    })?;
                let received = decode_path_attributes(raw, true, &[]).map_err(|error| {
                    SinkError::SampleUndecodable {
                        sender: sender.name(),
                        reason: error.to_string(),
                    }
                })?;
                compare_sample(sender, &attribute_set(sender, set), &received)?;
                checked += 1;
            }
        }
        Ok(checked)
    }
}

/// Picks one kind of attribute out of a list.
type AttributeSelector = fn(&PathAttribute) -> bool;

/// Compares the attributes that a transparent route server must pass unchanged.
fn compare_sample(
    sender: &Peer,
    announced: &[PathAttribute],
    received: &[PathAttribute],
) -> Result<(), SinkError> {
    let fields: [(&'static str, AttributeSelector); 5] = [
        ("NEXT_HOP", |attribute| {
            matches!(attribute, PathAttribute::NextHop(_))
        }),
        ("AS_PATH", |attribute| {
            matches!(attribute, PathAttribute::AsPath(_))
        }),
        ("MULTI_EXIT_DISC", |attribute| {
            matches!(attribute, PathAttribute::Med(_))
        }),
        ("COMMUNITIES", |attribute| {
            matches!(attribute, PathAttribute::Communities(_))
        }),
        ("LARGE_COMMUNITIES", |attribute| {
            matches!(attribute, PathAttribute::LargeCommunities(_))
        }),
    ];
    for (field, select) in fields {
        let expected = announced.iter().find(|attribute| select(attribute));
        let got = received.iter().find(|attribute| select(attribute));
        if expected != got {
            return Err(SinkError::SampleMismatch {
                sender: sender.name(),
                field,
                expected: format!("{expected:?}"),
                received: format!("{got:?}"),
            });
        }
    }
    let route_server_in_path = received.iter().any(|attribute| {
        matches!(attribute, PathAttribute::AsPath(path) if path.contains_asn(ROUTE_SERVER_ASN))
    });
    if route_server_in_path {
        return Err(SinkError::SampleMismatch {
            sender: sender.name(),
            field: "AS_PATH",
            expected: "a path without the route server's ASN".to_owned(),
            received: format!("a path with AS{ROUTE_SERVER_ASN}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{announcements, withdrawals};
    use crate::scenario::generate_prefixes;

    /// Feeds a stream of whole messages into `holdings`.
    fn feed(holdings: &mut Holdings, mut stream: &[u8]) {
        while let Some((kind, length)) = next_message(stream).expect("frames") {
            assert_eq!(kind, UPDATE);
            holdings
                .apply_update(&stream[HEADER_LENGTH..length])
                .expect("applies");
            stream = &stream[length..];
        }
        assert!(stream.is_empty());
    }

    fn table() -> (Vec<Peer>, Vec<Ipv4Prefix>, Arc<PrefixIndex>) {
        let senders = vec![Peer::numbered(0), Peer::numbered(1)];
        let prefixes = generate_prefixes(2 * 300);
        let index = Arc::new(PrefixIndex::new(&prefixes, 300));
        (senders, prefixes, index)
    }

    #[test]
    fn a_receiver_counts_announced_prefixes_once_and_withdrawals_down_to_zero() {
        let (senders, prefixes, index) = table();
        let mut holdings = Holdings::new(index, 5, 2);
        assert_eq!(holdings.expected, 600);
        for (sender, share) in senders.iter().zip(prefixes.chunks(300)) {
            let stream = announcements(sender, share).expect("encodes");
            feed(&mut holdings, &stream);
            feed(&mut holdings, &stream);
        }
        assert_eq!(holdings.held, 600);
        assert_eq!(holdings.check_samples(&senders), Ok(4));
        feed(
            &mut holdings,
            &withdrawals(&prefixes[..450]).expect("encodes"),
        );
        assert_eq!(holdings.held, 150);
        feed(&mut holdings, &withdrawals(&prefixes).expect("encodes"));
        assert_eq!(holdings.held, 0);
    }

    #[test]
    fn the_index_finds_exactly_the_table_prefixes() {
        let prefixes = generate_prefixes(1_000);
        let index = PrefixIndex::new(&prefixes, 500);
        for (position, prefix) in prefixes.iter().enumerate() {
            assert_eq!(
                index.position(u32::from(prefix.addr), prefix.len),
                Some(position)
            );
            assert_eq!(index.position(u32::from(prefix.addr), prefix.len + 1), None);
        }
        let first = u32::from(prefixes[0].addr);
        assert_eq!(index.position(first + 1, 32), None);
        assert_eq!(index.position(first - 256, 24), None);
        assert_eq!(index.position(0xffff_ff00, 24), None);
        assert_eq!(index.position(0, 0), None);
    }

    #[test]
    fn own_routes_sent_back_are_counted_as_reflected_not_held() {
        let (senders, prefixes, index) = table();
        let mut holdings = Holdings::new(index, 0, 2);
        feed(
            &mut holdings,
            &announcements(&senders[0], &prefixes[..300]).expect("encodes"),
        );
        assert_eq!(
            (holdings.held, holdings.reflected, holdings.expected),
            (0, 300, 300)
        );
    }

    #[test]
    fn a_route_server_that_prepends_its_asn_fails_the_sample_check() {
        let (senders, prefixes, index) = table();
        let mut holdings = Holdings::new(index, 1, 2);
        let mut attributes = attribute_set(&senders[0], 0);
        for attribute in &mut attributes {
            if let PathAttribute::AsPath(path) = attribute {
                path.segments.insert(
                    0,
                    rustbgpd_wire::AsPathSegment::AsSequence(vec![ROUTE_SERVER_ASN]),
                );
            }
        }
        let entries: Vec<_> = prefixes[..100]
            .iter()
            .map(|prefix| rustbgpd_wire::Ipv4NlriEntry {
                path_id: 0,
                prefix: *prefix,
            })
            .collect();
        let update = rustbgpd_wire::UpdateMessage::build(
            &entries,
            &[],
            &attributes,
            true,
            false,
            rustbgpd_wire::Ipv4UnicastMode::Body,
        );
        let mut stream = Vec::new();
        update.encode(&mut stream).expect("encodes");
        feed(&mut holdings, &stream);
        assert!(matches!(
            holdings.check_samples(&senders[..1]),
            Err(SinkError::SampleMismatch {
                field: "AS_PATH",
                ..
            })
        ));
    }

    #[test]
    fn a_route_server_that_reuses_one_attribute_set_for_every_prefix_fails_the_check() {
        let (senders, prefixes, index) = table();
        let mut holdings = Holdings::new(index, 1, 2);
        let entries: Vec<_> = prefixes[..300]
            .iter()
            .map(|prefix| rustbgpd_wire::Ipv4NlriEntry {
                path_id: 0,
                prefix: *prefix,
            })
            .collect();
        let mut stream = Vec::new();
        for chunk in entries.chunks(100) {
            rustbgpd_wire::UpdateMessage::build(
                chunk,
                &[],
                &attribute_set(&senders[0], 0),
                true,
                false,
                rustbgpd_wire::Ipv4UnicastMode::Body,
            )
            .encode(&mut stream)
            .expect("encodes");
        }
        feed(&mut holdings, &stream);
        assert_eq!(holdings.held, 300);
        assert!(matches!(
            holdings.check_samples(&senders[..1]),
            Err(SinkError::SampleMismatch { .. })
        ));
    }

    #[test]
    fn truncated_and_malformed_updates_are_errors_not_panics() {
        let (_, _, index) = table();
        let mut holdings = Holdings::new(index, 3, 2);
        assert_eq!(
            holdings.apply_update(&[0, 9, 1]),
            Err(SinkError::Truncated {
                field: "withdrawn routes"
            })
        );
        assert_eq!(
            holdings.apply_update(&[0, 0, 0, 0, 33, 1]),
            Err(SinkError::PrefixLength { length: 33 })
        );
        assert_eq!(
            holdings.apply_update(&[0, 0, 0, 0, 24, 1]),
            Err(SinkError::Truncated { field: "NLRI" })
        );
        assert_eq!(
            holdings.apply_update(&[0]),
            Err(SinkError::Truncated {
                field: "withdrawn routes length"
            })
        );
        let mut header = [0xffu8; 19];
        header[16] = 0;
        header[17] = 18;
        assert_eq!(
            next_message(&header),
            Err(SinkError::MessageLength { length: 18 })
        );
        header[0] = 0;
        assert_eq!(next_message(&header), Err(SinkError::Marker));
        assert_eq!(next_message(&header[..10]), Ok(None));
    }
}
