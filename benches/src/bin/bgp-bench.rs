//! `bgp-bench`: route-server system benchmark. Runs the chosen scenarios against vixp's
//! `route-server`, BIRD 2 and GoBGP in network namespaces and prints a Markdown table of
//! figures and ratios to BIRD. Command line only; the work is in the `vixp_benches` library.

use std::path::PathBuf;
use std::process::Command as Process;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use vixp_benches::daemons::{self, DaemonKind, DaemonOptions};
use vixp_benches::report::{self, RunRecord};
use vixp_benches::runner::{self, RunSettings};
use vixp_benches::scenario::Scenario;
use vixp_benches::topology::Topology;
use vixp_benches::{loadgen, procstat};

/// Route-server system benchmark: time to converge, time to withdraw, peak RSS and CPU of
/// vixp's route-server, BIRD 2 and GoBGP under the same BGP load. Needs root (it creates
/// network namespaces).
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Scenarios to run, comma separated [default: small, unless a custom scenario is given].
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<ScenarioChoice>,
    /// Daemons to compare, comma separated: route-server, bird, gobgp.
    #[arg(long, value_delimiter = ',', default_value = "bird,gobgp,route-server")]
    daemons: Vec<DaemonKind>,
    /// Runs per scenario and daemon; the table shows medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Seconds each phase (announce, withdraw) may take before it counts as did-not-finish.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Run a custom scenario with this many peers (needs --senders and --prefixes).
    #[arg(long, requires_all = ["senders", "prefixes"])]
    peers: Option<usize>,
    /// Senders of the custom scenario.
    #[arg(long, requires = "peers")]
    senders: Option<usize>,
    /// Prefixes per sender of the custom scenario.
    #[arg(long, requires = "peers")]
    prefixes: Option<usize>,
    /// Hold time proposed by both sides, seconds.
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// The route-server binary (default: next to this binary).
    #[arg(long)]
    route_server_bin: Option<PathBuf>,
    /// Write every run and the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// After convergence, time a policy reload: the route server refuses IPv4 prefixes shorter
    /// than this (e.g. 20: the /19s, 5% of the table) and the reload is timed until the last
    /// resulting UPDATE reaches the receivers (route-server: `route-server reload`; BIRD:
    /// `birdc configure` with the same change as an export filter).
    #[arg(long, value_name = "LENGTH")]
    reload_min_length: Option<u8>,
    /// After convergence (and the reload, if any), time the route server's JSON API over its
    /// loopback: the first sender's received routes (first, middle and last page at 250 and
    /// 10,000 per page), a filtered and a not-exported page, and prefix lookups (exact and
    /// longest match). vixp's route-server only; the other daemons skip it.
    #[arg(long)]
    api: bool,
    /// Timed GETs per API request kind; the table shows their median.
    #[arg(long, default_value_t = vixp_benches::api::DEFAULT_REQUESTS, requires = "api")]
    api_requests: usize,
    /// Keep the generated configurations and daemon logs in this directory.
    #[arg(long)]
    keep: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Hidden>,
}

