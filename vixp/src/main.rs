//! `vixp`: the fabric node's command line. Thin: parses arguments and calls the library; owns
//! no logic of its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use vixp::keys::{PrivateKey, encode_key};
use vixp::node::NodeFile;
use vixp_fabric::Fabric;

/// vixp fabric node: joins a member to the exchange's encrypted peering LAN.
#[derive(Debug, Parser)]
#[command(name = "vixp", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Default node file.
const DEFAULT_NODE_FILE: &str = "/etc/vixp/node.yaml";

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a WireGuard private key (file created with mode 0600) and print its public key
    /// for the fabric file.
    Keygen {
        /// Where to write the private key; `-` writes it to stdout and the public key to
        /// stderr. An existing file is never overwritten.
        #[arg(long, short, default_value = "/etc/vixp/private.key")]
        output: PathBuf,
    },
    /// Print the public key of a private key file, as `wg pubkey` does (for the fabric file;
    /// the deployment reads it back without the private key leaving the host).
    Pubkey {
        /// The private key file (mode 0600 or stricter).
        #[arg(long, short, default_value = "/etc/vixp/private.key")]
        key: PathBuf,
    },
    /// Check a node file with its fabric file and private key (or only a fabric file): exit 0
    /// when valid, else print one `FILE:LINE: field: problem` line per problem and exit 1.
    Check {
        /// The node file.
        #[arg(long, short = 'c', default_value = DEFAULT_NODE_FILE, conflicts_with = "fabric")]
        config: PathBuf,
        /// Check only this fabric file.
        #[arg(long)]
        fabric: Option<PathBuf>,
    },
    /// Join the fabric: create the TAP device, run the tunnels, serve status and metrics, in
    /// the foreground until SIGTERM or SIGINT. SIGHUP or a changed fabric file reloads the
    /// fabric.
    Up {
        /// The node file.
        #[arg(long, short = 'c', default_value = DEFAULT_NODE_FILE)]
        config: PathBuf,
    },
    /// Show a running node's peers, endpoints, handshakes, traffic and drops.
    Status {
        /// The node file (its control socket is asked).
        #[arg(long, short = 'c', default_value = DEFAULT_NODE_FILE)]
        config: PathBuf,
        /// Ask this control socket instead of the node file's.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the BGP configuration a member pastes into its router: sessions with every route
    /// server, import and export filters, max-prefix limits (see docs/member-guide.md).
    RouterConfig {
        /// The member's router software.
        dialect: vixp::router_config::Dialect,
        /// The node file (its fabric file and member are used).
        #[arg(long, short = 'c', default_value = DEFAULT_NODE_FILE, conflicts_with = "fabric")]
        config: PathBuf,
        /// Use this fabric file instead of the node file's (needs --member).
        #[arg(long, requires = "member")]
        fabric: Option<PathBuf>,
        /// The member to write the configuration for (with --fabric).
        #[arg(long, requires = "fabric")]
        member: Option<String>,
        /// One of your own prefixes to export to the exchange (repeatable); without any,
        /// nothing is exported until you fill the list in the output.
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<ipnet::IpNet>,
    },
    /// Print shell completions.
    Completions {
        /// Shell to generate for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Keygen { output } => keygen(&output),
        Command::Pubkey { key } => pubkey(&key),
        Command::Check {
            fabric: Some(fabric),
            ..
        } => check_fabric(&fabric),
        Command::Check { config, .. } => check_node(&config),
        Command::Up { config } => run(up(&config)),
        Command::Status {
            config,
            socket,
            json,
        } => run(status(&config, socket.as_deref(), json)),
        Command::RouterConfig {
            dialect,
            config,
            fabric,
            member,
            prefixes,
        } => run_sync(router_config(
            dialect,
            &config,
            fabric.zip(member),
            &prefixes,
        )),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "vixp", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// Runs an async command on a tokio runtime and turns its error into a message and exit 1.
fn run(command: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vixp: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a synchronous command's error and turns it into exit 1. The errors name their file
/// and cause themselves, so only the outermost message is printed.
fn run_sync(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `vixp router-config`: from `--fabric` and `--member`, else from the node file.
fn router_config(
    dialect: vixp::router_config::Dialect,
    config: &Path,
    fabric_and_member: Option<(PathBuf, String)>,
    prefixes: &[ipnet::IpNet],
) -> anyhow::Result<()> {
    let (fabric, member) = match fabric_and_member {
        Some(given) => given,
        None => {
            let node = NodeFile::load(config)?;
            (node.fabric, node.member)
        }
    };
    let fabric = Fabric::load(&fabric)?;
    print!(
        "{}",
        vixp::router_config::render(dialect, &fabric, &member, prefixes)?
    );
    Ok(())
}

/// `vixp up`.
async fn up(config: &Path) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    vixp::driver::up(config).await
}

/// `vixp status`.
async fn status(config: &Path, socket: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let socket = match socket {
        Some(socket) => socket.to_path_buf(),
        None => NodeFile::load(config)?.control_socket,
    };
    let status = vixp::driver::request_status(&socket).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status.render(std::time::SystemTime::now()));
    }
    Ok(())
}

/// `vixp keygen`.
fn keygen(output: &Path) -> ExitCode {
    let key = match PrivateKey::generate() {
        Ok(key) => key,
        Err(error) => {
            eprintln!("vixp keygen: cannot read random bytes: {error}");
            return ExitCode::FAILURE;
        }
    };
    let public = encode_key(&key.public_key());
    if output == Path::new("-") {
        println!("{}", key.to_base64());
        eprintln!("{public}");
        return ExitCode::SUCCESS;
    }
    match key.write_new(output) {
        Ok(()) => {
            println!("{public}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `vixp pubkey`.
fn pubkey(key: &Path) -> ExitCode {
    match PrivateKey::read(key) {
        Ok(key) => {
            println!("{}", encode_key(&key.public_key()));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `vixp check --fabric FILE`.
fn check_fabric(fabric: &Path) -> ExitCode {
    match Fabric::load(fabric) {
        Ok(loaded) => {
            println!(
                "{}: ok: exchange {}, {} member(s)",
                fabric.display(),
                loaded.exchange.name,
                loaded.members.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `vixp check -c node.yaml`.
fn check_node(config: &Path) -> ExitCode {
    let resolved = NodeFile::load(config)
        .map_err(vixp::node::ResolveError::from)
        .and_then(NodeFile::resolve);
    match resolved {
        Ok(resolved) => {
            println!(
                "{}: ok: {} in exchange {} ({}), {} peer(s), interface {}, UDP port {}",
                config.display(),
                resolved.own.name,
                resolved.fabric.exchange.name,
                resolved.node.fabric.display(),
                resolved.peers.len(),
                resolved.node.interface,
                resolved.listen_port
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
