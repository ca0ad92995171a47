//! Deterministic, streaming layer construction.
//!
//! A layer is a tar of entries (directories, regular files, symlinks,
//! hardlinks) that is hashed, compressed and written to disk in one pass:
//!
//! * [`LayerWriter`] streams entries that arrive **already sorted** (see
//!   [`path_cmp`]) and never holds more than a few chunks in memory;
//! * [`LayerBuilder`] collects entries in any order, sorts them and then
//!   streams them through a [`LayerWriter`];
//! * [`layer_from_dir`] and [`layer_from_tar`] turn a local root filesystem
//!   into a layer.
//!
//! Reproducibility rules, applied to every entry: mtime is
//! [`LayerOptions::source_date_epoch`]; uid/gid are 0 unless set; user and
//! group names are empty; modes default to 0644 for files, 0755 for
//! directories and executables, 0777 for symlinks; ustar headers, with PAX
//! records (named `././@PaxHeader`) only for values ustar cannot hold; the
//! archive ends with two zero blocks. Parent directories missing from the
//! input are created with mode 0755, owner 0:0.

mod builder;
mod fs;
pub(crate) mod sink;
pub(crate) mod tar;

use std::cmp::Ordering;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use sink::BlobSink;
use tar::{Header, Kind};

pub use builder::{Content, LayerBuilder};
pub use fs::{layer_from_dir, layer_from_tar, SourceOptions};
pub use sink::CHUNK_SIZE;

/// OCI media type of an uncompressed layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI media type of a gzip-compressed layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI media type of a zstd-compressed layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Default gzip level: on Java webapps (mostly already-compressed jars) every
/// level reaches about the same ratio, and level 1 is several times faster
/// than 6.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// Default zstd level (libzstd's own default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// How the layer blob is compressed. The level is part of the layer's
/// identity: the same input always gives the same bytes for the same setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
pub enum Compression {
    /// Gzip (deflate) at `level` 0–9, chunked pigz-style (see [`CHUNK_SIZE`]).
    Gzip {
        /// zlib level, 0–9.
        level: u32,
    },
    /// Zstandard at `level` (1–19 are sensible), single frame.
    Zstd {
        /// libzstd level.
        level: i32,
    },
    /// An uncompressed tar.
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        }
    }
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => MEDIA_TYPE_TAR_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_TAR_ZSTD,
            Compression::None => MEDIA_TYPE_TAR,
        }
    }

    /// A string naming everything that determines the compressed bytes
    /// (algorithm, level, chunking, library), for cache keys.
    /// Part of the cache key: anything that changes blob bytes for the same
    /// input (the incompressible-chunk probe is version 1) must change it.
    pub fn cache_id(&self) -> String {
        const PROBE_VERSION: u32 = 1;
        match self {
            Compression::Gzip { level } => {
                format!("gzip-{level}-zlibrs-chunk{CHUNK_SIZE}-probe{PROBE_VERSION}")
            }
            Compression::Zstd { level } => {
                format!("zstd-{level}-libzstd{}", zstd::zstd_safe::version_number())
            }
            Compression::None => "none".to_owned(),
        }
    }
}

/// Settings for building a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// Compression of the blob.
    pub compression: Compression,
    /// The mtime written on every entry (seconds since the Unix epoch).
    pub source_date_epoch: u64,
    /// Helper threads for compression: 0 runs everything on the caller's
    /// thread; gzip uses this many compressor threads plus a writer; zstd
    /// and uncompressed use one. The output bytes do not depend on it.
    pub threads: usize,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            compression: Compression::default(),
            source_date_epoch: 0,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// A finished layer: its identities and the compressed blob on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerOutput {
    /// sha256 of the uncompressed tar (goes into the config's `rootfs`).
    pub diff_id: Digest,
    /// sha256 of the compressed blob (goes into the manifest).
    pub digest: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// OCI media type of the blob.
    pub media_type: String,
    /// The compressed blob on disk, named by the hex of `digest`.
    pub path: PathBuf,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

