//! The codec boundary: turns complete BGP messages into project types and project types into
//! bytes. The only module that names `rustbgpd_wire`; it must not keep session state, read
//! clocks or decide what a message means for the FSM.
//!
//! Decoding takes one framed message ([`frame_length`] finds the frame) and a
//! [`DecodeContext`] with what the session negotiated. UPDATE decoding applies RFC 7606
//! revised error handling; only session-reset-class faults come back as a [`DecodeError`],
//! which maps onto the NOTIFICATION to send ([`DecodeError::notification`]).

mod encode;
mod notification;
mod open;
mod update;

#[cfg(test)]
mod vectors;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::types::Family;

pub use encode::{
    EncodeContext, announcement_fits, encode_announcements, encode_end_of_rib, encode_withdrawals,
};
pub use notification::{CeaseSubcode, Notification, NotificationCode, SHUTDOWN_MESSAGE_MAX_LEN};
pub use open::{Capabilities, Open, encode_open};
pub use update::{Announcement, Update};

/// Length of the fixed BGP header: marker, length, type (RFC 4271 section 4.1).
pub const HEADER_LEN: usize = 19;
/// Largest message before Extended Messages are negotiated (RFC 4271 section 4.1).
pub const MAX_MESSAGE_LEN: u16 = 4096;
/// Largest message once Extended Messages are negotiated (RFC 8654 section 4).
pub const EXTENDED_MAX_MESSAGE_LEN: u16 = 65535;
/// AS_TRANS, sent in 2-octet fields for ASNs that do not fit (RFC 6793 section 9).
pub const AS_TRANS: u16 = 23456;

const MARKER: [u8; 16] = [0xff; 16];

/// What the session negotiated that changes how an incoming message is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH carries 4-octet ASNs.
    pub four_octet_as: bool,
    /// Largest acceptable message: 4096, or 65535 with Extended Messages (RFC 8654).
    pub max_message_len: u16,
    /// The peer is in another AS (selects the RFC 7606 external-neighbor dispositions).
    pub external: bool,
}

impl DecodeContext {
    /// The context before OPENs are exchanged: 2-octet AS, 4096-byte messages, external.
    pub const INITIAL: DecodeContext = DecodeContext {
        four_octet_as: false,
        max_message_len: MAX_MESSAGE_LEN,
        external: true,
    };
}

/// The five BGP message types (RFC 4271 section 4.1, RFC 2918 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// Type 1.
    Open,
    /// Type 2.
    Update,
    /// Type 3.
    Notification,
    /// Type 4.
    Keepalive,
    /// Type 5.
    RouteRefresh,
}

impl MessageKind {
    /// Every kind, in type-code order.
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Open,
        MessageKind::Update,
        MessageKind::Notification,
        MessageKind::Keepalive,
        MessageKind::RouteRefresh,
    ];

    /// The type code on the wire.
    pub fn type_code(self) -> u8 {
        match self {
            MessageKind::Open => 1,
            MessageKind::Update => 2,
            MessageKind::Notification => 3,
            MessageKind::Keepalive => 4,
            MessageKind::RouteRefresh => 5,
        }
    }

    /// The kind for a type code, if it is one of the five.
    pub fn from_type_code(code: u8) -> Option<MessageKind> {
        MessageKind::ALL
            .into_iter()
            .find(|kind| kind.type_code() == code)
    }

    /// Lower-case label for metrics and logs (`open`, `update`, ...).
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::Open => "open",
            MessageKind::Update => "update",
            MessageKind::Notification => "notification",
            MessageKind::Keepalive => "keepalive",
            MessageKind::RouteRefresh => "route_refresh",
        }
    }

    /// Smallest valid total length of this message type (RFC 4271 section 4, RFC 2918 section 3).
    fn min_len(self) -> u16 {
        match self {
            MessageKind::Open => 29,
            MessageKind::Update => 23,
            MessageKind::Notification => 21,
            MessageKind::Keepalive => 19,
            MessageKind::RouteRefresh => 23,
        }
    }
}

