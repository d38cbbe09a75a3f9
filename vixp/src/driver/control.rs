//! The control socket: a Unix stream socket where a client writes one JSON request line and
//! reads one JSON reply line. Serves `vixp status` from the driver's latest snapshot; must not
//! change the node.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::status::Status;

/// Longest request line read, in bytes.
const MAX_REQUEST: u64 = 4096;
/// Longest reply read by the client, in bytes.
const MAX_REPLY: u64 = 64 * 1024 * 1024;

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// The node's [`Status`].
    Status,
}

/// A reply on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The status asked for.
    Status(Box<Status>),
    /// The request was not understood.
    Error(String),
}

/// The listening control socket; the file is removed when this is dropped.
pub struct ControlSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ControlSocket {
    /// Binds `path`, creating its directory; refuses when another node answers there, and
    /// replaces a stale socket file left by a node that died.
    pub async fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
        if let Some(directory) = path.parent() {
            std::fs::create_dir_all(directory)
                .with_context(|| format!("cannot create {}", directory.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                anyhow::bail!(
                    "{}: another vixp node is running with this control socket",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale {}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(ControlSocket {
            path: path.to_path_buf(),
            listener,
        })
    }

    /// Serves requests until the task is dropped, answering from `status`.
    pub async fn serve(self, status: Arc<Mutex<Status>>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                continue;
            };
            let status = Arc::clone(&status);
            tokio::spawn(async move {
                if let Err(error) = answer(stream, &status).await {
                    tracing::debug!(%error, "control connection failed");
                }
            });
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers one connection.
async fn answer(stream: UnixStream, status: &Mutex<Status>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    BufReader::new(reader.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Status) => Reply::Status(Box::new(match status.lock() {
            Ok(status) => status.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })),
        Err(error) => Reply::Error(format!("bad request: {error}")),
    };
    let mut text = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
    text.push('\n');
    writer.write_all(text.as_bytes()).await?;
    writer.shutdown().await
}

/// Asks the node listening on `path` for its status.
pub async fn request_status(path: &Path) -> anyhow::Result<Status> {
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "{}: cannot connect; is `vixp up` running with this control socket?",
            path.display()
        )
    })?;
    let (reader, mut writer) = stream.into_split();
    let mut request = serde_json::to_string(&Request::Status)?;
    request.push('\n');
    writer.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    reader.take(MAX_REPLY).read_to_string(&mut text).await?;
    match serde_json::from_str::<Reply>(&text)
        .with_context(|| format!("{}: unreadable reply", path.display()))?
    {
        Reply::Status(status) => Ok(*status),
        Reply::Error(message) => anyhow::bail!("{}: {message}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_reads_the_status_and_the_socket_file_goes_with_the_server() {
        let path = std::env::temp_dir().join(format!("vixp-control-{}.sock", std::process::id()));
        let status = Arc::new(Mutex::new(Status {
            node: "alpha".to_owned(),
            handshakes: 7,
            ..Status::default()
        }));
        let socket = ControlSocket::bind(&path).await.expect("bind");
        let server = tokio::spawn(socket.serve(Arc::clone(&status)));
        let read = request_status(&path).await.expect("status");
        assert_eq!(read.node, "alpha");
        assert_eq!(read.handshakes, 7);
        // A second node on the same socket is refused while the first runs.
        assert!(ControlSocket::bind(&path).await.is_err());
        server.abort();
        let _ = server.await;
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_bad_request_gets_an_error_reply() {
        let path =
            std::env::temp_dir().join(format!("vixp-control-bad-{}.sock", std::process::id()));
        let socket = ControlSocket::bind(&path).await.expect("bind");
        let server = tokio::spawn(socket.serve(Arc::new(Mutex::new(Status::default()))));
        let mut stream = UnixStream::connect(&path).await.expect("connect");
        stream
            .write_all(b"{\"command\":\"reboot\"}\n")
            .await
            .expect("write");
        let mut text = String::new();
        stream.read_to_string(&mut text).await.expect("read");
        assert!(text.starts_with("{\"error\":\"bad request"), "{text}");
        server.abort();
        let _ = server.await;
    }
}
