//! The `ep_image` model: configuration and state as one struct, plus its
//! private data. Field names are the schema's attribute names; the
//! framework's model check proves they agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::{Applying, Phase};

/// One explicit `layer` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerBlock {
    /// Path or glob inside the package, or `host:DIR`.
    pub source: String,
    /// Absolute directory in the image.
    pub destination: String,
    /// Octal file mode text.
    pub mode: Option<String>,
    /// Owner; a value outside `u32` is refused with its path.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
}

/// The `repository_settings` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositorySettings {
    /// `MUTABLE` or `IMMUTABLE`.
    pub image_tag_mutability: Option<String>,
    /// Scan images on push.
    pub scan_on_push: Option<bool>,
    /// Delete the repository on destroy even when it holds other images.
    pub force_delete: Option<bool>,
}

/// One entry of the computed `layers` list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Blob digest.
    pub digest: String,
    /// Blob size in bytes.
    pub size: u64,
    /// What the image history says made the layer.
    pub created_by: Option<String>,
}

/// Configuration and state of `ep_image`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ImageModel<P: Phase = Applying> {
    // Inputs.
    pub repository: P::Of<String>,
    pub tags: P::Of<Option<Vec<String>>>,
    pub create_repository: P::Of<Option<bool>>,
    pub deployment_package: P::Of<Option<String>>,
    pub service: P::Of<Option<String>>,
    pub base: P::Of<Option<String>>,
    pub env: P::Of<Option<BTreeMap<String, String>>>,
    pub entrypoint: P::Of<Option<Vec<String>>>,
    pub cmd: P::Of<Option<Vec<String>>>,
    pub working_dir: P::Of<Option<String>>,
    pub user: P::Of<Option<String>>,
    pub labels: P::Of<Option<BTreeMap<String, String>>>,
    pub exposed_ports: P::Of<Option<Vec<String>>>,
    pub stop_signal: P::Of<Option<String>>,
    pub annotations: P::Of<Option<BTreeMap<String, String>>>,
    pub platforms: P::Of<Option<Vec<String>>>,
    pub source_date_epoch: P::Of<Option<u64>>,
    pub compression: P::Of<Option<String>>,
    pub format: P::Of<Option<String>>,
    pub keep_on_destroy: P::Of<Option<bool>>,
    pub repository_settings: P::Of<Option<RepositorySettings>>,
    pub layer: P::Of<Vec<LayerBlock>>,
    // Outputs.
    pub id: P::Of<Option<String>>,
    pub digest: P::Of<Option<String>>,
    pub image_uri: P::Of<Option<String>>,
    pub registry: P::Of<Option<String>>,
    pub base_digest: P::Of<Option<String>>,
    pub package_fingerprint: P::Of<Option<String>>,
    pub source_fingerprint: P::Of<Option<String>>,
    pub layers: P::Of<Option<Vec<LayerInfo>>>,
}

impl<P: Phase> ImageModel<P> {
    /// Copies every output of `prior` into this (planned) model: what an
    /// image whose inputs did not change keeps.
    pub fn keep_outputs_of(&mut self, prior: &ImageModel) {
        self.id = P::wrap(prior.id.clone());
        self.digest = P::wrap(prior.digest.clone());
        self.image_uri = P::wrap(prior.image_uri.clone());
        self.registry = P::wrap(prior.registry.clone());
        self.base_digest = P::wrap(prior.base_digest.clone());
        self.package_fingerprint = P::wrap(prior.package_fingerprint.clone());
        self.source_fingerprint = P::wrap(prior.source_fingerprint.clone());
        self.layers = P::wrap(prior.layers.clone());
    }
}

/// What `ep_image` keeps beside its state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImagePrivate {
    /// This resource created the ECR repository (and so may delete it).
    #[serde(default)]
    pub created_repository: bool,
}
