//! Create and update of `ep_image`: build and push when the inputs
//! changed, otherwise only point the configured tags at the existing image.

use std::path::PathBuf;

use ep_imagebuild::build::{self as builder, Base, BuildRequest, NoProgress, Output};
use ep_imagebuild::image::{ConfigOverrides, ManifestFormat, Platform};
use ep_imagebuild::layer::{Compression, DEFAULT_ZSTD_LEVEL};
use ep_imagebuild::layering::{CustomLayer, CustomSource, Service};
use ep_imagebuild::registry::media_types;

use crate::framework::{AttrPath, Diagnostic, Diagnostics, Op, Planning};
use crate::resources::provider::ProviderData;

use super::access::{registry_diag, Target};
use super::args::{BaseArg, ImageArgs};
use super::fingerprint::{self, Resolved};
use super::model::{ImageModel, ImagePrivate};
use super::repository::EcrRepository;

/// Config label carrying the input fingerprint, so an imported image plans
/// clean against the configuration that built it.
pub const INPUT_FINGERPRINT_LABEL: &str = "com.elasticpath.image.input-fingerprint";

fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("EP_IMAGE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("terraform-provider-ep")
}

/// A build's scratch directory, removed however the build ends (an
/// interrupted build drops it too).
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.0.display(), error = %e, "could not remove the build directory");
            }
        }
    }
}

/// The target registry and repository for a repository argument.
pub async fn target_for(data: &ProviderData, repository: &str) -> Result<Target, Diagnostics> {
    data.registry()
        .target(repository, || data.aws())
        .await
        .map_err(|d| d.at_root("repository"))
}

fn build_request(
    args: &ImageArgs,
    target: &Target,
    work_dir: PathBuf,
    fingerprint: &str,
) -> Result<BuildRequest, Diagnostics> {
    let package = args
        .deployment_package
        .clone()
        .map(PathBuf::from)
        .ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::error(
                    "Missing deployment package",
                    "Building needs `deployment_package`.",
                )
                .at(AttrPath::root("deployment_package")),
            )
        })?;
    let output = Output::Push {
        repository: target.repo.to_string(),
        tags: args.tags.clone(),
    };
    let mut req = BuildRequest::new(package, output, work_dir);
    req.cache_dir = Some(cache_root().join("layers"));
    req.service = match &args.service {
        Some(s) => Some(s.parse::<Service>().map_err(|e| {
            Diagnostics::from(
                Diagnostic::error("Unknown service", e.to_string()).at(AttrPath::root("service")),
            )
        })?),
        None => None,
    };
    req.custom_layers = args
        .layers
        .iter()
        .map(|l| CustomLayer {
            name: None,
            source: match l.source.strip_prefix("host:") {
                Some(p) => CustomSource::Host(PathBuf::from(p)),
                None => CustomSource::Package(l.source.clone()),
            },
            destination: l.destination.clone(),
            mode: l.mode,
            uid: l.uid,
            gid: l.gid,
        })
        .collect();
    req.base = match &args.base {
        BaseArg::Scratch => Base::Scratch,
        BaseArg::Dir(p) | BaseArg::Tar(p) => Base::LocalRootfs(PathBuf::from(p)),
        BaseArg::Image(r) => Base::Registry(r.clone()),
    };
    let mut labels = args.labels.clone();
    labels.insert(INPUT_FINGERPRINT_LABEL.to_owned(), fingerprint.to_owned());
    req.config = ConfigOverrides {
        env: args
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        entrypoint: args.entrypoint.clone(),
        cmd: args.cmd.clone(),
        working_dir: args.working_dir.clone(),
        user: args.user.clone(),
        labels,
        exposed_ports: args.exposed_ports.clone(),
        volumes: Vec::new(),
        stop_signal: args.stop_signal.clone(),
    };
    req.platforms = args
        .platforms
        .iter()
        .filter_map(|p| Platform::parse(p))
        .collect();
    req.annotations = args.annotations.clone();
    req.source_date_epoch = args.source_date_epoch;
    req.compression = if args.compression == "zstd" {
        Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    } else {
        Compression::default()
    };
    req.format = if args.format == "docker" {
        ManifestFormat::Docker
    } else {
        ManifestFormat::Oci
    };
    Ok(req)
}

