//! Starting, talking to and stopping the server process.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::{ServerError, ServerOptions};
use crate::datapop::signal_group;

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(200);

/// Lines of the server's error log a diagnostic carries.
const LOG_TAIL: usize = 30;

/// The server's version as `<server> --version` reports it
/// (`10.11.6-MariaDB-0+deb12u1`): what the data files are written by.
pub async fn server_version(server: &Path) -> Result<String, ServerError> {
    let out = Command::new(server)
        .args(["--no-defaults", "--version"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ServerError::Spawn {
            program: server.display().to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "Ver")
        .nth(1)
        .map(str::to_owned);
    match version {
        Some(v) if out.status.success() => Ok(v),
        _ => Err(ServerError::NoVersion {
            program: server.display().to_string(),
            output: format!("{text}{}", String::from_utf8_lossy(&out.stderr))
                .trim()
                .to_owned(),
        }),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The login name of the effective user: the account the server's
/// `unix_socket` authentication lets in over the socket.
fn os_user() -> Result<String, ServerError> {
    if is_root() {
        return Ok("root".into());
    }
    let uid = rustix::process::geteuid().as_raw().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(ServerError::io(
        "read /etc/passwd for the current user's name",
    ))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&uid.as_str()))
        .and_then(|f| f.first().map(|n| (*n).to_owned()))
        .ok_or_else(|| ServerError::Io {
            what: "find the current user's name".into(),
            source: std::io::Error::other(format!("uid {uid} is not in /etc/passwd")),
        })
}

fn free_port() -> Result<u16, ServerError> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(ServerError::io("find a free port"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(ServerError::io("find a free port"))
}

/// `s` as a single-quoted SQL string literal (MariaDB's default escaping).
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The private work directory: `data/`, `tmp/`, and `run/` for the socket,
/// pid file and error log, which stay out of the data directory.
struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/mysqld.sock")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("run/mysqld.pid")
    }
    fn error_log(&self) -> PathBuf {
        self.dir.path().join("run/error.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.error_log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .get(lines.len().saturating_sub(LOG_TAIL)..)
            .unwrap_or_default()
            .join("\n")
    }
}

/// Kills the process group `pgid` and waits (2 s at most) until none of
/// it is left: helpers such as `mariadb-install-db` run a server of their own.
async fn kill_group(pgid: Option<u32>) {
    signal_group(pgid, Signal::KILL);
    let Some(pid) = pgid
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 1)
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while rustix::process::test_kill_process_group(pid).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a helper in its own process group to its end, feeding `stdin`; on
/// cancellation the whole group is killed.
async fn run_helper(
    mut cmd: Command,
    program: &Path,
    stdin: Option<&str>,
    cancel: &CancellationToken,
) -> Result<std::process::Output, ServerError> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| ServerError::Spawn {
        program: program.display().to_string(),
        source,
    })?;
    let pgid = child.id();
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(ServerError::io(format!("write to {}", program.display())))?;
        drop(pipe);
    }
    let out = tokio::select! {
        out = child.wait_with_output() => Some(out),
        _ = cancel.cancelled() => None,
    };
    match out {
        Some(out) => out.map_err(ServerError::io(format!("wait for {}", program.display()))),
        None => {
            kill_group(pgid).await;
            Err(ServerError::Cancelled)
        }
    }
}

fn failed(program: &Path, out: &std::process::Output) -> ServerError {
    ServerError::Failed {
        program: program.display().to_string(),
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .trim()
        .to_owned(),
    }
}

/// A running server. Dropping it kills the server.
pub struct LocalServer {
    layout: Layout,
    child: Option<Child>,
    group: GroupKill,
    port: u16,
    user: String,
    opts: ServerOptions,
}

/// A server that shut down cleanly: its data directory, removed with it on drop.
pub struct StoppedServer {
    layout: Layout,
}

impl StoppedServer {
    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.layout.data()
    }
}

