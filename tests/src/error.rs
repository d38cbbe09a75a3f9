//! The harness's error type. Owns the error vocabulary only; must not print or panic.

use std::{io, path::PathBuf};

/// What went wrong while driving a namespace, a daemon or a daemon's CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program that was started.
        program: String,
        /// Why the operating system refused.
        source: io::Error,
    },
    /// A program ran and exited unsuccessfully.
    #[error("`{command}` exited with {status}: {stderr}")]
    Command {
        /// The whole command line, for the reader.
        command: String,
        /// The exit status as printed by the standard library.
        status: String,
        /// What the program wrote on standard error (and output when stderr was empty).
        stderr: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A daemon's output did not have the expected shape.
    #[error("cannot parse {what} output: {detail}")]
    Parse {
        /// Which output (for example `birdc show route`).
        what: &'static str,
        /// The line or value that did not parse, and why.
        detail: String,
    },
}
