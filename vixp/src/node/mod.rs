//! The node file (`node.yaml`): which member of the fabric this node is, where its private key
//! and fabric file are, and the local settings (interface, MTU, port, metrics, control socket).
//! Owns parsing it into [`NodeFile`] and checking it against its fabric and key
//! ([`NodeFile::resolve`]); must not touch the network.

mod error;
mod raw;
mod version;

use std::fs::File;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_saphyr::budget::{BudgetBreach, EnforcingPolicy, check_yaml_budget};
use serde_saphyr::{Budget, Error as YamlError, Options, Spanned};
use vixp_fabric::{Endpoint, Fabric, FabricError, PublicKey};

pub use error::{NodeError, NodeProblem, NodeProblemKind};
use raw::{Field, RawNode, Scalar};
pub use version::{fabric_digest, load_fabric};

use crate::core::mtu::MssLimit;
use crate::core::{PeerSpec, mac_for_key};
use crate::keys::{PrivateKey, encode_key};

/// Interface name when `interface` is not set.
pub const DEFAULT_INTERFACE: &str = "vixp0";
/// MTU of the TAP device when `mtu` is not set: 1500 minus the WireGuard and IPv6/UDP overhead
/// (80 bytes), as wg-quick chooses.
pub const DEFAULT_MTU: u16 = 1420;
/// Smallest MTU accepted: IPv6 needs 1280 (RFC 8200 section 5).
pub const MIN_MTU: u16 = 1280;
/// Largest MTU accepted: a WireGuard datagram must fit one UDP datagram.
pub const MAX_MTU: u16 = 65_000;
/// Where `/metrics` listens when `metrics` is not set.
pub const DEFAULT_METRICS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9180);
/// Directory of the control socket when `control_socket` is not set: `/run/vixp/<interface>.sock`.
pub const DEFAULT_CONTROL_DIRECTORY: &str = "/run/vixp";
/// UDP port when neither `listen_port` nor the node's endpoint in the fabric gives one.
pub const DEFAULT_LISTEN_PORT: u16 = vixp_fabric::DEFAULT_WIREGUARD_PORT;
/// Largest node file accepted, in bytes.
pub const MAX_NODE_FILE_BYTES: u64 = 64 * 1024;
/// TAP offloads (virtio-net header, TSO, receive coalescing) unless the node file says no.
pub const DEFAULT_OFFLOAD: bool = true;
/// MSS clamping when `mss_clamp` is not set: off, packets cross the LAN unchanged.
pub const DEFAULT_MSS_CLAMP: MssClamp = MssClamp::Off;
/// Smallest MSS `mss_clamp` accepts (the IPv4 default MSS, RFC 9293 section 3.7.1).
pub const MIN_MSS: u16 = 536;
/// Largest MSS `mss_clamp` accepts (65535 minus the IPv4 and TCP headers).
pub const MAX_MSS: u16 = 65_495;
/// Active queue management of received datagrams when `aqm` is not set: CoDel.
pub const DEFAULT_AQM: Aqm = Aqm::Codel;
/// Most forwarding workers `workers` accepts.
pub const MAX_WORKERS: u16 = 64;
/// Nice value of the workers' receiving threads (underlay to LAN) when `receive_nice` is not
/// set. Above the programs that share the cores (nice 0), so that what arrives is decrypted and
/// handed to the kernel at once instead of after their scheduler slice; the sending threads
/// stay at the process's value, level with the programs that feed them (raising them too
/// measured worse). A nice thread still yields, unlike a real-time one (docs/datapath.md,
/// "Receive priority").
pub const DEFAULT_RECEIVE_NICE: i8 = -10;
/// Longest Linux interface name (IFNAMSIZ minus the terminating zero).
const MAX_INTERFACE_NAME: usize = 15;

/// The fields node.yaml may hold, in documentation order.
const FIELDS: [&str; 14] = [
    "member",
    "private_key_file",
    "fabric",
    "interface",
    "mtu",
    "listen_port",
    "metrics",
    "control_socket",
    "persistent_keepalive",
    "offload",
    "mss_clamp",
    "workers",
    "receive_nice",
    "aqm",
];

