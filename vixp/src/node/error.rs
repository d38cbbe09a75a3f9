//! Errors of the node file: what went wrong, where (file, line, field) and what would be valid.
//! The `FILE:LINE: field: problem` format is shared with the fabric file
//! (`vixp_fabric::yaml::write_problem`); must not decide which rules apply.

use std::fmt;
use std::io;
use std::path::PathBuf;

use vixp_fabric::yaml::{Lines, write_problem};

use crate::keys::KeyError;

/// Why a node file could not be turned into a [`crate::node::NodeFile`], or why it does not fit
/// its fabric.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The file could not be read from disk.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The file is larger than any plausible node file; it was not parsed.
    #[error("{}: file is {size} bytes; a node file may be at most {limit} bytes", path.display())]
    TooLarge {
        /// The file that was refused.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The largest size accepted, [`crate::node::MAX_NODE_FILE_BYTES`].
        limit: u64,
    },
    /// The file was read but is not valid: every problem found, one per line.
    #[error("{}", Lines(problems))]
    Invalid {
        /// The problems, at least one.
        problems: Vec<NodeProblem>,
    },
}

impl NodeError {
    /// The individual problems (empty for read errors and oversized files).
    pub fn problems(&self) -> &[NodeProblem] {
        match self {
            Self::Invalid { problems } => problems,
            Self::Read { .. } | Self::TooLarge { .. } => &[],
        }
    }
}

/// One problem in a node file, displayed as `FILE:LINE: field: what is wrong; what is valid`.
#[derive(Debug)]
pub struct NodeProblem {
    /// The node file.
    pub file: PathBuf,
    /// 1-based line of the offending value (0 when there is none, e.g. a missing field).
    pub line: u64,
    /// The field, e.g. `mtu` (empty for problems of the document as a whole).
    pub field: String,
    /// What is wrong.
    pub kind: NodeProblemKind,
}

impl fmt::Display for NodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problem(f, &self.file, self.line, &self.field, &self.kind)
    }
}

/// What is wrong with one value of the node file.
#[derive(Debug)]
pub enum NodeProblemKind {
    /// The text is not well-formed YAML.
    Syntax {
        /// The YAML parser's description.
        message: String,
    },
    /// The input trips a limit that protects against hostile files.
    Limit {
        /// The parser's description of the limit.
        message: String,
    },
    /// A list or map where a single value belongs, or the file is not a map.
    Shape {
        /// What belongs here.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The same key twice (YAML 1.2 section 3.2.1.1 requires unique keys).
    DuplicateKey,
    /// A key that node.yaml does not define.
    UnknownField {
        /// The keys that are valid.
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
        /// The value found, as written.
        found: String,
    },
    /// A number outside the range this field allows.
    OutOfRange {
        /// The value found.
        value: String,
        /// The valid range, in words.
        valid: &'static str,
    },
    /// An interface name Linux would refuse.
    InvalidInterface {
        /// The name found.
        value: String,
    },
    /// `member` names no member or route server of the fabric.
    MemberNotFound {
        /// The name in the node file.
        name: String,
        /// The fabric file read.
        fabric: PathBuf,
        /// The names the fabric defines.
        known: Vec<String>,
    },
    /// The private key belongs to a different public key than the fabric gives the member.
    KeyMismatch {
        /// The member.
        member: String,
        /// Public key of the private key file, base64.
        actual: String,
        /// Public key of the member in the fabric, base64.
        expected: String,
        /// The fabric file read.
        fabric: PathBuf,
    },
    /// The private key file cannot be used.
    PrivateKey(KeyError),
    /// Two nodes of the fabric would get the same MAC address.
    MacCollision {
        /// The MAC address, `02:..`.
        mac: String,
        /// First node.
        first: String,
        /// Second node.
        second: String,
    },
}

impl fmt::Display for NodeProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { message } => write!(f, "{message}; fix the YAML syntax"),
            Self::Limit { message } => write!(
                f,
                "{message}, refused as hostile input; a node file is a short map of fields"
            ),
            Self::Shape { expected, found } => write!(
                f,
                "expected {expected}, found {found}; see docs/node-reference.md for the layout"
            ),
            Self::DuplicateKey => f.write_str("given twice; keep one"),
            Self::UnknownField { valid } => {
                write!(f, "unknown field; valid fields: {}", valid.join(", "))
            }
            Self::Missing { hint } => write!(f, "required but missing; {hint}"),
            Self::WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::OutOfRange { value, valid } => write!(f, "{value} is out of range; use {valid}"),
            Self::InvalidInterface { value } => write!(
                f,
                "{value:?} is not a valid interface name; use 1-15 characters without '/', ':' \
                 or white space, e.g. vixp0"
            ),
            Self::MemberNotFound {
                name,
                fabric,
                known,
            } => write!(
                f,
                "{name:?} is not a member or route server in {}; use one of: {}",
                fabric.display(),
                known.join(", ")
            ),
            Self::KeyMismatch {
                member,
                actual,
                expected,
                fabric,
            } => write!(
                f,
                "the private key's public key is {actual}, but {} gives {member} the public key \
                 {expected}; use {member}'s private key, or publish {actual} in the fabric",
                fabric.display()
            ),
            Self::PrivateKey(error) => write!(f, "{error}"),
            Self::MacCollision { mac, first, second } => write!(
                f,
                "{first} and {second} both derive the MAC address {mac}; one of them must \
                 generate a new key (`vixp keygen`)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_line_has_file_line_field_and_message() {
        let problem = NodeProblem {
            file: PathBuf::from("node.yaml"),
            line: 4,
            field: "mtu".to_owned(),
            kind: NodeProblemKind::OutOfRange {
                value: "70000".to_owned(),
                valid: "1280-65535",
            },
        };
        assert_eq!(
            problem.to_string(),
            "node.yaml:4: mtu: 70000 is out of range; use 1280-65535"
        );
    }

    #[test]
    fn problem_without_line_leaves_it_out() {
        let problem = NodeProblem {
            file: PathBuf::from("node.yaml"),
            line: 0,
            field: "member".to_owned(),
            kind: NodeProblemKind::Missing { hint: "add it" },
        };
        assert_eq!(
            problem.to_string(),
            "node.yaml: member: required but missing; add it"
        );
    }
}
