//! Running Elastic Path's Data Population tool from a deployment package,
//! as `docs/data-population.md` defines it. Nothing here knows about
//! Terraform: [`run`] stages the tool, the ext-data jar and the JDBC driver
//! in a private work directory, writes the connection settings into a copy
//! of one environment, runs `data-population.sh` in its own process group,
//! streams its output into the log with passwords masked, and removes the
//! work directory on every path out (success, failure, cancellation, panic).

pub mod content;
pub mod contract;
mod process;
pub mod properties;
mod stage;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ep_imagebuild::package::PackageError;
use tokio_util::sync::CancellationToken;

pub(crate) use process::signal_group;
pub use process::{Masker, Tail, TAIL_LINES};
pub use stage::{environment_check, find_launcher, DEFAULT_MAX_DISK};

/// The tool's commands that the provider runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Drop and create the schema and the application user, apply every change set.
    ResetDb,
    /// Apply only the change sets not applied yet.
    UpdateDb,
}

impl Command {
    /// The command as the tool spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::ResetDb => "reset-db",
            Command::UpdateDb => "update-db",
        }
    }

    /// Parses `reset-db` or `update-db`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reset-db" => Some(Command::ResetDb),
            "update-db" => Some(Command::UpdateDb),
            _ => None,
        }
    }
}

/// A password: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The password itself, for the one place it is written.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Where and as whom the tool connects.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Database host (or the local end of a tunnel).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Schema to create or update.
    pub schema: String,
    /// Application user.
    pub username: String,
    /// Its password.
    pub password: Secret,
    /// A user that may drop and create the schema and create users.
    pub reset_user: String,
    /// Its password.
    pub reset_password: Secret,
}

/// One run of the tool.
#[derive(Clone, Debug)]
pub struct Request {
    /// The deployment package (zip or directory).
    pub package: PathBuf,
    /// The environment under `environments/` in the ext-data jar.
    pub environment: String,
    /// What to run.
    pub command: Command,
    /// Connection settings written into `database.properties`.
    pub connection: Connection,
    /// Extra properties appended last to `database.properties` (they win).
    pub extra_properties: BTreeMap<String, String>,
    /// Where the private work directory is made (the system temporary directory if `None`).
    pub work_parent: Option<PathBuf>,
    /// Most bytes the staged files may take.
    pub max_disk: u64,
}

/// How a run that started ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code; `None` if the tool was ended by a signal.
    pub exit_code: Option<i32>,
    /// Its last output lines (both streams, in order, passwords masked).
    pub tail: Vec<String>,
}

impl Outcome {
    /// Whether the tool exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Why the tool could not be run, or was stopped.
#[derive(Debug, thiserror::Error)]
pub enum DataPopError {
    /// The package could not be read.
    #[error("cannot read the deployment package: {0}")]
    Package(#[from] PackageError),
    /// The package has no `tools/ext-data-population-cli-*-package.zip`.
    #[error("the deployment package has no Data Population tool (tools/ext-data-population-cli-<version>-package.zip)")]
    NoTool,
    /// The tool zip has no `data-population.sh`.
    #[error("{0} has no data-population.sh launcher")]
    NoLauncher(String),
    /// The package has no `database/ext-data-*.jar`.
    #[error("the deployment package has no database/ext-data-<version>.jar")]
    NoExtData,
    /// The environment is not in the ext-data jar.
    #[error("environment {environment:?} is not in the package's ext-data jar (it has: {})", available.join(", "))]
    UnknownEnvironment {
        /// What was asked for.
        environment: String,
        /// What there is.
        available: Vec<String>,
    },
    /// Staging would take more disk than allowed.
    #[error("staging the tool and its data needs more than {limit} bytes of disk")]
    DiskLimit {
        /// The limit.
        limit: u64,
    },
    /// A property key or value that cannot be written safely.
    #[error("invalid property {key:?}: {why}")]
    InvalidProperty {
        /// The key.
        key: String,
        /// Why.
        why: &'static str,
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
    /// The launcher could not be started.
    #[error("cannot start {launcher}: {source}")]
    Spawn {
        /// The launcher.
        launcher: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The run was cancelled; the tool's process group was killed.
    #[error("the Data Population tool was stopped before it finished")]
    Cancelled {
        /// Its last output lines.
        tail: Vec<String>,
    },
}

impl DataPopError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| DataPopError::Io { what, source }
    }
}

/// Stages the tool and runs `request.command`; the work directory is
/// removed before this returns, whatever happened. Cancelling `cancel`
/// kills the tool's process group and returns [`DataPopError::Cancelled`].
pub async fn run(request: &Request, cancel: &CancellationToken) -> Result<Outcome, DataPopError> {
    let masker = Masker::new(&[
        request.connection.password.expose(),
        request.connection.reset_password.expose(),
    ]);
    let staged = {
        let req = request.clone();
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || stage::stage(&req, &cancel))
            .await
            .map_err(|e| DataPopError::Io {
                what: "stage the Data Population tool".into(),
                source: std::io::Error::other(e.to_string()),
            })??
    };
    if cancel.is_cancelled() {
        return Err(DataPopError::Cancelled { tail: Vec::new() });
    }
    tracing::info!(
        environment = %request.environment,
        command = request.command.as_str(),
        host = %request.connection.host,
        port = request.connection.port,
        schema = %request.connection.schema,
        "running the Data Population tool"
    );
    let outcome = process::run_launcher(&staged, request.command, &masker, cancel).await;
    // Removed here, and on drop if anything above returned early.
    staged.remove().await;
    outcome
}
