//! Drives one benchmark run from outside the namespaces: starts the daemon, starts the load
//! generator in its namespace (re-executing this binary), steps it through the phases and
//! samples the daemon's procfs figures between them. Owns the processes it starts and nothing
//! else.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command as Process};

use crate::api::{ApiFigures, ProbeSpec};
use crate::control::{Command, LoadSpec, PhaseOutcome, Report};
use crate::daemons::{DaemonKind, DaemonOptions, DaemonProcess};
use crate::procstat::{self, ProcessStats};
use crate::scenario::{Peer, ROUTE_SERVER_ADDRESS, ROUTE_SERVER_ASN, Scenario, generate_prefixes};
use crate::topology::Topology;

/// Seconds allowed for every session to reach Established (daemon start included).
pub const ESTABLISH_TIMEOUT_SECS: u64 = 60;
/// Extra seconds the driver waits for a report beyond the load generator's own timeouts.
const REPORT_MARGIN: Duration = Duration::from_secs(120);

/// Settings shared by every run of one invocation.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Timeout of each phase, seconds.
    pub phase_timeout_secs: u64,
    /// Hold time proposed by the load generator, seconds.
    pub hold_time: u16,
    /// Directory for daemon configurations and logs.
    pub directory: PathBuf,
    /// Clock ticks per second of procfs CPU times.
    pub ticks_per_second: f64,
    /// Daemon binaries and options.
    pub daemons: DaemonOptions,
    /// After convergence, reload a policy that refuses IPv4 prefixes shorter than this and
    /// time it (`None`: no reload phase).
    pub reload_min_ipv4_length: Option<u8>,
    /// After convergence (and the reload, if any), time this many GETs of each kind of the
    /// route server's JSON API (`None`: no API phase; other daemons have no such API).
    pub api_requests: Option<usize>,
}

/// Figures of the reload phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadFigures {
    /// Prefixes all receivers together had to lose.
    pub withdrawn: u64,
    /// Seconds from triggering the reload until the last receiver held its new table (the
    /// last resulting UPDATE at the sinks); `None` if the phase timed out.
    pub seconds: Option<f64>,
    /// Seconds the daemon reports for the reload itself (vixp: until its RIB reflected the
    /// new file, before the UPDATEs drain).
    pub daemon_seconds: Option<f64>,
}

/// Figures of one completed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Seconds from the first connection attempt until all sessions were Established.
    pub connect_seconds: f64,
    /// How the announce phase ended (time to full convergence).
    pub converge: PhaseOutcome,
    /// How the withdraw phase ended; `None` if the announce phase did not finish.
    pub withdraw: Option<PhaseOutcome>,
    /// Daemon resident set with all sessions up and no routes, KiB.
    pub rss_idle_kib: u64,
    /// Daemon resident set at the end of the announce phase, KiB.
    pub rss_converged_kib: u64,
    /// Daemon peak resident set over its life (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// Daemon CPU seconds during the announce phase.
    pub converge_cpu_seconds: f64,
    /// Daemon CPU seconds during the announce and withdraw phases.
    pub cpu_seconds: f64,
    /// Paths the route server holds at convergence (one per announced prefix).
    pub paths: u64,
    /// Resident set growth per path held, octets; `None` if the phase did not finish.
    pub bytes_per_path: Option<f64>,
    /// Sample routes checked at the receivers.
    pub samples_checked: u64,
    /// First sample route that differed from what its sender announced.
    pub sample_error: Option<String>,
    /// A sender's own routes sent back to it.
    pub reflected: u64,
    /// Prefixes received that nobody announced.
    pub unknown: u64,
    /// UPDATE messages received by all receivers.
    pub updates_received: u64,
    /// CPU seconds the load generator itself spent in both phases (it shares the cores).
    pub load_generator_cpu_seconds: f64,
    /// `/proc/loadavg` when the run started: other work on the machine skews the figures.
    pub load_average: String,
    /// The reload phase, if it ran.
    #[serde(default)]
    pub reload: Option<ReloadFigures>,
    /// The JSON API timings (vixp's route-server only), if the API phase ran.
    #[serde(default)]
    pub api: Option<ApiFigures>,
    /// Why the API phase failed (unreachable, an error answer, a page that failed its check).
    #[serde(default)]
    pub api_error: Option<String>,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum RunOutcome {
    /// The run went through; the phases may still have timed out.
    Completed(Box<Figures>),
    /// The run broke (daemon did not start, session went down, ...).
    Failed {
        /// What happened.
        reason: String,
    },
}

