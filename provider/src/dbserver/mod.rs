//! A throwaway MySQL-compatible server (Debian's MariaDB `mariadbd` by
//! default; the binaries are configurable) run as a plain child process for
//! one job: a fresh data directory in a private work directory, listening
//! on 127.0.0.1 only, on a free port, in its own process group. Nothing
//! here knows about Terraform.
//!
//! [`LocalServer::start`] initialises and starts it; [`LocalServer::stop`]
//! shuts it down cleanly (SIGTERM: InnoDB flushes and writes a clean
//! shutdown) and hands back the data directory, which [`normalise`] then
//! strips of the files a server run leaves that do not belong in an image.
//! Dropping a server that was not stopped kills its process group, so
//! every path out (an error, cancellation, a panic) ends the server.
//!
//! Passwords never go on a command line: SQL reaches the client on its
//! standard input, over the server's socket.

mod datadir;
mod server;

use std::path::PathBuf;
use std::time::Duration;

pub use datadir::{normalise, LEFT_OUT};
pub use server::{server_version, LocalServer, StoppedServer};

/// Which binaries run the server, and where it works.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The server (`mariadbd`).
    pub server: PathBuf,
    /// The data directory initialiser (`mariadb-install-db`).
    pub install_db: PathBuf,
    /// The command-line client (`mariadb`), for readiness checks and setup SQL.
    pub client: PathBuf,
    /// Where the private work directory is made.
    pub work_parent: PathBuf,
    /// How long the server may take to answer after it was started.
    pub startup_timeout: Duration,
    /// How long a clean shutdown may take before the server is killed.
    pub shutdown_timeout: Duration,
}

/// Default server binary: `/usr/sbin/mariadbd` when it exists, else `mariadbd` on `PATH`.
pub fn default_server() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/mariadbd");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("mariadbd")
    }
}

/// Why the server could not be run, or was stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A binary is missing or could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Local file work failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A helper program (the initialiser, the client) failed.
    #[error("{program} failed ({status}): {output}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// Its output.
        output: String,
    },
    /// `--version` said nothing recognisable.
    #[error("{program} --version printed no version: {output:?}")]
    NoVersion {
        /// The program.
        program: String,
        /// What it printed.
        output: String,
    },
    /// The server did not start answering.
    #[error("the database server did not become ready: {detail}\n--- server log ---\n{log}")]
    NotReady {
        /// Why.
        detail: String,
        /// The tail of its error log.
        log: String,
    },
    /// The server did not shut down cleanly.
    #[error("the database server did not shut down cleanly: {detail}\n--- server log ---\n{log}")]
    Shutdown {
        /// Why.
        detail: String,
        /// The tail of its error log.
        log: String,
    },
    /// A file in the data directory that cannot go into an image.
    #[error("{path}: {reason}")]
    DataDir {
        /// The file.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Cancelled; the server was killed.
    #[error("the database server was stopped before the job finished")]
    Cancelled,
}

impl ServerError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| ServerError::Io { what, source }
    }
}
