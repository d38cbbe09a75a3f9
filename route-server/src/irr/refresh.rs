//! `route-server irr refresh`: runs bgpq4 for each member's AS-SET and writes the member's
//! prefixes and ASNs files atomically (a temporary file in the same directory, then a
//! rename), so a route server reading them at the same moment sees the old file or the new
//! one, never half of one. Owns the bgpq4 command lines; must not touch a running route
//! server (the operator reloads it with SIGHUP).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use vixp_fabric::{Fabric, Irr, Member};

use super::load::{parse_asns, parse_prefixes};

/// How long one bgpq4 run may take before it is abandoned.
pub const DEFAULT_BGPQ4_TIMEOUT: Duration = Duration::from_secs(300);

/// How to run bgpq4.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// The bgpq4 program (a name looked up on PATH, or a path).
    pub bgpq4: PathBuf,
    /// IRR server as bgpq4's `-h host[:port]`; bgpq4's default (rr.ntt.net) when `None`.
    pub server: Option<String>,
    /// Only this member.
    pub member: Option<String>,
    /// Limit on each bgpq4 run.
    pub timeout: Duration,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            bgpq4: PathBuf::from("bgpq4"),
            server: None,
            member: None,
            timeout: DEFAULT_BGPQ4_TIMEOUT,
        }
    }
}

/// What happened to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Files written.
    Written {
        /// Prefix entries written (both families), when a prefixes file was written.
        prefixes: Option<usize>,
        /// ASNs written, when an ASNs file was written.
        asns: Option<usize>,
        /// The files written.
        files: Vec<PathBuf>,
    },
    /// Nothing to do, and why.
    Skipped(String),
    /// bgpq4 failed or its output was unusable; the old files are untouched.
    Failed(String),
}

/// One member's line of the refresh report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    /// Member name.
    pub member: String,
    /// What happened.
    pub outcome: Outcome,
}

impl fmt::Display for MemberReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Written {
                prefixes,
                asns,
                files,
            } => {
                let mut parts = Vec::new();
                if let Some(count) = prefixes {
                    parts.push(format!("{count} prefix entries"));
                }
                if let Some(count) = asns {
                    parts.push(format!("{count} origin ASNs"));
                }
                let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                write!(
                    f,
                    "{}: ok: {} written to {}",
                    self.member,
                    parts.join(" and "),
                    files.join(", ")
                )
            }
            Outcome::Skipped(why) => write!(f, "{}: skipped: {why}", self.member),
            Outcome::Failed(why) => write!(f, "{}: failed: {why}", self.member),
        }
    }
}

/// A problem that stops the whole refresh.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// `--member` names no member of the fabric.
    #[error("no member named {0} in the fabric")]
    UnknownMember(String),
    /// bgpq4 cannot be started.
    #[error(
        "cannot run {program}: {source}; install bgpq4 (apt-get install bgpq4) or pass --bgpq4 PATH"
    )]
    Bgpq4Missing {
        /// The program tried.
        program: String,
        /// Why it could not start.
        source: std::io::Error,
    },
}

/// Refreshes every member with an AS-SET (or the one named in `options`), one after another.
/// Returns one report per member considered; the refresh goes on after a member fails.
pub async fn refresh(
    fabric: &Fabric,
    options: &RefreshOptions,
) -> Result<Vec<MemberReport>, RefreshError> {
    let members: Vec<&Member> = match &options.member {
        Some(name) => vec![
            fabric
                .members
                .iter()
                .find(|member| &member.name == name)
                .ok_or_else(|| RefreshError::UnknownMember(name.clone()))?,
        ],
        None => fabric.members.iter().collect(),
    };
    // Private and documentation ASNs are bogons to bgpq4 unless `-p`; an exchange whose policy
    // accepts them (a lab) needs them expanded too.
    let private = !fabric.policy.reject_private_asns;
    let mut reports = Vec::new();
    for member in members {
        let outcome = match &member.irr {
            None => Outcome::Skipped("no irr block".to_owned()),
            Some(irr) => refresh_member(irr, options, private).await?,
        };
        reports.push(MemberReport {
            member: member.name.clone(),
            outcome,
        });
    }
    Ok(reports)
}

