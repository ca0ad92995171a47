//! The synthetic package's Data Population tool against a real MariaDB: the contract of
//! `docs/data-population.md` (`--dataDirectory`, `--configDirectory`, `reset-db`,
//! `update-db`, `database.properties`), different rows for `author` and `live`, `update-db`
//! applying only what is pending, the lock, and failures with a message and no password.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ep_imagebuild::synthetic::{self, SynthOptions, DATA_POPULATION_LAUNCHER, DEFAULT_VERSION};
use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};
use terraform_provider_ep::datapop::properties::escape_value;

const APP_PASSWORD: &str = "app-pw-'quoted\"-\\x";

struct Staged {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    tool: PathBuf,
    ext: PathBuf,
}

fn unzip(archive: &Path, dest: &Path) {
    let f = std::fs::File::open(archive).expect("open archive");
    let mut z = zip::ZipArchive::new(f).expect("read zip");
    z.extract(dest).expect("extract");
}

/// A small generated package with the tool and the ext-data jar unzipped, as the provider
/// stages them.
fn stage() -> Staged {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let pkg = root.join("pkg");
    synthetic::write_dir(&SynthOptions::small(21), &pkg).expect("generate package");
    let v = DEFAULT_VERSION;
    let tool = root.join("tool");
    let ext = root.join("ext-data");
    unzip(
        &pkg.join(format!("tools/ext-data-population-cli-{v}-package.zip")),
        &tool,
    );
    unzip(&pkg.join(format!("database/ext-data-{v}.jar")), &ext);
    Staged {
        _tmp: tmp,
        root,
        tool,
        ext,
    }
}

