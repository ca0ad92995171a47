//! go-plugin process plumbing: everything between "Terraform starts the
//! binary" and "the tfplugin6 `Provider` service answers RPCs".
//!
//! What Terraform's plugin client (HashiCorp go-plugin) relies on, and where
//! it is handled:
//!
//! * the magic cookie `TF_PLUGIN_MAGIC_COOKIE` (without it we print a human
//!   message and exit 1) and protocol negotiation through
//!   `PLUGIN_PROTOCOL_VERSIONS` (we speak 6 only) — [`handshake`];
//! * a unix socket in `PLUGIN_UNIX_SOCKET_DIR` or the temp dir, TCP on
//!   127.0.0.1 as a fallback — [`listener`];
//! * AutoMTLS: when `PLUGIN_CLIENT_CERT` is set (and `TF_DISABLE_PLUGIN_TLS`
//!   is not), a fresh server certificate, a required client certificate that
//!   must be the one given, ALPN `h2` — [`tls`];
//! * exactly one stdout line, `1|6|unix|<path>|grpc|<cert>`, and nothing else
//!   on stdout ever (logs go to stderr, see [`crate::logging`]);
//! * beside the provider: gRPC health with service `plugin` SERVING,
//!   `plugin.GRPCController/Shutdown` (we exit at once: Terraform kills us
//!   2 s after asking), `plugin.GRPCStdio` and `plugin.GRPCBroker` — [`services`];
//! * 256 MiB message limits on the provider service;
//! * SIGINT is ignored, as go-plugin does (Terraform forwards Ctrl-C to the
//!   whole process group and then asks providers to stop through the
//!   protocol); SIGTERM stops the server cleanly.
//!
//! `--debug` serves without cookie or TLS and prints a `TF_REATTACH_PROVIDERS`
//! value instead of the handshake line; Terraform then attaches to the running
//! process and never stops it, so Ctrl-C or SIGTERM does.

pub mod handshake;
pub mod listener;
pub mod services;
pub mod shutdown;
pub mod tls;

#[cfg(test)]
mod unimplemented;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ep_tfproto::go_plugin::grpc_broker_server::GrpcBrokerServer;
use ep_tfproto::go_plugin::grpc_controller_server::GrpcControllerServer;
use ep_tfproto::go_plugin::grpc_stdio_server::GrpcStdioServer;
use ep_tfproto::tfplugin6::provider_server::{Provider, ProviderServer};
use tonic::transport::Server;

use self::handshake::PluginAddr;
use self::shutdown::ShutdownSignal;

/// This provider's address in Terraform configurations and reattach JSON.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/ep-platform/ep";

/// Largest gRPC message accepted or sent by the provider service (Terraform's
/// own limit).
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// The health-check service name go-plugin's client pings.
pub const HEALTH_SERVICE_NAME: &str = "plugin";

/// Env var with the client's AutoMTLS certificate (PEM).
pub const ENV_CLIENT_CERT: &str = "PLUGIN_CLIENT_CERT";
/// Env var listing the protocol versions the client speaks.
pub const ENV_PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// Env var that turns AutoMTLS off when non-empty (as in Terraform).
pub const ENV_DISABLE_TLS: &str = "TF_DISABLE_PLUGIN_TLS";
/// Env var set by clients that want gRPC broker multiplexing.
pub const ENV_MULTIPLEX_GRPC: &str = "PLUGIN_MULTIPLEX_GRPC";

/// How long in-flight responses (the Shutdown reply above all) may take to
/// drain once shutdown has been requested, before we exit anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// How long the runtime waits for leftover tasks when the process exits.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(100);

