//! The route servers under test: configuration, start inside the route server namespace,
//! figures from procfs, stop by PID. Owns only the processes it starts.

pub mod bird;
pub mod gobgp;
pub mod route_server;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::procstat::{self, ProcessStats};
use crate::scenario::Scenario;

/// How long a daemon may take to exit after SIGKILL before we stop waiting.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// A route server implementation the benchmark can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaemonKind {
    /// vixp's `route-server`.
    RouteServer,
    /// BIRD 2 with `rs client` sessions.
    Bird,
    /// GoBGP with `route-server-client` neighbors.
    Gobgp,
}

impl DaemonKind {
    /// Name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::RouteServer => "route-server",
            Self::Bird => "bird",
            Self::Gobgp => "gobgp",
        }
    }
}

impl fmt::Display for DaemonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DaemonKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "route-server" | "vixp" => Ok(Self::RouteServer),
            "bird" | "bird2" => Ok(Self::Bird),
            "gobgp" | "gobgpd" => Ok(Self::Gobgp),
            other => Err(format!(
                "unknown daemon {other:?}: use route-server, bird or gobgp"
            )),
        }
    }
}

/// Where to find the binaries and how to configure the sessions.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The `route-server` binary.
    pub route_server_binary: PathBuf,
    /// Hold time configured on the route server side, seconds.
    pub hold_time: u16,
}

/// A running daemon inside the route server namespace; killed by PID on drop.
pub struct DaemonProcess {
    kind: DaemonKind,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl DaemonProcess {
    /// Writes the configuration for `scenario` into `directory` and starts the daemon in
    /// `namespace`.
    ///
    /// # Errors
    /// The configuration is refused or the daemon cannot be started.
    pub async fn start(
        kind: DaemonKind,
        scenario: &Scenario,
        namespace: &str,
        directory: &Path,
        options: &DaemonOptions,
    ) -> anyhow::Result<Self> {
        let arguments = match kind {
            DaemonKind::Bird => {
                let config = directory.join("bird.conf");
                std::fs::write(&config, bird::config(scenario, options.hold_time))?;
                let check = Command::new("bird")
                    .arg("-p")
                    .arg("-c")
                    .arg(&config)
                    .output()
                    .await;
                match check {
                    Ok(output) if output.status.success() => {}
                    Ok(output) => bail!(
                        "bird refuses {}: {}",
                        config.display(),
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                    Err(error) => bail!("cannot run bird (package bird2): {error}"),
                }
                bird::arguments(&config, directory)
            }
            DaemonKind::Gobgp => {
                let config = directory.join("gobgpd.toml");
                std::fs::write(&config, gobgp::config(scenario, options.hold_time))?;
                gobgp::arguments(&config)
            }
            DaemonKind::RouteServer => {
                let fabric = directory.join("fabric.yaml");
                std::fs::write(&fabric, route_server::fabric(scenario, options.hold_time))?;
                if !options.route_server_binary.is_file() {
                    bail!(
                        "no route-server binary at {} (build it: cargo build --release -p route-server)",
                        options.route_server_binary.display()
                    );
                }
                let check = Command::new(&options.route_server_binary)
                    .arg("check")
                    .arg(&fabric)
                    .output()
                    .await?;
                if !check.status.success() {
                    bail!(
                        "route-server check refuses {}: {}{}",
                        fabric.display(),
                        String::from_utf8_lossy(&check.stdout).trim(),
                        String::from_utf8_lossy(&check.stderr).trim()
                    );
                }
                route_server::arguments(&options.route_server_binary, &fabric)
            }
        };
        let log = directory.join(format!("{kind}.log"));
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", namespace])
            .args(&arguments)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", arguments.join(" ")))?;
        let pid = child.id().context("daemon exited at once")?;
        let mut daemon = Self {
            kind,
            child,
            pid,
            log,
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(status) = daemon.child.try_wait()? {
            bail!("{kind} exited at start ({status}): {}", daemon.log_tail());
        }
        Ok(daemon)
    }

    /// Applies the reload benchmark's policy change (IPv4 prefixes shorter than `min_length`
    /// refused) to the running daemon, whose configuration is in `directory`: vixp through
    /// `route-server reload`, BIRD through `birdc configure`. Returns the seconds the daemon
    /// itself reports for the reload, if it reports any.
    ///
    /// # Errors
    /// The daemon cannot reload (GoBGP here) or refuses the new configuration.
    pub async fn reload(
        &self,
        directory: &Path,
        min_length: u8,
        options: &DaemonOptions,
    ) -> anyhow::Result<Option<f64>> {
        match self.kind {
            DaemonKind::RouteServer => {
                let fabric = directory.join("fabric.yaml");
                let text = std::fs::read_to_string(&fabric)?;
                std::fs::write(
                    &fabric,
                    route_server::with_min_ipv4_length(&text, min_length),
                )?;
                let output = Command::new(&options.route_server_binary)
                    .arg("reload")
                    .arg("--control-socket")
                    .arg(route_server::control_socket(&fabric))
                    .arg("--json")
                    .output()
                    .await?;
                if !output.status.success() {
                    bail!(
                        "route-server reload failed: {}{}",
                        String::from_utf8_lossy(&output.stdout).trim(),
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                }
                let report: serde_json::Value = serde_json::from_slice(&output.stdout)
                    .context("route-server reload --json printed no JSON")?;
                Ok(report.get("seconds").and_then(serde_json::Value::as_f64))
            }
            DaemonKind::Bird => {
                let config = directory.join("bird.conf");
                let text = std::fs::read_to_string(&config)?;
                std::fs::write(&config, bird::with_min_ipv4_length(&text, min_length))?;
                let output = Command::new("birdc")
                    .arg("-s")
                    .arg(directory.join("bird.ctl"))
                    .arg("configure")
                    .output()
                    .await
                    .context("cannot run birdc (package bird2)")?;
                let text = String::from_utf8_lossy(&output.stdout);
                if !output.status.success() || !text.contains("Reconfigured") {
                    bail!("birdc configure: {}", text.trim());
                }
                Ok(None)
            }
            DaemonKind::Gobgp => bail!("the reload benchmark has no GoBGP variant"),
        }
    }

    /// Which daemon this is.
    pub fn kind(&self) -> DaemonKind {
        self.kind
    }

    /// Memory and CPU figures now.
    ///
    /// # Errors
    /// The daemon has exited.
    pub fn stats(&self, ticks_per_second: f64) -> anyhow::Result<ProcessStats> {
        procstat::read(self.pid, ticks_per_second).with_context(|| {
            format!(
                "{} (PID {}) is gone: {}",
                self.kind,
                self.pid,
                self.log_tail()
            )
        })
    }

    /// The last lines the daemon wrote to its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// Kills the daemon by PID and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(EXIT_WAIT, self.child.wait()).await;
    }
}

/// The version string of a daemon, for the report.
pub async fn version(kind: DaemonKind, options: &DaemonOptions) -> String {
    let (program, argument) = match kind {
        DaemonKind::Bird => ("bird".into(), "--version"),
        DaemonKind::Gobgp => ("gobgpd".into(), "--version"),
        DaemonKind::RouteServer => (options.route_server_binary.clone(), "--version"),
    };
    match Command::new(&program).arg(argument).output().await {
        Ok(output) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            text.lines().next().unwrap_or("").trim().to_owned()
        }
        Err(_) => "not installed".to_owned(),
    }
}
