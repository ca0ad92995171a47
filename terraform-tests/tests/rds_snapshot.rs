//! `ep_rds_snapshot` with real Terraform against moto's RDS, the Data
//! Population tool populating a real MariaDB through the `tunnel`
//! override (moto starts no database). Waits are scaled down with
//! `EP_WAIT_SCALE`: moto's instances and snapshots are available at once.

use std::path::{Path, PathBuf};

use std::time::Duration;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};
use ep_terraform_tests::{Scenario, TestEnv, Workdir};

const WAIT_SCALE: (&str, &str) = ("EP_WAIT_SCALE", "0.01");
const APP_PASSWORD: &str = "App-Passw0rd-9f";

use ep_terraform_tests::HEADER;

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{:x}{:x}", std::process::id(), nanos % 0xfffff)
}

/// Generated packages (seed decides the data) in a directory outside the workdir.
struct Packages {
    dir: tempfile::TempDir,
}

impl Packages {
    fn new() -> Self {
        Packages {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn make(&self, seed: u64) -> PathBuf {
        let p = self.dir.path().join(format!("package-{seed}.zip"));
        if !p.exists() {
            synthetic::write_zip(&SynthOptions::small(seed), &p).expect("generate package");
        }
        p
    }
}

/// One RDS query API call to moto; the XML answer.
fn moto_rds(action: &str, params: &[(&str, &str)]) -> String {
    let env = TestEnv::get();
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-S", &env.moto.clone(), "-H"])
        .arg("Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/rds/aws4_request, SignedHeaders=host, Signature=0")
        .args(["--data-urlencode", &format!("Action={action}")])
        .args(["--data-urlencode", "Version=2014-10-31"]);
    for (k, v) in params {
        cmd.args(["--data-urlencode", &format!("{k}={v}")]);
    }
    let out = cmd.output().expect("curl");
    assert!(out.status.success(), "curl failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `<tag>…</tag>` value in `xml`.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next().map(str::to_owned))
        .collect()
}

fn snapshots_named(prefix: &str) -> Vec<String> {
    xml_values(
        &moto_rds("DescribeDBSnapshots", &[]),
        "DBSnapshotIdentifier",
    )
    .into_iter()
    .filter(|s| s.starts_with(prefix))
    .collect()
}

fn instances_named(prefix: &str) -> Vec<String> {
    xml_values(
        &moto_rds("DescribeDBInstances", &[]),
        "DBInstanceIdentifier",
    )
    .into_iter()
    .filter(|s| s.starts_with(prefix))
    .collect()
}

/// The configuration: a package path fed through `terraform_data` (unknown
/// at plan), the tool pointed at `db` through `tunnel`.
fn config(name: &str, package: &Path, db: &MariaDb, port: u16, extra: &str) -> String {
    let env = TestEnv::get();
    format!(
        r#"{HEADER}
{provider}

resource "terraform_data" "package" {{
  input = "{package}"
}}

resource "ep_rds_snapshot" "author" {{
  name               = "{name}"
  deployment_package = terraform_data.package.output
  environment        = "author"
  schema_name        = "commerce_author"
  database_password  = "{APP_PASSWORD}"
  master_username    = "root"
  master_password    = "{root_pw}"
  tunnel {{
    host = "127.0.0.1"
    port = {port}
  }}
{extra}
}}

output "snapshot" {{
  value = ep_rds_snapshot.author.snapshot_identifier
}}
"#,
        provider = env.moto_provider_block(),
        package = package.display(),
        root_pw = db.root_password(),
    )
}

fn author_setting(db: &MariaDb) -> String {
    db.query("SELECT VALUE FROM commerce_author.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'")
        .unwrap_or_else(|e| format!("query failed: {e}"))
}

fn check_applied(wd: &Workdir, name: &str, db: &MariaDb) -> serde_json::Value {
    let v = wd.resource_values("ep_rds_snapshot.author");
    let fp = v["data_fingerprint"].as_str().expect("data_fingerprint");
    assert_eq!(fp.len(), 64, "{v:#}");
    let snap = format!("{name}-{}", &fp[..12]);
    assert_eq!(v["snapshot_identifier"], snap, "{v:#}");
    assert_eq!(v["id"], snap, "{v:#}");
    assert_eq!(
        v["instance_identifier"],
        format!("{name}-{}-tmp", &fp[..8]),
        "{v:#}"
    );
    assert!(
        v["snapshot_arn"]
            .as_str()
            .is_some_and(|a| a.contains(&snap)),
        "{v:#}"
    );
    assert!(
        v["created_at"].as_str().is_some_and(|t| !t.is_empty()),
        "{v:#}"
    );
    assert!(
        v["actual_engine_version"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{v:#}"
    );
    assert_eq!(
        snapshots_named(name),
        vec![snap],
        "exactly the new snapshot exists"
    );
    assert!(
        instances_named(name).is_empty(),
        "the temporary instance is gone"
    );
    assert_eq!(author_setting(db), "author");
    v
}

#[test]
fn lifecycle_create_change_data_update_in_place_import_destroy() {
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let packages = Packages::new();
    let (p1, p2) = (packages.make(11), packages.make(12));
    let name = unique("ep-life");
    let n1 = name.clone();
    let (n2, n3, n4) = (name.clone(), name.clone(), name.clone());
    let first: std::rc::Rc<std::cell::RefCell<String>> = Default::default();
    let (f1, f2) = (first.clone(), first.clone());
    let db = std::rc::Rc::new(db);
    let (d1, d2, d3) = (db.clone(), db.clone(), db.clone());
    Scenario::new()
        .env(WAIT_SCALE.0, WAIT_SCALE.1)
        // Create, with the package path unknown at plan.
        .step(config(&name, &p1, &db, db.port(), ""), move |wd| {
            let v = check_applied(wd, &n1, &d1);
            *f1.borrow_mut() = v["snapshot_identifier"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        })
        // Other data (unknown at plan again): a new snapshot, the old one deleted.
        .step(config(&name, &p2, &db, db.port(), ""), move |wd| {
            let v = check_applied(wd, &n2, &d2);
            assert_ne!(
                v["snapshot_identifier"].as_str(),
                Some(f2.borrow().as_str())
            );
        })
        // Only how a future run would go: changed in place, same snapshot.
        .step(
            config(
                &name,
                &p2,
                &db,
                db.port(),
                "  instance_class = \"db.t3.large\"\n  allocated_storage = 30\n",
            ),
            move |wd| {
                let v = check_applied(wd, &n3, &d3);
                assert_eq!(v["instance_class"], "db.t3.large");
            },
        )
        .import("ep_rds_snapshot.author", |wd| {
            wd.resource_values("ep_rds_snapshot.author")["snapshot_identifier"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .ignore_on_import(&[
            "database_password",
            "master_password",
            "master_username",
            "tunnel",
            "instance_class",
            "allocated_storage",
        ])
        .destroyed(move || {
            assert!(
                snapshots_named(&n4).is_empty(),
                "snapshots left after destroy"
            );
            assert!(
                instances_named(&n4).is_empty(),
                "instances left after destroy"
            );
        })
        .run();
}

fn workdir() -> Workdir {
    let mut wd = Workdir::new(&[]);
    wd.set_env(WAIT_SCALE.0, WAIT_SCALE.1);
    wd
}

#[test]
fn a_failing_tool_leaves_no_snapshot_and_no_instance_unless_asked_to_keep_it() {
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let packages = Packages::new();
    let pkg = packages.make(21);
    let name = unique("ep-fail");
    let wd = workdir();
    let wrong = "Wrong-Passw0rd-41";
    let bad = config(&name, &pkg, &db, db.port(), "").replace(db.root_password(), wrong);
    wd.write("main.tf", &bad);
    wd.init();
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    let all = out.all();
    assert!(all.contains("The Data Population tool failed"), "{all}");
    assert!(
        all.contains("Access denied"),
        "the tool's tail is in the diagnostic:\n{all}"
    );
    assert!(
        !all.contains(wrong) && !all.contains(APP_PASSWORD),
        "a password leaked:\n{all}"
    );
    assert!(
        snapshots_named(&name).is_empty(),
        "no snapshot after a failed run"
    );
    assert!(
        instances_named(&name).is_empty(),
        "no instance after a failed run"
    );

    // Kept on failure: the instance stays, and the next apply adopts it.
    wd.write(
        "main.tf",
        &bad.replace(
            "  tunnel {",
            "  keep_instance_on_failure = true\n  tunnel {",
        ),
    );
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("Temporary DB instance kept"),
        "{}",
        out.all()
    );
    assert_eq!(instances_named(&name).len(), 1, "the instance was kept");

    // State lost (a crash before Terraform saved it): the next apply finds
    // the instance by its identifier and adopts it instead of orphaning it.
    wd.ok(&["state", "rm", "ep_rds_snapshot.author"]);
    wd.write("main.tf", &config(&name, &pkg, &db, db.port(), ""));
    let out = wd.apply();
    assert!(
        out.all().contains("Adopted a temporary DB instance"),
        "{}",
        out.all()
    );
    check_applied(&wd, &name, &db);
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(snapshots_named(&name).is_empty() && instances_named(&name).is_empty());
}

#[test]
fn ctrl_c_during_the_tool_stops_promptly_and_the_next_apply_cleans_up() {
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    // A server that accepts and never greets: the tool hangs until stopped.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let packages = Packages::new();
    let pkg = packages.make(31);
    let name = unique("ep-int");
    let wd = workdir();
    wd.write("main.tf", &config(&name, &pkg, &db, silent_port, ""));
    wd.init();
    // Past the instance wait (scaled), into the tool's run.
    let out = wd.apply_stopped_by_ctrl_c(
        || !instances_named(&name).is_empty(),
        Duration::from_secs(120),
        Duration::from_secs(3),
    );
    assert!(out.stderr.contains("Interrupted"), "{}", out.all());
    assert!(
        snapshots_named(&name).is_empty(),
        "no snapshot from an interrupted run"
    );
    drop(silent);

    // The next apply, pointed at the real database, finishes the job.
    wd.write("main.tf", &config(&name, &pkg, &db, db.port(), ""));
    wd.apply();
    check_applied(&wd, &name, &db);
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(snapshots_named(&name).is_empty() && instances_named(&name).is_empty());
}

#[test]
fn a_snapshot_deleted_outside_terraform_is_planned_again() {
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let packages = Packages::new();
    let pkg = packages.make(41);
    let name = unique("ep-gone");
    let wd = workdir();
    wd.write(
        "main.tf",
        &config(&name, &pkg, &db, db.port(), "  retain_on_delete = true\n"),
    );
    wd.init();
    wd.apply();
    let v = check_applied(&wd, &name, &db);
    let snap = v["snapshot_identifier"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    moto_rds("DeleteDBSnapshot", &[("DBSnapshotIdentifier", &snap)]);
    let out = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stdout.contains("1 to add"), "{}", out.all());
    wd.apply();
    check_applied(&wd, &name, &db);
    // retain_on_delete: destroy forgets the snapshot but keeps it.
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(snapshots_named(&name), vec![snap.clone()]);
    moto_rds("DeleteDBSnapshot", &[("DBSnapshotIdentifier", &snap)]);
}

#[test]
fn bad_input_is_reported_at_validate_on_the_attribute() {
    let packages = Packages::new();
    let pkg = packages.make(51);
    let no_tool = packages.dir.path().join("no-tool.zip");
    {
        let f = std::fs::File::create(&no_tool).expect("create zip");
        let mut z = zip::ZipWriter::new(f);
        z.start_file(
            "webapps/ext-cortex-webapp-1.0.war",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("zip entry");
        z.finish().expect("finish zip");
    }
    let resource = |package: &Path, extra: &str| {
        format!(
            r#"{HEADER}
resource "ep_rds_snapshot" "s" {{
  name               = "ep-bad"
  deployment_package = "{}"
  database_password  = "x"
{extra}
}}
"#,
            package.display()
        )
    };
    let cases = [
        (
            resource(&pkg, "  environment = \"staging\"\n"),
            "Unknown environment",
            "environment",
        ),
        (
            resource(&no_tool, "  environment = \"author\"\n"),
            "cannot populate a database",
            "deployment_package",
        ),
        (
            resource(
                &pkg,
                "  environment = \"author\"\n  engine_version = \"eight\"\n",
            ),
            "Invalid engine version",
            "engine_version",
        ),
        (
            resource(
                &pkg,
                "  environment = \"author\"\n  instance_class = \"t3.medium\"\n",
            ),
            "Invalid instance class",
            "instance_class",
        ),
        (
            resource(
                &pkg,
                "  environment = \"author\"\n  master_password = \"has space pw\"\n",
            ),
            "RDS would reject",
            "master_password",
        ),
        (
            resource(
                &pkg,
                "  environment = \"author\"\n  master_password = \"short\"\n",
            ),
            "8 to 41 characters",
            "master_password",
        ),
        (
            resource(
                &pkg,
                "  environment = \"author\"\n  master_password = \"Good-Passw0rd\"\n  master_password_wo = \"Other-Passw0rd\"\n",
            ),
            "Conflicting master passwords",
            "master_password_wo",
        ),
    ];
    let wd = workdir();
    wd.write("main.tf", &cases[0].0);
    wd.init();
    for (cfg, message, attr) in &cases {
        wd.write("main.tf", cfg);
        let all = wd.validate_fails();
        assert!(all.contains(message), "expected {message:?}:\n{all}");
        assert!(
            all.contains(&format!("{attr} =")),
            "the error points at {attr}:\n{all}"
        );
    }
}

/// `create_before_destroy` with unknown inputs whose data turns out
/// unchanged: the replacement adopts the same snapshot, and the old
/// object's delete must leave it alone.
#[test]
fn create_before_destroy_with_unchanged_data_keeps_the_adopted_snapshot() {
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let packages = Packages::new();
    let pkg = packages.make(61);
    let copy = packages.dir.path().join("same-data.zip");
    std::fs::copy(&pkg, &copy).expect("copy package");
    let name = unique("ep-cbd");
    let cbd = "  lifecycle {\n    create_before_destroy = true\n  }\n";
    let wd = workdir();
    wd.write("main.tf", &config(&name, &pkg, &db, db.port(), cbd));
    wd.init();
    wd.apply();
    let before = check_applied(&wd, &name, &db);
    // Another path: unknown at plan, so a replacement; the same data at apply.
    wd.write("main.tf", &config(&name, &copy, &db, db.port(), cbd));
    let out = wd.apply();
    assert!(
        out.stdout.contains("1 added, 1 changed, 1 destroyed"),
        "{}",
        out.all()
    );
    assert!(out.all().contains("DB snapshot kept"), "{}", out.all());
    let after = check_applied(&wd, &name, &db);
    assert_eq!(before["snapshot_identifier"], after["snapshot_identifier"]);
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(snapshots_named(&name).is_empty() && instances_named(&name).is_empty());
}

/// A second snapshot restored from the first and migrated with `update-db`
/// (the default with a source): RestoreDBInstanceFromDBSnapshot, then
/// ModifyDBInstance for the master password, then the tool.
#[test]
fn a_snapshot_restored_from_another_is_migrated_with_update_db() {
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let packages = Packages::new();
    let pkg = packages.make(71);
    let name = unique("ep-src");
    let base = config(&name, &pkg, &db, db.port(), "");
    let migrated = format!(
        r#"
resource "ep_rds_snapshot" "migrated" {{
  name                       = "{name}-m"
  deployment_package         = terraform_data.package.output
  environment                = "author"
  schema_name                = "commerce_author"
  database_password          = "{APP_PASSWORD}"
  master_username            = "root"
  master_password_wo         = "{root_pw}"
  source_snapshot_identifier = ep_rds_snapshot.author.snapshot_identifier
  tunnel {{
    host = "127.0.0.1"
    port = {port}
  }}
}}
"#,
        root_pw = db.root_password(),
        port = db.port(),
    );
    let wd = workdir();
    wd.write("main.tf", &format!("{base}{migrated}"));
    wd.init();
    let out = wd.apply();
    assert!(out.stdout.contains("3 added"), "{}", out.all());
    let v = wd.resource_values("ep_rds_snapshot.migrated");
    // The write-only master password reached the tool (it connected as root
    // with it) and is in no state.
    assert_eq!(v["master_password_wo"], serde_json::Value::Null, "{v:#}");
    let fp = v["data_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        snapshots_named(&format!("{name}-m")),
        vec![format!("{name}-m-{}", &fp[..12])]
    );
    assert!(
        instances_named(&name).is_empty(),
        "temporary instances are gone"
    );
    // update-db found everything applied: still exactly the author rows.
    assert_eq!(author_setting(&db), "author");
    assert_eq!(
        db.query("SELECT COUNT(*) FROM commerce_author.DATABASECHANGELOG")
            .expect("query"),
        "3"
    );
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(snapshots_named(&name).is_empty() && instances_named(&name).is_empty());
}
