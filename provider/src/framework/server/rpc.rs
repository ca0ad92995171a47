//! The tfplugin6 RPCs, one thin adapter each: decode the request, call the
//! [`Provider`]/[`Resource`]/[`DataSource`] traits, encode the answer.

use ep_tfproto::tfplugin6 as pb;
use tonic::{Request, Response};

use super::{
    decode, encode, one_event, serve_rpcs, state_answer, unsupported, EventStream, ProviderService,
    RpcResult,
};
use crate::framework::diagnostics::{Diagnostic, Diagnostics};
use crate::framework::dynamic::Value;
use crate::framework::schema::Schema;
use crate::framework::state_upgrade;
use crate::framework::traits::{ApplyRequest, ConfigureRequest, PlanRequest, ReadRequest};

serve_rpcs! {
    refuse {
    upgrade_resource_identity(upgrade_resource_identity) => "resource identity",
    move_resource_state(move_resource_state) => "moving state between resource types",
    generate_resource_config(generate_resource_config) => "configuration generation",
    validate_ephemeral_resource_config(validate_ephemeral_resource_config) => "ephemeral resources",
    open_ephemeral_resource(open_ephemeral_resource) => "ephemeral resources",
    renew_ephemeral_resource(renew_ephemeral_resource) => "ephemeral resources",
    close_ephemeral_resource(close_ephemeral_resource) => "ephemeral resources",
    validate_list_resource_config(validate_list_resource_config) => "list resources",
    validate_state_store_config(validate_state_store) => "state stores",
    configure_state_store(configure_state_store) => "state stores",
    lock_state(lock_state) => "state stores",
    unlock_state(unlock_state) => "state stores",
    get_states(get_states) => "state stores",
    delete_state(delete_state) => "state stores",
    plan_action(plan_action) => "actions",
    validate_action_config(validate_action_config) => "actions",
    }
    serve {
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
        let diags = validate_decoded(&self.provider_schema, req.config.as_ref(), async |c| {
            self.provider.validate(c).await
        })
        .await;
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> RpcResult<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let _timed = Timed::start("ValidateResourceConfig", &req.type_name);
        // Terraform before 1.11 neither sends nor understands write-only values.
        let write_only_allowed = req
            .client_capabilities
            .as_ref()
            .is_some_and(|c| c.write_only_attributes_allowed);
        let diags = match self.resource(&req.type_name) {
            Ok((r, schema)) => validate_decoded(schema, req.config.as_ref(), async |c| {
                let mut d = r.validate(c).await;
                if !write_only_allowed {
                    for path in schema.block.write_only_set(c, None) {
                        d.push(
                            Diagnostic::error(
                                "Write-only attribute needs Terraform 1.11 or later",
                                "This Terraform cannot keep a value out of the state; \
                                 upgrade Terraform or use the attribute's stored counterpart.",
                            )
                            .at(path),
                        );
                    }
                }
                d
            })
            .await,
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
            Ok((d, schema)) => validate_decoded(schema, req.config.as_ref(), async |c| {
                d.validate(c).await
            })
            .await,
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
        let _timed = Timed::start("UpgradeResourceState", &req.type_name);
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
        let _timed = Timed::start("ReadResource", &req.type_name);
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
        let mut read = r
            .read(ReadRequest {
                state,
                private: req.private,
                stop: self.stopper.token(),
            })
            .await;
        schema.block.strip_write_only(&mut read.new_state);
        let (new_state, private, diags) = state_answer(read, &ty);
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
        let _timed = Timed::start("PlanResourceChange", &req.type_name);
        let planned = async {
            let (r, schema) = self.resource(&req.type_name)?;
            let ty = schema.value_type();
            let prior_state = decode(req.prior_state.as_ref(), &ty)?;
            let mut proposed_new_state = decode(req.proposed_new_state.as_ref(), &ty)?;
            // A write-only value is never a change: prior state never holds one.
            schema.block.strip_write_only(&mut proposed_new_state);
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
            let mut planned_state = out.planned_state;
            schema.block.strip_write_only(&mut planned_state);
            let planned = match encode(&planned_state, &ty) {
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
        let _timed = Timed::start("ApplyResourceChange", &req.type_name);
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
        let mut applied = r.apply(apply).await;
        schema.block.strip_write_only(&mut applied.new_state);
        let (new_state, private, diags) = state_answer(applied, &ty);
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
        let _timed = Timed::start("ImportResourceState", &req.type_name);
        let imported = async {
            let (r, schema) = self.resource(&req.type_name)?;
            let mut imported = r.import(&req.id, self.stopper.token()).await?;
            schema.block.strip_write_only(&mut imported.state);
            Ok::<_, Diagnostics>((
                encode(&imported.state, &schema.value_type())?,
                imported.private,
            ))
        }
        .await;
        Ok(Response::new(match imported {
            Ok((state, private)) => pb::import_resource_state::Response {
                imported_resources: vec![pb::import_resource_state::ImportedResource {
                    type_name: req.type_name,
                    state: Some(state),
                    private,
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

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> RpcResult<pb::read_data_source::Response> {
        let req = req.into_inner();
        let _timed = Timed::start("ReadDataSource", &req.type_name);
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
}

/// Decodes a configuration against its schema and validates it; a configuration that does not
/// decode is reported as it is, without calling `validate`.
async fn validate_decoded(
    schema: &Schema,
    config: Option<&pb::DynamicValue>,
    validate: impl AsyncFnOnce(&Value) -> Diagnostics,
) -> Diagnostics {
    match decode(config, &schema.value_type()) {
        Ok(config) => validate(&config).await,
        Err(d) => d,
    }
}

/// Logs at debug level how long an RPC on one type took (Terraform shows it
/// with `TF_LOG=debug`): where a plan's time goes, per call.
struct Timed {
    rpc: &'static str,
    type_name: String,
    started: std::time::Instant,
}

impl Timed {
    fn start(rpc: &'static str, type_name: &str) -> Self {
        Timed {
            rpc,
            type_name: type_name.to_owned(),
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        tracing::debug!(
            rpc = self.rpc,
            type_name = %self.type_name,
            ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "rpc finished"
        );
    }
}