impl LocalServer {
    /// Initialises a data directory and starts the server on a free port of
    /// 127.0.0.1, returning once it answers (or with the tail of its log).
    pub async fn start(
        opts: ServerOptions,
        cancel: &CancellationToken,
    ) -> Result<LocalServer, ServerError> {
        std::fs::create_dir_all(&opts.work_parent).map_err(ServerError::io(format!(
            "create {}",
            opts.work_parent.display()
        )))?;
        let dir = tempfile::Builder::new()
            .prefix("ep-db-")
            .tempdir_in(&opts.work_parent)
            .map_err(ServerError::io("create the server's work directory"))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(ServerError::io("restrict the server's work directory"))?;
        let layout = Layout { dir };
        for d in [layout.tmp(), layout.dir.path().join("run")] {
            std::fs::create_dir_all(&d)
                .map_err(ServerError::io(format!("create {}", d.display())))?;
        }
        let user = os_user()?;
        let mut install = Command::new(&opts.install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", layout.data().display()))
            .arg(format!("--tmpdir={}", layout.tmp().display()))
            // Only unix_socket accounts: root, and the account running this
            // (so the image holds no password set here).
            .arg("--auth-root-authentication-method=socket")
            .arg(format!("--auth-root-socket-user={user}"))
            .args(["--skip-test-db", "--skip-name-resolve"]);
        if is_root() {
            install.arg("--user=root");
        }
        let out = run_helper(install, &opts.install_db, None, cancel).await?;
        if !out.status.success() {
            return Err(failed(&opts.install_db, &out));
        }
        let mut server = LocalServer {
            layout,
            child: None,
            group: GroupKill(None),
            port: free_port()?,
            user,
            opts,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match server.spawn_and_wait(cancel).await {
                Ok(()) => return Ok(server),
                // Another process may take the port between the probe and the bind.
                Err(ServerError::NotReady { .. })
                    if attempt < 3
                        && server.layout.log_tail().contains("Address already in use") =>
                {
                    server.kill().await;
                    server.port = free_port()?;
                }
                Err(e) => {
                    server.kill().await;
                    return Err(e);
                }
            }
        }
    }

    async fn spawn_and_wait(&mut self, cancel: &CancellationToken) -> Result<(), ServerError> {
        let l = &self.layout;
        let mut cmd = Command::new(&self.opts.server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", l.data().display()))
            .arg(format!("--socket={}", l.socket().display()))
            .arg(format!("--pid-file={}", l.pid_file().display()))
            .arg(format!("--log-error={}", l.error_log().display()))
            .arg(format!("--tmpdir={}", l.tmp().display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                // A buffer pool dump would be one more non-deterministic file.
                "--innodb-buffer-pool-dump-at-shutdown=OFF",
                "--innodb-buffer-pool-load-at-startup=OFF",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if is_root() {
            cmd.arg("--user=root");
        }
        let child = cmd.spawn().map_err(|source| ServerError::Spawn {
            program: self.opts.server.display().to_string(),
            source,
        })?;
        self.group.0 = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + self.opts.startup_timeout;
        loop {
            if cancel.is_cancelled() {
                return Err(ServerError::Cancelled);
            }
            if self.sql("SELECT 1", cancel).await.is_ok() {
                tracing::info!(port = self.port, "database server ready");
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(ServerError::NotReady {
                        detail: format!("{} exited with {status}", self.opts.server.display()),
                        log: self.layout.log_tail(),
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(ServerError::NotReady {
                    detail: format!("no answer within {} s", self.opts.startup_timeout.as_secs()),
                    log: self.layout.log_tail(),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = cancel.cancelled() => return Err(ServerError::Cancelled),
            }
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` over the socket as the local administrator (the statement
    /// goes on the client's standard input, never on its command line) and
    /// returns its output, tab-separated without headers.
    pub async fn sql(&self, sql: &str, cancel: &CancellationToken) -> Result<String, ServerError> {
        let mut c = Command::new(&self.opts.client);
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.layout.socket().display()))
            .arg(format!("--user={}", self.user))
            .args([
                "--protocol=socket",
                "--batch",
                "--skip-column-names",
                "--skip-print-query-on-error",
            ]);
        let out = run_helper(c, &self.opts.client, Some(sql), cancel).await?;
        if !out.status.success() {
            return Err(failed(&self.opts.client, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Creates `user`@`127.0.0.1` with every privilege (it creates the
    /// schema and the application user).
    pub async fn create_admin(
        &self,
        user: &str,
        password: &str,
        cancel: &CancellationToken,
    ) -> Result<(), ServerError> {
        let (u, p) = (sql_string(user), sql_string(password));
        self.sql(
            &format!(
                "CREATE USER {u}@'127.0.0.1' IDENTIFIED BY {p};\n\
                 GRANT ALL PRIVILEGES ON *.* TO {u}@'127.0.0.1' WITH GRANT OPTION;\n"
            ),
            cancel,
        )
        .await
        .map(drop)
    }

    /// Drops `user`@`127.0.0.1`.
    pub async fn drop_admin(
        &self,
        user: &str,
        cancel: &CancellationToken,
    ) -> Result<(), ServerError> {
        self.sql(
            &format!("DROP USER IF EXISTS {}@'127.0.0.1';\n", sql_string(user)),
            cancel,
        )
        .await
        .map(drop)
    }

    /// Shuts the server down cleanly (SIGTERM and a wait); a server that
    /// does not exit cleanly in time is killed and reported.
    pub async fn stop(mut self, cancel: &CancellationToken) -> Result<StoppedServer, ServerError> {
        let Some(mut child) = self.child.take() else {
            return Err(ServerError::Shutdown {
                detail: "the server was not running".into(),
                log: self.layout.log_tail(),
            });
        };
        signal_group(self.group.0, Signal::TERM);
        let waited = tokio::select! {
            w = tokio::time::timeout(self.opts.shutdown_timeout, child.wait()) => Some(w),
            _ = cancel.cancelled() => None,
        };
        self.child = Some(child);
        let status: ExitStatus = match waited {
            Some(Ok(Ok(s))) => s,
            None => {
                self.kill().await;
                return Err(ServerError::Cancelled);
            }
            Some(Ok(Err(e))) => {
                self.kill().await;
                return Err(ServerError::io("wait for the database server")(e));
            }
            Some(Err(_)) => {
                self.kill().await;
                return Err(ServerError::Shutdown {
                    detail: format!(
                        "still running {} s after SIGTERM; killed",
                        self.opts.shutdown_timeout.as_secs()
                    ),
                    log: self.layout.log_tail(),
                });
            }
        };
        self.child = None;
        self.group.0 = None;
        if !status.success() {
            return Err(ServerError::Shutdown {
                detail: format!("it exited with {status}"),
                log: self.layout.log_tail(),
            });
        }
        tracing::info!("database server shut down cleanly");
        Ok(StoppedServer {
            layout: self.layout,
        })
    }

    /// Kills the server without a clean shutdown (its data is thrown away)
    /// and waits, briefly, until it is gone: for the paths out that are not
    /// [`LocalServer::stop`] (a failed job, cancellation).
    pub async fn abort(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.kill()).await;
    }

    /// Kills the server's process group and reaps it.
    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        kill_group(self.group.0).await;
        self.group.0 = None;
    }
}

/// Kills the server's process group when dropped: a server not stopped
/// through [`LocalServer::stop`] (an error, cancellation, a panic) does
/// not outlive the job.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        signal_group(self.0, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_strings_escape_quotes_and_backslashes() {
        assert_eq!(sql_string("it's\\x"), "'it''s\\\\x'");
    }
}
