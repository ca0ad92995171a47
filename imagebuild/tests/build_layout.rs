//! Builds to OCI layouts (no registry needed): reproducibility, the layering of a service
//! against the package's own listing, fingerprints, and bad input through the CLI.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ep_imagebuild::build::{self, BuildRequest, NoProgress, Output};
use ep_imagebuild::layering::{self, LayerRole, LayoutOptions, PlannedKind, Service};
use ep_imagebuild::package::{DeploymentPackage, EntryKind};
use ep_imagebuild::registry::{ClientOptions, RegistryClient};
use ep_imagebuild::synthetic::{self, SynthOptions};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ep-imagebuild"))
}

fn small_package(dir: &Path, opts: &SynthOptions) -> PathBuf {
    let path = dir.join("pkg.zip");
    synthetic::write_zip(opts, &path).expect("write synthetic package");
    path
}

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions::default()).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_package_twice_in_two_work_dirs_gives_the_same_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = small_package(tmp.path(), &SynthOptions::small(3));
    let mut digests = Vec::new();
    for run in ["a", "b"] {
        let mut req = BuildRequest::new(
            &pkg,
            Output::OciLayout {
                path: tmp.path().join(format!("layout-{run}")),
                tags: vec!["cortex".into()],
            },
            tmp.path().join(format!("work-{run}")),
        );
        req.service = Some(Service::Cortex);
        let report = build::build(&req, &client(), &NoProgress).await.unwrap();
        assert!(report.layers.iter().all(|l| !l.cache_hit), "fresh work dir");
        digests.push(report.manifest_digest.clone());
        let index = std::fs::read(tmp.path().join(format!("layout-{run}/index.json"))).unwrap();
        digests.push(ep_imagebuild::digest::Digest::of(&index));
    }
    assert_eq!(
        digests[0], digests[2],
        "manifest digests differ between work dirs"
    );
    assert_eq!(
        digests[1], digests[3],
        "index.json differs between work dirs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_takes_every_layer_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = small_package(tmp.path(), &SynthOptions::small(4));
    let mut req = BuildRequest::new(
        &pkg,
        Output::OciArchive {
            path: tmp.path().join("image.tar"),
            tags: vec![],
        },
        tmp.path().join("work"),
    );
    req.service = Some(Service::DataPopulation);
    let first = build::build(&req, &client(), &NoProgress).await.unwrap();
    let second = build::build(&req, &client(), &NoProgress).await.unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);
    assert!(
        second.layers.iter().all(|l| l.cache_hit),
        "{:?}",
        second.layers
    );
    let names: Vec<&str> = first.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "third-party",
            "project",
            "resources",
            "ext-data",
            "environments"
        ]
    );
    // Only the work dir (cache; scratch removed) and the archive were written.
    let work: Vec<String> = std::fs::read_dir(tmp.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(work, ["cache"]);
}