/// A ROUTE-REFRESH request (RFC 2918 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    /// Address family identifier as received.
    pub afi: u16,
    /// Subsequent address family identifier as received.
    pub safi: u8,
    /// The reserved octet, the message subtype of RFC 7313 (0 is a plain request).
    pub subtype: u8,
}

impl RouteRefresh {
    /// A plain request for one of vixp's families.
    pub fn new(family: Family) -> RouteRefresh {
        let (afi, safi) = afi_safi(family);
        RouteRefresh {
            afi,
            safi,
            subtype: 0,
        }
    }

    /// The family asked for, if it is IPv4 or IPv6 unicast.
    pub fn family(&self) -> Option<Family> {
        family_of(self.afi, self.safi)
    }
}

/// One decoded BGP message in project types.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// OPEN (RFC 4271 section 4.2).
    Open(Open),
    /// UPDATE after RFC 7606 handling (RFC 4271 section 4.3).
    Update(Update),
    /// NOTIFICATION (RFC 4271 section 4.5).
    Notification(Notification),
    /// KEEPALIVE (RFC 4271 section 4.4).
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918 section 3).
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// Which of the five types this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Open(_) => MessageKind::Open,
            Message::Update(_) => MessageKind::Update,
            Message::Notification(_) => MessageKind::Notification,
            Message::Keepalive => MessageKind::Keepalive,
            Message::RouteRefresh(_) => MessageKind::RouteRefresh,
        }
    }
}

/// A message that cannot be accepted; each variant maps onto one NOTIFICATION.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The marker is not all ones: Message Header Error / Connection Not Synchronized
    /// (RFC 4271 section 6.1).
    #[error("header marker is not all ones")]
    ConnectionNotSynchronized,
    /// The length field is out of range for the type or the negotiated maximum: Message
    /// Header Error / Bad Message Length (RFC 4271 section 6.1, RFC 8654 section 5).
    #[error("bad message length {length} for {kind:?} (maximum {max_message_len})")]
    BadMessageLength {
        /// The length field as received.
        length: u16,
        /// The type the header claimed, when it was a known one.
        kind: Option<MessageKind>,
        /// The maximum in force.
        max_message_len: u16,
    },
    /// Unknown type code: Message Header Error / Bad Message Type (RFC 4271 section 6.1).
    #[error("unknown message type {type_code}")]
    BadMessageType {
        /// The type code as received.
        type_code: u8,
    },
    /// OPEN Message Error (RFC 4271 section 6.2) with the given subcode.
    #[error("OPEN message error {subcode}: {reason}")]
    Open {
        /// OPEN Message Error subcode.
        subcode: u8,
        /// NOTIFICATION data.
        data: Vec<u8>,
        /// What the decoder found.
        reason: String,
    },
    /// An UPDATE fault of the session-reset class (RFC 7606 sections 3 (j), 5.3, 7.11):
    /// UPDATE Message Error with the given subcode.
    #[error("UPDATE message error {subcode}: {reason}")]
    Update {
        /// UPDATE Message Error subcode.
        subcode: u8,
        /// NOTIFICATION data.
        data: Vec<u8>,
        /// What the decoder found.
        reason: String,
    },
    /// A NOTIFICATION too short to carry code and subcode (RFC 4271 section 6.1).
    #[error("NOTIFICATION of {length} octets is too short")]
    ShortNotification {
        /// Total message length.
        length: u16,
    },
    /// A malformed ROUTE-REFRESH: ROUTE-REFRESH Message Error / Invalid Message Length
    /// (RFC 7313 section 5).
    #[error("malformed ROUTE-REFRESH: {reason}")]
    RouteRefresh {
        /// What the decoder found.
        reason: String,
    },
}

