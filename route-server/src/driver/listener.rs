//! BGP listeners: accept TCP connections and hand each to the neighbor task of the member that
//! owns the source address. Connections from any other address are refused and counted. Must
//! not read or write BGP messages.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::metrics::{Metrics, RefusedLabels};

/// Backlog of pending connections per listener.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket with SO_REUSEADDR, so a restarted route server can listen at once.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        other => other,
    }
}

/// Where accepted connections go: the neighbor task of each member LAN address. Replaced when a
/// reload adds or removes neighbors.
pub type Routing = Arc<HashMap<IpAddr, mpsc::Sender<TcpStream>>>;

/// Accepts connections until shutdown.
pub async fn accept_loop(
    listener: TcpListener,
    neighbors: watch::Receiver<Routing>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = canonical(remote.ip());
        let sender = neighbors.borrow().get(&source).cloned();
        let Some(sender) = sender else {
            warn!(%remote, "refused BGP connection: address is not a member's LAN address");
            metrics
                .connections_refused
                .get_or_create(&RefusedLabels {
                    reason: "unknown_address".to_string(),
                })
                .inc();
            continue;
        };
        match sender.try_send(stream) {
            Ok(()) => debug!(%remote, "accepted BGP connection"),
            _ => {
                warn!(%remote, "refused BGP connection: neighbor busy");
                metrics
                    .connections_refused
                    .get_or_create(&RefusedLabels {
                        reason: "neighbor_busy".to_string(),
                    })
                    .inc();
            }
        }
    }
}
