//! Reading the IRR files a fabric names (bgpq4's JSON output) into each member's
//! [`IrrData`]. Owns the file format; must not run bgpq4 (`refresh` does) nor apply the data
//! to routes (`policy::filters::irr` does).
//!
//! A prefixes file is one or more JSON documents as `bgpq4 -j -l NAME` prints them, e.g. the
//! output of `bgpq4 -j -4 -l ipv4 AS-X` followed by that of `bgpq4 -j -6 -l ipv6 AS-X`:
//!
//! ```json
//! { "ipv4": [
//!     { "prefix": "198.18.10.0\/24", "exact": true },
//!     { "prefix": "198.18.16.0\/20", "exact": false, "less-equal": 24 },
//!     { "prefix": "198.18.32.0\/20", "exact": false, "greater-equal": 22, "less-equal": 24 }
//! ] }
//! ```
//!
//! An ASNs file is one or more documents as `bgpq4 -j -t -l NAME` prints them:
//! `{"asns": [64501, 64510]}`. List names are free; every list of a document is read.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use vixp_fabric::{Asn, AsnSet, Fabric, PrefixRange, PrefixSet};

/// Largest IRR file read, in bytes: a 1,000,000-entry prefix list is about 60 MB.
pub const MAX_IRR_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// An IRR file that cannot be used, with where the fabric names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message} (named by {field} of member {member})", path.display())]
pub struct IrrFileError {
    /// The file.
    pub path: PathBuf,
    /// The member whose file it is.
    pub member: String,
    /// The fabric field naming it, e.g. `members[0].irr.prefixes_file`.
    pub field: String,
    /// What is wrong, with the line and column for a format error.
    pub message: String,
}

/// One entry of a bgpq4 JSON prefix list, exactly the fields bgpq4 writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    prefix: String,
    exact: bool,
    #[serde(rename = "greater-equal")]
    greater_equal: Option<u8>,
    #[serde(rename = "less-equal")]
    less_equal: Option<u8>,
}

/// A validated entry; conversion errors carry serde_json's line and column.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawEntry")]
struct Entry(PrefixRange);

impl TryFrom<RawEntry> for Entry {
    type Error = String;

    fn try_from(raw: RawEntry) -> Result<Entry, String> {
        let prefix: ipnet::IpNet = raw
            .prefix
            .parse()
            .map_err(|_| format!("{:?} is not a prefix like 198.18.0.0/24", raw.prefix))?;
        let range = match (raw.exact, raw.greater_equal, raw.less_equal) {
            (true, None, None) => PrefixRange::exact(prefix),
            (true, _, _) => {
                return Err(format!(
                    "{prefix}: an exact entry has no greater-equal or less-equal"
                ));
            }
            (false, None, None) => {
                return Err(format!(
                    "{prefix}: a non-exact entry needs less-equal or greater-equal"
                ));
            }
            (false, min, max) => PrefixRange::new(
                prefix,
                min.unwrap_or(prefix.prefix_len()),
                max.unwrap_or(prefix.max_prefix_len()),
            ),
        };
        range.map(Entry).map_err(|error| error.to_string())
    }
}

/// Reads a whole file, refusing one larger than [`MAX_IRR_FILE_BYTES`].
fn read_text(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|error| format!("cannot read: {error}"))?;
    let mut text = String::new();
    let read = file
        .take(MAX_IRR_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read: {error}"))?;
    if read as u64 > MAX_IRR_FILE_BYTES {
        return Err(format!(
            "larger than {MAX_IRR_FILE_BYTES} bytes; no IRR list is that big"
        ));
    }
    Ok(text)
}

/// Every list of every document in `text`, in order; an empty text is an error (bgpq4 always
/// prints a document, even for an empty list).
fn documents<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    let mut count = 0usize;
    for document in serde_json::Deserializer::from_str(text).into_iter::<BTreeMap<String, Vec<T>>>()
    {
        let document =
            document.map_err(|error| format!("not {what} as bgpq4 -j prints it: {error}"))?;
        count += 1;
        items.extend(document.into_values().flatten());
    }
    if count == 0 {
        return Err(format!("empty; expected {what} as bgpq4 -j prints it"));
    }
    Ok(items)
}

