//! NOTIFICATION contents: codes, subcodes with their RFC names, the RFC 9003 shutdown
//! communication and encoding. Must not decide when a NOTIFICATION is sent (the session does).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::wire::{HEADER_LEN, MAX_MESSAGE_LEN, MessageKind, put_header};

/// Longest shutdown communication in octets (RFC 9003 section 2).
pub const SHUTDOWN_MESSAGE_MAX_LEN: usize = 255;

/// NOTIFICATION error codes (RFC 4271 section 4.5, RFC 7313, RFC 9687).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationCode {
    /// 1, Message Header Error.
    MessageHeader,
    /// 2, OPEN Message Error.
    Open,
    /// 3, UPDATE Message Error.
    Update,
    /// 4, Hold Timer Expired.
    HoldTimerExpired,
    /// 5, Finite State Machine Error.
    FiniteStateMachine,
    /// 6, Cease.
    Cease,
    /// 7, ROUTE-REFRESH Message Error (RFC 7313).
    RouteRefresh,
    /// 8, Send Hold Timer Expired (RFC 9687).
    SendHoldTimerExpired,
    /// Any other code.
    Other(u8),
}

impl NotificationCode {
    /// The code for a code octet.
    pub fn from_u8(code: u8) -> NotificationCode {
        match code {
            1 => NotificationCode::MessageHeader,
            2 => NotificationCode::Open,
            3 => NotificationCode::Update,
            4 => NotificationCode::HoldTimerExpired,
            5 => NotificationCode::FiniteStateMachine,
            6 => NotificationCode::Cease,
            7 => NotificationCode::RouteRefresh,
            8 => NotificationCode::SendHoldTimerExpired,
            other => NotificationCode::Other(other),
        }
    }

    /// The RFC name of the code.
    pub fn name(self) -> &'static str {
        match self {
            NotificationCode::MessageHeader => "Message Header Error",
            NotificationCode::Open => "OPEN Message Error",
            NotificationCode::Update => "UPDATE Message Error",
            NotificationCode::HoldTimerExpired => "Hold Timer Expired",
            NotificationCode::FiniteStateMachine => "Finite State Machine Error",
            NotificationCode::Cease => "Cease",
            NotificationCode::RouteRefresh => "ROUTE-REFRESH Message Error",
            NotificationCode::SendHoldTimerExpired => "Send Hold Timer Expired",
            NotificationCode::Other(_) => "Unknown Error Code",
        }
    }
}

/// Cease subcodes (RFC 4486 section 4, RFC 8538 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeaseSubcode {
    /// 1, Maximum Number of Prefixes Reached.
    MaximumPrefixesReached,
    /// 2, Administrative Shutdown (carries an RFC 9003 message).
    AdministrativeShutdown,
    /// 3, Peer De-configured.
    PeerDeconfigured,
    /// 4, Administrative Reset (carries an RFC 9003 message).
    AdministrativeReset,
    /// 5, Connection Rejected.
    ConnectionRejected,
    /// 6, Other Configuration Change.
    OtherConfigurationChange,
    /// 7, Connection Collision Resolution (RFC 4271 section 6.8).
    ConnectionCollisionResolution,
    /// 8, Out of Resources.
    OutOfResources,
    /// 9, Hard Reset (RFC 8538).
    HardReset,
}

impl CeaseSubcode {
    /// The subcode octet.
    pub fn code(self) -> u8 {
        match self {
            CeaseSubcode::MaximumPrefixesReached => 1,
            CeaseSubcode::AdministrativeShutdown => 2,
            CeaseSubcode::PeerDeconfigured => 3,
            CeaseSubcode::AdministrativeReset => 4,
            CeaseSubcode::ConnectionRejected => 5,
            CeaseSubcode::OtherConfigurationChange => 6,
            CeaseSubcode::ConnectionCollisionResolution => 7,
            CeaseSubcode::OutOfResources => 8,
            CeaseSubcode::HardReset => 9,
        }
    }

    /// Whether the data field carries a shutdown communication (RFC 9003 section 2).
    pub fn carries_message(self) -> bool {
        matches!(
            self,
            CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset
        )
    }
}

/// A NOTIFICATION message (RFC 4271 section 4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Notification {
    /// Error code octet.
    pub code: u8,
    /// Error subcode octet.
    pub subcode: u8,
    /// Data field.
    pub data: Vec<u8>,
}

impl Notification {
    /// A NOTIFICATION with the given code, subcode and data.
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// A Cease; for Administrative Shutdown and Reset a non-empty `message` is carried as
    /// the RFC 9003 shutdown communication, cut at a character boundary to 255 octets.
    pub fn cease(subcode: CeaseSubcode, message: &str) -> Notification {
        let mut data = Vec::new();
        if subcode.carries_message() && !message.is_empty() {
            let mut end = message.len().min(SHUTDOWN_MESSAGE_MAX_LEN);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            data.push(end as u8);
            data.extend_from_slice(&message.as_bytes()[..end]);
        }
        Notification::new(6, subcode.code(), data)
    }

    /// The error code.
    pub fn error_code(&self) -> NotificationCode {
        NotificationCode::from_u8(self.code)
    }

