//! Layers given explicitly: files of the package (a path, a directory or a glob) or of a host
//! directory.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::accumulator::{dest_dir, file_name, join, Accumulator};
use super::rules::top_level_crc;
use super::{
    glob, CustomLayer, CustomSource, EntrySource, LayerPlan, LayerRole, LayeringError,
    LayoutOptions, PlannedEntry, PlannedKind,
};
use crate::package::{DeploymentPackage, EntryKind};

/// Plans explicit layers over `package` (one layer per [`CustomLayer`], in order).
pub fn plan_custom(
    package: &DeploymentPackage,
    layers: &[CustomLayer],
    opts: &LayoutOptions,
) -> Result<Vec<LayerPlan>, LayeringError> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| plan_custom_layer(package, l, i, opts))
        .collect()
}

fn plan_custom_layer(
    pkg: &DeploymentPackage,
    layer: &CustomLayer,
    index: usize,
    opts: &LayoutOptions,
) -> Result<LayerPlan, LayeringError> {
    let name = layer
        .name
        .clone()
        .unwrap_or_else(|| format!("custom-{}", index + 1));
    let root = dest_dir(&layer.destination)?;
    let layer_opts = LayoutOptions {
        uid: layer.uid,
        gid: layer.gid,
        ..opts.clone()
    };
    let mut acc = Accumulator::new(&layer_opts);
    acc.names.insert(LayerRole::Custom, name.clone());
    let file_mode = |found: Option<u32>| match layer.mode {
        Some(m) => m & 0o7777,
        None if found.is_some_and(|m| m & 0o111 != 0) => 0o755,
        None => 0o644,
    };
    match &layer.source {
        CustomSource::Package(pattern) => {
            let pattern = pattern.trim_matches('/');
            let files = pkg.entries().iter().filter(|e| e.kind == EntryKind::File);
            let mut matched = Vec::new();
            if glob::has_wildcard(pattern) {
                let prefix = glob::literal_prefix(pattern);
                for e in files {
                    if glob::matches(pattern, &e.path) {
                        let rel = e
                            .path
                            .strip_prefix(prefix.as_str())
                            .unwrap_or(&e.path)
                            .trim_start_matches('/');
                        matched.push((rel.to_string(), e));
                    }
                }
            } else {
                for e in files {
                    if e.path == pattern {
                        matched.push((file_name(&e.path).to_string(), e));
                    } else if let Some(rel) = e
                        .path
                        .strip_prefix(pattern)
                        .and_then(|r| r.strip_prefix('/'))
                    {
                        matched.push((rel.to_string(), e));
                    }
                }
            }
            if matched.is_empty() {
                return Err(LayeringError::NoMatch {
                    pattern: pattern.to_string(),
                });
            }
            for (rel, e) in matched {
                let crc = top_level_crc(pkg, &e.path)?;
                acc.file(
                    LayerRole::Custom,
                    &root,
                    &rel,
                    file_mode(e.mode),
                    e.size,
                    crc,
                    EntrySource::Package {
                        path: e.path.clone(),
                    },
                )?;
            }
        }
        CustomSource::Host(path) => {
            plan_host(&mut acc, path, &root, &file_mode)?;
        }
    }
    let mut plans = acc.finish()?;
    match plans.pop() {
        Some(p) => Ok(p),
        None => Err(LayeringError::NoMatch {
            pattern: match &layer.source {
                CustomSource::Package(p) => p.clone(),
                CustomSource::Host(p) => p.display().to_string(),
            },
        }),
    }
}

#[cfg(unix)]
fn host_mode(md: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(md.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn host_mode(_md: &fs::Metadata) -> Option<u32> {
    None
}

/// Plans a host file or directory tree; reads each file once for its CRC-32 (host files have
/// no central directory to take it from).
fn plan_host(
    acc: &mut Accumulator<'_>,
    path: &Path,
    root: &str,
    file_mode: &dyn Fn(Option<u32>) -> u32,
) -> Result<(), LayeringError> {
    let host_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LayeringError::Host { path: p, source }
    };
    let md = fs::symlink_metadata(path).map_err(host_err(path))?;
    if md.is_file() {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            LayeringError::UnsupportedHostEntry {
                path: path.to_path_buf(),
                reason: "file name is not UTF-8",
            }
        })?;
        let crc = host_crc(path)?;
        return acc.file(
            LayerRole::Custom,
            root,
            name,
            file_mode(host_mode(&md)),
            md.len(),
            crc,
            EntrySource::Host {
                path: path.to_path_buf(),
            },
        );
    }
    if !md.is_dir() {
        return Err(LayeringError::UnsupportedHostEntry {
            path: path.to_path_buf(),
            reason: "not a regular file or directory",
        });
    }
    acc.dir(LayerRole::Custom, root, "");
    let mut stack = vec![(path.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut children: Vec<_> = fs::read_dir(&dir)
            .map_err(host_err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(host_err(&dir))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let host = child.path();
            let name = child.file_name().into_string().map_err(|_| {
                LayeringError::UnsupportedHostEntry {
                    path: host.clone(),
                    reason: "file name is not UTF-8",
                }
            })?;
            let child_rel = join(&rel, &name);
            let md = fs::symlink_metadata(&host).map_err(host_err(&host))?;
            let ft = md.file_type();
            if ft.is_dir() {
                acc.dir(LayerRole::Custom, root, &child_rel);
                stack.push((host, child_rel));
            } else if ft.is_file() {
                let crc = host_crc(&host)?;
                acc.file(
                    LayerRole::Custom,
                    root,
                    &child_rel,
                    file_mode(host_mode(&md)),
                    md.len(),
                    crc,
                    EntrySource::Host { path: host },
                )?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&host).map_err(host_err(&host))?;
                let target = target.into_os_string().into_string().map_err(|_| {
                    LayeringError::UnsupportedHostEntry {
                        path: host.clone(),
                        reason: "symlink target is not UTF-8",
                    }
                })?;
                if let Some((parent, _)) = child_rel.rsplit_once('/') {
                    acc.dir(LayerRole::Custom, root, parent);
                }
                let entry = PlannedEntry {
                    dest: join(root, &child_rel),
                    kind: PlannedKind::Symlink { target },
                    mode: 0o777,
                    uid: acc.opts.uid,
                    gid: acc.opts.gid,
                    size: 0,
                    crc32: 0,
                    source: EntrySource::None,
                };
                acc.insert(LayerRole::Custom, entry)?;
            } else {
                return Err(LayeringError::UnsupportedHostEntry {
                    path: host,
                    reason: "devices, fifos and sockets cannot go into a layer",
                });
            }
        }
    }
    Ok(())
}

fn host_crc(path: &Path) -> Result<u32, LayeringError> {
    let err = |source| LayeringError::Host {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(err)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(hasher.finalize())
}
