//! The per-image inputs fingerprint: `inspect_inputs` predicts what the build records, and
//! a change in one service's input changes that image only.

mod common;

use std::path::{Path, PathBuf};

use ep_imagebuild::build::{
    self, inspect_inputs, Base, BuildError, BuildRequest, NoProgress, Output,
    INPUTS_FINGERPRINT_ANNOTATION,
};
use ep_imagebuild::digest::Digest;
use ep_imagebuild::layering::{CustomLayer, CustomSource, LayeringError, Service};
use ep_imagebuild::package::PackageError;
use ep_imagebuild::registry::{ClientOptions, RegistryClient};
use ep_imagebuild::synthetic::{self, SynthOptions};

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions::default()).expect("client")
}

/// Packages v1 and v2 that differ in one cortex class only.
fn packages(dir: &Path, seed: u64) -> (PathBuf, PathBuf) {
    let (v1, v2) = (dir.join("v1.zip"), dir.join("v2.zip"));
    synthetic::write_zip(&SynthOptions::small(seed), &v1).unwrap();
    synthetic::write_zip(
        &SynthOptions {
            changed_class: Some(1),
            ..SynthOptions::small(seed)
        },
        &v2,
    )
    .unwrap();
    (v1, v2)
}

/// A minimal root filesystem directory.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::write(root.join("os-release"), b"ID=test\n").unwrap();
    root
}

/// The kinds of image `examples/images` builds: a Tomcat-like base (a rootfs and a custom
/// layer of the package's JDBC jars) and service images.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Tomcat,
    Service(Service),
}

fn request(kind: Kind, pkg: &Path, dir: &Path, name: &str, shared: &Path) -> BuildRequest {
    let mut req = BuildRequest::new(
        pkg,
        Output::OciLayout {
            path: dir.join(format!("layout-{name}")),
            tags: vec![name.to_string()],
        },
        dir.join(format!("work-{name}")),
    );
    req.cache_dir = Some(shared.join("cache"));
    match kind {
        Kind::Tomcat => {
            req.base = Base::LocalRootfs(rootfs(shared));
            req.custom_layers = vec![CustomLayer {
                name: None,
                source: CustomSource::Package("database/jdbc/*.jar".into()),
                destination: "/usr/local/tomcat/lib".into(),
                mode: None,
                uid: 0,
                gid: 0,
            }];
            req.config.env = vec![("CATALINA_HOME".into(), "/usr/local/tomcat".into())];
            req.config.exposed_ports = vec!["8080".into()];
        }
        Kind::Service(s) => {
            req.service = Some(s);
            req.config.env = vec![("EP_CONTAINER_MEM".into(), "3072".into())];
        }
    }
    req
}