/// Every file of the cortex and studio WARs, the JDBC and ActiveMQ jars and the environments
/// is planned exactly once, in the layer its name says, at the path the image layout wants.
#[test]
fn cortex_plan_matches_the_package_listing() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg_path = small_package(tmp.path(), &SynthOptions::small(5));
    let pkg = DeploymentPackage::open(&pkg_path).unwrap();
    let plans = layering::plan_service(&pkg, Service::Cortex, &LayoutOptions::default()).unwrap();
    let mut planned: BTreeMap<String, LayerRole> = BTreeMap::new();
    for p in &plans {
        assert!(p.file_count() > 0, "empty layer {}", p.name);
        for e in p.entries.iter().filter(|e| e.kind == PlannedKind::File) {
            assert!(
                planned.insert(e.dest.clone(), p.role).is_none(),
                "{} twice",
                e.dest
            );
            assert_eq!((e.mode, e.uid, e.gid), (0o644, 0, 0), "{}", e.dest);
        }
    }
    let mut expected: BTreeMap<String, LayerRole> = BTreeMap::new();
    for app in ["cortex", "studio"] {
        let war = pkg
            .open_nested(&pkg.application(app).unwrap().path)
            .unwrap();
        for e in war.entries().iter().filter(|e| e.kind == EntryKind::File) {
            let jar = e
                .path
                .strip_prefix("WEB-INF/lib/")
                .filter(|n| n.ends_with(".jar"));
            let role = match jar {
                Some(n) if n.starts_with("ep-") || n.starts_with("ext-") => LayerRole::Project,
                Some(n) if n.ends_with("-SNAPSHOT.jar") => LayerRole::Snapshot,
                Some(_) => LayerRole::ThirdParty,
                None if e.path.starts_with("WEB-INF/classes/") && e.path.ends_with(".class") => {
                    LayerRole::Classes
                }
                None => LayerRole::Resources,
            };
            expected.insert(format!("usr/local/tomcat/webapps/{app}/{}", e.path), role);
        }
    }
    for a in pkg.jdbc_drivers().iter().chain(pkg.activemq_libraries()) {
        let name = a.path.rsplit('/').next().unwrap();
        expected.insert(format!("usr/local/tomcat/lib/{name}"), LayerRole::TomcatLib);
    }
    let ext = pkg.open_nested(&pkg.ext_data().unwrap().path).unwrap();
    for e in ext.entries().iter().filter(|e| e.kind == EntryKind::File) {
        if let Some(rel) = e.path.strip_prefix("environments/") {
            expected.insert(format!("ep/environments/{rel}"), LayerRole::Environments);
        }
    }
    assert_eq!(planned, expected);
    let order: Vec<LayerRole> = plans.iter().map(|p| p.role).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "layers are not least-to-most changing");
    assert!(planned
        .keys()
        .any(|k| k.starts_with("ep/environments/author/")));
}

/// A one-class change moves only the classes layer's fingerprint.
#[test]
fn one_changed_class_changes_only_the_classes_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.zip");
    let b = tmp.path().join("b.zip");
    synthetic::write_zip(&SynthOptions::small(6), &a).unwrap();
    synthetic::write_zip(
        &SynthOptions {
            changed_class: Some(1),
            ..SynthOptions::small(6)
        },
        &b,
    )
    .unwrap();
    let plan = |p: &Path| {
        let pkg = DeploymentPackage::open(p).unwrap();
        layering::plan_service(&pkg, Service::Cortex, &LayoutOptions::default())
            .unwrap()
            .into_iter()
            .map(|l| (l.name, l.fingerprint))
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (plan(&a), plan(&b));
    assert_eq!(pa.len(), pb.len());
    let changed: Vec<&str> = pa
        .iter()
        .zip(&pb)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| x.0.as_str())
        .collect();
    assert_eq!(changed, ["classes"]);
}

// ------------------------------------------------------------------------- bad input

/// Every file under `root` except below `skip`, with its size.
fn tree(root: &Path, skip: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(skip) {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, md.len());
        }
    }
    out
}

/// Runs `build` in a sandbox (cwd, HOME) and checks it fails with `expect` in its message and
/// leaves nothing outside the work directory.
fn fails_cleanly(package: &Path, extra: &[&str], expect: &[&str]) {
    let sandbox = package.parent().unwrap();
    let work = sandbox.join("work");
    let out = sandbox.join("out");
    let before = tree(sandbox, &work);
    let mut cmd = bin();
    cmd.current_dir(sandbox)
        .env("HOME", sandbox.join("home"))
        .env_remove("XDG_CACHE_HOME")
        .env_remove("DOCKER_CONFIG")
        .arg("build")
        .arg("--package")
        .arg(package)
        .arg("--work-dir")
        .arg(&work)
        .arg("--oci-layout")
        .arg(&out);
    if !extra.iter().any(|a| *a == "--service" || *a == "--layer") {
        cmd.args(["--service", "cortex"]);
    }
    cmd.args(extra);
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "build succeeded; stderr: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "expected {e:?} in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "output written despite the error");
    assert_eq!(
        before,
        tree(sandbox, &work),
        "files changed outside the work dir"
    );
}

fn package_zip(dir: &Path, entries: &[common::RawEntry]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("pkg.zip");
    std::fs::write(&p, common::raw_zip(entries)).unwrap();
    p
}

