//! Image config, manifest and index, and OCI image layout output.
//!
//! Manifests, descriptors and indexes use `oci_client::manifest` types: they
//! keep annotations in `BTreeMap`s and serialise fields in a fixed order, so
//! the JSON is deterministic. The image config uses our own types
//! ([`ImageConfig`]), see [`config`] for why.
//!
//! The builder never downloads anything: a base image arrives as a
//! [`BaseImage`] (its config and layer descriptors, fetched by the registry
//! module) and its layers are referenced by descriptor only. Writing an OCI
//! layout ([`write_oci_layout`]) therefore needs the base's blobs on disk
//! ([`BaseImage::blob_dir`]) — or no base at all (`scratch`, or a base made
//! locally from a root filesystem with [`crate::layer::layer_from_dir`]).

pub mod config;
mod layout;

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_client::manifest::{
    ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest, Platform as OciPlatform,
};

use crate::digest::Digest;
use crate::layer::{LayerOutput, MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD};

pub use config::{rfc3339, ContainerConfig, Empty, History, ImageConfig, Platform, RootFs};
pub use layout::{read_oci_layout_image, write_layout_tar, write_oci_layout};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer media type.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Annotation keys used on manifests.
pub mod annotation {
    /// Creation time (the source date epoch).
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// Version of the packaged software.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// Source revision.
    pub const REVISION: &str = "org.opencontainers.image.revision";
    /// Source URL.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// Base image reference.
    pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
    /// Base image manifest digest.
    pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
    /// Tag of a manifest in an OCI layout's `index.json`.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
}

/// Manifest flavour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ManifestFormat {
    /// OCI image manifest / index (the default).
    #[default]
    Oci,
    /// Docker schema 2 manifest / manifest list. No annotations (the schema
    /// has none) and no zstd layers.
    Docker,
}

impl ManifestFormat {
    /// Media type of a manifest in this format.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }

    /// Media type of an index in this format.
    pub fn index_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_INDEX,
            ManifestFormat::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    /// Media type of the image config in this format.
    pub fn config_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::Docker => DOCKER_CONFIG,
        }
    }

    /// The equivalent layer media type in this format (same bytes).
    pub fn layer_media_type(self, media_type: &str) -> Result<String, ImageError> {
        let mapped = match (self, media_type) {
            (ManifestFormat::Docker, MEDIA_TYPE_TAR_GZIP) => DOCKER_LAYER_GZIP,
            (ManifestFormat::Docker, MEDIA_TYPE_TAR) => DOCKER_LAYER_TAR,
            (ManifestFormat::Docker, MEDIA_TYPE_TAR_ZSTD) => {
                return Err(ImageError::ZstdInDocker);
            }
            (ManifestFormat::Oci, DOCKER_LAYER_GZIP) => MEDIA_TYPE_TAR_GZIP,
            (ManifestFormat::Oci, DOCKER_LAYER_TAR) => MEDIA_TYPE_TAR,
            (_, other) => other,
        };
        Ok(mapped.to_owned())
    }
}

