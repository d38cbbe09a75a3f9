//! systemd's readiness protocol (`sd_notify(3)`): a daemon run as a `Type=notify` service tells
//! the service manager that it is ready, reloading or stopping by sending one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `NOTIFY_SOCKET`. Owns the message format and
//! the socket; must not decide when a daemon is ready (its driver does).
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing, so daemons call it
//! unconditionally.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets to the notification socket of the service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// One state a daemon reports (`sd_notify(3)`, "Well-known assignments").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// `READY=1`: start-up is finished (listeners bound); also sent after a reload.
    Ready,
    /// `RELOADING=1`: a configuration reload began; `Ready` must follow when it ends.
    Reloading,
    /// `STOPPING=1`: the daemon is shutting down.
    Stopping,
    /// `STATUS=...`: one line for `systemctl status`; line breaks become spaces.
    Status(String),
}

impl State {
    /// The `KEY=VALUE` line of this state, without line break.
    pub fn assignment(&self) -> String {
        match self {
            Self::Ready => "READY=1".to_owned(),
            Self::Reloading => "RELOADING=1".to_owned(),
            Self::Stopping => "STOPPING=1".to_owned(),
            Self::Status(text) => format!("STATUS={}", text.replace(['\n', '\r'], " ")),
        }
    }
}

/// The message carrying `states`: their assignments, one per line.
pub fn message(states: &[State]) -> String {
    let mut message = String::new();
    for state in states {
        message.push_str(&state.assignment());
        message.push('\n');
    }
    message
}

/// A connected notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
}

impl Notifier {
    /// The notifier for `NOTIFY_SOCKET` of this process's environment; `None` when it is unset
    /// or empty (not started by systemd as a `Type=notify` service).
    pub fn from_environment() -> io::Result<Option<Self>> {
        match std::env::var_os(NOTIFY_SOCKET) {
            Some(value) if !value.is_empty() => Self::connect(&value).map(Some),
            _ => Ok(None),
        }
    }

    /// Connects to the socket `name`, in `NOTIFY_SOCKET` form: an absolute path, or `@` and a
    /// name in the abstract namespace (Linux).
    pub fn connect(name: &OsStr) -> io::Result<Self> {
        let bytes = name.as_bytes();
        let address = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(name)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{NOTIFY_SOCKET}={}: not an absolute path or an @abstract name",
                        name.to_string_lossy()
                    ),
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.connect_addr(&address)?;
        Ok(Self { socket })
    }

    /// Sends `states` in one datagram.
    pub fn notify(&self, states: &[State]) -> io::Result<()> {
        let message = message(states);
        let sent = self.socket.send(message.as_bytes())?;
        if sent == message.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", message.len()),
            ))
        }
    }
}

/// Sends `states` to the socket in `NOTIFY_SOCKET`. Returns whether a message was sent:
/// `false` when the variable is unset (not run by systemd), an error when the socket is
/// unusable.
pub fn notify(states: &[State]) -> io::Result<bool> {
    match Notifier::from_environment()? {
        Some(notifier) => notifier.notify(states).map(|()| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn receive(listener: &UnixDatagram) -> String {
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set read timeout");
        let mut buffer = [0u8; 4096];
        let length = listener.recv(&mut buffer).expect("receive a notification");
        String::from_utf8(buffer[..length].to_vec()).expect("notification is UTF-8")
    }

    fn scratch_socket(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vixp-common-systemd-{}-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        dir.join("notify.sock")
    }

    #[test]
    fn a_path_socket_receives_ready_and_status_in_one_datagram() {
        let path = scratch_socket("path");
        let listener = UnixDatagram::bind(&path).expect("bind the listener");
        let notifier = Notifier::connect(path.as_os_str()).expect("connect");
        notifier
            .notify(&[State::Ready, State::Status("serving\n3 peers".to_owned())])
            .expect("notify");
        assert_eq!(receive(&listener), "READY=1\nSTATUS=serving 3 peers\n");
        let _ = std::fs::remove_dir_all(path.parent().expect("scratch directory"));
    }

    #[test]
    fn an_abstract_socket_receives_the_reload_sequence() {
        let name = format!("vixp-common-systemd-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let listener = UnixDatagram::bind_addr(&address).expect("bind the abstract listener");
        let notifier = Notifier::connect(&OsString::from(format!("@{name}"))).expect("connect");
        notifier.notify(&[State::Reloading]).expect("notify");
        notifier.notify(&[State::Ready]).expect("notify");
        notifier.notify(&[State::Stopping]).expect("notify");
        assert_eq!(receive(&listener), "RELOADING=1\n");
        assert_eq!(receive(&listener), "READY=1\n");
        assert_eq!(receive(&listener), "STOPPING=1\n");
    }

    #[test]
    fn a_relative_name_is_refused_with_the_variable_named() {
        let error = Notifier::connect(OsStr::new("notify.sock")).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(
            error.to_string().contains("NOTIFY_SOCKET=notify.sock"),
            "{error}"
        );
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error() {
        let path = scratch_socket("absent");
        assert!(Notifier::connect(path.as_os_str()).is_err());
        let _ = std::fs::remove_dir_all(path.parent().expect("scratch directory"));
    }
}