impl RunOutcome {
    /// Whether later runs of the same pair are pointless (did not finish or broke).
    pub fn stops_repetition(&self) -> bool {
        match self {
            Self::Completed(figures) => !matches!(figures.converge, PhaseOutcome::Finished { .. }),
            Self::Failed { .. } => true,
        }
    }
}

/// The load generator child process and its line protocol.
struct LoadGenerator {
    child: Child,
    stdin: ChildStdin,
    reports: Lines<BufReader<ChildStdout>>,
}

impl LoadGenerator {
    async fn start(namespace: &str, spec: &LoadSpec) -> anyhow::Result<Self> {
        let program = std::env::current_exe().context("locating bgp-bench itself")?;
        let mut child = Process::new("ip")
            .args(["netns", "exec", namespace])
            .arg(&program)
            .arg("loadgen")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the load generator")?;
        let stdin = child.stdin.take().context("load generator stdin")?;
        let stdout = child.stdout.take().context("load generator stdout")?;
        let mut generator = Self {
            child,
            stdin,
            reports: BufReader::new(stdout).lines(),
        };
        generator.send_line(serde_json::to_string(spec)?).await?;
        Ok(generator)
    }

    async fn send_line(&mut self, mut line: String) -> anyhow::Result<()> {
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn send(&mut self, command: Command) -> anyhow::Result<()> {
        self.send_line(serde_json::to_string(&command)?).await
    }

    async fn report(&mut self, timeout: Duration) -> anyhow::Result<Report> {
        let line = tokio::time::timeout(timeout, self.reports.next_line())
            .await
            .map_err(|_| anyhow!("the load generator did not report within {timeout:?}"))??
            .context("the load generator exited")?;
        let report: Report = serde_json::from_str(&line)
            .with_context(|| format!("unreadable load generator report {line:?}"))?;
        if let Report::Failed { reason } = report {
            bail!("{reason}");
        }
        Ok(report)
    }

    fn stats(&self, ticks_per_second: f64) -> anyhow::Result<ProcessStats> {
        let pid = self.child.id().context("the load generator exited")?;
        procstat::read(pid, ticks_per_second)
    }

    async fn close(mut self) {
        let _ = self.send(Command::Close).await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// Runs `scenario` once against `kind`.
pub async fn run_once(
    kind: DaemonKind,
    scenario: &Scenario,
    topology: &Topology,
    settings: &RunSettings,
    run: usize,
) -> RunOutcome {
    let directory = settings
        .directory
        .join(format!("{}-{kind}-{run}", scenario.name));
    let result = async {
        std::fs::create_dir_all(&directory)?;
        let daemon = DaemonProcess::start(
            kind,
            scenario,
            &topology.route_server_namespace,
            &directory,
            &settings.daemons,
        )
        .await?;
        let result = measure(&daemon, &directory, scenario, topology, settings).await;
        let result =
            result.map_err(|error| anyhow!("{error:#}; {kind} log: {}", daemon.log_tail()));
        daemon.stop().await;
        result
    }
    .await;
    match result {
        Ok(figures) => RunOutcome::Completed(Box::new(figures)),
        Err(error) => RunOutcome::Failed {
            reason: format!("{error:#}"),
        },
    }
}

async fn measure(
    daemon: &DaemonProcess,
    directory: &Path,
    scenario: &Scenario,
    topology: &Topology,
    settings: &RunSettings,
) -> anyhow::Result<Figures> {
    let spec = LoadSpec {
        scenario: scenario.clone(),
        route_server: ROUTE_SERVER_ADDRESS,
        port: 179,
        route_server_asn: ROUTE_SERVER_ASN,
        hold_time: settings.hold_time,
        establish_timeout_secs: ESTABLISH_TIMEOUT_SECS,
        phase_timeout_secs: settings.phase_timeout_secs,
    };
    let ticks = settings.ticks_per_second;
    let phase_wait = Duration::from_secs(settings.phase_timeout_secs) + REPORT_MARGIN;
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut generator = LoadGenerator::start(&topology.load_namespace, &spec).await?;
    let result = async {
        let Report::Established {
            connect_seconds, ..
        } = generator
            .report(Duration::from_secs(ESTABLISH_TIMEOUT_SECS) + REPORT_MARGIN)
            .await?
        else {
            bail!("expected the sessions to come up first");
        };
        let idle = daemon.stats(ticks)?;
        let generator_idle = generator.stats(ticks)?;
        generator.send(Command::Announce).await?;
        let Report::Announced {
            outcome: converge,
            samples_checked,
            sample_error,
            reflected,
            unknown,
            updates_received,
        } = generator.report(phase_wait).await?
        else {
            bail!("expected the announce phase to end");
        };
        let converged = daemon.stats(ticks)?;
        let finished = matches!(converge, PhaseOutcome::Finished { .. });
        let reload = match settings.reload_min_ipv4_length {
            Some(min_length) if finished => Some(
                reload_phase(
                    daemon,
                    directory,
                    &mut generator,
                    min_length,
                    phase_wait,
                    settings,
                )
                .await?,
            ),
            _ => None,
        };
        let (api, api_error) = match settings.api_requests {
            Some(requests) if finished && daemon.kind() == DaemonKind::RouteServer => {
                match api_phase(&topology.route_server_namespace, scenario, requests).await {
                    Ok(figures) => (Some(figures), None),
                    Err(error) => (None, Some(format!("{error:#}"))),
                }
            }
            _ => (None, None),
        };
        let withdraw = if finished {
            generator.send(Command::Withdraw).await?;
            match generator.report(phase_wait).await? {
                Report::Withdrawn { outcome } => Some(outcome),
                _ => bail!("expected the withdraw phase to end"),
            }
        } else {
            None
        };
        let end = daemon.stats(ticks)?;
        let generator_end = generator.stats(ticks)?;
        let paths = scenario.total_prefixes() as u64;
        Ok(Figures {
            connect_seconds,
            converge,
            withdraw,
            rss_idle_kib: idle.rss_kib,
            rss_converged_kib: converged.rss_kib,
            peak_rss_kib: end.peak_rss_kib,
            converge_cpu_seconds: converged.cpu_seconds - idle.cpu_seconds,
            cpu_seconds: end.cpu_seconds - idle.cpu_seconds,
            paths,
            bytes_per_path: finished.then(|| {
                converged.rss_kib.saturating_sub(idle.rss_kib) as f64 * 1024.0 / paths as f64
            }),
            samples_checked,
            sample_error,
            reflected,
            unknown,
            updates_received,
            load_generator_cpu_seconds: generator_end.cpu_seconds - generator_idle.cpu_seconds,
            load_average,
            reload,
            api,
            api_error,
        })
    }
    .await;
    generator.close().await;
    result
}

/// The reload phase: arms the load generator, triggers the daemon's reload, and waits until
/// every receiver holds its new table.
async fn reload_phase(
    daemon: &DaemonProcess,
    directory: &Path,
    generator: &mut LoadGenerator,
    min_length: u8,
    wait: Duration,
    settings: &RunSettings,
) -> anyhow::Result<ReloadFigures> {
    generator
        .send(Command::Reload {
            min_ipv4_length: min_length,
        })
        .await?;
    let Report::Armed { to_withdraw } = generator.report(wait).await? else {
        bail!("expected the load generator to arm the reload phase");
    };
    let triggered = unix_now();
    let daemon_seconds = daemon
        .reload(directory, min_length, &settings.daemons)
        .await?;
    let Report::Reloaded {
        outcome,
        finished_unix,
    } = generator.report(wait).await?
    else {
        bail!("expected the reload phase to end");
    };
    Ok(ReloadFigures {
        withdrawn: to_withdraw,
        seconds: matches!(outcome, PhaseOutcome::Finished { .. })
            .then(|| (finished_unix - triggered).max(0.0)),
        daemon_seconds,
    })
}

/// How long the API probe may take in all before the driver gives up on it.
const API_PROBE_TIMEOUT: Duration = Duration::from_secs(600);

/// What the API probe asks about in `scenario`: the first sender's received routes, a
/// receiver's not-exported routes, and one of the sender's /24s (in the middle of its table)
/// for the lookups.
pub fn probe_spec(scenario: &Scenario, requests: usize) -> ProbeSpec {
    let neighbor = |index: usize| format!("{}.ipv4", Peer::numbered(index).name());
    let receiver = if scenario.peers > scenario.senders {
        scenario.senders
    } else {
        scenario.peers.saturating_sub(1)
    };
    // Every 20th generated prefix is a /24 (kept by the reload benchmark's length filter).
    let position = scenario.prefixes_per_sender / 2 / 20 * 20;
    let prefixes = generate_prefixes(position + 1);
    let prefix = prefixes.last().copied();
    let (exact, address) = prefix.map_or_else(
        || ("11.0.0.0/24".to_owned(), "11.0.0.1".to_owned()),
        |prefix| {
            let inside = std::net::Ipv4Addr::from(u32::from(prefix.addr) + 1);
            (prefix.to_string(), inside.to_string())
        },
    );
    ProbeSpec {
        listen: crate::daemons::route_server::HTTP_LISTEN
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 9179))),
        sender: neighbor(0),
        receiver: neighbor(receiver),
        exact,
        address,
        requests,
    }
}

