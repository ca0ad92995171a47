//! Refresh, delete and import of `ep_database_image`: what the registry says.

use serde_json::Value as Json;

use super::apply::{
    DATA_FINGERPRINT_ANNOTATION, ENVIRONMENT_ANNOTATION, SERVER_VERSION_ANNOTATION,
};
use super::model::DatabaseImageModel;
use crate::framework::{Diagnostic, Diagnostics, Op};
use crate::resources::image::access::registry_diag;
use crate::resources::image::apply::{ecr_client_for, target_for};
use crate::resources::image::delete::{delete_created_repository, remove_image};
use crate::resources::image::read::{fetch_for_import, tags_pointing_at};
use crate::resources::image::repository::EcrRepository;
use crate::resources::image::ImagePrivate;
use crate::resources::provider::ProviderData;

/// The manifest must still exist (else the image is gone); tags that moved
/// are dropped from state so the next plan puts them back.
pub async fn refresh(
    data: &ProviderData,
    mut state: DatabaseImageModel,
) -> Result<Option<DatabaseImageModel>, Diagnostics> {
    let Some(digest) = state.digest.clone() else {
        return Ok(Some(state));
    };
    let target = target_for(data, &state.repository).await?;
    match target.client.head_manifest(&target.repo, &digest).await {
        Ok(None) => return Ok(None),
        Ok(Some(_)) => {}
        Err(e) => return Err(registry_diag("Could not check the image", &e)),
    }
    if let Some(tags) = state.tags.take() {
        let mut kept = Vec::new();
        for t in tags {
            match target.client.head_manifest(&target.repo, &t).await {
                Ok(Some(h)) if h.digest.as_str() == digest => kept.push(t),
                Ok(_) => {}
                Err(e) => return Err(registry_diag("Could not check a tag", &e)),
            }
        }
        state.tags = Some(kept);
    }
    Ok(Some(state))
}

/// Removes the tags this resource pushed, and the manifest unless
/// `keep_on_destroy` or another tag still points at it.
pub async fn delete(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    state: DatabaseImageModel,
) -> Result<(), Diagnostics> {
    let target = target_for(data, &state.repository).await?;
    let ecr = ecr_client_for(data, &target).await?;
    let ecr_repo = ecr
        .as_ref()
        .zip(target.ecr_repository.as_deref())
        .map(|(c, n)| EcrRepository::new(c, n));
    if let Some(digest) = state.digest.as_deref() {
        let ours = state.tags.clone().unwrap_or_default();
        remove_image(
            &|s, d| op.warn(s, d),
            &target,
            ecr_repo.as_ref(),
            &ours,
            state.keep_on_destroy.unwrap_or(false),
            digest,
        )
        .await?;
    }
    match &ecr_repo {
        Some(r) if op.private().created_repository => delete_created_repository(op, r, false).await,
        _ => Ok(()),
    }
}

/// Import from `registry/repository@sha256:…`: the registry's view, with
/// the environment, fingerprint and server version the image records, and
/// every other input left null (the package, the password and the base are
/// not in the image).
pub async fn import(data: &ProviderData, id: &str) -> Result<DatabaseImageModel, Diagnostics> {
    let (repository, target, digest, fetched) = fetch_for_import(data, id).await?;
    let doc: Json = serde_json::from_slice(&fetched.bytes).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "The registry returned an invalid manifest",
            e.to_string(),
        ))
    })?;
    let annotation = |k: &str| doc["annotations"][k].as_str().map(str::to_owned);
    let (Some(fp), Some(environment)) = (
        annotation(DATA_FINGERPRINT_ANNOTATION),
        annotation(ENVIRONMENT_ANNOTATION),
    ) else {
        return Err(Diagnostic::error(
            "Cannot import",
            format!(
                "{}@{digest} was not made by ep_database_image (its manifest has no \
                 {DATA_FINGERPRINT_ANNOTATION} annotation).",
                target.repo
            ),
        )
        .into());
    };
    let tags = tags_pointing_at(&target.client, &target.repo, digest.as_str()).await?;
    let uri = format!(
        "{}/{}@{digest}",
        target.repo.registry, target.repo.repository
    );
    Ok(DatabaseImageModel {
        repository,
        tags: Some(tags),
        base: String::new(),
        keep_on_destroy: None,
        create_repository: None,
        deployment_package: String::new(),
        environment,
        schema_name: None,
        database_username: None,
        database_password: String::new(),
        extra_properties: None,
        data_directory: None,
        data_uid: None,
        data_gid: None,
        server_binary: None,
        install_db_binary: None,
        client_binary: None,
        id: Some(uri.clone()),
        digest: Some(digest.to_string()),
        image_uri: Some(uri),
        data_fingerprint: Some(fp),
        server_version: annotation(SERVER_VERSION_ANNOTATION),
    })
}
