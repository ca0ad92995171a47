//! A throwaway MariaDB server for tests: a plain process (never a system service) on a
//! temporary data directory, bound to 127.0.0.1 on a free port, with a root password, stopped
//! cleanly (SIGTERM, then SIGKILL after 30 s) on drop.
//!
//! Needs Debian's `mariadb-server` and `mariadb-client` (`scripts/testenv install`).
//!
//! ```no_run
//! use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};
//! let db = MariaDb::start(MariaDbOptions::default()).unwrap();
//! db.query("CREATE DATABASE shop").unwrap();
//! assert_eq!(db.query("SELECT 1+1").unwrap(), "2");
//! // db.port(), db.root_password(), db.client_config() for other clients.
//! ```
//!
//! Passwords never go on a command line: clients get them from a mode-600 option file
//! ([`MariaDb::client_config`]).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Failures of the server's lifecycle or of a client call.
#[derive(Debug, thiserror::Error)]
pub enum MariaDbError {
    /// A binary is missing or could not be run.
    #[error("cannot run {program}: {source} (run `scripts/testenv install` for mariadb-server/mariadb-client)")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// File system work in the temporary directory failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `mariadb-install-db` failed.
    #[error("mariadb-install-db failed ({status}): {output}")]
    InstallDb {
        /// Its exit status.
        status: String,
        /// Its output.
        output: String,
    },
    /// The server did not become ready.
    #[error("MariaDB did not become ready: {detail}\n--- error log ---\n{log}")]
    NotReady {
        /// Why.
        detail: String,
        /// The tail of the server's error log.
        log: String,
    },
    /// A client call failed.
    #[error("mariadb client failed ({status}): {stderr}")]
    Query {
        /// Its exit status.
        status: String,
        /// Its standard error.
        stderr: String,
    },
}

/// Where the binaries are and how the server is set up.
#[derive(Debug, Clone)]
pub struct MariaDbOptions {
    /// The server (`EP_MARIADB_SERVER`, else `/usr/sbin/mariadbd`, else `mariadbd` on `PATH`).
    pub server_bin: PathBuf,
    /// `mariadb-install-db`.
    pub install_db_bin: PathBuf,
    /// The command-line client (`mariadb`).
    pub client_bin: PathBuf,
    /// The root password (root is reachable as `root@127.0.0.1` over TCP and `root@localhost`
    /// over the socket).
    pub root_password: String,
}

impl Default for MariaDbOptions {
    fn default() -> Self {
        let server_bin = std::env::var_os("EP_MARIADB_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let sbin = PathBuf::from("/usr/sbin/mariadbd");
                if sbin.exists() {
                    sbin
                } else {
                    PathBuf::from("mariadbd")
                }
            });
        MariaDbOptions {
            server_bin,
            install_db_bin: PathBuf::from("mariadb-install-db"),
            client_bin: PathBuf::from("mariadb"),
            root_password: format!("root-{:016x}", random_u64()),
        }
    }
}

/// A little randomness without a crate: the clock and the process id, hashed.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A running server.
#[derive(Debug)]
pub struct MariaDb {
    child: Option<Child>,
    port: u16,
    opts: MariaDbOptions,
    dir: tempfile::TempDir,
    data: PathBuf,
}

