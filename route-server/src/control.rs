//! The route server's local control socket: where it lives, what `route-server reload` asks and
//! what the running server answers, and the client side of that exchange. The HTTP API is
//! read-only; this socket (a unix socket, mode 0600, in the runtime directory) is the one way
//! to change a running route server, as `birdc configure` is for BIRD. Must not hold routing
//! logic; the server side is `driver/control.rs`.
//!
//! Protocol: the client connects, writes one command line (`reload`), and reads one line of
//! JSON, a [`ReloadReport`], after which the server closes the connection.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

/// Default runtime directory holding one control socket per route server, `<name>.sock`
/// (systemd: `RuntimeDirectory=vixp-route-server`).
pub const DEFAULT_RUNTIME_DIR: &str = "/run/vixp-route-server";
/// The command that reloads the fabric file.
pub const RELOAD: &str = "reload";
/// How long a client waits for the answer: a reload re-evaluates every stored route.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The control socket of route server `name` in `runtime_dir`.
pub fn socket_path(runtime_dir: &Path, name: &str) -> PathBuf {
    runtime_dir.join(format!("{name}.sock"))
}

/// Where the control socket is: the same flags for `run` and `reload`.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlArgs {
    /// Runtime directory; the control socket is `<DIR>/<route server name>.sock`.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNTIME_DIR)]
    pub runtime_dir: PathBuf,
    /// The control socket itself (instead of one in --runtime-dir).
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
}

impl ControlArgs {
    /// Where route server `name`'s control socket goes, and whether the operator named it.
    pub fn place(&self, name: &str) -> crate::driver::SocketPlace {
        crate::driver::SocketPlace {
            path: self
                .control_socket
                .clone()
                .unwrap_or_else(|| socket_path(&self.runtime_dir, name)),
            explicit: self.control_socket.is_some()
                || self.runtime_dir != Path::new(DEFAULT_RUNTIME_DIR),
        }
    }
}

/// `route-server reload`: asks the running route server to reload its fabric file and prints
/// its report; exit status 1 when the reload was refused or the server could not be reached.
pub fn reload_command(
    config: &Path,
    wanted: Option<&str>,
    control: &ControlArgs,
    json: bool,
) -> ExitCode {
    let result = (|| -> anyhow::Result<ReloadReport> {
        let path = match (&control.control_socket, wanted) {
            (Some(path), _) => path.clone(),
            (None, Some(name)) => socket_path(&control.runtime_dir, name),
            (None, None) => {
                let fabric = vixp_fabric::Fabric::load(config)
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
                let Some(route_server) = fabric.route_server(None) else {
                    anyhow::bail!(
                        "{}: lists {} route servers; choose one with --route-server",
                        config.display(),
                        fabric.route_servers.len()
                    );
                };
                socket_path(&control.runtime_dir, &route_server.name)
            }
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(request(&path, RELOAD))
    })();
    match result {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else if report.result == ReloadResult::Applied {
                println!("{}", report.summary());
            } else {
                eprintln!("{}", report.summary());
            }
            if report.result == ReloadResult::Applied {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("route-server: reload: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadResult {
    /// The new fabric is in force.
    Applied,
    /// The file has errors; nothing changed.
    Invalid,
    /// The file changes the route server's own identity or listeners; nothing changed.
    NeedsRestart,
}

impl ReloadResult {
    /// The label of `route_server_fabric_reloads_total`.
    pub fn label(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Invalid => "invalid",
            ReloadResult::NeedsRestart => "needs_restart",
        }
    }
}

/// A member whose entry changed, and whether its sessions were reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    /// Member name.
    pub name: String,
    /// Fields that changed (`asn`, `ipv4`, `max_prefix`, `irr`, `description`, ...).
    pub fields: Vec<String>,
    /// Whether a session of the member was ended and started again (an ASN or address change).
    pub reset: bool,
}

/// What a reload did, as the running route server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// How it ended.
    pub result: ReloadResult,
    /// The fabric file read.
    pub fabric: PathBuf,
    /// Why it was refused (`FILE:LINE: field: problem` lines for an invalid file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Members that joined (their sessions start).
    pub members_added: Vec<String>,
    /// Members that left (sessions ended with Cease 6/3, their routes withdrawn).
    pub members_removed: Vec<String>,
    /// Members whose entry changed.
    pub members_changed: Vec<MemberChange>,
    /// Whether the exchange-wide policy (or the LAN) changed, so every stored route was judged
    /// again.
    pub policy_changed: bool,
    /// Neighbor sessions (`member.family`) started.
    pub sessions_started: Vec<String>,
    /// Neighbor sessions ended.
    pub sessions_ended: Vec<String>,
    /// Stored routes judged again.
    pub routes_reevaluated: usize,
    /// Routes refused before and accepted now (announced to the other members).
    pub routes_accepted: usize,
    /// Routes accepted before and refused now (withdrawn from the other members).
    pub routes_refused: usize,
    /// Seconds from reading the file until the RIB reflected it.
    pub seconds: f64,
}

impl ReloadReport {
    /// A report of a reload of `fabric` that ended with `result` and changed nothing.
    pub fn unchanged(fabric: &Path, result: ReloadResult, error: Option<String>) -> ReloadReport {
        ReloadReport {
            result,
            fabric: fabric.to_path_buf(),
            error,
            members_added: Vec::new(),
            members_removed: Vec::new(),
            members_changed: Vec::new(),
            policy_changed: false,
            sessions_started: Vec::new(),
            sessions_ended: Vec::new(),
            routes_reevaluated: 0,
            routes_accepted: 0,
            routes_refused: 0,
            seconds: 0.0,
        }
    }

    /// The report as lines for an operator.
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        match self.result {
            ReloadResult::Applied => lines.push(format!(
                "{}: reload applied in {:.3} s",
                self.fabric.display(),
                self.seconds
            )),
            ReloadResult::Invalid | ReloadResult::NeedsRestart => lines.push(format!(
                "{}: reload refused ({}); the running configuration stays",
                self.fabric.display(),
                self.result.label()
            )),
        }
        if let Some(error) = &self.error {
            lines.push(error.clone());
        }
        if self.result != ReloadResult::Applied {
            return lines.join("\n");
        }
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        lines.push(format!("members added: {}", list(&self.members_added)));
        lines.push(format!("members removed: {}", list(&self.members_removed)));
        let changed: Vec<String> = self
            .members_changed
            .iter()
            .map(|change| {
                format!(
                    "{} ({}; {})",
                    change.name,
                    change.fields.join(", "),
                    if change.reset {
                        "session reset"
                    } else {
                        "no reset"
                    }
                )
            })
            .collect();
        lines.push(format!("members changed: {}", list(&changed)));
        lines.push(format!(
            "policy changed: {}",
            if self.policy_changed { "yes" } else { "no" }
        ));
        lines.push(format!(
            "sessions started: {}; ended: {}",
            list(&self.sessions_started),
            list(&self.sessions_ended)
        ));
        lines.push(format!(
            "routes judged again: {} ({} now accepted, {} now refused)",
            self.routes_reevaluated, self.routes_accepted, self.routes_refused
        ));
        lines.join("\n")
    }
}