/// Errors building images or layouts.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file system failure.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A base image config that cannot be parsed.
    #[error("base image config: {0}")]
    BadConfig(#[source] serde_json::Error),
    /// JSON that could not be produced or read.
    #[error("{what}: {source}")]
    Json {
        /// What was being (de)serialised.
        what: String,
        /// The failure.
        #[source]
        source: serde_json::Error,
    },
    /// The base's layer count and diff_id count differ.
    #[error("base image {reference}: {layers} layers but {diff_ids} diff_ids")]
    BaseLayerCount {
        /// Base reference.
        reference: String,
        /// Layers in its manifest.
        layers: usize,
        /// diff_ids in its config.
        diff_ids: usize,
    },
    /// The base image is for another platform.
    #[error("base image {reference} is {found}, building {wanted}")]
    PlatformMismatch {
        /// Base reference.
        reference: String,
        /// The base's platform.
        found: String,
        /// The requested platform.
        wanted: String,
    },
    /// Docker schema 2 has no zstd layer type.
    #[error("zstd layers need an OCI manifest; Docker schema 2 has no zstd media type")]
    ZstdInDocker,
    /// A layer blob needed for layout output is not available locally.
    #[error("blob {digest} is not available locally (base layers need BaseImage::blob_dir)")]
    MissingBlob {
        /// The blob.
        digest: String,
    },
    /// A local blob whose size differs from its descriptor.
    #[error("blob {path} is {actual} bytes, descriptor says {expected}")]
    BlobSize {
        /// The file.
        path: PathBuf,
        /// Size in the descriptor.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// An index needs at least one image, all in one format, with distinct
    /// platforms.
    #[error("image index: {0}")]
    BadIndex(String),
    /// A layout that lacks what was asked for.
    #[error("OCI layout {path}: {reason}")]
    BadLayout {
        /// The layout directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Tar writing of a layout failed.
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A base image, as fetched by the registry module or read from a layout.
#[derive(Clone, Debug)]
pub struct BaseImage {
    /// Its reference, e.g. `123.dkr.ecr…/ep/tomcat:9` (the
    /// `base.name` annotation).
    pub reference: String,
    /// Its manifest digest (the `base.digest` annotation).
    pub digest: Option<Digest>,
    /// Its config: env, entrypoint, … are inherited; diff_ids and history
    /// come first in ours.
    pub config: ImageConfig,
    /// Its manifest's layer descriptors, referenced as they are.
    pub layers: Vec<OciDescriptor>,
    /// A directory holding its layer blobs named by hex digest (e.g. an OCI
    /// layout's `blobs/sha256`); only needed for layout output.
    pub blob_dir: Option<PathBuf>,
}

impl BaseImage {
    /// A base from its config blob and manifest layers.
    pub fn new(
        reference: impl Into<String>,
        digest: Option<Digest>,
        config_json: &[u8],
        layers: Vec<OciDescriptor>,
    ) -> Result<BaseImage, ImageError> {
        Ok(BaseImage {
            reference: reference.into(),
            digest,
            config: ImageConfig::from_json(config_json).map_err(ImageError::BadConfig)?,
            layers,
            blob_dir: None,
        })
    }
}

/// One of our layers in an image.
#[derive(Clone, Debug)]
pub struct ImageLayer {
    /// The built layer.
    pub layer: LayerOutput,
    /// History `created_by`, e.g. `ep-imagebuild: webapp cortex (jars)`.
    pub created_by: String,
    /// History comment.
    pub comment: Option<String>,
}

/// Changes to the inherited container config. Unset fields keep the base's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// Variables to set: replace the base's value in place, else append.
    pub env: Vec<(String, String)>,
    /// Entrypoint; setting it drops the base's Cmd unless `cmd` is set too
    /// (Docker's rule).
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Labels, merged over the base's.
    pub labels: BTreeMap<String, String>,
    /// Ports to add (`8080` means `8080/tcp`).
    pub exposed_ports: Vec<String>,
    /// Volumes to add.
    pub volumes: Vec<String>,
    /// Stop signal.
    pub stop_signal: Option<String>,
}

/// Manifest annotations beyond `created` and the base's name and digest,
/// which are always set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `org.opencontainers.image.version`.
    pub version: Option<String>,
    /// `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// `org.opencontainers.image.source`.
    pub source: Option<String>,
    /// Anything else; overrides the standard keys.
    pub custom: BTreeMap<String, String>,
}

/// Everything that defines one single-platform image.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Target platform.
    pub platform: Platform,
    /// Manifest flavour.
    pub format: ManifestFormat,
    /// Base image, `None` for scratch.
    pub base: Option<BaseImage>,
    /// Our layers, bottom first.
    pub layers: Vec<ImageLayer>,
    /// Config changes.
    pub config: ConfigOverrides,
    /// Manifest annotations.
    pub annotations: Annotations,
    /// Creation time of everything (seconds since the epoch).
    pub source_date_epoch: u64,
    /// Config `author`.
    pub author: Option<String>,
}

/// A layer of a built image: its descriptor and, for our layers, the file.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// As written in the manifest.
    pub descriptor: OciDescriptor,
    /// Where the blob is on disk, when it is.
    pub path: Option<PathBuf>,
}

/// A single-platform image, ready to write or push.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// Its platform.
    pub platform: Platform,
    /// Its manifest flavour.
    pub format: ManifestFormat,
    /// The config.
    pub config: ImageConfig,
    /// The config blob.
    pub config_json: Vec<u8>,
    /// Descriptor of the config blob.
    pub config_descriptor: OciDescriptor,
    /// The manifest.
    pub manifest: OciImageManifest,
    /// The manifest bytes (what is pushed and digested).
    pub manifest_json: Vec<u8>,
    /// Digest of `manifest_json`.
    pub manifest_digest: Digest,
    /// Layers in manifest order.
    pub layers: Vec<LayerBlob>,
}

impl BuiltImage {
    /// Descriptor of the manifest (no platform).
    pub fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.format.manifest_media_type().to_owned(),
            digest: self.manifest_digest.to_string(),
            size: self.manifest_json.len() as i64,
            ..OciDescriptor::default()
        }
    }

    pub(crate) fn index_entry(&self) -> ImageIndexEntry {
        ImageIndexEntry {
            media_type: self.format.manifest_media_type().to_owned(),
            digest: self.manifest_digest.to_string(),
            size: self.manifest_json.len() as i64,
            platform: Some(OciPlatform {
                architecture: self.platform.architecture.as_str().into(),
                os: self.platform.os.as_str().into(),
                os_version: None,
                os_features: None,
                variant: self.platform.variant.clone(),
                features: None,
            }),
            annotations: None,
            artifact_type: None,
        }
    }
}