impl DecodeError {
    /// The NOTIFICATION this error calls for.
    pub fn notification(&self) -> Notification {
        match self {
            DecodeError::ConnectionNotSynchronized => Notification::new(1, 1, Vec::new()),
            DecodeError::BadMessageLength { length, .. } => {
                Notification::new(1, 2, length.to_be_bytes().to_vec())
            }
            DecodeError::BadMessageType { type_code } => Notification::new(1, 3, vec![*type_code]),
            DecodeError::Open { subcode, data, .. } => Notification::new(2, *subcode, data.clone()),
            DecodeError::Update { subcode, data, .. } => {
                Notification::new(3, *subcode, data.clone())
            }
            DecodeError::ShortNotification { length } => {
                Notification::new(1, 2, length.to_be_bytes().to_vec())
            }
            DecodeError::RouteRefresh { .. } => Notification::new(7, 1, Vec::new()),
        }
    }
}

/// Finds the first complete message in `buffer` (RFC 4271 section 4.1).
///
/// Returns `Ok(None)` while fewer bytes than the header or the announced length are
/// available, `Ok(Some(length))` when `buffer[..length]` is one whole message, and an error
/// when the header is unacceptable: bad marker, length outside 19..=`max_message_len` or
/// below the minimum of its type (KEEPALIVE exactly 19; OPEN and KEEPALIVE never above 4096,
/// RFC 8654 section 3), or an unknown type.
pub fn frame_length(buffer: &[u8], max_message_len: u16) -> Result<Option<usize>, DecodeError> {
    let Some(header) = buffer.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if header[..16] != MARKER {
        return Err(DecodeError::ConnectionNotSynchronized);
    }
    let length = u16::from_be_bytes([header[16], header[17]]);
    let type_code = header[18];
    let kind = MessageKind::from_type_code(type_code);
    let too_short = kind.is_some_and(|kind| length < kind.min_len());
    let too_long = match kind {
        Some(MessageKind::Keepalive) => length != 19,
        Some(MessageKind::Open) => length > MAX_MESSAGE_LEN.min(max_message_len),
        _ => length > max_message_len,
    };
    if usize::from(length) < HEADER_LEN || too_short || too_long {
        return Err(DecodeError::BadMessageLength {
            length,
            kind,
            max_message_len,
        });
    }
    if kind.is_none() {
        return Err(DecodeError::BadMessageType { type_code });
    }
    if buffer.len() < usize::from(length) {
        return Ok(None);
    }
    Ok(Some(usize::from(length)))
}

/// Decodes one complete message, as delimited by [`frame_length`].
///
/// The header is checked again, so a message taken from elsewhere is safe to pass.
pub fn decode_message(message: Bytes, cx: &DecodeContext) -> Result<Message, DecodeError> {
    let length = match frame_length(&message, cx.max_message_len)? {
        Some(length) if length == message.len() => length,
        _ => {
            let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
            return Err(DecodeError::BadMessageLength {
                length,
                kind: message
                    .get(18)
                    .copied()
                    .and_then(MessageKind::from_type_code),
                max_message_len: cx.max_message_len,
            });
        }
    };
    let body = message.slice(HEADER_LEN..length);
    match MessageKind::from_type_code(message[18]) {
        Some(MessageKind::Keepalive) => Ok(Message::Keepalive),
        Some(MessageKind::Open) => open::decode_open(&message).map(Message::Open),
        Some(MessageKind::Update) => update::decode_update(&message, cx).map(Message::Update),
        Some(MessageKind::Notification) => match body.get(..2) {
            Some(&[code, subcode]) => Ok(Message::Notification(Notification::new(
                code,
                subcode,
                body[2..].to_vec(),
            ))),
            _ => Err(DecodeError::ShortNotification {
                length: length as u16,
            }),
        },
        Some(MessageKind::RouteRefresh) => match body.get(..4) {
            Some(&[afi_high, afi_low, subtype, safi]) => Ok(Message::RouteRefresh(RouteRefresh {
                afi: u16::from_be_bytes([afi_high, afi_low]),
                safi,
                subtype,
            })),
            _ => Err(DecodeError::RouteRefresh {
                reason: format!("body of {} octets", body.len()),
            }),
        },
        None => Err(DecodeError::BadMessageType {
            type_code: message[18],
        }),
    }
}

