//! The local part of a build: the layers we add (a local base rootfs, the planned package
//! layers), taken from the layer cache or written into it.

use std::fs;
use std::path::Path;

use super::inputs::plan_layers;
use super::report::LayerReport;
use super::request::{Base, BuildRequest};
use super::rootfs::rootfs_identity;
use super::{io_err, BuildError, Progress, LISTINGS_DIR};
use crate::cache::LayerCache;
use crate::layer::{
    layer_from_dir, layer_from_tar, LayerOptions, LayerOutput, LayerWriter, SourceOptions,
};
use crate::layering::{
    self, LayerPlan, ListingCache, Service, Sources, StreamOptions, DEFAULT_MEMORY_CAP,
};

/// The local part of a build: every layer we add, ready on disk.
pub(crate) struct LocalLayers {
    /// The local rootfs base as a layer, and its content identity.
    pub(crate) rootfs: Option<(LayerOutput, LayerReport)>,
    /// The planned layers with their history `created_by`.
    pub(crate) layers: Vec<(LayerOutput, LayerReport, String)>,
    /// The whole package's fingerprint.
    pub(crate) package_fingerprint: String,
    /// The package version.
    pub(crate) version: Option<String>,
    /// What the build should tell the user.
    pub(crate) warnings: Vec<String>,
}

