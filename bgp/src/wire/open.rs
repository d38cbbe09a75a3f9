//! OPEN messages and the capabilities vixp negotiates (RFC 4271 section 4.2, RFC 5492).
//! Must not judge an OPEN (peer AS, hold time, identifier): the session does that.

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};
use rustbgpd_wire::{Capability, OpenMessage};

use crate::types::Family;
use crate::wire::{
    AS_TRANS, DecodeError, HEADER_LEN, MessageKind, afi_safi, family_of, put_header,
};

/// Capability codes vixp sends (IANA "Capability Codes").
mod code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ROLE: u8 = crate::role::ROLE_CAPABILITY;
}

/// The capabilities of an OPEN that vixp acts on; the rest are listed by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// 4-octet AS number capability and its ASN (RFC 6793 section 3).
    pub four_octet_as: Option<u32>,
    /// Multiprotocol capabilities for IPv4 and IPv6 unicast (RFC 4760 section 8).
    pub families: Vec<Family>,
    /// Multiprotocol capabilities for other AFI/SAFI pairs, as (AFI, SAFI).
    pub other_families: Vec<(u16, u8)>,
    /// Route refresh capability (RFC 2918 section 2).
    pub route_refresh: bool,
    /// Extended message capability (RFC 8654 section 3).
    pub extended_message: bool,
    /// BGP Role capability values (RFC 9234 section 4.1), one per capability: vixp sends at
    /// most one; every one received is kept so that disagreeing repeats can be refused. A
    /// role capability whose length is not 1 is kept as 255, which matches no role.
    pub roles: Vec<u8>,
    /// Codes of other capabilities received (not sent by vixp).
    pub other_codes: Vec<u8>,
}

impl Capabilities {
    /// The unicast families the speaker supports: its multiprotocol capabilities, or IPv4
    /// alone when it sent none (RFC 4760 section 8).
    pub fn unicast_families(&self) -> Vec<Family> {
        if self.families.is_empty() && self.other_families.is_empty() {
            vec![Family::Ipv4]
        } else {
            self.families.clone()
        }
    }
}

/// An OPEN message (RFC 4271 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The speaker's ASN: the 4-octet AS capability when present, else `two_octet_asn`.
    pub asn: u32,
    /// The 2-octet My Autonomous System field (AS_TRANS for large ASNs).
    pub two_octet_asn: u16,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_identifier: Ipv4Addr,
    /// Capabilities.
    pub capabilities: Capabilities,
}

impl Open {
    /// An OPEN for `asn`; the 2-octet field holds AS_TRANS when `asn` does not fit
    /// (RFC 6793 section 4.1), and the 4-octet AS capability is always sent.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_identifier: Ipv4Addr,
        capabilities: Capabilities,
    ) -> Open {
        let two_octet_asn = u16::try_from(asn).unwrap_or(AS_TRANS);
        let capabilities = Capabilities {
            four_octet_as: Some(asn),
            ..capabilities
        };
        Open {
            asn,
            two_octet_asn,
            hold_time,
            bgp_identifier,
            capabilities,
        }
    }
}

/// Encodes an OPEN with one Capabilities optional parameter (RFC 5492 section 4) holding
/// the multiprotocol, route refresh, extended message, 4-octet AS and BGP Role capabilities.
pub fn encode_open(open: &Open) -> Bytes {
    let mut capabilities = Vec::with_capacity(32);
    for family in &open.capabilities.families {
        let (afi, safi) = afi_safi(*family);
        capabilities.extend_from_slice(&[code::MULTIPROTOCOL, 4]);
        capabilities.extend_from_slice(&afi.to_be_bytes());
        capabilities.extend_from_slice(&[0, safi]);
    }
    for (afi, safi) in &open.capabilities.other_families {
        capabilities.extend_from_slice(&[code::MULTIPROTOCOL, 4]);
        capabilities.extend_from_slice(&afi.to_be_bytes());
        capabilities.extend_from_slice(&[0, *safi]);
    }
    if open.capabilities.route_refresh {
        capabilities.extend_from_slice(&[code::ROUTE_REFRESH, 0]);
    }
    if open.capabilities.extended_message {
        capabilities.extend_from_slice(&[code::EXTENDED_MESSAGE, 0]);
    }
    if let Some(asn) = open.capabilities.four_octet_as {
        capabilities.extend_from_slice(&[code::FOUR_OCTET_AS, 4]);
        capabilities.extend_from_slice(&asn.to_be_bytes());
    }
    for role in &open.capabilities.roles {
        capabilities.extend_from_slice(&[code::ROLE, 1, *role]);
    }
    capabilities.truncate(253);
    let parameters_len = if capabilities.is_empty() {
        0
    } else {
        capabilities.len() + 2
    };
    let length = HEADER_LEN + 10 + parameters_len;
    let mut out = BytesMut::with_capacity(length);
    put_header(&mut out, length as u16, MessageKind::Open);
    out.put_u8(4);
    out.put_u16(open.two_octet_asn);
    out.put_u16(open.hold_time);
    out.put_slice(&open.bgp_identifier.octets());
    out.put_u8(parameters_len as u8);
    if !capabilities.is_empty() {
        out.put_u8(2);
        out.put_u8(capabilities.len() as u8);
        out.put_slice(&capabilities);
    }
    out.freeze()
}

