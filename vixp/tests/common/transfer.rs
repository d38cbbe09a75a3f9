//! TCP transfers between namespaces that check every byte: the sender writes a deterministic
//! pattern, the receiver regenerates it and reports the first byte that differs.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use super::Namespace;

/// Size of the pieces the sender writes.
pub const CHUNK: usize = 64 * 1024;
/// Seed of the pattern.
pub const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Port of the test's TCP listener.
pub const PORT: u16 = 5001;

/// Deterministic bytes (xorshift), the same at both ends.
pub struct Pattern(pub u64);

impl Pattern {
    pub fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Runs `work` on a thread that has entered `namespace`'s network namespace.
pub fn in_namespace<T: Send + 'static>(
    namespace: &Namespace,
    work: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{}", namespace.name);
    thread::spawn(move || {
        let file = fs::File::open(&path).expect("namespace file");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        work()
    })
}

/// Sends `bytes` of the pattern (a multiple of [`CHUNK`]) over TCP from namespace `from` to
/// `to_address` in namespace `to`; returns how many bytes the receiver got and the offset of
/// the first wrong byte.
pub fn transfer(
    from: &Namespace,
    to: &Namespace,
    to_address: IpAddr,
    bytes: usize,
) -> (usize, Option<usize>) {
    let address = SocketAddr::new(to_address, PORT);
    let listener = in_namespace(to, move || TcpListener::bind(address).expect("listen"))
        .join()
        .expect("listener thread");
    let receiver = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        // The sender writes the pattern in CHUNK-byte pieces: the receiver regenerates them.
        let mut expected = Pattern(SEED);
        let mut wanted = vec![0u8; CHUNK];
        expected.fill(&mut wanted);
        let mut position = 0;
        let mut buffer = vec![0u8; CHUNK];
        let mut received = 0usize;
        let mut first_wrong = None;
        loop {
            let length = match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(length) => length,
            };
            let mut bytes = &buffer[..length];
            while !bytes.is_empty() {
                if position == CHUNK {
                    expected.fill(&mut wanted);
                    position = 0;
                }
                let take = bytes.len().min(CHUNK - position);
                if bytes[..take] != wanted[position..position + take] && first_wrong.is_none() {
                    first_wrong = Some(received);
                }
                position += take;
                received += take;
                bytes = &bytes[take..];
            }
        }
        (received, first_wrong)
    });
    let sender = in_namespace(from, move || {
        let mut stream =
            TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect");
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut pattern = Pattern(SEED);
        let mut chunk = vec![0u8; CHUNK];
        let mut sent = 0;
        while sent < bytes {
            pattern.fill(&mut chunk);
            stream.write_all(&chunk).expect("send");
            sent += chunk.len();
        }
        sent
    });
    let sent = sender.join().expect("sender thread");
    assert_eq!(sent, bytes);
    receiver.join().expect("receiver thread")
}
