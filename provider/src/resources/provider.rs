//! The `provider "ep"` block and the state it hands to resources.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::aws::{self, AwsClients, AwsSettings};
use crate::framework::{
    Block, ConfigureRequest, DataSource, Diagnostic, Diagnostics, Provider, Resource, Schema,
    Typed, TypedData, Value,
};

use super::caller_identity::CallerIdentity;
use super::deployment_package::DeploymentPackageData;

/// What `ConfigureProvider` established, shared by every resource.
#[derive(Default)]
pub struct ProviderData {
    aws: RwLock<Option<Result<Arc<AwsClients>, String>>>,
    registry: super::image::RegistryAccess,
}

impl ProviderData {
    /// The AWS clients, or a diagnostic saying why there are none.
    pub fn aws(&self) -> Result<Arc<AwsClients>, Diagnostics> {
        let guard = self.aws.read().map_err(|_| {
            Diagnostics::from(Diagnostic::error(
                "Provider state poisoned",
                "An earlier operation panicked.",
            ))
        })?;
        match guard.as_ref() {
            Some(Ok(c)) => Ok(c.clone()),
            Some(Err(why)) => Err(Diagnostic::error("AWS is not configured", why.clone()).into()),
            None => Err(Diagnostic::error(
                "Provider not configured",
                "Terraform did not configure the ep provider before using it.",
            )
            .into()),
        }
    }

    /// The registry clients shared by every image.
    pub fn registry(&self) -> &super::image::RegistryAccess {
        &self.registry
    }

    fn set_aws(&self, v: Result<Arc<AwsClients>, String>) {
        if let Ok(mut g) = self.aws.write() {
            *g = Some(v);
        }
    }
}

/// The ep provider.
pub struct EpProvider {
    data: Arc<ProviderData>,
}

impl EpProvider {
    /// A provider not yet configured.
    pub fn new() -> Self {
        EpProvider {
            data: Arc::new(ProviderData::default()),
        }
    }
}

impl Default for EpProvider {
    fn default() -> Self {
        EpProvider::new()
    }
}

#[async_trait]
impl Provider for EpProvider {
    fn schema(&self) -> Schema {
        Schema::new(aws::settings_schema(Block::new(
            "Deploys Elastic Path Commerce on AWS: images, data-populated databases, \
             environments and their published endpoints.",
        )))
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        AwsSettings::validate(config)
    }

    async fn configure(&self, req: ConfigureRequest) -> Diagnostics {
        let mut diags = AwsSettings::validate(&req.config);
        if diags.has_errors() {
            return diags;
        }
        if !req.config.is_wholly_known() {
            // Resources that need AWS will say so; local-only ones still work.
            self.data.set_aws(Err(
                "The provider block depends on values not known until apply; AWS operations \
                 must wait for them."
                    .to_owned(),
            ));
            return diags;
        }
        match AwsClients::new(AwsSettings::from_config(&req.config)).await {
            Ok(c) => self.data.set_aws(Ok(Arc::new(c))),
            Err(aws::AwsError::NoRegion) => {
                // A plan over local data needs no region; only AWS calls fail.
                self.data.set_aws(Err(aws::AwsError::NoRegion.to_string()));
            }
            Err(e) => {
                diags.error("Invalid AWS configuration", e.to_string());
            }
        }
        diags
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        let mut resources: Vec<Arc<dyn Resource>> = vec![
            Arc::new(Typed::new(super::image::Image::new(self.data.clone()))),
            Arc::new(Typed::new(super::rds_snapshot::RdsSnapshot::new(
                self.data.clone(),
            ))),
            Arc::new(Typed::new(super::deployment::Deployment::new(
                self.data.clone(),
            ))),
            Arc::new(Typed::new(super::publication::EndpointPublication::new(
                self.data.clone(),
            ))),
            Arc::new(Typed::new(super::database_image::DatabaseImage::new(
                self.data.clone(),
            ))),
        ];
        if std::env::var_os(super::fixture::ENABLE_ENV).is_some_and(|v| v == "1") {
            resources.push(Arc::new(Typed::new(super::fixture::Fixture)));
        }
        resources
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![
            Arc::new(TypedData::new(DeploymentPackageData)),
            Arc::new(TypedData::new(CallerIdentity::new(self.data.clone()))),
            Arc::new(TypedData::new(super::config_store::ConfigStore::new(
                self.data.clone(),
            ))),
        ]
    }
}
