//! Refresh and import of `ep_image`: what the registry says exists.

use ep_imagebuild::digest::Digest;
use ep_imagebuild::registry::{media_types, FetchedManifest, RegistryClient, RepoRef};

use crate::framework::{Diagnostic, Diagnostics};
use crate::resources::provider::ProviderData;

use super::access::{registry_diag, Target};
use super::apply::target_for;
use super::model::ImageModel;

/// Tags in the repository that point at `digest` (bounded: a repository
/// with thousands of tags is not walked entirely).
pub async fn tags_pointing_at(
    client: &RegistryClient,
    repo: &RepoRef,
    digest: &str,
) -> Result<Vec<String>, Diagnostics> {
    let all = client
        .list_tags(repo)
        .await
        .map_err(|e| registry_diag("Could not list tags", &e))?;
    let mut out = Vec::new();
    for t in all.into_iter().take(1000) {
        if let Ok(Some(h)) = client.head_manifest(repo, &t).await {
            if h.digest.as_str() == digest {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The manifest must still exist (else the image is gone); tags that moved
/// are dropped from state so the next plan puts them back.
///
/// A refresh of every image sits on every plan's critical path, so it costs
/// one round of requests: all tags at once, and the manifest by digest only
/// when no tag vouches for it (a tag resolving to the digest proves the
/// manifest is there).
pub async fn refresh(
    data: &ProviderData,
    mut state: ImageModel,
) -> Result<Option<ImageModel>, Diagnostics> {
    let Some(digest) = state.digest.clone() else {
        return Ok(Some(state));
    };
    let target = target_for(data, &state.repository).await?;
    let tags = state.tags.take();
    let heads = futures::future::join_all(
        tags.iter()
            .flatten()
            .map(|t| target.client.head_manifest(&target.repo, t)),
    )
    .await;
    let mut kept = Vec::new();
    for (t, head) in tags.iter().flatten().zip(heads) {
        match head {
            Ok(Some(h)) if h.digest.as_str() == digest => kept.push(t.clone()),
            Ok(_) => {}
            Err(e) => return Err(registry_diag("Could not check a tag", &e)),
        }
    }
    if kept.is_empty() {
        match target.client.head_manifest(&target.repo, &digest).await {
            Ok(None) => return Ok(None),
            Ok(Some(_)) => {}
            Err(e) => return Err(registry_diag("Could not check the image", &e)),
        }
    }
    state.tags = tags.map(|_| kept);
    Ok(Some(state))
}

/// Import from `registry/repository@sha256:…`: the registry's view, with
/// every input it cannot tell left null.
pub async fn import(data: &ProviderData, id: &str) -> Result<ImageModel, Diagnostics> {
    let (repository, target, digest, fetched) = fetch_for_import(data, id).await?;
    let details = super::manifest::describe(&target, &fetched).await?;
    let tags = tags_pointing_at(&target.client, &target.repo, digest.as_str()).await?;
    let uri = format!(
        "{}/{}@{digest}",
        target.repo.registry, target.repo.repository
    );
    Ok(ImageModel {
        repository,
        tags: Some(tags),
        create_repository: None,
        deployment_package: None,
        service: None,
        base: None,
        env: None,
        entrypoint: None,
        cmd: None,
        working_dir: None,
        user: None,
        labels: None,
        exposed_ports: None,
        stop_signal: None,
        annotations: None,
        platforms: None,
        source_date_epoch: None,
        compression: None,
        format: None,
        keep_on_destroy: None,
        repository_settings: None,
        layer: Vec::new(),
        id: Some(uri.clone()),
        digest: Some(digest.to_string()),
        image_uri: Some(uri),
        registry: Some(target.repo.registry.clone()),
        base_digest: details.base_digest,
        // Not recorded in the image (it would tie every image's digest to
        // the whole package): known again after the next build.
        package_fingerprint: None,
        source_fingerprint: details.input_fingerprint,
        layers: Some(details.layers),
    })
}

/// Parses an import ID `registry/repository@sha256:…` and fetches that
/// manifest: what every image resource's import starts from. Returns the
/// repository as the configuration names it.
pub(crate) async fn fetch_for_import(
    data: &ProviderData,
    id: &str,
) -> Result<(String, Target, Digest, FetchedManifest), Diagnostics> {
    let bad = || {
        Diagnostics::from(Diagnostic::error(
            "Invalid import ID",
            format!("{id:?} is not `registry/repository@sha256:<digest>`."),
        ))
    };
    let (name, digest) = id.split_once('@').ok_or_else(bad)?;
    let digest: Digest = digest.parse().map_err(|_| bad())?;
    let (host, path) = name.split_once('/').ok_or_else(bad)?;
    let repository = if host.contains(".dkr.ecr.") {
        path.to_owned()
    } else {
        name.to_owned()
    };
    let target = target_for(data, &repository).await?;
    let fetched = target
        .client
        .get_manifest(&target.repo, digest.as_str(), &media_types::ALL_MANIFESTS)
        .await
        .map_err(|e| registry_diag("Could not read the image", &e))?
        .ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Image not found",
                format!("{}@{digest} does not exist.", target.repo),
            ))
        })?;
    Ok((repository, target, digest, fetched))
}
