//! `ep_database_image` through real Terraform: the provider runs a real
//! MariaDB (the host's `mariadbd`) as a local process, the synthetic
//! package's Data Population tool fills it, and the data directory is
//! pushed to the plain local registry on a busybox root filesystem. The
//! image is read back with skopeo and umoci, and the host's MariaDB is
//! started on the unpacked data directory to query what the tool wrote.
//!
//! Each test has its own provider cache (`EP_IMAGE_CACHE_DIR`), so earlier
//! runs' data directories are never reused.

mod image_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};
use ep_terraform_tests::oci::Registry;
use ep_terraform_tests::HEADER;
use ep_terraform_tests::{Scenario, TestEnv, Workdir};
use image_support::{busybox_rootfs, unique_repo};

/// Everything `java.util.Properties` would misread unescaped: a leading
/// space, `\`, `=`, `:`, `#`, `!`, characters beyond Latin-1 and beyond the BMP.
const APP_PASSWORD: &str = " p\\a=s:s#w!d 'ü€😀\"x";

/// `s` as an HCL string literal.
fn hcl(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A package, a base root filesystem and a provider cache, all private to one test.
struct Fixture {
    dir: tempfile::TempDir,
    package: PathBuf,
    rootfs: PathBuf,
    cache: PathBuf,
}

impl Fixture {
    fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let package = dir.path().join("package.zip");
        synthetic::write_zip(&SynthOptions::small(seed), &package).expect("package");
        let rootfs = dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let cache = dir.path().join("cache");
        Fixture {
            dir,
            package,
            rootfs,
            cache,
        }
    }

    fn config(&self, repo: &str, environment: &str, extra: &str) -> String {
        format!(
            r#"{HEADER}
provider "ep" {{}}

resource "ep_database_image" "db" {{
  repository         = "{repo}"
  tags               = ["v1"]
  base               = "dir:{rootfs}"
  deployment_package = "{package}"
  environment        = "{environment}"
  database_password  = {password}
{extra}
}}

output "digest" {{
  value = ep_database_image.db.digest
}}
"#,
            rootfs = self.rootfs.display(),
            package = self.package.display(),
            password = hcl(APP_PASSWORD),
        )
    }

    fn workdir(&self, config: &str) -> Workdir {
        let mut wd = Workdir::new(&[("main.tf", config)]);
        wd.set_env("EP_IMAGE_CACHE_DIR", &self.cache.display().to_string());
        wd.init();
        wd
    }
}

fn repository(what: &str) -> String {
    format!("{}/{}", TestEnv::get().registry, unique_repo(what))
}

fn digest_of(wd: &Workdir) -> String {
    wd.outputs()["digest"]
        .as_str()
        .expect("digest output")
        .to_owned()
}

