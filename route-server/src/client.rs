//! A minimal HTTP/1.1 client for the CLI's `show` commands against the route server's own
//! read-only API on a local address. Must not be used for anything but that API.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a `show` command waits for the route server.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `path` from the API at `address` and parses the JSON body.
pub async fn get_json(address: SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    let exchange = async {
        let mut stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot reach the route server's HTTP API at {address}; is it running, and is `http` in the fabric file this address?"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("no answer from {address} within {} s", TIMEOUT.as_secs()))??;
    let text = String::from_utf8_lossy(&response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("malformed HTTP response from {address}");
    };
    let status_line = head.lines().next().unwrap_or_default();
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    let value: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("{address}{path} did not return JSON ({status_line})"))?;
    if !status_line.contains(" 200 ") {
        let error = value
            .get("error")
            .and_then(|error| error.as_str())
            .unwrap_or(status_line);
        bail!("{error}");
    }
    Ok(value)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"), "{\"a\":1}");
    }
}
