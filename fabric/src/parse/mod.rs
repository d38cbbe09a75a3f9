//! Reading fabric.yaml: YAML with limits against hostile input, then the raw shape, then the
//! rules. Owns [`Fabric::load`] and [`Fabric::parse`]; must not open sockets or act on the
//! fabric it reads.

mod convert;
mod raw;
mod values;

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use serde_path_to_error::Segment;
use serde_saphyr::budget::{BudgetBreach, EnforcingPolicy, check_yaml_budget};
use serde_saphyr::{Budget, Error as YamlError, Options, Spanned};

use crate::error::{FabricError, Problem, ProblemKind};
use crate::model::Fabric;
use raw::RawFabric;

/// Largest fabric file accepted, in bytes. A fabric of 5,000 fully described members is about
/// 1.3 MB.
pub const MAX_FABRIC_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Limits on the YAML itself: generous for any real exchange, small enough that an alias bomb
/// ("billion laughs"), a deeply nested file or a document storm is refused in milliseconds.
fn yaml_budget() -> Budget {
    let mut budget = Budget::default();
    budget.max_depth = 16;
    budget.max_documents = 1;
    budget.max_events = 2_000_000;
    budget.max_nodes = 500_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_total_scalar_bytes = 8 * 1024 * 1024;
    // Once 64 aliases are used, there must be one anchor per 4 aliases: the classic bomb has
    // 10 anchors and 90 aliases, a fabric file sharing a few blocks has far fewer.
    budget.enforce_alias_anchor_ratio = true;
    budget.alias_anchor_min_aliases = 64;
    budget.alias_anchor_ratio_multiplier = 4;
    budget
}

/// Parser options: the budget above, bounded alias replay, no source snippets in messages.
fn yaml_options() -> Options {
    let mut options = Options::default();
    options.budget = Some(yaml_budget());
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 8;
    options.with_snippet = false;
    options
}

/// A limit breach in words.
fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Aliases { aliases } => format!("{aliases} aliases is more than allowed"),
        BudgetBreach::Anchors { anchors } => format!("{anchors} anchors is more than allowed"),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases for {anchors} anchors looks like an alias bomb")
        }
        BudgetBreach::Depth { depth } => format!("nesting depth {depth} is more than allowed"),
        BudgetBreach::Documents { documents } => {
            format!("{documents} YAML documents; a fabric file is one document")
        }
        BudgetBreach::Events { events } => format!("{events} YAML events is more than allowed"),
        BudgetBreach::Nodes { nodes } => format!("{nodes} YAML nodes is more than allowed"),
        BudgetBreach::ScalarBytes { total_scalar_bytes } => {
            format!("{total_scalar_bytes} bytes of values is more than allowed")
        }
        other => format!("input exceeds a parser limit ({other:?})"),
    }
}

/// Scans the raw YAML events before deserializing: a syntax error is reported with its line
/// whatever the schema expects there, and an alias bomb is refused wherever it sits in the
/// file, before any alias is expanded.
fn prescan(text: &str, source: &Path) -> Option<Problem> {
    let (line, kind) = match check_yaml_budget(text, yaml_budget(), EnforcingPolicy::AllContent) {
        Ok(report) => (
            0,
            ProblemKind::Limit {
                message: describe_breach(&report.breached?),
            },
        ),
        Err(error) => (
            u64::try_from(error.marker().line()).unwrap_or(u64::MAX),
            ProblemKind::Syntax {
                message: error.info().to_owned(),
            },
        ),
    };
    Some(Problem {
        file: source.to_path_buf(),
        line,
        path: String::new(),
        kind,
    })
}

/// A YAML node kind as an operator calls it.
fn node_word(parser_word: &str) -> &str {
    match parser_word {
        "mapping start" | "map" | "mapping" => "a map of fields",
        "sequence start" | "sequence" | "seq" => "a list",
        other => other,
    }
}

impl Fabric {
    /// Reads and validates the fabric file at `path`.
    ///
    /// Files larger than [`MAX_FABRIC_FILE_BYTES`] are refused without being read in full.
    pub fn load(path: &Path) -> Result<Fabric, FabricError> {
        let read_error = |source| FabricError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let size = file.metadata().map_err(read_error)?.len();
        let too_large = |size| FabricError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FABRIC_FILE_BYTES,
        };
        if size > MAX_FABRIC_FILE_BYTES {
            return Err(too_large(size));
        }
        let mut text = String::new();
        // The file may grow between the size check and the read: read one byte past the limit
        // at most, so that growth is noticed without reading the rest.
        let read = file
            .take(MAX_FABRIC_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if read as u64 > MAX_FABRIC_FILE_BYTES {
            return Err(too_large(read as u64));
        }
        Self::parse(&text, path)
    }