/// Starts the host's MariaDB on the image's data directory and checks what
/// the tool wrote for `environment`.
fn check_image_data(reference: &str, environment: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = Registry::anonymous().unpack(reference, tmp.path());
    assert!(rootfs.join("bin/busybox").is_file(), "the base is there");
    let data = rootfs.join("var/lib/mysql");
    for f in ["ibdata1", "ib_logfile0", "mysql/global_priv.frm"] {
        assert!(data.join(f).is_file(), "{f} missing from the image");
    }
    for f in ["ib_buffer_pool", "mysqld.pid", "mysqld.sock", "ibtmp1"] {
        assert!(!data.join(f).exists(), "{f} should be left out");
    }
    let db =
        MariaDb::start_on(MariaDbOptions::default(), &data).expect("MariaDB on the image's data");
    let q = |sql: &str| {
        db.query_socket(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    assert_eq!(
        q("SELECT VALUE FROM commercedb.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'"),
        environment
    );
    let store = if environment == "author" {
        "Author Preview Store"
    } else {
        "Live Store"
    };
    assert_eq!(
        q(&format!(
            "SELECT COUNT(*) FROM commercedb.TSTORE WHERE NAME='{store}'"
        )),
        "1"
    );
    assert_eq!(q("SELECT COUNT(*) FROM commercedb.TPRODUCTSKU"), "12");
    // The application user is there; the account the tool reset the schema as is not.
    assert_eq!(q("SELECT COUNT(*) FROM mysql.user WHERE User='ep'"), "1");
    // The application user logs in with the configured password: it went
    // through Terraform, the escaped database.properties and the tool intact.
    let cnf = tmp.path().join("ep.cnf");
    db.write_option_file(&cnf, "ep", APP_PASSWORD)
        .expect("option file");
    assert_eq!(
        db.query_as(
            &cnf,
            "SELECT COUNT(*) FROM commercedb.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'"
        )
        .expect("the application user logs in with its password"),
        "1"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM mysql.user WHERE User='ep_populate'"),
        "0"
    );
}

/// Processes whose command line mentions `path`: a server left running.
fn processes_under(path: &Path) -> Vec<String> {
    processes_matching(&path.display().to_string())
}

/// Command lines (arguments joined by spaces) that contain `needle`.
fn processes_matching(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(text);
            }
        }
    }
    found
}

