//! A temporary directory removed on drop. Owns one directory under the system temp dir; must not
//! remove anything it did not create.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process,
    sync::atomic::{AtomicU32, Ordering},
};

use crate::error::Error;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A directory `vixp-test-<pid>-<n>-<label>` under the temp dir, deleted with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory; `label` only helps a human find it.
    pub fn new(label: &str) -> Result<Self, Error> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = env::temp_dir().join(format!("vixp-test-{}-{n}-{label}", process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|source| Error::File {
                path: path.clone(),
                source,
            })?;
        }
        fs::create_dir_all(&path).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf, Error> {
        let path = self.path.join(name);
        fs::write(&path, contents).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failing test keeps its configs and daemon logs for the reader.
            eprintln!("keeping {} for inspection", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_exists_until_dropped() {
        let dir = TempDir::new("unit").expect("create temp dir");
        let file = dir.write("a.txt", "hello").expect("write");
        assert_eq!(fs::read_to_string(&file).expect("read"), "hello");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "{} still exists after drop", path.display());
    }

    #[test]
    fn two_directories_differ() {
        let a = TempDir::new("same").expect("a");
        let b = TempDir::new("same").expect("b");
        assert_ne!(a.path(), b.path());
    }
}
