//! Reading one scalar as one typed value (ASN, name, prefix, address, key, endpoint). Owns the
//! rules of a single value; must not look at other fields (uniqueness and LAN membership are
//! `convert`'s).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::Engine as _;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::raw::Scalar;
use crate::error::ProblemKind;
use crate::model::{Asn, Endpoint, PublicKey};

/// Longest name of a member or route server, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 32;
/// Longest exchange name, in characters.
pub(crate) const MAX_EXCHANGE_NAME_CHARS: usize = 64;
/// Longest IPv4 LAN prefix: a /30 holds two hosts.
pub(crate) const LONGEST_IPV4_LAN: u8 = 30;
/// Longest IPv6 LAN prefix: a /126 holds three hosts besides the subnet-router anycast address.
pub(crate) const LONGEST_IPV6_LAN: u8 = 126;

fn wrong(expected: &'static str, found: &Scalar) -> ProblemKind {
    ProblemKind::WrongType {
        expected,
        found: found.to_string(),
    }
}

/// Non-empty text.
pub(crate) fn text<'a>(scalar: &'a Scalar, expected: &'static str) -> Result<&'a str, ProblemKind> {
    match scalar {
        Scalar::Text(text) if !text.trim().is_empty() => Ok(text),
        other => Err(wrong(expected, other)),
    }
}

/// An integer in `range`; `valid` describes the range in words.
pub(crate) fn integer(
    scalar: &Scalar,
    range: std::ops::RangeInclusive<i128>,
    expected: &'static str,
    valid: &'static str,
) -> Result<i128, ProblemKind> {
    match scalar {
        Scalar::Integer(value) if range.contains(value) => Ok(*value),
        Scalar::Integer(value) => Err(ProblemKind::OutOfRange {
            value: value.to_string(),
            valid,
        }),
        other => Err(wrong(expected, other)),
    }
}

/// `true` or `false`.
pub(crate) fn boolean(scalar: &Scalar) -> Result<bool, ProblemKind> {
    match scalar {
        Scalar::Bool(value) => Ok(*value),
        other => Err(wrong("true or false", other)),
    }
}

/// A 4-octet ASN usable by a BGP speaker.
pub(crate) fn asn(scalar: &Scalar) -> Result<Asn, ProblemKind> {
    let value = integer(
        scalar,
        0..=i128::from(u32::MAX),
        "an AS number like 64501 (without \"AS\")",
        "1-4294967294 (RFC 6793 4-octet ASNs)",
    )?;
    let asn = u32::try_from(value).map_err(|_| ProblemKind::OutOfRange {
        value: value.to_string(),
        valid: "1-4294967294 (RFC 6793 4-octet ASNs)",
    })?;
    let reason = match asn {
        0 => Some("RFC 7607: AS 0 must not be used by a BGP speaker"),
        23456 => Some("AS_TRANS, RFC 6793 section 9"),
        65535 => Some("last 2-octet ASN, RFC 7300"),
        u32::MAX => Some("last 4-octet ASN, RFC 7300"),
        _ => None,
    };
    match reason {
        Some(reason) => Err(ProblemKind::ReservedAsn { asn, reason }),
        None => Ok(Asn(asn)),
    }
}

/// A member or route server name: 1-32 characters of `[a-z0-9_-]`.
pub(crate) fn name(scalar: &Scalar) -> Result<String, ProblemKind> {
    let Scalar::Text(value) = scalar else {
        return Err(wrong("a name like alpha", scalar));
    };
    let valid = !value.is_empty()
        && value.chars().count() <= MAX_NAME_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(value.clone())
    } else {
        Err(ProblemKind::InvalidName {
            value: value.clone(),
        })
    }
}

/// Free text of at most `max_chars` characters, without control characters.
pub(crate) fn bounded_text(
    scalar: &Scalar,
    max_chars: usize,
    valid: &'static str,
) -> Result<String, ProblemKind> {
    let value = text(scalar, "text")?;
    let length = value.chars().count();
    if length > max_chars || value.chars().any(char::is_control) {
        return Err(ProblemKind::BadLength { length, valid });
    }
    Ok(value.to_owned())
}

