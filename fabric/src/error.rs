//! Errors of the fabric file: what went wrong, where (file, line, field path) and what would be
//! valid. The one-line-per-problem format itself is `crate::yaml::write_problem`; must not
//! decide which rules apply.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::yaml::{Lines, write_problem};

/// Why a fabric file could not be turned into a [`crate::Fabric`].
#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    /// The file could not be read from disk.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The file is larger than any plausible fabric file; it was not parsed.
    #[error(
        "{}: file is {size} bytes; a fabric file may be at most {limit} bytes",
        path.display()
    )]
    TooLarge {
        /// The file that was refused.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The largest size accepted, [`crate::MAX_FABRIC_FILE_BYTES`].
        limit: u64,
    },
    /// The file was read but does not describe a valid exchange: every problem found, in file
    /// order, one per line.
    #[error("{}", Lines(problems))]
    Invalid {
        /// The problems, at least one.
        problems: Vec<Problem>,
    },
}

impl FabricError {
    /// The individual problems (empty for read errors and oversized files).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems,
            Self::Read { .. } | Self::TooLarge { .. } => &[],
        }
    }
}

/// One problem in a fabric file, displayed as `FILE:LINE: field.path: what is wrong; what is
/// valid`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line of the offending value (0 when the YAML parser gave no position).
    pub line: u64,
    /// Field path such as `members[1].asn` (empty for problems of the document as a whole).
    pub path: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problem(f, &self.file, self.line, &self.path, &self.kind)
    }
}

