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
mod progress;
mod push;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::cache::{CacheError, LayerCache};
use crate::digest::Digest;
use crate::image::{
    write_layout_tar, write_oci_layout, Annotations, Built, ConfigOverrides, ImageError,
    ImageLayer, ImageSpec, ManifestFormat, Platform,
};
use crate::layer::{
    layer_from_dir, layer_from_tar, Compression, LayerError, LayerOptions, LayerOutput,
    LayerWriter, SourceOptions,
};
use crate::layering::{
    self, CustomLayer, LayerPlan, LayeringError, LayoutOptions, ListingCache, Service, Sources,
    StreamOptions, DEFAULT_MEMORY_CAP,
};
use crate::package::{DeploymentPackage, PackageError};
use crate::registry::{valid_tag, RegistryClient, RegistryError, RepoRef};

pub use progress::{NoProgress, Progress};

/// Directory of the layer cache holding nested archives' listings ([`ListingCache`]).
pub const LISTINGS_DIR: &str = "listings";

/// Annotation holding the deployment package's fingerprint.
pub const SOURCE_FINGERPRINT_ANNOTATION: &str = "com.elasticpath.image.source-fingerprint";
/// Annotation holding the service name.
pub const SERVICE_ANNOTATION: &str = "com.elasticpath.image.service";

/// The image the new layers go on top of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An image in a registry: a tag is resolved to a digest (recorded in the report and the
    /// `base.digest` annotation); a digest reference is used as is. Only its manifest and
    /// config are read; its layers are never downloaded.
    Registry(String),
    /// A root filesystem on this host, a directory or a tarball (plain, gzip or zstd), which
    /// becomes the image's first layer.
    LocalRootfs(PathBuf),
    /// No base.
    Scratch,
}

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Push to a repository (`registry/repo`; a `:tag` in it is added to `tags`).
    Push {
        /// Repository reference, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/ep/cortex`.
        repository: String,
        /// Tags to point at the image (none: pushed by digest only).
        tags: Vec<String>,
    },
    /// An OCI image layout directory (created or updated).
    OciLayout {
        /// The layout directory.
        path: PathBuf,
        /// `org.opencontainers.image.ref.name`s (none: `latest`).
        tags: Vec<String>,
    },
    /// An OCI layout as a tar file (`oci-archive:`).
    OciArchive {
        /// The tar file.
        path: PathBuf,
        /// Ref names (none: `latest`).
        tags: Vec<String>,
    },
}

/// Everything that defines a build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The deployment package (zip or directory).
    pub package: PathBuf,
    /// The service whose layers to build; `None` for custom layers only.
    pub service: Option<Service>,
    /// Explicit layers, on top of the service's.
    pub custom_layers: Vec<CustomLayer>,
    /// Destinations and owner. Its `compression` and `source_date_epoch` are replaced by the
    /// request's.
    pub layout: LayoutOptions,
    /// The base.
    pub base: Base,
    /// Config changes (env, entrypoint, cmd, workdir, user, labels, ports, stop signal).
    pub config: ConfigOverrides,
    /// Target platforms; several give an image index. Empty means linux/amd64.
    pub platforms: Vec<Platform>,
    /// Extra manifest annotations (override the automatic ones).
    pub annotations: BTreeMap<String, String>,
    /// Timestamp of every file, the config and the `created` annotation.
    pub source_date_epoch: u64,
    /// Layer compression.
    pub compression: Compression,
    /// Manifest flavour.
    pub format: ManifestFormat,
    /// Where the image goes.
    pub output: Output,
    /// Scratch space and (by default) the layer cache.
    pub work_dir: PathBuf,
    /// The layer cache; `<work_dir>/cache` when `None`.
    pub cache_dir: Option<PathBuf>,
}

