//! Layers from a local root filesystem: a directory or a tarball.
//!
//! Rules shared by both: symlinks stay symlinks (their targets are never
//! followed on the host); character and block devices, FIFOs and sockets are
//! always skipped, silently — a container gets its `/dev` from the runtime;
//! `..` components are an error and leading `/` is dropped, so no entry can
//! land outside the image root; files sharing an inode (or tar hardlinks)
//! become one regular file — the first in layer order — and tar hardlinks to
//! it for the others.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{normalize_path, path_cmp, LayerError, LayerOptions, LayerOutput, LayerWriter, Meta};

/// How host files are mapped into the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceOptions {
    /// Directory inside the image the source lands in ("" = the root).
    pub prefix: String,
    /// Keep permission bits (including setuid and sticky) as found; when
    /// false, directories and executables get 0755, other files 0644.
    pub preserve_modes: bool,
    /// Keep uid/gid as found; when false everything is owned by 0:0 (the
    /// usual case: the build user's ids mean nothing in the image).
    pub preserve_ownership: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            prefix: String::new(),
            preserve_modes: true,
            preserve_ownership: false,
        }
    }
}

impl SourceOptions {
    fn target(&self, rel: &str) -> Result<String, LayerError> {
        if self.prefix.is_empty() {
            normalize_path(rel)
        } else {
            normalize_path(&format!("{}/{}", self.prefix, rel))
        }
    }

    fn meta(&self, mode: u32, uid: u64, gid: u64, dir: bool) -> Meta {
        let mode = if self.preserve_modes {
            mode & 0o7777
        } else if dir || mode & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let (uid, gid) = if self.preserve_ownership {
            (
                u32::try_from(uid).unwrap_or(u32::MAX),
                u32::try_from(gid).unwrap_or(u32::MAX),
            )
        } else {
            (0, 0)
        };
        Meta {
            mode: Some(mode),
            uid,
            gid,
        }
    }
}

/// Collects `(relative path, host path, metadata)` for everything under
/// `root`, without following symlinks.
pub(crate) fn walk(
    root: &Path,
    out: &mut Vec<(String, PathBuf, Metadata)>,
) -> Result<(), LayerError> {
    let mut stack = vec![(String::new(), root.to_owned())];
    while let Some((rel, dir)) = stack.pop() {
        let rd = fs::read_dir(&dir).map_err(|e| LayerError::io(&dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| LayerError::io(&dir, e))?;
            let host = ent.path();
            let name = ent
                .file_name()
                .into_string()
                .map_err(|_| LayerError::NonUtf8Path(host.clone()))?;
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let md = fs::symlink_metadata(&host).map_err(|e| LayerError::io(&host, e))?;
            if md.is_dir() {
                stack.push((rel.clone(), host.clone()));
            }
            out.push((rel, host, md));
        }
    }
    Ok(())
}

/// Builds a layer from the directory tree at `root` (not including `root`
/// itself; its contents land under `src.prefix`). The blob goes into `dir`.
pub fn layer_from_dir(
    root: &Path,
    src: &SourceOptions,
    opts: LayerOptions,
    dir: &Path,
) -> Result<LayerOutput, LayerError> {
    let mut found = Vec::new();
    walk(root, &mut found)?;
    let mut entries = Vec::with_capacity(found.len());
    for (rel, host, md) in found {
        entries.push((src.target(&rel)?, host, md));
    }
    entries.sort_by(|a, b| path_cmp(&a.0, &b.0));
    let mut w = LayerWriter::new(dir, opts)?;
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    for (path, host, md) in entries {
        let ft = md.file_type();
        let meta = src.meta(
            md.permissions().mode(),
            u64::from(md.uid()),
            u64::from(md.gid()),
            ft.is_dir(),
        );
        if ft.is_dir() {
            w.add_dir(&path, meta)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| LayerError::io(&host, e))?;
            let target = target
                .to_str()
                .ok_or_else(|| LayerError::NonUtf8Path(target.clone()))?;
            w.add_symlink(&path, target, meta)?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = inodes.get(&(md.dev(), md.ino())) {
                    w.add_hardlink(&path, first, meta)?;
                    continue;
                }
                inodes.insert((md.dev(), md.ino()), path.clone());
            }
            let mut f = File::open(&host).map_err(|e| LayerError::io(&host, e))?;
            w.add_file(&path, meta, md.len(), &mut f)?;
        }
        // Anything else is a device, FIFO or socket: skipped by rule.
    }
    w.finish()
}

enum TarItem {
    Dir,
    File { offset: u64, size: u64 },
    Symlink(String),
    HardLink(String),
}

struct TarEntry {
    path: String,
    meta: Meta,
    item: TarItem,
}