/// Errors that stop the plugin from serving.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The client speaks no protocol version we do.
    #[error(
        "Terraform offered plugin protocol versions {offered:?} (PLUGIN_PROTOCOL_VERSIONS), \
         but this provider speaks only protocol version 6; use Terraform 1.0 or newer"
    )]
    UnsupportedProtocol {
        /// The client's list, verbatim.
        offered: String,
    },
    /// Neither a unix socket nor a TCP port could be bound.
    #[error("cannot listen for Terraform: unix socket: {unix}; TCP on 127.0.0.1: {tcp}")]
    Listen {
        /// Why the unix socket failed.
        unix: std::io::Error,
        /// Why the TCP fallback failed.
        tcp: std::io::Error,
    },
    /// `PLUGIN_UNIX_SOCKET_GROUP` could not be applied.
    #[error("cannot give the plugin socket to group {group:?}: {source}")]
    SocketGroup {
        /// The group as given.
        group: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `PLUGIN_CLIENT_CERT` is not a usable PEM certificate.
    #[error("invalid client certificate in PLUGIN_CLIENT_CERT: {0}")]
    ClientCert(String),
    /// Our own certificate could not be generated.
    #[error("cannot generate the plugin's TLS certificate: {0}")]
    CertGen(rcgen::Error),
    /// The TLS configuration was rejected.
    #[error("cannot configure TLS: {0}")]
    Tls(rustls::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The handshake line could not be written.
    #[error("cannot write the handshake to stdout: {0}")]
    Stdout(std::io::Error),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Command line of the plugin binary.
#[derive(Debug, Parser)]
#[command(
    name = "terraform-provider-ep",
    version,
    about = "Terraform provider for Elastic Path Commerce on AWS (a Terraform plugin).",
    long_about = "Terraform provider for Elastic Path Commerce on AWS.\n\n\
        This binary is a Terraform plugin: Terraform starts it by itself and talks to it over \
        gRPC. It is not meant to be run directly; install it for Terraform (registry, \
        filesystem mirror or dev_overrides) and use it through `terraform init/plan/apply`.\n\n\
        With --debug it runs on its own and prints a TF_REATTACH_PROVIDERS value; export that \
        value in the shell that runs Terraform to attach to this process (useful with a \
        debugger or to keep one provider process across commands)."
)]
struct Cli {
    /// Serve without Terraform (no handshake cookie, no TLS) and print a
    /// TF_REATTACH_PROVIDERS value; runs until Ctrl-C or SIGTERM.
    #[arg(long)]
    debug: bool,
}

/// How the process serves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Started by Terraform: handshake line on stdout, AutoMTLS if asked.
    Managed {
        /// The client's PEM certificate when AutoMTLS is on.
        client_cert: Option<String>,
        /// Whether the client announced gRPC broker multiplexing.
        multiplex: bool,
    },
    /// `--debug`: reattach JSON on stdout, plaintext, until a signal.
    Debug,
}

/// The environment variables the plugin reads, captured once.
#[derive(Debug, Default, Clone)]
struct PluginEnv {
    cookie: Option<String>,
    protocol_versions: Option<String>,
    client_cert: Option<String>,
    disable_tls: bool,
    multiplex: bool,
    socket_dir: Option<PathBuf>,
    socket_group: Option<String>,
    port_range: Option<(u16, u16)>,
}

impl PluginEnv {
    fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            cookie: var(handshake::MAGIC_COOKIE_KEY),
            protocol_versions: var(ENV_PROTOCOL_VERSIONS),
            client_cert: var(ENV_CLIENT_CERT),
            disable_tls: var(ENV_DISABLE_TLS).is_some(),
            multiplex: var(ENV_MULTIPLEX_GRPC).is_some(),
            socket_dir: std::env::var_os(listener::ENV_SOCKET_DIR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            socket_group: var(listener::ENV_SOCKET_GROUP),
            port_range: listener::parse_port_range(
                var(listener::ENV_MIN_PORT).as_deref(),
                var(listener::ENV_MAX_PORT).as_deref(),
            ),
        }
    }
}

/// What to do after reading argv and the environment.
#[derive(Debug, PartialEq, Eq)]
enum Startup {
    /// Serve in this mode.
    Serve(Mode),
    /// Print this to stderr and exit 1 (no cookie: run by a person).
    NotACommand,
}

/// Decides the mode from `--debug` and the environment.
fn startup(debug: bool, env: &PluginEnv) -> Result<Startup, PluginError> {
    if debug {
        return Ok(Startup::Serve(Mode::Debug));
    }
    if !handshake::cookie_matches(env.cookie.as_deref()) {
        return Ok(Startup::NotACommand);
    }
    handshake::negotiate_protocol(env.protocol_versions.as_deref())?;
    let client_cert = if env.disable_tls {
        None
    } else {
        env.client_cert.clone()
    };
    Ok(Startup::Serve(Mode::Managed {
        client_cert,
        multiplex: env.multiplex,
    }))
}

/// Runs the plugin process: parses argv, checks the handshake cookie, installs logging, serves until shutdown.
///
/// `make_provider` is called once, inside the async runtime, after the
/// handshake checks passed. Returns the process exit code: 0 after a
/// requested shutdown (or SIGTERM), 1 when run without Terraform or when
/// serving fails, clap's code for bad arguments.
pub fn run<P, F>(make_provider: F) -> ExitCode
where
    F: FnOnce() -> P,
    P: Provider,
{
    run_with_args(std::env::args_os(), make_provider)
}

