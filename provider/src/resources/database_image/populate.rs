//! The data directory of one data fingerprint: made by a local server
//! populated by the Data Population tool, or taken from the provider's
//! cache of earlier runs.
//!
//! MariaDB's data files are not byte-for-byte reproducible (table version
//! UUIDs in `.frm` files, log sequence numbers and timestamps in pages), so
//! two server runs never give the same layer. A run's normalised data
//! directory is kept under the fingerprint it was made for: building the
//! same inputs again on this machine reuses it and pushes the same image.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

use super::settings::Args;
use crate::datapop::{self, Command, Connection, DataPopError, Request, Secret, DEFAULT_MAX_DISK};
use crate::dbserver::{normalise, LocalServer, ServerError, ServerOptions};
use crate::framework::{blocking, Diagnostic, Diagnostics, Interrupted, Op};
use crate::resources::image::request::cache_root;
use crate::resources::image::ImagePrivate;

/// The account the tool resets the schema as; dropped before shutdown, so
/// the image holds no password made here.
pub const POPULATE_USER: &str = "ep_populate";

/// How long the server may take to start answering.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean shutdown may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(300);

/// Where finished data directories are kept, by fingerprint.
fn data_cache() -> PathBuf {
    cache_root().join("database-data")
}

fn interrupted(op: &Op<ImagePrivate>, what: &str) -> Diagnostics {
    op.interrupted()
        .unwrap_or(Interrupted::Stopped)
        .to_diagnostic(what)
        .into()
}

fn server_diag(op: &Op<ImagePrivate>, e: ServerError, args: &Args) -> Diagnostics {
    match e {
        ServerError::Cancelled => interrupted(op, "the database server was running"),
        ServerError::Spawn { ref program, .. }
            if Path::new(program) == args.install_db.as_path() =>
        {
            Diagnostic::error("Cannot initialise the database", e.to_string())
                .at(crate::framework::AttrPath::root("install_db_binary"))
                .into()
        }
        e => Diagnostic::error("The local database server failed", e.to_string()).into(),
    }
}

/// The data directory for fingerprint `fp`: from the cache, or populated now.
pub async fn data_directory(
    op: &Op<ImagePrivate>,
    args: &Args,
    fp: &str,
) -> Result<PathBuf, Diagnostics> {
    let cached = data_cache().join(fp);
    if cached.is_dir() {
        tracing::info!(dir = %cached.display(), "reusing the data directory populated earlier for these inputs");
        return Ok(cached);
    }
    let opts = ServerOptions {
        server: args.server.clone(),
        install_db: args.install_db.clone(),
        client: args.client.clone(),
        work_parent: cache_root().join("database-work"),
        startup_timeout: STARTUP_TIMEOUT,
        shutdown_timeout: SHUTDOWN_TIMEOUT,
    };
    let token = op.token();
    let server = LocalServer::start(opts, token)
        .await
        .map_err(|e| server_diag(op, e, args))?;
    // Every way out of the job ends the server here, and waits until it is
    // gone (dropping it would only signal it).
    if let Err(d) = run_job(op, args, &server).await {
        server.abort().await;
        return Err(d);
    }
    let stopped = server
        .stop(token)
        .await
        .map_err(|e| server_diag(op, e, args))?;
    let data = stopped.data_dir();
    let removed = blocking("Normalising the data directory", move || normalise(&data))
        .await?
        .map_err(|e| server_diag(op, e, args))?;
    tracing::debug!(?removed, "left out of the data directory");
    let parent = data_cache();
    std::fs::create_dir_all(&parent)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            // The data holds the application user's password hash.
            std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Cannot create the data cache",
                format!("{}: {e}", parent.display()),
            ))
        })?;
    match std::fs::rename(stopped.data_dir(), &cached) {
        Ok(()) => {}
        // Another build of the same inputs finished first: its data is as good.
        Err(_) if cached.is_dir() => {}
        Err(e) => {
            return Err(Diagnostic::error(
                "Cannot keep the data directory",
                format!("{}: {e}", cached.display()),
            )
            .into())
        }
    }
    drop(stopped);
    Ok(cached)
}

/// The job on the running server: a temporary reset account, the tool,
/// the account dropped again.
async fn run_job(
    op: &Op<ImagePrivate>,
    args: &Args,
    server: &LocalServer,
) -> Result<(), Diagnostics> {
    let token = op.token();
    let reset_password = Alphanumeric.sample_string(&mut rand::rng(), 32);
    server
        .create_admin(POPULATE_USER, &reset_password, token)
        .await
        .map_err(|e| server_diag(op, e, args))?;
    populate(op, args, &reset_password, server.port()).await?;
    server
        .drop_admin(POPULATE_USER, token)
        .await
        .map_err(|e| server_diag(op, e, args))
}

/// Runs `reset-db` against the local server.
async fn populate(
    op: &Op<ImagePrivate>,
    args: &Args,
    reset_password: &str,
    port: u16,
) -> Result<(), Diagnostics> {
    let request = Request {
        package: PathBuf::from(&args.package),
        environment: args.environment.clone(),
        command: Command::ResetDb,
        connection: Connection {
            host: "127.0.0.1".into(),
            port,
            schema: args.schema.clone(),
            username: args.app_user.clone(),
            password: args.password.clone(),
            reset_user: POPULATE_USER.into(),
            reset_password: Secret::new(reset_password),
        },
        extra_properties: args.extra_properties.clone(),
        work_parent: None,
        max_disk: DEFAULT_MAX_DISK,
    };
    match datapop::run(&request, op.token()).await {
        Ok(o) if o.success() => Ok(()),
        Ok(o) => Err(Diagnostic::error(
            "The Data Population tool failed",
            format!(
                "`data-population.sh reset-db` for environment {:?} exited with {}; nothing was \
                 pushed. Its last output:\n{}",
                args.environment,
                o.exit_code
                    .map_or("a signal".to_owned(), |c| format!("code {c}")),
                o.tail.join("\n")
            ),
        )
        .into()),
        Err(DataPopError::Cancelled { tail }) => {
            let mut d = op
                .interrupted()
                .unwrap_or(Interrupted::Stopped)
                .to_diagnostic("the Data Population tool was running");
            if !tail.is_empty() {
                d.detail
                    .push_str(&format!("\nIts last output:\n{}", tail.join("\n")));
            }
            Err(d.into())
        }
        Err(e @ DataPopError::UnknownEnvironment { .. }) => {
            Err(Diagnostic::error("Unknown environment", e.to_string())
                .at(crate::framework::AttrPath::root("environment"))
                .into())
        }
        Err(e) => {
            Err(Diagnostic::error("Cannot run the Data Population tool", e.to_string()).into())
        }
    }
}