/// A parsed node file: every value valid on its own. Paths are absolute or relative to the
/// directory of the node file, resolved as such.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFile {
    /// The node file itself.
    pub source: PathBuf,
    /// Name of the member or route server in the fabric that this node is.
    pub member: String,
    /// The private key file (WireGuard base64, mode 0600).
    pub private_key_file: PathBuf,
    /// The fabric file.
    pub fabric: PathBuf,
    /// Name of the TAP device.
    pub interface: String,
    /// MTU of the TAP device.
    pub mtu: u16,
    /// UDP port set in the file; when `None` the node's endpoint port or
    /// [`DEFAULT_LISTEN_PORT`] applies.
    pub listen_port: Option<u16>,
    /// Address of the `/metrics` HTTP listener.
    pub metrics: SocketAddr,
    /// Path of the control socket that `vixp status` talks to.
    pub control_socket: PathBuf,
    /// Seconds between keepalives to every peer, for nodes behind NAT.
    pub persistent_keepalive: Option<u16>,
    /// TAP offloads: the kernel hands over large TCP segments and takes coalesced ones
    /// ([`DEFAULT_OFFLOAD`] when not set).
    pub offload: bool,
    /// MSS clamping of TCP SYN segments crossing the LAN, both directions
    /// ([`DEFAULT_MSS_CLAMP`] when not set).
    pub mss_clamp: MssClamp,
    /// Forwarding workers; `None` (`auto`, the default): one per core.
    pub workers: Option<u16>,
    /// Nice value (-20 to 19) the node gives its workers' receiving threads
    /// ([`DEFAULT_RECEIVE_NICE`] when not set).
    pub receive_nice: i8,
    /// Active queue management of the datagrams waiting in the workers' UDP sockets
    /// ([`DEFAULT_AQM`] when not set).
    pub aqm: Aqm,
    /// Line of each field in the file, for messages about values checked later.
    lines: FieldLines,
}

/// Active queue management of the datagrams a worker reads from its UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aqm {
    /// CoDel (RFC 8289) on the kernel's arrival timestamps: when datagrams keep waiting longer
    /// than the target, bulk data packets are dropped after decryption so TCP backs off.
    Codel,
    /// No dropping: the socket's queue is as long as the senders make it.
    Off,
}

/// How the node clamps the MSS option of TCP SYN segments on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    /// Segments pass unchanged.
    Off,
    /// To what fits the tunnel MTU: MTU - 40 for IPv4, MTU - 60 for IPv6.
    Auto,
    /// To this MSS, both families.
    Fixed(u16),
}

impl MssClamp {
    /// The limits for a tunnel of `mtu`, `None` when off.
    pub fn limit(self, mtu: u16) -> Option<MssLimit> {
        match self {
            MssClamp::Off => None,
            MssClamp::Auto => Some(MssLimit::for_mtu(mtu)),
            MssClamp::Fixed(mss) => Some(MssLimit::fixed(mss)),
        }
    }
}

/// Lines of the fields checked against the fabric and the key file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct FieldLines {
    member: u64,
    private_key_file: u64,
}

/// Everything `vixp up` needs, checked together: the node file, its fabric, its key, this
/// node's identity in the fabric and every other node as a peer.
#[derive(Debug)]
pub struct Resolved {
    /// The node file.
    pub node: NodeFile,
    /// The fabric it points to.
    pub fabric: Fabric,
    /// The [`fabric_digest`] of the fabric file's bytes that were parsed.
    pub fabric_digest: String,
    /// This node's private key.
    pub private_key: PrivateKey,
    /// This node as the fabric describes it.
    pub own: PeerSpec,
    /// Every other member and route server.
    pub peers: Vec<PeerSpec>,
    /// UDP port to listen on.
    pub listen_port: u16,
}

/// Why [`NodeFile::resolve`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The node file itself, or its fit with the fabric and key.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The fabric file.
    #[error(transparent)]
    Fabric(#[from] FabricError),
}

