//! The traits a provider, its resources and data sources implement. The
//! gRPC adapter in [`super::server`] decodes requests into these calls.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diagnostics::{Diagnostic, Diagnostics};
use super::dynamic::Value;
use super::schema::Schema;

/// Values handed to [`Provider::configure`].
pub struct ConfigureRequest {
    /// The `provider` block, decoded. May contain unknowns when it depends on
    /// resources not yet created.
    pub config: Value,
    /// The Terraform version calling us.
    pub terraform_version: String,
}

/// A provider: its own configuration plus the resources and data sources it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The schema of the `provider` block.
    fn schema(&self) -> Schema;

    /// Checks the `provider` block without side effects (values may be unknown).
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Takes the `provider` block before any resource operation.
    async fn configure(&self, req: ConfigureRequest) -> Diagnostics;

    /// Called when Terraform asks running operations to stop (Ctrl-C).
    fn stop(&self) {}

    /// The managed resource types.
    fn resources(&self) -> Vec<Arc<dyn Resource>>;

    /// The data source types.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;
}

/// What Terraform proposes for a managed resource; see [`Resource::plan`].
pub struct PlanRequest {
    /// State before the change; null on create.
    pub prior_state: Value,
    /// Terraform's merge of config and prior state; null on destroy.
    pub proposed_new_state: Value,
    /// The configuration as written (unknowns where not yet known).
    pub config: Value,
    /// Opaque provider data saved with the prior state.
    pub prior_private: Vec<u8>,
    /// Cancelled when Terraform asks the provider to stop.
    pub stop: CancellationToken,
}

/// A planned change.
pub struct PlanResponse {
    /// The state the apply is expected to produce; unknown where it cannot be known.
    pub planned_state: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<super::path::AttrPath>,
    /// Opaque data passed on to apply.
    pub planned_private: Vec<u8>,
    /// Messages for the user.
    pub diagnostics: Diagnostics,
}

/// A change to carry out; see [`Resource::apply`].
pub struct ApplyRequest {
    /// State before the change; null on create.
    pub prior_state: Value,
    /// The state planned; null on destroy.
    pub planned_state: Value,
    /// The configuration, now wholly known.
    pub config: Value,
    /// Opaque data from plan.
    pub planned_private: Vec<u8>,
    /// Cancelled when Terraform asks the provider to stop.
    pub stop: CancellationToken,
}

/// A refresh; see [`Resource::read`].
pub struct ReadRequest {
    /// The stored state.
    pub state: Value,
    /// Opaque data kept with it.
    pub private: Vec<u8>,
    /// Cancelled when Terraform asks the provider to stop.
    pub stop: CancellationToken,
}

/// What an import found: its state and private data.
pub struct Imported {
    /// The object's state.
    pub state: Value,
    /// Private data to keep beside it (empty for none).
    pub private: Vec<u8>,
}

/// The outcome of a change or a read. On failure `new_state` must still say
/// what exists, so that nothing created is lost from state.
pub struct StateResponse {
    /// The resulting state; null when the object no longer exists.
    pub new_state: Value,
    /// Opaque data to keep with the state.
    pub private: Vec<u8>,
    /// Messages for the user.
    pub diagnostics: Diagnostics,
}

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Type name, e.g. `ep_image`.
    fn type_name(&self) -> &'static str;

    /// The resource's schema.
    fn schema(&self) -> Schema;

    /// Checks configuration without side effects (values may be unknown).
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Plans a create, update or destroy.
    async fn plan(&self, req: PlanRequest) -> PlanResponse;

    /// Carries out a planned create, update or destroy.
    async fn apply(&self, req: ApplyRequest) -> StateResponse;

    /// Refreshes state from the real object; a null `new_state` means it is gone.
    async fn read(&self, req: ReadRequest) -> StateResponse;

    /// Builds state for an existing object from an import ID.
    async fn import(&self, _id: &str, _stop: CancellationToken) -> Result<Imported, Diagnostics> {
        Err(Diagnostic::error(
            "Import not supported",
            format!("{} cannot be imported.", self.type_name()),
        )
        .into())
    }

    /// Checks that the resource's typed model and its schema agree; see
    /// [`super::model::check_model`]. Untyped resources have nothing to check.
    fn check_model(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    /// Type name, e.g. `ep_deployment_package`.
    fn type_name(&self) -> &'static str;

    /// The data source's schema.
    fn schema(&self) -> Schema;

    /// Checks configuration without side effects (values may be unknown).
    async fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads the data; `config` is wholly known.
    async fn read(&self, config: Value) -> (Value, Diagnostics);

    /// Checks that the typed model and the schema agree.
    fn check_model(&self) -> Result<(), String> {
        Ok(())
    }
}