/// Parses prefix lists (`bgpq4 -j` output, one or more documents).
pub fn parse_prefixes(text: &str) -> Result<Vec<PrefixRange>, String> {
    let entries: Vec<Entry> = documents(text, "a prefix list")?;
    Ok(entries.into_iter().map(|Entry(range)| range).collect())
}

/// Parses origin ASN lists (`bgpq4 -j -t` output, one or more documents).
pub fn parse_asns(text: &str) -> Result<Vec<Asn>, String> {
    let asns: Vec<u32> = documents(text, "an ASN list")?;
    Ok(asns.into_iter().map(Asn).collect())
}

/// Reads a prefixes file.
pub fn read_prefixes(path: &Path) -> Result<Vec<PrefixRange>, String> {
    parse_prefixes(&read_text(path)?)
}

/// Reads an ASNs file.
pub fn read_asns(path: &Path) -> Result<Vec<Asn>, String> {
    parse_asns(&read_text(path)?)
}

/// What [`load`] read, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Members whose files were read.
    pub members: usize,
    /// Prefix entries read from files.
    pub prefixes: usize,
    /// ASNs read from files.
    pub asns: usize,
}

impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IRR files of {} member(s): {} prefix entries, {} origin ASNs",
            self.members, self.prefixes, self.asns
        )
    }
}

