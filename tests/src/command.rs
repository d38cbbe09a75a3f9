//! Running short-lived commands and collecting their output. Owns process spawning for
//! one-shot tools (`ip`, `birdc`, `gobgp`, `curl`); must not start long-running daemons (see
//! [`crate::daemon`]).

use std::process::Command;

use crate::error::Error;

/// Runs `program args...` to completion and returns its standard output; a non-zero exit is an
/// [`Error::Command`] carrying standard error.
pub fn run(program: &str, args: &[&str]) -> Result<String, Error> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(Error::Command {
        command: format!("{program} {}", args.join(" ")),
        status: output.status.to_string(),
        stderr: if stderr.is_empty() {
            stdout.trim().to_owned()
        } else {
            stderr
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_standard_output() {
        assert_eq!(run("echo", &["hello"]).expect("echo"), "hello\n");
    }

    #[test]
    fn failure_carries_the_command_and_standard_error() {
        let error = run("sh", &["-c", "echo oops >&2; exit 3"]).expect_err("must fail");
        let text = error.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("oops"), "{text}");
        assert!(text.contains('3'), "{text}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let error = run("/nonexistent/vixp-program", &[]).expect_err("must fail");
        assert!(matches!(error, Error::Spawn { .. }), "{error}");
    }
}
