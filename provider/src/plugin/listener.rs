//! Where the plugin listens: a unix socket like go-plugin's (in
//! `PLUGIN_UNIX_SOCKET_DIR` or the temp dir), with a loopback TCP fallback,
//! and the stream of (optionally TLS-wrapped) connections handed to tonic.

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::handshake::PluginAddr;
use super::shutdown::ShutdownSignal;
use super::PluginError;

/// Directory for the socket (go-plugin's `EnvUnixSocketDir`).
pub const ENV_SOCKET_DIR: &str = "PLUGIN_UNIX_SOCKET_DIR";
/// Group that should own the socket, writable by it (`EnvUnixSocketGroup`).
pub const ENV_SOCKET_GROUP: &str = "PLUGIN_UNIX_SOCKET_GROUP";
/// Lowest TCP port to use for the fallback listener.
pub const ENV_MIN_PORT: &str = "PLUGIN_MIN_PORT";
/// Highest TCP port to use for the fallback listener.
pub const ENV_MAX_PORT: &str = "PLUGIN_MAX_PORT";

/// How long one TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Removes the socket file when dropped.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => tracing::trace!(path = %self.0.display(), "removed plugin socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.0.display(), error = %e, "could not remove plugin socket")
            }
        }
    }
}

/// A bound listener.
pub enum Listener {
    /// A unix domain socket.
    Unix(UnixListener),
    /// A loopback TCP socket.
    Tcp(TcpListener),
}

/// The result of [`bind`]: the listener, its address, and the guard that
/// removes the socket file (none for TCP).
pub struct Bound {
    /// The listener itself.
    pub listener: Listener,
    /// Its address as printed in the handshake.
    pub addr: PluginAddr,
    /// Removes the unix socket file when dropped.
    pub socket_file: Option<SocketFile>,
}

/// Binds a unix socket in `socket_dir` (or the temp dir) with a go-plugin
/// style name (`plugin` and random digits); falls back to TCP on 127.0.0.1
/// when that fails (for example a path longer than `sun_path`). Must run
/// inside a tokio runtime.
pub fn bind(
    socket_dir: Option<PathBuf>,
    socket_group: Option<&str>,
    port_range: Option<(u16, u16)>,
) -> Result<Bound, PluginError> {
    let dir = socket_dir.unwrap_or_else(std::env::temp_dir);
    match bind_unix(&dir) {
        Ok((listener, path)) => {
            let socket_file = SocketFile(path.clone());
            if let Some(group) = socket_group {
                set_group_writable(&path, group)?;
            }
            Ok(Bound {
                listener: Listener::Unix(listener),
                addr: PluginAddr::Unix(path),
                socket_file: Some(socket_file),
            })
        }
        Err(unix_err) => {
            tracing::warn!(dir = %dir.display(), error = %unix_err, "cannot listen on a unix socket, falling back to TCP");
            let listener = bind_tcp(port_range).map_err(|tcp_err| PluginError::Listen {
                unix: unix_err,
                tcp: tcp_err,
            })?;
            let addr = listener
                .local_addr()
                .map_err(|tcp_err| PluginError::Listen {
                    unix: io::Error::other("unix socket unavailable"),
                    tcp: tcp_err,
                })?;
            Ok(Bound {
                listener: Listener::Tcp(listener),
                addr: PluginAddr::Tcp(addr),
                socket_file: None,
            })
        }
    }
}

/// Binds `dir/pluginNNNN`, retrying with another name if one is taken.
fn bind_unix(dir: &Path) -> io::Result<(UnixListener, PathBuf)> {
    let mut last_err = io::Error::other("no socket name tried");
    for attempt in 0..32u32 {
        let path = dir.join(format!("plugin{}", random_digits(attempt)));
        match UnixListener::bind(&path) {
            Ok(listener) => return Ok((listener, path)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = e,
            Err(e) => return Err(e),
        }
    }
    Err(last_err)
}

/// Random decimal digits for a socket name, like `os.CreateTemp` makes.
fn random_digits(attempt: u32) -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u32(attempt);
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    hasher.finish() % 10_000_000_000
}

/// Binds 127.0.0.1 on the first free port of `range`, or any port.
fn bind_tcp(range: Option<(u16, u16)>) -> io::Result<TcpListener> {
    let bind = |port: u16| -> io::Result<TcpListener> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        std_listener.set_nonblocking(true)?;
        TcpListener::from_std(std_listener)
    };
    match range {
        Some((min, max)) if min > 0 && min <= max => {
            let mut last_err = io::Error::other("empty port range");
            for port in min..=max {
                match bind(port) {
                    Ok(l) => return Ok(l),
                    Err(e) => last_err = e,
                }
            }
            Err(last_err)
        }
        _ => bind(0),
    }
}

