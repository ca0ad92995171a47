//! The tfplugin6 `Provider` gRPC service: one thin adapter per RPC that
//! decodes the request, calls the [`Provider`]/[`Resource`]/[`DataSource`]
//! traits and encodes the answer. RPCs for features this provider does not
//! offer answer with a diagnostic, never with a gRPC error: Terraform treats
//! transport errors as a crashed plugin.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use ep_tfproto::tfplugin6 as pb;
use futures::Stream;
use tonic::{Request, Response, Status};

use super::diagnostics::{Diagnostic, Diagnostics};
use super::dynamic::{self, Type, Value};
use super::operation::Stopper;
use super::schema::Schema;
use super::state_upgrade;
use super::traits::{
    ApplyRequest, ConfigureRequest, DataSource, PlanRequest, Provider, ReadRequest, Resource,
    StateResponse,
};

type RpcResult<T> = Result<Response<T>, Status>;
type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Serves a [`Provider`] over tfplugin6.
pub struct ProviderService {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    resources: HashMap<&'static str, (Arc<dyn Resource>, Schema)>,
    data_sources: HashMap<&'static str, (Arc<dyn DataSource>, Schema)>,
    stopper: Stopper,
}

impl ProviderService {
    /// Wraps a provider; schemas are computed once here.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name(), (r.clone(), r.schema())))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name(), (d.clone(), d.schema())))
            .collect();
        ProviderService {
            provider_schema: provider.schema(),
            provider,
            resources,
            data_sources,
            stopper: Stopper::default(),
        }
    }

    fn resource(&self, name: &str) -> Result<&(Arc<dyn Resource>, Schema), Diagnostics> {
        self.resources.get(name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("This provider has no resource type {name:?}."),
            )
            .into()
        })
    }

    fn data_source(&self, name: &str) -> Result<&(Arc<dyn DataSource>, Schema), Diagnostics> {
        self.data_sources.get(name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown data source type",
                format!("This provider has no data source type {name:?}."),
            )
            .into()
        })
    }

    fn capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: false,
            get_provider_schema_optional: true,
            move_resource_state: false,
            generate_resource_config: false,
        }
    }
}

/// Decodes a value Terraform sent: msgpack when present, else JSON, else null.
fn decode(dv: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else {
        return Ok(Value::Null);
    };
    let decoded = if !dv.msgpack.is_empty() {
        dynamic::from_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        dynamic::from_json(&dv.json, ty)
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|e| {
        Diagnostic::error(
            "Provider could not decode a value from Terraform",
            format!(
                "{e}. This is a bug in the provider or a Terraform version it does not support."
            ),
        )
        .into()
    })
}

fn encode(v: &Value, ty: &Type) -> Result<pb::DynamicValue, Diagnostics> {
    dynamic::to_msgpack(v, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| {
            Diagnostic::error(
                "Provider produced a value it cannot encode",
                format!("{e}. This is a bug in the provider."),
            )
            .into()
        })
}

fn unsupported(what: &str) -> Vec<pb::Diagnostic> {
    Diagnostics::from(Diagnostic::error(
        format!("{what} not supported"),
        format!("The ep provider offers no {what}."),
    ))
    .to_proto()
}

fn one_event<T: Send + 'static>(event: T) -> EventStream<T> {
    Box::pin(futures::stream::once(async move { Ok(event) }))
}

