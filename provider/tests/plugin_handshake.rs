//! The go-plugin handshake as Terraform's client performs it, against the
//! real provider binary: cookie and version checks, the stdout line, AutoMTLS
//! with a go-plugin-style client certificate, health, Shutdown, `--debug`.
//!
//! `EP_PROVIDER_BIN` may point the tests at another build of the binary (for
//! example a release build); by default they run the one Cargo just built.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const PROVIDER_ADDRESS: &str = "registry.terraform.io/ep-platform/ep";

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn binary() -> PathBuf {
    std::env::var_os("EP_PROVIDER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-ep")))
}

/// A command for the plugin with every variable the handshake reads removed.
fn command(socket_dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    for var in [
        "TF_PLUGIN_MAGIC_COOKIE",
        "PLUGIN_PROTOCOL_VERSIONS",
        "PLUGIN_CLIENT_CERT",
        "PLUGIN_MIN_PORT",
        "PLUGIN_MAX_PORT",
        "PLUGIN_UNIX_SOCKET_GROUP",
        "PLUGIN_MULTIPLEX_GRPC",
        "TF_DISABLE_PLUGIN_TLS",
        "TF_REATTACH_PROVIDERS",
        "TF_LOG",
        "TF_LOG_PROVIDER",
        "TF_LOG_PROVIDER_EP",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PLUGIN_UNIX_SOCKET_DIR", socket_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running plugin with its stdout lines and stderr collected by threads.
struct Plugin {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Plugin {
    fn spawn(mut cmd: Command) -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = cmd.spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut err = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Ok(Self {
            child,
            stdout: rx,
            stderr: Some(stderr),
        })
    }

    fn next_line(&self, within: Duration) -> Result<String, Box<dyn std::error::Error>> {
        Ok(self.stdout.recv_timeout(within)?)
    }

    fn wait_exit(&mut self, within: Duration) -> Result<ExitStatus, Box<dyn std::error::Error>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("plugin still running after {within:?}").into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stderr, once the process has exited.
    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// Stdout lines left after the ones already read (process has exited).
    fn remaining_stdout(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        lines
    }

    fn signal(&self, name: &str) -> TestResult {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()?;
        assert!(status.success());
        Ok(())
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The six fields of the handshake line.
struct Handshake {
    network: String,
    address: String,
    cert_b64: String,
}

fn parse_handshake(line: &str) -> Result<Handshake, Box<dyn std::error::Error>> {
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.len(), 6, "handshake line: {line:?}");
    assert_eq!(parts[0], "1", "core protocol version");
    assert_eq!(parts[1], "6", "plugin protocol version");
    assert_eq!(parts[4], "grpc");
    Ok(Handshake {
        network: parts[2].to_owned(),
        address: parts[3].to_owned(),
        cert_b64: parts[5].to_owned(),
    })
}

/// A client certificate made the way go-plugin's `generateCert` makes it:
/// self-signed ECDSA P-521, CA bit set, CN/DNS localhost.
fn go_plugin_client_cert(
) -> Result<(String, CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    dn.push(rcgen::DnType::OrganizationName, "HashiCorp");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyAgreement,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.pem(), cert.der().clone(), key_der))
}

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A plaintext gRPC channel over the unix socket.
async fn plain_channel(path: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
}

/// A TLS gRPC channel over the unix socket that trusts exactly `server_cert`
/// for `localhost` (as go-plugin's client does) and presents `client`.
async fn tls_channel(
    path: PathBuf,
    server_cert: CertificateDer<'static>,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<Channel, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_cert)?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            let connector = connector.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
                let tls = connector.connect(name, stream).await?;
                // grpc-go refuses servers that do not negotiate h2.
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(std::io::Error::other("server did not negotiate ALPN h2"));
                }
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await?;
    Ok(channel)
}

async fn health_check(channel: Channel) -> Result<i32, tonic::Status> {
    let mut client = HealthClient::new(channel);
    let reply = client
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    Ok(reply.into_inner().status)
}

