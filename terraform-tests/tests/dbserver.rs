//! The provider's throwaway database server (`terraform_provider_ep::dbserver`)
//! with the host's real MariaDB: started on a fresh data directory on
//! 127.0.0.1, answering SQL, stopped cleanly into a data directory that
//! [`normalise`] strips of run-time files; killed and reaped when a job
//! fails or is cancelled; a server that cannot start reports its log. No
//! path leaves a process or a work directory behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use terraform_provider_ep::dbserver::{
    default_server, normalise, server_version, LocalServer, ServerError, ServerOptions,
};
use tokio_util::sync::CancellationToken;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn options(work: &Path) -> ServerOptions {
    ServerOptions {
        server: default_server(),
        install_db: PathBuf::from("mariadb-install-db"),
        client: PathBuf::from("mariadb"),
        work_parent: work.to_path_buf(),
        startup_timeout: Duration::from_secs(60),
        shutdown_timeout: Duration::from_secs(60),
    }
}

/// Command lines that mention `path`.
fn processes_under(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(&needle) {
                found.push(text);
            }
        }
    }
    found
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn start_query_stop_and_normalise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let cancel = CancellationToken::new();
    let rt = rt();
    let version = rt
        .block_on(server_version(&default_server()))
        .expect("version");
    assert!(version.contains("MariaDB"), "{version}");
    let server = rt
        .block_on(LocalServer::start(options(&work), &cancel))
        .expect("start");
    // Only on 127.0.0.1.
    let listening = std::net::TcpStream::connect(("127.0.0.1", server.port()));
    assert!(listening.is_ok(), "not listening on 127.0.0.1");
    rt.block_on(server.create_admin("job", "pw-'\\x", &cancel))
        .expect("create admin");
    let users = rt
        .block_on(server.sql(
            "CREATE DATABASE d; CREATE TABLE d.t (i INT) ENGINE=InnoDB; INSERT INTO d.t VALUES (7);\n\
             SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User='job';",
            &cancel,
        ))
        .expect("sql");
    assert_eq!(users, "job@127.0.0.1");
    rt.block_on(server.drop_admin("job", &cancel))
        .expect("drop admin");
    let stopped = rt.block_on(server.stop(&cancel)).expect("clean stop");
    assert!(processes_under(&work).is_empty(), "server still running");
    let data = stopped.data_dir();
    assert!(data.join("d/t.ibd").is_file());
    let removed = normalise(&data).expect("normalise");
    // mariadb-install-db's bootstrap dumps the buffer pool; the server run does not.
    assert_eq!(removed, ["ib_buffer_pool"]);
    for f in ["ib_buffer_pool", "ibtmp1", "ddl_recovery.log"] {
        assert!(!data.join(f).exists(), "{f} left in the data directory");
    }
    for f in ["ibdata1", "ib_logfile0", "aria_log_control"] {
        assert!(data.join(f).is_file(), "{f} missing");
    }
    drop(stopped);
    assert!(
        entries(&work).is_empty(),
        "work directory left: {:?}",
        entries(&work)
    );
}

#[test]
fn an_aborted_job_kills_and_reaps_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let cancel = CancellationToken::new();
    let rt = rt();
    let server = rt
        .block_on(LocalServer::start(options(&work), &cancel))
        .expect("start");
    assert!(!processes_under(&work).is_empty(), "no server process seen");
    let started = Instant::now();
    rt.block_on(server.abort());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(processes_under(&work).is_empty(), "server outlived abort");
    assert!(
        entries(&work).is_empty(),
        "work directory left: {:?}",
        entries(&work)
    );
}

#[test]
fn cancelling_a_start_or_a_stop_ends_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let rt = rt();
    // Cancelled before the server answers.
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    rt.spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let started = rt.block_on(LocalServer::start(options(&work), &cancel));
    assert!(
        matches!(started, Err(ServerError::Cancelled)),
        "{:?}",
        started.err()
    );
    assert!(
        processes_under(&work).is_empty(),
        "server outlived a cancelled start"
    );
    // Cancelled during a stop: killed instead of waited for.
    let fresh = CancellationToken::new();
    let server = rt
        .block_on(LocalServer::start(options(&work), &fresh))
        .expect("start");
    fresh.cancel();
    let stopped = rt.block_on(server.stop(&fresh));
    assert!(matches!(stopped, Err(ServerError::Cancelled)));
    assert!(
        processes_under(&work).is_empty(),
        "server outlived a cancelled stop"
    );
    assert!(
        entries(&work).is_empty(),
        "work directory left: {:?}",
        entries(&work)
    );
}

#[test]
fn a_server_that_cannot_start_reports_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let cancel = CancellationToken::new();
    let rt = rt();
    let mut opts = options(&work);
    opts.server = PathBuf::from("/nonexistent/mariadbd");
    let e = rt
        .block_on(LocalServer::start(opts, &cancel))
        .err()
        .expect("no server binary");
    assert!(matches!(e, ServerError::Spawn { .. }), "{e}");
    // A server that rejects its options exits at once: its log is in the error.
    let mut opts = options(&work);
    let script = tmp.path().join("bad-server.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor a; do case $a in --log-error=*) echo 'unknown option --frobnicate' > \"${a#--log-error=}\";; esac; done\nexit 1\n",
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    opts.server = script;
    let e = rt
        .block_on(LocalServer::start(opts, &cancel))
        .err()
        .expect("the server exits");
    let text = e.to_string();
    assert!(matches!(e, ServerError::NotReady { .. }), "{text}");
    assert!(text.contains("unknown option --frobnicate"), "{text}");
    assert!(
        entries(&work).is_empty(),
        "work directory left: {:?}",
        entries(&work)
    );
}