fn run(cmd: &mut Command, program: &Path) -> Result<Output, MariaDbError> {
    cmd.output().map_err(|source| MariaDbError::Spawn {
        program: program.display().to_string(),
        source,
    })
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective uid.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn free_port() -> Result<u16, MariaDbError> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(|source| MariaDbError::Io {
        what: "find a free port".into(),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| MariaDbError::Io {
            what: "find a free port".into(),
            source,
        })
}

/// Options common to `mariadb-install-db` and the server: small redo log, no binlog.
const SMALL: &[&str] = &["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"];

impl MariaDb {
    /// Initialises a data directory, starts the server on a free port, sets the root
    /// password and waits (60 s at most) until it answers over TCP.
    pub fn start(opts: MariaDbOptions) -> Result<Self, MariaDbError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| MariaDbError::Io { what, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("ep-mariadb-")
            .tempdir()
            .map_err(io("create the temporary directory"))?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(dir.path().join("tmp")).map_err(io("create tmp"))?;
        let mut install = Command::new(&opts.install_db_bin);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            // A private tmpdir: parallel bootstraps in a shared /tmp collide on temp tables.
            .arg(format!("--tmpdir={}", dir.path().join("tmp").display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(SMALL);
        if is_root() {
            install.arg("--user=root");
        }
        let out = run(&mut install, &opts.install_db_bin)?;
        if !out.status.success() {
            return Err(MariaDbError::InstallDb {
                status: out.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let mut db = MariaDb {
            child: None,
            port: free_port()?,
            opts,
            dir,
            data,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match db.spawn_and_wait() {
                Ok(()) => {
                    db.set_root_password()?;
                    return Ok(db);
                }
                // Another process may have taken the port between the probe and the bind.
                Err(_) if attempt < 3 && db.log_tail().contains("Address already in use") => {
                    db.stop();
                    db.port = free_port()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the server on an existing data directory (one unpacked from an image, say)
    /// without initialising it or touching its accounts; query it with [`MariaDb::query_socket`].
    pub fn start_on(opts: MariaDbOptions, data: &Path) -> Result<Self, MariaDbError> {
        let dir = tempfile::Builder::new()
            .prefix("ep-mariadb-")
            .tempdir()
            .map_err(|source| MariaDbError::Io {
                what: "create the temporary directory".into(),
                source,
            })?;
        std::fs::create_dir_all(dir.path().join("tmp")).map_err(|source| MariaDbError::Io {
            what: "create tmp".into(),
            source,
        })?;
        let mut db = MariaDb {
            child: None,
            port: free_port()?,
            opts,
            dir,
            data: data.to_path_buf(),
        };
        db.spawn_and_wait()?;
        Ok(db)
    }

    /// Runs `sql` as the operating system's root over the socket (`unix_socket`
    /// authentication; the tests run as root) and returns the trimmed output.
    pub fn query_socket(&self, sql: &str) -> Result<String, MariaDbError> {
        let mut c = Command::new(&self.opts.client_bin);
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--protocol=socket", "-uroot", "-N", "-B", "-e", sql]);
        let out = run(&mut c, &self.opts.client_bin)?;
        if !out.status.success() {
            return Err(MariaDbError::Query {
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.error_log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn spawn_and_wait(&mut self) -> Result<(), MariaDbError> {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.opts.server_bin);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.data.display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", d.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", self.error_log().display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
            ])
            .args(SMALL)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        let child = cmd.spawn().map_err(|source| MariaDbError::Spawn {
            program: self.opts.server_bin.display().to_string(),
            source,
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Before the password is set, root has an empty password on the socket.
            let mut ping = Command::new(&self.opts.client_bin);
            ping.arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["--protocol=socket", "-uroot", "-N", "-B", "-e", "SELECT 1"]);
            if let Ok(o) = ping.output() {
                if o.status.success() {
                    return Ok(());
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(MariaDbError::NotReady {
                        detail: format!("mariadbd exited with {status}"),
                        log: self.log_tail(),
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(MariaDbError::NotReady {
                    detail: "no answer within 60 s".into(),
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn set_root_password(&self) -> Result<(), MariaDbError> {
        let pw = sql_string(&self.opts.root_password);
        let sql = format!(
            "DELETE FROM mysql.global_priv WHERE User='root' AND Host NOT IN ('localhost', '127.0.0.1');\
             FLUSH PRIVILEGES;\
             CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\
             ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY {pw};\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\
             ALTER USER 'root'@'localhost' IDENTIFIED BY {pw};\
             FLUSH PRIVILEGES;"
        );
        let mut c = Command::new(&self.opts.client_bin);
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--protocol=socket", "-uroot", "-e", &sql]);
        let out = run(&mut c, &self.opts.client_bin)?;
        if !out.status.success() {
            return Err(MariaDbError::Query {
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        // The client option file root uses from now on.
        self.write_option_file(&self.client_config(), "root", &self.opts.root_password)
    }

    /// Writes a mode-600 `[client]` option file for `user` (TCP to 127.0.0.1:port).
    pub fn write_option_file(
        &self,
        path: &Path,
        user: &str,
        password: &str,
    ) -> Result<(), MariaDbError> {
        let text = format!(
            "[client]\nhost=127.0.0.1\nport={}\nprotocol=tcp\nuser={user}\npassword=\"{}\"\n",
            self.port,
            password.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let io = |source| MariaDbError::Io {
            what: format!("write {}", path.display()),
            source,
        };
        std::fs::write(path, "").map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        std::fs::write(path, text).map_err(io)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The root password.
    pub fn root_password(&self) -> &str {
        &self.opts.root_password
    }

    /// The data directory (only stable after [`MariaDb::stop`]).
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// A mode-600 option file for root over TCP: `mariadb --defaults-file=<this> ...`.
    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("root-client.cnf")
    }

    /// Runs `sql` as root over TCP (`-N -B`: tab-separated rows, no header) and returns the
    /// trimmed output.
    pub fn query(&self, sql: &str) -> Result<String, MariaDbError> {
        self.query_as(&self.client_config(), sql)
    }

    /// Runs `sql` with the option file `defaults_file` (see [`MariaDb::write_option_file`]).
    pub fn query_as(&self, defaults_file: &Path, sql: &str) -> Result<String, MariaDbError> {
        let mut c = Command::new(&self.opts.client_bin);
        c.arg(format!("--defaults-file={}", defaults_file.display()))
            .args(["-N", "-B", "-e", sql]);
        let out = run(&mut c, &self.opts.client_bin)?;
        if !out.status.success() {
            return Err(MariaDbError::Query {
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server cleanly (SIGTERM: InnoDB shuts down and flushes), SIGKILL after 30 s.
    /// Idempotent; also done on drop.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `s` as a single-quoted SQL string literal.
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}