/// Decodes a whole OPEN message (header already checked by `frame_length`).
pub(crate) fn decode_open(message: &Bytes) -> Result<Open, DecodeError> {
    let mut body = message.slice(HEADER_LEN..);
    let body_len = body.len();
    let open = OpenMessage::decode(&mut body, body_len).map_err(open_error)?;
    let mut capabilities = Capabilities::default();
    for capability in &open.capabilities {
        match capability {
            Capability::FourOctetAs { asn } => capabilities.four_octet_as = Some(*asn),
            Capability::MultiProtocol { afi, safi } => {
                let (afi, safi) = (*afi as u16, *safi as u8);
                match family_of(afi, safi) {
                    Some(family) if !capabilities.families.contains(&family) => {
                        capabilities.families.push(family);
                    }
                    Some(_) => {}
                    None => capabilities.other_families.push((afi, safi)),
                }
            }
            Capability::Unknown {
                code: code::MULTIPROTOCOL,
                data,
            } => {
                if let &[afi_high, afi_low, _, safi] = data.as_ref() {
                    capabilities
                        .other_families
                        .push((u16::from_be_bytes([afi_high, afi_low]), safi));
                }
            }
            Capability::Role { role } => capabilities.roles.push(role.to_u8()),
            Capability::Unknown {
                code: code::ROLE,
                data,
            } => capabilities.roles.push(
                data.first()
                    .copied()
                    .filter(|_| data.len() == 1)
                    .unwrap_or(u8::MAX),
            ),
            Capability::RouteRefresh => capabilities.route_refresh = true,
            Capability::ExtendedMessage => capabilities.extended_message = true,
            other => capabilities.other_codes.push(other.code()),
        }
    }
    Ok(Open {
        asn: open.four_byte_as(),
        two_octet_asn: open.my_as,
        hold_time: open.hold_time,
        bgp_identifier: open.bgp_identifier,
        capabilities,
    })
}

/// Maps a codec OPEN error onto OPEN Message Error subcodes (RFC 4271 section 6.2).
fn open_error(error: rustbgpd_wire::DecodeError) -> DecodeError {
    let reason = error.to_string();
    match error {
        // RFC 4271 section 6.2: data is the largest supported version, 2 octets.
        rustbgpd_wire::DecodeError::UnsupportedVersion { .. } => DecodeError::Open {
            subcode: 1,
            data: vec![0, 4],
            reason,
        },
        rustbgpd_wire::DecodeError::UnsupportedOptionalParameter { param_type } => {
            DecodeError::Open {
                subcode: 4,
                data: vec![param_type],
                reason,
            }
        }
        _ => DecodeError::Open {
            subcode: 0,
            data: Vec::new(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DecodeContext, Message, decode_message};

    #[test]
    fn large_asn_is_sent_as_as_trans_with_the_capability() {
        let capabilities = Capabilities {
            families: vec![Family::Ipv4],
            ..Capabilities::default()
        };
        let open = Open::new(
            4_200_000_001,
            90,
            Ipv4Addr::new(198, 18, 0, 1),
            capabilities,
        );
        assert_eq!(open.two_octet_asn, AS_TRANS);
        let decoded = decode_message(encode_open(&open), &DecodeContext::INITIAL);
        assert_eq!(decoded, Ok(Message::Open(open)));
    }

    #[test]
    fn role_capability_is_code_9_length_1_both_ways() {
        let capabilities = Capabilities {
            families: vec![Family::Ipv4],
            roles: vec![crate::role::Role::RouteServer.value()],
            ..Capabilities::default()
        };
        let open = Open::new(64500, 90, Ipv4Addr::new(198, 18, 0, 1), capabilities);
        let bytes = encode_open(&open);
        // ... 4-octet AS (65, 4, AS64500), then the role: 9, 1, RS (1).
        assert!(
            bytes.ends_with(&[65, 4, 0, 0, 0xfb, 0xf4, 9, 1, 1]),
            "{bytes:02x?}"
        );
        let decoded = decode_message(bytes, &DecodeContext::INITIAL);
        assert_eq!(decoded, Ok(Message::Open(open)));
    }

    #[test]
    fn received_roles_are_kept_raw_and_repeated() {
        // An OPEN as BIRD 2.0.12 sends it with `local role rs_client` (capability 9, value 2),
        // followed by a second role capability with another value and one of length 2.
        let mut body = vec![4, 0xfb, 0xf5, 0, 9, 198, 18, 0, 11];
        let parameters = [2, 16, 9, 1, 2, 9, 1, 3, 9, 2, 2, 2, 65, 4, 0, 0, 0xfb, 0xf5];
        body.push(parameters.len() as u8);
        body.extend_from_slice(&parameters);
        let mut message = vec![0xff; 16];
        message.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        message.push(1);
        message.extend_from_slice(&body);
        let Ok(Message::Open(open)) = decode_message(Bytes::from(message), &DecodeContext::INITIAL)
        else {
            panic!("not an OPEN");
        };
        assert_eq!(open.capabilities.roles, [2, 3, 255]);
    }

    #[test]
    fn speaker_without_multiprotocol_capability_supports_ipv4_only() {
        assert_eq!(
            Capabilities::default().unicast_families(),
            vec![Family::Ipv4]
        );
        let ipv6_only = Capabilities {
            families: vec![Family::Ipv6],
            ..Capabilities::default()
        };
        assert_eq!(ipv6_only.unicast_families(), vec![Family::Ipv6]);
    }
}