/// The state answer shared by apply and read: encode the new state, keeping
/// the provider's diagnostics even when encoding fails.
fn state_answer(out: StateResponse, ty: &Type) -> (Option<pb::DynamicValue>, Vec<u8>, Diagnostics) {
    let mut diags = out.diagnostics;
    match encode(&out.new_state, ty) {
        Ok(v) => (Some(v), out.private, diags),
        Err(e) => {
            diags.extend(e);
            (None, out.private, diags)
        }
    }
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> RpcResult<pb::get_metadata::Response> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(Self::capabilities()),
            resources: self
                .resources
                .keys()
                .map(|n| pb::get_metadata::ResourceMetadata {
                    type_name: (*n).to_owned(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|n| pb::get_metadata::DataSourceMetadata {
                    type_name: (*n).to_owned(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> RpcResult<pb::get_provider_schema::Response> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, (_, s))| ((*n).to_owned(), s.to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, (_, s))| ((*n).to_owned(), s.to_proto()))
                .collect(),
            server_capabilities: Some(Self::capabilities()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> RpcResult<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let diags = match decode(req.config.as_ref(), &self.provider_schema.value_type()) {
            Ok(config) => self.provider.validate(&config).await,
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> RpcResult<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let diags = match self.resource(&req.type_name) {
            Ok((r, schema)) => match decode(req.config.as_ref(), &schema.value_type()) {
                Ok(config) => r.validate(&config).await,
                Err(d) => d,
            },
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> RpcResult<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let diags = match self.data_source(&req.type_name) {
            Ok((d, schema)) => match decode(req.config.as_ref(), &schema.value_type()) {
                Ok(config) => d.validate(&config).await,
                Err(d) => d,
            },
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> RpcResult<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        let result = self.resource(&req.type_name).and_then(|(_, schema)| {
            let raw = req.raw_state.unwrap_or_default();
            let value = state_upgrade::upgrade(schema, req.version, &raw)?;
            encode(&value, &schema.value_type())
        });
        Ok(Response::new(match result {
            Ok(v) => pb::upgrade_resource_state::Response {
                upgraded_state: Some(v),
                diagnostics: Vec::new(),
            },
            Err(d) => pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: d.to_proto(),
            },
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> RpcResult<pb::get_resource_identity_schemas::Response> {
        Ok(Response::new(Default::default()))
    }

    async fn upgrade_resource_identity(
        &self,
        _req: Request<pb::upgrade_resource_identity::Request>,
    ) -> RpcResult<pb::upgrade_resource_identity::Response> {
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: unsupported("resource identity"),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> RpcResult<pb::configure_provider::Response> {
        let req = req.into_inner();
        let diags = match decode(req.config.as_ref(), &self.provider_schema.value_type()) {
            Ok(config) => {
                self.provider
                    .configure(ConfigureRequest {
                        config,
                        terraform_version: req.terraform_version,
                    })
                    .await
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> RpcResult<pb::read_resource::Response> {
        let req = req.into_inner();
        let (r, schema) = match self.resource(&req.type_name) {
            Ok(x) => x,
            Err(d) => {
                return Ok(Response::new(pb::read_resource::Response {
                    new_state: req.current_state,
                    diagnostics: d.to_proto(),
                    private: req.private,
                    ..Default::default()
                }))
            }
        };
        let ty = schema.value_type();
        let state = match decode(req.current_state.as_ref(), &ty) {
            Ok(s) => s,
            Err(d) => {
                return Ok(Response::new(pb::read_resource::Response {
                    new_state: req.current_state,
                    diagnostics: d.to_proto(),
                    private: req.private,
                    ..Default::default()
                }))
            }
        };
        let read = r.read(ReadRequest {
            state,
            private: req.private,
            stop: self.stopper.token(),
        });
        let (new_state, private, diags) = state_answer(read.await, &ty);
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics: diags.to_proto(),
            private,
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> RpcResult<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        let planned = async {
            let (r, schema) = self.resource(&req.type_name)?;
            let ty = schema.value_type();
            let prior_state = decode(req.prior_state.as_ref(), &ty)?;
            let proposed_new_state = decode(req.proposed_new_state.as_ref(), &ty)?;
            let config = decode(req.config.as_ref(), &ty)?;
            if proposed_new_state.is_null() {
                // Destroy: nothing to plan beyond the absence of the object.
                return Ok((
                    encode(&Value::Null, &ty)?,
                    Vec::new(),
                    Vec::new(),
                    Diagnostics::new(),
                ));
            }
            let out = r
                .plan(PlanRequest {
                    prior_state,
                    proposed_new_state,
                    config,
                    prior_private: req.prior_private,
                    stop: self.stopper.token(),
                })
                .await;
            let mut diags = out.diagnostics;
            let planned = match encode(&out.planned_state, &ty) {
                Ok(v) => v,
                Err(e) => {
                    diags.extend(e);
                    return Err(diags);
                }
            };
            let replace = out.requires_replace.iter().map(|p| p.to_proto()).collect();
            Ok((planned, replace, out.planned_private, diags))
        }
        .await;
        Ok(Response::new(match planned {
            Ok((planned, requires_replace, planned_private, diags)) => {
                pb::plan_resource_change::Response {
                    planned_state: Some(planned),
                    requires_replace,
                    planned_private,
                    diagnostics: diags.to_proto(),
                    ..Default::default()
                }
            }
            Err(d) => pb::plan_resource_change::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            },
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> RpcResult<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let (r, schema) = match self.resource(&req.type_name) {
            Ok(x) => x,
            Err(d) => {
                return Ok(Response::new(pb::apply_resource_change::Response {
                    new_state: req.prior_state,
                    diagnostics: d.to_proto(),
                    ..Default::default()
                }))
            }
        };
        let ty = schema.value_type();
        let decoded = (|| {
            Ok::<_, Diagnostics>(ApplyRequest {
                prior_state: decode(req.prior_state.as_ref(), &ty)?,
                planned_state: decode(req.planned_state.as_ref(), &ty)?,
                config: decode(req.config.as_ref(), &ty)?,
                planned_private: req.planned_private.clone(),
                stop: self.stopper.token(),
            })
        })();
        let apply = match decoded {
            Ok(a) => a,
            Err(d) => {
                // Keep whatever existed before: an unchanged prior state loses nothing.
                return Ok(Response::new(pb::apply_resource_change::Response {
                    new_state: req.prior_state,
                    diagnostics: d.to_proto(),
                    ..Default::default()
                }));
            }
        };
        let (new_state, private, diags) = state_answer(r.apply(apply).await, &ty);
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private,
            diagnostics: diags.to_proto(),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> RpcResult<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let imported = async {
            let (r, schema) = self.resource(&req.type_name)?;
            let state = r.import(&req.id, self.stopper.token()).await?;
            encode(&state, &schema.value_type())
        }
        .await;
        Ok(Response::new(match imported {
            Ok(state) => pb::import_resource_state::Response {
                imported_resources: vec![pb::import_resource_state::ImportedResource {
                    type_name: req.type_name,
                    state: Some(state),
                    private: Vec::new(),
                    identity: None,
                }],
                ..Default::default()
            },
            Err(d) => pb::import_resource_state::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            },
        }))
    }

    async fn move_resource_state(
        &self,
        _req: Request<pb::move_resource_state::Request>,
    ) -> RpcResult<pb::move_resource_state::Response> {
        Ok(Response::new(pb::move_resource_state::Response {
            diagnostics: unsupported("moving state between resource types"),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> RpcResult<pb::read_data_source::Response> {
        let req = req.into_inner();
        let read = async {
            let (d, schema) = self.data_source(&req.type_name)?;
            let ty = schema.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            let (state, mut diags) = d.read(config).await;
            if diags.has_errors() {
                return Err(diags);
            }
            match encode(&state, &ty) {
                Ok(v) => Ok((v, diags)),
                Err(e) => {
                    diags.extend(e);
                    Err(diags)
                }
            }
        }
        .await;
        Ok(Response::new(match read {
            Ok((state, diags)) => pb::read_data_source::Response {
                state: Some(state),
                diagnostics: diags.to_proto(),
                deferred: None,
            },
            Err(d) => pb::read_data_source::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            },
        }))
    }

    async fn generate_resource_config(
        &self,
        _req: Request<pb::generate_resource_config::Request>,
    ) -> RpcResult<pb::generate_resource_config::Response> {
        Ok(Response::new(pb::generate_resource_config::Response {
            config: None,
            diagnostics: unsupported("configuration generation"),
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> RpcResult<pb::validate_ephemeral_resource_config::Response> {
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: unsupported("ephemeral resources"),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        _req: Request<pb::open_ephemeral_resource::Request>,
    ) -> RpcResult<pb::open_ephemeral_resource::Response> {
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: unsupported("ephemeral resources"),
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        _req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> RpcResult<pb::renew_ephemeral_resource::Response> {
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: unsupported("ephemeral resources"),
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        _req: Request<pb::close_ephemeral_resource::Request>,
    ) -> RpcResult<pb::close_ephemeral_resource::Response> {
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: unsupported("ephemeral resources"),
        }))
    }

    type ListResourceStream = EventStream<pb::list_resource::Event>;

    async fn list_resource(
        &self,
        _req: Request<pb::list_resource::Request>,
    ) -> RpcResult<Self::ListResourceStream> {
        Ok(Response::new(one_event(pb::list_resource::Event {
            diagnostic: unsupported("list resources"),
            ..Default::default()
        })))
    }

    async fn validate_list_resource_config(
        &self,
        _req: Request<pb::validate_list_resource_config::Request>,
    ) -> RpcResult<pb::validate_list_resource_config::Response> {
        Ok(Response::new(pb::validate_list_resource_config::Response {
            diagnostics: unsupported("list resources"),
        }))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> RpcResult<pb::get_functions::Response> {
        Ok(Response::new(Default::default()))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> RpcResult<pb::call_function::Response> {
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!(
                    "The ep provider has no function {:?}.",
                    req.into_inner().name
                ),
                function_argument: None,
            }),
        }))
    }

    async fn validate_state_store_config(
        &self,
        _req: Request<pb::validate_state_store::Request>,
    ) -> RpcResult<pb::validate_state_store::Response> {
        Ok(Response::new(pb::validate_state_store::Response {
            diagnostics: unsupported("state stores"),
        }))
    }

    async fn configure_state_store(
        &self,
        _req: Request<pb::configure_state_store::Request>,
    ) -> RpcResult<pb::configure_state_store::Response> {
        Ok(Response::new(pb::configure_state_store::Response {
            diagnostics: unsupported("state stores"),
            capabilities: None,
        }))
    }

    type ReadStateBytesStream = EventStream<pb::read_state_bytes::Response>;

    async fn read_state_bytes(
        &self,
        _req: Request<pb::read_state_bytes::Request>,
    ) -> RpcResult<Self::ReadStateBytesStream> {
        Ok(Response::new(one_event(pb::read_state_bytes::Response {
            diagnostics: unsupported("state stores"),
            ..Default::default()
        })))
    }

    async fn write_state_bytes(
        &self,
        _req: Request<tonic::Streaming<pb::write_state_bytes::RequestChunk>>,
    ) -> RpcResult<pb::write_state_bytes::Response> {
        Ok(Response::new(pb::write_state_bytes::Response {
            diagnostics: unsupported("state stores"),
        }))
    }

    async fn lock_state(
        &self,
        _req: Request<pb::lock_state::Request>,
    ) -> RpcResult<pb::lock_state::Response> {
        Ok(Response::new(pb::lock_state::Response {
            lock_id: String::new(),
            diagnostics: unsupported("state stores"),
        }))
    }

    async fn unlock_state(
        &self,
        _req: Request<pb::unlock_state::Request>,
    ) -> RpcResult<pb::unlock_state::Response> {
        Ok(Response::new(pb::unlock_state::Response {
            diagnostics: unsupported("state stores"),
        }))
    }

    async fn get_states(
        &self,
        _req: Request<pb::get_states::Request>,
    ) -> RpcResult<pb::get_states::Response> {
        Ok(Response::new(pb::get_states::Response {
            state_id: Vec::new(),
            diagnostics: unsupported("state stores"),
        }))
    }

    async fn delete_state(
        &self,
        _req: Request<pb::delete_state::Request>,
    ) -> RpcResult<pb::delete_state::Response> {
        Ok(Response::new(pb::delete_state::Response {
            diagnostics: unsupported("state stores"),
        }))
    }

    async fn plan_action(
        &self,
        _req: Request<pb::plan_action::Request>,
    ) -> RpcResult<pb::plan_action::Response> {
        Ok(Response::new(pb::plan_action::Response {
            diagnostics: unsupported("actions"),
            deferred: None,
        }))
    }

    type InvokeActionStream = EventStream<pb::invoke_action::Event>;

    async fn invoke_action(
        &self,
        _req: Request<pb::invoke_action::Request>,
    ) -> RpcResult<Self::InvokeActionStream> {
        Ok(Response::new(one_event(pb::invoke_action::Event {
            r#type: Some(pb::invoke_action::event::Type::Completed(
                pb::invoke_action::event::Completed {
                    diagnostics: unsupported("actions"),
                },
            )),
        })))
    }

    async fn validate_action_config(
        &self,
        _req: Request<pb::validate_action_config::Request>,
    ) -> RpcResult<pb::validate_action_config::Response> {
        Ok(Response::new(pb::validate_action_config::Response {
            diagnostics: unsupported("actions"),
        }))
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> RpcResult<pb::stop_provider::Response> {
        tracing::info!("Terraform asked the provider to stop: cancelling running operations");
        self.stopper.stop();
        self.provider.stop();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Attribute, Block, ConfigureRequest};
    use pb::provider_server::Provider as Rpc;

    struct Empty;

    #[async_trait::async_trait]
    impl Provider for Empty {
        fn schema(&self) -> Schema {
            Schema::new(Block::new("").attr(Attribute::optional("region", Type::String)))
        }
        async fn configure(&self, _req: ConfigureRequest) -> Diagnostics {
            Diagnostics::new()
        }
        fn resources(&self) -> Vec<Arc<dyn Resource>> {
            Vec::new()
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
            Vec::new()
        }
    }

    fn service() -> ProviderService {
        ProviderService::new(Arc::new(Empty))
    }

    fn is_error(d: &[pb::Diagnostic]) -> bool {
        d.iter()
            .any(|d| d.severity == pb::diagnostic::Severity::Error as i32)
    }

    #[tokio::test]
    async fn schema_advertises_optional_schema_fetch() {
        let r = service()
            .get_provider_schema(Request::new(Default::default()))
            .await
            .map(Response::into_inner)
            .unwrap();
        assert!(r.server_capabilities.unwrap().get_provider_schema_optional);
        assert!(r.provider.is_some());
    }

    #[tokio::test]
    async fn unsupported_features_answer_with_diagnostics_not_status_errors() {
        let s = service();
        let eph = s
            .open_ephemeral_resource(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(is_error(&eph.diagnostics));
        let mv = s
            .move_resource_state(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(is_error(&mv.diagnostics));
        let lock = s
            .lock_state(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(is_error(&lock.diagnostics));
        let call = s
            .call_function(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(call.error.is_some());
        let mut events = s
            .list_resource(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        use futures::StreamExt;
        let first = events.next().await.unwrap().unwrap();
        assert!(is_error(&first.diagnostic));
    }

    #[tokio::test]
    async fn unknown_type_names_are_diagnostics() {
        let s = service();
        let r = s
            .read_data_source(Request::new(pb::read_data_source::Request {
                type_name: "ep_nope".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(is_error(&r.diagnostics));
        let p = s
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: "ep_nope".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(is_error(&p.diagnostics));
    }

    #[tokio::test]
    async fn garbage_values_are_diagnostics() {
        let r = service()
            .validate_provider_config(Request::new(pb::validate_provider_config::Request {
                config: Some(pb::DynamicValue {
                    msgpack: vec![0xc1, 0xff, 0x00],
                    json: Vec::new(),
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(is_error(&r.diagnostics));
    }
}