async fn refresh_member(
    irr: &Irr,
    options: &RefreshOptions,
    private: bool,
) -> Result<Outcome, RefreshError> {
    let Some(as_set) = &irr.as_set else {
        return Ok(Outcome::Skipped("no as_set to query".to_owned()));
    };
    if !irr.has_files() {
        return Ok(Outcome::Skipped(format!(
            "{as_set} has no prefixes_file or asns_file to write"
        )));
    }
    let mut common: Vec<String> = Vec::new();
    if let Some(server) = &options.server {
        common.extend(["-h".to_owned(), server.clone()]);
    }
    if !irr.sources.is_empty() {
        common.extend(["-S".to_owned(), irr.sources.join(",")]);
    }
    if private {
        common.push("-p".to_owned());
    }
    let mut prefixes = None;
    let mut asns = None;
    let mut outputs = Vec::new();
    if let Some(path) = &irr.prefixes_file {
        let mut text = String::new();
        for (flag, name) in [("-4", "ipv4"), ("-6", "ipv6")] {
            let arguments = [&common[..], &args([flag, "-j", "-l", name, as_set])].concat();
            match run_bgpq4(options, &arguments).await? {
                Ok(output) => text.push_str(&output),
                Err(message) => return Ok(Outcome::Failed(message)),
            }
        }
        match parse_prefixes(&text) {
            // bgpq4 prints an empty list and exits 0 for an AS-SET the IRR does not know;
            // written, it would refuse every route of the member.
            Ok(ranges) if ranges.is_empty() => {
                return Ok(Outcome::Failed(format!(
                    "the IRR returned no prefixes for {as_set} (an unknown AS-SET, or one without \
                     route objects); the old files stay"
                )));
            }
            Ok(ranges) => prefixes = Some(ranges.len()),
            Err(message) => {
                return Ok(Outcome::Failed(format!("bgpq4 output unusable: {message}")));
            }
        }
        outputs.push((path.clone(), text));
    }
    if let Some(path) = &irr.asns_file {
        let arguments = [&common[..], &args(["-j", "-t", "-l", "asns", as_set])].concat();
        let text = match run_bgpq4(options, &arguments).await? {
            Ok(output) => output,
            Err(message) => return Ok(Outcome::Failed(message)),
        };
        match parse_asns(&text) {
            Ok(list) if list.is_empty() => {
                return Ok(Outcome::Failed(format!(
                    "the IRR returned no origin ASNs for {as_set} (an unknown AS-SET?); the old \
                     files stay"
                )));
            }
            Ok(list) => asns = Some(list.len()),
            Err(message) => {
                return Ok(Outcome::Failed(format!("bgpq4 output unusable: {message}")));
            }
        }
        outputs.push((path.clone(), text));
    }
    // Every query succeeded before anything is written: a member's files change together.
    let mut files = Vec::new();
    for (path, text) in outputs {
        if let Err(error) = write_atomically(&path, text.as_bytes()) {
            return Ok(Outcome::Failed(format!(
                "cannot write {}: {error}",
                path.display()
            )));
        }
        files.push(path);
    }
    Ok(Outcome::Written {
        prefixes,
        asns,
        files,
    })
}

fn args<const N: usize>(list: [&str; N]) -> Vec<String> {
    list.iter().map(|arg| (*arg).to_owned()).collect()
}

/// Runs bgpq4 once. The outer error stops the refresh (no bgpq4); the inner one is this
/// member's failure, in words (unreachable server, unknown AS-SET, timeout).
async fn run_bgpq4(
    options: &RefreshOptions,
    arguments: &[String],
) -> Result<Result<String, String>, RefreshError> {
    let child = Command::new(&options.bgpq4)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| RefreshError::Bgpq4Missing {
            program: options.bgpq4.display().to_string(),
            source,
        })?;
    let command_line = format!("bgpq4 {}", arguments.join(" "));
    let output = match tokio::time::timeout(options.timeout, child.wait_with_output()).await {
        Err(_) => {
            return Ok(Err(format!(
                "{command_line} did not finish within {} s",
                options.timeout.as_secs()
            )));
        }
        Ok(Err(error)) => return Ok(Err(format!("{command_line}: {error}"))),
        Ok(Ok(output)) => output,
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first_error = stderr
        .lines()
        .find(|line| line.starts_with("ERROR:") || line.starts_with("FATAL ERROR:"))
        .map(|line| {
            line.trim_start_matches("FATAL ERROR:")
                .trim_start_matches("ERROR:")
                .trim()
        });
    let unreachable = stderr.contains("Unable to resolve")
        || stderr.contains("All attempts to connect")
        || stderr.contains("EOF from IRRd");
    if unreachable {
        let server = options
            .server
            .as_deref()
            .unwrap_or("rr.ntt.net (bgpq4's default)");
        return Ok(Err(format!(
            "cannot query the IRR server {server}: {}; check the network or pass --irr-server",
            first_error.unwrap_or("no answer")
        )));
    }
    if !output.status.success() {
        return Ok(Err(format!(
            "{command_line} failed ({}): {}",
            output.status,
            first_error.unwrap_or(stderr.trim())
        )));
    }
    if let Some(error) = first_error {
        return Ok(Err(format!("{command_line}: {error}")));
    }
    String::from_utf8(output.stdout).map(Ok).or_else(|_| {
        Ok(Err(format!(
            "{command_line} printed something that is not UTF-8"
        )))
    })
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so readers see the old file or the new one. Creates the directory if needed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(directory) if !directory.as_os_str().is_empty() => directory.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&directory)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = directory.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let directory = std::env::temp_dir().join(format!("vixp-irr-write-{}", std::process::id()));
        let path = directory.join("sub/alpha.json");
        write_atomically(&path, b"old").expect("first write");
        write_atomically(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let entries: Vec<_> = std::fs::read_dir(directory.join("sub"))
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(entries, ["alpha.json"]);
        // A path whose parent is a file cannot be written, and nothing is left behind.
        assert!(write_atomically(&path.join("x"), b"data").is_err());
        std::fs::remove_dir_all(&directory).expect("clean up");
    }

    #[test]
    fn reports_read_as_sentences() {
        let written = MemberReport {
            member: "alpha".to_owned(),
            outcome: Outcome::Written {
                prefixes: Some(3),
                asns: Some(2),
                files: vec![PathBuf::from("irr/a.json"), PathBuf::from("irr/b.json")],
            },
        };
        assert_eq!(
            written.to_string(),
            "alpha: ok: 3 prefix entries and 2 origin ASNs written to irr/a.json, irr/b.json"
        );
        let skipped = MemberReport {
            member: "bravo".to_owned(),
            outcome: Outcome::Skipped("no irr block".to_owned()),
        };
        assert_eq!(skipped.to_string(), "bravo: skipped: no irr block");
    }
}