impl NodeFile {
    /// Reads and validates the node file at `path`.
    pub fn load(path: &Path) -> Result<NodeFile, NodeError> {
        let read_error = |source| NodeError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let mut text = String::new();
        let read = file
            .take(MAX_NODE_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if read as u64 > MAX_NODE_FILE_BYTES {
            return Err(NodeError::TooLarge {
                path: path.to_path_buf(),
                size: read as u64,
                limit: MAX_NODE_FILE_BYTES,
            });
        }
        Self::parse(&text, path)
    }

    /// Validates node file text; `source` names the file in messages and anchors relative
    /// paths.
    pub fn parse(text: &str, source: &Path) -> Result<NodeFile, NodeError> {
        let invalid = |problem| NodeError::Invalid {
            problems: vec![problem],
        };
        if let Some(problem) = prescan(text, source) {
            return Err(invalid(problem));
        }
        let mut error_path = None;
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(
            text,
            yaml_options(),
            |deserializer| {
                serde_path_to_error::deserialize::<_, Option<RawNode>>(deserializer).map_err(
                    |error| {
                        error_path = Some(error.path().to_string());
                        error.into_inner()
                    },
                )
            },
        );
        match parsed {
            Ok(Some(raw)) => Converter::new(source).convert(&raw),
            Ok(None) => Converter::new(source).convert(&RawNode::default()),
            Err(error) => Err(invalid(yaml_problem(&error, error_path, source))),
        }
    }

    /// Reads the fabric and the private key and checks that they fit this node file: the
    /// member exists, the key is private to its owner and belongs to the member's public key,
    /// and no two nodes derive the same MAC address.
    pub fn resolve(self) -> Result<Resolved, ResolveError> {
        let (fabric, fabric_digest) = load_fabric(&self.fabric)?;
        let problem = |line, field: &str, kind| {
            NodeError::Invalid {
                problems: vec![NodeProblem {
                    file: self.source.clone(),
                    line,
                    field: field.to_owned(),
                    kind,
                }],
            }
            .into()
        };
        let specs = peer_specs(&fabric);
        let Some(own) = specs.iter().find(|spec| spec.name == self.member).cloned() else {
            let known = specs.iter().map(|spec| spec.name.clone()).collect();
            return Err(problem(
                self.lines.member,
                "member",
                NodeProblemKind::MemberNotFound {
                    name: self.member.clone(),
                    fabric: self.fabric.clone(),
                    known,
                },
            ));
        };
        if let Some((mac, first, second)) = mac_collision(&specs) {
            return Err(problem(
                self.lines.member,
                "member",
                NodeProblemKind::MacCollision { mac, first, second },
            ));
        }
        let private_key = PrivateKey::read(&self.private_key_file).map_err(|error| {
            problem(
                self.lines.private_key_file,
                "private_key_file",
                NodeProblemKind::PrivateKey(error),
            )
        })?;
        let actual = private_key.public_key();
        if actual != own.public_key {
            return Err(problem(
                self.lines.private_key_file,
                "private_key_file",
                NodeProblemKind::KeyMismatch {
                    member: own.name.clone(),
                    actual: encode_key(&actual),
                    expected: encode_key(&own.public_key),
                    fabric: self.fabric.clone(),
                },
            ));
        }
        let listen_port = self.listen_port.unwrap_or_else(|| match &own.endpoint {
            Some(Endpoint::Address(address)) => address.port(),
            Some(Endpoint::Name { port, .. }) => *port,
            None => DEFAULT_LISTEN_PORT,
        });
        let peers = specs
            .into_iter()
            .filter(|spec| spec.name != self.member)
            .collect();
        Ok(Resolved {
            node: self,
            fabric,
            fabric_digest,
            private_key,
            own,
            peers,
            listen_port,
        })
    }
}

/// Every node of the fabric (route servers first, then members) as the data path sees it.
pub fn peer_specs(fabric: &Fabric) -> Vec<PeerSpec> {
    let route_servers = fabric.route_servers.iter().map(|rs| {
        PeerSpec::new(
            &rs.name,
            rs.public_key,
            rs.ipv4,
            rs.ipv6,
            rs.endpoint.clone(),
        )
    });
    let members = fabric.members.iter().map(|member| {
        PeerSpec::new(
            &member.name,
            member.public_key,
            member.ipv4,
            member.ipv6,
            member.endpoint.clone(),
        )
    });
    route_servers.chain(members).collect()
}

/// The first two nodes whose public keys derive the same MAC address, if any.
pub fn mac_collision(specs: &[PeerSpec]) -> Option<(String, String, String)> {
    let mut seen = std::collections::HashMap::new();
    for spec in specs {
        if let Some(first) = seen.insert(spec.mac, &spec.name) {
            let mac = spec.mac.map(|byte| format!("{byte:02x}")).join(":");
            return Some((mac, first.clone(), spec.name.clone()));
        }
    }
    None
}

impl PeerSpec {
    /// A node of the fabric with its derived MAC.
    fn new(
        name: &str,
        public_key: PublicKey,
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<std::net::Ipv6Addr>,
        endpoint: Option<Endpoint>,
    ) -> PeerSpec {
        PeerSpec {
            name: name.to_owned(),
            public_key: public_key.0,
            mac: mac_for_key(&public_key.0),
            ipv4,
            ipv6,
            endpoint,
        }
    }
}

/// Limits on the YAML: a node file is a flat map of a few short values.
fn yaml_budget() -> Budget {
    let mut budget = Budget::default();
    budget.max_depth = 4;
    budget.max_documents = 1;
    budget.max_events = 10_000;
    budget.max_nodes = 1_000;
    budget.max_aliases = 16;
    budget.max_anchors = 16;
    budget.max_total_scalar_bytes = MAX_NODE_FILE_BYTES as usize;
    budget
}

/// Parser options: the budget above, no source snippets in messages.
fn yaml_options() -> Options {
    let mut options = Options::default();
    options.budget = Some(yaml_budget());
    options.alias_limits.max_total_replayed_events = 1_000;
    options.alias_limits.max_replay_stack_depth = 4;
    options.with_snippet = false;
    options
}

/// A limit breach in words.
fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { depth } => format!("nesting depth {depth} is more than allowed"),
        BudgetBreach::Documents { documents } => {
            format!("{documents} YAML documents; a node file is one document")
        }
        other => format!("input exceeds a parser limit ({other:?})"),
    }
}

