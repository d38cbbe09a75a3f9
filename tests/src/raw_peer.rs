//! A raw BGP member for daemon tests: vixp-bgp's own sans-IO session over a real TCP connection
//! to the route server, with the routes it was sent. Shared by the route-server daemon tests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use vixp_bgp::session::Direction;
use vixp_bgp::{
    Attributes, DownReason, Event, Family, Prefix, Session, SessionConfig, encode_announcements,
};

/// A member's BGP speaker for a test: our own sans-IO session over a real TCP connection.
pub struct RawPeer {
    stream: TcpStream,
    session: Session,
    /// Routes the route server sent and has not withdrawn.
    pub routes: HashMap<Prefix, Attributes>,
    /// Whether the session is Established.
    pub established: bool,
    /// Why the session went down, once it did.
    pub down: Option<DownReason>,
}

impl RawPeer {
    /// Connects from `local` to the route server at `server` (AS `rs_asn`) as AS `asn`, IPv4
    /// unicast; the session is not established yet.
    pub async fn connect(local: Ipv4Addr, server: SocketAddr, asn: u32, rs_asn: u32) -> RawPeer {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(local), 0))
            .expect("bind member address");
        let stream = socket.connect(server).await.expect("connect");
        let config = SessionConfig {
            local_asn: asn,
            local_id: local,
            peer_asn: rs_asn,
            hold_time: 30,
            families: vec![Family::Ipv4],
            extended_messages: false,
            route_refresh: true,
        };
        let session = Session::new(config, Direction::Outgoing, Instant::now());
        RawPeer {
            stream,
            session,
            routes: HashMap::new(),
            established: false,
            down: None,
        }
    }

    /// Sends what the session queued and takes in its events.
    pub async fn flush(&mut self) {
        while let Some(bytes) = self.session.poll_transmit() {
            if self.stream.write_all(&bytes).await.is_err() {
                break;
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Established(_) => self.established = true,
                Event::Update(update) => {
                    for prefix in update.withdrawn {
                        self.routes.remove(&prefix);
                    }
                    for announcement in update.announcements {
                        for prefix in announcement.prefixes {
                            self.routes.insert(prefix, announcement.attributes.clone());
                        }
                    }
                }
                Event::RouteRefresh(_) => {}
                Event::Down(reason) => {
                    self.established = false;
                    self.down = Some(reason);
                }
            }
        }
    }

    /// Runs the session until `done` holds or `timeout` passes; returns whether `done` held.
    pub async fn pump_until(&mut self, timeout: Duration, done: impl Fn(&RawPeer) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 65536];
        loop {
            self.flush().await;
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.down.is_some() {
                return done(self);
            }
            let wake = self
                .session
                .poll_timeout()
                .map_or(deadline, |at| at.min(deadline));
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            match tokio::time::timeout(wait, self.stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => self.session.handle_connection_closed(Instant::now()),
                Ok(Ok(count)) => self
                    .session
                    .handle_received(&buffer[..count], Instant::now()),
                Err(_) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    /// Keeps the session running for `duration` (answering keepalives).
    pub async fn pump(&mut self, duration: Duration) {
        self.pump_until(duration, |_| false).await;
    }

    /// Announces `prefixes` with `attributes` in as few UPDATEs as they fit.
    pub async fn announce(&mut self, attributes: &Attributes, prefixes: &[Prefix]) {
        let context = self
            .session
            .negotiated()
            .expect("established")
            .encode_context();
        let mut messages = Vec::new();
        encode_announcements(attributes, prefixes, &context, &mut messages);
        for message in messages {
            self.session.send_update(message, Instant::now());
        }
        self.flush().await;
    }

    /// Writes `bytes` to the connection as they are, past the session.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw write");
    }

    /// The (code, subcode) of the NOTIFICATION the route server sent, if one ended the session.
    pub fn notification_received(&self) -> Option<(u8, u8)> {
        match &self.down {
            Some(DownReason::NotificationReceived(notification)) => {
                Some((notification.code, notification.subcode))
            }
            _ => None,
        }
    }

    /// The prefixes this peer holds, sorted, as text.
    pub fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = self.routes.keys().map(ToString::to_string).collect();
        prefixes.sort();
        prefixes
    }
}
