//! go-plugin's side services: controller, stdio and broker.

use std::pin::Pin;

use ep_tfproto::go_plugin::grpc_broker_server::GrpcBroker;
use ep_tfproto::go_plugin::grpc_controller_server::GrpcController;
use ep_tfproto::go_plugin::grpc_stdio_server::GrpcStdio;
use ep_tfproto::go_plugin::{ConnInfo, Empty, StdioData};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::shutdown::ShutdownSignal;

/// A response stream that sends nothing and ends at shutdown.
pub type IdleStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn idle_until_shutdown<T: Send + 'static>(shutdown: ShutdownSignal) -> IdleStream<T> {
    Box::pin(
        futures::stream::once(async move { shutdown.wait().await }).filter_map(|()| async { None }),
    )
}

/// `plugin.GRPCController`: Terraform's request to exit.
#[derive(Debug, Clone)]
pub struct Controller {
    /// Fired when Terraform asks us to shut down.
    pub shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("plugin shutdown requested by the client");
        // The server stops gracefully, so this response is still delivered.
        self.shutdown.trigger();
        Ok(Response::new(Empty {}))
    }
}

/// `plugin.GRPCStdio`: our logs go straight to stderr, so the stream stays
/// open and silent until shutdown (go-plugin's client then sees EOF).
#[derive(Debug, Clone)]
pub struct Stdio {
    /// Ends the stream.
    pub shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = IdleStream<StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(idle_until_shutdown(self.shutdown.clone())))
    }
}

/// `plugin.GRPCBroker`: providers open no extra connections; accept the
/// stream, drain what the client sends, and stay idle until shutdown.
#[derive(Debug, Clone)]
pub struct Broker {
    /// Ends the stream.
    pub shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = IdleStream<ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.wait() => break,
                    message = inbound.next() => match message {
                        Some(Ok(info)) => tracing::debug!(
                            service_id = info.service_id,
                            "ignoring a gRPC broker message: this provider opens no extra connections"
                        ),
                        Some(Err(_)) | None => break,
                    },
                }
            }
        });
        Ok(Response::new(idle_until_shutdown(self.shutdown.clone())))
    }
}
