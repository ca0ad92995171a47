//! Builds pushed to the local registries (`scripts/testenv start`), checked with the real
//! tools: skopeo (inspect, copy to an OCI layout), umoci (unpack, as root) and runc. These
//! tests fail, never skip, when a service or tool is missing.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use ep_imagebuild::build::{self, Base, BlobPush, BuildReport, BuildRequest, NoProgress, Output};
use ep_imagebuild::layering::Service;
use ep_imagebuild::package::{DeploymentPackage, EntryKind};
use ep_imagebuild::registry::{ClientOptions, RegistryClient};
use ep_imagebuild::synthetic::{self, SynthOptions};
use support::proxy::{patient_retry, FaultProxy, ProxyConfig};
use support::{skopeo_inspect, testenv, unique_repo};

const BUSYBOX: &str = "/bin/busybox";

fn plain_client(registry: &str) -> RegistryClient {
    let mut endpoints = HashMap::new();
    endpoints.insert(registry.to_owned(), format!("http://{registry}"));
    RegistryClient::new(ClientOptions {
        endpoint_overrides: endpoints,
        ..ClientOptions::default()
    })
    .unwrap()
}

fn package(dir: &Path, opts: &SynthOptions) -> PathBuf {
    let p = dir.join(format!("pkg-{}.zip", opts.changed_class.unwrap_or(0)));
    synthetic::write_zip(opts, &p).unwrap();
    p
}

/// A root filesystem with Debian's static busybox as `/bin/busybox` and `/bin/sh`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} missing: apt-get install busybox-static (scripts/testenv install)"
    );
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    std::fs::set_permissions(
        root.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    root
}

fn request(
    pkg: &Path,
    service: Service,
    base: Base,
    repo: &str,
    tag: &str,
    work: &Path,
) -> BuildRequest {
    let mut req = BuildRequest::new(
        pkg,
        Output::Push {
            repository: repo.to_string(),
            tags: vec![tag.to_string()],
        },
        work,
    );
    req.service = Some(service);
    req.base = base;
    req
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (scripts/testenv install)"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo copy docker://… oci:<dir>:<tag>` then `umoci unpack`; returns the rootfs.
fn pull_and_unpack(registry: &str, repo: &str, tag: &str, dir: &Path) -> PathBuf {
    let layout = dir.join(format!("pulled-{tag}"));
    run(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{registry}/{repo}:{tag}"))
            .arg(format!("oci:{}:{tag}", layout.display())),
        "skopeo copy",
    );
    let bundle = dir.join(format!("bundle-{tag}"));
    run(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&bundle),
        "umoci unpack",
    );
    bundle
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    File { size: u64, mode: u32 },
    Dir { mode: u32 },
    Link { target: String },
}

/// Everything under `root`: kind, size, permission bits; owners must be 0:0.
fn listing(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            assert_eq!((md.uid(), md.gid()), (0, 0), "owner of {rel}");
            let mode = md.mode() & 0o7777;
            let node = if md.file_type().is_symlink() {
                Node::Link {
                    target: std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                }
            } else if md.is_dir() {
                stack.push(p.clone());
                Node::Dir { mode }
            } else {
                Node::File {
                    size: md.len(),
                    mode,
                }
            };
            out.insert(rel, node);
        }
    }
    out
}

/// What the cortex image must hold, from the package's own listing.
fn expected_cortex_files(pkg_path: &Path) -> BTreeMap<String, Node> {
    let pkg = DeploymentPackage::open(pkg_path).unwrap();
    let mut files = BTreeMap::new();
    for app in ["cortex", "studio"] {
        let war = pkg
            .open_nested(&pkg.application(app).unwrap().path)
            .unwrap();
        for e in war.entries().iter().filter(|e| e.kind == EntryKind::File) {
            files.insert(
                format!("usr/local/tomcat/webapps/{app}/{}", e.path),
                Node::File {
                    size: e.size,
                    mode: 0o644,
                },
            );
        }
    }
    for a in pkg.jdbc_drivers().iter().chain(pkg.activemq_libraries()) {
        let name = a.path.rsplit('/').next().unwrap();
        files.insert(
            format!("usr/local/tomcat/lib/{name}"),
            Node::File {
                size: a.size,
                mode: 0o644,
            },
        );
    }
    let ext = pkg.open_nested(&pkg.ext_data().unwrap().path).unwrap();
    for e in ext.entries().iter().filter(|e| e.kind == EntryKind::File) {
        if let Some(rel) = e.path.strip_prefix("environments/") {
            files.insert(
                format!("ep/environments/{rel}"),
                Node::File {
                    size: e.size,
                    mode: 0o644,
                },
            );
        }
    }
    files
}

