//! `udp-load`: a UDP packet-rate sender and receiver for the data-path benchmark
//! (`benches/datapath/run`, measure `udp64mmsg`). Both ends move datagrams in batches
//! (`sendmmsg`/`recvmmsg`), so that what is measured is the tunnel between them, not the one
//! system call per datagram that iperf3 makes. Every run is bounded by `--seconds`; the
//! addresses are whatever the benchmark gives (its own namespaces). Must not pace, retry or
//! interpret what it receives: it counts.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::sys::socket::{
    MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt, sockopt,
};
use serde_json::json;

/// Datagrams per `sendmmsg`/`recvmmsg` call.
const BATCH: usize = 64;
/// Room per received datagram: longer ones are counted, truncated.
const RECEIVE_ROOM: usize = 2048;
/// How long a blocked receive waits before the deadline is checked again.
const RECEIVE_TICK: Duration = Duration::from_millis(100);

/// UDP packet-rate load: `send` as fast as the path takes datagrams, `receive` counts them.
/// Prints one JSON object.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sends datagrams of `--size` bytes to `--to` in batches for `--seconds`.
    Send {
        /// Destination address and port.
        #[arg(long)]
        to: SocketAddr,
        /// UDP payload bytes per datagram.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=65_000))]
        size: u16,
        /// How long to send (1-600 s).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        seconds: u64,
    },
    /// Counts the datagrams arriving on `--bind` until `--seconds` have passed, or until one
    /// second passes without any after the first.
    Receive {
        /// Address and port to receive on.
        #[arg(long)]
        bind: SocketAddr,
        /// Longest time to wait in all (1-600 s).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
        seconds: u64,
        /// Receive buffer of the socket in bytes (0: the system's default). Forced past
        /// `net.core.rmem_max` when run as root; else capped by it.
        #[arg(long, default_value_t = 0)]
        buffer: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let report = match Cli::parse().command {
        Command::Send { to, size, seconds } => {
            send(to, usize::from(size), Duration::from_secs(seconds))?
        }
        Command::Receive {
            bind,
            seconds,
            buffer,
        } => {
            let socket = UdpSocket::bind(bind).with_context(|| format!("cannot bind {bind}"))?;
            if buffer > 0 {
                set_receive_buffer(&socket, buffer)?;
            }
            receive(&socket, Duration::from_secs(seconds))?
        }
    };
    println!("{report}");
    Ok(())
}

/// Gives `socket` a receive buffer of `bytes`: forced (CAP_NET_ADMIN) or else as large as
/// `net.core.rmem_max` allows.
fn set_receive_buffer(socket: &UdpSocket, bytes: usize) -> anyhow::Result<()> {
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err() {
        setsockopt(socket, sockopt::RcvBuf, &bytes).context("cannot set SO_RCVBUF")?;
    }
    Ok(())
}

/// Sends `size`-byte datagrams to `to` for `time`; what was sent, as JSON.
fn send(to: SocketAddr, size: usize, time: Duration) -> anyhow::Result<serde_json::Value> {
    let local: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(local).context("cannot open the sending socket")?;
    socket
        .connect(to)
        .with_context(|| format!("cannot connect to {to}"))?;
    let payload = vec![0x5a_u8; size];
    let slices: Vec<[IoSlice<'_>; 1]> = (0..BATCH).map(|_| [IoSlice::new(&payload)]).collect();
    let addresses: Vec<Option<SockaddrStorage>> = vec![None; BATCH];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let (mut sent, mut refused) = (0_u64, 0_u64);
    let started = Instant::now();
    let deadline = started + time;
    while Instant::now() < deadline {
        match sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &slices,
            &addresses,
            [],
            MsgFlags::empty(),
        ) {
            Ok(results) => sent += results.count() as u64,
            // A full queue on the way (ENOBUFS) or an ICMP error from an earlier datagram
            // (ECONNREFUSED): counted, and the sender goes on.
            Err(Errno::ENOBUFS | Errno::EAGAIN | Errno::ECONNREFUSED | Errno::EINTR) => {
                refused += 1;
            }
            Err(error) => return Err(error).context("sendmmsg failed"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(
        json!({"sent": sent, "refused_calls": refused, "seconds": elapsed,
              "rate": sent as f64 / elapsed}),
    )
}

/// Counts what arrives on `socket` for at most `time` (or until a second passes without any
/// after the first); what was read and dropped, as JSON.
fn receive(socket: &UdpSocket, time: Duration) -> anyhow::Result<serde_json::Value> {
    let bind = socket.local_addr()?;
    socket.set_read_timeout(Some(RECEIVE_TICK))?;
    let mut buffers = vec![[0_u8; RECEIVE_ROOM]; BATCH];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let deadline = Instant::now() + time;
    let (mut received, mut bytes) = (0_u64, 0_u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while Instant::now() < deadline {
        if first.is_some() && last.elapsed() > Duration::from_secs(1) {
            break;
        }
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers
            .iter_mut()
            .map(|buffer| [IoSliceMut::new(buffer)])
            .collect();
        match recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        ) {
            Ok(results) => {
                let now = Instant::now();
                for message in results {
                    received += 1;
                    bytes += message.bytes as u64;
                }
                first.get_or_insert(now);
                last = now;
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(error) => return Err(error).context("recvmmsg failed"),
        }
    }
    let window = first.map_or(0.0, |first| (last - first).as_secs_f64());
    let dropped = socket_drops(bind.is_ipv4(), bind.port());
    let rate = if window > 0.0 {
        received as f64 / window
    } else {
        0.0
    };
    Ok(
        json!({"received": received, "bytes": bytes, "seconds": window, "rate": rate,
              "dropped": dropped}),
    )
}

/// Datagrams the kernel dropped at the receiving socket because it was full: the `drops`
/// column of its line in `/proc/net/udp` (or `udp6`), found by local port.
fn socket_drops(ipv4: bool, port: u16) -> Option<u64> {
    let table = std::fs::read_to_string(if ipv4 {
        "/proc/net/udp"
    } else {
        "/proc/net/udp6"
    })
    .ok()?;
    let wanted = format!("{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields.get(1)?.rsplit_once(':')?.1;
        (local_port == wanted).then(|| fields.last()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_buffer_is_the_one_asked_for() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let default = nix::sys::socket::getsockopt(&socket, sockopt::RcvBuf).expect("SO_RCVBUF");
        // Forced past net.core.rmem_max as root (the suite runs as root); the kernel reports
        // twice what was set (room for its bookkeeping).
        set_receive_buffer(&socket, 1 << 20).expect("set");
        let now = nix::sys::socket::getsockopt(&socket, sockopt::RcvBuf).expect("SO_RCVBUF");
        assert!(now >= 1 << 20 && now > default, "{default} -> {now}");
    }

    #[test]
    fn what_is_sent_over_loopback_is_counted_as_read_or_dropped() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = socket.local_addr().expect("address");
        let receiver = std::thread::spawn(move || receive(&socket, Duration::from_secs(10)));
        let sent = send(to, 64, Duration::from_millis(300)).expect("send");
        let received = receiver.join().expect("receiver").expect("receive");
        let sent = sent["sent"].as_u64().expect("sent count");
        let read = received["received"].as_u64().expect("read count");
        let dropped = received["dropped"].as_u64().expect("the socket's drops");
        assert!(sent > 1000, "{sent}");
        assert!(read > 0 && read <= sent, "{read} of {sent}");
        // Loopback loses nothing on the way: every datagram was read or overflowed the socket.
        assert_eq!(read + dropped, sent, "{received}");
        assert_eq!(received["bytes"].as_u64(), Some(read * 64));
    }
}
