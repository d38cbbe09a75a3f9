//! `route-server`: the vixp route server. Thin: parses the command line and hands over to `cli`.

fn main() -> std::process::ExitCode {
    route_server::cli::main()
}
