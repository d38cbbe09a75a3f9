//! Long-running processes inside a namespace. Owns exactly the processes it spawned: kills that
//! PID and reaps it on drop; must never signal a process by name or pattern.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::{error::Error, netns::Netns};

/// How many log lines [`Daemon::log_tail`] shows by default in failure messages.
pub const TAIL_LINES: usize = 40;

/// A process started with `ip netns exec NS setpriv --pdeathsig KILL program args...`; both
/// `ip netns exec` and `setpriv` exec in place, so the PID is the daemon's own. The parent-death
/// signal kills the daemon even when the test process is killed before any `Drop` runs. The
/// kernel sends it when the *thread* that spawned the daemon exits, so keep a daemon within
/// the thread (the test) that started it.
/// Standard output and error go to a log file.
#[derive(Debug)]
pub struct Daemon {
    label: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `program args...` in `netns`, logging to `log`; `label` names it in messages.
    pub fn spawn(
        label: &str,
        netns: &Netns,
        program: &str,
        args: &[String],
        log: &Path,
    ) -> Result<Self, Error> {
        let file_error = |source| Error::File {
            path: log.to_path_buf(),
            source,
        };
        let stdout = File::create(log).map_err(file_error)?;
        let stderr = stdout.try_clone().map_err(file_error)?;
        let mut guarded = vec![
            "--pdeathsig".to_owned(),
            "KILL".to_owned(),
            program.to_owned(),
        ];
        guarded.extend(args.iter().cloned());
        let child = Command::new("ip")
            .args(netns.exec_args("setpriv", &guarded))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.to_owned(),
                source,
            })?;
        Ok(Self {
            label: label.to_owned(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The daemon's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The daemon's PID while it is being managed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills exactly this PID with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The path of the daemon's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the daemon's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "--- last {} lines of {} ({}) ---\n{}",
            all.len() - start,
            self.label,
            self.log.display(),
            all[start..].join("\n")
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temp::TempDir;

    #[test]
    fn pid_is_the_program_itself_and_is_killed_on_drop() {
        let netns = Netns::new().expect("namespace");
        let dir = TempDir::new("daemon").expect("temp");
        let log = dir.path().join("sleep.log");
        let mut daemon =
            Daemon::spawn("sleeper", &netns, "sleep", &["600".to_owned()], &log).expect("spawn");
        let pid = daemon.pid().expect("pid");
        assert!(daemon.is_running());
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let comm_path = proc_dir.join("comm");
        crate::wait::wait_until(std::time::Duration::from_secs(5), "exec of sleep", || {
            fs::read_to_string(&comm_path).is_ok_and(|comm| comm.trim() == "sleep")
        });
        drop(daemon);
        assert!(!proc_dir.exists(), "process {pid} still exists after drop");
    }

    /// Set in the child copy of the test binary that plays a test process killed early.
    const ORPHAN_CHILD: &str = "VIXP_TESTS_ORPHAN_CHILD";

    #[test]
    fn daemon_dies_with_the_test_process_even_without_drop() {
        if std::env::var_os(ORPHAN_CHILD).is_some() {
            // The child: start a daemon and exit without running any destructor, as a test
            // process killed by a signal or a CI timeout would.
            let netns = Netns::new().expect("namespace");
            let dir = TempDir::new("daemon-orphan").expect("temp");
            let log = dir.path().join("sleep.log");
            let daemon =
                Daemon::spawn("orphan", &netns, "sleep", &["600".to_owned()], &log).expect("spawn");
            let pid = daemon.pid().expect("pid");
            // setpriv arms the signal only once it runs; a real test dies long after that.
            let comm = PathBuf::from(format!("/proc/{pid}/comm"));
            crate::wait::wait_until(std::time::Duration::from_secs(5), "exec of sleep", || {
                fs::read_to_string(&comm).is_ok_and(|name| name.trim() == "sleep")
            });
            println!("orphan-pid={pid}");
            std::mem::forget(daemon);
            drop(netns);
            drop(dir);
            std::process::exit(0);
        }
        let exe = std::env::current_exe().expect("test binary");
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "daemon::tests::daemon_dies_with_the_test_process_even_without_drop",
                "--nocapture",
            ])
            .env(ORPHAN_CHILD, "1")
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let pid: u32 = stdout
            .lines()
            .find_map(|line| line.strip_prefix("orphan-pid="))
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| panic!("child printed no pid: {stdout}"));
        let status = PathBuf::from(format!("/proc/{pid}/status"));
        crate::wait::wait_until(
            std::time::Duration::from_secs(5),
            &format!("orphan daemon {pid} to die"),
            || {
                // Gone, or a zombie left for init to reap: either way no longer running.
                fs::read_to_string(&status).map_or(true, |text| {
                    text.lines()
                        .any(|line| line.starts_with("State:") && line.contains("zombie"))
                })
            },
        );
    }

    #[test]
    fn log_tail_shows_the_last_lines() {
        let netns = Netns::new().expect("namespace");
        let dir = TempDir::new("daemon-log").expect("temp");
        let log = dir.path().join("out.log");
        let script = "for i in 1 2 3 4 5; do echo line$i; done; echo err >&2".to_owned();
        let mut daemon = Daemon::spawn("printer", &netns, "sh", &["-c".to_owned(), script], &log)
            .expect("spawn");
        crate::wait::wait_until(std::time::Duration::from_secs(5), "printer to exit", || {
            !daemon.is_running()
        });
        let tail = daemon.log_tail(3);
        assert!(tail.contains("printer"), "{tail}");
        assert!(tail.contains("line4\nline5\nerr"), "{tail}");
        assert!(!tail.contains("line3"), "{tail}");
    }
}
