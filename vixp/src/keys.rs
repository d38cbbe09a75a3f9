//! WireGuard keys on disk: generating a private key, writing it with mode 0600, reading it back
//! only when no group or other user can read it, and deriving its public key. Both keys are
//! WireGuard's base64 (what `wg genkey` and `wg pubkey` write). Must not log or print a private
//! key.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use boringtun::x25519;

/// Mode bits a private key file must not have: any access for group or others.
const FORBIDDEN_MODE_BITS: u32 = 0o077;

/// Longest key file read, in bytes (a key is 44 characters and a newline).
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// Why a private key file cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Group or other users can read or write the key.
    #[error(
        "{}: private key is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists already; keygen never overwrites a key.
    #[error(
        "{}: already exists; keygen never overwrites a key: choose another file or remove it",
        path.display()
    )]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The content is not 32 bytes of base64.
    #[error(
        "{}: not a WireGuard private key ({reason}); write one with `vixp keygen --output {}`",
        path.display(),
        path.display()
    )]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with the content.
        reason: &'static str,
    },
}

/// A WireGuard private key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PrivateKey([u8; 32]);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    /// A new random key from the kernel's random source, clamped as `wg genkey` does
    /// (Curve25519, RFC 7748 section 5).
    pub fn generate() -> io::Result<PrivateKey> {
        let mut bytes = [0u8; 32];
        File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        Ok(PrivateKey(bytes))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PrivateKey {
        PrivateKey(bytes)
    }

    /// The private key in WireGuard's base64 form, for `vixp keygen --output -` only.
    pub fn to_base64(&self) -> String {
        encode_key(&self.0)
    }

    /// The key as boringtun takes it.
    pub fn secret(&self) -> x25519::StaticSecret {
        x25519::StaticSecret::from(self.0)
    }

    /// The public key that belongs to this key.
    pub fn public_key(&self) -> [u8; 32] {
        x25519::PublicKey::from(&self.secret()).to_bytes()
    }

    /// Writes the key to a new file created with mode 0600 (never widened first and narrowed
    /// after); refuses to replace an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io_error = |source: io::Error| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                KeyError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error)?;
        writeln!(file, "{}", encode_key(&self.0)).map_err(io_error)?;
        file.sync_all().map_err(io_error)
    }

    /// Reads a key file written by `vixp keygen` or `wg genkey`; refuses it when group or
    /// others have any access to it.
    pub fn read(path: &Path) -> Result<PrivateKey, KeyError> {
        let io_error = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let mode = file.metadata().map_err(io_error)?.mode() & 0o7777;
        if mode & FORBIDDEN_MODE_BITS != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut text = String::new();
        file.take(MAX_KEY_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(io_error)?;
        let invalid = |reason| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("not base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid("not 32 bytes long"))?;
        Ok(PrivateKey(bytes))
    }
}

/// A key in WireGuard's base64 form (44 characters).
pub fn encode_key(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::process::{Command, Stdio};

    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("vixp-keys-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_written_key_has_mode_0600_and_reads_back() {
        let path = temp_path("roundtrip");
        let _ = fs::remove_file(&path);
        let key = PrivateKey::generate().expect("random");
        key.write_new(&path).expect("write");
        let mode = fs::metadata(&path).expect("metadata").mode() & 0o777;
        let read = PrivateKey::read(&path).expect("read");
        fs::remove_file(&path).expect("remove");
        assert_eq!(mode, 0o600);
        assert_eq!(read.public_key(), key.public_key());
    }

    #[test]
    fn keygen_never_overwrites() {
        let path = temp_path("exists");
        fs::write(&path, "x").expect("write");
        let error = PrivateKey::from_bytes([7; 32]).write_new(&path);
        fs::remove_file(&path).expect("remove");
        assert!(matches!(error, Err(KeyError::Exists { .. })), "{error:?}");
    }

    #[test]
    fn a_group_readable_key_is_refused_with_the_fix() {
        let path = temp_path("open");
        let _ = fs::remove_file(&path);
        PrivateKey::from_bytes([9; 32])
            .write_new(&path)
            .expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let error = PrivateKey::read(&path).expect_err("refused");
        fs::remove_file(&path).expect("remove");
        let message = error.to_string();
        assert!(message.contains("mode 0640"), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }

    #[test]
    fn garbage_is_not_a_key() {
        let path = temp_path("garbage");
        let _ = fs::remove_file(&path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create");
        file.write_all(b"AAAA\n").expect("write");
        let error = PrivateKey::read(&path).expect_err("refused");
        fs::remove_file(&path).expect("remove");
        assert!(error.to_string().contains("not 32 bytes long"), "{error}");
    }

    #[test]
    fn the_public_key_matches_rfc_7748_and_wg_pubkey() {
        // RFC 7748 section 6.1: Alice's private key and public key.
        let private: [u8; 32] = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ];
        let public: [u8; 32] = [
            0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e,
            0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e,
            0xaa, 0x9b, 0x4e, 0x6a,
        ];
        assert_eq!(PrivateKey::from_bytes(private).public_key(), public);
        // And Debian's wireguard-tools (installed by scripts/test) agrees on a fresh key.
        let key = PrivateKey::generate().expect("random");
        let mut child = Command::new("wg")
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("`wg` from Debian's wireguard-tools");
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{}", encode_key(&key.0)).expect("write to wg");
        }
        let output = child.wait_with_output().expect("wg pubkey");
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            encode_key(&key.public_key())
        );
    }
}
