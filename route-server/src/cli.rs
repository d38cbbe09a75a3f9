//! The `route-server` command line: argument parsing and the output of each subcommand. Runs
//! the driver for `run`; must not hold routing logic.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{CommandFactory as _, Parser, Subcommand};
use tokio::sync::watch;
use tracing::info;
use vixp_fabric::Fabric;

/// Default location of the fabric file.
pub const DEFAULT_FABRIC: &str = "/etc/vixp/fabric.yaml";

/// vixp route server: a transparent RFC 7947 BGP route server for a virtual exchange,
/// configured by the exchange's fabric file.
#[derive(Debug, Parser)]
#[command(name = "route-server", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the route server in the foreground (logs to stderr; stop with SIGTERM or Ctrl-C).
    Run {
        /// The fabric file.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_FABRIC)]
        config: PathBuf,
        /// Which route server of the fabric this is (needed when it lists several).
        #[arg(long = "route-server")]
        route_server: Option<String>,
        /// Log filter, e.g. `info`, `debug`, `route_server=debug` (also RUST_LOG).
        #[arg(long, default_value = "info")]
        log: String,
        /// Where the control socket for `route-server reload` goes.
        #[command(flatten)]
        control: crate::control::ControlArgs,
        /// Overrides: listen for BGP on these addresses instead of `bgp.listen`.
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Check a fabric file: exit 0 when valid, else print one `FILE:LINE: field: problem` line
    /// per problem and exit 1.
    Check {
        /// The fabric file.
        file: PathBuf,
    },
    /// Show the state of a running route server (through its HTTP API).
    Show {
        /// What to show.
        #[command(subcommand)]
        what: Show,
        /// The fabric file, to find the route server's HTTP address.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_FABRIC, global = true)]
        config: PathBuf,
        /// Which route server of the fabric to ask.
        #[arg(long = "route-server", global = true)]
        route_server: Option<String>,
        /// Ask this HTTP address instead of the one in the fabric file.
        #[arg(long, global = true)]
        api: Option<SocketAddr>,
        /// Print JSON as returned by the API.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Print the exchange's peering policy, rendered from the fabric file: who may join, the
    /// import filters in order with their parameters, max-prefix, RPKI and IRR, communities and
    /// route servers (the page a running route server serves at /policy).
    Policy {
        /// The fabric file.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_FABRIC)]
        config: PathBuf,
        /// Which route server publishes it (its ASN is in the communities); needed when the
        /// fabric lists several.
        #[arg(long = "route-server", visible_alias = "name")]
        route_server: Option<String>,
        /// Markdown (the default).
        #[arg(long, conflicts_with = "html")]
        markdown: bool,
        /// A self-contained HTML page instead of Markdown.
        #[arg(long)]
        html: bool,
    },
    /// Reload the fabric file of a running route server (through its control socket) and print
    /// what changed: members added, removed and changed, policy, routes judged again. Exits 1
    /// when the new file is refused (its errors as FILE:LINE: field: problem); the running
    /// configuration then stays.
    Reload {
        /// The fabric file, to find the route server's name when --route-server is not given.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_FABRIC)]
        config: PathBuf,
        /// Which route server to reload.
        #[arg(long = "route-server", visible_alias = "name")]
        route_server: Option<String>,
        /// Where its control socket is.
        #[command(flatten)]
        control: crate::control::ControlArgs,
        /// Print the route server's report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Members' IRR data: `irr refresh` rewrites the files the fabric names from the IRR.
    Irr {
        /// What to do.
        #[command(subcommand)]
        command: IrrCommand,
    },
    /// Print shell completions.
    Completions {
        /// Shell to generate for.
        shell: clap_complete::Shell,
    },
}

/// `irr` subcommands.
#[derive(Debug, Subcommand)]
pub enum IrrCommand {
    /// Run bgpq4 for each member's AS-SET and write its prefixes_file and asns_file
    /// atomically; then reload the route server (SIGHUP or `route-server reload`) to apply
    /// them. Exits 1 when any member failed (its old files stay).
    Refresh {
        /// The fabric file.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_FABRIC)]
        config: PathBuf,
        /// Only this member.
        #[arg(long)]
        member: Option<String>,
        /// The bgpq4 program.
        #[arg(long, default_value = "bgpq4")]
        bgpq4: PathBuf,
        /// IRR server to query, `host` or `host:port` (bgpq4's `-h`; its default is rr.ntt.net).
        #[arg(long = "irr-server")]
        irr_server: Option<String>,
        /// Seconds one bgpq4 run may take.
        #[arg(long, default_value_t = crate::irr::DEFAULT_BGPQ4_TIMEOUT.as_secs())]
        timeout: u64,
    },
}

/// `route-server irr ...`.
fn irr_command(command: &IrrCommand) -> ExitCode {
    let IrrCommand::Refresh {
        config,
        member,
        bgpq4,
        irr_server,
        timeout,
    } = command;
    let result = (|| -> anyhow::Result<bool> {
        let fabric = load(config)?;
        let options = crate::irr::RefreshOptions {
            bgpq4: bgpq4.clone(),
            server: irr_server.clone(),
            member: member.clone(),
            timeout: std::time::Duration::from_secs(*timeout),
        };
        let reports = runtime()?.block_on(crate::irr::refresh(&fabric, &options))?;
        let mut ok = true;
        for report in &reports {
            println!("{report}");
            ok &= !matches!(report.outcome, crate::irr::Outcome::Failed(_));
        }
        Ok(ok)
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("route-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Command-line overrides of the route server's listeners, for testing and demos.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Listen for BGP on this address (repeatable) instead of the fabric's `bgp.listen`.
    #[arg(long = "listen")]
    pub listen: Vec<std::net::IpAddr>,
    /// BGP port instead of the fabric's `bgp.port`.
    #[arg(long)]
    pub port: Option<u16>,
    /// HTTP listener instead of the fabric's `http`.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Only accept connections; never connect out to members.
    #[arg(long)]
    pub passive: bool,
}

impl Overrides {
    /// Applies the overrides to the named route server of `fabric`.
    pub fn apply(&self, fabric: &mut Fabric, name: &str) {
        for route_server in &mut fabric.route_servers {
            if route_server.name != name {
                continue;
            }
            if !self.listen.is_empty() {
                route_server.bgp.listen.clone_from(&self.listen);
            }
            if let Some(port) = self.port {
                route_server.bgp.port = port;
            }
            if let Some(http) = self.http {
                route_server.http_listen = http;
            }
            if self.passive {
                route_server.bgp.active_open = false;
            }
        }
    }
}

/// What `show` shows.
#[derive(Debug, Subcommand)]
pub enum Show {
    /// Every neighbor session: state, uptime, prefixes received and advertised, last error.
    Neighbors,
    /// Routes received from a neighbor, or every path for a prefix or address.
    Routes {
        /// Neighbor id (`member.ipv4`, `member.ipv6`) or member name (both families).
        #[arg(long)]
        neighbor: Option<String>,
        /// A prefix (exact) or an address (longest match).
        #[arg(long)]
        prefix: Option<String>,
        /// With --neighbor: the routes the import policy refused, with the reason.
        #[arg(long, requires = "neighbor", conflicts_with = "not_exported")]
        filtered: bool,
        /// With --neighbor: other members' routes the neighbor does not receive because their
        /// senders' action communities withhold them, with the reason.
        #[arg(long, requires = "neighbor")]
        not_exported: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Irr { command } => irr_command(&command),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "route-server", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Run {
            config,
            route_server,
            log,
            control,
            overrides,
        } => report(run(
            &config,
            route_server.as_deref(),
            &log,
            &control,
            &overrides,
        )),
        Command::Reload {
            config,
            route_server,
            control,
            json,
        } => crate::control::reload_command(&config, route_server.as_deref(), &control, json),
        Command::Show {
            what,
            config,
            route_server,
            api,
            json,
        } => report(show(&what, &config, route_server.as_deref(), api, json)),
        Command::Policy {
            config,
            route_server,
            markdown: _,
            html,
        } => report(policy(&config, route_server.as_deref(), html)),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("route-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &Path) -> ExitCode {
    match crate::irr::load_fabric(file) {
        Ok((fabric, loaded)) => {
            // The VRP file is checked as the route server reads it at start-up and reload.
            if let Some(rpki) = &fabric.policy.rpki
                && let Err(error) = crate::rpki::rtr::read_file(rpki)
            {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
            println!(
                "{}: ok: exchange {}, {} route server(s), {} member(s), {loaded}",
                file.display(),
                fabric.exchange.name,
                fabric.route_servers.len(),
                fabric.members.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn load(config: &Path) -> anyhow::Result<Fabric> {
    Fabric::load(config).map_err(|error| anyhow::anyhow!("{error}"))
}

fn route_server_name(fabric: &Fabric, wanted: Option<&str>) -> anyhow::Result<String> {
    match fabric.route_server(wanted) {
        Some(route_server) => Ok(route_server.name.clone()),
        None => {
            let names: Vec<&str> = fabric
                .route_servers
                .iter()
                .map(|route_server| route_server.name.as_str())
                .collect();
            match wanted {
                Some(name) => bail!(
                    "{}: no route server named {name}; valid: {}",
                    fabric.source.display(),
                    names.join(", ")
                ),
                None => bail!(
                    "{}: lists {} route servers; choose one with --route-server ({})",
                    fabric.source.display(),
                    names.len(),
                    names.join(", ")
                ),
            }
        }
    }
}

/// `route-server policy`: the published peering policy of `config` on stdout.
fn policy(config: &Path, wanted: Option<&str>, html: bool) -> anyhow::Result<()> {
    let fabric = load(config)?;
    let name = route_server_name(&fabric, wanted)?;
    let document = crate::policy_page::document(&fabric, &name)
        .context("route server vanished from the fabric")?;
    let text = if html {
        crate::policy_page::html(&document)
    } else {
        crate::policy_page::markdown(&document)
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(
    config: &Path,
    wanted: Option<&str>,
    log: &str,
    control: &crate::control::ControlArgs,
    overrides: &Overrides,
) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(log))
        .with_context(|| format!("invalid log filter {log:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let (mut fabric, loaded) =
        crate::irr::load_fabric(config).map_err(|error| anyhow::anyhow!("{error}"))?;
    info!("{loaded}");
    let name = route_server_name(&fabric, wanted)?;
    overrides.apply(&mut fabric, &name);
    let adjust = {
        let (overrides, name) = (overrides.clone(), name.clone());
        Box::new(move |fabric: &mut Fabric| overrides.apply(fabric, &name))
    };
    let options = crate::driver::Options {
        control_socket: Some(control.place(&name)),
        adjust,
    };
    runtime()?.block_on(async move {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("signal received");
            let _ = stop.send(true);
        });
        info!(route_server = %name, fabric = %fabric.source.display(), "starting");
        crate::driver::run(fabric, &name, stopped, options).await
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    match (terminate, interrupt) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn show(
    what: &Show,
    config: &Path,
    wanted: Option<&str>,
    api: Option<SocketAddr>,
    json: bool,
) -> anyhow::Result<()> {
    let address = match api {
        Some(address) => address,
        None => {
            let fabric = load(config)?;
            let name = route_server_name(&fabric, wanted)?;
            fabric
                .route_server(Some(&name))
                .map(|route_server| route_server.http_listen)
                .context("route server vanished from the fabric")?
        }
    };
    runtime()?.block_on(async move {
        match what {
            Show::Neighbors => {
                let value = crate::client::get_json(address, "/api/v1/neighbors").await?;
                if json {
                    print_json(&value)
                } else {
                    print_neighbors(&value)
                }
            }
            Show::Routes {
                neighbor,
                prefix,
                filtered,
                not_exported,
            } => {
                let mut routes = Vec::new();
                if let Some(prefix) = prefix {
                    let path = format!("/api/v1/lookup/prefix?q={}", encode_query(prefix));
                    let value = crate::client::get_json(address, &path).await?;
                    routes.extend(array(&value, "routes"));
                } else if let Some(neighbor) = neighbor {
                    let ids = if neighbor.contains('.') {
                        vec![neighbor.clone()]
                    } else {
                        vec![format!("{neighbor}.ipv4"), format!("{neighbor}.ipv6")]
                    };
                    let mut found = false;
                    for id in ids {
                        let kind = if *filtered {
                            "filtered"
                        } else if *not_exported {
                            "not-exported"
                        } else {
                            "received"
                        };
                        let path = format!("/api/v1/neighbors/{id}/routes/{kind}?page_size=10000");
                        let mut page = 0;
                        loop {
                            let value = match crate::client::get_json(
                                address,
                                &format!("{path}&page={page}"),
                            )
                            .await
                            {
                                Ok(value) => value,
                                Err(_) if !neighbor.contains('.') => break,
                                Err(error) => return Err(error),
                            };
                            found = true;
                            routes.extend(array(&value, "routes"));
                            let pages = value
                                .pointer("/pagination/total_pages")
                                .and_then(serde_json::Value::as_u64)
                                .unwrap_or(0);
                            page += 1;
                            if page >= pages {
                                break;
                            }
                        }
                    }
                    if !found {
                        bail!("no neighbor {neighbor}; see `route-server show neighbors`");
                    }
                } else {
                    bail!("say which routes: --neighbor NAME or --prefix PREFIX");
                }
                if json {
                    print_json(&serde_json::json!({ "routes": routes }))
                } else {
                    print_routes(&routes)
                }
            }
        }
    })
}

fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b':' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn array(value: &serde_json::Value, key: &str) -> Vec<serde_json::Value> {
    value
        .get(key)
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    writeln!(std::io::stdout(), "{text}")?;
    Ok(())
}

fn field<'a>(value: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    value.get(key).unwrap_or(&serde_json::Value::Null)
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn print_neighbors(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20} {:<26} {:>10} {:<12} {:>9} {:>9} {:>9} {:>9}  LAST ERROR",
        "NEIGHBOR", "ADDRESS", "ASN", "STATE", "UPTIME", "RECEIVED", "FILTERED", "EXPORTED"
    )?;
    for neighbor in array(value, "neighbors") {
        writeln!(
            out,
            "{:<20} {:<26} {:>10} {:<12} {:>9} {:>9} {:>9} {:>9}  {}",
            text(field(&neighbor, "id")),
            text(field(&neighbor, "address")),
            text(field(&neighbor, "asn")),
            text(field(&neighbor, "state")),
            format_duration(field(&neighbor, "uptime").as_u64().unwrap_or(0)),
            text(field(&neighbor, "routes_received")),
            text(field(&neighbor, "routes_filtered")),
            text(field(&neighbor, "routes_exported")),
            text(field(&neighbor, "last_error")),
        )?;
    }
    Ok(())
}

fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "-".to_string();
    }
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, rest) = (rest / 3600, rest % 3600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    }
}

fn print_routes(routes: &[serde_json::Value]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<2}{:<26} {:<26} {:<16} {:>6}  AS PATH / COMMUNITIES",
        "", "PREFIX", "NEXT HOP", "FROM", "MED"
    )?;
    for route in routes {
        let bgp = field(route, "bgp");
        let as_path: Vec<String> = array(bgp, "as_path").iter().map(text).collect();
        let mut communities: Vec<String> = array(bgp, "communities")
            .iter()
            .map(|pair| {
                let parts: Vec<String> = pair
                    .as_array()
                    .map(|values| values.iter().map(text).collect())
                    .unwrap_or_default();
                format!("({})", parts.join(","))
            })
            .chain(array(bgp, "large_communities").iter().map(|triple| {
                let parts: Vec<String> = triple
                    .as_array()
                    .map(|values| values.iter().map(text).collect())
                    .unwrap_or_default();
                format!("({})", parts.join(":"))
            }))
            .collect();
        if let Some(reason) = route
            .get("filtered")
            .and_then(|filtered| filtered.get("reason"))
        {
            communities.push(format!("FILTERED: {}", text(reason)));
        }
        if let Some(reason) = route.get("not_exported") {
            communities.push(format!("NOT EXPORTED: {}", text(reason)));
        }
        writeln!(
            out,
            "{:<2}{:<26} {:<26} {:<16} {:>6}  {} {}",
            if field(route, "primary").as_bool() == Some(true) {
                "*"
            } else {
                ""
            },
            text(field(route, "network")),
            text(field(route, "gateway")),
            text(field(route, "neighbor_id")),
            text(field(bgp, "med")),
            as_path.join(" "),
            communities.join(" "),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_read_like_uptimes() {
        assert_eq!(format_duration(0), "-");
        assert_eq!(format_duration(61), "00:01:01");
        assert_eq!(format_duration(90_000), "1d01h");
    }

    #[test]
    fn query_text_is_percent_encoded() {
        assert_eq!(encode_query("198.18.0.0/24"), "198.18.0.0%2F24");
        assert_eq!(encode_query("fd00::1"), "fd00::1");
    }
}