/// Sends `command` to the control socket at `path` and returns the route server's report.
pub async fn request(path: &Path, command: &str) -> anyhow::Result<ReloadReport> {
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "cannot reach the route server's control socket {} (is it running? started with \
             another --runtime-dir or --control-socket?)",
            path.display()
        )
    })?;
    let (read_half, mut write_half) = stream.into_split();
    write_half
        .write_all(format!("{command}\n").as_bytes())
        .await
        .with_context(|| format!("writing to {}", path.display()))?;
    let mut lines = BufReader::new(read_half).lines();
    let line = tokio::time::timeout(REPLY_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {} within {REPLY_TIMEOUT:?}", path.display()))?
        .with_context(|| format!("reading from {}", path.display()))?
        .with_context(|| format!("{} closed without an answer", path.display()))?;
    if let Ok(report) = serde_json::from_str::<ReloadReport>(&line) {
        return Ok(report);
    }
    let value: serde_json::Value = serde_json::from_str(&line)
        .with_context(|| format!("unreadable answer from {}: {line}", path.display()))?;
    match value.get("error").and_then(serde_json::Value::as_str) {
        Some(error) => anyhow::bail!("{error}"),
        None => anyhow::bail!("unexpected answer from {}: {line}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_from_its_json() {
        let mut report = ReloadReport::unchanged(
            Path::new("/etc/vixp/fabric.yaml"),
            ReloadResult::Applied,
            None,
        );
        report.members_added.push("delta".to_string());
        report.members_changed.push(MemberChange {
            name: "bravo".to_string(),
            fields: vec!["max_prefix".to_string()],
            reset: false,
        });
        let text = serde_json::to_string(&report).expect("json");
        assert!(text.contains("\"result\":\"applied\""), "{text}");
        let back: ReloadReport = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, report);
        let summary = report.summary();
        assert!(summary.contains("members added: delta"), "{summary}");
        assert!(
            summary.contains("bravo (max_prefix; no reset)"),
            "{summary}"
        );
    }

    #[test]
    fn a_refusal_summary_carries_the_error() {
        let report = ReloadReport::unchanged(
            Path::new("f.yaml"),
            ReloadResult::Invalid,
            Some("f.yaml:3: members[0].asn: not a number".to_string()),
        );
        let summary = report.summary();
        assert!(
            summary.starts_with("f.yaml: reload refused (invalid)"),
            "{summary}"
        );
        assert!(summary.contains("f.yaml:3: members[0].asn"), "{summary}");
        assert!(!summary.contains("members added"), "{summary}");
    }
}