/// Builds a layer from a tarball of a root filesystem (plain, gzip or zstd;
/// compressed input is first decompressed to a temporary file in `dir`). A
/// path that occurs twice keeps its last occurrence, as extraction would.
pub fn layer_from_tar(
    tar_path: &Path,
    src: &SourceOptions,
    opts: LayerOptions,
    dir: &Path,
) -> Result<LayerOutput, LayerError> {
    fs::create_dir_all(dir).map_err(|e| LayerError::io(dir, e))?;
    let (plain, temp) = decompressed(tar_path, dir)?;
    let _cleanup = TempFile(temp);
    let entries = index_tar(&plain, src)?;
    let bad = |reason: String| LayerError::BadTar {
        path: tar_path.to_owned(),
        reason,
    };

    // Resolve hardlinks to the regular file they share data with.
    let by_path: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_str(), i))
        .collect();
    let root_of = |i: usize| -> Option<usize> {
        let mut cur = i;
        for _ in 0..64 {
            match &entries[cur].item {
                TarItem::File { .. } => return Some(cur),
                TarItem::HardLink(t) => cur = *by_path.get(t.as_str())?,
                _ => return None,
            }
        }
        None
    };

    let mut data = File::open(&plain).map_err(|e| LayerError::io(&plain, e))?;
    let mut w = LayerWriter::new(dir, opts)?;
    let mut written: HashMap<usize, &str> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        match &e.item {
            TarItem::Dir => w.add_dir(&e.path, e.meta)?,
            TarItem::Symlink(t) => w.add_symlink(&e.path, t, e.meta)?,
            TarItem::File { .. } | TarItem::HardLink(_) => {
                let Some(root) = root_of(i) else {
                    let target = match &e.item {
                        TarItem::HardLink(t) => t.clone(),
                        _ => String::new(),
                    };
                    return Err(LayerError::BadHardlink {
                        path: e.path.clone(),
                        target,
                    });
                };
                let root_entry = &entries[root];
                if let Some(first) = written.get(&root) {
                    w.add_hardlink(&e.path, first, root_entry.meta)?;
                    continue;
                }
                let TarItem::File { offset, size } = root_entry.item else {
                    return Err(bad(format!("{} lost its data", e.path)));
                };
                data.seek(SeekFrom::Start(offset))
                    .map_err(|err| LayerError::io(&plain, err))?;
                w.add_file(&e.path, root_entry.meta, size, &mut (&mut data).take(size))?;
                written.insert(root, &e.path);
            }
        }
    }
    w.finish()
}

/// Reads the headers of a plain tar into sorted, de-duplicated entries.
fn index_tar(plain: &Path, src: &SourceOptions) -> Result<Vec<TarEntry>, LayerError> {
    let bad = |reason: String| LayerError::BadTar {
        path: plain.to_owned(),
        reason,
    };
    let f = File::open(plain).map_err(|e| LayerError::io(plain, e))?;
    let mut archive = ::tar::Archive::new(f);
    let mut entries: Vec<TarEntry> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let iter = archive.entries().map_err(|e| bad(e.to_string()))?;
    for ent in iter {
        let ent = ent.map_err(|e| bad(e.to_string()))?;
        let h = ent.header();
        let raw_path = ent.path().map_err(|e| bad(e.to_string()))?;
        let raw_path = raw_path
            .to_str()
            .ok_or_else(|| LayerError::NonUtf8Path(raw_path.to_path_buf()))?
            .to_owned();
        if raw_path.split('/').all(|c| c.is_empty() || c == ".") {
            continue; // the root itself
        }
        let path = src.target(&raw_path)?;
        let mode = h.mode().map_err(|e| bad(e.to_string()))?;
        let uid = h.uid().map_err(|e| bad(e.to_string()))?;
        let gid = h.gid().map_err(|e| bad(e.to_string()))?;
        let link = || -> Result<String, LayerError> {
            let l = ent
                .link_name()
                .map_err(|e| bad(e.to_string()))?
                .ok_or_else(|| bad(format!("{raw_path}: link without target")))?;
            l.to_str()
                .map(str::to_owned)
                .ok_or_else(|| LayerError::NonUtf8Path(l.to_path_buf()))
        };
        use ::tar::EntryType as T;
        let et = h.entry_type();
        let (item, is_dir) = match et {
            T::Directory => (TarItem::Dir, true),
            T::Regular | T::Continuous => (
                TarItem::File {
                    offset: ent.raw_file_position(),
                    size: ent.size(),
                },
                false,
            ),
            T::Symlink => (TarItem::Symlink(link()?), false),
            T::Link => (TarItem::HardLink(src.target(&link()?)?), false),
            T::Char | T::Block | T::Fifo => continue,
            T::XGlobalHeader => continue,
            other => return Err(bad(format!("{raw_path}: unsupported entry type {other:?}"))),
        };
        let entry = TarEntry {
            meta: src.meta(mode, uid, gid, is_dir),
            path: path.clone(),
            item,
        };
        match seen.get(&path) {
            Some(&i) => entries[i] = entry,
            None => {
                seen.insert(path, entries.len());
                entries.push(entry);
            }
        }
    }
    entries.sort_by(|a, b| path_cmp(&a.path, &b.path));
    Ok(entries)
}

/// Removes a temporary file when dropped.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// The path of a plain tar for `path`: itself, or a decompressed copy.
fn decompressed(path: &Path, dir: &Path) -> Result<(PathBuf, Option<PathBuf>), LayerError> {
    let mut f = File::open(path).map_err(|e| LayerError::io(path, e))?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LayerError::io(path, e)),
        }
    }
    let gzip = n >= 2 && magic[..2] == [0x1f, 0x8b];
    let zstd = n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd];
    if !gzip && !zstd {
        return Ok((path.to_owned(), None));
    }
    f.seek(SeekFrom::Start(0))
        .map_err(|e| LayerError::io(path, e))?;
    let temp = dir.join(format!(
        ".tmp-rootfs-{}-{:016x}.tar",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut guard = TempFile(Some(temp.clone()));
    let mut out = File::create(&temp).map_err(|e| LayerError::io(&temp, e))?;
    let res = if gzip {
        io::copy(
            &mut flate2::read::MultiGzDecoder::new(io::BufReader::new(f)),
            &mut out,
        )
    } else {
        zstd::stream::read::Decoder::new(f).and_then(|mut d| io::copy(&mut d, &mut out))
    };
    res.map_err(|e| LayerError::io(path, e))?;
    guard.0 = None;
    Ok((temp.clone(), Some(temp)))
}
