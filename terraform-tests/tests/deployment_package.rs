//! `ep_deployment_package` through real Terraform: generated packages, a
//! package the generator did not write, an unpacked directory, and every
//! kind of bad package.

use std::path::Path;
use std::process::Command;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::{Scenario, Workdir};

use ep_terraform_tests::HEADER;

fn config(path: &Path) -> String {
    format!(
        r#"{HEADER}provider "ep" {{}}
data "ep_deployment_package" "p" {{
  path = "{}"
}}
output "pkg" {{ value = data.ep_deployment_package.p }}
"#,
        path.display()
    )
}

/// SHA-256 of one entry, computed by Python's zipfile: an oracle independent of our reader.
fn python_entry_sha256(zip: &Path, entry: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile,hashlib; print(hashlib.sha256(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2])).hexdigest())",
        ])
        .arg(zip)
        .arg(entry)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs a Python snippet that writes a zip at argv[1].
fn python_zip(script: &str, out: &Path) {
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(out)
        .status()
        .expect("python3");
    assert!(status.success(), "python zip writer failed");
}

#[test]
fn generated_package_zip_and_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("ext-deployment-package-8.5.0.zip");
    let dir = tmp.path().join("unpacked");
    synthetic::write_zip(&SynthOptions::small(7), &zip).unwrap();
    synthetic::write_dir(&SynthOptions::small(7), &dir).unwrap();
    let zip_for_check = zip.clone();
    let dir_config = config(&dir);
    Scenario::new()
        .step(config(&zip), move |wd| {
            let pkg = &wd.outputs()["pkg"];
            assert_eq!(pkg["format"], "zip");
            assert_eq!(pkg["version"], "8.5.0");
            let apps = pkg["applications"].as_object().unwrap();
            for name in ["cortex", "studio", "cm", "batch", "integration", "search"] {
                let app = &apps[name];
                let path = app["path"].as_str().unwrap();
                assert!(
                    path.starts_with("webapps/") && path.ends_with(".war"),
                    "{path}"
                );
                assert_eq!(
                    app["sha256"].as_str().unwrap(),
                    python_entry_sha256(&zip_for_check, path),
                    "{name} digest"
                );
                assert!(app["size"].as_u64().unwrap() > 0);
            }
            assert!(pkg["tools"]["data-population"]["path"]
                .as_str()
                .unwrap()
                .starts_with("tools/"));
            assert_eq!(
                pkg["environments"],
                serde_json::json!(["author", "default", "live"])
            );
            assert!(pkg["ops_spec"]["java"].is_string(), "{pkg:#}");
            assert_eq!(pkg["fingerprint"].as_str().unwrap().len(), 64);
        })
        .step(dir_config, |wd| {
            let pkg = &wd.outputs()["pkg"];
            assert_eq!(pkg["format"], "directory");
            assert_eq!(
                pkg["environments"],
                serde_json::json!(["author", "default", "live"])
            );
        })
        .run();

    // The same content gives the same fingerprint whether zipped or unpacked.
    let fp = |p: &Path| {
        let wd = Workdir::new(&[("main.tf", &config(p))]);
        wd.init();
        wd.apply();
        wd.outputs()["pkg"]["fingerprint"].clone()
    };
    assert_eq!(fp(&zip), fp(&dir));
}