/// The annotations of the (single) manifest in an OCI layout.
fn layout_annotation(layout: &Path, key: &str) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let hex = digest.trim_start_matches("sha256:");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    manifest["annotations"][key].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_records_exactly_what_inspect_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let (pkg, _) = packages(tmp.path(), 41);
    for (i, kind) in [
        Kind::Tomcat,
        Kind::Service(Service::Cortex),
        Kind::Service(Service::DataPopulation),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("image-{i}");
        let req = request(kind, &pkg, tmp.path(), &name, tmp.path());
        let predicted = inspect_inputs(&req, None).unwrap();
        let report = build::build(&req, &client(), &NoProgress).await.unwrap();
        let recorded = layout_annotation(
            &tmp.path().join(format!("layout-{name}")),
            INPUTS_FINGERPRINT_ANNOTATION,
        );
        assert_eq!(
            recorded.as_deref(),
            Some(predicted.inputs_fingerprint.as_str()),
            "{kind:?}"
        );
        assert_eq!(report.inputs_fingerprint, predicted.inputs_fingerprint);
        assert_eq!(report.package_fingerprint, predicted.package_fingerprint);
        // The layers inspect lists are the build's own, in order.
        let built: Vec<(&str, Option<&str>)> = report
            .layers
            .iter()
            .filter(|l| l.name != "base-rootfs")
            .map(|l| (l.name.as_str(), l.fingerprint.as_deref()))
            .collect();
        let listed: Vec<(&str, Option<&str>)> = predicted
            .layers
            .iter()
            .map(|l| (l.name.as_str(), Some(l.fingerprint.as_str())))
            .collect();
        assert_eq!(built, listed, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cortex_class_changes_only_the_cortex_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = packages(tmp.path(), 42);
    let kinds = [
        ("tomcat", Kind::Tomcat),
        ("cortex", Kind::Service(Service::Cortex)),
        ("cm", Kind::Service(Service::Cm)),
        ("batch", Kind::Service(Service::Batch)),
    ];
    for (name, kind) in kinds {
        let a = inspect_inputs(&request(kind, &v1, tmp.path(), name, tmp.path()), None).unwrap();
        let b = inspect_inputs(&request(kind, &v2, tmp.path(), name, tmp.path()), None).unwrap();
        assert_ne!(
            a.package_fingerprint, b.package_fingerprint,
            "the packages differ"
        );
        if name == "cortex" {
            assert_ne!(a.inputs_fingerprint, b.inputs_fingerprint, "{name}");
            let changed: Vec<&str> = a
                .layers
                .iter()
                .zip(&b.layers)
                .filter(|(x, y)| x.fingerprint != y.fingerprint)
                .map(|(x, _)| x.name.as_str())
                .collect();
            assert_eq!(changed, ["classes"]);
        } else {
            assert_eq!(a.inputs_fingerprint, b.inputs_fingerprint, "{name}");
        }
    }
    // And the digests follow: built from either package, only cortex differs.
    for (name, kind) in [
        ("tomcat", Kind::Tomcat),
        ("cortex", Kind::Service(Service::Cortex)),
        ("cm", Kind::Service(Service::Cm)),
    ] {
        let mut digests = Vec::new();
        for (v, pkg) in [("v1", &v1), ("v2", &v2)] {
            let req = request(kind, pkg, tmp.path(), &format!("{name}-{v}"), tmp.path());
            digests.push(
                build::build(&req, &client(), &NoProgress)
                    .await
                    .unwrap()
                    .manifest_digest,
            );
        }
        if name == "cortex" {
            assert_ne!(digests[0], digests[1], "{name}");
        } else {
            assert_eq!(digests[0], digests[1], "{name}");
        }
    }
}

/// A change to a request.
type Change = Box<dyn Fn(&mut BuildRequest)>;

#[test]
fn settings_that_change_the_image_change_the_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let (pkg, _) = packages(tmp.path(), 43);
    let base = request(
        Kind::Service(Service::Cm),
        &pkg,
        tmp.path(),
        "cm",
        tmp.path(),
    );
    let fp = |r: &BuildRequest| inspect_inputs(r, None).unwrap().inputs_fingerprint;
    let reference = fp(&base);
    // Where the image goes and where the work happens do not count.
    let mut elsewhere = base.clone();
    elsewhere.output = Output::Push {
        repository: "registry.example/ep/cm".into(),
        tags: vec!["x".into()],
    };
    elsewhere.work_dir = tmp.path().join("other-work");
    assert_eq!(fp(&elsewhere), reference);
    let changes: Vec<(&str, Change)> = vec![
        (
            "env",
            Box::new(|r| r.config.env.push(("A".into(), "1".into()))),
        ),
        (
            "label",
            Box::new(|r| {
                r.config.labels.insert("l".into(), "v".into());
            }),
        ),
        (
            "annotation",
            Box::new(|r| {
                r.annotations.insert("a".into(), "v".into());
            }),
        ),
        ("epoch", Box::new(|r| r.source_date_epoch = 1)),
        (
            "compression",
            Box::new(|r| r.compression = ep_imagebuild::layer::Compression::Zstd { level: 3 }),
        ),
        (
            "platforms",
            Box::new(|r| {
                r.platforms = vec![ep_imagebuild::image::Platform::parse("linux/arm64").unwrap()]
            }),
        ),
        ("service", Box::new(|r| r.service = Some(Service::Batch))),
        ("owner", Box::new(|r| r.layout.uid = 1000)),
        (
            "base",
            Box::new(|r| {
                r.base = Base::Registry(format!(
                    "registry.example/ep/tomcat@sha256:{}",
                    "a".repeat(64)
                ))
            }),
        ),
    ];
    for (what, change) in changes {
        let mut r = base.clone();
        change(&mut r);
        assert_ne!(fp(&r), reference, "{what}");
    }
}