/// An IPv4 LAN prefix with host bits zero and room for hosts.
pub(crate) fn ipv4_prefix(scalar: &Scalar) -> Result<Ipv4Net, ProblemKind> {
    const EXPECTED: &str = "an IPv4 prefix like 198.18.0.0/24";
    let value = text(scalar, EXPECTED)?;
    let prefix: Ipv4Net = value.parse().map_err(|_| wrong(EXPECTED, scalar))?;
    if prefix.trunc() != prefix {
        return Err(ProblemKind::HostBitsSet {
            prefix: value.to_owned(),
            network: prefix.trunc().to_string(),
        });
    }
    if prefix.prefix_len() > LONGEST_IPV4_LAN {
        return Err(ProblemKind::PrefixTooLong {
            prefix: value.to_owned(),
            longest: LONGEST_IPV4_LAN,
        });
    }
    Ok(prefix)
}

/// An IPv6 LAN prefix with host bits zero and room for hosts.
pub(crate) fn ipv6_prefix(scalar: &Scalar) -> Result<Ipv6Net, ProblemKind> {
    const EXPECTED: &str = "an IPv6 prefix like fd00:198:18::/64";
    let value = text(scalar, EXPECTED)?;
    let prefix: Ipv6Net = value.parse().map_err(|_| wrong(EXPECTED, scalar))?;
    if prefix.trunc() != prefix {
        return Err(ProblemKind::HostBitsSet {
            prefix: value.to_owned(),
            network: prefix.trunc().to_string(),
        });
    }
    if prefix.prefix_len() > LONGEST_IPV6_LAN {
        return Err(ProblemKind::PrefixTooLong {
            prefix: value.to_owned(),
            longest: LONGEST_IPV6_LAN,
        });
    }
    Ok(prefix)
}

/// A route prefix of either family and any length, host bits zero (policy lists).
pub(crate) fn route_prefix(scalar: &Scalar) -> Result<IpNet, ProblemKind> {
    const EXPECTED: &str = "a prefix like 198.18.0.0/15 or fd00::/8";
    let value = text(scalar, EXPECTED)?;
    let prefix: IpNet = value.parse().map_err(|_| wrong(EXPECTED, scalar))?;
    if prefix.trunc() != prefix {
        return Err(ProblemKind::HostBitsSet {
            prefix: value.to_owned(),
            network: prefix.trunc().to_string(),
        });
    }
    Ok(prefix)
}

/// An IPv4 address.
pub(crate) fn ipv4_address(scalar: &Scalar) -> Result<Ipv4Addr, ProblemKind> {
    const EXPECTED: &str = "an IPv4 address like 198.18.0.11";
    text(scalar, EXPECTED)?
        .parse()
        .map_err(|_| wrong(EXPECTED, scalar))
}

/// An IPv6 address.
pub(crate) fn ipv6_address(scalar: &Scalar) -> Result<Ipv6Addr, ProblemKind> {
    const EXPECTED: &str = "an IPv6 address like fd00:198:18::11";
    text(scalar, EXPECTED)?
        .parse()
        .map_err(|_| wrong(EXPECTED, scalar))
}

/// An IPv4 or IPv6 address.
pub(crate) fn ip_address(scalar: &Scalar) -> Result<IpAddr, ProblemKind> {
    const EXPECTED: &str = "an IP address like 198.18.0.1 or fd00:198:18::1";
    text(scalar, EXPECTED)?
        .parse()
        .map_err(|_| wrong(EXPECTED, scalar))
}

/// A socket address with a non-zero port, like `127.0.0.1:9179` or `[::1]:9179`.
pub(crate) fn socket_address(scalar: &Scalar) -> Result<SocketAddr, ProblemKind> {
    const EXPECTED: &str = "an address and port like 127.0.0.1:9179 or [::1]:9179";
    let address: SocketAddr = text(scalar, EXPECTED)?
        .parse()
        .map_err(|_| wrong(EXPECTED, scalar))?;
    if address.port() == 0 {
        return Err(wrong(EXPECTED, scalar));
    }
    Ok(address)
}