/// Syntax errors and limit breaches, found before deserializing so they get their line.
fn prescan(text: &str, source: &Path) -> Option<NodeProblem> {
    let (line, kind) = match check_yaml_budget(text, yaml_budget(), EnforcingPolicy::AllContent) {
        Ok(report) => (
            0,
            NodeProblemKind::Limit {
                message: describe_breach(&report.breached?),
            },
        ),
        Err(error) => (
            u64::try_from(error.marker().line()).unwrap_or(u64::MAX),
            NodeProblemKind::Syntax {
                message: error.info().to_owned(),
            },
        ),
    };
    Some(NodeProblem {
        file: source.to_path_buf(),
        line,
        field: String::new(),
        kind,
    })
}

/// One problem from a YAML error.
fn yaml_problem(error: &YamlError, path: Option<String>, source: &Path) -> NodeProblem {
    let error = error.without_snippet();
    let line = error.location().map_or(0, |location| location.line());
    let mut field = path
        .filter(|path| path != ".")
        .unwrap_or_default()
        .replace(".value", "");
    let kind = match error {
        YamlError::SerdeUnknownField { field: name, .. } => {
            field = name.clone();
            NodeProblemKind::UnknownField {
                valid: FIELDS.to_vec(),
            }
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => NodeProblemKind::Shape {
            expected: expected.clone(),
            found: unexpected.clone(),
        },
        YamlError::DuplicateMappingKey { key, .. } => {
            if let Some(key) = key {
                field = key.clone();
            }
            NodeProblemKind::DuplicateKey
        }
        YamlError::Budget { breach, .. } => NodeProblemKind::Limit {
            message: describe_breach(breach),
        },
        other => NodeProblemKind::Syntax {
            message: strip_location(&other.to_string()),
        },
    };
    NodeProblem {
        file: source.to_path_buf(),
        line,
        field,
        kind,
    }
}

/// The parser's message without its own `at line X, column Y` suffix.
fn strip_location(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or_default();
    match first_line.find(" at line ") {
        Some(index) => first_line[..index].to_owned(),
        None => first_line.to_owned(),
    }
}

/// Turns the raw fields into a [`NodeFile`], collecting every problem.
struct Converter<'a> {
    source: &'a Path,
    problems: Vec<NodeProblem>,
}

impl<'a> Converter<'a> {
    fn new(source: &'a Path) -> Self {
        Converter {
            source,
            problems: Vec::new(),
        }
    }

    fn report(&mut self, line: u64, field: &str, kind: NodeProblemKind) {
        self.problems.push(NodeProblem {
            file: self.source.to_path_buf(),
            line,
            field: field.to_owned(),
            kind,
        });
    }

    /// A set, non-null value with its line.
    fn present(field: &Field) -> Option<&Spanned<Scalar>> {
        field.as_ref().filter(|value| value.value != Scalar::Null)
    }

