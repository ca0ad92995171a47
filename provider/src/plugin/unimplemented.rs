//! A provider that answers every RPC with `Unimplemented`: enough to test the
//! go-plugin plumbing without the real provider.

use std::pin::Pin;

use ep_tfproto::tfplugin6::{self as pb, provider_server::Provider};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

/// A stream that never yields (never polled: the RPCs fail first).
type Never<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Answers every tfplugin6 RPC with `Unimplemented`.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnimplementedProvider;

macro_rules! unimplemented_provider {
    ($($method:ident => $module:ident),* $(,)?) => {
        #[tonic::async_trait]
        impl Provider for UnimplementedProvider {
            $(
                async fn $method(
                    &self,
                    _request: Request<pb::$module::Request>,
                ) -> Result<Response<pb::$module::Response>, Status> {
                    Err(Status::unimplemented(stringify!($method)))
                }
            )*

            type ListResourceStream = Never<pb::list_resource::Event>;
            async fn list_resource(
                &self,
                _request: Request<pb::list_resource::Request>,
            ) -> Result<Response<Self::ListResourceStream>, Status> {
                Err(Status::unimplemented("list_resource"))
            }

            type ReadStateBytesStream = Never<pb::read_state_bytes::Response>;
            async fn read_state_bytes(
                &self,
                _request: Request<pb::read_state_bytes::Request>,
            ) -> Result<Response<Self::ReadStateBytesStream>, Status> {
                Err(Status::unimplemented("read_state_bytes"))
            }

            async fn write_state_bytes(
                &self,
                _request: Request<Streaming<pb::write_state_bytes::RequestChunk>>,
            ) -> Result<Response<pb::write_state_bytes::Response>, Status> {
                Err(Status::unimplemented("write_state_bytes"))
            }

            type InvokeActionStream = Never<pb::invoke_action::Event>;
            async fn invoke_action(
                &self,
                _request: Request<pb::invoke_action::Request>,
            ) -> Result<Response<Self::InvokeActionStream>, Status> {
                Err(Status::unimplemented("invoke_action"))
            }
        }
    };
}

unimplemented_provider! {
        get_metadata => get_metadata,
        get_provider_schema => get_provider_schema,
        validate_provider_config => validate_provider_config,
        validate_resource_config => validate_resource_config,
        validate_data_resource_config => validate_data_resource_config,
        upgrade_resource_state => upgrade_resource_state,
        get_resource_identity_schemas => get_resource_identity_schemas,
        upgrade_resource_identity => upgrade_resource_identity,
        configure_provider => configure_provider,
        read_resource => read_resource,
        plan_resource_change => plan_resource_change,
        apply_resource_change => apply_resource_change,
        import_resource_state => import_resource_state,
        move_resource_state => move_resource_state,
        read_data_source => read_data_source,
        generate_resource_config => generate_resource_config,
        validate_ephemeral_resource_config => validate_ephemeral_resource_config,
        open_ephemeral_resource => open_ephemeral_resource,
        renew_ephemeral_resource => renew_ephemeral_resource,
        close_ephemeral_resource => close_ephemeral_resource,
        validate_list_resource_config => validate_list_resource_config,
        get_functions => get_functions,
        call_function => call_function,
        validate_state_store_config => validate_state_store,
        configure_state_store => configure_state_store,
        lock_state => lock_state,
        unlock_state => unlock_state,
        get_states => get_states,
        delete_state => delete_state,
        plan_action => plan_action,
        validate_action_config => validate_action_config,
        stop_provider => stop_provider,
}
