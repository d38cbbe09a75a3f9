//! NOTICE and the licence allow-list stay in step with Cargo.lock: every third-party crate is
//! listed in NOTICE, and each crate's licence expression is satisfiable with licences that are
//! compatible with GPL-3.0-or-later (the same list as deny.toml).

use std::path::PathBuf;
use std::process::Command;

const ALLOWED: &[&str] = &[
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "ISC",
    "MIT",
    "MPL-2.0",
    "Unicode-3.0",
    "Unlicense",
    "Zlib",
    "GPL-3.0-or-later",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Whether an SPDX expression (with `OR`, `AND`, `/`, `WITH` and parentheses) can be met with
/// the allowed licences. `AND` binds tighter than `OR`, as SPDX says.
fn satisfiable(expression: &str) -> bool {
    let spaced = expression
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut position = 0;
    let result = parse_or(&tokens, &mut position);
    result && position == tokens.len()
}

fn parse_or(tokens: &[&str], position: &mut usize) -> bool {
    let mut any = parse_and(tokens, position);
    while tokens.get(*position) == Some(&"OR") {
        *position += 1;
        any |= parse_and(tokens, position);
    }
    any
}

fn parse_and(tokens: &[&str], position: &mut usize) -> bool {
    let mut all = parse_atom(tokens, position);
    while tokens.get(*position) == Some(&"AND") {
        *position += 1;
        all &= parse_atom(tokens, position);
    }
    all
}

fn parse_atom(tokens: &[&str], position: &mut usize) -> bool {
    match tokens.get(*position) {
        Some(&"(") => {
            *position += 1;
            let inner = parse_or(tokens, position);
            if tokens.get(*position) == Some(&")") {
                *position += 1;
            }
            inner
        }
        Some(name) => {
            *position += 1;
            let mut licence = (*name).to_string();
            if tokens.get(*position) == Some(&"WITH") {
                if let Some(exception) = tokens.get(*position + 1) {
                    licence = format!("{licence} WITH {exception}");
                }
                *position += 2;
            }
            ALLOWED.contains(&licence.as_str())
        }
        None => false,
    }
}

#[test]
fn licence_expressions_are_parsed_as_spdx_says() {
    assert!(satisfiable("MIT OR Apache-2.0"));
    assert!(satisfiable("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(satisfiable("MIT/Apache-2.0"));
    assert!(!satisfiable("GPL-2.0-only"));
    assert!(!satisfiable("MIT AND SSPL-1.0"));
    assert!(satisfiable("SSPL-1.0 OR MIT"));
}

#[test]
fn every_dependency_has_a_gpl_compatible_licence_and_is_in_notice() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--format-version", "1"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let workspace: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .filter_map(|member| member.as_str())
        .collect();
    let notice = std::fs::read_to_string(root().join("NOTICE")).expect("NOTICE exists");
    assert!(notice.contains("WireGuard is a registered trademark of Jason A. Donenfeld"));
    let mut problems = Vec::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let id = package["id"].as_str().unwrap_or_default();
        if workspace.contains(&id) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default();
        let version = package["version"].as_str().unwrap_or_default();
        let licence = package["license"].as_str().unwrap_or("(none)");
        if !satisfiable(licence) {
            problems.push(format!(
                "{name} {version}: licence {licence} is not allowed"
            ));
        }
        if !notice.contains(&format!("{name} {version}\n")) {
            problems.push(format!(
                "{name} {version}: missing from NOTICE (run scripts/notice)"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