impl BuildRequest {
    /// A request for `service` from `package` on scratch, with defaults everywhere else.
    pub fn new(package: impl Into<PathBuf>, output: Output, work_dir: impl Into<PathBuf>) -> Self {
        BuildRequest {
            package: package.into(),
            service: None,
            custom_layers: Vec::new(),
            layout: LayoutOptions::default(),
            base: Base::Scratch,
            config: ConfigOverrides::default(),
            platforms: Vec::new(),
            annotations: BTreeMap::new(),
            source_date_epoch: 0,
            compression: Compression::default(),
            format: ManifestFormat::Oci,
            output,
            work_dir: work_dir.into(),
            cache_dir: None,
        }
    }
}

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
    /// The package fingerprint (the source fingerprint annotation).
    pub package_fingerprint: String,
    /// The package version (the version annotation).
    pub package_version: Option<String>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The request itself is inconsistent.
    #[error("invalid build request: {0}")]
    InvalidRequest(String),
    /// A tag that the distribution spec does not allow.
    #[error(
        "invalid tag {0:?}: tags are 1-128 characters of [A-Za-z0-9_.-], not starting with . or -"
    )]
    InvalidTag(String),
    /// An image or repository reference that does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The base reference names nothing.
    #[error("base image {reference} not found")]
    BaseNotFound {
        /// The reference.
        reference: String,
    },
    /// The base has no image for a requested platform.
    #[error("base image {reference} has no {platform} image")]
    BasePlatform {
        /// The reference.
        reference: String,
        /// The platform.
        platform: String,
    },
    /// The base's manifest or config is malformed.
    #[error("base image {reference}: {reason}")]
    InvalidBase {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A base layer from another registry is missing in the target and too large to copy.
    #[error("base layer {digest} ({size} bytes) of {from} is not in {to} and too large to copy through memory; copy the base image into the target registry first (e.g. skopeo copy)")]
    BaseLayerUnavailable {
        /// The layer.
        digest: String,
        /// Its size.
        size: u64,
        /// The base repository.
        from: String,
        /// The target repository.
        to: String,
    },
    /// Layout output needs every layer locally, and a registry base's are not downloaded.
    #[error("{0} output cannot use a registry base (its layers are never downloaded); push instead, or use a local rootfs or scratch base")]
    RegistryBaseNeedsPush(&'static str),
    /// The package could not be read.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Planning or streaming layers failed.
    #[error(transparent)]
    Layering(#[from] LayeringError),
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The layer cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Assembling or writing the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A layer upload started during the build ended without a result (its task panicked
    /// or was cancelled).
    #[error("upload of layer {digest} did not complete: {reason}")]
    UploadStopped {
        /// The layer.
        digest: String,
        /// Why.
        reason: String,
    },
    /// A file system failure in the work directory or output.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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

/// The validated output: where, and under which tags.
enum Target {
    Push { repo: RepoRef, tags: Vec<String> },
    Layout { path: PathBuf, tags: Vec<String> },
    Archive { path: PathBuf, tags: Vec<String> },
}

fn check_tags(tags: &[String]) -> Result<(), BuildError> {
    match tags.iter().find(|t| !valid_tag(t)) {
        Some(t) => Err(BuildError::InvalidTag(t.clone())),
        None => Ok(()),
    }
}

fn or_latest(tags: &[String]) -> Vec<String> {
    if tags.is_empty() {
        vec!["latest".to_string()]
    } else {
        tags.to_vec()
    }
}

fn validate(req: &BuildRequest) -> Result<Target, BuildError> {
    if req.service.is_none() && req.custom_layers.is_empty() {
        return Err(BuildError::InvalidRequest(
            "nothing to build: give a service or at least one custom layer".into(),
        ));
    }
    if req.format == ManifestFormat::Docker && matches!(req.compression, Compression::Zstd { .. }) {
        return Err(BuildError::Image(ImageError::ZstdInDocker));
    }
    for (i, p) in req.platforms.iter().enumerate() {
        if req.platforms[..i].contains(p) {
            return Err(BuildError::InvalidRequest(format!(
                "platform {p} given twice"
            )));
        }
    }
    if let Base::Registry(r) = &req.base {
        RepoRef::parse_reference(r).map_err(|e| BuildError::InvalidReference {
            reference: r.clone(),
            reason: e.to_string(),
        })?;
    }
    let registry_base = matches!(req.base, Base::Registry(_));
    Ok(match &req.output {
        Output::Push { repository, tags } => {
            check_tags(tags)?;
            let (repo, parsed) =
                RepoRef::parse_reference(repository).map_err(|e| BuildError::InvalidReference {
                    reference: repository.clone(),
                    reason: e.to_string(),
                })?;
            if parsed.digest().is_some() {
                return Err(BuildError::InvalidReference {
                    reference: repository.clone(),
                    reason: "a push target cannot name a digest".into(),
                });
            }
            let mut tags = tags.clone();
            // `Reference` defaults the tag to `latest`; only take one the user wrote.
            if let Some(t) = parsed.tag() {
                let written = repository
                    .rsplit_once('/')
                    .map_or(repository.as_str(), |(_, last)| last);
                if written.contains(':') && !tags.iter().any(|x| x == t) {
                    tags.insert(0, t.to_string());
                }
            }
            check_tags(&tags)?;
            Target::Push { repo, tags }
        }
        Output::OciLayout { path, tags } => {
            check_tags(tags)?;
            if registry_base {
                return Err(BuildError::RegistryBaseNeedsPush("OCI layout"));
            }
            Target::Layout {
                path: path.clone(),
                tags: or_latest(tags),
            }
        }
        Output::OciArchive { path, tags } => {
            check_tags(tags)?;
            if registry_base {
                return Err(BuildError::RegistryBaseNeedsPush("OCI archive"));
            }
            Target::Archive {
                path: path.clone(),
                tags: or_latest(tags),
            }
        }
    })
}

/// The local part of a build: every layer we add, ready on disk.
struct LocalLayers {
    rootfs: Option<(LayerOutput, LayerReport)>,
    layers: Vec<(LayerOutput, LayerReport, String)>,
    fingerprint: String,
    version: Option<String>,
}

/// A fingerprint of a host root filesystem from metadata (path, type, mode, size, mtime,
/// link target); a tarball is hashed whole.
fn rootfs_fingerprint(path: &Path) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    h.update(b"ep-imagebuild rootfs v1\n");
    let md = fs::metadata(path).map_err(io_err(path))?;
    if md.is_file() {
        let mut f = fs::File::open(path).map_err(io_err(path))?;
        io::copy(&mut f, &mut h).map_err(io_err(path))?;
        return Ok(hex::encode(h.finalize()));
    }
    let mut stack = vec![(path.to_path_buf(), String::new())];
    let mut items = Vec::new();
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
            let link = if md.file_type().is_symlink() {
                fs::read_link(&host)
                    .map_err(io_err(&host))?
                    .to_string_lossy()
                    .into_owned()
            } else {
                String::new()
            };
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            #[cfg(unix)]
            let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions());
            #[cfg(not(unix))]
            let mode = 0u32;
            items.push(format!("{rel}\0{mode:o}\0{}\0{mtime}\0{link}\n", md.len()));
            if md.is_dir() {
                stack.push((host, rel));
            }
        }
    }
    items.sort();
    for i in items {
        h.update(i.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

fn build_rootfs(
    path: &Path,
    cache: &LayerCache,
    opts: &LayerOptions,
    progress: &dyn Progress,
) -> Result<(LayerOutput, LayerReport), BuildError> {
    let name = "base-rootfs";
    let fingerprint = rootfs_fingerprint(path)?;
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

fn build_local(
    req: &BuildRequest,
    layout: &LayoutOptions,
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
            let built = build_rootfs(path, cache, &opts, progress)?;
            ready(&built.0);
            Some(built)
        }
        _ => None,
    };
    progress.message("planning layers");
    let pkg = DeploymentPackage::open(&req.package)?;
    let fingerprint = pkg.fingerprint()?;
    let version = pkg.version().map(str::to_string);
    let listings = ListingCache::new(cache_dir.join(LISTINGS_DIR));
    let mut sources = Sources::with_listing_cache(&pkg, listings);
    let mut plans = match req.service {
        Some(s) => layering::plan_service_in(&mut sources, s, layout)?,
        None => Vec::new(),
    };
    plans.extend(layering::plan_custom(&pkg, &req.custom_layers, layout)?);
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
        fingerprint,
        version,
    })
}

