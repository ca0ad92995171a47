//! The `ep_endpoint_publication` model (field names are attribute names)
//! and the store blocks shared with `ep_config_store`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::{Applying, Phase};
use crate::stores::consul::ConsulSettings;
use crate::stores::ssm::SsmOptions;

/// The `consul` block.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsulBlock {
    /// `host:port` or a URL.
    pub address: Option<String>,
    /// `http` or `https`.
    pub scheme: Option<String>,
    /// ACL token (sensitive).
    pub token: Option<String>,
    /// Datacenter.
    pub datacenter: Option<String>,
    /// Enterprise namespace.
    pub namespace: Option<String>,
    /// PEM CA bundle to trust.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for ConsulBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings().fmt(f)
    }
}

impl ConsulBlock {
    /// The client settings.
    pub fn settings(&self) -> ConsulSettings {
        ConsulSettings {
            address: self.address.clone(),
            scheme: self.scheme.clone(),
            token: self.token.clone(),
            datacenter: self.datacenter.clone(),
            namespace: self.namespace.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// The `ssm` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SsmBlock {
    /// Prepended to `prefix` (default `/`).
    pub path_prefix: Option<String>,
    /// KMS key for `SecureString` values.
    pub key_id: Option<String>,
    /// Parameter tier.
    pub tier: Option<String>,
    /// Tags on every parameter.
    pub tags: Option<BTreeMap<String, String>>,
}

impl SsmBlock {
    /// `path_prefix`, `/` by default.
    pub fn path_prefix(&self) -> &str {
        self.path_prefix.as_deref().unwrap_or("/")
    }

    /// How parameters are written.
    pub fn options(&self) -> SsmOptions {
        SsmOptions {
            key_id: self.key_id.clone(),
            tier: self.tier.clone(),
            tags: self.tags.clone().unwrap_or_default(),
        }
    }
}

/// Stack → endpoint name → value (`ep_deployment.endpoints`, whose
/// objects Terraform converts to maps; an endpoint a stack lacks is null).
pub type Endpoints = BTreeMap<String, BTreeMap<String, Option<String>>>;

/// Configuration and state of `ep_endpoint_publication`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PublicationModel<P: Phase = Applying> {
    pub prefix: P::Of<String>,
    pub values: P::Of<Option<BTreeMap<String, String>>>,
    pub sensitive_values: P::Of<Option<BTreeMap<String, String>>>,
    pub endpoints: P::Of<Option<Endpoints>>,
    pub overwrite: P::Of<Option<bool>>,
    pub id: P::Of<Option<String>>,
    pub keys: P::Of<Option<Vec<String>>>,
    pub unconfirmed: P::Of<Option<BTreeMap<String, String>>>,
    pub consul: P::Of<Option<ConsulBlock>>,
    pub ssm: P::Of<Option<SsmBlock>>,
}

/// Configuration and result of `ep_config_store`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ConfigStoreModel<P: Phase = Applying> {
    pub prefix: P::Of<String>,
    pub sensitive_keys: P::Of<Option<Vec<String>>>,
    pub id: P::Of<Option<String>>,
    pub values: P::Of<Option<BTreeMap<String, String>>>,
    pub sensitive_values: P::Of<Option<BTreeMap<String, String>>>,
    pub consul: P::Of<Option<ConsulBlock>>,
    pub ssm: P::Of<Option<SsmBlock>>,
}

/// The digest `unconfirmed` keeps of a value sent.
pub fn value_digest(value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(value.as_bytes()))
}