    /// The RFC 9003 shutdown communication of a Cease / Administrative Shutdown or Reset,
    /// if the data holds a well-formed one (length octet then UTF-8).
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != 6 || !matches!(self.subcode, 2 | 4) {
            return None;
        }
        let (&length, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(length))?;
        std::str::from_utf8(text).ok().map(str::to_owned)
    }

    /// The RFC name of the subcode, if it has one.
    pub fn subcode_name(&self) -> Option<&'static str> {
        let name = match (self.code, self.subcode) {
            (1, 1) => "Connection Not Synchronized",
            (1, 2) => "Bad Message Length",
            (1, 3) => "Bad Message Type",
            (2, 1) => "Unsupported Version Number",
            (2, 2) => "Bad Peer AS",
            (2, 3) => "Bad BGP Identifier",
            (2, 4) => "Unsupported Optional Parameter",
            (2, 6) => "Unacceptable Hold Time",
            (2, 7) => "Unsupported Capability",
            (2, 11) => "Role Mismatch",
            (3, 1) => "Malformed Attribute List",
            (3, 2) => "Unrecognized Well-known Attribute",
            (3, 3) => "Missing Well-known Attribute",
            (3, 4) => "Attribute Flags Error",
            (3, 5) => "Attribute Length Error",
            (3, 6) => "Invalid ORIGIN Attribute",
            (3, 8) => "Invalid NEXT_HOP Attribute",
            (3, 9) => "Optional Attribute Error",
            (3, 10) => "Invalid Network Field",
            (3, 11) => "Malformed AS_PATH",
            (5, 1) => "Receive Unexpected Message in OpenSent State",
            (5, 2) => "Receive Unexpected Message in OpenConfirm State",
            (5, 3) => "Receive Unexpected Message in Established State",
            (6, 1) => "Maximum Number of Prefixes Reached",
            (6, 2) => "Administrative Shutdown",
            (6, 3) => "Peer De-configured",
            (6, 4) => "Administrative Reset",
            (6, 5) => "Connection Rejected",
            (6, 6) => "Other Configuration Change",
            (6, 7) => "Connection Collision Resolution",
            (6, 8) => "Out of Resources",
            (6, 9) => "Hard Reset",
            (6, 10) => "BFD Down",
            (7, 1) => "Invalid Message Length",
            _ => return None,
        };
        Some(name)
    }

    /// Code and subcode by their RFC names, e.g. "Cease / Administrative Shutdown".
    pub fn describe(&self) -> String {
        let code = self.error_code().name();
        match (self.subcode_name(), self.subcode) {
            (Some(subcode), _) => format!("{code} / {subcode}"),
            (None, 0) => code.to_owned(),
            (None, other) => format!("{code} / subcode {other}"),
        }
    }

    /// The message on the wire; data beyond `max_message_len` is cut off.
    pub fn encode(&self, max_message_len: u16) -> Bytes {
        let room = usize::from(max_message_len.max(MAX_MESSAGE_LEN)) - HEADER_LEN - 2;
        let data = &self.data[..self.data.len().min(room)];
        let length = HEADER_LEN + 2 + data.len();
        let mut out = BytesMut::with_capacity(length);
        put_header(&mut out, length as u16, MessageKind::Notification);
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(data);
        out.freeze()
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}/{})", self.describe(), self.code, self.subcode)?;
        if let Some(message) = self.shutdown_message() {
            write!(f, ": {message:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_uses_rfc_names() {
        let notification = Notification::cease(CeaseSubcode::AdministrativeShutdown, "");
        assert_eq!(notification.describe(), "Cease / Administrative Shutdown");
        assert_eq!(
            Notification::new(4, 0, Vec::new()).describe(),
            "Hold Timer Expired"
        );
        assert_eq!(
            Notification::new(3, 99, Vec::new()).describe(),
            "UPDATE Message Error / subcode 99"
        );
        assert_eq!(
            Notification::new(5, 1, Vec::new()).describe(),
            "Finite State Machine Error / Receive Unexpected Message in OpenSent State"
        );
    }

    #[test]
    fn shutdown_message_is_length_prefixed_and_cut_at_255_octets() {
        let notification = Notification::cease(CeaseSubcode::AdministrativeReset, "maintenance");
        assert_eq!(notification.data[0], 11);
        assert_eq!(
            notification.shutdown_message().as_deref(),
            Some("maintenance")
        );
        assert_eq!(
            notification.to_string(),
            "Cease / Administrative Reset (6/4): \"maintenance\""
        );
        let long = "é".repeat(200);
        let notification = Notification::cease(CeaseSubcode::AdministrativeShutdown, &long);
        assert_eq!(notification.data[0], 254);
        assert_eq!(
            notification.shutdown_message().map(|m| m.chars().count()),
            Some(127)
        );
        let other = Notification::cease(CeaseSubcode::PeerDeconfigured, "ignored");
        assert!(other.data.is_empty());
    }

    #[test]
    fn encode_cuts_data_to_the_message_size() {
        let notification = Notification::new(3, 1, vec![7; 5000]);
        assert_eq!(notification.encode(4096).len(), 4096);
        assert_eq!(notification.encode(65535).len(), 19 + 2 + 5000);
    }
}
