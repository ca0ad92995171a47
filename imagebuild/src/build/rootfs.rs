//! The identity of a local root filesystem base (`dir:` or `tar:`): one content hash, used
//! both as the base-rootfs layer's cache key and in the inputs fingerprint.
//!
//! Hashing every byte of a rootfs on every plan is too slow, so the content hash is cached
//! under the layer cache beside a cheap key: a hash of every entry's metadata (name, kind,
//! mode, size, mtime, inode, ctime). ctime cannot be set from user space, so a content change
//! that keeps size and mtime (`touch -r`) still changes the key; an unchanged tree costs one
//! `stat` per entry. The identity itself depends on content only (relative names, kinds,
//! permission bits, link targets, file bytes), so two machines with the same tree agree.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::BuildError;

/// Bumped whenever the identity of the same tree would change.
const IDENTITY_EPOCH: &[u8] = b"ep-imagebuild rootfs v2\n";
/// Bumped whenever the cheap key or the cache file format changes.
const KEY_EPOCH: &[u8] = b"ep-imagebuild rootfs stat v1\n";
/// Directory of the layer cache holding rootfs identities.
pub const ROOTFS_DIR: &str = "rootfs";

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of the tree, sorted by relative path.
struct Item {
    rel: String,
    host: PathBuf,
    md: fs::Metadata,
}

/// Every entry below `root` (not `root` itself), sorted by relative path.
fn walk(root: &Path) -> Result<Vec<Item>, BuildError> {
    let mut items = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for ent in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let ent = ent.map_err(io_err(&dir))?;
            let host = ent.path();
            let name = ent.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let md = fs::symlink_metadata(&host).map_err(io_err(&host))?;
            if md.is_dir() {
                stack.push((host.clone(), rel.clone()));
            }
            items.push(Item { rel, host, md });
        }
    }
    items.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(items)
}

#[cfg(unix)]
fn stat_fields(md: &fs::Metadata) -> [i64; 7] {
    use std::os::unix::fs::MetadataExt;
    [
        i64::from(md.mode()),
        i64::try_from(md.size()).unwrap_or(i64::MAX),
        md.mtime(),
        md.mtime_nsec(),
        i64::try_from(md.ino()).unwrap_or(i64::MAX),
        md.ctime(),
        md.ctime_nsec(),
    ]
}

#[cfg(not(unix))]
fn stat_fields(md: &fs::Metadata) -> [i64; 7] {
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    [
        i64::from(md.is_dir()),
        i64::try_from(md.len()).unwrap_or(i64::MAX),
        mtime,
        0,
        0,
        0,
        0,
    ]
}

#[cfg(unix)]
fn mode_of(md: &fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_md: &fs::Metadata) -> u32 {
    0
}

fn hash_file(path: &Path, h: &mut Sha256) -> Result<(), BuildError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => h.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
}