/// A multi-platform image.
#[derive(Clone, Debug)]
pub struct BuiltIndex {
    /// Manifest flavour.
    pub format: ManifestFormat,
    /// The index.
    pub index: OciImageIndex,
    /// The index bytes.
    pub index_json: Vec<u8>,
    /// Digest of `index_json`.
    pub digest: Digest,
    /// The images it lists.
    pub images: Vec<BuiltImage>,
}

impl BuiltIndex {
    /// Descriptor of the index.
    pub fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.format.index_media_type().to_owned(),
            digest: self.digest.to_string(),
            size: self.index_json.len() as i64,
            ..OciDescriptor::default()
        }
    }
}

/// A built image or index: what a tag points at.
#[derive(Clone, Debug)]
// Few of these exist at a time; boxing would only complicate matching.
#[allow(clippy::large_enum_variant)]
pub enum Built {
    /// One platform.
    Image(BuiltImage),
    /// Several platforms.
    Index(BuiltIndex),
}

impl Built {
    /// Builds one image, or an index over several (platforms must differ).
    pub fn from_specs(specs: Vec<ImageSpec>) -> Result<Built, ImageError> {
        let mut images = specs
            .into_iter()
            .map(build_image)
            .collect::<Result<Vec<_>, _>>()?;
        if images.len() == 1 {
            if let Some(img) = images.pop() {
                return Ok(Built::Image(img));
            }
        }
        Ok(Built::Index(build_index(images, BTreeMap::new())?))
    }

    /// Descriptor of the manifest or index.
    pub fn descriptor(&self) -> OciDescriptor {
        match self {
            Built::Image(i) => i.descriptor(),
            Built::Index(i) => i.descriptor(),
        }
    }

    /// Its digest.
    pub fn digest(&self) -> &Digest {
        match self {
            Built::Image(i) => &i.manifest_digest,
            Built::Index(i) => &i.digest,
        }
    }

    /// The images (one, or the index's).
    pub fn images(&self) -> &[BuiltImage] {
        match self {
            Built::Image(i) => std::slice::from_ref(i),
            Built::Index(i) => &i.images,
        }
    }
}

fn merge_config(base: &ContainerConfig, o: &ConfigOverrides) -> ContainerConfig {
    let mut c = base.clone();
    for (k, v) in &o.env {
        let entry = format!("{k}={v}");
        let prefix = format!("{k}=");
        match c.env.iter_mut().find(|e| e.starts_with(&prefix) || *e == k) {
            Some(e) => *e = entry,
            None => c.env.push(entry),
        }
    }
    if let Some(ep) = &o.entrypoint {
        c.entrypoint = Some(ep.clone());
        c.cmd = None;
    }
    if let Some(cmd) = &o.cmd {
        c.cmd = Some(cmd.clone());
    }
    if o.working_dir.is_some() {
        c.working_dir.clone_from(&o.working_dir);
    }
    if o.user.is_some() {
        c.user.clone_from(&o.user);
    }
    for (k, v) in &o.labels {
        c.labels.insert(k.clone(), v.clone());
    }
    for p in &o.exposed_ports {
        let p = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        c.exposed_ports.insert(p, Empty);
    }
    for v in &o.volumes {
        c.volumes.insert(v.clone(), Empty);
    }
    if o.stop_signal.is_some() {
        c.stop_signal.clone_from(&o.stop_signal);
    }
    c
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(v).map_err(|source| ImageError::Json {
        what: what.to_owned(),
        source,
    })
}