/// Builds the image `req` describes and writes it to its output. Several builds may run at
/// once in one process sharing `client` (connection pools, tokens, upload de-duplication).
pub async fn build(
    req: &BuildRequest,
    client: &RegistryClient,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let target = validate(req)?;
    let platforms = if req.platforms.is_empty() {
        vec![Platform::linux_amd64()]
    } else {
        req.platforms.clone()
    };

    // Open the package once up front (its central directory only) so that a bad package
    // fails before any registry traffic or cache write.
    blocking(|| DeploymentPackage::open(&req.package).map(drop))?;

    let resolved = match &req.base {
        Base::Registry(reference) => {
            progress.message(&format!("resolving base {reference}"));
            Some(base::resolve(client, reference, &platforms).await?)
        }
        _ => None,
    };

    fs::create_dir_all(&req.work_dir).map_err(io_err(&req.work_dir))?;
    let cache_dir = req
        .cache_dir
        .clone()
        .unwrap_or_else(|| req.work_dir.join("cache"));
    let cache = LayerCache::open(&cache_dir)?;
    let scratch = Scratch(req.work_dir.join(format!(
        "build-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )));
    fs::create_dir_all(&scratch.0).map_err(io_err(&scratch.0))?;

    let layout = LayoutOptions {
        compression: req.compression,
        source_date_epoch: req.source_date_epoch,
        ..req.layout.clone()
    };
    let mut early = match &target {
        Target::Push { repo, .. } => push::EarlyPush::new(client, repo),
        _ => None,
    };
    let mut ready = |layer: &LayerOutput| {
        if let Some(e) = early.as_mut() {
            e.start(layer);
        }
    };
    let local = blocking(|| {
        build_local(
            req, &layout, &cache, &cache_dir, &scratch.0, progress, &mut ready,
        )
    })?;

    // Images: one per platform, same layers of ours over that platform's base.
    let mut annotations = Annotations {
        version: local.version.clone(),
        ..Annotations::default()
    };
    annotations.custom.insert(
        SOURCE_FINGERPRINT_ANNOTATION.to_string(),
        local.fingerprint.clone(),
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
    Ok(report(
        &built,
        &local,
        resolved.as_ref(),
        summary,
        image_reference,
        tags,
    ))
}

fn write_layout(path: &Path, tags: &[String], built: &Built) -> Result<(), BuildError> {
    let tagged: Vec<(&str, &Built)> = tags.iter().map(|t| (t.as_str(), built)).collect();
    write_oci_layout(path, &tagged)?;
    Ok(())
}

fn report(
    built: &Built,
    local: &LocalLayers,
    resolved: Option<&base::ResolvedBase>,
    summary: push::PushSummary,
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
        package_fingerprint: local.fingerprint.clone(),
        package_version: local.version.clone(),
    }
}
