//! `vixp` command line.
fn main() {}