#[test]
fn lifecycle_author_then_live_import_destroy() {
    let f = Fixture::new(81);
    let repo = repository("commercedb");
    let (r1, r2, r3) = (repo.clone(), repo.clone(), repo.clone());
    Scenario::new()
        .env("EP_IMAGE_CACHE_DIR", &f.cache.display().to_string())
        .step(f.config(&repo, "author", ""), move |wd| {
            let digest = digest_of(wd);
            assert_eq!(
                Registry::anonymous().digest(&format!("{r1}:v1")),
                Some(digest.clone())
            );
            let v = wd.resource_values("ep_database_image.db");
            assert_eq!(v["image_uri"], format!("{r1}@{digest}"));
            assert!(
                v["server_version"]
                    .as_str()
                    .is_some_and(|s| s.contains("MariaDB")),
                "{v:#}"
            );
            check_image_data(&format!("{r1}@{digest}"), "author");
        })
        .step(f.config(&repo, "live", ""), move |wd| {
            let digest = digest_of(wd);
            assert_eq!(
                Registry::anonymous().digest(&format!("{r2}:v1")),
                Some(digest.clone())
            );
            check_image_data(&format!("{r2}@{digest}"), "live");
        })
        .import("ep_database_image.db", |wd| {
            wd.resource_values("ep_database_image.db")["image_uri"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .ignore_on_import(&["deployment_package", "base", "database_password"])
        .destroyed(move || {
            assert_eq!(
                Registry::anonymous().digest(&format!("{r3}:v1")),
                None,
                "image left after destroy"
            );
        })
        .run();
    assert!(
        processes_under(&f.cache).is_empty(),
        "a server was left running"
    );
}

#[test]
fn the_same_inputs_build_the_same_digest() {
    let f = Fixture::new(82);
    let repo = repository("commercedb");
    let wd = f.workdir(&f.config(&repo, "author", ""));
    wd.apply();
    let first = digest_of(&wd);
    // Destroyed and built again: the same image, not merely the same data.
    let out = wd.run(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-replace=ep_database_image.db",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(digest_of(&wd), first);
    assert_eq!(
        Registry::anonymous().digest(&format!("{repo}:v1")),
        Some(first.clone())
    );
    // A second image of the same inputs in another repository.
    let other = repository("copy");
    let wd2 = f.workdir(&f.config(&other, "author", ""));
    wd2.apply();
    assert_eq!(digest_of(&wd2), first);
    // Another password is other data (the image holds its hash): a new image.
    wd2.write(
        "main.tf",
        &f.config(&other, "author", "")
            .replace(&hcl(APP_PASSWORD), "\"Another-Passw0rd\""),
    );
    wd2.apply();
    assert_ne!(digest_of(&wd2), first, "a new password reused the old data");
    for w in [&wd, &wd2] {
        w.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    }
}

#[test]
fn a_failing_data_population_pushes_nothing() {
    let f = Fixture::new(83);
    let repo = repository("broken");
    let wrong = "Wrong-Passw0rd-41";
    let extra = format!(
        "  extra_properties = {{\n    \"data.population.reset_password\" = \"{wrong}\"\n  }}\n"
    );
    let wd = f.workdir(&f.config(&repo, "author", &extra));
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    let all = out.all();
    assert!(all.contains("The Data Population tool failed"), "{all}");
    assert!(
        all.contains("Access denied"),
        "the tool's output is in the diagnostic:\n{all}"
    );
    // The plan shows extra_properties (not sensitive); the diagnostic must not.
    assert!(
        !out.stderr.contains(wrong) && !all.contains(APP_PASSWORD),
        "a password leaked:\n{all}"
    );
    assert_eq!(
        Registry::anonymous().digest(&format!("{repo}:v1")),
        None,
        "nothing pushed"
    );
    assert!(
        processes_under(&f.cache).is_empty(),
        "a server was left running"
    );
    // Nothing half-made is kept for the next run to reuse, nor left behind.
    for dir in ["database-data", "database-work"] {
        let left = std::fs::read_dir(f.cache.join(dir))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "a failed run left something in {dir}");
    }
    drop(f.dir);
}

#[test]
fn ctrl_c_while_the_tool_runs_stops_the_server() {
    let f = Fixture::new(84);
    let repo = repository("interrupted");
    // A port that accepts and never greets: the tool hangs until stopped.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let extra =
        format!("  extra_properties = {{\n    \"data.population.port\" = \"{port}\"\n  }}\n");
    let wd = f.workdir(&f.config(&repo, "author", &extra));
    let cache = f.cache.clone();
    let out = wd.apply_stopped_by_ctrl_c(
        || {
            // The server is up and the tool is running (stuck on the silent port).
            !processes_under(&cache).is_empty()
                && !processes_matching("--configDirectory").is_empty()
        },
        Duration::from_secs(120),
        Duration::from_secs(3),
    );
    assert!(out.stderr.contains("Interrupted"), "{}", out.all());
    assert!(
        processes_under(&f.cache).is_empty(),
        "the server outlived Ctrl-C"
    );
    assert_eq!(
        Registry::anonymous().digest(&format!("{repo}:v1")),
        None,
        "nothing pushed"
    );
    drop(silent);
}

/// Whether Terraform's diagnostic quotes the configuration line of `attr`
/// (`  14:   environment        = "staging"`).
fn points_at(output: &str, attr: &str) -> bool {
    output.lines().any(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()))
            .and_then(|(_, rest)| rest.trim_start().strip_prefix(attr))
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })
}

#[test]
fn bad_input_is_reported_on_the_attribute() {
    let f = Fixture::new(85);
    let repo = repository("bad");
    let cases = [
        (
            f.config(&repo, "staging", ""),
            "Unknown environment",
            "environment",
        ),
        (
            f.config(&repo, "author", "")
                .replace(&format!("dir:{}", f.rootfs.display()), "scratch"),
            "needs a server",
            "base",
        ),
        (
            f.config(
                &repo,
                "author",
                "  server_binary = \"/nonexistent/mariadbd\"\n",
            ),
            "Cannot run the database server",
            "server_binary",
        ),
    ];
    let wd = f.workdir(&cases[0].0);
    for (cfg, message, attr) in &cases {
        wd.write("main.tf", cfg);
        let out = wd.run(&["plan", "-input=false", "-no-color"]);
        assert_ne!(out.code, 0, "{cfg}\n{}", out.all());
        let all = out.all();
        assert!(all.contains(message), "expected {message:?}:\n{all}");
        assert!(points_at(&all, attr), "the error points at {attr}:\n{all}");
    }
}
