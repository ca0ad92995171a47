//! `ep_image`: builds an Elastic Path service image with `ep_imagebuild`
//! and pushes it, with plans that never build.
//!
//! Plan computes a cheap fingerprint of this image's own inputs (see
//! `fingerprint`) and compares it with state: equal inputs plan no change
//! at all; changed inputs plan a new digest. The builder records the same
//! fingerprint in the image, so an imported image plans clean against the
//! configuration that built it.

pub(super) mod access;
pub(super) mod apply;
pub(super) mod args;
pub(super) mod delete;
mod fingerprint;
mod inputs;
mod manifest;
mod model;
pub(super) mod read;
pub(super) mod repository;
pub(super) mod request;

pub(crate) use model::ImagePrivate;
pub(crate) use request::cache_root;
mod schema;

pub use access::RegistryAccess;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::framework::model::Known;
use crate::framework::{
    Diagnostics, Op, Operation, Plan, Planning, Schema, TimeoutDefaults, TypedResource,
};

use super::provider::ProviderData;
use args::{BaseArg, ImageArgs};
use model::ImageModel;

/// The `ep_image` resource.
pub struct Image {
    data: Arc<ProviderData>,
}

impl Image {
    pub(crate) fn new(data: Arc<ProviderData>) -> Self {
        Image { data }
    }
}

#[async_trait]
impl TypedResource for Image {
    type Model<P: crate::framework::Phase> = ImageModel<P>;
    type Private = ImagePrivate;

    fn type_name(&self) -> &'static str {
        "ep_image"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn timeouts(&self) -> TimeoutDefaults {
        TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(60 * 60))
            .with(Operation::Update, Duration::from_secs(60 * 60))
            .with(Operation::Delete, Duration::from_secs(10 * 60))
    }

    async fn validate(&self, config: &ImageModel<Planning>) -> Diagnostics {
        args::validate(config)
    }

    /// The framework has made every output unknown after a change; when
    /// the build inputs are known, the fingerprint decides instead: equal
    /// to the prior one keeps every output, else only the digest and what
    /// follows from it are left to apply.
    async fn plan(&self, plan: &mut Plan<Self>) -> Result<(), Diagnostics> {
        let Some(args) = ImageArgs::from_model(&plan.config) else {
            return Ok(());
        };
        let inputs = inputs::resolve(&self.data, &args).await?;
        plan.diagnostics.extend(fingerprint::warnings(&inputs));
        let fp = inputs.inputs_fingerprint;
        if let Some(prior) = &plan.prior {
            if prior.source_fingerprint.as_deref() == Some(fp.as_str()) && prior.digest.is_some() {
                plan.planned.keep_outputs_of(prior);
                return Ok(());
            }
        }
        let p = &mut plan.planned;
        // The configuration may be unchanged while what it points at changed
        // (a package rewritten in place): the framework then kept every output
        // from state, but a new image is coming.
        p.id = Known::Unknown;
        p.digest = Known::Unknown;
        p.image_uri = Known::Unknown;
        p.layers = Known::Unknown;
        p.source_fingerprint = Some(fp).into();
        p.package_fingerprint = Some(inputs.package_fingerprint).into();
        p.base_digest = match args.base {
            BaseArg::Image(_) => inputs.base_identity,
            _ => None,
        }
        .into();
        Ok(())
    }

    async fn create(
        &self,
        op: &Op<ImagePrivate>,
        config: ImageModel,
        planned: ImageModel<Planning>,
    ) -> Result<ImageModel, Diagnostics> {
        apply::create_or_update(&self.data, op, None, config, &planned).await
    }

    async fn update(
        &self,
        op: &Op<ImagePrivate>,
        prior: ImageModel,
        config: ImageModel,
        planned: ImageModel<Planning>,
    ) -> Result<ImageModel, Diagnostics> {
        apply::create_or_update(&self.data, op, Some(prior), config, &planned).await
    }

    async fn read(
        &self,
        _op: &Op<ImagePrivate>,
        state: ImageModel,
    ) -> Result<Option<ImageModel>, Diagnostics> {
        read::refresh(&self.data, state).await
    }

    async fn delete(&self, op: &Op<ImagePrivate>, state: ImageModel) -> Result<(), Diagnostics> {
        delete::delete(&self.data, op, state).await
    }

    async fn import(&self, _op: &Op<ImagePrivate>, id: &str) -> Result<ImageModel, Diagnostics> {
        read::import(&self.data, id).await
    }
}