#[derive(Debug, Subcommand)]
enum Hidden {
    /// Internal: the load generator, run by bgp-bench inside its network namespace.
    #[command(hide = true)]
    Loadgen,
    /// Internal: the JSON API probe, run by bgp-bench inside the route server's namespace.
    #[command(hide = true)]
    ApiProbe {
        /// What to probe, as JSON.
        spec: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScenarioChoice {
    /// 10 peers, 5 senders x 10,000 prefixes.
    Small,
    /// 50 peers, 25 senders x 20,000 prefixes.
    Medium,
    /// 1 sender x 800,000 prefixes to 20 receivers.
    Fanout,
    /// 1 sender x 100,000 prefixes to 4 receivers (for --api: a member with 100k routes).
    Api,
    /// small, medium and fanout.
    All,
}

fn scenarios(cli: &Cli) -> anyhow::Result<Vec<Scenario>> {
    let mut chosen = Vec::new();
    let default = [ScenarioChoice::Small];
    let choices = if cli.scenario.is_empty() && cli.peers.is_none() {
        &default[..]
    } else {
        &cli.scenario[..]
    };
    for choice in choices {
        let add: Vec<Scenario> = match choice {
            ScenarioChoice::Small => vec![Scenario::small()],
            ScenarioChoice::Medium => vec![Scenario::medium()],
            ScenarioChoice::Fanout => vec![Scenario::fanout()],
            ScenarioChoice::Api => vec![Scenario::api()],
            ScenarioChoice::All => vec![Scenario::small(), Scenario::medium(), Scenario::fanout()],
        };
        for scenario in add {
            if !chosen.contains(&scenario) {
                chosen.push(scenario);
            }
        }
    }
    if let (Some(peers), Some(senders), Some(prefixes)) = (cli.peers, cli.senders, cli.prefixes) {
        if senders == 0 || senders > peers || prefixes == 0 {
            bail!("a custom scenario needs 1 <= senders <= peers and at least one prefix");
        }
        chosen.push(Scenario::new("custom", peers, senders, prefixes));
    }
    Ok(chosen)
}

fn command_output(program: &str, arguments: &[&str]) -> String {
    Process::new(program)
        .args(arguments)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn bench(cli: Cli) -> anyhow::Result<()> {
    let scenarios = scenarios(&cli)?;
    let runs = cli.runs.max(1);
    let temporary = cli.keep.is_none();
    let directory = cli
        .keep
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("bgp-bench-{}", std::process::id())));
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("creating {}", directory.display()))?;
    let _cleanup = temporary.then(|| RemoveOnDrop(directory.clone()));
    let options = DaemonOptions {
        route_server_binary: cli
            .route_server_bin
            .clone()
            .unwrap_or_else(|| runner::sibling_binary("route-server")),
        hold_time: cli.hold_time,
    };
    let settings = RunSettings {
        phase_timeout_secs: cli.timeout,
        hold_time: cli.hold_time,
        directory,
        ticks_per_second: procstat::clock_ticks(),
        daemons: options.clone(),
        reload_min_ipv4_length: cli.reload_min_length,
        api_requests: cli.api.then_some(cli.api_requests.max(1)),
    };
    let mut versions = serde_json::Map::new();
    for daemon in &cli.daemons {
        versions.insert(
            daemon.name().to_owned(),
            daemons::version(*daemon, &options).await.into(),
        );
    }
    let environment = json!({
        "date": command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "kernel": command_output("uname", &["-r"]),
        "cpus": command_output("nproc", &[]),
        "commit": command_output("git", &["rev-parse", "--short", "HEAD"]),
        "versions": versions,
    });
    eprintln!("bgp-bench: {environment}");

    let most_peers = scenarios
        .iter()
        .map(|scenario| scenario.peers)
        .max()
        .unwrap_or(0);
    let topology = Topology::create(most_peers)?;
    let mut records = Vec::new();
    for scenario in &scenarios {
        eprintln!("bgp-bench: {}", report::describe(scenario));
        for daemon in &cli.daemons {
            for run in 1..=runs {
                let outcome = runner::run_once(*daemon, scenario, &topology, &settings, run).await;
                eprintln!(
                    "bgp-bench: {} {daemon} run {run}: {}",
                    scenario.name,
                    serde_json::to_string(&outcome)?
                );
                let stop = outcome.stops_repetition();
                records.push(RunRecord {
                    scenario: scenario.name.clone(),
                    daemon: *daemon,
                    run,
                    outcome,
                });
                if stop {
                    break;
                }
            }
        }
    }
    drop(topology);

    let rows: Vec<report::Row> = scenarios
        .iter()
        .flat_map(|scenario| {
            cli.daemons
                .iter()
                .map(|daemon| report::row(&scenario.name, *daemon, &records))
                .collect::<Vec<_>>()
        })
        .collect();
    println!("{}", report::markdown(&scenarios, &rows));
    if cli.reload_min_length.is_some() {
        println!(
            "{}",
            report::reload_markdown(&scenarios, &cli.daemons, &records)
        );
    }
    if cli.api {
        println!("{}", report::api_markdown(&scenarios, &records));
    }
    if let Some(path) = &cli.json {
        let document = json!({
            "environment": environment,
            "settings": { "runs": runs, "timeout_secs": cli.timeout, "hold_time": cli.hold_time },
            "scenarios": scenarios,
            "summary": rows,
            "runs": records,
        });
        std::fs::write(path, serde_json::to_string_pretty(&document)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Removes the scratch directory when the benchmark ends, also on error or Ctrl-C.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Hidden::Loadgen) => return loadgen::run().await,
        Some(Hidden::ApiProbe { spec }) => {
            let spec: vixp_benches::api::ProbeSpec =
                serde_json::from_str(spec).context("api-probe: the spec is not valid JSON")?;
            let figures = tokio::task::spawn_blocking(move || vixp_benches::api::probe(&spec))
                .await
                .context("api-probe: the probe panicked")??;
            println!("{}", serde_json::to_string(&figures)?);
            return Ok(());
        }
        None => {}
    }
    tokio::select! {
        result = bench(cli) => result,
        _ = tokio::signal::ctrl_c() => {
            // Returning drops the benchmark future: its guards kill the daemons and the load
            // generator by PID and delete the namespaces.
            bail!("interrupted")
        }
    }
}