/// Ownership and permissions of an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (0o7777 mask); `None` picks the kind's default.
    pub mode: Option<u32>,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

impl Meta {
    /// Default owner (0:0) with an explicit mode.
    pub fn mode(mode: u32) -> Meta {
        Meta {
            mode: Some(mode),
            ..Meta::default()
        }
    }

    /// Default owner (0:0), mode 0755.
    pub fn executable() -> Meta {
        Meta::mode(0o755)
    }
}

/// Errors building a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A file system or reader failure.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A path that is empty, contains NUL, or has a `..` component.
    #[error("invalid path {0:?} in layer")]
    InvalidPath(String),
    /// A host file name that is not UTF-8.
    #[error("file name {0:?} is not UTF-8")]
    NonUtf8Path(PathBuf),
    /// The same path added twice.
    #[error("duplicate path {0:?} in layer")]
    Duplicate(String),
    /// [`LayerWriter`] was given entries out of order.
    #[error("path {path:?} added after {previous:?}: entries must be sorted")]
    OutOfOrder {
        /// The offending path.
        path: String,
        /// The path before it.
        previous: String,
    },
    /// An entry below something that is not a directory.
    #[error("{path:?} is below {parent:?}, which is not a directory")]
    NotADirectory {
        /// The entry.
        path: String,
        /// Its non-directory ancestor.
        parent: String,
    },
    /// A reader gave fewer or more bytes than the declared size.
    #[error("{path:?}: declared {declared} bytes, reader gave {actual}")]
    SizeMismatch {
        /// The entry.
        path: String,
        /// The size given to `add_file`.
        declared: u64,
        /// What the reader produced (at most declared + 1).
        actual: u64,
    },
    /// A hardlink to a path that is not a regular file earlier in the layer.
    #[error("hardlink {path:?} points to {target:?}, not a file earlier in the layer")]
    BadHardlink {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// A tar input that could not be read.
    #[error("{path}: unreadable tar: {reason}")]
    BadTar {
        /// The tar file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The compression pipeline failed.
    #[error("layer pipeline: {0}")]
    Pipeline(String),
}

impl LayerError {
    pub(crate) fn io(path: &Path, source: io::Error) -> LayerError {
        LayerError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Normalises an in-image path: leading `/` and `./`, empty and `.`
/// components and a trailing `/` are dropped; `..` and NUL are rejected.
pub fn normalize_path(path: &str) -> Result<String, LayerError> {
    if path.contains('\0') {
        return Err(LayerError::InvalidPath(path.to_owned()));
    }
    let mut out = String::with_capacity(path.len());
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(LayerError::InvalidPath(path.to_owned())),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        return Err(LayerError::InvalidPath(path.to_owned()));
    }
    Ok(out)
}

/// The order entries are written in: component by component, so that a
/// directory's whole subtree directly follows it (`a`, `a/b`, `a/b/c`,
/// `a/b-x`) — a depth-first walk with names compared bytewise.
pub fn path_cmp(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

fn is_ancestor(dir: &str, path: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Streams sorted entries into a layer. Entries must arrive in [`path_cmp`]
/// order with no duplicates; missing parent directories are written on the
/// fly. Memory stays bounded by the chunk queues whatever the layer's size.
pub struct LayerWriter {
    sink: BlobSink,
    opts: LayerOptions,
    dir: PathBuf,
    header: Vec<u8>,
    copy_buf: Vec<u8>,
    /// Directories that are ancestors of the last entry (or it).
    stack: Vec<String>,
    last: Option<(String, Kind)>,
}

impl LayerWriter {
    /// Starts a layer whose blob will be written into `dir`.
    pub fn new(dir: &Path, opts: LayerOptions) -> Result<LayerWriter, LayerError> {
        Ok(LayerWriter {
            sink: BlobSink::new(dir, opts.compression, opts.threads)?,
            opts,
            dir: dir.to_owned(),
            header: Vec::with_capacity(2048),
            copy_buf: vec![0; 128 * 1024],
            stack: Vec::new(),
            last: None,
        })
    }

    /// Adds a directory (default mode 0755).
    pub fn add_dir(&mut self, path: &str, meta: Meta) -> Result<(), LayerError> {
        let path = self.begin(path)?;
        self.put_header(&path, Kind::Dir, meta.mode.unwrap_or(0o755), meta, 0, "")?;
        self.stack.push(path.clone());
        self.last = Some((path, Kind::Dir));
        Ok(())
    }

    /// Adds a regular file of exactly `size` bytes read from `reader`
    /// (default mode 0644).
    pub fn add_file(
        &mut self,
        path: &str,
        meta: Meta,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), LayerError> {
        let path = self.begin(path)?;
        self.put_header(
            &path,
            Kind::File,
            meta.mode.unwrap_or(0o644),
            meta,
            size,
            "",
        )?;
        let mut left = size;
        while left > 0 {
            let want = (self.copy_buf.len() as u64).min(left) as usize;
            let n = match reader.read(&mut self.copy_buf[..want]) {
                Ok(0) => {
                    return Err(LayerError::SizeMismatch {
                        path,
                        declared: size,
                        actual: size - left,
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::io(Path::new(&path), e)),
            };
            self.sink.write(&self.copy_buf[..n])?;
            left -= n as u64;
        }
        // A reader with more to give means the declared size was wrong.
        let mut probe = [0u8; 1];
        loop {
            match reader.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(LayerError::SizeMismatch {
                        path,
                        declared: size,
                        actual: size + 1,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LayerError::io(Path::new(&path), e)),
            }
        }
        let pad = tar::padding(size);
        self.sink.write(&tar::END_OF_ARCHIVE[..pad])?;
        self.last = Some((path, Kind::File));
        Ok(())
    }

    /// Adds a symlink to `target` (kept verbatim; resolved inside the
    /// container, never on the build host). Default mode 0777.
    pub fn add_symlink(&mut self, path: &str, target: &str, meta: Meta) -> Result<(), LayerError> {
        if target.is_empty() || target.contains('\0') {
            return Err(LayerError::InvalidPath(target.to_owned()));
        }
        let path = self.begin(path)?;
        self.put_header(
            &path,
            Kind::Symlink,
            meta.mode.unwrap_or(0o777),
            meta,
            0,
            target,
        )?;
        self.last = Some((path, Kind::Symlink));
        Ok(())
    }

    /// Adds a hardlink to `target`, a regular file already in this layer.
    /// Mode and owner are those of the target's header in most readers;
    /// `meta` is recorded as given (default 0644).
    pub fn add_hardlink(&mut self, path: &str, target: &str, meta: Meta) -> Result<(), LayerError> {
        let target = normalize_path(target)?;
        let path = self.begin(path)?;
        if path_cmp(&target, &path) != Ordering::Less {
            return Err(LayerError::BadHardlink { path, target });
        }
        self.put_header(
            &path,
            Kind::HardLink,
            meta.mode.unwrap_or(0o644),
            meta,
            0,
            &target,
        )?;
        self.last = Some((path, Kind::HardLink));
        Ok(())
    }

    /// Writes the end-of-archive blocks and waits for the compressed blob,
    /// which is renamed to `<dir>/<hex of digest>`.
    pub fn finish(mut self) -> Result<LayerOutput, LayerError> {
        self.sink.write(&tar::END_OF_ARCHIVE)?;
        let media_type = self.opts.compression.media_type().to_owned();
        let out = self.sink.finish()?;
        let path = self.dir.join(out.digest.hex());
        if let Err(e) = std::fs::rename(&out.temp_path, &path) {
            let _ = std::fs::remove_file(&out.temp_path);
            return Err(LayerError::io(&path, e));
        }
        Ok(LayerOutput {
            diff_id: out.diff_id,
            digest: out.digest,
            size: out.size,
            media_type,
            path,
            uncompressed_size: out.uncompressed_size,
        })
    }

    /// Validates order and writes missing parents; returns the normalised path.
    fn begin(&mut self, raw: &str) -> Result<String, LayerError> {
        let path = normalize_path(raw)?;
        if let Some((last, kind)) = &self.last {
            match path_cmp(last, &path) {
                Ordering::Equal => return Err(LayerError::Duplicate(path)),
                Ordering::Greater => {
                    return Err(LayerError::OutOfOrder {
                        path,
                        previous: last.clone(),
                    })
                }
                Ordering::Less => {}
            }
            if *kind != Kind::Dir && is_ancestor(last, &path) {
                return Err(LayerError::NotADirectory {
                    parent: last.clone(),
                    path,
                });
            }
        }
        while let Some(top) = self.stack.last() {
            if is_ancestor(top, &path) {
                break;
            }
            self.stack.pop();
        }
        // Parents between the deepest open directory and the entry.
        let start = self.stack.last().map_or(0, |d| d.len() + 1);
        let mut missing = Vec::new();
        for (i, b) in path.bytes().enumerate().skip(start) {
            if b == b'/' {
                missing.push(path[..i].to_owned());
            }
        }
        for dir in missing {
            self.put_header(&dir, Kind::Dir, 0o755, Meta::default(), 0, "")?;
            self.stack.push(dir);
        }
        Ok(path)
    }

    fn put_header(
        &mut self,
        path: &str,
        kind: Kind,
        mode: u32,
        meta: Meta,
        size: u64,
        link: &str,
    ) -> Result<(), LayerError> {
        self.header.clear();
        tar::encode(
            &Header {
                path,
                kind,
                mode,
                uid: u64::from(meta.uid),
                gid: u64::from(meta.gid),
                size,
                link,
                mtime: self.opts.source_date_epoch,
            },
            &mut self.header,
        );
        let header = std::mem::take(&mut self.header);
        let res = self.sink.write(&header);
        self.header = header;
        res
    }
}

/// Writes a deterministic, uncompressed tar of the directory tree at `root`
/// to `out` (regular files and directories only; used for OCI layout
/// tarballs). Modes are 0644/0755, owner 0:0, mtime `mtime`.
pub(crate) fn write_plain_tar(
    root: &Path,
    mtime: u64,
    out: &mut dyn io::Write,
) -> Result<(), LayerError> {
    let mut entries = Vec::new();
    fs::walk(root, &mut entries)?;
    entries.sort_by(|a, b| path_cmp(&a.0, &b.0));
    let mut header = Vec::new();
    for (rel, host, md) in entries {
        header.clear();
        let ft = md.file_type();
        let (kind, mode, size) = if ft.is_dir() {
            (Kind::Dir, 0o755, 0)
        } else if ft.is_file() {
            (Kind::File, 0o644, md.len())
        } else {
            continue;
        };
        tar::encode(
            &Header {
                path: &rel,
                kind,
                mode,
                uid: 0,
                gid: 0,
                size,
                link: "",
                mtime,
            },
            &mut header,
        );
        out.write_all(&header)
            .map_err(|e| LayerError::io(Path::new("tar output"), e))?;
        if kind == Kind::File {
            let mut f = std::fs::File::open(&host).map_err(|e| LayerError::io(&host, e))?;
            let n =
                io::copy(&mut (&mut f).take(size), out).map_err(|e| LayerError::io(&host, e))?;
            if n != size {
                return Err(LayerError::SizeMismatch {
                    path: rel,
                    declared: size,
                    actual: n,
                });
            }
            out.write_all(&tar::END_OF_ARCHIVE[..tar::padding(size)])
                .map_err(|e| LayerError::io(Path::new("tar output"), e))?;
        }
    }
    out.write_all(&tar::END_OF_ARCHIVE)
        .map_err(|e| LayerError::io(Path::new("tar output"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_depth_first() {
        let mut v = vec!["a/b-x", "a/b/c", "a", "a/b", "b", "a/b/c/d"];
        v.sort_by(|a, b| path_cmp(a, b));
        assert_eq!(v, ["a", "a/b", "a/b/c", "a/b/c/d", "a/b-x", "b"]);
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_path("/./usr//lib/").unwrap(), "usr/lib");
        assert!(normalize_path("a/../b").is_err());
        assert!(normalize_path("/").is_err());
    }
}