#[test]
fn a_registry_base_is_identified_by_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let (pkg, _) = packages(tmp.path(), 44);
    let mut req = request(
        Kind::Service(Service::Cm),
        &pkg,
        tmp.path(),
        "cm",
        tmp.path(),
    );
    req.output = Output::Push {
        repository: "registry.example/ep/cm".into(),
        tags: vec![],
    };
    req.base = Base::Registry("registry.example/ep/tomcat:9".into());
    // A tag needs resolving first.
    assert!(matches!(
        inspect_inputs(&req, None),
        Err(BuildError::InvalidRequest(_))
    ));
    let d1 = Digest::of(b"one");
    let d2 = Digest::of(b"two");
    let a = inspect_inputs(&req, Some(&d1)).unwrap();
    let b = inspect_inputs(&req, Some(&d2)).unwrap();
    assert_eq!(a.base_identity.as_deref(), Some(d1.as_str()));
    assert_ne!(a.inputs_fingerprint, b.inputs_fingerprint);
}

fn package_zip(dir: &Path, entries: &[common::RawEntry]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("pkg.zip");
    std::fs::write(&p, common::raw_zip(entries)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cortex_without_studio_builds_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package_zip(
        tmp.path(),
        &[common::stored(
            "webapps/ext-cortex-webapp-1.0.war",
            &common::tiny_war(),
        )],
    );
    let req = request(
        Kind::Service(Service::Cortex),
        &pkg,
        tmp.path(),
        "cortex",
        tmp.path(),
    );
    let inputs = inspect_inputs(&req, None).unwrap();
    assert_eq!(inputs.warnings.len(), 1, "{:?}", inputs.warnings);
    assert!(
        inputs.warnings[0].contains("studio"),
        "{:?}",
        inputs.warnings
    );
    let report = build::build(&req, &client(), &NoProgress).await.unwrap();
    assert_eq!(report.warnings, inputs.warnings);
    assert_eq!(report.inputs_fingerprint, inputs.inputs_fingerprint);
    // A required application is still required.
    let cm = request(
        Kind::Service(Service::Cm),
        &pkg,
        tmp.path(),
        "cm",
        tmp.path(),
    );
    assert!(matches!(
        inspect_inputs(&cm, None),
        Err(BuildError::Layering(
            LayeringError::MissingApplication { .. }
        ))
    ));
}

#[test]
fn unsafe_war_entries_fail_inspection() {
    let tmp = tempfile::tempdir().unwrap();
    let escaping = common::raw_zip(&[
        common::deflated("WEB-INF/web.xml", b"<web-app/>"),
        common::deflated("WEB-INF/classes/../../../../etc/cron.d/x", b"* * * * *\n"),
    ]);
    let symlink = common::raw_zip(&[
        common::deflated("WEB-INF/web.xml", b"<web-app/>"),
        common::with_mode(
            common::stored("WEB-INF/lib/evil.jar", b"/etc/passwd"),
            0o120_777,
        ),
    ]);
    for (name, war) in [("escaping", escaping), ("symlink", symlink)] {
        let pkg = package_zip(
            &tmp.path().join(name),
            &[common::stored("webapps/ext-cortex-webapp-1.0.war", &war)],
        );
        let req = request(
            Kind::Service(Service::Cortex),
            &pkg,
            tmp.path(),
            name,
            tmp.path(),
        );
        match inspect_inputs(&req, None) {
            Err(BuildError::Layering(LayeringError::Package(
                PackageError::UnsafePath { .. } | PackageError::SymlinkEntry { .. },
            ))) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
}