#[test]
fn corrupt_zip_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let good = small_package(tmp.path(), &SynthOptions::small(7));
    let mut bytes = std::fs::read(&good).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&good, bytes).unwrap();
    fails_cleanly(&good, &[], &["corrupt zip"]);
}

#[test]
fn escaping_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let war = common::tiny_war();
    let pkg = package_zip(
        &tmp.path().join("outer"),
        &[
            common::stored("webapps/ext-cortex-webapp-1.0.war", &war),
            common::stored("../evil.sh", b"#!/bin/sh\n"),
        ],
    );
    fails_cleanly(&pkg, &[], &["unsafe entry path", "../evil.sh"]);

    let nested = common::raw_zip(&[
        common::deflated("WEB-INF/web.xml", b"<web-app/>"),
        common::deflated(
            "WEB-INF/classes/../../../../etc/cron.d/x",
            b"* * * * * root id\n",
        ),
    ]);
    let pkg = package_zip(
        &tmp.path().join("nested"),
        &[
            common::stored("webapps/ext-cortex-webapp-1.0.war", &nested),
            common::stored("webapps/ep-rest-studio-1.0.war", &war),
        ],
    );
    fails_cleanly(&pkg, &[], &["unsafe entry path", "`..`"]);
}

#[test]
fn zip_bomb_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 64 << 20];
    let pkg = package_zip(
        tmp.path(),
        &[common::deflated(
            "webapps/ext-cortex-webapp-1.0.war",
            &zeros,
        )],
    );
    fails_cleanly(&pkg, &[], &["zip bomb"]);
}

#[test]
fn symlink_out_of_a_package_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pkgdir");
    synthetic::write_dir(&SynthOptions::small(8), &dir).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("database/jdbc/evil.jar")).unwrap();
    fails_cleanly(&dir, &[], &["points outside the package root"]);
}

#[test]
fn unknown_service_bad_tag_and_bad_reference_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = small_package(tmp.path(), &SynthOptions::small(9));
    fails_cleanly(
        &pkg,
        &["--service", "storefront"],
        &[
            "unknown service \"storefront\"",
            "cortex",
            "data-population",
        ],
    );
    fails_cleanly(&pkg, &["--tag", "bad tag!"], &["invalid tag \"bad tag!\""]);
    fails_cleanly(
        &pkg,
        &["--base", "Not A/Valid::Ref"],
        &["invalid image reference"],
    );
    fails_cleanly(
        &pkg,
        &["--layer", "nothing/here/*.jar:/opt/x"],
        &["matches nothing"],
    );
    // A push target that does not parse fails before any network traffic.
    let o = bin()
        .current_dir(tmp.path())
        .args([
            "build",
            "--service",
            "cm",
            "--push",
            "UPPER/Case",
            "--work-dir",
        ])
        .arg(tmp.path().join("work"))
        .arg("--package")
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("invalid image reference"), "{stderr}");
}

/// A plain directory as the build context: an image of tools (no package, no
/// service), its files where the layer puts them with their modes; the same
/// context twice gives the same digest; a service from a context is refused.
#[test]
fn a_plain_context_builds_an_image_of_tools() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("bin")).unwrap();
    std::fs::write(ctx.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    let build = |out: &str| {
        let o = bin()
            .arg("build")
            .arg("--context")
            .arg(&ctx)
            .args([
                "--layer",
                "bin/*:/usr/local/bin/:755",
                "--tag",
                "t",
                "--json",
            ])
            .arg("--work-dir")
            .arg(dir.path().join("work"))
            .arg("--oci-layout")
            .arg(dir.path().join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        report["manifest_digest"].as_str().unwrap().to_owned()
    };
    let first = build("a");
    assert_eq!(first, build("b"), "reproducible");
    let unpacked = dir.path().join("unpacked");
    let o = Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:t", dir.path().join("a").display()))
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tool = unpacked.join("usr/local/bin/tool");
    assert_eq!(std::fs::read(&tool).unwrap(), b"#!/bin/sh\necho tool\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&tool).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let o = bin()
        .arg("build")
        .arg("--context")
        .arg(&ctx)
        .args(["--service", "cortex", "--oci-layout"])
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
