//! The control socket's server side: binds the unix socket (mode 0600, its directory 0700 when
//! created here), reads one command per connection and hands reload requests to the driver's
//! main loop, which answers with the [`ReloadReport`]. Must not apply anything itself.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::control::{RELOAD, ReloadReport};

/// Longest command line accepted.
const MAX_COMMAND: u64 = 256;
/// How long a client may take to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the control socket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPlace {
    /// The socket's path.
    pub path: PathBuf,
    /// Whether the operator named it (a clash is then an error, not a warning).
    pub explicit: bool,
}

/// A reload asked for on the control socket; the reply goes back to the client.
pub type ReloadRequest = oneshot::Sender<ReloadReport>;

/// A bound control socket; removes its file when dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket at `place`. A stale socket file (nobody answers) is replaced. A
/// socket another running route server answers on is an error when the path was asked for
/// explicitly; for the default path it is a warning and this route server runs without one
/// (`route-server reload` then reaches the other), so a second instance never fails to start
/// for it.
pub fn bind(place: &SocketPlace) -> anyhow::Result<Option<ControlSocket>> {
    let path = &place.path;
    if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !directory.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(directory)
            .with_context(|| {
                format!(
                    "cannot create the control socket directory {} (choose another with \
                     --runtime-dir or --control-socket)",
                    directory.display()
                )
            })?;
    }
    if path.exists() {
        if is_live(path) {
            if place.explicit {
                bail!(
                    "control socket {} is in use by another running route server",
                    path.display()
                );
            }
            warn!(socket = %path.display(),
                "control socket in use by another running route server: running without one \
                 (give each route server its own with --control-socket)");
            return Ok(None);
        }
        std::fs::remove_file(path).with_context(|| {
            format!("cannot remove the stale control socket {}", path.display())
        })?;
    }
    let listener = UnixListener::bind(path).with_context(|| {
        format!(
            "cannot create the control socket {} (choose another with --runtime-dir or \
             --control-socket)",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
    info!(socket = %path.display(), "control socket listening (route-server reload)");
    Ok(Some(ControlSocket {
        listener,
        path: path.clone(),
    }))
}

/// Serves the control socket until shutdown.
pub async fn serve(
    socket: ControlSocket,
    requests: mpsc::Sender<ReloadRequest>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = socket.listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, requests.clone()));
            }
            Err(error) => {
                warn!(%error, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(stream: UnixStream, requests: mpsc::Sender<ReloadRequest>) {
    let (read_half, mut write_half) = stream.into_split();
    let mut lines = BufReader::new(read_half.take(MAX_COMMAND)).lines();
    let command = match tokio::time::timeout(COMMAND_TIMEOUT, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        _ => return,
    };
    let command = command.trim();
    debug!(command, "control command");
    let reply = if command == RELOAD {
        let (reply, report) = oneshot::channel();
        if requests.send(reply).await.is_err() {
            error_line("the route server is shutting down")
        } else {
            match report.await {
                Ok(report) => serde_json::to_string(&report)
                    .unwrap_or_else(|error| error_line(&error.to_string())),
                Err(_) => error_line("the route server is shutting down"),
            }
        }
    } else {
        error_line(&format!("unknown command {command:?}; valid: {RELOAD}"))
    };
    let _ = write_half.write_all(format!("{reply}\n").as_bytes()).await;
    let _ = write_half.shutdown().await;
}

fn error_line(error: &str) -> String {
    serde_json::json!({ "error": error }).to_string()
}

/// True when `path` names a control socket a running route server answers on.
pub fn is_live(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_is_kept() {
        let directory = std::env::temp_dir().join(format!("rs-control-{}", std::process::id()));
        let place = SocketPlace {
            path: directory.join("nested").join("rs1.sock"),
            explicit: true,
        };
        let first = bind(&place).expect("bind").expect("socket");
        let mode = std::fs::metadata(&place.path)
            .expect("socket file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let parent_mode = std::fs::metadata(directory.join("nested"))
            .expect("directory")
            .permissions()
            .mode();
        assert_eq!(parent_mode & 0o777, 0o700);
        assert!(is_live(&place.path));
        let clash = bind(&place).expect_err("explicit clash is an error");
        assert!(clash.to_string().contains("in use"), "{clash}");
        let default = SocketPlace {
            explicit: false,
            ..place.clone()
        };
        assert!(bind(&default).expect("warning only").is_none());
        drop(first);
        assert!(!place.path.exists(), "dropping removes the socket file");
        // A stale file (nobody listening) is replaced.
        let stale = std::os::unix::net::UnixListener::bind(&place.path).expect("stale");
        drop(stale);
        assert!(place.path.exists() && !is_live(&place.path));
        let again = bind(&place).expect("bind over stale").expect("socket");
        assert!(is_live(&place.path));
        drop(again);
        let _ = std::fs::remove_dir_all(&directory);
    }
}
