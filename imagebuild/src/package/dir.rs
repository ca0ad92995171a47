//! Unpacked package directories.
//!
//! Symbolic links: a link that resolves to a regular file inside the package root is followed
//! (it is reported, and read, as a regular file under the link's name); a link that resolves
//! outside the root is refused with [`PackageError::SymlinkEscapes`]; a link to a directory is
//! refused with [`PackageError::UnsupportedEntry`] because following it could loop or
//! duplicate whole trees. Dangling links, sockets, fifos and devices are refused too.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::paths::check_entry_name;
use super::{Entry, EntryKind, PackageError};

/// A scanned package directory.
#[derive(Debug)]
pub(crate) struct DirIndex {
    pub(crate) root: PathBuf,
    pub(crate) entries: Vec<Entry>,
    pub(crate) by_name: HashMap<String, usize>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |e| PackageError::from_io(e, &path.display().to_string())
}

impl DirIndex {
    /// Scans `root` recursively; entries come out sorted by path.
    pub(crate) fn scan(root: &Path) -> Result<Self, PackageError> {
        let root = fs::canonicalize(root).map_err(io_err(root))?;
        let mut entries = Vec::new();
        walk(&root, &root, "", &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.clone(), i))
            .collect();
        Ok(DirIndex {
            root,
            entries,
            by_name,
        })
    }

    /// The on-disk path of `rel`, re-checked against the root in case a link changed since
    /// the scan.
    pub(crate) fn resolve(&self, rel: &str) -> Result<PathBuf, PackageError> {
        let joined = self.root.join(rel);
        let real = fs::canonicalize(&joined).map_err(io_err(&joined))?;
        if !real.starts_with(&self.root) {
            return Err(PackageError::SymlinkEscapes {
                entry: rel.to_string(),
                target: real,
            });
        }
        Ok(real)
    }
}

#[cfg(unix)]
fn permission_bits(meta: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn permission_bits(_meta: &fs::Metadata) -> Option<u32> {
    None
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<(), PackageError> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let os_name = child.file_name();
        let Some(name) = os_name.to_str() else {
            return Err(PackageError::UnsafePath {
                entry: format!("{prefix}{}", os_name.to_string_lossy()),
                reason: "name is not valid UTF-8",
            });
        };
        let rel = format!("{prefix}{name}");
        check_entry_name(&rel).map_err(|reason| PackageError::UnsafePath {
            entry: rel.clone(),
            reason,
        })?;
        let path = child.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let target = fs::canonicalize(&path).map_err(|_| PackageError::UnsupportedEntry {
                entry: rel.clone(),
                reason: "dangling symbolic link".into(),
            })?;
            if !target.starts_with(root) {
                return Err(PackageError::SymlinkEscapes { entry: rel, target });
            }
            let target_meta = fs::metadata(&target).map_err(io_err(&target))?;
            if !target_meta.is_file() {
                return Err(PackageError::UnsupportedEntry {
                    entry: rel,
                    reason: "symbolic link to a directory or special file".into(),
                });
            }
            out.push(Entry {
                path: rel,
                kind: EntryKind::File,
                size: target_meta.len(),
                crc32: None,
                mode: permission_bits(&target_meta),
            });
        } else if file_type.is_dir() {
            out.push(Entry {
                path: rel.clone(),
                kind: EntryKind::Directory,
                size: 0,
                crc32: None,
                mode: permission_bits(&meta),
            });
            walk(root, &path, &format!("{rel}/"), out)?;
        } else if file_type.is_file() {
            out.push(Entry {
                path: rel,
                kind: EntryKind::File,
                size: meta.len(),
                crc32: None,
                mode: permission_bits(&meta),
            });
        } else {
            return Err(PackageError::UnsupportedEntry {
                entry: rel,
                reason: "not a regular file or directory".into(),
            });
        }
    }
    Ok(())
}