/// Reads every member's IRR files and fills its `irr.data` with the file lists merged with
/// the inline ones. Every unusable file is reported; on any error the fabric is left as it
/// was read (callers refuse it).
pub fn load(fabric: &mut Fabric) -> Result<Loaded, Vec<IrrFileError>> {
    let mut errors = Vec::new();
    let mut loaded = Loaded::default();
    let mut filled = Vec::new();
    for (index, member) in fabric.members.iter().enumerate() {
        let Some(irr) = &member.irr else { continue };
        if !irr.has_files() {
            continue;
        }
        let error = |path: &Path, field: &str, message: String| IrrFileError {
            path: path.to_path_buf(),
            member: member.name.clone(),
            field: format!("members[{index}].irr.{field}"),
            message,
        };
        let mut data = irr.inline_data();
        let mut ok = true;
        if let Some(path) = &irr.prefixes_file {
            match read_prefixes(path) {
                Ok(ranges) => {
                    loaded.prefixes += ranges.len();
                    data.prefixes =
                        Some(PrefixSet::new(irr.prefixes.iter().copied().chain(ranges)));
                }
                Err(message) => {
                    errors.push(error(path, "prefixes_file", message));
                    ok = false;
                }
            }
        }
        if let Some(path) = &irr.asns_file {
            match read_asns(path) {
                Ok(asns) => {
                    loaded.asns += asns.len();
                    data.origins = Some(AsnSet::new(irr.origins.iter().copied().chain(asns)));
                }
                Err(message) => {
                    errors.push(error(path, "asns_file", message));
                    ok = false;
                }
            }
        }
        if ok {
            loaded.members += 1;
            filled.push((index, Arc::new(data)));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for (index, data) in filled {
        if let Some(irr) = fabric
            .members
            .get_mut(index)
            .and_then(|member| member.irr.as_mut())
        {
            irr.data = Some(data);
        }
    }
    Ok(loaded)
}

/// [`Fabric::load`] followed by [`load`]: the fabric the route server runs with. Errors are
/// one message, one problem per line.
pub fn load_fabric(path: &Path) -> Result<(Fabric, Loaded), String> {
    let mut fabric = Fabric::load(path).map_err(|error| error.to_string())?;
    let loaded = load(&mut fabric).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok((fabric, loaded))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// bgpq4 1.9's own output for a set with one exact prefix and two aggregates
    /// (`bgpq4 -j -A -l ipv4 ...`), followed by its IPv6 list, as refresh writes it.
    const BGPQ4_OUTPUT: &str = "{ \"ipv4\": [\n    { \"prefix\": \"198.18.10.0\\/24\", \"exact\": true },\n    { \"prefix\": \"198.18.16.0\\/20\", \"exact\": false, \"less-equal\": 24 },\n    { \"prefix\": \"198.18.32.0\\/20\", \"exact\": false,\n      \"greater-equal\": 22, \"less-equal\": 24 }\n] }\n{ \"ipv6\": [\n    { \"prefix\": \"fd00:10::\\/48\", \"exact\": true }\n] }\n";

    #[test]
    fn bgpq4_prefix_output_is_read_with_its_ranges() {
        let ranges = parse_prefixes(BGPQ4_OUTPUT).expect("valid");
        let texts: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "198.18.10.0/24",
                "198.18.16.0/20 le 24",
                "198.18.32.0/20 ge 22 le 24",
                "fd00:10::/48"
            ]
        );
    }

    #[test]
    fn bgpq4_asn_output_is_read() {
        let asns = parse_asns("{\"asns\": [\n  64501,64510\n]}\n").expect("valid");
        assert_eq!(asns, [Asn(64501), Asn(64510)]);
        assert_eq!(parse_asns("{\"asns\": [\n]}\n").expect("valid"), []);
    }

    #[test]
    fn malformed_files_say_what_and_where() {
        let cases = [
            ("", "empty; expected a prefix list as bgpq4 -j prints it"),
            (
                "{ \"v4\": [ { \"prefix\": \"198.18.0.0/33\", \"exact\": true } ] }",
                "not a prefix list as bgpq4 -j prints it: \"198.18.0.0/33\" is not a prefix \
                 like 198.18.0.0/24 at line 1 column 56",
            ),
            (
                "{ \"v4\": [ { \"prefix\": \"198.18.0.0/16\", \"exact\": false } ] }",
                "not a prefix list as bgpq4 -j prints it: 198.18.0.0/16: a non-exact entry \
                 needs less-equal or greater-equal at line 1 column 57",
            ),
            (
                "{ \"v4\": [ { \"prefix\": \"198.18.0.0/16\", \"exact\": false, \
                 \"less-equal\": 40 } ] }",
                "not a prefix list as bgpq4 -j prints it: lengths 16-40 do not fit \
                 198.18.0.0/16: use prefix length <= ge <= le <= 32 at line 1 column 75",
            ),
            (
                "{ \"v4\": [ { \"prefix\": \"198.18.0.0/16\", \"exact\": true, \"le\": 24 } ] }",
                "not a prefix list as bgpq4 -j prints it: unknown field `le`, expected one of \
                 `prefix`, `exact`, `greater-equal`, `less-equal` at line 1 column 58",
            ),
            (
                "{ \"v4\": [ { \"prefix\": \"198.18.0.0/16\", \"exact\": true }",
                "not a prefix list as bgpq4 -j prints it: EOF while parsing a list at line 1 \
                 column 54",
            ),
        ];
        let mismatches: Vec<String> = cases
            .iter()
            .filter(|(text, expected)| parse_prefixes(text) != Err((*expected).to_owned()))
            .map(|(text, _)| format!("{text}\n  -> {:?}", parse_prefixes(text)))
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        assert_eq!(
            parse_asns("{\"asns\": [64501, \"AS64510\"]}"),
            Err(
                "not an ASN list as bgpq4 -j prints it: invalid type: string \"AS64510\", \
                 expected u32 at line 1 column 26"
                    .to_owned()
            )
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("vixp-irr-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temp dir");
        directory
    }

    const FABRIC_HEAD: &str = "version: 1\nexchange: {name: X}\nlan: {ipv4: 198.18.0.0/24, ipv6: \"fd00::/64\"}\n\
        route_servers:\n  - {name: rs1, asn: 64500, ipv4: 198.18.0.1, public_key: \"yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\"}\n\
        policy: {allow_prefixes: [198.18.0.0/15, \"fd00::/8\"], reject_private_asns: false}\n\
        members:\n  - name: alpha\n    asn: 64501\n    ipv4: 198.18.0.11\n    public_key: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"\n";

    #[test]
    fn load_merges_files_with_inline_lists_and_names_bad_files() {
        let directory = temp_dir("load");
        std::fs::write(directory.join("alpha.prefixes.json"), BGPQ4_OUTPUT).expect("write");
        std::fs::write(directory.join("alpha.asns.json"), "{\"asns\": [64510]}").expect("write");
        let fabric_path = directory.join("fabric.yaml");
        std::fs::write(
            &fabric_path,
            format!(
                "{FABRIC_HEAD}    irr:\n      prefixes_file: alpha.prefixes.json\n      \
                 asns_file: alpha.asns.json\n      prefixes: [\"198.18.99.0/24\"]\n      \
                 origins: [64501]\n"
            ),
        )
        .expect("write");
        let (fabric, loaded) = load_fabric(&fabric_path).expect("loads");
        assert_eq!(
            loaded,
            Loaded {
                members: 1,
                prefixes: 4,
                asns: 1
            }
        );
        let data = fabric.members[0]
            .irr
            .as_ref()
            .and_then(|irr| irr.data.clone())
            .expect("data filled");
        let prefixes = data.prefixes.as_ref().expect("prefixes");
        assert_eq!(prefixes.len(), 5);
        assert!(prefixes.covers(&"198.18.99.0/24".parse().expect("valid")));
        assert!(prefixes.covers(&"198.18.17.0/24".parse().expect("valid")));
        let origins = data.origins.as_ref().expect("origins");
        assert!(origins.contains(64501) && origins.contains(64510));

        std::fs::write(directory.join("alpha.asns.json"), "[64510]").expect("write");
        std::fs::remove_file(directory.join("alpha.prefixes.json")).expect("remove");
        let error = load_fabric(&fabric_path).expect_err("refused");
        let lines: Vec<&str> = error.lines().collect();
        assert_eq!(lines.len(), 2, "{error}");
        assert!(
            lines[0].starts_with(&format!(
                "{}: cannot read: ",
                directory.join("alpha.prefixes.json").display()
            )),
            "{error}"
        );
        assert!(
            lines[0].ends_with("(named by members[0].irr.prefixes_file of member alpha)"),
            "{error}"
        );
        assert_eq!(
            lines[1],
            format!(
                "{}: not an ASN list as bgpq4 -j prints it: invalid type: sequence, expected a \
                 map at line 1 column 0 (named by members[0].irr.asns_file of member alpha)",
                directory.join("alpha.asns.json").display()
            )
        );
        std::fs::remove_dir_all(&directory).expect("clean up");
    }

    /// A 50,000-prefix AS-SET file (bgpq4 format, IPv4 and IPv6, exact and ranged entries):
    /// read, parsed and indexed. Prints the time; the target is well under a second.
    #[test]
    fn a_50k_prefix_file_loads_quickly() {
        let directory = temp_dir("50k");
        let path = directory.join("big.prefixes.json");
        let mut text = String::from("{ \"ipv4\": [");
        for index in 0..40_000u32 {
            let address = std::net::Ipv4Addr::from(0x0b00_0000 + (index << 8));
            let separator = if index == 0 { "" } else { "," };
            if index % 4 == 0 {
                text.push_str(&format!(
                    "{separator}\n    {{ \"prefix\": \"{address}\\/24\", \"exact\": true }}"
                ));
            } else {
                text.push_str(&format!(
                    "{separator}\n    {{ \"prefix\": \"{address}\\/24\", \"exact\": false,\n      \
                     \"greater-equal\": 24, \"less-equal\": 24 }}"
                ));
            }
        }
        text.push_str("\n] }\n{ \"ipv6\": [");
        for index in 0..10_000u32 {
            let separator = if index == 0 { "" } else { "," };
            text.push_str(&format!(
                "{separator}\n    {{ \"prefix\": \"2a00:{index:x}::\\/32\", \"exact\": false, \
                 \"less-equal\": 48 }}"
            ));
        }
        text.push_str("\n] }\n");
        std::fs::write(&path, &text).expect("write");
        let started = Instant::now();
        let ranges = read_prefixes(&path).expect("valid");
        let set = PrefixSet::new(ranges);
        let elapsed = started.elapsed();
        assert_eq!(set.len(), 50_000);
        assert!(set.covers(&"11.0.5.0/24".parse().expect("valid")));
        assert!(set.covers(&"2a00:1f::/40".parse().expect("valid")));
        assert!(!set.covers(&"2a00:1f::/49".parse().expect("valid")));
        println!(
            "IRR file: 50,000 prefixes ({} bytes) read, parsed and indexed in {elapsed:?}",
            text.len()
        );
        std::fs::remove_dir_all(&directory).expect("clean up");
    }
}