    /// Validates fabric text; `source` names the file in messages.
    ///
    /// Every problem of the content is reported, each with its line and field path; a YAML
    /// syntax error stops parsing and is reported alone.
    pub fn parse(text: &str, source: &Path) -> Result<Fabric, FabricError> {
        if text.len() as u64 > MAX_FABRIC_FILE_BYTES {
            return Err(FabricError::TooLarge {
                path: source.to_path_buf(),
                size: text.len() as u64,
                limit: MAX_FABRIC_FILE_BYTES,
            });
        }
        if let Some(problem) = prescan(text, source) {
            return Err(FabricError::Invalid {
                problems: vec![problem],
            });
        }
        let mut error_path = None;
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(
            text,
            yaml_options(),
            |deserializer| {
                serde_path_to_error::deserialize::<_, Spanned<RawFabric>>(deserializer).map_err(
                    |error| {
                        error_path = Some(error.path().clone());
                        error.into_inner()
                    },
                )
            },
        );
        let raw = match parsed {
            Ok(raw) => raw,
            Err(error) => {
                let problem = yaml_problem(text, &error, error_path.as_ref(), source);
                return Err(FabricError::Invalid {
                    problems: vec![problem],
                });
            }
        };
        convert::convert(&raw, source).map_err(|problems| FabricError::Invalid { problems })
    }
}

/// The field path of a serde error, without the `value` segments that `Spanned` adds.
fn field_path(path: &serde_path_to_error::Path, unknown_field: Option<&str>) -> String {
    let segments: Vec<&Segment> = path.iter().collect();
    let mut text = String::new();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        match segment {
            Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                // `Spanned<T>` reads its inner value under the key `value`; no fabric field
                // has that name, so only an unknown key by that name is kept.
                if key == "value" && !(last && unknown_field == Some("value")) {
                    continue;
                }
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    text
}

/// One problem from a YAML error: syntax, shape (unknown key, map where a list belongs) or a
/// limit against hostile input.
fn yaml_problem(
    text: &str,
    error: &YamlError,
    path: Option<&serde_path_to_error::Path>,
    source: &Path,
) -> Problem {
    let error = error.without_snippet();
    let line = error.location().map_or(0, |location| location.line());
    let unknown_field = match error {
        YamlError::SerdeUnknownField { field, .. } => Some(field.as_str()),
        _ => None,
    };
    let mut path = path.map_or_else(String::new, |path| field_path(path, unknown_field));
    let kind = match error {
        YamlError::SerdeUnknownField { expected, .. } => ProblemKind::UnknownField {
            valid: expected.clone(),
        },
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => ProblemKind::Shape {
            expected: expected.clone(),
            found: node_word(unexpected).to_owned(),
        },
        YamlError::Unexpected { expected, location } => ProblemKind::Shape {
            expected: node_word(expected).to_owned(),
            found: node_at(text, location.line(), location.column()).to_owned(),
        },
        YamlError::DuplicateMappingKey { key, .. } => {
            if let Some(key) = key {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            ProblemKind::DuplicateKey
        }
        YamlError::Budget { breach, .. } => ProblemKind::Limit {
            message: describe_breach(breach),
        },
        YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. } => ProblemKind::Limit {
            message: strip_location(&error.to_string()),
        },
        other => ProblemKind::Syntax {
            message: strip_location(&other.to_string()),
        },
    };
    Problem {
        file: source.to_path_buf(),
        line,
        path,
        kind,
    }
}

/// What kind of node starts at a 1-based line and column, judged from its first characters;
/// the parser says what it expected but not what it found.
fn node_at(text: &str, line: u64, column: u64) -> &'static str {
    let line_text = usize::try_from(line.saturating_sub(1))
        .ok()
        .and_then(|index| text.lines().nth(index))
        .unwrap_or_default();
    let start = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    let rest = line_text
        .char_indices()
        .nth(start)
        .map_or("", |(offset, _)| &line_text[offset..])
        .trim_start();
    if rest.starts_with('[') || rest.starts_with("- ") || rest == "-" {
        "a list"
    } else if rest.starts_with('{') || rest.contains(": ") || rest.ends_with(':') {
        "a map"
    } else {
        "a single value"
    }
}

