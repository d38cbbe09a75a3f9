//! `vixp`: the fabric node. So far it checks fabric files; joining the WireGuard peering LAN
//! (`keygen`, `up`, `status`) is being built next (see the issues).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use vixp_fabric::Fabric;

/// vixp fabric node: joins a member to the exchange's encrypted peering LAN.
#[derive(Debug, Parser)]
#[command(name = "vixp", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a fabric file: exit 0 when valid, else print one `FILE:LINE: field: problem` line
    /// per problem and exit 1.
    Check {
        /// The fabric file.
        #[arg(long, default_value = "/etc/vixp/fabric.yaml")]
        fabric: PathBuf,
    },
    /// Print shell completions.
    Completions {
        /// Shell to generate for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { fabric } => match Fabric::load(&fabric) {
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
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "vixp", &mut std::io::stdout());
            ExitCode::SUCCESS
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
