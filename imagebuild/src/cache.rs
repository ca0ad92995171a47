//! A local content-addressed cache of compressed layers, so that a layer
//! whose inputs did not change is not rebuilt or recompressed.
//!
//! Layout under the cache directory:
//! * `blobs/<hex>` — compressed layer blobs, named by their digest;
//! * `entries/<hex>.json` — one [`LayerOutput`] per key, the key being the
//!   sha256 of the caller's input fingerprint, the compression's
//!   [`cache_id`](crate::layer::Compression::cache_id) and the
//!   source date epoch;
//! * `tmp/` — work files; give it to [`LayerWriter`](crate::layer::LayerWriter)
//!   (via [`LayerCache::work_dir`]) so that storing a blob is a rename.
//!
//! Every file appears by an atomic rename of a complete temporary file, so
//! two processes may share the cache: a reader sees a whole entry or none,
//! and two writers of the same key write the same content. No fsync is done:
//! after a crash an entry may point at a short blob, which [`LayerCache::get`]
//! detects by its size and treats as a miss.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::layer::{LayerOptions, LayerOutput};

/// Errors of the layer cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file system failure.
    #[error("layer cache {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The blob given to `put` is missing or not of its recorded size.
    #[error("layer blob {path} is missing or not {size} bytes")]
    BadBlob {
        /// The blob.
        path: PathBuf,
        /// Its recorded size.
        size: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A layer cache rooted at a directory.
#[derive(Clone, Debug)]
pub struct LayerCache {
    dir: PathBuf,
}

impl LayerCache {
    /// Opens (creating if needed) the cache at `dir`.
    pub fn open(dir: &Path) -> Result<LayerCache, CacheError> {
        for sub in ["blobs", "entries", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(LayerCache {
            dir: dir.to_owned(),
        })
    }

    /// Where to build layers that will be `put` here (same file system).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// The path of the blob with this hex digest (present or not).
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join("blobs").join(hex)
    }

    /// The cache key of a fingerprint under these options: everything that
    /// determines the blob's bytes besides the input itself.
    pub fn key(fingerprint: &str, opts: &LayerOptions) -> String {
        let mut h = Sha256::new();
        h.update(b"ep-imagebuild layer v1\0");
        h.update(fingerprint.as_bytes());
        h.update(b"\0");
        h.update(opts.compression.cache_id().as_bytes());
        h.update(b"\0");
        h.update(opts.source_date_epoch.to_string().as_bytes());
        hex::encode(h.finalize())
    }

    fn entry_path(&self, fingerprint: &str, opts: &LayerOptions) -> PathBuf {
        self.dir
            .join("entries")
            .join(format!("{}.json", Self::key(fingerprint, opts)))
    }

    /// The cached layer for `fingerprint`, if its entry is readable and its
    /// blob exists with the recorded size.
    pub fn get(
        &self,
        fingerprint: &str,
        opts: &LayerOptions,
    ) -> Result<Option<LayerOutput>, CacheError> {
        let path = self.entry_path(fingerprint, opts);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        // A corrupt entry is a miss; the next put replaces it.
        let Ok(mut out) = serde_json::from_slice::<LayerOutput>(&bytes) else {
            return Ok(None);
        };
        out.path = self.blob_path(out.digest.hex());
        match fs::metadata(&out.path) {
            Ok(md) if md.is_file() && md.len() == out.size => Ok(Some(out)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&out.path)(e)),
        }
    }

    /// Stores `output` under `fingerprint`: its blob is moved into the cache
    /// (renamed when on the same file system, copied otherwise) and the
    /// returned output points at the cached blob.
    pub fn put(
        &self,
        fingerprint: &str,
        opts: &LayerOptions,
        output: LayerOutput,
    ) -> Result<LayerOutput, CacheError> {
        let bad = || CacheError::BadBlob {
            path: output.path.clone(),
            size: output.size,
        };
        let src_len = fs::metadata(&output.path).map_err(|_| bad())?.len();
        if src_len != output.size {
            return Err(bad());
        }
        let dest = self.blob_path(output.digest.hex());
        if dest != output.path {
            let have = fs::metadata(&dest).map(|m| m.len() == output.size);
            if matches!(have, Ok(true)) {
                // Same digest already cached (perhaps by another process).
                let _ = fs::remove_file(&output.path);
            } else if fs::rename(&output.path, &dest).is_err() {
                // Another file system: copy to a temporary, then rename.
                let tmp = self.temp_name("blob");
                fs::copy(&output.path, &tmp).map_err(io_err(&tmp))?;
                fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
                let _ = fs::remove_file(&output.path);
            }
        }
        let stored = LayerOutput {
            path: dest,
            ..output
        };
        let entry = self.entry_path(fingerprint, opts);
        let tmp = self.temp_name("entry");
        let json = serde_json::to_vec_pretty(&stored).map_err(|e| CacheError::Io {
            path: entry.clone(),
            source: io::Error::other(e),
        })?;
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&json).map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &entry).map_err(io_err(&entry))?;
        Ok(stored)
    }

    fn temp_name(&self, what: &str) -> PathBuf {
        self.work_dir().join(format!(
            ".tmp-{what}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ))
    }
}
