//! Typed resources and data sources: written as plan → create/update →
//! read → delete on Rust structs, adapted to the wire traits by
//! [`Typed`] and [`TypedData`].
//!
//! What every resource gets by declaring it, without code of its own:
//! - `force_new` attributes ([`super::Attribute::force_new`]) plan a replacement;
//! - computed attributes are unknown after any change unless declared to
//!   keep their prior value while their inputs are known and unchanged
//!   ([`super::Attribute::keep_unless_changed`]);
//! - a `timeouts` block from [`TypedResource::timeouts`], checked at validate;
//! - Ctrl-C and the deadline cancel the operation's [`Op`], and the state
//!   last [`Op::checkpoint`]ed (or the prior state) is what Terraform keeps;
//! - typed private data, kept whatever the outcome.

mod data_source;
mod plan;
mod resource;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use tokio_util::sync::CancellationToken;

pub use data_source::{TypedData, TypedDataSource};
pub use resource::Typed;

use super::model::{Applying, Planning};
use super::operation::Op;
use super::timeouts::TimeoutDefaults;
use super::{AttrPath, Diagnostic, Diagnostics, Schema};

/// What a model type must offer, in either phase.
pub trait ModelType: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {}

impl<T> ModelType for T where T: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static
{}

/// What a private-data type must offer.
pub trait PrivateType:
    Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static
{
}

impl<T> PrivateType for T where
    T: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static
{
}

/// A plan being made: the resource may adjust `planned` (its computed
/// attributes; inputs always stay as configured) and add replacements.
pub struct Plan<R: TypedResource + ?Sized> {
    /// The configuration; unknown where not yet known.
    pub config: R::Model<Planning>,
    /// The state before the change; `None` on create (and on the create
    /// half of a replacement).
    pub prior: Option<R::Model<Applying>>,
    /// The planned state so far: computed attributes unknown unless kept.
    pub planned: R::Model<Planning>,
    /// Private data carried from the prior state to apply.
    pub private: R::Private,
    /// Attributes whose change forces replacement, beyond `force_new` ones.
    pub replace: Vec<AttrPath>,
    /// Warnings (and errors) for the user.
    pub diagnostics: Diagnostics,
    /// Cancelled when Terraform asks the provider to stop.
    pub stop: CancellationToken,
}

/// A managed resource on typed models.
#[async_trait]
pub trait TypedResource: Send + Sync + 'static {
    /// The resource's configuration and state, one struct for both phases.
    type Model<P: super::model::Phase>: ModelType;
    /// Data kept beside the state, never shown to users.
    type Private: PrivateType;

    /// Type name, e.g. `ep_image`.
    fn type_name(&self) -> &'static str;

    /// The schema, without the `timeouts` block (added from [`Self::timeouts`]).
    fn schema(&self) -> Schema;

    /// Default timeouts; none unless overridden.
    fn timeouts(&self) -> TimeoutDefaults {
        TimeoutDefaults::none()
    }

    /// Checks a configuration that may be partly unknown.
    async fn validate(&self, _config: &Self::Model<Planning>) -> Diagnostics {
        Diagnostics::new()
    }

    /// Adjusts a plan after the framework's defaults.
    async fn plan(&self, _plan: &mut Plan<Self>) -> Result<(), Diagnostics> {
        Ok(())
    }

    /// Creates the object. Checkpoint what exists as soon as it exists.
    async fn create(
        &self,
        op: &Op<Self::Private>,
        config: Self::Model<Applying>,
        planned: Self::Model<Planning>,
    ) -> Result<Self::Model<Applying>, Diagnostics>;

    /// Changes the object in place.
    async fn update(
        &self,
        op: &Op<Self::Private>,
        prior: Self::Model<Applying>,
        config: Self::Model<Applying>,
        planned: Self::Model<Planning>,
    ) -> Result<Self::Model<Applying>, Diagnostics>;

    /// Reads the object back; `None` when it no longer exists.
    async fn read(
        &self,
        op: &Op<Self::Private>,
        state: Self::Model<Applying>,
    ) -> Result<Option<Self::Model<Applying>>, Diagnostics>;

    /// Deletes the object.
    async fn delete(
        &self,
        op: &Op<Self::Private>,
        state: Self::Model<Applying>,
    ) -> Result<(), Diagnostics>;

    /// Builds state for an existing object from an import ID.
    async fn import(
        &self,
        _op: &Op<Self::Private>,
        _id: &str,
    ) -> Result<Self::Model<Applying>, Diagnostics> {
        Err(Diagnostic::error(
            "Import not supported",
            format!("{} cannot be imported.", self.type_name()),
        )
        .into())
    }
}