/// Creates the ECR repository when asked to, remembering in private data
/// that this resource created it.
async fn ensure_repository(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    target: &Target,
    config: &ImageModel,
) -> Result<(), Diagnostics> {
    let (Some(name), Some(true)) = (target.ecr_repository.as_deref(), config.create_repository)
    else {
        return Ok(());
    };
    let settings = config.repository_settings.as_ref();
    let immutable = settings.and_then(|s| s.image_tag_mutability.as_deref()) == Some("IMMUTABLE");
    let scan = settings.and_then(|s| s.scan_on_push).unwrap_or(false);
    let ecr =
        data.aws()?.ecr().await.map_err(|e| {
            Diagnostics::from(Diagnostic::error("Could not set up ECR", e.to_string()))
        })?;
    let created = EcrRepository::new(&ecr, name)
        .create(immutable, scan)
        .await
        .map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Could not create the ECR repository",
                e.to_string(),
            ))
        })?;
    if created {
        op.update_private(|p| p.created_repository = true);
    }
    Ok(())
}

/// Create (`prior` is `None`) or update.
pub async fn create_or_update(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    prior: Option<ImageModel>,
    config: ImageModel,
    planned: &ImageModel<Planning>,
) -> Result<ImageModel, Diagnostics> {
    let target = target_for(data, &config.repository).await?;
    ensure_repository(data, op, &target, &config).await?;
    let args = ImageArgs::from_model(&config).ok_or_else(|| {
        Diagnostics::from(Diagnostic::error(
            "Configuration not known at apply",
            "Terraform passed a configuration with unknown values to apply.",
        ))
    })?;
    let resolved = super::inputs::resolve(data, &args).await?;
    let fp = fingerprint::source_fingerprint(&args, &resolved);
    if let Some(Some(expected)) = planned.source_fingerprint.get() {
        if *expected != fp {
            return Err(Diagnostic::error(
                "Image inputs changed since the plan",
                "The deployment package or base changed between plan and apply; run \
                 `terraform plan` again.",
            )
            .into());
        }
    }
    let unchanged = prior
        .as_ref()
        .filter(|p| p.source_fingerprint.as_deref() == Some(fp.as_str()) && p.digest.is_some());
    let mut state = config;
    match unchanged {
        Some(prior) => {
            retag(
                &target,
                prior.digest.as_deref().unwrap_or_default(),
                &args.tags,
            )
            .await?;
            state.keep_outputs_of(prior);
            Ok(state)
        }
        None => build_and_push(op, &target, &args, &resolved, fp, state).await,
    }
}

async fn build_and_push(
    op: &Op<ImagePrivate>,
    target: &Target,
    args: &ImageArgs,
    resolved: &Resolved,
    fp: String,
    mut state: ImageModel,
) -> Result<ImageModel, Diagnostics> {
    let work = WorkDir(cache_root().join("work").join(format!(
        "{}-{}",
        std::process::id(),
        &fp[..12]
    )));
    let breq = build_request(args, target, work.0.clone(), &fp)?;
    let report = builder::build(&breq, &target.client, &NoProgress)
        .await
        .map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Image build or push failed",
                e.to_string(),
            ))
        })?;
    drop(work);
    let uri = format!(
        "{}/{}@{}",
        target.repo.registry, target.repo.repository, report.manifest_digest
    );
    state.id = Some(uri.clone());
    state.image_uri = Some(uri);
    state.digest = Some(report.manifest_digest.to_string());
    state.registry = Some(target.repo.registry.clone());
    state.source_fingerprint = Some(fp);
    state.package_fingerprint = resolved.package_fingerprint.clone();
    state.base_digest = match &args.base {
        BaseArg::Image(_) => resolved.base_identity.clone(),
        _ => None,
    };
    // The image exists from here on: a failure below must not forget it.
    op.checkpoint(&state)?;
    let pushed = target
        .client
        .get_manifest(
            &target.repo,
            report.manifest_digest.as_str(),
            &media_types::ALL_MANIFESTS,
        )
        .await
        .map_err(|e| registry_diag("Could not read back the pushed image", &e))?
        .ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Pushed image not found",
                format!(
                    "{}@{} is missing right after the push.",
                    target.repo, report.manifest_digest
                ),
            ))
        })?;
    state.layers = Some(super::manifest::describe(target, &pushed).await?.layers);
    Ok(state)
}

/// Points the tags at the existing manifest.
async fn retag(target: &Target, digest: &str, tags: &[String]) -> Result<(), Diagnostics> {
    let manifest = target
        .client
        .get_manifest(&target.repo, digest, &media_types::ALL_MANIFESTS)
        .await
        .map_err(|e| registry_diag("Could not read the image's manifest", &e))?
        .ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Image disappeared",
                format!(
                    "{}@{digest} no longer exists; run plan again to rebuild it.",
                    target.repo
                ),
            ))
        })?;
    for t in tags {
        target
            .client
            .push_manifest(&target.repo, t, &manifest.media_type, &manifest.bytes)
            .await
            .map_err(|e| registry_diag("Could not tag the image", &e))?;
    }
    Ok(())
}
