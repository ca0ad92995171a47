//! What `ep_deployment_package` read from a package zip, kept on disk
//! between plans. Reading means inflating and hashing every artifact (1.4 s
//! for a 315 MB package, in every plan); an unchanged file answers from the
//! cache instead.
//!
//! "Unchanged" is the file's identity as the kernel reports it — device,
//! inode, size, modification and status-change times to the nanosecond.
//! Any write, truncation, rename over or `touch -d` changes the
//! status-change time, which no user tool can set back, so a rewritten
//! package is read again even with the same size and modification time.
//! Unpacked directories are not cached.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use crate::datapop::content::sha;

/// Bump when what is cached changes shape or meaning.
const FORMAT: &str = "package-info-v1";

/// Where entries live: one small JSON file per package identity.
pub fn dir() -> PathBuf {
    crate::resources::image::cache_root().join("package-info")
}

/// The cache key of the file at `path`; `None` for a directory or a file
/// whose identity cannot be read (then nothing is cached).
pub fn key(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    identity(path, &meta).map(|id| sha(&[FORMAT, env!("CARGO_PKG_VERSION"), &id]))
}

#[cfg(unix)]
fn identity(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let canonical = std::fs::canonicalize(path).ok()?;
    Some(format!(
        "{}\0{}:{}:{}:{}.{}:{}.{}",
        canonical.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

#[cfg(not(unix))]
fn identity(_path: &Path, _meta: &std::fs::Metadata) -> Option<String> {
    None
}

/// The entry for `key` in `dir`, if there is a readable one.
pub fn load<T: DeserializeOwned>(dir: &Path, key: &str) -> Option<T> {
    let bytes = std::fs::read(dir.join(format!("{key}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Stores `value` under `key` (written to a temporary file and renamed, so
/// a reader never sees half an entry). Failing to cache is not an error.
pub fn store<T: Serialize>(dir: &Path, key: &str, value: &T) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut tmp, value)?;
        tmp.persist(dir.join(format!("{key}.json")))?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::debug!(error = %e, "package information not cached");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_gets_a_new_key_even_with_the_same_size_and_mtime() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = tmp.path().join("package.zip");
        std::fs::write(&file, b"first").unwrap_or_else(|e| panic!("{e}"));
        let mtime = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{e}"));
        let first = key(&file);
        assert!(first.is_some());
        assert_eq!(key(&file), first, "an untouched file keeps its key");
        // Same size, content changed, modification time set back.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, b"secnd").unwrap_or_else(|e| panic!("{e}"));
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(mtime))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(key(&file), first, "the status-change time moved");
        assert_eq!(key(tmp.path()), None, "directories are not cached");
    }

    #[test]
    fn entries_round_trip_and_a_damaged_one_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("cache");
        store(&dir, "k", &vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(
            load::<Vec<String>>(&dir, "k"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        std::fs::write(dir.join("k.json"), b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load::<Vec<String>>(&dir, "k"), None);
        assert_eq!(load::<Vec<String>>(&dir, "missing"), None);
    }
}
