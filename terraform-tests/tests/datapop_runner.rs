//! The provider's Data Population runner (`terraform_provider_ep::datapop`)
//! against a real MariaDB: it stages the synthetic package's tool, writes the
//! connection settings, gives Author and Live their own rows, reports a
//! failing tool with its tail and no password, stops the tool within a second
//! when cancelled, and leaves no work directory behind on any path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};
use terraform_provider_ep::datapop::{
    self, Command, Connection, DataPopError, Request, Secret, DEFAULT_MAX_DISK,
};
use tokio_util::sync::CancellationToken;

const APP_PASSWORD: &str = "app-pw-'quoted\"-x9";

struct Fixture {
    _tmp: tempfile::TempDir,
    package: PathBuf,
    work: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(5), &package).expect("generate package");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    Fixture {
        package,
        work,
        _tmp: tmp,
    }
}

impl Fixture {
    fn request(&self, env: &str, schema: &str, port: u16, reset_pw: &str) -> Request {
        Request {
            package: self.package.clone(),
            environment: env.to_owned(),
            command: Command::ResetDb,
            connection: Connection {
                host: "127.0.0.1".into(),
                port,
                schema: schema.into(),
                username: format!("ep_{schema}"),
                password: Secret::new(APP_PASSWORD),
                reset_user: "root".into(),
                reset_password: Secret::new(reset_pw),
            },
            extra_properties: BTreeMap::new(),
            work_parent: Some(self.work.clone()),
            max_disk: DEFAULT_MAX_DISK,
        }
    }

    /// The work parent holds nothing: every run removed its directory.
    fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.work)
            .expect("read work")
            .map(|e| e.map(|e| e.path()))
            .collect();
        assert!(left.is_empty(), "work directories left behind: {left:?}");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn reset_db_gives_author_and_live_their_rows() {
    let f = fixture();
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let pw = db.root_password().to_owned();
    let rt = rt();
    for (env, schema) in [("author", "commerce_author"), ("live", "commerce_live")] {
        let mut req = f.request(env, schema, db.port(), &pw);
        // Extra properties come last and win over the generated ones.
        req.extra_properties
            .insert("data.population.app_user_host".into(), "127.0.0.1".into());
        let out = rt
            .block_on(datapop::run(&req, &CancellationToken::new()))
            .expect("run");
        assert!(out.success(), "{env}: {:#?}", out);
        for line in &out.tail {
            assert!(
                !line.contains(&pw) && !line.contains(APP_PASSWORD),
                "{line}"
            );
        }
    }
    let q = |sql: &str| db.query(sql).expect("query");
    assert_eq!(
        q("SELECT VALUE FROM commerce_author.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'"),
        "author"
    );
    assert_eq!(
        q("SELECT VALUE FROM commerce_live.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'"),
        "live"
    );
    assert_eq!(q("SELECT NAME FROM commerce_live.TSTORE"), "Live Store");
    assert_eq!(
        q("SELECT COUNT(*) FROM commerce_author.TPRODUCTSKU"),
        q("SELECT COUNT(*) FROM commerce_live.TPRODUCTSKU")
    );
    // The extra property reached the tool: the app user was created for 127.0.0.1 only.
    assert_eq!(
        q("SELECT Host FROM mysql.user WHERE User='ep_commerce_author'"),
        "127.0.0.1"
    );

    // update-db afterwards applies nothing new.
    let mut update = f.request("author", "commerce_author", db.port(), &pw);
    update.command = Command::UpdateDb;
    update
        .extra_properties
        .insert("data.population.app_user_host".into(), "127.0.0.1".into());
    let out = rt
        .block_on(datapop::run(&update, &CancellationToken::new()))
        .expect("run");
    assert!(out.success(), "{out:#?}");
    assert!(
        out.tail.iter().any(|l| l.contains("0 change sets applied")),
        "{out:#?}"
    );
    f.assert_clean();
}

#[test]
fn a_refused_password_fails_with_the_tail_and_no_password() {
    let f = fixture();
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let wrong = "Wrong-Pass-7c1e9";
    let req = f.request("author", "commerce_author", db.port(), wrong);
    let out = rt()
        .block_on(datapop::run(&req, &CancellationToken::new()))
        .expect("run");
    assert_eq!(out.exit_code, Some(3), "{out:#?}");
    let all = out.tail.join("\n");
    assert!(all.contains("Access denied"), "{all}");
    assert!(!all.contains(wrong) && !all.contains(APP_PASSWORD), "{all}");
    f.assert_clean();
}

#[test]
fn an_unknown_environment_or_a_missing_tool_fails_before_running() {
    let f = fixture();
    let req = f.request("staging", "s", 1, "x");
    let err = rt()
        .block_on(datapop::run(&req, &CancellationToken::new()))
        .expect_err("unknown environment");
    match &err {
        DataPopError::UnknownEnvironment { available, .. } => {
            assert!(available.contains(&"author".to_owned()), "{err}")
        }
        other => panic!("unexpected {other}"),
    }
    f.assert_clean();
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn cancellation_kills_the_tool_within_a_second() {
    let f = fixture();
    // A server that accepts connections and never greets: the client hangs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let req = f.request("author", "commerce_author", port, "Whatever-1234");
    let rt = rt();
    let cancel = CancellationToken::new();
    let started = rt.block_on(async {
        let run = datapop::run(&req, &cancel);
        tokio::pin!(run);
        // Let it stage and start the tool.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tokio::select! {
                out = &mut run => panic!("the tool ended on its own: {out:?}"),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if !processes_mentioning(&f.work).is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the tool never started");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        let t = Instant::now();
        let out = run.await;
        (t.elapsed(), out)
    });
    let (took, out) = started;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        matches!(out, Err(DataPopError::Cancelled { .. })),
        "{out:?}"
    );
    let left = processes_mentioning(&f.work);
    assert!(left.is_empty(), "still running: {left:?}");
    f.assert_clean();
}
