//! Collecting planned entries into layers: destinations, parents, conflicts, fingerprints.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    fingerprint_entries, EntrySource, LayerPlan, LayerRole, LayeringError, LayoutOptions,
    PlannedEntry, PlannedKind,
};
use crate::layer::{normalize_path, path_cmp};

pub(super) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub(super) fn join(root: &str, rel: &str) -> String {
    match (root.is_empty(), rel.is_empty()) {
        (_, true) => root.to_string(),
        (true, false) => rel.to_string(),
        (false, false) => format!("{root}/{rel}"),
    }
}

/// Validates an in-image destination directory and returns it normalised (no leading `/`).
pub(super) fn dest_dir(path: &str) -> Result<String, LayeringError> {
    if !path.starts_with('/') {
        return Err(LayeringError::InvalidDestination {
            path: path.to_string(),
            reason: "must be an absolute path",
        });
    }
    if path.split('/').any(|c| c == "..") {
        return Err(LayeringError::InvalidDestination {
            path: path.to_string(),
            reason: "must not contain `..`",
        });
    }
    if path.trim_matches('/').is_empty() {
        // The image root: entries land directly under it.
        return Ok(String::new());
    }
    normalize_path(path).map_err(|_| LayeringError::InvalidDestination {
        path: path.to_string(),
        reason: "contains a NUL byte",
    })
}

pub(super) fn describe(source: &EntrySource) -> String {
    match source {
        EntrySource::None => "(directory)".into(),
        EntrySource::Package { path } => path.clone(),
        EntrySource::Nested { archive, path } => format!("{archive}!/{path}"),
        EntrySource::Host { path } => path.display().to_string(),
    }
}

/// Entries per layer while planning.
pub(super) struct Accumulator<'o> {
    pub(super) opts: &'o LayoutOptions,
    layers: BTreeMap<LayerRole, BTreeMap<String, PlannedEntry>>,
    pub(super) names: BTreeMap<LayerRole, String>,
    all_dirs: BTreeSet<String>,
}

impl<'o> Accumulator<'o> {
    pub(super) fn new(opts: &'o LayoutOptions) -> Self {
        Accumulator {
            opts,
            layers: BTreeMap::new(),
            names: BTreeMap::new(),
            all_dirs: BTreeSet::new(),
        }
    }

    pub(super) fn has_dir(&self, dest: &str) -> bool {
        self.all_dirs.contains(dest)
    }

    /// Adds `root/rel` as a directory, with its parents down from `root`.
    pub(super) fn dir(&mut self, role: LayerRole, root: &str, rel: &str) {
        let (uid, gid) = (self.opts.uid, self.opts.gid);
        let layer = self.layers.entry(role).or_default();
        let mut add = |dest: String, all: &mut BTreeSet<String>| {
            if dest.is_empty() {
                return;
            }
            all.insert(dest.clone());
            layer.entry(dest.clone()).or_insert(PlannedEntry {
                dest,
                kind: PlannedKind::Dir,
                mode: 0o755,
                uid,
                gid,
                size: 0,
                crc32: 0,
                source: EntrySource::None,
            });
        };
        add(root.to_string(), &mut self.all_dirs);
        let mut prefix = String::new();
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            add(join(root, &prefix), &mut self.all_dirs);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn file(
        &mut self,
        role: LayerRole,
        root: &str,
        rel: &str,
        mode: u32,
        size: u64,
        crc32: u32,
        source: EntrySource,
    ) -> Result<(), LayeringError> {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.dir(role, root, parent);
        } else {
            self.dir(role, root, "");
        }
        let dest = join(root, rel);
        let entry = PlannedEntry {
            dest: dest.clone(),
            kind: PlannedKind::File,
            mode,
            uid: self.opts.uid,
            gid: self.opts.gid,
            size,
            crc32,
            source,
        };
        self.insert(role, entry)
    }

    pub(super) fn insert(
        &mut self,
        role: LayerRole,
        entry: PlannedEntry,
    ) -> Result<(), LayeringError> {
        let layer = self.layers.entry(role).or_default();
        if let Some(prev) = layer.get(&entry.dest) {
            return Err(LayeringError::Conflict {
                layer: self
                    .names
                    .get(&role)
                    .cloned()
                    .unwrap_or_else(|| role.name().to_string()),
                dest: format!("/{}", entry.dest),
                first: describe(&prev.source),
                second: describe(&entry.source),
            });
        }
        layer.insert(entry.dest.clone(), entry);
        Ok(())
    }

    /// Layers in role order; those without a file or symlink are dropped (a layer of bare
    /// directories adds nothing a file layer does not create anyway).
    pub(super) fn finish(self) -> Result<Vec<LayerPlan>, LayeringError> {
        let mut out = Vec::new();
        for (role, entries) in self.layers {
            if !entries.values().any(|e| e.kind != PlannedKind::Dir) {
                continue;
            }
            let mut entries: Vec<PlannedEntry> = entries.into_values().collect();
            entries.sort_by(|a, b| path_cmp(&a.dest, &b.dest));
            let fingerprint = fingerprint_entries(
                &entries,
                &self.opts.compression,
                self.opts.source_date_epoch,
            );
            let name = self
                .names
                .get(&role)
                .cloned()
                .unwrap_or_else(|| role.name().to_string());
            out.push(LayerPlan {
                name,
                role,
                entries,
                fingerprint,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(dest_dir("/usr/local/").unwrap(), "usr/local");
        assert_eq!(dest_dir("/").unwrap(), "");
        assert!(dest_dir("relative").is_err());
        assert!(dest_dir("/a/../b").is_err());
    }
}