/// Builds the config and manifest of one image. Deterministic: the same
/// spec gives the same bytes.
pub fn build_image(spec: ImageSpec) -> Result<BuiltImage, ImageError> {
    let created = rfc3339(spec.source_date_epoch);
    let mut layers = Vec::new();
    let (mut diff_ids, mut history, container) = match &spec.base {
        Some(base) => {
            let bc = &base.config;
            if base.layers.len() != bc.rootfs.diff_ids.len() {
                return Err(ImageError::BaseLayerCount {
                    reference: base.reference.clone(),
                    layers: base.layers.len(),
                    diff_ids: bc.rootfs.diff_ids.len(),
                });
            }
            if !spec
                .platform
                .matches(&bc.os, &bc.architecture, bc.variant.as_deref())
            {
                let found = Platform {
                    os: bc.os.clone(),
                    architecture: bc.architecture.clone(),
                    variant: bc.variant.clone(),
                };
                return Err(ImageError::PlatformMismatch {
                    reference: base.reference.clone(),
                    found: found.to_string(),
                    wanted: spec.platform.to_string(),
                });
            }
            for d in &base.layers {
                let path = base.blob_dir.as_ref().and_then(|dir| {
                    let hex = d.digest.strip_prefix("sha256:")?;
                    Some(dir.join(hex))
                });
                layers.push(LayerBlob {
                    descriptor: OciDescriptor {
                        media_type: spec.format.layer_media_type(&d.media_type)?,
                        ..d.clone()
                    },
                    path,
                });
            }
            (
                bc.rootfs.diff_ids.clone(),
                bc.history.clone(),
                merge_config(&bc.config, &spec.config),
            )
        }
        None => (
            Vec::new(),
            Vec::new(),
            merge_config(&ContainerConfig::default(), &spec.config),
        ),
    };
    for l in &spec.layers {
        diff_ids.push(l.layer.diff_id.clone());
        history.push(History {
            created: Some(created.clone()),
            author: spec.author.clone(),
            created_by: Some(l.created_by.clone()),
            comment: l.comment.clone(),
            empty_layer: false,
        });
        layers.push(LayerBlob {
            descriptor: OciDescriptor {
                media_type: spec.format.layer_media_type(&l.layer.media_type)?,
                digest: l.layer.digest.to_string(),
                size: l.layer.size as i64,
                ..OciDescriptor::default()
            },
            path: Some(l.layer.path.clone()),
        });
    }
    let config = ImageConfig {
        created: Some(created.clone()),
        author: spec.author.clone(),
        architecture: spec.platform.architecture.clone(),
        os: spec.platform.os.clone(),
        variant: spec.platform.variant.clone(),
        config: container,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history,
    };
    let config_json = config.to_json().map_err(|source| ImageError::Json {
        what: "image config".into(),
        source,
    })?;
    let config_descriptor = OciDescriptor {
        media_type: spec.format.config_media_type().to_owned(),
        digest: Digest::of(&config_json).to_string(),
        size: config_json.len() as i64,
        ..OciDescriptor::default()
    };
    let annotations = match spec.format {
        ManifestFormat::Docker => None,
        ManifestFormat::Oci => {
            let mut a = BTreeMap::new();
            a.insert(annotation::CREATED.to_owned(), created);
            let std = [
                (annotation::VERSION, &spec.annotations.version),
                (annotation::REVISION, &spec.annotations.revision),
                (annotation::SOURCE, &spec.annotations.source),
            ];
            for (k, v) in std {
                if let Some(v) = v {
                    a.insert(k.to_owned(), v.clone());
                }
            }
            if let Some(base) = &spec.base {
                a.insert(annotation::BASE_NAME.to_owned(), base.reference.clone());
                if let Some(d) = &base.digest {
                    a.insert(annotation::BASE_DIGEST.to_owned(), d.to_string());
                }
            }
            a.extend(spec.annotations.custom.clone());
            Some(a)
        }
    };
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(spec.format.manifest_media_type().to_owned()),
        config: config_descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        subject: None,
        artifact_type: None,
        annotations,
    };
    let manifest_json = to_json("image manifest", &manifest)?;
    Ok(BuiltImage {
        platform: spec.platform,
        format: spec.format,
        config,
        config_json,
        config_descriptor,
        manifest_digest: Digest::of(&manifest_json),
        manifest,
        manifest_json,
        layers,
    })
}

/// Builds an index over images of distinct platforms, in the given order.
/// `annotations` are ignored in Docker format.
pub fn build_index(
    images: Vec<BuiltImage>,
    annotations: BTreeMap<String, String>,
) -> Result<BuiltIndex, ImageError> {
    let Some(first) = images.first() else {
        return Err(ImageError::BadIndex("no images".into()));
    };
    let format = first.format;
    for (i, img) in images.iter().enumerate() {
        if img.format != format {
            return Err(ImageError::BadIndex("mixed manifest formats".into()));
        }
        if images[..i].iter().any(|o| o.platform == img.platform) {
            return Err(ImageError::BadIndex(format!(
                "platform {} twice",
                img.platform
            )));
        }
    }
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some(format.index_media_type().to_owned()),
        manifests: images.iter().map(BuiltImage::index_entry).collect(),
        artifact_type: None,
        annotations: match format {
            ManifestFormat::Oci if !annotations.is_empty() => Some(annotations),
            _ => None,
        },
    };
    let index_json = to_json("image index", &index)?;
    Ok(BuiltIndex {
        format,
        digest: Digest::of(&index_json),
        index,
        index_json,
        images,
    })
}