async fn shutdown(channel: Channel) -> Result<(), tonic::Status> {
    let mut client =
        ep_tfproto::go_plugin::grpc_controller_client::GrpcControllerClient::new(channel);
    client.shutdown(ep_tfproto::go_plugin::Empty {}).await?;
    Ok(())
}

fn assert_json_log_lines(stderr: &str) {
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line:?}"));
        for key in ["@level", "@message", "@timestamp", "@module"] {
            assert!(value.get(key).is_some(), "{key} missing in {line:?}");
        }
    }
}

#[test]
fn without_cookie_exits_1_with_a_message_for_humans() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut plugin = Plugin::spawn(command(dir.path()))?;
    let status = plugin.wait_exit(Duration::from_secs(2))?;
    assert_eq!(status.code(), Some(1));
    let stderr = plugin.stderr();
    assert!(stderr.contains("plugin for Terraform"), "{stderr}");
    assert!(stderr.contains("not meant to be run directly"), "{stderr}");
    assert!(
        plugin.remaining_stdout().is_empty(),
        "stdout must stay empty"
    );
    Ok(())
}

#[test]
fn without_protocol_6_exits_1() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cmd = command(dir.path());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5");
    let mut plugin = Plugin::spawn(cmd)?;
    let status = plugin.wait_exit(Duration::from_secs(2))?;
    assert_eq!(status.code(), Some(1));
    let stderr = plugin.stderr();
    assert!(stderr.contains("protocol version 6"), "{stderr}");
    assert!(
        plugin.remaining_stdout().is_empty(),
        "stdout must stay empty"
    );
    Ok(())
}

#[test]
fn auto_mtls_handshake_health_and_shutdown() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (pem, client_cert, client_key) = go_plugin_client_cert()?;
    let mut cmd = command(dir.path());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", &pem)
        .env("TF_LOG", "trace");
    let mut plugin = Plugin::spawn(cmd)?;
    let line = plugin.next_line(Duration::from_secs(10))?;
    let hs = parse_handshake(&line)?;
    assert_eq!(hs.network, "unix");
    let socket = PathBuf::from(&hs.address);
    assert!(socket.starts_with(dir.path()), "{socket:?}");
    assert!(hs.cert_b64.len() > 50);
    assert!(!hs.cert_b64.contains('='), "no padding: {}", hs.cert_b64);
    let server_der = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&hs.cert_b64)?;
    let server_cert = CertificateDer::from(server_der);

    let rt = runtime()?;
    rt.block_on(async {
        let channel = tls_channel(
            socket.clone(),
            server_cert.clone(),
            Some((client_cert.clone(), client_key.clone_key())),
        )
        .await?;
        assert_eq!(
            health_check(channel.clone()).await?,
            ServingStatus::Serving as i32
        );

        // Ctrl-C reaches plugins too; like go-plugin's they ignore it.
        plugin.signal("INT")?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            health_check(channel.clone()).await?,
            ServingStatus::Serving as i32
        );

        shutdown(channel.clone()).await?;
        drop(channel);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let asked = Instant::now();
    let status = plugin.wait_exit(Duration::from_secs(1))?;
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    assert!(!socket.exists(), "socket file must be removed");
    assert!(
        plugin.remaining_stdout().is_empty(),
        "stdout carries the handshake line only"
    );
    let stderr = plugin.stderr();
    assert_json_log_lines(&stderr);
    assert!(
        stderr.contains("shutdown requested"),
        "trace logs reach stderr: {stderr}"
    );
    Ok(())
}

