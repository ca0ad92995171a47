//! What a build is asked to do: the request, its base and output, and its validation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::BuildError;
use crate::image::{ConfigOverrides, ImageError, ManifestFormat, Platform};
use crate::layer::Compression;
use crate::layering::{CustomLayer, LayoutOptions, Service};
use crate::registry::{valid_tag, RepoRef};

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
    /// The deployment package (zip or directory), or with [`BuildRequest::context_only`] any
    /// directory or zip whose files the custom layers take.
    pub package: PathBuf,
    /// `package` is a plain build context, not a deployment package: no service, custom
    /// layers only (an image of tools, such as the provider's own).
    pub context_only: bool,
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
            context_only: false,
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

    /// Opens what the layers come from: the deployment package, or the plain context.
    pub(crate) fn open_package(
        &self,
    ) -> Result<crate::package::DeploymentPackage, crate::package::PackageError> {
        if self.context_only {
            crate::package::DeploymentPackage::open_context(&self.package)
        } else {
            crate::package::DeploymentPackage::open(&self.package)
        }
    }

    /// The layer cache directory: [`BuildRequest::cache_dir`], else `<work_dir>/cache`.
    pub fn layer_cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.work_dir.join("cache"))
    }
}

/// The validated output: where, and under which tags.
pub(crate) enum Target {
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

/// Checks what defines the image (not where it goes): something to build, a compression the
/// format allows, distinct platforms, a base reference that parses.
pub(crate) fn validate_inputs(req: &BuildRequest) -> Result<(), BuildError> {
    if req.service.is_none() && req.custom_layers.is_empty() {
        return Err(BuildError::InvalidRequest(
            "nothing to build: give a service or at least one custom layer".into(),
        ));
    }
    if req.context_only && req.service.is_some() {
        return Err(BuildError::InvalidRequest(
            "a service image needs a deployment package, not a plain build context".into(),
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
    Ok(())
}

/// Checks the whole request and returns where the image goes.
pub(crate) fn validate(req: &BuildRequest) -> Result<Target, BuildError> {
    validate_inputs(req)?;
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