/// A WireGuard public key: standard base64 of exactly 32 bytes.
pub(crate) fn public_key(scalar: &Scalar) -> Result<PublicKey, ProblemKind> {
    let value = text(scalar, "a WireGuard public key (44 characters of base64)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|error| ProblemKind::InvalidKey {
            reason: format!("{value:?} is not valid base64 ({})", base64_problem(&error)),
        })?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ProblemKind::InvalidKey {
            reason: format!("{value:?} decodes to {} bytes, not 32", bytes.len()),
        })?;
    Ok(PublicKey(key))
}

/// A base64 decoding error in words.
fn base64_problem(error: &base64::DecodeError) -> String {
    match error {
        base64::DecodeError::InvalidByte(offset, byte) => {
            format!(
                "character {:?} at position {}",
                char::from(*byte),
                offset + 1
            )
        }
        base64::DecodeError::InvalidLength(length) => {
            format!("{length} characters is not a whole number of base64 groups")
        }
        base64::DecodeError::InvalidLastSymbol(offset, byte) => {
            format!(
                "last character {:?} at position {}",
                char::from(*byte),
                offset + 1
            )
        }
        base64::DecodeError::InvalidPadding => "wrong padding".to_owned(),
    }
}

/// An underlay endpoint: `IP:port`, `[IPv6]:port` or `host.name:port`, port not 0.
pub(crate) fn endpoint(scalar: &Scalar) -> Result<Endpoint, ProblemKind> {
    let value = text(scalar, "an endpoint like 198.18.1.11:51820")?;
    let invalid = || ProblemKind::InvalidEndpoint {
        value: value.to_owned(),
    };
    if let Ok(address) = value.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(invalid());
        }
        return Ok(Endpoint::Address(address));
    }
    let (host, port) = value.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    if port == 0 || !is_host_name(host) {
        return Err(invalid());
    }
    Ok(Endpoint::Name {
        host: host.to_owned(),
        port,
    })
}

/// A DNS host name (RFC 1123 section 2.1) whose last label is not all digits, so that a
/// mistyped IPv4 address such as `198.18.1.300` is not taken for a name (RFC 3696 section 2).
pub(crate) fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels_valid = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let last_label_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|label| label.chars().all(|c| c.is_ascii_digit()));
    labels_valid && !last_label_numeric
}

/// An IRR AS-SET name (RFC 2622 section 5.1, hierarchical names allowed) or a single `ASnnn`,
/// optionally prefixed by a source as bgpq4 accepts (`RIPE::AS-EXAMPLE`).
pub(crate) fn as_set(scalar: &Scalar) -> Result<String, ProblemKind> {
    let value = text(scalar, "an AS-SET name like AS-EXAMPLE")?;
    let invalid = || ProblemKind::InvalidAsSet {
        value: value.to_owned(),
    };
    let name = match value.split_once("::") {
        Some((source, name)) if is_irr_source(source) => name,
        Some(_) => return Err(invalid()),
        None => value,
    };
    let component_valid = |component: &str| {
        let upper = component.to_ascii_uppercase();
        let as_number = upper
            .strip_prefix("AS")
            .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()));
        let set_name = upper.strip_prefix("AS-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        as_number || set_name
    };
    if name.len() <= 255 && name.split(':').all(component_valid) {
        Ok(value.to_owned())
    } else {
        Err(invalid())
    }
}

/// An IRR source name such as `RIPE` or `RADB`.
pub(crate) fn irr_source(scalar: &Scalar) -> Result<String, ProblemKind> {
    let value = text(scalar, "an IRR source name like RIPE")?;
    if is_irr_source(value) {
        Ok(value.to_owned())
    } else {
        Err(ProblemKind::InvalidIrrSource {
            value: value.to_owned(),
        })
    }
}

