//! Create and update of `ep_image`: build and push when the inputs
//! changed, otherwise only point the configured tags at the existing image.

use std::path::PathBuf;

use ep_imagebuild::build::{self as builder, InputsReport, NoProgress, Output};
use ep_imagebuild::registry::media_types;

use crate::framework::{Diagnostic, Diagnostics, Op, Planning};
use crate::resources::provider::ProviderData;

use super::access::{registry_diag, Target};
use super::args::{BaseArg, ImageArgs};
use super::model::{ImageModel, ImagePrivate};
use super::repository::EcrRepository;
use super::request::{build_request, cache_root};

/// A build's scratch directory, removed however the build ends (an
/// interrupted build drops it too).
pub(crate) struct WorkDir(pub(crate) PathBuf);

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

/// The provider's ECR client, its set-up failure as a diagnostic.
pub(crate) async fn ecr_client(data: &ProviderData) -> Result<aws_sdk_ecr::Client, Diagnostics> {
    data.aws()?
        .ecr()
        .await
        .map_err(|e| Diagnostic::error("Could not set up ECR", e.to_string()).into())
}

/// An ECR client when `target` is an ECR repository (its tags and the
/// repository itself are managed through ECR's API), else `None`.
pub(crate) async fn ecr_client_for(
    data: &ProviderData,
    target: &Target,
) -> Result<Option<aws_sdk_ecr::Client>, Diagnostics> {
    match target.ecr_repository {
        Some(_) => Ok(Some(ecr_client(data).await?)),
        None => Ok(None),
    }
}

/// Creates the ECR repository when asked to, remembering in private data
/// that this resource created it.
async fn ensure_repository(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    target: &Target,
    config: &ImageModel,
) -> Result<(), Diagnostics> {
    if config.create_repository != Some(true) {
        return Ok(());
    }
    let settings = config.repository_settings.as_ref();
    let immutable = settings.and_then(|s| s.image_tag_mutability.as_deref()) == Some("IMMUTABLE");
    let scan = settings.and_then(|s| s.scan_on_push).unwrap_or(false);
    create_ecr_repository(data, op, target, immutable, scan).await
}

/// Creates the target's ECR repository if it does not exist (nothing for
/// another registry), and records in private data when this call made it,
/// so that delete may remove it.
pub(crate) async fn create_ecr_repository(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    target: &Target,
    immutable: bool,
    scan_on_push: bool,
) -> Result<(), Diagnostics> {
    let Some(name) = target.ecr_repository.as_deref() else {
        return Ok(());
    };
    let ecr = ecr_client(data).await?;
    let created = EcrRepository::new(&ecr, name)
        .create(immutable, scan_on_push)
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
    let inputs = super::inputs::resolve(data, &args).await?;
    let fp = inputs.inputs_fingerprint.clone();
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
        None => build_and_push(op, &target, &args, &inputs, state).await,
    }
}

async fn build_and_push(
    op: &Op<ImagePrivate>,
    target: &Target,
    args: &ImageArgs,
    inputs: &InputsReport,
    mut state: ImageModel,
) -> Result<ImageModel, Diagnostics> {
    let fp = inputs.inputs_fingerprint.clone();
    let work = WorkDir(cache_root().join("work").join(format!(
        "{}-{}",
        std::process::id(),
        fp.get(..12).unwrap_or(&fp)
    )));
    let output = Output::Push {
        repository: target.repo.to_string(),
        tags: args.tags.clone(),
    };
    let breq = build_request(args, output, work.0.clone())?;
    // Ctrl-C or the timeout drops the build where it stands; the upload
    // sessions it leaves open are the registry's to expire.
    let report = op
        .run(builder::build(&breq, &target.client, &NoProgress))
        .await
        .map_err(|why| Diagnostics::from(why.to_diagnostic("building and pushing the image")))?
        .map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Image build or push failed",
                e.to_string(),
            ))
        })?;
    drop(work);
    for w in &report.warnings {
        op.warn("Image built without part of the service", format!("{w}."));
    }
    if report.inputs_fingerprint != fp {
        // The base tag moved between the inspection and the build: the image
        // is what the build says, and the next plan rebuilds it.
        op.warn(
            "Image inputs changed during the build",
            "The base image changed while the image was built; run `terraform plan` again.",
        );
    }
    let uri = format!(
        "{}/{}@{}",
        target.repo.registry, target.repo.repository, report.manifest_digest
    );
    state.id = Some(uri.clone());
    state.image_uri = Some(uri);
    state.digest = Some(report.manifest_digest.to_string());
    state.registry = Some(target.repo.registry.clone());
    state.source_fingerprint = Some(fp);
    state.package_fingerprint = Some(inputs.package_fingerprint.clone());
    state.base_digest = match &args.base {
        BaseArg::Image(_) => inputs.base_identity.clone(),
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
pub async fn retag(target: &Target, digest: &str, tags: &[String]) -> Result<(), Diagnostics> {
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
