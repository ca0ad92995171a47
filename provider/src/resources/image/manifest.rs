//! Reading back what an image in a registry says about itself: its layers,
//! base, and the fingerprints the builder recorded.

use ep_imagebuild::build::INPUTS_FINGERPRINT_ANNOTATION;
use ep_imagebuild::digest::Digest;
use ep_imagebuild::image::annotation;
use ep_imagebuild::registry::{media_types, FetchedManifest};
use serde_json::Value as Json;

use crate::framework::{Diagnostic, Diagnostics};

use super::access::{registry_diag, Target};
use super::model::LayerInfo;

/// What an image's manifest and config say.
pub struct Details {
    /// The `layers` attribute.
    pub layers: Vec<LayerInfo>,
    /// The base image's digest annotation.
    pub base_digest: Option<String>,
    /// The inputs fingerprint the builder recorded.
    pub input_fingerprint: Option<String>,
}

fn parse(bytes: &[u8]) -> Result<Json, Diagnostics> {
    serde_json::from_slice(bytes).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "The registry returned an invalid manifest",
            e.to_string(),
        ))
    })
}

/// Describes `fetched`; for an index, its first platform's image.
pub async fn describe(target: &Target, fetched: &FetchedManifest) -> Result<Details, Diagnostics> {
    let mut doc = parse(&fetched.bytes)?;
    if let Some(first) = doc["manifests"].as_array().and_then(|m| m.first()) {
        let d = first["digest"].as_str().unwrap_or_default().to_owned();
        let inner = target
            .client
            .get_manifest(&target.repo, &d, &media_types::ALL_MANIFESTS)
            .await
            .map_err(|e| registry_diag("Could not read the platform manifest", &e))?
            .ok_or_else(|| Diagnostics::from(Diagnostic::error("Platform manifest missing", d)))?;
        doc = parse(&inner.bytes)?;
    }
    let annotation_of = |k: &str| doc["annotations"][k].as_str().map(str::to_owned);
    let mut history: Vec<String> = Vec::new();
    if let Some(cd) = doc["config"]["digest"].as_str() {
        if let Ok(cd) = cd.parse::<Digest>() {
            let bytes = target
                .client
                .get_blob_bytes(&target.repo, &cd, 4 << 20)
                .await
                .map_err(|e| registry_diag("Could not read the image config", &e))?;
            let config = parse(&bytes)?;
            // History entries that made a layer, in layer order.
            history = config["history"]
                .as_array()
                .map(|h| {
                    h.iter()
                        .filter(|e| !e["empty_layer"].as_bool().unwrap_or(false))
                        .map(|e| e["created_by"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    let layers = doc["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .enumerate()
                .map(|(i, l)| LayerInfo {
                    digest: l["digest"].as_str().unwrap_or_default().to_owned(),
                    size: l["size"].as_u64().unwrap_or(0),
                    created_by: history.get(i).filter(|s| !s.is_empty()).cloned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Details {
        layers,
        base_digest: annotation_of(annotation::BASE_DIGEST),
        input_fingerprint: annotation_of(INPUTS_FINGERPRINT_ANNOTATION),
    })
}