impl LocalLayers {
    /// Names and fingerprints of the planned layers, bottom first (as the inputs fingerprint
    /// takes them).
    pub(crate) fn fingerprints(&self) -> Vec<(&str, &str)> {
        self.layers
            .iter()
            .map(|(_, r, _)| {
                (
                    r.name.as_str(),
                    r.fingerprint.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The local rootfs's content identity.
    pub(crate) fn rootfs_identity(&self) -> Option<&str> {
        self.rootfs
            .as_ref()
            .and_then(|(_, r)| r.fingerprint.as_deref())
    }
}

fn build_rootfs(
    path: &Path,
    cache: &LayerCache,
    cache_dir: &Path,
    opts: &LayerOptions,
    progress: &dyn Progress,
) -> Result<(LayerOutput, LayerReport), BuildError> {
    let name = "base-rootfs";
    let fingerprint = rootfs_identity(path, Some(cache_dir))?;
    progress.layer_started(name, 0);
    let (out, hit) = match cache.get(&fingerprint, opts)? {
        Some(o) => (o, true),
        None => {
            let md = fs::metadata(path).map_err(io_err(path))?;
            let src = SourceOptions::default();
            let out = if md.is_dir() {
                layer_from_dir(path, &src, opts.clone(), &cache.work_dir())?
            } else {
                layer_from_tar(path, &src, opts.clone(), &cache.work_dir())?
            };
            (cache.put(&fingerprint, opts, out)?, false)
        }
    };
    let report = LayerReport {
        name: name.to_string(),
        digest: out.digest.clone(),
        diff_id: Some(out.diff_id.clone()),
        size: out.size,
        fingerprint: Some(fingerprint),
        cache_hit: hit,
        files: 0,
        push: None,
    };
    progress.layer_finished(&report);
    Ok((out, report))
}

/// Writes the planned layers the cache lacks, all at once: an archive deflated in the package
/// is then inflated once for all its layers rather than once per layer (see
/// [`layering::write_layers`]). `ready` is called with each layer as soon as it is in the
/// cache, hits first, so a push can start uploading it while the others are written.
#[allow(clippy::too_many_arguments)]
fn build_planned(
    sources: &Sources<'_>,
    plans: &[LayerPlan],
    cache: &LayerCache,
    opts: &LayerOptions,
    scratch: &Path,
    progress: &dyn Progress,
    ready: &mut dyn FnMut(&LayerOutput),
) -> Result<Vec<(LayerOutput, LayerReport)>, BuildError> {
    let report = |plan: &LayerPlan, out: &LayerOutput, hit: bool| LayerReport {
        name: plan.name.clone(),
        digest: out.digest.clone(),
        diff_id: Some(out.diff_id.clone()),
        size: out.size,
        fingerprint: Some(plan.fingerprint.clone()),
        cache_hit: hit,
        files: plan.file_count(),
        push: None,
    };
    let mut built: Vec<Option<(LayerOutput, LayerReport)>> = Vec::with_capacity(plans.len());
    let mut missing = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        progress.layer_started(&plan.name, plan.content_bytes());
        match cache.get(&plan.fingerprint, opts)? {
            Some(out) => {
                let r = report(plan, &out, true);
                progress.layer_finished(&r);
                ready(&out);
                built.push(Some((out, r)));
            }
            None => {
                missing.push(i);
                built.push(None);
            }
        }
    }
    if !missing.is_empty() {
        // Only the layer with the most content gets the full compressor threads: in a shared
        // pass one layer receives the current entry at a time, and the big one receives most
        // of them; one helper each for the others keeps their buffers and threads (and the
        // peak RSS) small at no measurable cost in time.
        let largest = missing
            .iter()
            .copied()
            .max_by_key(|&i| plans.get(i).map_or(0, LayerPlan::content_bytes));
        let mut jobs = Vec::with_capacity(missing.len());
        for &i in &missing {
            let plan = plans.get(i).ok_or_else(|| {
                BuildError::InvalidRequest(format!("layer #{i} missing from the plan"))
            })?;
            jobs.push(layering::LayerJob {
                plan,
                writer: LayerWriter::new(
                    &cache.work_dir(),
                    LayerOptions {
                        threads: if Some(i) == largest {
                            opts.threads
                        } else {
                            opts.threads.min(1)
                        },
                        ..opts.clone()
                    },
                )?,
            });
        }
        let stream = StreamOptions {
            memory_cap: DEFAULT_MEMORY_CAP,
            spill_dir: scratch.to_path_buf(),
        };
        let plan_of = |j: usize| missing.get(j).and_then(|&i| plans.get(i).map(|p| (i, p)));
        let mut advance = |j: usize, n: u64| {
            if let Some((_, plan)) = plan_of(j) {
                progress.layer_advanced(&plan.name, n);
            }
        };
        let mut done = |j: usize, writer: LayerWriter, _stats| -> Result<(), BuildError> {
            let (i, plan) = plan_of(j).ok_or_else(|| {
                BuildError::InvalidRequest(format!("layer job #{j} out of range"))
            })?;
            let out = cache.put(&plan.fingerprint, opts, writer.finish()?)?;
            let r = report(plan, &out, false);
            progress.layer_finished(&r);
            ready(&out);
            if let Some(slot) = built.get_mut(i) {
                *slot = Some((out, r));
            }
            Ok(())
        };
        layering::write_layers(sources, jobs, &stream, &mut advance, &mut done)?;
    }
    built
        .into_iter()
        .zip(plans)
        .map(|(b, plan)| {
            b.ok_or_else(|| {
                BuildError::InvalidRequest(format!("layer {} was not written", plan.name))
            })
        })
        .collect()
}

pub(crate) fn build_local(
    req: &BuildRequest,
    cache: &LayerCache,
    cache_dir: &Path,
    scratch: &Path,
    progress: &dyn Progress,
    ready: &mut dyn FnMut(&LayerOutput),
) -> Result<LocalLayers, BuildError> {
    let opts = LayerOptions {
        compression: req.compression,
        source_date_epoch: req.source_date_epoch,
        ..LayerOptions::default()
    };
    let rootfs = match &req.base {
        Base::LocalRootfs(path) => {
            let built = build_rootfs(path, cache, cache_dir, &opts, progress)?;
            ready(&built.0);
            Some(built)
        }
        _ => None,
    };
    progress.message("planning layers");
    let pkg = req.open_package()?;
    let package_fingerprint = pkg.fingerprint()?;
    let version = pkg.version().map(str::to_string);
    let listings = ListingCache::new(cache_dir.join(LISTINGS_DIR));
    let mut sources = Sources::with_listing_cache(&pkg, listings);
    let (plans, warnings) = plan_layers(&mut sources, req)?;
    for w in &warnings {
        progress.message(&format!("warning: {w}"));
    }
    let service = req.service.map_or("custom", Service::name);
    let built = build_planned(&sources, &plans, cache, &opts, scratch, progress, ready)?;
    let layers = built
        .into_iter()
        .zip(&plans)
        .map(|((out, report), plan)| {
            (
                out,
                report,
                format!("ep-imagebuild {service} {}", plan.name),
            )
        })
        .collect();
    Ok(LocalLayers {
        rootfs,
        layers,
        package_fingerprint,
        version,
        warnings,
    })
}