fn is_irr_source(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 32
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_scalar(value: &str) -> Scalar {
        Scalar::Text(value.to_owned())
    }

    #[test]
    fn asn_accepts_2_and_4_octet_numbers() {
        assert_eq!(asn(&Scalar::Integer(64501)), Ok(Asn(64501)));
        assert_eq!(asn(&Scalar::Integer(4_200_000_000)), Ok(Asn(4_200_000_000)));
        assert_eq!(asn(&Scalar::Integer(1)), Ok(Asn(1)));
    }

    #[test]
    fn asn_refuses_reserved_numbers() {
        for reserved in [0, 23456, 65535, 4_294_967_295] {
            assert!(
                matches!(
                    asn(&Scalar::Integer(reserved)),
                    Err(ProblemKind::ReservedAsn { .. })
                ),
                "{reserved} must be refused"
            );
        }
    }

    #[test]
    fn asn_refuses_out_of_range_and_text() {
        assert!(matches!(
            asn(&Scalar::Integer(4_294_967_296)),
            Err(ProblemKind::OutOfRange { .. })
        ));
        assert!(matches!(
            asn(&Scalar::Integer(-5)),
            Err(ProblemKind::OutOfRange { .. })
        ));
        assert!(matches!(
            asn(&text_scalar("AS64501")),
            Err(ProblemKind::WrongType { .. })
        ));
    }

    #[test]
    fn names_are_lowercase_digits_dash_underscore() {
        assert_eq!(name(&text_scalar("rs1")), Ok("rs1".to_owned()));
        assert_eq!(name(&text_scalar("a_b-c")), Ok("a_b-c".to_owned()));
        for bad in ["", "Alpha", "a b", "alpha.net", &"x".repeat(33)] {
            assert!(name(&text_scalar(bad)).is_err(), "{bad:?} must be refused");
        }
        assert!(name(&text_scalar(&"x".repeat(32))).is_ok());
        assert!(matches!(
            name(&Scalar::Integer(1)),
            Err(ProblemKind::WrongType { .. })
        ));
    }

    #[test]
    fn prefixes_need_zero_host_bits() {
        assert!(ipv4_prefix(&text_scalar("198.18.0.0/24")).is_ok());
        assert_eq!(
            ipv4_prefix(&text_scalar("198.18.0.1/24")),
            Err(ProblemKind::HostBitsSet {
                prefix: "198.18.0.1/24".to_owned(),
                network: "198.18.0.0/24".to_owned(),
            })
        );
        assert!(ipv6_prefix(&text_scalar("fd00:198:18::/64")).is_ok());
        assert!(matches!(
            ipv6_prefix(&text_scalar("fd00:198:18::1/64")),
            Err(ProblemKind::HostBitsSet { .. })
        ));
    }

    #[test]
    fn prefixes_need_a_length_and_room() {
        assert!(matches!(
            ipv4_prefix(&text_scalar("198.18.0.0")),
            Err(ProblemKind::WrongType { .. })
        ));
        assert!(matches!(
            ipv4_prefix(&text_scalar("198.18.0.0/31")),
            Err(ProblemKind::PrefixTooLong { .. })
        ));
        assert!(matches!(
            ipv6_prefix(&text_scalar("fd00::/127")),
            Err(ProblemKind::PrefixTooLong { .. })
        ));
        assert!(matches!(
            ipv4_prefix(&text_scalar("fd00::/64")),
            Err(ProblemKind::WrongType { .. })
        ));
    }

    #[test]
    fn route_prefixes_take_any_length_of_either_family() {
        assert_eq!(
            route_prefix(&text_scalar("0.0.0.0/0")).map(|p| p.to_string()),
            Ok("0.0.0.0/0".to_owned())
        );
        assert!(route_prefix(&text_scalar("198.18.5.1/32")).is_ok());
        assert!(route_prefix(&text_scalar("fd00::/8")).is_ok());
        assert!(matches!(
            route_prefix(&text_scalar("198.18.5.1/24")),
            Err(ProblemKind::HostBitsSet { .. })
        ));
        assert!(matches!(
            route_prefix(&text_scalar("198.18.5.0/33")),
            Err(ProblemKind::WrongType { .. })
        ));
        assert!(matches!(
            route_prefix(&Scalar::Integer(10)),
            Err(ProblemKind::WrongType { .. })
        ));
    }

    #[test]
    fn addresses_are_of_the_asked_family() {
        assert!(ipv4_address(&text_scalar("198.18.0.11")).is_ok());
        assert!(ipv4_address(&text_scalar("fd00::11")).is_err());
        assert!(ipv6_address(&text_scalar("fd00::11")).is_ok());
        assert!(ipv6_address(&text_scalar("198.18.0.11")).is_err());
        assert!(ip_address(&text_scalar("fd00::11")).is_ok());
        assert!(ip_address(&Scalar::Integer(3)).is_err());
    }

    #[test]
    fn public_key_is_32_bytes_of_base64() {
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        assert_eq!(
            public_key(&text_scalar(key)).map(|k| k.to_string()),
            Ok(key.to_owned())
        );
        assert!(matches!(
            public_key(&text_scalar("not base64!")),
            Err(ProblemKind::InvalidKey { .. })
        ));
        assert!(matches!(
            public_key(&text_scalar("AAAA")),
            Err(ProblemKind::InvalidKey { reason }) if reason.contains("3 bytes")
        ));
    }

    #[test]
    fn endpoints_take_three_forms() {
        assert_eq!(
            endpoint(&text_scalar("198.18.1.1:51820")),
            Ok(Endpoint::Address(
                "198.18.1.1:51820".parse().expect("valid")
            ))
        );
        assert_eq!(
            endpoint(&text_scalar("[fd00::1]:51820")),
            Ok(Endpoint::Address("[fd00::1]:51820".parse().expect("valid")))
        );
        assert_eq!(
            endpoint(&text_scalar("rs1.example.net:51820")),
            Ok(Endpoint::Name {
                host: "rs1.example.net".to_owned(),
                port: 51820
            })
        );
    }

    #[test]
    fn endpoints_refuse_broken_forms() {
        for bad in [
            "198.18.1.1",
            "198.18.1.1:0",
            "198.18.1.1:70000",
            "198.18.1.300:51820",
            "fd00::1:51820",
            "-bad.example:51820",
            "under_score.example:51820",
            ":51820",
        ] {
            assert!(
                matches!(
                    endpoint(&text_scalar(bad)),
                    Err(ProblemKind::InvalidEndpoint { .. })
                ),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn socket_address_needs_a_port() {
        assert!(socket_address(&text_scalar("127.0.0.1:9179")).is_ok());
        assert!(socket_address(&text_scalar("[::1]:9179")).is_ok());
        assert!(socket_address(&text_scalar("127.0.0.1")).is_err());
        assert!(socket_address(&text_scalar("127.0.0.1:0")).is_err());
    }

    #[test]
    fn as_sets_follow_rpsl_names() {
        for good in [
            "AS-ALPHA",
            "AS64501",
            "AS64501:AS-CUSTOMERS",
            "RIPE::AS-ALPHA",
            "as-alpha",
        ] {
            assert!(
                as_set(&text_scalar(good)).is_ok(),
                "{good:?} must be accepted"
            );
        }
        for bad in ["ALPHA", "AS-", "AS64501x", "AS-A B", "AS-A;rm"] {
            assert!(
                as_set(&text_scalar(bad)).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn irr_sources_are_words() {
        assert!(irr_source(&text_scalar("RIPE")).is_ok());
        assert!(irr_source(&text_scalar("RIPE NONAUTH")).is_err());
    }

    #[test]
    fn integers_and_booleans_are_typed() {
        assert_eq!(integer(&Scalar::Integer(5), 1..=10, "n", "1-10"), Ok(5));
        assert!(matches!(
            integer(&Scalar::Integer(11), 1..=10, "n", "1-10"),
            Err(ProblemKind::OutOfRange { .. })
        ));
        assert!(matches!(
            integer(&text_scalar("5"), 1..=10, "n", "1-10"),
            Err(ProblemKind::WrongType { .. })
        ));
        assert_eq!(boolean(&Scalar::Bool(false)), Ok(false));
        assert!(boolean(&text_scalar("yes")).is_err());
    }

    #[test]
    fn bounded_text_checks_length() {
        assert_eq!(
            bounded_text(&text_scalar("VIXP"), 64, "1-64"),
            Ok("VIXP".to_owned())
        );
        assert!(matches!(
            bounded_text(&text_scalar(&"x".repeat(65)), 64, "1-64"),
            Err(ProblemKind::BadLength { length: 65, .. })
        ));
        assert!(bounded_text(&text_scalar("  "), 64, "1-64").is_err());
    }
}