const FOREIGN_PACKAGE: &str = r##"
import sys, zipfile, io
def jar(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return b.getvalue()
war = lambda app: jar([("WEB-INF/web.xml", "<web-app/>"), ("WEB-INF/lib/commons-lang3-3.12.0.jar", jar([("a.class", "x" * 100)])), ("WEB-INF/classes/com/acme/%s.class" % app, "cafebabe")])
ext_data = jar([("environments/local/database.properties", "db=1"),
                ("environments/qa/database.properties", "db=2"),
                ("environments/prod/files/conf/ep.properties", "x=1"),
                ("environments/prod/database.properties", "db=3"),
                ("liquibase/changelog.xml", "<x/>")])
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for d in ["webapps/", "database/", "database/jdbc/", "tools/"]:
        z.writestr(d, "")
    z.writestr("webapps/ext-cortex-webapp-9.1.2-SNAPSHOT.war", war("cortex"), compress_type=zipfile.ZIP_STORED)
    z.writestr("webapps/ext-cm-webapp-9.1.2-SNAPSHOT.war", war("cm"))
    z.writestr("webapps/ext-data-sync-webapp-9.1.2-SNAPSHOT.war", war("sync"))
    z.writestr("database/ext-data-9.1.2-SNAPSHOT.jar", ext_data)
    z.writestr("database/jdbc/mariadb-java-client-3.3.3.jar", jar([("Driver.class", "d")]))
    z.writestr("tools/ext-data-population-cli-9.1.2-SNAPSHOT-package.zip", jar([("bin/data-population.sh", "#!/bin/sh\n")]))
"##;

/// The data source's answer is cached per package file; a package rewritten
/// in place — its modification time set back — is read again, never served
/// stale (checked against Python's zipfile).
#[test]
fn a_package_rewritten_in_place_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("ext-deployment-package-8.5.0.zip");
    synthetic::write_zip(&SynthOptions::small(31), &zip).unwrap();
    let cache = tmp.path().join("cache");
    let mut wd = Workdir::new(&[("main.tf", &config(&zip))]);
    wd.set_env("EP_IMAGE_CACHE_DIR", &cache.display().to_string());
    wd.init();
    let cortex = |wd: &Workdir, field: &str| {
        wd.outputs()["pkg"]["applications"]["cortex"][field]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let entries = || {
        std::fs::read_dir(cache.join("package-info"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    wd.apply();
    let first = cortex(&wd, "sha256");
    assert_eq!(first, python_entry_sha256(&zip, &cortex(&wd, "path")));
    assert_eq!(entries(), 1, "the answer was cached");
    wd.apply();
    assert_eq!(cortex(&wd, "sha256"), first);
    assert_eq!(entries(), 1, "an unchanged package answers from the cache");
    // Another package's bytes written over the same file, mtime set back.
    let mtime = std::fs::metadata(&zip).and_then(|m| m.modified()).unwrap();
    let other = tmp.path().join("other.zip");
    synthetic::write_zip(&SynthOptions::small(32), &other).unwrap();
    std::fs::write(&zip, std::fs::read(&other).unwrap()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&zip)
        .and_then(|f| f.set_modified(mtime))
        .unwrap();
    wd.apply();
    let second = cortex(&wd, "sha256");
    assert_ne!(second, first, "the rewritten package was read again");
    assert_eq!(second, python_entry_sha256(&zip, &cortex(&wd, "path")));
    assert_eq!(entries(), 2);
}

#[test]
fn package_not_written_by_the_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("foreign.zip");
    python_zip(FOREIGN_PACKAGE, &zip);
    Scenario::new()
        .step(config(&zip), |wd| {
            let pkg = &wd.outputs()["pkg"];
            assert_eq!(pkg["version"], "9.1.2-SNAPSHOT");
            let apps: Vec<&String> = pkg["applications"].as_object().unwrap().keys().collect();
            assert_eq!(apps, ["cm", "cortex", "data-sync"]);
            assert_eq!(
                pkg["environments"],
                serde_json::json!(["local", "prod", "qa"])
            );
            assert!(pkg["ops_spec"].is_null());
            assert_eq!(
                pkg["jdbc_drivers"][0]["path"],
                "database/jdbc/mariadb-java-client-3.3.3.jar"
            );
        })
        .run();
}

/// Plans a config over a bad package and checks the diagnostic: its summary,
/// the detail naming the problem, and Terraform's pointer to `path`.
fn assert_bad_package(path: &Path, summary: &str, detail: &str) {
    let wd = Workdir::new(&[("main.tf", &config(path))]);
    wd.init();
    let out = wd.run(&["plan", "-no-color", "-input=false"]);
    let text = out.all();
    assert_ne!(out.code, 0, "plan accepted a bad package:\n{text}");
    assert!(
        text.contains(summary),
        "missing summary {summary:?}:\n{text}"
    );
    // Terraform wraps long details: compare with whitespace collapsed.
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat(&text).contains(&flat(detail)),
        "missing detail {detail:?}:\n{text}"
    );
    assert!(
        text.contains(&format!("path = \"{}\"", path.display())),
        "diagnostic does not point at `path`:\n{text}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("plugin crashed"),
        "{text}"
    );
}

#[test]
fn bad_packages_get_clear_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);

    assert_bad_package(
        &p("missing.zip"),
        "Deployment package not found",
        "missing.zip",
    );

    let good = p("good.zip");
    synthetic::write_zip(&SynthOptions::small(3), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(p("truncated.zip"), &bytes[..bytes.len() / 2]).unwrap();
    assert_bad_package(
        &p("truncated.zip"),
        "Corrupt deployment package",
        "truncated.zip",
    );

    std::fs::write(p("text.zip"), b"this is not a zip file at all").unwrap();
    assert_bad_package(
        &p("text.zip"),
        "Corrupt deployment package",
        "not a zip archive",
    );

    let evil = |name: &str, file: &str, extra: &str| {
        let script = format!(
            r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("webapps/ext-cortex-webapp-1.0.war", "x")
    i = zipfile.ZipInfo({name:?})
    {extra}
    z.writestr(i, "payload")
"#
        );
        python_zip(&script, &p(file));
    };
    evil("../../etc/evil", "dotdot.zip", "pass");
    assert_bad_package(
        &p("dotdot.zip"),
        "Unsafe entry in deployment package",
        "../../etc/evil",
    );
    evil("/etc/evil", "absolute.zip", "pass");
    assert_bad_package(
        &p("absolute.zip"),
        "Unsafe entry in deployment package",
        "/etc/evil",
    );
    evil(
        "webapps/link",
        "symlink.zip",
        "i.external_attr = (0o120777 << 16); i.create_system = 3",
    );
    assert_bad_package(
        &p("symlink.zip"),
        "Unsafe entry in deployment package",
        "webapps/link",
    );

    // A directory package whose symlink points outside it.
    let dir = p("dir-escape");
    synthetic::write_dir(&SynthOptions::small(3), &dir).unwrap();
    std::os::unix::fs::symlink(
        "/etc/passwd",
        dir.join("webapps/ext-batch-webapp-8.5.0.war.link"),
    )
    .unwrap();
    assert_bad_package(
        &dir,
        "Unsafe entry in deployment package",
        "outside the package root",
    );

    // A zip bomb: a small archive that inflates enormously.
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.writestr("webapps/ext-cortex-webapp-1.0.war", b"\0" * (256 << 20))
"#;
    python_zip(script, &p("bomb.zip"));
    assert_bad_package(
        &p("bomb.zip"),
        "Deployment package exceeds safety limits",
        "zip bomb",
    );

    let empty = p("empty.zip");
    python_zip(
        "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('README.txt', 'hi')\n",
        &empty,
    );
    assert_bad_package(
        &empty,
        "Not an Elastic Path deployment package",
        "webapps/*.war",
    );
}

#[test]
fn empty_path_is_rejected_at_validate() {
    let wd = Workdir::new(&[(
        "main.tf",
        &format!("{HEADER}provider \"ep\" {{}}\n\ndata \"ep_deployment_package\" \"p\" {{\n  path = \"\"\n}}\n"),
    )]);
    wd.init();
    let out = wd.run(&["validate", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(out.all().contains("Empty package path"), "{}", out.all());
    assert!(out.all().contains("path = \"\""), "{}", out.all());
}