/// The cheap key: metadata of the root and of every entry below it.
fn stat_key(path: &Path, root: &fs::Metadata, items: &[Item]) -> String {
    let mut h = Sha256::new();
    h.update(KEY_EPOCH);
    h.update(path.to_string_lossy().as_bytes());
    h.update([0]);
    for f in stat_fields(root) {
        h.update(f.to_le_bytes());
    }
    for i in items {
        h.update(i.rel.as_bytes());
        h.update([0]);
        for f in stat_fields(&i.md) {
            h.update(f.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// The content identity of `path` (a directory or a tarball), reading every byte.
fn content_identity(
    path: &Path,
    root: &fs::Metadata,
    items: &[Item],
) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    h.update(IDENTITY_EPOCH);
    if !root.is_dir() {
        h.update(b"tar\n");
        hash_file(path, &mut h)?;
        return Ok(hex::encode(h.finalize()));
    }
    h.update(b"dir\n");
    for i in items {
        h.update(i.rel.as_bytes());
        h.update([0]);
        let ft = i.md.file_type();
        let kind: u8 = if ft.is_symlink() {
            b'l'
        } else if ft.is_dir() {
            b'd'
        } else if ft.is_file() {
            b'f'
        } else {
            b'o'
        };
        h.update([kind]);
        h.update(mode_of(&i.md).to_le_bytes());
        if ft.is_symlink() {
            let target = fs::read_link(&i.host).map_err(io_err(&i.host))?;
            h.update(target.to_string_lossy().as_bytes());
        } else if ft.is_file() {
            h.update(i.md.len().to_le_bytes());
            hash_file(&i.host, &mut h)?;
        }
        h.update([0xff]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The cache file of `path`'s identity.
fn cache_file(cache_dir: &Path, path: &Path) -> PathBuf {
    let name = hex::encode(Sha256::digest(path.to_string_lossy().as_bytes()));
    cache_dir.join(ROOTFS_DIR).join(name)
}

fn load(file: &Path, key: &str) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    let (stored_key, identity) = text.trim_end().split_once('\n')?;
    (stored_key == key && identity.len() == 64 && identity.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| identity.to_string())
}

/// Writes the cache file atomically (a complete temporary file renamed into place).
fn store(file: &Path, key: &str, identity: &str) -> io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-rootfs-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{key}\n{identity}")?;
        drop(f);
        fs::rename(&tmp, file)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// The content identity of a local rootfs (directory or tarball), as hex SHA-256; cached under
/// `cache_dir` (when given) so an unchanged tree is not read again.
pub fn rootfs_identity(path: &Path, cache_dir: Option<&Path>) -> Result<String, BuildError> {
    let root = fs::metadata(path).map_err(io_err(path))?;
    let items = if root.is_dir() {
        walk(path)?
    } else {
        Vec::new()
    };
    let Some(cache_dir) = cache_dir else {
        return content_identity(path, &root, &items);
    };
    let key = stat_key(path, &root, &items);
    let file = cache_file(cache_dir, path);
    if let Some(identity) = load(&file, &key) {
        return Ok(identity);
    }
    let identity = content_identity(path, &root, &items)?;
    // Not fatal: a cache file that cannot be written only costs the next plan a full read.
    let _ = store(&file, &key, &identity);
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::write(dir.join("etc-file"), b"a=1\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("tool", dir.join("bin/link")).unwrap();
    }

    #[test]
    fn identity_depends_on_content_not_location_or_mtime() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        tree(&a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(&b);
        let ia = rootfs_identity(&a, None).unwrap();
        assert_eq!(ia, rootfs_identity(&b, None).unwrap());
        fs::write(b.join("etc-file"), b"a=2\n").unwrap();
        assert_ne!(ia, rootfs_identity(&b, None).unwrap());
    }

    #[test]
    fn cached_identity_follows_a_change_that_keeps_size_and_mtime() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cache) = (tmp.path().join("rootfs"), tmp.path().join("cache"));
        tree(&root);
        let first = rootfs_identity(&root, Some(&cache)).unwrap();
        assert_eq!(first, rootfs_identity(&root, Some(&cache)).unwrap());
        // Same size, same mtime, different bytes: only ctime (and content) tell.
        let f = root.join("etc-file");
        let mtime = filetime::FileTime::from_last_modification_time(&fs::metadata(&f).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&f, b"a=9\n").unwrap();
        filetime::set_file_mtime(&f, mtime).unwrap();
        let changed = rootfs_identity(&root, Some(&cache)).unwrap();
        assert_ne!(first, changed);
        assert_eq!(changed, rootfs_identity(&root, None).unwrap());
    }

    #[test]
    fn a_hit_does_not_read_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cache) = (tmp.path().join("rootfs"), tmp.path().join("cache"));
        tree(&root);
        let first = rootfs_identity(&root, Some(&cache)).unwrap();
        // A forged identity under the current key is returned as is: the files were not read.
        let file = cache_file(&cache, &root);
        let text = fs::read_to_string(&file).unwrap();
        let key = text.lines().next().unwrap().to_string();
        let forged = "ab".repeat(32);
        store(&file, &key, &forged).unwrap();
        assert_eq!(rootfs_identity(&root, Some(&cache)).unwrap(), forged);
        assert_ne!(first, forged);
    }

    #[test]
    fn tarball_identity_is_its_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("rootfs.tar");
        fs::write(&t, b"not really a tar").unwrap();
        let a = rootfs_identity(&t, Some(tmp.path())).unwrap();
        fs::write(&t, b"not really a taR").unwrap();
        assert_ne!(a, rootfs_identity(&t, Some(tmp.path())).unwrap());
    }
}
