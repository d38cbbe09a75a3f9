//! Reading a JSON export of validated payload: rpki-client's `-j` output
//! (`{"roas": [{"asn": 64496, "prefix": "192.0.2.0/24", "maxLength": 24, ...}],
//! "aspas": [{"customer_asid": 64496, "providers": [64497]}]}`) and Routinator's `jsonext`
//! (`"asn": "AS64496"`, `"customer": "AS64496"`, `"providers": ["AS64497"]`). A file with
//! any malformed entry is refused whole, with the entry named: the caller keeps the payload it
//! had. Must not fetch anything over the network.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use super::vrps::{Aspas, Vrp, VrpSet};

/// Largest VRP file read, in bytes: the global table is about 100 MB as `jsonext`.
pub const MAX_VRP_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a VRP file was refused.
#[derive(Debug, Error)]
pub enum VrpFileError {
    /// The file could not be read.
    #[error("{path}: cannot read the VRP file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_VRP_FILE_BYTES`].
    #[error(
        "{path}: {size} bytes is larger than the {MAX_VRP_FILE_BYTES} bytes a VRP file may have"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Not JSON, or not the shape of an rpki-client or Routinator export.
    #[error(
        "{path}:{line}:{column}: not a JSON VRP export ({message}); expected rpki-client -j or \
         Routinator jsonext: {{\"roas\": [{{\"asn\": 64496, \"prefix\": \"192.0.2.0/24\", \
         \"maxLength\": 24}}]}}"
    )]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// One entry has a value out of its range.
    #[error("{path}: {list}[{index}]: {problem}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// `roas` or `aspas`.
        list: &'static str,
        /// 0-based index in the list.
        index: usize,
        /// What is wrong and what is valid.
        problem: String,
    },
}

/// An ASN written as a number (rpki-client) or as `AS64496` (Routinator).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JsonAsn {
    Number(u64),
    Text(String),
}

impl JsonAsn {
    fn value(&self) -> Result<u32, String> {
        let number = match self {
            JsonAsn::Number(number) => u32::try_from(*number).ok(),
            JsonAsn::Text(text) => text
                .strip_prefix("AS")
                .or_else(|| text.strip_prefix("as"))
                .unwrap_or(text)
                .parse()
                .ok(),
        };
        number.ok_or_else(|| match self {
            JsonAsn::Number(number) => {
                format!("ASN {number} is out of range; use 0-4294967295")
            }
            JsonAsn::Text(text) => {
                format!("ASN {text:?} is not an AS number; use 64496 or \"AS64496\"")
            }
        })
    }
}

#[derive(Debug, Deserialize)]
struct JsonRoa {
    asn: JsonAsn,
    prefix: String,
    #[serde(rename = "maxLength")]
    max_length: u8,
}

#[derive(Debug, Deserialize)]
struct JsonAspa {
    #[serde(alias = "customer_asid")]
    customer: JsonAsn,
    providers: Vec<JsonAsn>,
}

#[derive(Debug, Deserialize)]
struct JsonExport {
    roas: Vec<JsonRoa>,
    #[serde(default)]
    aspas: Vec<JsonAspa>,
}