    /// A text value; numbers are not text here.
    fn text(&mut self, field: &Field, name: &str, expected: &'static str) -> Option<String> {
        let value = Self::present(field)?;
        match &value.value {
            Scalar::Text(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            other => {
                self.report(
                    value.referenced.line(),
                    name,
                    NodeProblemKind::WrongType {
                        expected,
                        found: other.to_string(),
                    },
                );
                None
            }
        }
    }

    /// An integer within `range`.
    fn integer(
        &mut self,
        field: &Field,
        name: &str,
        range: std::ops::RangeInclusive<i128>,
        valid: &'static str,
    ) -> Option<i128> {
        let value = Self::present(field)?;
        let line = value.referenced.line();
        match &value.value {
            Scalar::Integer(number) if range.contains(number) => Some(*number),
            Scalar::Integer(number) => {
                self.report(
                    line,
                    name,
                    NodeProblemKind::OutOfRange {
                        value: number.to_string(),
                        valid,
                    },
                );
                None
            }
            other => {
                self.report(
                    line,
                    name,
                    NodeProblemKind::WrongType {
                        expected: valid,
                        found: other.to_string(),
                    },
                );
                None
            }
        }
    }

    /// One of `words` or an integer within `range`.
    fn word_or_integer(
        &mut self,
        field: &Field,
        name: &str,
        words: &[&'static str],
        range: std::ops::RangeInclusive<i128>,
        valid: &'static str,
    ) -> Option<WordOrInteger> {
        let value = Self::present(field)?;
        if let Scalar::Text(text) = &value.value
            && let Some(word) = words.iter().find(|word| **word == text.trim())
        {
            return Some(WordOrInteger::Word(word));
        }
        // YAML 1.1 reads a bare `off` as false: where `off` is a keyword, that is what was meant.
        if value.value == Scalar::Bool(false)
            && let Some(word) = words.iter().find(|word| **word == "off")
        {
            return Some(WordOrInteger::Word(word));
        }
        self.integer(field, name, range, valid)
            .map(WordOrInteger::Integer)
    }

    /// An optional `true` or `false`.
    fn boolean(&mut self, field: &Field, name: &str) -> Option<bool> {
        let value = Self::present(field)?;
        match &value.value {
            Scalar::Bool(flag) => Some(*flag),
            other => {
                let line = value.referenced.line();
                self.report(
                    line,
                    name,
                    NodeProblemKind::WrongType {
                        expected: "true or false",
                        found: other.to_string(),
                    },
                );
                None
            }
        }
    }

    /// A required path, relative to the node file's directory.
    fn path(&mut self, field: &Field, name: &str, hint: &'static str) -> Option<PathBuf> {
        if Self::present(field).is_none() {
            self.report(0, name, NodeProblemKind::Missing { hint });
            return None;
        }
        let text = self.text(field, name, "a file path, e.g. /etc/vixp/private.key")?;
        let path = PathBuf::from(text);
        Some(if path.is_absolute() {
            path
        } else {
            self.source
                .parent()
                .unwrap_or_else(|| Path::new(""))
                .join(path)
        })
    }

    fn convert(mut self, raw: &RawNode) -> Result<NodeFile, NodeError> {
        let line = |field: &Field| field.as_ref().map_or(0, |value| value.referenced.line());
        let member = if Self::present(&raw.member).is_none() {
            self.report(
                0,
                "member",
                NodeProblemKind::Missing {
                    hint: "set the name of this node's member or route server in the fabric",
                },
            );
            None
        } else {
            self.text(
                &raw.member,
                "member",
                "the member's name in the fabric, e.g. alpha",
            )
        };
        let private_key_file = self.path(
            &raw.private_key_file,
            "private_key_file",
            "set the path of the private key written by `vixp keygen --output FILE`",
        );
        let fabric = self.path(
            &raw.fabric,
            "fabric",
            "set the path of the exchange's fabric.yaml",
        );
        let interface = match self.text(&raw.interface, "interface", "an interface name") {
            Some(name) if valid_interface_name(&name) => name,
            Some(name) => {
                self.report(
                    line(&raw.interface),
                    "interface",
                    NodeProblemKind::InvalidInterface { value: name },
                );
                DEFAULT_INTERFACE.to_owned()
            }
            None => DEFAULT_INTERFACE.to_owned(),
        };
        let mtu = self
            .integer(
                &raw.mtu,
                "mtu",
                i128::from(MIN_MTU)..=i128::from(MAX_MTU),
                "an MTU of 1280-65000 bytes",
            )
            .and_then(|mtu| u16::try_from(mtu).ok())
            .unwrap_or(DEFAULT_MTU);
        let listen_port = self
            .integer(
                &raw.listen_port,
                "listen_port",
                1..=65_535,
                "a UDP port, 1-65535",
            )
            .and_then(|port| u16::try_from(port).ok());
        let metrics = match self.text(&raw.metrics, "metrics", "an IP:port, e.g. 127.0.0.1:9180") {
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(address) => address,
                Err(_) => {
                    self.report(
                        line(&raw.metrics),
                        "metrics",
                        NodeProblemKind::WrongType {
                            expected: "an IP:port or [IPv6]:port, e.g. 127.0.0.1:9180",
                            found: format!("{text:?}"),
                        },
                    );
                    DEFAULT_METRICS
                }
            },
            None => DEFAULT_METRICS,
        };
        let control_socket = if Self::present(&raw.control_socket).is_some() {
            self.path(&raw.control_socket, "control_socket", "")
        } else {
            Some(Path::new(DEFAULT_CONTROL_DIRECTORY).join(format!("{interface}.sock")))
        };
        let persistent_keepalive = self
            .integer(
                &raw.persistent_keepalive,
                "persistent_keepalive",
                1..=65_535,
                "seconds between keepalives, 1-65535 (25 suits most NATs)",
            )
            .and_then(|seconds| u16::try_from(seconds).ok());
        let offload = self
            .boolean(&raw.offload, "offload")
            .unwrap_or(DEFAULT_OFFLOAD);
        let mss_clamp = match self.word_or_integer(
            &raw.mss_clamp,
            "mss_clamp",
            &["auto", "off"],
            i128::from(MIN_MSS)..=i128::from(MAX_MSS),
            "auto, off or an MSS of 536-65495 bytes",
        ) {
            Some(WordOrInteger::Word("auto")) => MssClamp::Auto,
            Some(WordOrInteger::Integer(mss)) => {
                u16::try_from(mss).map_or(DEFAULT_MSS_CLAMP, MssClamp::Fixed)
            }
            Some(WordOrInteger::Word(_)) | None => DEFAULT_MSS_CLAMP,
        };
        let workers = match self.word_or_integer(
            &raw.workers,
            "workers",
            &["auto"],
            1..=i128::from(MAX_WORKERS),
            "auto (one per core) or 1-64 forwarding workers",
        ) {
            Some(WordOrInteger::Integer(count)) => u16::try_from(count).ok(),
            Some(WordOrInteger::Word(_)) | None => None,
        };
        let receive_nice = self
            .integer(
                &raw.receive_nice,
                "receive_nice",
                -20..=19,
                "a nice value from -20 (first) to 19 (last); 0 leaves them as the process",
            )
            .and_then(|nice| i8::try_from(nice).ok())
            .unwrap_or(DEFAULT_RECEIVE_NICE);
        let aqm = match self.word_or_integer(
            &raw.aqm,
            "aqm",
            &["codel", "off"],
            std::ops::RangeInclusive::new(1, 0), // no number is valid
            "codel or off",
        ) {
            Some(WordOrInteger::Word("off")) => Aqm::Off,
            Some(WordOrInteger::Word(_)) => Aqm::Codel,
            Some(WordOrInteger::Integer(_)) | None => DEFAULT_AQM,
        };
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|problem| problem.line);
            return Err(NodeError::Invalid {
                problems: self.problems,
            });
        }
        match (member, private_key_file, fabric, control_socket) {
            (Some(member), Some(private_key_file), Some(fabric), Some(control_socket)) => {
                Ok(NodeFile {
                    source: self.source.to_path_buf(),
                    member,
                    private_key_file,
                    fabric,
                    interface,
                    mtu,
                    listen_port,
                    metrics,
                    control_socket,
                    persistent_keepalive,
                    offload,
                    mss_clamp,
                    workers,
                    receive_nice,
                    aqm,
                    lines: FieldLines {
                        member: line(&raw.member),
                        private_key_file: line(&raw.private_key_file),
                    },
                })
            }
            _ => Err(NodeError::Invalid {
                problems: self.problems,
            }),
        }
    }
}

