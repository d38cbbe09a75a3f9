//! `route-server` command line.
fn main() {}
