//! `ep_database_image`: Elastic Path's BuildMySQL job without a Docker
//! daemon. A local MariaDB server (see [`crate::dbserver`]) on a temporary
//! data directory, the package's Data Population tool run against it
//! ([`crate::datapop`]), a clean shutdown, and the data directory pushed as
//! one layer on a MySQL/MariaDB base through `ep_imagebuild`.
//!
//! Plan resolves the data fingerprint (package central directories, the
//! server's `--version`, the base's digest) and never starts a server:
//! equal to the state's, the plan is empty; else a new digest is planned.
//! Read notices a manifest deleted outside Terraform; delete removes the
//! tags and the manifest (and the ECR repository when it made it); import
//! reads what the image records.

mod apply;
mod inputs;
mod model;
mod ops;
mod populate;
mod schema;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::image::ImagePrivate;
use super::provider::ProviderData;
use super::rds_snapshot::settings::validate_known_package;
use crate::framework::{
    Diagnostics, Known, Op, Operation, Plan, Planning, Schema, TimeoutDefaults, TypedResource,
};
use model::DatabaseImageModel;
use settings::Args;

/// The `ep_database_image` resource.
pub struct DatabaseImage {
    data: Arc<ProviderData>,
}

impl DatabaseImage {
    pub(crate) fn new(data: Arc<ProviderData>) -> Self {
        DatabaseImage { data }
    }
}

#[async_trait]
impl TypedResource for DatabaseImage {
    type Model<P: crate::framework::Phase> = DatabaseImageModel<P>;
    type Private = ImagePrivate;

    fn type_name(&self) -> &'static str {
        "ep_database_image"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn timeouts(&self) -> TimeoutDefaults {
        TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(2 * 3600))
            .with(Operation::Update, Duration::from_secs(2 * 3600))
            .with(Operation::Delete, Duration::from_secs(10 * 60))
    }

    async fn validate(&self, config: &DatabaseImageModel<Planning>) -> Diagnostics {
        let mut d = settings::validate(config);
        d.extend(validate_known_package(&config.deployment_package, &config.environment).await);
        d
    }

    /// With every input known, the data fingerprint decides: equal to the
    /// prior one keeps every output, else the digest is left to apply.
    async fn plan(&self, plan: &mut Plan<Self>) -> Result<(), Diagnostics> {
        let Some(args) = Args::from_model(&plan.config) else {
            return Ok(());
        };
        let resolved = inputs::resolve(&self.data, &args).await?;
        if let Some(prior) = &plan.prior {
            if prior.data_fingerprint.as_deref() == Some(resolved.fingerprint.as_str())
                && prior.digest.is_some()
            {
                plan.planned.keep_outputs_of(prior);
                return Ok(());
            }
        }
        let p = &mut plan.planned;
        // The configuration may be unchanged while what it points at changed
        // (a package rewritten in place, a new server version).
        p.id = Known::Unknown;
        p.digest = Known::Unknown;
        p.image_uri = Known::Unknown;
        p.data_fingerprint = Some(resolved.fingerprint).into();
        p.server_version = Some(resolved.server_version).into();
        Ok(())
    }

    async fn create(
        &self,
        op: &Op<ImagePrivate>,
        config: DatabaseImageModel,
        planned: DatabaseImageModel<Planning>,
    ) -> Result<DatabaseImageModel, Diagnostics> {
        apply::create_or_update(&self.data, op, None, config, &planned).await
    }

    async fn update(
        &self,
        op: &Op<ImagePrivate>,
        prior: DatabaseImageModel,
        config: DatabaseImageModel,
        planned: DatabaseImageModel<Planning>,
    ) -> Result<DatabaseImageModel, Diagnostics> {
        apply::create_or_update(&self.data, op, Some(prior), config, &planned).await
    }

    async fn read(
        &self,
        _op: &Op<ImagePrivate>,
        state: DatabaseImageModel,
    ) -> Result<Option<DatabaseImageModel>, Diagnostics> {
        ops::refresh(&self.data, state).await
    }

    async fn delete(
        &self,
        op: &Op<ImagePrivate>,
        state: DatabaseImageModel,
    ) -> Result<(), Diagnostics> {
        ops::delete(&self.data, op, state).await
    }

    async fn import(
        &self,
        _op: &Op<ImagePrivate>,
        id: &str,
    ) -> Result<DatabaseImageModel, Diagnostics> {
        ops::import(&self.data, id).await
    }
}
