//! Delete of `ep_image`: remove the tags this resource pushed, and the
//! manifest unless `keep_on_destroy` or another tag still points at it; the
//! ECR repository too when this resource created it.

use ep_imagebuild::digest::{Digest, InvalidDigest};

use crate::framework::{Diagnostic, Diagnostics, Op};
use crate::resources::provider::ProviderData;

use super::access::{registry_diag, Target};
use super::apply::{ecr_client_for, target_for};
use super::model::{ImageModel, ImagePrivate};
use super::read::tags_pointing_at;
use super::repository::EcrRepository;

fn ecr_diag(summary: &str, e: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error(summary, e.to_string()).into()
}

/// Deletes the image as `state` and the private data describe it.
pub async fn delete(
    data: &ProviderData,
    op: &Op<ImagePrivate>,
    state: ImageModel,
) -> Result<(), Diagnostics> {
    let target = target_for(data, &state.repository).await?;
    let ecr = ecr_client_for(data, &target).await?;
    let ecr_repo = ecr
        .as_ref()
        .zip(target.ecr_repository.as_deref())
        .map(|(c, n)| EcrRepository::new(c, n));
    if let Some(digest) = state.digest.as_deref() {
        let ours = state.tags.clone().unwrap_or_default();
        let keep = state.keep_on_destroy.unwrap_or(false);
        remove_image(
            &|s, d| op.warn(s, d),
            &target,
            ecr_repo.as_ref(),
            &ours,
            keep,
            digest,
        )
        .await?;
    }
    if op.private().created_repository {
        if let Some(r) = &ecr_repo {
            let force = state
                .repository_settings
                .as_ref()
                .and_then(|s| s.force_delete)
                .unwrap_or(false);
            delete_created_repository(op, r, force).await?;
        }
    }
    Ok(())
}

/// Deletes the ECR repository this resource created: only when empty
/// unless `force`; a repository still holding other images stays, with a
/// warning.
pub(crate) async fn delete_created_repository(
    op: &Op<ImagePrivate>,
    repository: &EcrRepository<'_>,
    force: bool,
) -> Result<(), Diagnostics> {
    let deleted = repository
        .delete(force)
        .await
        .map_err(|e| ecr_diag("Could not delete the ECR repository", e))?;
    if !deleted {
        op.warn(
            "Repository kept",
            "The ECR repository this resource created still holds other images; set \
             repository_settings.force_delete to remove it anyway.",
        );
    }
    Ok(())
}

/// Removes the image `digest`: only the tags `ours` when `keep` or when
/// other tags still point at it, else the manifest. `warn` shows what was
/// left in place.
pub async fn remove_image(
    warn: &(dyn Fn(&str, String) + Sync),
    target: &Target,
    ecr_repo: Option<&EcrRepository<'_>>,
    ours: &[String],
    keep: bool,
    digest: &str,
) -> Result<(), Diagnostics> {
    let others: Vec<String> = tags_pointing_at(&target.client, &target.repo, digest)
        .await?
        .into_iter()
        .filter(|t| !ours.contains(t))
        .collect();
    if keep || !others.is_empty() {
        match ecr_repo {
            Some(r) => r
                .untag(ours)
                .await
                .map_err(|e| ecr_diag("Could not remove tags", e))?,
            None if !ours.is_empty() => warn(
                "Tags left in place",
                format!(
                    "The image {}@{digest} was kept ({}), and this registry cannot remove \
                     single tags: {} still point at it.",
                    target.repo,
                    if keep {
                        "keep_on_destroy"
                    } else {
                        "other tags point at it"
                    },
                    ours.join(", ")
                ),
            ),
            None => {}
        }
        return Ok(());
    }
    let parsed: Digest = digest
        .parse()
        .map_err(|e: InvalidDigest| ecr_diag("Invalid digest in state", e))?;
    target
        .client
        .delete_manifest(&target.repo, &parsed)
        .await
        .map_err(|e| registry_diag("Could not delete the image", &e))?;
    if let Some(r) = ecr_repo {
        // Real ECR may refuse the registry-API delete; its own API is authoritative.
        let _ = r.delete_digest(digest).await;
    }
    Ok(())
}
