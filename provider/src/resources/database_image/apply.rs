//! Create and update of `ep_database_image`: when the data fingerprint
//! changed, populate (or reuse) the data directory and push it as one
//! layer on the base; otherwise only point the tags at the existing image.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ep_imagebuild::build::{self as builder, Base, BuildRequest, NoProgress, Output};
use ep_imagebuild::layering::{CustomLayer, CustomSource};

use super::inputs::{self, Resolved};
use super::model::DatabaseImageModel;
use super::populate;
use super::settings::Args;
use crate::framework::{Diagnostic, Diagnostics, Interrupted, Op, Planning};
use crate::resources::image::access::Target;
use crate::resources::image::apply::{create_ecr_repository, retag, target_for, WorkDir};
use crate::resources::image::args::BaseArg;
use crate::resources::image::request::cache_root;
use crate::resources::image::ImagePrivate;
use crate::resources::provider::ProviderData;

/// Annotation holding the data fingerprint.
pub const DATA_FINGERPRINT_ANNOTATION: &str = "com.elasticpath.database-image.data-fingerprint";
/// Annotation holding the server version that wrote the data.
pub const SERVER_VERSION_ANNOTATION: &str = "com.elasticpath.database-image.server-version";
/// Annotation holding the environment.
pub const ENVIRONMENT_ANNOTATION: &str = "com.elasticpath.database-image.environment";

/// The settings of a model whose every input is known (apply).
pub fn args_of(config: &DatabaseImageModel) -> Result<Args, Diagnostics> {
    Args::from_model(config).ok_or_else(|| {
        Diagnostic::error(
            "Configuration not known at apply",
            "Terraform passed a configuration with unknown values to apply.",
        )
        .into()
    })
}

/// Create (`prior` is `None`) or update.
pub async fn create_or_update(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    prior: Option<DatabaseImageModel>,
    config: DatabaseImageModel,
    planned: &DatabaseImageModel<Planning>,
) -> Result<DatabaseImageModel, Diagnostics> {
    let args = args_of(&config)?;
    let target = target_for(data, &args.repository).await?;
    if config.create_repository == Some(true) {
        create_ecr_repository(data, op, &target, false, false).await?;
    }
    let resolved = inputs::resolve(data, &args).await?;
    if let Some(Some(expected)) = planned.data_fingerprint.get() {
        if *expected != resolved.fingerprint {
            return Err(Diagnostic::error(
                "Database image inputs changed since the plan",
                "The deployment package, the server or the base changed between plan and apply; \
                 run `terraform plan` again.",
            )
            .into());
        }
    }
    let unchanged = prior.as_ref().filter(|p| {
        p.data_fingerprint.as_deref() == Some(resolved.fingerprint.as_str()) && p.digest.is_some()
    });
    let mut state = config;
    if let Some(prior) = unchanged {
        retag(
            &target,
            prior.digest.as_deref().unwrap_or_default(),
            &args.tags,
        )
        .await?;
        state.keep_outputs_of(prior);
        return Ok(state);
    }
    let data_dir = populate::data_directory(op, &args, &resolved.fingerprint).await?;
    build_and_push(op, &target, &args, &resolved, data_dir, state).await
}

/// The build request: the data directory as one layer on the pinned base.
fn request(
    target: &Target,
    args: &Args,
    resolved: &Resolved,
    data_dir: PathBuf,
    work: PathBuf,
) -> Result<BuildRequest, Diagnostics> {
    let output = Output::Push {
        repository: target.repo.to_string(),
        tags: args.tags.clone(),
    };
    let mut req = BuildRequest::new(PathBuf::from(&args.package), output, work);
    req.cache_dir = Some(cache_root().join("layers"));
    req.custom_layers = vec![CustomLayer {
        name: Some("database".into()),
        source: CustomSource::Host(data_dir),
        destination: args.data_directory.clone(),
        mode: None,
        uid: args.uid,
        gid: args.gid,
    }];
    req.base = match &resolved.pinned_base {
        BaseArg::Image(r) => Base::Registry(r.clone()),
        BaseArg::Dir(p) | BaseArg::Tar(p) => Base::LocalRootfs(PathBuf::from(p)),
        BaseArg::Scratch => {
            return Err(Diagnostic::error(
                "A database image needs a server",
                "`base` is `scratch`.",
            )
            .into())
        }
    };
    req.annotations = BTreeMap::from([
        (
            DATA_FINGERPRINT_ANNOTATION.to_owned(),
            resolved.fingerprint.clone(),
        ),
        (
            SERVER_VERSION_ANNOTATION.to_owned(),
            resolved.server_version.clone(),
        ),
        (ENVIRONMENT_ANNOTATION.to_owned(), args.environment.clone()),
    ]);
    Ok(req)
}

async fn build_and_push(
    op: &Op<ImagePrivate>,
    target: &Target,
    args: &Args,
    resolved: &Resolved,
    data_dir: PathBuf,
    mut state: DatabaseImageModel,
) -> Result<DatabaseImageModel, Diagnostics> {
    let fp = &resolved.fingerprint;
    let work = WorkDir(cache_root().join("work").join(format!(
        "db-{}-{}",
        std::process::id(),
        fp.get(..12).unwrap_or(fp)
    )));
    let req = request(target, args, resolved, data_dir, work.0.clone())?;
    let report = op
        .run(builder::build(&req, &target.client, &NoProgress))
        .await
        .map_err(|i: Interrupted| Diagnostics::from(i.to_diagnostic("the image was being pushed")))?
        .map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Database image build or push failed",
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
    state.data_fingerprint = Some(fp.clone());
    state.server_version = Some(resolved.server_version.clone());
    Ok(state)
}
