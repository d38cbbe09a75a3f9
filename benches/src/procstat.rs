//! Reads a daemon's memory and CPU figures from procfs (proc(5)). Reads only; never signals.

use std::process::Command;

use anyhow::{Context as _, bail};

/// Resident memory and CPU time of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// User plus system CPU time so far (`utime + stime`), seconds.
    pub cpu_seconds: f64,
}

/// Clock ticks per second for `/proc/PID/stat` times, from `getconf CLK_TCK` (100 if that fails).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// Reads the figures of process `pid`.
///
/// # Errors
/// The process is gone or procfs has an unexpected format.
pub fn read(pid: u32, ticks_per_second: f64) -> anyhow::Result<ProcessStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(ProcessStats {
        rss_kib: status_field(&status, "VmRSS:")?,
        peak_rss_kib: status_field(&status, "VmHWM:")?,
        cpu_seconds: cpu_ticks(&stat)? as f64 / ticks_per_second,
    })
}

/// The KiB value of a `Name:   1234 kB` line of `/proc/PID/status`.
fn status_field(status: &str, name: &str) -> anyhow::Result<u64> {
    let Some(line) = status.lines().find(|line| line.starts_with(name)) else {
        bail!("no {name} in /proc status");
    };
    line[name.len()..]
        .split_whitespace()
        .next()
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("bad {name} line: {line}"))
}

/// `utime + stime` (fields 14 and 15) of `/proc/PID/stat`, counted after the `comm` field,
/// which may itself hold spaces and parentheses.
fn cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let after_comm = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .context("no comm in stat")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |number: usize| -> anyhow::Result<u64> {
        fields
            .get(number - 3)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("no field {number} in /proc stat"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_a_comm_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 100 10";
        assert_eq!(cpu_ticks(stat).expect("parses"), 300);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        let stats = read(std::process::id(), clock_ticks()).expect("reads procfs");
        assert!(stats.rss_kib > 0 && stats.peak_rss_kib >= stats.rss_kib);
    }
}