#[test]
fn auto_mtls_rejects_clients_without_the_expected_certificate() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (pem, _, _) = go_plugin_client_cert()?;
    let (_, other_cert, other_key) = go_plugin_client_cert()?;
    let mut cmd = command(dir.path());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .env("PLUGIN_CLIENT_CERT", &pem);
    let plugin = Plugin::spawn(cmd)?;
    let hs = parse_handshake(&plugin.next_line(Duration::from_secs(10))?)?;
    let socket = PathBuf::from(&hs.address);
    let server_cert = CertificateDer::from(
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(&hs.cert_b64)?,
    );

    let rt = runtime()?;
    rt.block_on(async {
        let attempt = |client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>| {
            let socket = socket.clone();
            let server_cert = server_cert.clone();
            async move {
                let channel = tls_channel(socket, server_cert, client).await?;
                let status = health_check(channel).await?;
                Ok::<_, Box<dyn std::error::Error>>(status)
            }
        };
        let no_cert = tokio::time::timeout(Duration::from_secs(5), attempt(None)).await?;
        assert!(no_cert.is_err(), "a client without certificate got through");
        let wrong = tokio::time::timeout(
            Duration::from_secs(5),
            attempt(Some((other_cert.clone(), other_key.clone_key()))),
        )
        .await?;
        assert!(
            wrong.is_err(),
            "a client with another certificate got through"
        );

        // Plaintext is refused as well.
        let plain = tokio::time::timeout(Duration::from_secs(5), async {
            let channel = plain_channel(socket.clone()).await?;
            Ok::<_, Box<dyn std::error::Error>>(health_check(channel).await?)
        })
        .await?;
        assert!(plain.is_err(), "a plaintext client got through");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

#[test]
fn tls_disabled_serves_plaintext_without_cert_field() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (pem, _, _) = go_plugin_client_cert()?;
    let mut cmd = command(dir.path());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", &pem)
        .env("TF_DISABLE_PLUGIN_TLS", "1");
    let mut plugin = Plugin::spawn(cmd)?;
    let hs = parse_handshake(&plugin.next_line(Duration::from_secs(10))?)?;
    assert_eq!(hs.cert_b64, "");
    let socket = PathBuf::from(&hs.address);
    let rt = runtime()?;
    rt.block_on(async {
        let channel = plain_channel(socket.clone()).await?;
        assert_eq!(
            health_check(channel.clone()).await?,
            ServingStatus::Serving as i32
        );
        // The provider service itself is registered.
        let mut provider =
            ep_tfproto::tfplugin6::provider_client::ProviderClient::new(channel.clone());
        let reply = provider
            .get_metadata(ep_tfproto::tfplugin6::get_metadata::Request {})
            .await;
        if let Err(status) = &reply {
            assert_eq!(status.code(), tonic::Code::Unimplemented, "{status}");
        }
        shutdown(channel).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let status = plugin.wait_exit(Duration::from_secs(1))?;
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
    Ok(())
}

#[test]
fn sigterm_stops_the_plugin_and_removes_the_socket() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cmd = command(dir.path());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6");
    let mut plugin = Plugin::spawn(cmd)?;
    let hs = parse_handshake(&plugin.next_line(Duration::from_secs(10))?)?;
    let socket = PathBuf::from(&hs.address);
    assert!(socket.exists());
    plugin.signal("TERM")?;
    let status = plugin.wait_exit(Duration::from_secs(2))?;
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
    Ok(())
}

#[test]
fn debug_mode_prints_reattach_config_and_stops_on_sigterm() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut cmd = command(dir.path());
    cmd.arg("--debug");
    let mut plugin = Plugin::spawn(cmd)?;
    let prefix = "TF_REATTACH_PROVIDERS='";
    let reattach = loop {
        let line = plugin.next_line(Duration::from_secs(10))?;
        if let Some(start) = line.find(prefix) {
            let quoted = &line[start + prefix.len()..];
            let json = quoted
                .strip_suffix('\'')
                .ok_or("reattach value not closed by a quote")?;
            break json.replace(r#"'"'"'"#, "'");
        }
    };
    let value: serde_json::Value = serde_json::from_str(&reattach)?;
    let entry = &value[PROVIDER_ADDRESS];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Pid"], plugin.child.id());
    assert_eq!(entry["Addr"]["Network"], "unix");
    let socket = PathBuf::from(entry["Addr"]["String"].as_str().ok_or("no address")?);

    let rt = runtime()?;
    rt.block_on(async {
        let channel = plain_channel(socket.clone()).await?;
        assert_eq!(health_check(channel).await?, ServingStatus::Serving as i32);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    plugin.signal("TERM")?;
    let status = plugin.wait_exit(Duration::from_secs(2))?;
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
    Ok(())
}