/// [`run`] with an explicit argv (the first item is the program name).
pub fn run_with_args<P, F, I>(args: I, make_provider: F) -> ExitCode
where
    F: FnOnce() -> P,
    P: Provider,
    I: IntoIterator<Item = OsString>,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    };
    let env = PluginEnv::from_process();
    let mode = match startup(cli.debug, &env) {
        Ok(Startup::Serve(mode)) => mode,
        Ok(Startup::NotACommand) => {
            eprint!("{}", handshake::NOT_A_COMMAND_MESSAGE);
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    crate::logging::init();

    // An apply is one deep future (waits around AWS SDK calls around the
    // resource's steps); unoptimised builds of the SDK overflow tokio's 2 MiB
    // default. The stack is reserved, not committed: untouched pages cost nothing.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("terraform-provider-ep")
        .thread_stack_size(16 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {}", PluginError::Runtime(e));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = ShutdownSignal::new();
        // Signals first: a Ctrl-C right after the handshake must not kill us.
        spawn_signal_watcher(mode == Mode::Debug, shutdown.clone());
        serve(mode, env, shutdown, make_provider).await
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin stopped with an error");
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Binds, announces and serves until shutdown; removes the socket on return.
async fn serve<P, F>(
    mode: Mode,
    env: PluginEnv,
    shutdown: ShutdownSignal,
    make_provider: F,
) -> Result<(), PluginError>
where
    F: FnOnce() -> P,
    P: Provider,
{
    let (tls, multiplex) = match &mode {
        Mode::Managed {
            client_cert: Some(pem),
            multiplex,
        } => {
            tracing::debug!("configuring server automatic mTLS");
            (Some(tls::ServerTls::new(pem)?), *multiplex)
        }
        Mode::Managed {
            client_cert: None,
            multiplex,
        } => (None, *multiplex),
        Mode::Debug => (None, false),
    };

    let bound = listener::bind(
        env.socket_dir.clone(),
        env.socket_group.as_deref(),
        env.port_range,
    )?;
    // Dropped at the end of this function, removing the socket file.
    let socket_file = bound.socket_file;
    let addr = bound.addr;
    tracing::debug!(network = addr.network(), address = %addr.address(), "plugin address");

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(HEALTH_SERVICE_NAME, tonic_health::ServingStatus::Serving)
        .await;

    let provider = ProviderServer::new(make_provider())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let router = Server::builder()
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(services::Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcStdioServer::new(services::Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcBrokerServer::new(services::Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(provider);

    let incoming = listener::incoming(
        bound.listener,
        tls.as_ref().map(|t| t.config.clone()),
        shutdown.clone(),
    );

    announce(&mode, &addr, tls.as_ref(), multiplex)?;

    let server = router.serve_with_incoming_shutdown(incoming, {
        let shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    });
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result,
        () = shutdown.wait() => {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!("connections still open after the shutdown grace period; exiting anyway");
                    Ok(())
                }
            }
        }
    };
    tracing::debug!("plugin server stopped");
    drop(socket_file);
    result.map_err(PluginError::from)
}

/// Writes the handshake line (managed) or the reattach message (debug) to
/// stdout and flushes it.
fn announce(
    mode: &Mode,
    addr: &PluginAddr,
    tls: Option<&tls::ServerTls>,
    multiplex: bool,
) -> Result<(), PluginError> {
    let text = match mode {
        Mode::Managed { .. } => {
            let cert = tls.map(tls::ServerTls::cert_field);
            handshake::handshake_line(
                handshake::PROTOCOL_VERSION,
                addr,
                cert.as_deref(),
                multiplex,
            )
        }
        Mode::Debug => {
            let json = handshake::reattach_json(PROVIDER_ADDRESS, std::process::id(), addr);
            handshake::debug_message(&json)
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(PluginError::Stdout)
}

/// SIGTERM fires `shutdown`; SIGINT does too in debug mode and is otherwise
/// ignored (counted at trace level), like go-plugin's servers.
fn spawn_signal_watcher(debug: bool, shutdown: ShutdownSignal) {
    use tokio::signal::unix::{signal, SignalKind};
    // Registering replaces the default "terminate" action, so register
    // synchronously, before anything is announced.
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    let (mut term, mut int) = match (term, int) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot install signal handlers");
            return;
        }
    };
    tokio::spawn(async move {
        let mut interrupts = 0u64;
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::debug!("plugin received SIGTERM, stopping");
                    shutdown.trigger();
                    return;
                }
                _ = int.recv() => {
                    if debug {
                        tracing::debug!("plugin received interrupt signal, stopping");
                        shutdown.trigger();
                        return;
                    }
                    interrupts += 1;
                    tracing::trace!(count = interrupts, "plugin received interrupt signal, ignoring");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_cookie() -> PluginEnv {
        PluginEnv {
            cookie: Some(handshake::MAGIC_COOKIE_VALUE.to_owned()),
            protocol_versions: Some("5,6".into()),
            ..PluginEnv::default()
        }
    }

    #[test]
    fn no_cookie_is_not_a_command() {
        let started = startup(false, &PluginEnv::default());
        assert_eq!(started.ok(), Some(Startup::NotACommand));
    }

    #[test]
    fn debug_needs_no_cookie() {
        let started = startup(true, &PluginEnv::default());
        assert_eq!(started.ok(), Some(Startup::Serve(Mode::Debug)));
    }

    #[test]
    fn wrong_protocol_is_an_error() {
        let env = PluginEnv {
            protocol_versions: Some("4,5".into()),
            ..env_with_cookie()
        };
        assert!(matches!(
            startup(false, &env),
            Err(PluginError::UnsupportedProtocol { .. })
        ));
    }

    #[test]
    fn tls_follows_client_cert_unless_disabled() {
        let env = PluginEnv {
            client_cert: Some("PEM".into()),
            ..env_with_cookie()
        };
        assert_eq!(
            startup(false, &env).ok(),
            Some(Startup::Serve(Mode::Managed {
                client_cert: Some("PEM".into()),
                multiplex: false
            }))
        );
        let env = PluginEnv {
            disable_tls: true,
            ..env
        };
        assert_eq!(
            startup(false, &env).ok(),
            Some(Startup::Serve(Mode::Managed {
                client_cert: None,
                multiplex: false
            }))
        );
    }

    #[test]
    fn help_and_version_exit_zero() {
        let code = run_with_args(["terraform-provider-ep".into(), "--version".into()], || {
            unimplemented::UnimplementedProvider
        });
        assert_eq!(code, ExitCode::SUCCESS);
    }

    /// Serves plaintext in-process and checks health, the stdio stream and
    /// Shutdown end to end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_answers_health_and_shuts_down() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let env = PluginEnv {
            socket_dir: Some(dir.path().to_owned()),
            ..PluginEnv::default()
        };
        let mode = Mode::Managed {
            client_cert: None,
            multiplex: false,
        };
        // The handshake goes to the test's stdout; find the socket instead.
        let server = tokio::spawn(serve(mode, env, ShutdownSignal::new(), || {
            unimplemented::UnimplementedProvider
        }));
        let socket = loop {
            let found = std::fs::read_dir(dir.path())
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.path());
            if let Some(path) = found {
                break path;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let channel = tonic::transport::Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    tokio::net::UnixStream::connect(socket)
                        .await
                        .map(hyper_util::rt::TokioIo::new)
                }
            }))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: HEALTH_SERVICE_NAME.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            reply.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        let mut stdio =
            ep_tfproto::go_plugin::grpc_stdio_client::GrpcStdioClient::new(channel.clone());
        let mut stream = stdio
            .stream_stdio(())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_inner();
        let mut provider =
            ep_tfproto::tfplugin6::provider_client::ProviderClient::new(channel.clone());
        let status = provider
            .get_metadata(ep_tfproto::tfplugin6::get_metadata::Request {})
            .await
            .err()
            .map(|s| s.code());
        assert_eq!(status, Some(tonic::Code::Unimplemented));

        let mut controller =
            ep_tfproto::go_plugin::grpc_controller_client::GrpcControllerClient::new(channel);
        let started = std::time::Instant::now();
        controller
            .shutdown(ep_tfproto::go_plugin::Empty {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // The stdio stream ends cleanly at shutdown.
        let next = stream.message().await;
        assert!(matches!(next, Ok(None)), "{next:?}");
        drop(controller);
        drop(health);
        drop(provider);
        drop(stdio);
        let result = tokio::time::timeout(Duration::from_secs(1), server).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            std::fs::read_dir(dir.path()).map(|d| d.count()).ok(),
            Some(0)
        );
    }
}