fn check_rootfs(rootfs: &Path, expected_files: &BTreeMap<String, Node>, busybox: bool) {
    let found = listing(rootfs);
    let files: BTreeMap<&String, &Node> = found
        .iter()
        .filter(|(_, n)| !matches!(n, Node::Dir { .. }))
        .collect();
    let mut expected: BTreeMap<&String, &Node> = expected_files.iter().collect();
    let bb_file = Node::File {
        size: std::fs::metadata(BUSYBOX).unwrap().len(),
        mode: 0o755,
    };
    let bb_link = Node::Link {
        target: "busybox".into(),
    };
    let (bb, sh) = ("bin/busybox".to_string(), "bin/sh".to_string());
    if busybox {
        expected.insert(&bb, &bb_file);
        expected.insert(&sh, &bb_link);
    }
    if files != expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !files.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = files
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<_> = files
            .iter()
            .filter(|(k, v)| expected.get(*k).is_some_and(|e| e != *v))
            .take(5)
            .collect();
        panic!("rootfs differs: missing {missing:?}, extra {extra:?}, different {differ:?}");
    }
    for key in [
        "usr/local/tomcat/webapps/cortex/WEB-INF",
        "usr/local/tomcat/webapps/studio",
        "usr/local/tomcat/lib",
        "ep/environments/author",
        "ep/environments/live",
        "ep/environments/default",
    ] {
        assert_eq!(found.get(key), Some(&Node::Dir { mode: 0o755 }), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cortex_on_scratch_and_on_busybox_unpacks_to_the_package_files() {
    let env = testenv();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path(), &SynthOptions::small(11));
    let rootfs = busybox_rootfs(tmp.path());
    let client = plain_client(&env.registry);
    let repo = unique_repo("build-cortex");
    let target = format!("{}/{repo}", env.registry);
    let expected = expected_cortex_files(&pkg);
    for (tag, base) in [
        ("scratch", Base::Scratch),
        ("busybox", Base::LocalRootfs(rootfs)),
    ] {
        let busybox = tag == "busybox";
        let req = request(
            &pkg,
            Service::Cortex,
            base,
            &target,
            tag,
            &tmp.path().join("work"),
        );
        let report = build::build(&req, &client, &NoProgress).await.unwrap();
        let inspect = skopeo_inspect(&env.registry, &repo, tag, None);
        assert_eq!(inspect["Digest"], report.manifest_digest.to_string());
        assert_eq!(
            inspect["Layers"].as_array().map(Vec::len),
            Some(report.layers.len())
        );
        let bundle = pull_and_unpack(&env.registry, &repo, tag, tmp.path());
        check_rootfs(&bundle.join("rootfs"), &expected, busybox);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_image_runs_under_runc() {
    let env = testenv();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path(), &SynthOptions::small(12));
    let rootfs = busybox_rootfs(tmp.path());
    let client = plain_client(&env.registry);
    let repo = unique_repo("build-runc");
    let target = format!("{}/{repo}", env.registry);
    let mut req = request(
        &pkg,
        Service::Search,
        Base::LocalRootfs(rootfs),
        &target,
        "run",
        &tmp.path().join("work"),
    );
    req.config.entrypoint = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo hello from ep-imagebuild".into(),
    ]);
    build::build(&req, &client, &NoProgress).await.unwrap();
    let bundle = pull_and_unpack(&env.registry, &repo, "run", tmp.path());
    // umoci writes a runtime config for an interactive terminal; run detached from one.
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = serde_json::Value::Bool(false);
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = format!("ep-imagebuild-test-{}", std::process::id());
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .expect("run runc (apt-get install runc)");
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("hello from ep-imagebuild"),
        "runc could not run the image in this environment ({}): stdout {stdout:?}, stderr {stderr:?}",
        out.status
    );
}

