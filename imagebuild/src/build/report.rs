//! What a build reports.

use serde::Serialize;

use super::base::ResolvedBase;
use super::local::LocalLayers;
use super::push::PushSummary;
use crate::digest::Digest;
use crate::image::Built;

/// What happened to a blob at the target registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "result")]
pub enum BlobPush {
    /// Uploaded.
    Uploaded {
        /// Bytes sent.
        bytes: u64,
    },
    /// Already there.
    Skipped,
    /// Mounted from another repository of the same registry.
    Mounted {
        /// The source repository.
        from: String,
    },
    /// A base layer copied from the base's registry.
    Copied {
        /// Bytes sent.
        bytes: u64,
    },
}

impl BlobPush {
    /// Bytes sent for it.
    pub fn uploaded(&self) -> u64 {
        match self {
            BlobPush::Uploaded { bytes } | BlobPush::Copied { bytes } => *bytes,
            _ => 0,
        }
    }
}

/// One layer of the built image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerReport {
    /// Layer name (`base`, `base-rootfs`, `tomcat-lib`, `classes`, ...).
    pub name: String,
    /// Blob digest.
    pub digest: Digest,
    /// Uncompressed tar digest; `None` for base layers (known from the base config only by
    /// position).
    pub diff_id: Option<Digest>,
    /// Blob size.
    pub size: u64,
    /// Input fingerprint (the cache key); `None` for registry base layers.
    pub fingerprint: Option<String>,
    /// Taken from the layer cache rather than written.
    pub cache_hit: bool,
    /// Files in it (0 when unknown).
    pub files: usize,
    /// What the push did with it; `None` when not pushed.
    pub push: Option<BlobPush>,
}

/// One platform's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// Its platform (`linux/amd64`).
    pub platform: String,
    /// Its manifest digest.
    pub manifest_digest: Digest,
    /// Its config digest.
    pub config_digest: Digest,
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// Digest of what the tags point at: the manifest, or the index for several platforms.
    pub manifest_digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// `repository@digest` when pushed.
    pub image_reference: Option<String>,
    /// Tags written.
    pub tags: Vec<String>,
    /// Config digest of the first platform's image.
    pub config_digest: Digest,
    /// Each platform's image.
    pub images: Vec<ImageReport>,
    /// Layers of the first platform's image, bottom first (base layers included).
    pub layers: Vec<LayerReport>,
    /// The base reference, when from a registry.
    pub base_reference: Option<String>,
    /// What the base reference resolved to.
    pub base_digest: Option<Digest>,
    /// Blobs uploaded (including base layers copied between registries).
    pub blobs_pushed: usize,
    /// Blobs the registry already had.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Bytes sent: blobs plus manifests written.
    pub bytes_uploaded: u64,
    /// The image's inputs fingerprint (the inputs fingerprint annotation), as
    /// [`inspect_inputs`](super::inspect_inputs) computes it for the same request.
    pub inputs_fingerprint: String,
    /// The whole package's content fingerprint (not recorded in the image: a change elsewhere
    /// in the package must not change this image).
    pub package_fingerprint: String,
    /// What the build wants the user to know (a cortex image built without Cortex Studio).
    pub warnings: Vec<String>,
    /// The package version (the version annotation).
    pub package_version: Option<String>,
}

pub(crate) fn report(
    built: &Built,
    local: &LocalLayers,
    resolved: Option<&ResolvedBase>,
    summary: PushSummary,
    inputs_fingerprint: String,
    image_reference: Option<String>,
    tags: Vec<String>,
) -> BuildReport {
    let images: Vec<ImageReport> = built
        .images()
        .iter()
        .map(|img| ImageReport {
            platform: img.platform.to_string(),
            manifest_digest: img.manifest_digest.clone(),
            config_digest: Digest::of(&img.config_json),
        })
        .collect();
    let mut layers = Vec::new();
    if let Some(first) = built.images().first() {
        let ours: Vec<&LayerReport> = local
            .rootfs
            .iter()
            .map(|(_, r)| r)
            .chain(local.layers.iter().map(|(_, r, _)| r))
            .collect();
        let base_count = first.layers.len().saturating_sub(ours.len());
        for (i, l) in first.layers.iter().enumerate() {
            let digest: Digest = match l.descriptor.digest.parse() {
                Ok(d) => d,
                Err(_) => continue,
            };
            let push = summary.blobs.get(&digest).cloned();
            if i < base_count {
                layers.push(LayerReport {
                    name: format!("base-{}", i + 1),
                    digest,
                    diff_id: first.config.rootfs.diff_ids.get(i).cloned(),
                    size: u64::try_from(l.descriptor.size).unwrap_or(0),
                    fingerprint: None,
                    cache_hit: false,
                    files: 0,
                    push,
                });
            } else if let Some(r) = ours.get(i - base_count) {
                layers.push(LayerReport {
                    push,
                    ..(*r).clone()
                });
            }
        }
    }
    let mut pushed = 0;
    let mut skipped = 0;
    let mut mounted = 0;
    for o in summary.blobs.values() {
        match o {
            BlobPush::Uploaded { .. } | BlobPush::Copied { .. } => pushed += 1,
            BlobPush::Skipped => skipped += 1,
            BlobPush::Mounted { .. } => mounted += 1,
        }
    }
    let descriptor = built.descriptor();
    BuildReport {
        manifest_digest: built.digest().clone(),
        media_type: descriptor.media_type,
        image_reference,
        tags,
        config_digest: images
            .first()
            .map(|i| i.config_digest.clone())
            .unwrap_or_else(|| Digest::of(b"")),
        images,
        layers,
        base_reference: resolved.map(|r| r.reference.clone()),
        base_digest: resolved.map(|r| r.digest.clone()),
        blobs_pushed: pushed,
        blobs_skipped: skipped,
        blobs_mounted: mounted,
        bytes_uploaded: summary.bytes_uploaded,
        inputs_fingerprint,
        package_fingerprint: local.package_fingerprint.clone(),
        package_version: local.version.clone(),
        warnings: local.warnings.clone(),
    }
}
