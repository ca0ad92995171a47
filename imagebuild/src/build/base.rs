//! Resolving a registry base image: only its manifest (or index) and config are fetched; its
//! layers are referenced by descriptor and never downloaded.

use oci_client::manifest::{OciImageIndex, OciImageManifest};

use super::BuildError;
use crate::digest::Digest;
use crate::image::{BaseImage, Platform};
use crate::registry::{media_types, RegistryClient, RepoRef};

/// Largest base config accepted (they are a few KiB).
const MAX_CONFIG: u64 = 16 << 20;

/// A registry base resolved for every requested platform.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedBase {
    /// The reference as given.
    pub(crate) reference: String,
    pub(crate) repo: RepoRef,
    /// What the reference pointed at (a manifest or an index).
    pub(crate) digest: Digest,
    /// One per requested platform, in the same order.
    pub(crate) images: Vec<BaseImage>,
}

fn json_err(reference: &str, what: &str, e: serde_json::Error) -> BuildError {
    BuildError::InvalidBase {
        reference: reference.to_string(),
        reason: format!("{what} is not valid JSON: {e}"),
    }
}

/// Resolves `reference` (a tag is resolved to a digest; a digest is used as is).
pub(crate) async fn resolve(
    client: &RegistryClient,
    reference: &str,
    platforms: &[Platform],
) -> Result<ResolvedBase, BuildError> {
    let (repo, parsed) =
        RepoRef::parse_reference(reference).map_err(|e| BuildError::InvalidReference {
            reference: reference.to_string(),
            reason: e.to_string(),
        })?;
    let wanted = match (parsed.digest(), parsed.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let top = client
        .get_manifest(&repo, &wanted, &[])
        .await?
        .ok_or_else(|| BuildError::BaseNotFound {
            reference: reference.to_string(),
        })?;
    let is_index = top.media_type == media_types::OCI_INDEX
        || top.media_type == media_types::DOCKER_MANIFEST_LIST;
    let mut images = Vec::with_capacity(platforms.len());
    for platform in platforms {
        let (digest, bytes) = if is_index {
            let index: OciImageIndex = serde_json::from_slice(&top.bytes)
                .map_err(|e| json_err(reference, "base index", e))?;
            let entry = platform
                .find_in(&index)
                .ok_or_else(|| BuildError::BasePlatform {
                    reference: reference.to_string(),
                    platform: platform.to_string(),
                })?;
            let m = client
                .get_manifest(&repo, &entry.digest, &[])
                .await?
                .ok_or_else(|| BuildError::BaseNotFound {
                    reference: format!("{reference} ({})", entry.digest),
                })?;
            (m.digest, m.bytes)
        } else {
            (top.digest.clone(), top.bytes.clone())
        };
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| json_err(reference, "base manifest", e))?;
        let config_digest: Digest =
            manifest
                .config
                .digest
                .parse()
                .map_err(|_| BuildError::InvalidBase {
                    reference: reference.to_string(),
                    reason: format!("config digest {:?} is not sha256", manifest.config.digest),
                })?;
        let config = client
            .get_blob_bytes(&repo, &config_digest, MAX_CONFIG)
            .await?;
        let base = BaseImage::new(reference, Some(digest), &config, manifest.layers)?;
        if !platform.matches(
            &base.config.os,
            &base.config.architecture,
            base.config.variant.as_deref(),
        ) {
            return Err(BuildError::BasePlatform {
                reference: reference.to_string(),
                platform: platform.to_string(),
            });
        }
        images.push(base);
    }
    Ok(ResolvedBase {
        reference: reference.to_string(),
        repo,
        digest: top.digest,
        images,
    })
}
