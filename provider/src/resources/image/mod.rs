//! `ep_image`: builds an Elastic Path service image with `ep_imagebuild`
//! and pushes it, with plans that never build.
//!
//! Plan computes a cheap fingerprint of every input and compares it with
//! state: equal inputs plan no change at all; changed inputs plan a new
//! digest. The fingerprint is also written into the manifest, so an imported
//! image plans clean against the configuration that built it.

mod access;
mod args;
mod build;
mod fingerprint;
mod manifest;
mod repository;
mod schema;
mod state;

pub use access::RegistryAccess;

use std::sync::Arc;

use async_trait::async_trait;

use crate::framework::plan::computed_unknown;
use crate::framework::{
    ApplyRequest, AttrPath, Diagnostic, Diagnostics, PlanRequest, PlanResponse, Resource, Schema,
    StateResponse, Value,
};

use super::provider::ProviderData;
use args::{BaseArg, ImageArgs};
use fingerprint::Resolved;

/// The `ep_image` resource.
pub struct Image {
    data: Arc<ProviderData>,
}

impl Image {
    pub(crate) fn new(data: Arc<ProviderData>) -> Self {
        Image { data }
    }

    /// Resolves what the fingerprint needs: the package's content
    /// fingerprint and the base's identity. Cheap: a zip's central directory
    /// and one manifest HEAD.
    async fn resolve(&self, args: &ImageArgs) -> Result<Resolved, Diagnostics> {
        let package_fingerprint = match &args.deployment_package {
            Some(p) => {
                let p = std::path::PathBuf::from(p);
                let fp = tokio::task::spawn_blocking(move || fingerprint::package_fingerprint(&p))
                    .await
                    .map_err(|e| {
                        Diagnostics::from(Diagnostic::error(
                            "Reading the package failed",
                            e.to_string(),
                        ))
                    })?
                    .map_err(|e| {
                        Diagnostics::from(
                            Diagnostic::error(
                                "Cannot read the deployment package",
                                format!("{e}."),
                            )
                            .at(AttrPath::root("deployment_package")),
                        )
                    })?;
                Some(fp)
            }
            None => None,
        };
        let base_identity = match &args.base {
            BaseArg::Scratch => None,
            BaseArg::Dir(p) | BaseArg::Tar(p) => {
                let p = std::path::PathBuf::from(p);
                let shown = p.display().to_string();
                let fp = tokio::task::spawn_blocking(move || fingerprint::rootfs_fingerprint(&p))
                    .await
                    .map_err(|e| {
                        Diagnostics::from(Diagnostic::error(
                            "Reading the base failed",
                            e.to_string(),
                        ))
                    })?
                    .map_err(|e| {
                        Diagnostics::from(
                            Diagnostic::error(
                                "Cannot read the base root filesystem",
                                format!("{shown}: {e}."),
                            )
                            .at(AttrPath::root("base")),
                        )
                    })?;
                Some(fp)
            }
            BaseArg::Image(reference) => Some(
                self.data
                    .registry()
                    .resolve_reference(reference, || self.data.aws())
                    .await
                    .map_err(|d| d.at_root("base"))?
                    .to_string(),
            ),
        };
        Ok(Resolved {
            package_fingerprint,
            base_identity,
        })
    }
}

#[async_trait]
impl Resource for Image {
    fn type_name(&self) -> &'static str {
        "ep_image"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        args::validate(config)
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let block = schema::schema().block;
        let mut resp = PlanResponse {
            planned_state: req.proposed_new_state.clone(),
            requires_replace: Vec::new(),
            planned_private: req.prior_private.clone(),
            diagnostics: args::validate(&req.config),
        };
        if resp.diagnostics.has_errors() {
            return resp;
        }
        if !req.prior_state.is_null()
            && req.prior_state.attr("repository") != req.config.attr("repository")
        {
            resp.requires_replace.push(AttrPath::root("repository"));
        }
        if !state::build_inputs_known(&req.config) {
            resp.planned_state = computed_unknown(&req.proposed_new_state, &block);
            return resp;
        }
        let args = ImageArgs::from_config(&req.config);
        let resolved = match self.resolve(&args).await {
            Ok(r) => r,
            Err(d) => {
                resp.diagnostics.extend(d);
                return resp;
            }
        };
        let fp = fingerprint::source_fingerprint(&args, &resolved);
        let unchanged = !req.prior_state.is_null()
            && req.prior_state.attr("source_fingerprint").as_str() == Some(fp.as_str())
            && req.prior_state.attr("digest").as_str().is_some()
            && resp.requires_replace.is_empty();
        resp.planned_state = if unchanged {
            state::keep_outputs(&req.proposed_new_state, &req.prior_state)
        } else {
            state::new_outputs(
                &req.proposed_new_state,
                &req.prior_state,
                &fp,
                &resolved,
                &args,
            )
        };
        resp
    }

    async fn apply(&self, req: ApplyRequest) -> StateResponse {
        if req.planned_state.is_null() {
            return build::destroy(&self.data, req.prior_state, req.planned_private).await;
        }
        build::create_or_update(&self.data, req).await
    }

    async fn read(&self, req: crate::framework::ReadRequest) -> StateResponse {
        build::refresh(&self.data, req.state, req.private).await
    }

    async fn import(
        &self,
        id: &str,
        _stop: tokio_util::sync::CancellationToken,
    ) -> Result<Value, Diagnostics> {
        build::import(&self.data, id).await
    }
}