/// The API phase: runs `bgp-bench api-probe` inside the route server's namespace (the API
/// listens on that namespace's loopback) and reads its figures.
async fn api_phase(
    namespace: &str,
    scenario: &Scenario,
    requests: usize,
) -> anyhow::Result<ApiFigures> {
    let spec = serde_json::to_string(&probe_spec(scenario, requests))?;
    let program = std::env::current_exe().context("locating bgp-bench itself")?;
    let child = Process::new("ip")
        .args(["netns", "exec", namespace])
        .arg(&program)
        .arg("api-probe")
        .arg(&spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the API probe")?;
    let output = tokio::time::timeout(API_PROBE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("the API probe did not finish within {API_PROBE_TIMEOUT:?}"))??;
    if !output.status.success() {
        bail!(
            "API probe: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("the API probe printed no figures")
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Default location of the `route-server` binary: next to this one (same cargo profile).
pub fn sibling_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_probe_asks_about_the_first_sender_a_receiver_and_one_of_the_senders_slash_24s() {
        let spec = probe_spec(&Scenario::api(), 20);
        assert_eq!(spec.sender, "peer10.ipv4");
        assert_eq!(spec.receiver, "peer11.ipv4");
        assert!(spec.exact.ends_with("/24"), "{}", spec.exact);
        let prefixes = generate_prefixes(Scenario::api().prefixes_per_sender);
        assert!(
            prefixes
                .iter()
                .any(|prefix| prefix.to_string() == spec.exact)
        );
        let network = spec.exact.trim_end_matches("/24");
        let inside: std::net::Ipv4Addr = spec.address.parse().expect("an address");
        let start: std::net::Ipv4Addr = network.parse().expect("the network");
        assert_eq!(u32::from(inside), u32::from(start) + 1);
        assert_eq!(spec.listen.port(), 9179);
    }
}
