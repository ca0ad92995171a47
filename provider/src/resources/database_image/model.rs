//! The `ep_database_image` model: configuration and state as one struct.
//! Field names are the schema's attribute names; the framework's model
//! check proves they agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::{Applying, Phase};

/// Configuration and state of `ep_database_image`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct DatabaseImageModel<P: Phase = Applying> {
    // Where the image goes.
    pub repository: P::Of<String>,
    pub tags: P::Of<Option<Vec<String>>>,
    pub base: P::Of<String>,
    pub keep_on_destroy: P::Of<Option<bool>>,
    pub create_repository: P::Of<Option<bool>>,
    // What the database holds.
    pub deployment_package: P::Of<String>,
    pub environment: P::Of<String>,
    pub schema_name: P::Of<Option<String>>,
    pub database_username: P::Of<Option<String>>,
    pub database_password: P::Of<String>,
    pub extra_properties: P::Of<Option<BTreeMap<String, String>>>,
    // Where the data goes in the image.
    pub data_directory: P::Of<Option<String>>,
    pub data_uid: P::Of<Option<u32>>,
    pub data_gid: P::Of<Option<u32>>,
    // The local server that builds it.
    pub server_binary: P::Of<Option<String>>,
    pub install_db_binary: P::Of<Option<String>>,
    pub client_binary: P::Of<Option<String>>,
    // Outputs.
    pub id: P::Of<Option<String>>,
    pub digest: P::Of<Option<String>>,
    pub image_uri: P::Of<Option<String>>,
    pub data_fingerprint: P::Of<Option<String>>,
    pub server_version: P::Of<Option<String>>,
}

impl<P: Phase> DatabaseImageModel<P> {
    /// Copies every output of `prior`: what an image whose inputs did not
    /// change keeps.
    pub fn keep_outputs_of(&mut self, prior: &DatabaseImageModel) {
        self.id = P::wrap(prior.id.clone());
        self.digest = P::wrap(prior.digest.clone());
        self.image_uri = P::wrap(prior.image_uri.clone());
        self.data_fingerprint = P::wrap(prior.data_fingerprint.clone());
        self.server_version = P::wrap(prior.server_version.clone());
    }
}
