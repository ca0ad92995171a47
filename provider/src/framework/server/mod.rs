//! The tfplugin6 `Provider` gRPC service ([`rpc`] holds the RPCs). RPCs for features this provider does not
//! offer answer with a diagnostic, never with a gRPC error: Terraform treats
//! transport errors as a crashed plugin.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use ep_tfproto::tfplugin6 as pb;
use futures::Stream;
use tonic::{Response, Status};

use super::diagnostics::{Diagnostic, Diagnostics};
use super::dynamic::{self, Type, Value};
use super::operation::Stopper;
use super::schema::Schema;
use super::traits::{DataSource, Provider, Resource, StateResponse};

mod rpc;

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

/// Implements the tfplugin6 `Provider` trait for [`ProviderService`]: the
/// `serve` methods as written, and each `refuse` RPC (whose response has a
/// `diagnostics` field) answering that the provider does not offer the
/// feature. One macro wraps the whole impl because `async_trait` must see
/// every method.
macro_rules! serve_rpcs {
    (
        refuse { $($method:ident($module:ident) => $what:literal,)* }
        serve { $($served:tt)* }
    ) => {
        #[tonic::async_trait]
        impl pb::provider_server::Provider for ProviderService {
            $(
                async fn $method(
                    &self,
                    _req: Request<pb::$module::Request>,
                ) -> RpcResult<pb::$module::Response> {
                    let mut answer = pb::$module::Response::default();
                    answer.diagnostics = unsupported($what);
                    Ok(Response::new(answer))
                }
            )*

            $($served)*
        }
    };
}
use serve_rpcs;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Attribute, Block, ConfigureRequest};
    use pb::provider_server::Provider as Rpc;
    use tonic::Request;

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