/// The parser's message without its own `at line X, column Y` suffix (the line is reported
/// in front, as for every problem).
fn strip_location(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or_default();
    match first_line.find(" at line ") {
        Some(index) => first_line[..index].to_owned(),
        None => first_line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn messages(text: &str) -> Vec<String> {
        match Fabric::parse(text, Path::new("f.yaml")) {
            Ok(_) => Vec::new(),
            Err(error) => error.to_string().lines().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn unknown_field_gets_path_line_and_valid_fields() {
        let text = "version: 1\nexchange:\n  name: X\n  colour: red\n";
        assert_eq!(
            messages(text),
            [
                "f.yaml:4: exchange.colour: unknown field; valid fields: name, description, \
              ixf_id, contact"
            ]
        );
    }

    #[test]
    fn unknown_field_in_a_list_entry_has_its_index() {
        let text = "version: 1\nmembers:\n  - name: a\n  - name: b\n    colour: red\n";
        let found = messages(text);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(
                "f.yaml:5: members[1].colour: unknown field; valid fields: name, asn,"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_map_where_a_list_belongs_is_a_shape_error() {
        let found = messages("version: 1\nmembers:\n  alpha: 1\n");
        assert_eq!(
            found,
            [
                "f.yaml:3: members: expected a list, found a map; see docs/fabric-reference.md for \
              the layout"
            ]
        );
    }

    #[test]
    fn node_kinds_are_named_from_the_text() {
        let text = "a: [1]\nb:\n  - 1\nc: {x: 1}\nd:\n  x: 1\ne: 5\n";
        assert_eq!(node_at(text, 1, 4), "a list");
        assert_eq!(node_at(text, 3, 3), "a list");
        assert_eq!(node_at(text, 4, 4), "a map");
        assert_eq!(node_at(text, 6, 3), "a map");
        assert_eq!(node_at(text, 7, 4), "a single value");
        assert_eq!(node_at(text, 99, 1), "a single value");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let found = messages("version: 1\nexchange:\n  name: [unclosed\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("f.yaml:"), "{found:?}");
        assert!(!found[0].starts_with("f.yaml: "), "no line in {found:?}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let found = messages("version: 1\nversion: 1\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("f.yaml:2:"), "{found:?}");
    }

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
        for level in 1..=9 {
            let previous = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, \
                 *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
            ));
        }
        let started = Instant::now();
        let found = messages(&text);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("looks like an alias bomb"), "{found:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("version: {}1{}\n", "[".repeat(200), "]".repeat(200));
        let found = messages(&text);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("refused as hostile input"), "{found:?}");
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let size = usize::try_from(MAX_FABRIC_FILE_BYTES).unwrap_or(usize::MAX);
        let text = "#".repeat(size + 1);
        let error = Fabric::parse(&text, Path::new("big.yaml")).expect_err("too large");
        assert!(matches!(error, FabricError::TooLarge { .. }));
        assert!(error.to_string().starts_with("big.yaml: file is "));
    }

    #[test]
    fn load_reports_unreadable_files() {
        let error = Fabric::load(Path::new("/nonexistent/vixp/fabric.yaml")).expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/vixp/fabric.yaml: cannot read: "),
            "{error}"
        );
    }

    #[test]
    fn load_refuses_a_100_mb_file_without_reading_it() {
        let path =
            std::env::temp_dir().join(format!("vixp-fabric-big-{}.yaml", std::process::id()));
        let file = File::create(&path).expect("temp file");
        file.set_len(100 * 1024 * 1024).expect("sparse file");
        let started = Instant::now();
        let result = Fabric::load(&path);
        let elapsed = started.elapsed();
        std::fs::remove_file(&path).expect("remove temp file");
        assert!(
            matches!(result, Err(FabricError::TooLarge { size, .. }) if size == 100 * 1024 * 1024)
        );
        assert!(elapsed < Duration::from_secs(1));
    }

    #[test]
    fn empty_file_reports_missing_version() {
        let found = messages("");
        assert!(!found.is_empty());
    }
}