/// A value that is a keyword or a number (`mss_clamp`, `workers`).
enum WordOrInteger {
    /// One of the keywords allowed.
    Word(&'static str),
    /// A number within range.
    Integer(i128),
}

/// Whether Linux accepts `name` as an interface name (`dev_valid_name`).
fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_INTERFACE_NAME
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|character| character == '/' || character == ':' || character.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(text: &str) -> Vec<String> {
        match NodeFile::parse(text, Path::new("/etc/vixp/node.yaml")) {
            Ok(_) => Vec::new(),
            Err(error) => error.to_string().lines().map(str::to_owned).collect(),
        }
    }

    const MINIMAL: &str = "member: alpha\nprivate_key_file: private.key\nfabric: fabric.yaml\n";

    #[test]
    fn a_minimal_file_gets_every_default() {
        let node = NodeFile::parse(MINIMAL, Path::new("/etc/vixp/node.yaml")).expect("valid");
        assert_eq!(node.member, "alpha");
        assert_eq!(
            node.private_key_file,
            PathBuf::from("/etc/vixp/private.key")
        );
        assert_eq!(node.fabric, PathBuf::from("/etc/vixp/fabric.yaml"));
        assert_eq!(node.interface, "vixp0");
        assert_eq!(node.mtu, 1420);
        assert_eq!(node.listen_port, None);
        assert_eq!(node.metrics, DEFAULT_METRICS);
        assert_eq!(node.control_socket, PathBuf::from("/run/vixp/vixp0.sock"));
        assert_eq!(node.persistent_keepalive, None);
        assert!(node.offload);
        assert_eq!(node.mss_clamp, MssClamp::Off);
        assert_eq!(node.workers, None);
        assert_eq!(node.receive_nice, DEFAULT_RECEIVE_NICE);
        assert_eq!(node.aqm, Aqm::Codel);
    }