/// What is wrong with one value or one part of the file.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemKind {
    /// The text is not well-formed YAML, or has a shape the fabric file cannot have.
    Syntax {
        /// The YAML parser's description.
        message: String,
    },
    /// A map where a list or a single value belongs, or the reverse.
    Shape {
        /// What belongs here.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The same key twice in one map (YAML 1.2 section 3.2.1.1 requires unique keys).
    DuplicateKey,
    /// The input trips a limit that protects against hostile files (alias bombs, deep nesting).
    Limit {
        /// The parser's description of the limit.
        message: String,
    },
    /// A key that fabric.yaml version 1 does not define at this place.
    UnknownField {
        /// The keys that are valid here.
        valid: Vec<&'static str>,
    },
    /// A required field is absent or empty.
    Missing {
        /// What to add.
        hint: &'static str,
    },
    /// The value has the wrong type or form.
    WrongType {
        /// What was expected, with an example.
        expected: &'static str,
        /// The value found, as written (strings quoted).
        found: String,
    },
    /// `version` is not one this program reads.
    UnsupportedVersion {
        /// The value found.
        found: String,
    },
    /// A number outside the range this field allows.
    OutOfRange {
        /// The value found.
        value: String,
        /// The valid range, in words.
        valid: &'static str,
    },
    /// A text value of the wrong length.
    BadLength {
        /// Length found, in characters.
        length: usize,
        /// The valid lengths, in words.
        valid: &'static str,
    },
    /// An ASN that must not be used by anyone.
    ReservedAsn {
        /// The ASN.
        asn: u32,
        /// Why it is reserved, with the RFC.
        reason: &'static str,
    },
    /// A name with characters outside `[a-z0-9_-]` or of the wrong length.
    InvalidName {
        /// The name found.
        value: String,
    },
    /// A prefix whose host bits are not zero.
    HostBitsSet {
        /// The prefix as written.
        prefix: String,
        /// The prefix with host bits cleared.
        network: String,
    },
    /// A LAN prefix too long to hold a route server and members.
    PrefixTooLong {
        /// The prefix as written.
        prefix: String,
        /// The longest prefix length accepted.
        longest: u8,
    },
    /// A LAN address outside the LAN prefix.
    OutsideLan {
        /// The address.
        address: IpAddr,
        /// The LAN prefix.
        lan: String,
        /// The LAN field to use, `lan.ipv4` or `lan.ipv6`.
        lan_field: &'static str,
    },
    /// A LAN address that no host may use (network, broadcast or subnet-router anycast).
    ReservedLanAddress {
        /// The address.
        address: IpAddr,
        /// Which special address it is.
        role: &'static str,
        /// The LAN prefix.
        lan: String,
    },
    /// A value that must be unique is already used elsewhere.
    Duplicate {
        /// The value.
        value: String,
        /// Field path of the entry that uses it first, e.g. `members[0]`.
        first_path: String,
        /// Name of that entry.
        first_name: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// A WireGuard public key that is not 32 bytes of standard base64.
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },
    /// An endpoint that is not `IP:port`, `[IPv6]:port` or `host.name:port`.
    InvalidEndpoint {
        /// The value found.
        value: String,
    },
    /// An IRR AS-SET name that is not one (RFC 2622 section 5.1).
    InvalidAsSet {
        /// The value found.
        value: String,
    },
    /// An IRR source name with characters other than letters, digits and `-`.
    InvalidIrrSource {
        /// The value found.
        value: String,
    },
    /// Neither `ipv4` nor `ipv6` is set.
    NoLanAddress,
    /// A route server without an IPv4 address needs an explicit `router_id`.
    RouterIdRequired,
    /// A router ID of 0.0.0.0 (RFC 6286 section 2.1 requires a non-zero BGP Identifier).
    ZeroRouterId,
    /// A `[min, max]` range whose minimum is above its maximum.
    MinAboveMax {
        /// The minimum found.
        min: String,
        /// The maximum found.
        max: String,
    },
    /// A list that must not be empty is empty.
    EmptyList {
        /// What to put in it.
        hint: &'static str,
    },
    /// An IRR prefix entry that is not `PREFIX`, `PREFIX le N` or `PREFIX ge N le M`.
    InvalidPrefixRange {
        /// The value found.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `irr:` block with nothing in it.
    EmptyIrr,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { message } => write!(f, "{message}; fix the YAML syntax"),
            Self::Shape { expected, found } => write!(
                f,
                "expected {expected}, found {found}; see docs/fabric-reference.md for the layout"
            ),
            Self::DuplicateKey => f.write_str("given twice in one map; keep one"),
            Self::Limit { message } => {
                write!(
                    f,
                    "{message}, refused as hostile input; a fabric file needs no alias bombs, \
                     deep nesting or huge values"
                )
            }
            Self::UnknownField { valid } => {
                write!(f, "unknown field; valid fields: {}", valid.join(", "))
            }
            Self::Missing { hint } => write!(f, "required but missing; {hint}"),
            Self::WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::UnsupportedVersion { found } => {
                write!(f, "version {found} is not supported; use version: 1")
            }
            Self::OutOfRange { value, valid } => write!(f, "{value} is out of range; use {valid}"),
            Self::BadLength { length, valid } => {
                write!(f, "{length} characters long; use {valid}")
            }
            Self::ReservedAsn { asn, reason } => write!(
                f,
                "{asn} is reserved ({reason}); use your own ASN, or a private one \
                 (64512-65534, 4200000000-4294967294)"
            ),
            Self::InvalidName { value } => write!(
                f,
                "{value:?} is not a valid name; use 1-32 characters from a-z, 0-9, '-' and '_'"
            ),
            Self::HostBitsSet { prefix, network } => {
                write!(f, "{prefix} has host bits set; use {network}")
            }
            Self::PrefixTooLong { prefix, longest } => write!(
                f,
                "{prefix} has no room for a route server and members; use a /{longest} or shorter"
            ),
            Self::OutsideLan {
                address,
                lan,
                lan_field,
            } => write!(
                f,
                "{address} is outside the LAN {lan}; use an address inside {lan_field}"
            ),
            Self::ReservedLanAddress { address, role, lan } => write!(
                f,
                "{address} is the {role} of the LAN {lan}; use a host address inside the LAN"
            ),
            Self::Duplicate {
                value,
                first_path,
                first_name,
                hint,
            } => write!(
                f,
                "{value} is already used by {first_path} ({first_name}); {hint}"
            ),
            Self::InvalidKey { reason } => write!(
                f,
                "{reason}; use the 44-character base64 key printed by `wg pubkey`"
            ),
            Self::InvalidEndpoint { value } => write!(
                f,
                "{value:?} is not a valid endpoint; use IP:port, [IPv6]:port or host.name:port"
            ),
            Self::InvalidAsSet { value } => write!(
                f,
                "{value:?} is not an AS-SET name; use a name like AS-EXAMPLE or AS64501"
            ),
            Self::InvalidIrrSource { value } => write!(
                f,
                "{value:?} is not an IRR source name; use a name like RIPE, ARIN or RADB"
            ),
            Self::NoLanAddress => {
                f.write_str("has neither ipv4 nor ipv6; set at least one LAN address")
            }
            Self::RouterIdRequired => f.write_str(
                "required when the route server has no ipv4 address; set an IPv4 router_id",
            ),
            Self::ZeroRouterId => f.write_str(
                "0.0.0.0 is not a valid BGP identifier (RFC 6286 section 2.1); use a non-zero \
                 IPv4 address",
            ),
            Self::MinAboveMax { min, max } => write!(
                f,
                "minimum {min} is above maximum {max}; write [min, max] with min <= max"
            ),
            Self::EmptyList { hint } => write!(f, "is empty; {hint}"),
            Self::InvalidPrefixRange { value, reason } => {
                write!(f, "{value:?} is not an IRR prefix entry: {reason}")
            }
            Self::EmptyIrr => f.write_str(
                "gives no IRR data; set as_set, prefixes_file, asns_file, prefixes or origins",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(line: u64, path: &str, kind: ProblemKind) -> Problem {
        Problem {
            file: PathBuf::from("fabric.yaml"),
            line,
            path: path.to_owned(),
            kind,
        }
    }

    #[test]
    fn problem_line_has_file_line_path_and_message() {
        let line = problem(
            23,
            "members[1].asn",
            ProblemKind::Duplicate {
                value: "64501".to_owned(),
                first_path: "members[0]".to_owned(),
                first_name: "alpha".to_owned(),
                hint: "each member needs its own ASN",
            },
        )
        .to_string();
        assert_eq!(
            line,
            "fabric.yaml:23: members[1].asn: 64501 is already used by members[0] (alpha); \
             each member needs its own ASN"
        );
    }

    #[test]
    fn problem_without_line_or_path_leaves_them_out() {
        let kind = ProblemKind::Syntax {
            message: "bad".to_owned(),
        };
        assert_eq!(
            problem(0, "", kind.clone()).to_string(),
            "fabric.yaml: bad; fix the YAML syntax"
        );
        assert_eq!(
            problem(3, "", kind).to_string(),
            "fabric.yaml:3: bad; fix the YAML syntax"
        );
    }

    #[test]
    fn invalid_error_prints_one_line_per_problem() {
        let error = FabricError::Invalid {
            problems: vec![
                problem(
                    1,
                    "version",
                    ProblemKind::UnsupportedVersion {
                        found: "2".to_owned(),
                    },
                ),
                problem(
                    4,
                    "lan.ipv4",
                    ProblemKind::Missing {
                        hint: "add an IPv4 prefix",
                    },
                ),
            ],
        };
        assert_eq!(error.problems().len(), 2);
        assert_eq!(error.to_string().lines().count(), 2);
    }

    #[test]
    fn read_error_names_the_file() {
        let error = FabricError::Read {
            path: PathBuf::from("/nonexistent/fabric.yaml"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/fabric.yaml: cannot read: ")
        );
        assert!(error.problems().is_empty());
    }
}
