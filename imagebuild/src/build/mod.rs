//! The build orchestrator: from a deployment package (and a base) to an image pushed to a
//! registry or written as an OCI layout or archive. The entry point for the CLI and for
//! anything embedding the builder (a Terraform provider, a Jenkins step).
//!
//! Order of work, so that bad input fails before anything expensive or visible happens:
//! 1. the request is validated (tags, references, platforms, output) — nothing written yet;
//! 2. a registry base is resolved: tag → digest (recorded), manifest and config only;
//! 3. the package is opened and planned ([`crate::layering`]); each layer is looked up in the
//!    [`LayerCache`] by its input fingerprint and only written (streamed, compressed) on a miss;
//! 4. config, manifest(s) and, for several platforms, an index are assembled;
//! 5. the output is written: pushed (base layers mounted or checked, ours in parallel, manifests
//!    by digest, then tags), or an OCI layout / archive.
//!
//! Everything the build writes goes under [`BuildRequest::work_dir`] (its cache and a scratch
//! directory removed at the end) and into the requested output.

mod base;
mod error;
mod inputs;
mod local;
mod progress;
mod push;
mod report;
mod request;
mod rootfs;

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::LayerCache;
use crate::image::{write_layout_tar, write_oci_layout, Annotations, Built, ImageLayer, ImageSpec};
use crate::layer::LayerOutput;
use crate::registry::RegistryClient;

pub(crate) use error::io_err;
pub use error::BuildError;
pub use inputs::{inspect_inputs, InputLayer, InputsReport};
pub use progress::{NoProgress, Progress};
pub use report::{BlobPush, BuildReport, ImageReport, LayerReport};
pub use request::{Base, BuildRequest, Output};
pub use rootfs::{rootfs_identity, ROOTFS_DIR};

use inputs::BaseId;
use request::{validate, Target};

/// Directory of the layer cache holding nested archives' listings ([`ListingCache`]).
pub const LISTINGS_DIR: &str = "listings";

/// Annotation holding the image's inputs fingerprint ([`inspect_inputs`]): what went into
/// this image and nothing else, so a package change elsewhere leaves its digest alone.
pub const INPUTS_FINGERPRINT_ANNOTATION: &str = "com.elasticpath.image.inputs-fingerprint";
/// Annotation holding the service name.
pub const SERVICE_ANNOTATION: &str = "com.elasticpath.image.service";

/// Runs CPU-bound work without starving a multi-threaded runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The scratch directory of one build, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Builds the image `req` describes and writes it to its output. Several builds may run at
/// once in one process sharing `client` (connection pools, tokens, upload de-duplication).
pub async fn build(
    req: &BuildRequest,
    client: &RegistryClient,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let target = validate(req)?;
    let platforms = inputs::platforms(req);

    // Open the package once up front (its central directory only) so that a bad package
    // fails before any registry traffic or cache write.
    blocking(|| req.open_package().map(drop))?;

    let resolved = match &req.base {
        Base::Registry(reference) => {
            progress.message(&format!("resolving base {reference}"));
            Some(base::resolve(client, reference, &platforms).await?)
        }
        _ => None,
    };

    fs::create_dir_all(&req.work_dir).map_err(io_err(&req.work_dir))?;
    let cache_dir = req.layer_cache_dir();
    let cache = LayerCache::open(&cache_dir)?;
    let scratch = Scratch(req.work_dir.join(format!(
        "build-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )));
    fs::create_dir_all(&scratch.0).map_err(io_err(&scratch.0))?;

    let mut early = match &target {
        Target::Push { repo, .. } => push::EarlyPush::new(client, repo),
        _ => None,
    };
    let mut ready = |layer: &LayerOutput| {
        if let Some(e) = early.as_mut() {
            e.start(layer);
        }
    };
    let local =
        blocking(|| local::build_local(req, &cache, &cache_dir, &scratch.0, progress, &mut ready))?;

    // Images: one per platform, same layers of ours over that platform's base.
    let mut annotations = Annotations {
        version: local.version.clone(),
        ..Annotations::default()
    };
    let base_id = match (&req.base, &resolved, local.rootfs_identity()) {
        (Base::Registry(reference), Some(r), _) => BaseId::Registry {
            reference,
            digest: r.digest.as_str(),
        },
        (_, _, Some(identity)) => BaseId::Rootfs(identity),
        _ => BaseId::Scratch,
    };
    let inputs_fingerprint = inputs::fingerprint(
        req,
        base_id,
        &local.fingerprints(),
        local.version.as_deref(),
    );
    annotations.custom.insert(
        INPUTS_FINGERPRINT_ANNOTATION.to_string(),
        inputs_fingerprint.clone(),
    );
    if let Some(s) = req.service {
        annotations
            .custom
            .insert(SERVICE_ANNOTATION.to_string(), s.name().to_string());
    }
    annotations.custom.extend(req.annotations.clone());
    let mut our_layers = Vec::new();
    if let Some((out, _)) = &local.rootfs {
        our_layers.push(ImageLayer {
            layer: out.clone(),
            created_by: "ep-imagebuild base rootfs".into(),
            comment: None,
        });
    }
    for (out, _, created_by) in &local.layers {
        our_layers.push(ImageLayer {
            layer: out.clone(),
            created_by: created_by.clone(),
            comment: None,
        });
    }
    let specs = platforms
        .iter()
        .enumerate()
        .map(|(i, p)| ImageSpec {
            platform: p.clone(),
            format: req.format,
            base: resolved.as_ref().and_then(|r| r.images.get(i)).cloned(),
            layers: our_layers.clone(),
            config: req.config.clone(),
            annotations: annotations.clone(),
            source_date_epoch: req.source_date_epoch,
            author: None,
        })
        .collect();
    let built = Built::from_specs(specs)?;

    // Output.
    let mut summary = push::PushSummary::default();
    let (image_reference, tags) = match &target {
        Target::Push { repo, tags } => {
            progress.message(&format!("pushing to {repo}"));
            summary = push::push(
                client,
                repo,
                &built,
                resolved.as_ref(),
                tags,
                progress,
                early.take(),
            )
            .await?;
            (Some(format!("{repo}@{}", built.digest())), tags.clone())
        }
        Target::Layout { path, tags } => {
            progress.message(&format!("writing OCI layout {}", path.display()));
            blocking(|| write_layout(path, tags, &built))?;
            (None, tags.clone())
        }
        Target::Archive { path, tags } => {
            progress.message(&format!("writing OCI archive {}", path.display()));
            let dir = scratch.0.join("layout");
            blocking(|| {
                write_layout(&dir, tags, &built)?;
                write_layout_tar(&dir, path, req.source_date_epoch).map_err(BuildError::from)
            })?;
            (None, tags.clone())
        }
    };
    Ok(report::report(
        &built,
        &local,
        resolved.as_ref(),
        summary,
        inputs_fingerprint,
        image_reference,
        tags,
    ))
}

fn write_layout(path: &Path, tags: &[String], built: &Built) -> Result<(), BuildError> {
    let tagged: Vec<(&str, &Built)> = tags.iter().map(|t| (t.as_str(), built)).collect();
    write_oci_layout(path, &tagged)?;
    Ok(())
}