/// A KEEPALIVE: the bare header (RFC 4271 section 4.4).
pub fn encode_keepalive() -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN);
    put_header(&mut out, HEADER_LEN as u16, MessageKind::Keepalive);
    out.freeze()
}

/// A ROUTE-REFRESH for `family` (RFC 2918 section 3).
pub fn encode_route_refresh(family: Family) -> Bytes {
    let (afi, safi) = afi_safi(family);
    let mut out = BytesMut::with_capacity(HEADER_LEN + 4);
    put_header(&mut out, (HEADER_LEN + 4) as u16, MessageKind::RouteRefresh);
    out.put_u16(afi);
    out.put_u8(0);
    out.put_u8(safi);
    out.freeze()
}

/// Writes a header with the given total length.
pub(crate) fn put_header(out: &mut impl BufMut, length: u16, kind: MessageKind) {
    out.put_slice(&MARKER);
    out.put_u16(length);
    out.put_u8(kind.type_code());
}

/// AFI and SAFI of one of vixp's families (RFC 4760 section 7).
pub(crate) fn afi_safi(family: Family) -> (u16, u8) {
    match family {
        Family::Ipv4 => (1, 1),
        Family::Ipv6 => (2, 1),
    }
}

/// The family for an AFI/SAFI pair, if it is IPv4 or IPv6 unicast.
pub(crate) fn family_of(afi: u16, safi: u8) -> Option<Family> {
    match (afi, safi) {
        (1, 1) => Some(Family::Ipv4),
        (2, 1) => Some(Family::Ipv6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: u16, type_code: u8) -> Vec<u8> {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.push(type_code);
        bytes
    }

    #[test]
    fn frame_waits_for_the_whole_message() {
        let mut bytes = header(23, 2);
        assert_eq!(frame_length(&bytes[..10], 4096), Ok(None));
        assert_eq!(frame_length(&bytes, 4096), Ok(None));
        bytes.extend_from_slice(&[0, 0, 0, 0, 9]);
        assert_eq!(frame_length(&bytes, 4096), Ok(Some(23)));
    }

    #[test]
    fn frame_rejects_bad_marker_length_and_type() {
        let mut bytes = header(19, 4);
        bytes[3] = 0;
        assert_eq!(
            frame_length(&bytes, 4096),
            Err(DecodeError::ConnectionNotSynchronized)
        );
        let error = frame_length(&header(18, 4), 4096).err();
        assert_eq!(error.map(|e| e.notification().code), Some(1));
        let error = frame_length(&header(20, 4), 4096).err();
        assert_eq!(error.map(|e| e.notification().subcode), Some(2));
        let error = frame_length(&header(4097, 2), 4096).err();
        assert_eq!(error.map(|e| e.notification().data), Some(vec![0x10, 0x01]));
        assert_eq!(frame_length(&header(4097, 2), 65535), Ok(None));
        assert!(frame_length(&header(4097, 1), 65535).is_err());
        assert_eq!(
            frame_length(&header(19, 9), 4096),
            Err(DecodeError::BadMessageType { type_code: 9 })
        );
    }

    #[test]
    fn keepalive_and_route_refresh_round_trip() {
        let keepalive = encode_keepalive();
        assert_eq!(keepalive.len(), 19);
        assert_eq!(
            decode_message(keepalive, &DecodeContext::INITIAL),
            Ok(Message::Keepalive)
        );
        let refresh = encode_route_refresh(Family::Ipv6);
        let decoded = decode_message(refresh, &DecodeContext::INITIAL);
        assert_eq!(
            decoded.ok(),
            Some(Message::RouteRefresh(RouteRefresh::new(Family::Ipv6)))
        );
    }
}
