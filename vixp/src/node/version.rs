//! Which fabric a node runs with: the file read once, its bytes digested and those same bytes
//! parsed, so the digest `vixp status` and `/metrics` show names exactly the fabric applied.
//! Owns reading the fabric file for the node; must not apply it (the driver does).

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest as _};
use vixp_fabric::{Fabric, FabricError, MAX_FABRIC_FILE_BYTES};

/// The fabric's digest: BLAKE2b-256 of the file's bytes in lower-case hex, what
/// `b2sum -l 256 fabric.yaml` prints, so an operator can tell which file a node applied.
pub fn fabric_digest(bytes: &[u8]) -> String {
    Blake2b::<U32>::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Reads and validates the fabric file at `path` as [`Fabric::load`] does (same size limit,
/// same errors) and returns it with the [`fabric_digest`] of the bytes parsed.
pub fn load_fabric(path: &Path) -> Result<(Fabric, String), FabricError> {
    let read_error = |source| FabricError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| FabricError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FABRIC_FILE_BYTES,
    };
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > MAX_FABRIC_FILE_BYTES {
        return Err(too_large(size));
    }
    let mut text = String::new();
    // One byte past the limit at most: growth after the size check is noticed, not read.
    let read = file
        .take(MAX_FABRIC_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if read as u64 > MAX_FABRIC_FILE_BYTES {
        return Err(too_large(read as u64));
    }
    let fabric = Fabric::parse(&text, path)?;
    Ok((fabric, fabric_digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/fabric.yaml")
    }

    #[test]
    fn the_digest_is_what_b2sum_prints() {
        // `printf abc | b2sum -l 256` (GNU coreutils).
        assert_eq!(
            fabric_digest(b"abc"),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
    }

    #[test]
    fn the_fabric_loaded_is_the_one_fabric_load_reads_and_its_digest_names_the_bytes() {
        let (fabric, digest) = load_fabric(&example()).expect("example fabric loads");
        assert_eq!(fabric, Fabric::load(&example()).expect("loads"));
        let bytes = std::fs::read(example()).expect("read example");
        assert_eq!(digest, fabric_digest(&bytes));
        assert_eq!(digest.len(), 64);
    }

    #[test]
    fn a_missing_or_invalid_file_gives_the_fabric_errors() {
        let missing = Path::new("/nonexistent/vixp/fabric.yaml");
        assert!(matches!(
            load_fabric(missing),
            Err(FabricError::Read { .. })
        ));
        let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/malformed");
        let first = std::fs::read_dir(&broken)
            .expect("malformed examples")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .expect("a malformed example");
        let error = load_fabric(&first).expect_err("malformed example is refused");
        assert_eq!(
            error.to_string(),
            Fabric::load(&first).expect_err("refused").to_string()
        );
    }
}