impl Staged {
    /// `environments/<env>` copied, with a `database.properties` pointing at `db`.
    fn config(&self, name: &str, env: &str, db: &MariaDb, schema: &str, reset_pw: &str) -> PathBuf {
        let dir = self.root.join(format!("conf-{name}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let src = self.ext.join("environments").join(env);
        for e in std::fs::read_dir(&src).expect("read env") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_file() {
                std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
            }
        }
        std::fs::write(
            dir.join("database.properties"),
            format!(
                "# written by the test, as the provider writes it\n\
                 data.population.host=127.0.0.1\n\
                 data.population.port={}\n\
                 data.population.schemaname={schema}\n\
                 data.population.username=ep_{schema}\n\
                 data.population.password={app_pw}\n\
                 data.population.reset_user=root\n\
                 data.population.reset_password={reset_pw}\n\
                 data.population.url=jdbc:mysql://${{data.population.host}}:${{data.population.port}}/${{data.population.schemaname}}\n",
                db.port(),
                // Escaped as java.util.Properties reads it (the backslash in particular).
                app_pw = escape_value(APP_PASSWORD),
            ),
        )
        .expect("write database.properties");
        dir
    }

    fn run(&self, config: &Path, command: &str) -> Output {
        Command::new(self.tool.join("data-population.sh"))
            .arg("--dataDirectory")
            .arg(&self.ext)
            .arg("--configDirectory")
            .arg(config)
            .arg(command)
            .output()
            .expect("run data-population.sh")
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_no_password(o: &Output, passwords: &[&str]) {
    let all = text(o);
    for p in passwords {
        assert!(
            !all.contains(p),
            "a password appeared in the output:\n{all}"
        );
    }
}

#[test]
fn reset_and_update_author_and_live() {
    let staged = stage();
    // The zip carries the launcher (executable) and its jars, and a bin/ wrapper.
    let launcher =
        std::fs::read_to_string(staged.tool.join("data-population.sh")).expect("launcher");
    assert_eq!(launcher, DATA_POPULATION_LAUNCHER);
    assert!(staged.tool.join("bin/data-population.sh").exists());
    assert!(staged.tool.join("lib").is_dir());

    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let pw = db.root_password().to_owned();
    let secrets = [pw.as_str(), APP_PASSWORD];

    let author = staged.config("author", "author", &db, "commerce_author", &pw);
    let live = staged.config("live", "live", &db, "commerce_live", &pw);
    for conf in [&author, &live] {
        let o = staged.run(conf, "reset-db");
        assert!(o.status.success(), "reset-db failed:\n{}", text(&o));
        assert_no_password(&o, &secrets);
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
    assert_eq!(
        q("SELECT NAME FROM commerce_author.TSTORE"),
        "Author Preview Store"
    );
    assert_eq!(q("SELECT NAME FROM commerce_live.TSTORE"), "Live Store");
    assert_eq!(
        q("SELECT VALUE FROM commerce_live.TSETTING WHERE NAME='COMMERCE/SYSTEM/CHANGESETS/enable'"),
        "false"
    );
    // The catalogue is the same in both.
    let skus = "SELECT GROUP_CONCAT(SKUCODE ORDER BY UIDPK) FROM commerce_{}.TPRODUCTSKU";
    assert_eq!(
        q(&skus.replace("{}", "author")),
        q(&skus.replace("{}", "live"))
    );
    assert_eq!(q("SELECT COUNT(*) FROM commerce_author.TPRODUCTSKU"), "12");
    assert_eq!(
        q("SELECT COUNT(*) FROM commerce_author.DATABASECHANGELOG"),
        "3"
    );

    // The application user was created with its password and reaches its schema only.
    let app_cnf = staged.root.join("app.cnf");
    db.write_option_file(&app_cnf, "ep_commerce_author", APP_PASSWORD)
        .expect("option file");
    assert_eq!(
        db.query_as(&app_cnf, "SELECT COUNT(*) FROM commerce_author.TPRODUCTSKU")
            .expect("app user query"),
        "12"
    );
    assert!(db
        .query_as(&app_cnf, "SELECT COUNT(*) FROM commerce_live.TPRODUCTSKU")
        .is_err());

    // update-db twice after reset-db: nothing pending either time.
    for _ in 0..2 {
        let o = staged.run(&author, "update-db");
        assert!(o.status.success(), "update-db failed:\n{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("0 change sets applied, 3 already applied"),
            "{}",
            text(&o)
        );
        assert_no_password(&o, &secrets);
    }
    assert_eq!(
        q("SELECT COUNT(*) FROM commerce_author.DATABASECHANGELOG"),
        "3"
    );

    // update-db on a schema that exists but is empty applies everything once.
    q("CREATE DATABASE commerce_fresh");
    q(&format!(
        "CREATE USER 'ep_commerce_fresh'@'%' IDENTIFIED BY {}; GRANT ALL ON commerce_fresh.* TO 'ep_commerce_fresh'@'%'",
        ep_terraform_tests::mariadb::sql_string(APP_PASSWORD)
    ));
    let fresh = staged.config("fresh", "author", &db, "commerce_fresh", &pw);
    let first = staged.run(&fresh, "update-db");
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("3 change sets applied"),
        "{}",
        text(&first)
    );
    let second = staged.run(&fresh, "update-db");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("0 change sets applied"),
        "{}",
        text(&second)
    );
    assert_eq!(
        q("SELECT VALUE FROM commerce_fresh.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'"),
        "author"
    );

    // The bin/ wrapper runs the same launcher.
    let o = Command::new(staged.tool.join("bin/data-population.sh"))
        .arg("--dataDirectory")
        .arg(&staged.ext)
        .arg(format!("--configDirectory={}", fresh.display()))
        .arg("update-db")
        .output()
        .expect("run bin/data-population.sh");
    assert!(o.status.success(), "{}", text(&o));

    // An applied change set whose text changed is refused (exit 6).
    let changelog = staged.ext.join(synthetic::EXT_DATA_SQL_CHANGELOG);
    let original = std::fs::read_to_string(&changelog).expect("read changelog");
    std::fs::write(
        &changelog,
        original.replacen("'Author Preview Store'", "'Renamed Store'", 1),
    )
    .expect("edit changelog");
    let changed = staged.run(&fresh, "update-db");
    std::fs::write(&changelog, &original).expect("restore changelog");
    assert_eq!(changed.status.code(), Some(6), "{}", text(&changed));
    assert!(
        String::from_utf8_lossy(&changed.stderr)
            .contains("ext-data-author-1::ep was applied with checksum"),
        "{}",
        text(&changed)
    );

    // One run per database: a held lock is reported, and nothing is applied.
    q("UPDATE commerce_fresh.DATABASECHANGELOGLOCK SET LOCKED=1, LOCKEDBY='other-host (pid 1)', LOCKGRANTED=NOW()");
    let locked = staged.run(&fresh, "update-db");
    assert_eq!(locked.status.code(), Some(5), "{}", text(&locked));
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("holds the lock"),
        "{}",
        text(&locked)
    );
}

#[test]
fn refused_database_fails_with_a_message_and_no_password() {
    let staged = stage();
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let wrong = "wrong-'pw\"-42";
    let conf = staged.config("bad", "author", &db, "commerce_bad", wrong);
    let o = staged.run(&conf, "reset-db");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refused the reset user 'root'") && err.contains("Access denied"),
        "{}",
        text(&o)
    );
    assert_no_password(&o, &[wrong, db.root_password(), APP_PASSWORD]);
    assert_eq!(
        db.query("SHOW DATABASES LIKE 'commerce_bad'")
            .expect("query"),
        ""
    );

    // update-db on a schema that does not exist says so.
    let missing = staged.config(
        "missing",
        "author",
        &db,
        "commerce_missing",
        db.root_password(),
    );
    let o = staged.run(&missing, "update-db");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("reset-db"),
        "{}",
        text(&o)
    );

    // Usage errors.
    let o = Command::new(staged.tool.join("data-population.sh"))
        .args(["--dataDirectory", "/nonexistent", "reset-db"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
