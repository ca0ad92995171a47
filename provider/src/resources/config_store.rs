//! `ep_config_store`: the values under a prefix of a config store (Consul
//! or SSM), for consumers of what `ep_endpoint_publication` published.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::provider::ProviderData;
use super::publication::model::ConfigStoreModel;
use super::publication::target::{self, store_diagnostic, Target};
use crate::framework::{Diagnostics, Phase, Planning, Schema, TypedDataSource};

/// The `ep_config_store` data source.
pub struct ConfigStore {
    data: Arc<ProviderData>,
}

impl ConfigStore {
    pub(super) fn new(data: Arc<ProviderData>) -> Self {
        ConfigStore { data }
    }
}

#[async_trait]
impl TypedDataSource for ConfigStore {
    type Model<P: Phase> = ConfigStoreModel<P>;

    fn type_name(&self) -> &'static str {
        "ep_config_store"
    }

    fn schema(&self) -> Schema {
        super::publication::schema::data_source()
    }

    async fn validate(&self, config: &ConfigStoreModel<Planning>) -> Diagnostics {
        target::validate(&config.prefix, &config.consul, &config.ssm)
    }

    async fn read(&self, mut config: ConfigStoreModel) -> Result<ConfigStoreModel, Diagnostics> {
        let target = Target::of(&config.consul, &config.ssm)?;
        let store = target.connect(&self.data).await?;
        let full_prefix = target.full_prefix(&config.prefix);
        let entries = store
            .list(&full_prefix)
            .await
            .map_err(|e| store_diagnostic(&format!("Cannot read {full_prefix:?}"), &e, None))?;
        let secret_keys: std::collections::BTreeSet<&str> = config
            .sensitive_keys
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let mut values = BTreeMap::new();
        let mut sensitive = BTreeMap::new();
        for (full, e) in entries {
            let Some(rel) = full.strip_prefix(&full_prefix) else {
                continue;
            };
            if e.secure || secret_keys.contains(rel) {
                sensitive.insert(rel.to_owned(), e.value);
            } else {
                values.insert(rel.to_owned(), e.value);
            }
        }
        config.id = Some(target.id(&config.prefix));
        config.values = Some(values);
        config.sensitive_values = Some(sensitive);
        Ok(config)
    }
}