/// Parses an export already in memory; `path` only names it in errors.
pub fn parse(text: &[u8], path: &Path) -> Result<VrpSet, VrpFileError> {
    let export: JsonExport = serde_json::from_slice(text).map_err(|error| VrpFileError::Json {
        path: path.to_path_buf(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })?;
    let entry = |list, index, problem| VrpFileError::Entry {
        path: path.to_path_buf(),
        list,
        index,
        problem,
    };
    let mut vrps = Vec::with_capacity(export.roas.len());
    for (index, roa) in export.roas.iter().enumerate() {
        let asn = roa
            .asn
            .value()
            .map_err(|problem| entry("roas", index, problem))?;
        let prefix: IpNet = roa.prefix.parse().map_err(|_| {
            entry(
                "roas",
                index,
                format!(
                    "prefix {:?} is not a prefix; use one like \"192.0.2.0/24\" or \
                     \"2001:db8::/32\"",
                    roa.prefix
                ),
            )
        })?;
        if prefix.trunc() != prefix {
            return Err(entry(
                "roas",
                index,
                format!("prefix {prefix} has host bits set; use {}", prefix.trunc()),
            ));
        }
        if roa.max_length < prefix.prefix_len() || roa.max_length > prefix.max_prefix_len() {
            return Err(entry(
                "roas",
                index,
                format!(
                    "maxLength {} is out of range for {prefix}; use {}-{}",
                    roa.max_length,
                    prefix.prefix_len(),
                    prefix.max_prefix_len()
                ),
            ));
        }
        vrps.push(Vrp {
            prefix,
            max_length: roa.max_length,
            asn,
        });
    }
    let mut aspas = Aspas::default();
    for (index, aspa) in export.aspas.iter().enumerate() {
        let customer = aspa
            .customer
            .value()
            .map_err(|problem| entry("aspas", index, problem))?;
        let providers = aspa
            .providers
            .iter()
            .map(JsonAsn::value)
            .collect::<Result<Vec<u32>, String>>()
            .map_err(|problem| entry("aspas", index, problem))?;
        aspas.entry(customer).or_default().extend(providers);
    }
    Ok(VrpSet::new(vrps, aspas))
}

/// Reads and parses the export at `path`.
pub fn load(path: &Path) -> Result<VrpSet, VrpFileError> {
    let read = |source| VrpFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_VRP_FILE_BYTES {
        return Err(VrpFileError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let text = std::fs::read(path).map_err(read)?;
    parse(&text, path)
}

#[cfg(test)]
mod tests {
    use vixp_bgp::Family;

    use super::*;
    use crate::rpki::OriginState;

    fn parsed(text: &str) -> Result<VrpSet, String> {
        parse(text.as_bytes(), Path::new("vrps.json")).map_err(|error| error.to_string())
    }

    #[test]
    fn rpki_client_format_is_read() {
        let set = parsed(
            r#"{"metadata": {"buildtime": "2026-11-21T18:00:00Z", "roas": 2},
               "roas": [
                 {"asn": 64510, "prefix": "198.18.0.0/16", "maxLength": 24, "ta": "lab", "expires": 1},
                 {"asn": 64511, "prefix": "fd00:10::/32", "maxLength": 48, "ta": "lab", "expires": 1}
               ],
               "aspas": [{"customer_asid": 64510, "expires": 1, "providers": [64501, 64502]}]}"#,
        )
        .expect("valid export");
        assert_eq!(set.count(Family::Ipv4), 1);
        assert_eq!(set.count(Family::Ipv6), 1);
        assert_eq!(set.aspas().get(&64510), Some(&vec![64501, 64502]));
        assert_eq!(
            set.validate(&"198.18.3.0/24".parse().expect("valid"), Some(64510)),
            OriginState::Valid
        );
    }

    #[test]
    fn routinator_jsonext_format_is_read() {
        let set = parsed(
            r#"{"metadata": {"generated": 1}, "roas": [
                 {"asn": "AS64510", "prefix": "198.18.0.0/16", "maxLength": 16,
                  "source": [{"type": "roa", "uri": "rsync://x/y.roa"}]}],
               "routerKeys": [],
               "aspas": [{"customer": "AS64510", "providers": ["AS64501"], "source": []}]}"#,
        )
        .expect("valid export");
        assert_eq!(set.count(Family::Ipv4), 1);
        assert_eq!(set.aspa_count(), 1);
        assert_eq!(set.aspas().get(&64510), Some(&vec![64501]));
    }

    #[test]
    fn malformed_files_are_refused_with_the_place_and_the_valid_form() {
        assert_eq!(
            parsed(r#"{"roas": [{"asn": 64510, "prefix": "198.18.0.0/16", "maxLength": 8}]}"#),
            Err(
                "vrps.json: roas[0]: maxLength 8 is out of range for 198.18.0.0/16; use 16-32"
                    .to_owned()
            )
        );
        assert_eq!(
            parsed(r#"{"roas": [{"asn": "ASX", "prefix": "198.18.0.0/16", "maxLength": 16}]}"#),
            Err(
                "vrps.json: roas[0]: ASN \"ASX\" is not an AS number; use 64496 or \"AS64496\""
                    .to_owned()
            )
        );
        assert_eq!(
            parsed(r#"{"roas": [{"asn": 1, "prefix": "198.18.0.1/16", "maxLength": 16}]}"#),
            Err(
                "vrps.json: roas[0]: prefix 198.18.0.1/16 has host bits set; use 198.18.0.0/16"
                    .to_owned()
            )
        );
        let truncated = parsed("{\"roas\": [\n{\"asn\": 1,").expect_err("truncated");
        assert!(truncated.starts_with("vrps.json:2:"), "{truncated}");
        assert!(truncated.contains("expected rpki-client -j"), "{truncated}");
        let not_export = parsed(r#"{"vrps": []}"#).expect_err("no roas");
        assert!(not_export.contains("missing field `roas`"), "{not_export}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = load(Path::new("/nonexistent/vixp-vrps.json"))
            .expect_err("missing")
            .to_string();
        assert!(
            error.starts_with("/nonexistent/vixp-vrps.json: cannot read the VRP file"),
            "{error}"
        );
    }

    #[test]
    fn half_a_million_vrps_parse_quickly() {
        let mut text = String::from("{\"roas\": [");
        for index in 0..500_000u32 {
            if index > 0 {
                text.push(',');
            }
            let [a, b, c, _] = (0x0a00_0000u32 + (index << 8)).to_be_bytes();
            text.push_str(&format!(
                "{{\"asn\": {}, \"prefix\": \"{a}.{b}.{c}.0/24\", \"maxLength\": 24, \"ta\": \"x\"}}",
                64_512 + index % 1000
            ));
        }
        text.push_str("]}");
        let start = std::time::Instant::now();
        let set = parse(text.as_bytes(), Path::new("big.json")).expect("valid");
        eprintln!(
            "500k VRPs ({} bytes) parsed in {:?}",
            text.len(),
            start.elapsed()
        );
        assert_eq!(set.count(Family::Ipv4), 500_000);
    }
}