fn uploaded_layers(r: &BuildReport) -> Vec<&str> {
    r.layers
        .iter()
        .filter(|l| matches!(l.push, Some(BlobPush::Uploaded { .. })))
        .map(|l| l.name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repush_uploads_nothing_and_a_class_change_uploads_one_layer() {
    let env = testenv();
    let tmp = tempfile::tempdir().unwrap();
    let client = plain_client(&env.registry);
    let repo = format!("{}/{}", env.registry, unique_repo("build-incr"));
    let work = tmp.path().join("work");
    let pkg = package(tmp.path(), &SynthOptions::small(13));

    let first = build::build(
        &request(&pkg, Service::Cortex, Base::Scratch, &repo, "v1", &work),
        &client,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        first.blobs_pushed + first.blobs_mounted,
        first.layers.len() + 1,
        "{first:?}"
    );

    let again = build::build(
        &request(&pkg, Service::Cortex, Base::Scratch, &repo, "v1", &work),
        &client,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(again.manifest_digest, first.manifest_digest);
    assert_eq!(again.blobs_pushed, 0, "{again:?}");
    assert_eq!(again.bytes_uploaded, 0, "{again:?}");
    assert_eq!(again.blobs_skipped, first.layers.len() + 1);
    assert!(again.layers.iter().all(|l| l.cache_hit));

    let changed = package(
        tmp.path(),
        &SynthOptions {
            changed_class: Some(1),
            ..SynthOptions::small(13)
        },
    );
    let next = build::build(
        &request(&changed, Service::Cortex, Base::Scratch, &repo, "v2", &work),
        &client,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_ne!(next.manifest_digest, first.manifest_digest);
    assert_eq!(uploaded_layers(&next), ["classes"], "{next:?}");
    assert_eq!(next.blobs_pushed, 2, "classes layer + config: {next:?}");
    let rebuilt: Vec<&str> = next
        .layers
        .iter()
        .filter(|l| !l.cache_hit)
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(rebuilt, ["classes"]);
    let classes = next.layers.iter().find(|l| l.name == "classes").unwrap();
    assert!(
        next.bytes_uploaded as f64 <= 1.1 * classes.size as f64,
        "uploaded {} bytes for a {}-byte layer",
        next.bytes_uploaded,
        classes.size
    );
}

#[test]
fn ecr_push_through_moto_with_the_cli() {
    let env = testenv();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path(), &SynthOptions::small(14));
    let ecr_host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let repo = unique_repo("build-ecr");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_ep-imagebuild"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .args(["build", "--service", "batch", "--json", "--tag", "ecr"])
            .arg("--package")
            .arg(&pkg)
            .arg("--work-dir")
            .arg(tmp.path().join("work"))
            .arg("--push")
            .arg(format!("{ecr_host}/{repo}"))
            .args(["--ecr", "--ecr-endpoint", &env.moto])
            .arg("--registry-endpoint")
            .arg(format!("http://{}", env.auth_registry)),
        "ep-imagebuild build --ecr",
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["blobs_pushed"].as_u64().unwrap() >= 2, "{report}");
    let inspect = skopeo_inspect(
        &env.auth_registry,
        &repo,
        "ecr",
        Some((&env.auth_user, &env.auth_password)),
    );
    assert_eq!(inspect["Digest"], report["manifest_digest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_through_a_faulty_proxy_give_the_clean_digest() {
    let env = testenv();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package(tmp.path(), &SynthOptions::small(15));
    let work = tmp.path().join("work");
    let clean = build::build(
        &request(
            &pkg,
            Service::Cm,
            Base::Scratch,
            &format!("{}/{}", env.registry, unique_repo("build-clean")),
            "clean",
            &work,
        ),
        &plain_client(&env.registry),
        &NoProgress,
    )
    .await
    .unwrap();
    for seed in [1u64, 2, 3] {
        let proxy = FaultProxy::start(ProxyConfig {
            upstream: env.registry.parse().unwrap(),
            fault_rate: 0.2,
            seed,
            bearer: None,
        })
        .await;
        let client = proxy.client(patient_retry());
        let repo = unique_repo("build-faults");
        let report = build::build(
            &request(
                &pkg,
                Service::Cm,
                Base::Scratch,
                &format!("{}/{repo}", proxy.host_port()),
                "faulty",
                &work,
            ),
            &client,
            &NoProgress,
        )
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(report.manifest_digest, clean.manifest_digest, "seed {seed}");
        assert!(proxy.faults() > 0, "seed {seed}: no fault injected");
        let inspect = skopeo_inspect(&env.registry, &repo, "faulty", None);
        assert_eq!(
            inspect["Digest"],
            clean.manifest_digest.to_string(),
            "seed {seed}"
        );
    }
}