    #[test]
    fn every_field_can_be_set() {
        let text = format!(
            "{MINIMAL}interface: ix1\nmtu: 1380\nlisten_port: 51999\nmetrics: \"[::1]:9999\"\n\
             control_socket: /tmp/x.sock\npersistent_keepalive: 25\noffload: false\n\
             mss_clamp: 1300\nworkers: 3\nreceive_nice: 0\naqm: off\n"
        );
        let node = NodeFile::parse(&text, Path::new("n.yaml")).expect("valid");
        assert_eq!(node.interface, "ix1");
        assert_eq!(node.mtu, 1380);
        assert_eq!(node.listen_port, Some(51999));
        assert_eq!(node.metrics, "[::1]:9999".parse().expect("address"));
        assert_eq!(node.control_socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(node.persistent_keepalive, Some(25));
        assert!(!node.offload);
        assert_eq!(node.mss_clamp, MssClamp::Fixed(1300));
        assert_eq!(node.workers, Some(3));
        assert_eq!(node.receive_nice, 0);
        assert_eq!(node.aqm, Aqm::Off);
        let quoted = NodeFile::parse(&format!("{MINIMAL}aqm: \"off\"\n"), Path::new("n.yaml"));
        assert_eq!(quoted.expect("valid").aqm, Aqm::Off);
        let codel = NodeFile::parse(&format!("{MINIMAL}aqm: codel\n"), Path::new("n.yaml"));
        assert_eq!(codel.expect("valid").aqm, Aqm::Codel);
        // A bare `off` is YAML 1.1's false; where `off` is a keyword it means off.
        let bare = NodeFile::parse(&format!("{MINIMAL}mss_clamp: off\n"), Path::new("n.yaml"));
        assert_eq!(bare.expect("valid").mss_clamp, MssClamp::Off);
        assert_eq!(messages(&format!("{MINIMAL}mss_clamp: true\n")).len(), 1);
        assert_eq!(messages(&format!("{MINIMAL}workers: off\n")).len(), 1);
        let found = messages(&format!("{MINIMAL}offload: 1\n"));
        assert_eq!(
            found,
            ["/etc/vixp/node.yaml:4: offload: expected true or false, found 1"]
        );
        let found = messages(&format!("{MINIMAL}receive_nice: -21\n"));
        assert_eq!(
            found,
            [
                "/etc/vixp/node.yaml:4: receive_nice: -21 is out of range; use a nice value from -20 \
             (first) to 19 (last); 0 leaves them as the process"
            ]
        );
        let found = messages(&format!("{MINIMAL}aqm: red\n"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("/etc/vixp/node.yaml:4: aqm: ")
                && found[0].contains("codel or off"),
            "{found:?}"
        );
    }

    #[test]
    fn mss_clamp_and_workers_take_keywords_or_numbers() {
        let node = NodeFile::parse(
            &format!("{MINIMAL}mss_clamp: auto\nworkers: auto\n"),
            Path::new("n.yaml"),
        )
        .expect("valid");
        assert_eq!(node.mss_clamp, MssClamp::Auto);
        assert_eq!(node.workers, None);
        assert_eq!(
            node.mss_clamp.limit(1420),
            Some(MssLimit {
                ipv4: 1380,
                ipv6: 1360
            })
        );
        assert_eq!(MssClamp::Off.limit(1420), None);
        let found = messages(&format!("{MINIMAL}mss_clamp: 100\nworkers: many\n"));
        assert_eq!(
            found,
            [
                "/etc/vixp/node.yaml:4: mss_clamp: 100 is out of range; use auto, off or an MSS \
                 of 536-65495 bytes",
                "/etc/vixp/node.yaml:5: workers: expected auto (one per core) or 1-64 forwarding \
                 workers, found \"many\""
            ]
        );
    }

    #[test]
    fn an_unknown_field_names_the_valid_ones() {
        let found = messages(&format!("{MINIMAL}colour: red\n"));
        assert_eq!(
            found,
            [
                "/etc/vixp/node.yaml:4: colour: unknown field; valid fields: member, \
                 private_key_file, fabric, interface, mtu, listen_port, metrics, control_socket, \
                 persistent_keepalive, offload, mss_clamp, workers, receive_nice, aqm"
            ]
        );
    }

    #[test]
    fn every_bad_value_is_reported_with_its_line() {
        let text = "member: 5\nprivate_key_file: k\nfabric: f\nmtu: 100\ninterface: a/b\n\
                    metrics: nowhere\n";
        let found = messages(text);
        assert_eq!(
            found,
            [
                "/etc/vixp/node.yaml:1: member: expected the member's name in the fabric, e.g. \
                 alpha, found 5",
                "/etc/vixp/node.yaml:4: mtu: 100 is out of range; use an MTU of 1280-65000 bytes",
                "/etc/vixp/node.yaml:5: interface: \"a/b\" is not a valid interface name; use \
                 1-15 characters without '/', ':' or white space, e.g. vixp0",
                "/etc/vixp/node.yaml:6: metrics: expected an IP:port or [IPv6]:port, e.g. \
                 127.0.0.1:9180, found \"nowhere\"",
            ]
        );
    }

    #[test]
    fn missing_required_fields_say_what_to_add() {
        let found = messages("mtu: 1420\n");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("/etc/vixp/node.yaml: member: required but missing;"));
        assert!(found[1].contains("private_key_file: required but missing"));
        assert!(found[2].contains("fabric: required but missing"));
        assert_eq!(messages("").len(), 3);
    }

    #[test]
    fn syntax_errors_and_duplicates_have_a_line() {
        let found = messages("member: [unclosed\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("/etc/vixp/node.yaml:"), "{found:?}");
        let found = messages("member: a\nmember: b\n");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("/etc/vixp/node.yaml:2: member: given twice"),
            "{found:?}"
        );
    }

    #[test]
    fn a_list_where_a_value_belongs_is_a_shape_error() {
        let found = messages(&format!("{MINIMAL}mtu: [1, 2]\n"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("/etc/vixp/node.yaml:4: mtu: expected"),
            "{found:?}"
        );
    }

    #[test]
    fn interface_names_follow_linux() {
        assert!(valid_interface_name("vixp0"));
        assert!(valid_interface_name("a-very-long-nam"));
        assert!(!valid_interface_name("a-very-long-name"));
        assert!(!valid_interface_name(".."));
        assert!(!valid_interface_name("a b"));
    }

    #[test]
    fn the_example_in_configs_parses_with_every_field_as_documented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/node.yaml");
        let node = NodeFile::load(&path).expect("configs/node.yaml is valid");
        assert_eq!(node.member, "alpha");
        assert_eq!(node.fabric, path.with_file_name("fabric.yaml"));
        assert_eq!(node.private_key_file, path.with_file_name("private.key"));
        assert_eq!(node.listen_port, Some(51820));
        assert_eq!(node.control_socket, PathBuf::from("/run/vixp/vixp0.sock"));
        let reference = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/node-reference.md"),
        )
        .expect("docs/node-reference.md");
        for field in FIELDS {
            assert!(
                reference.contains(&format!("### `{field}`")),
                "{field} is not documented"
            );
        }
        for reason in crate::core::DropReason::ALL {
            assert!(
                reference.contains(&format!("`{}`", reason.name())),
                "drop reason {reason} is not documented"
            );
        }
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let path = std::env::temp_dir().join(format!("vixp-node-big-{}", std::process::id()));
        std::fs::write(&path, "#".repeat(100_000)).expect("write");
        let result = NodeFile::load(&path);
        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(result, Err(NodeError::TooLarge { .. })));
    }
}
