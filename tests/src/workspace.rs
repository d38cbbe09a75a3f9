//! Locating the workspace and the binaries it builds. Owns path resolution only; must not build
//! anything (`scripts/test` builds the binaries before the tests run).

use std::{
    env,
    path::{Path, PathBuf},
};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative paths taken from the workspace
/// root) or `target/` in the workspace root.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The debug build of workspace binary `name`; panics with "run cargo build -p NAME first" if
/// it has not been built.
pub fn binary_path(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} does not exist: run cargo build -p {name} first (scripts/test does)",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = workspace_root().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("read workspace Cargo.toml");
        assert!(text.contains("[workspace]"));
    }

    #[test]
    #[should_panic(expected = "run cargo build -p no-such-binary first")]
    fn missing_binary_says_how_to_build_it() {
        binary_path("no-such-binary");
    }
}