/// Parses `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` values; `None` unless both are
/// valid ports.
pub fn parse_port_range(min: Option<&str>, max: Option<&str>) -> Option<(u16, u16)> {
    let min = min?.trim().parse().ok()?;
    let max = max?.trim().parse().ok()?;
    Some((min, max))
}

/// Gives the socket to `group` (a name or a numeric id) with mode 0660, as
/// go-plugin does for `PLUGIN_UNIX_SOCKET_GROUP`.
fn set_group_writable(path: &Path, group: &str) -> Result<(), PluginError> {
    use std::os::unix::fs::PermissionsExt;
    let gid = match group.parse::<u32>() {
        Ok(gid) => gid,
        Err(_) => lookup_group(group).ok_or_else(|| PluginError::SocketGroup {
            group: group.to_owned(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such group in /etc/group"),
        })?,
    };
    let wrap = |source| PluginError::SocketGroup {
        group: group.to_owned(),
        source,
    };
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(wrap)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(wrap)?;
    Ok(())
}

/// The gid of a group name from `/etc/group`.
fn lookup_group(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let group = fields.next()?;
        let _password = fields.next()?;
        let gid = fields.next()?;
        (group == name).then(|| gid.parse().ok()).flatten()
    })
}

/// Anything tonic can serve HTTP/2 over.
trait Io: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

/// One accepted connection: plain or TLS, unix or TCP.
pub struct Conn(Pin<Box<dyn Io>>);

impl Conn {
    fn new(io: impl AsyncRead + AsyncWrite + Send + 'static) -> Self {
        Self(Box::pin(io))
    }
}

impl Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Accepts connections until shutdown, doing TLS handshakes (when `tls` is
/// set) off the accept loop; only established connections reach tonic, so a
/// client that fails the handshake cannot disturb the server.
pub fn incoming(
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: ShutdownSignal,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(16);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.wait() => break,
                accepted = accept(&listener) => accepted,
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a plugin connection failed");
                    // Back off a little: errors like EMFILE repeat at once.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            match &acceptor {
                None => {
                    if tx.send(Ok(stream.into_conn())).await.is_err() {
                        break;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        if let Some(conn) = stream.tls(&acceptor).await {
                            let _ = tx.send(Ok(conn)).await;
                        }
                    });
                }
            }
        }
        tracing::trace!("plugin listener closed");
    });
    ReceiverStream::new(rx)
}

/// A raw accepted stream.
enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Accepted {
    fn into_conn(self) -> Conn {
        match self {
            Accepted::Unix(s) => Conn::new(s),
            Accepted::Tcp(s) => Conn::new(s),
        }
    }

    async fn tls(self, acceptor: &tokio_rustls::TlsAcceptor) -> Option<Conn> {
        let result = match self {
            Accepted::Unix(s) => tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(s))
                .await
                .map(|r| r.map(Conn::new)),
            Accepted::Tcp(s) => {
                let _ = s.set_nodelay(true);
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(s))
                    .await
                    .map(|r| r.map(Conn::new))
            }
        };
        match result {
            Ok(Ok(conn)) => Some(conn),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rejected a plugin connection: TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::warn!("rejected a plugin connection: TLS handshake timed out");
                None
            }
        }
    }
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            Accepted::Tcp(s)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parsing() {
        assert_eq!(
            parse_port_range(Some("10000"), Some("25000")),
            Some((10000, 25000))
        );
        assert_eq!(parse_port_range(Some("x"), Some("1")), None);
        assert_eq!(parse_port_range(None, Some("1")), None);
    }

    #[tokio::test]
    async fn unix_socket_is_bound_and_removed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bound = bind(Some(dir.path().to_owned()), None, None).unwrap_or_else(|e| panic!("{e}"));
        let PluginAddr::Unix(path) = &bound.addr else {
            panic!("expected a unix socket, got {:?}", bound.addr)
        };
        assert!(path.starts_with(dir.path()));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        assert!(name.unwrap_or_default().starts_with("plugin"));
        assert!(path.exists());
        let path = path.clone();
        drop(bound);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn too_long_socket_path_falls_back_to_tcp() {
        let base = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let long = base.path().join("d".repeat(200));
        std::fs::create_dir_all(&long).unwrap_or_else(|e| panic!("{e}"));
        let bound = bind(Some(long), None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bound.addr.network(), "tcp");
        assert!(bound.socket_file.is_none());
    }
}
