//! Images and OCI layouts, checked with umoci, skopeo and runc.

#[path = "layer_util.rs"]
mod util;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ep_imagebuild::image::{
    read_oci_layout_image, write_layout_tar, write_oci_layout, Annotations, Built, ConfigOverrides,
    ImageError, ImageLayer, ImageSpec, ManifestFormat, Platform,
};
use ep_imagebuild::layer::{
    layer_from_dir, Compression, LayerBuilder, LayerOptions, LayerOutput, Meta, SourceOptions,
};
use util::run;

const EPOCH: u64 = 1_700_000_000;

fn opts() -> LayerOptions {
    LayerOptions {
        compression: Compression::default(),
        source_date_epoch: EPOCH,
        threads: 2,
    }
}

fn app_layer(dir: &Path) -> LayerOutput {
    let mut b = LayerBuilder::new(opts());
    b.add_file_bytes(
        "usr/local/tomcat/webapps/cortex/WEB-INF/web.xml",
        Meta::default(),
        b"<web-app/>".to_vec(),
    )
    .unwrap()
    .add_file_bytes(
        "ep/bin/start.sh",
        Meta::executable(),
        b"#!/bin/sh\necho hi\n".to_vec(),
    )
    .unwrap()
    .add_dir("ep/assets", Meta::mode(0o750))
    .unwrap()
    .add_symlink("ep/conf", "/ep/environments/default", Meta::default())
    .unwrap();
    b.finish(dir).unwrap()
}

fn spec(layers: Vec<LayerOutput>, platform: Platform, format: ManifestFormat) -> ImageSpec {
    ImageSpec {
        platform,
        format,
        base: None,
        layers: layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| ImageLayer {
                layer,
                created_by: format!("ep-imagebuild layer {i}"),
                comment: None,
            })
            .collect(),
        config: ConfigOverrides {
            env: vec![("EP_COMMERCE_ENVNAME".into(), "dev".into())],
            entrypoint: Some(vec!["/ep/bin/start.sh".into()]),
            working_dir: Some("/ep".into()),
            exposed_ports: vec!["8080".into()],
            labels: BTreeMap::from([("com.elasticpath.app".into(), "cortex".into())]),
            ..Default::default()
        },
        annotations: Annotations {
            version: Some("8.5.0".into()),
            revision: Some("abc123".into()),
            ..Default::default()
        },
        source_date_epoch: EPOCH,
        author: None,
    }
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn umoci_and_skopeo_read_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = app_layer(&tmp.path().join("work"));
    let built = Built::from_specs(vec![spec(
        vec![layer],
        Platform::linux_amd64(),
        ManifestFormat::Oci,
    )])
    .unwrap();
    let layout = tmp.path().join("layout");
    write_oci_layout(&layout, &[("8.5.0", &built)]).unwrap();

    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:8.5.0", layout.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], built.digest().to_string());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
    assert!(v["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "EP_COMMERCE_ENVNAME=dev"));

    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--rootless")
        .arg("--image")
        .arg(format!("{}:8.5.0", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let start = rootfs.join("ep/bin/start.sh");
    assert_eq!(std::fs::read(&start).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(mode_of(&start), 0o755);
    assert_eq!(mode_of(&rootfs.join("ep/assets")), 0o750);
    assert_eq!(
        mode_of(&rootfs.join("usr/local/tomcat/webapps/cortex/WEB-INF/web.xml")),
        0o644
    );
    assert_eq!(mode_of(&rootfs.join("usr/local/tomcat")), 0o755);
    assert_eq!(
        std::fs::read_link(rootfs.join("ep/conf")).unwrap(),
        Path::new("/ep/environments/default")
    );
    // Exactly the expected files, nothing else.
    let mut found = Vec::new();
    let mut stack = vec![rootfs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(&rootfs)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            found.push(rel);
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "ep",
            "ep/assets",
            "ep/bin",
            "ep/bin/start.sh",
            "ep/conf",
            "usr",
            "usr/local",
            "usr/local/tomcat",
            "usr/local/tomcat/webapps",
            "usr/local/tomcat/webapps/cortex",
            "usr/local/tomcat/webapps/cortex/WEB-INF",
            "usr/local/tomcat/webapps/cortex/WEB-INF/web.xml",
        ]
    );

    // A deterministic tarball of the layout reads back too.
    let tar1 = tmp.path().join("image.tar");
    write_layout_tar(&layout, &tar1, EPOCH).unwrap();
    let tar2 = tmp.path().join("image2.tar");
    write_layout_tar(&layout, &tar2, EPOCH).unwrap();
    assert_eq!(std::fs::read(&tar1).unwrap(), std::fs::read(&tar2).unwrap());
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}:8.5.0", tar1.display())));
    assert!(inspect.contains(&built.digest().to_string()));
}

#[test]
fn images_are_reproducible_across_dirs() {
    let mut digests = Vec::new();
    for _ in 0..2 {
        let tmp = tempfile::tempdir().unwrap();
        let layer = app_layer(&tmp.path().join("some/where"));
        let built = Built::from_specs(vec![
            spec(
                vec![layer.clone()],
                Platform::linux_amd64(),
                ManifestFormat::Oci,
            ),
            spec(vec![layer], Platform::linux_arm64(), ManifestFormat::Oci),
        ])
        .unwrap();
        let Built::Index(ix) = &built else {
            panic!("two platforms make an index")
        };
        let json = String::from_utf8(ix.index_json.clone()).unwrap();
        assert!(json.contains(r#""variant":"v8""#), "{json}");
        let layout = tmp.path().join("layout");
        write_oci_layout(&layout, &[("multi", &built)]).unwrap();
        let raw = run(Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci:{}:multi", layout.display())));
        assert!(raw.contains("application/vnd.oci.image.index.v1+json"));
        digests.push(built.digest().clone());
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn docker_format_and_zstd_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = app_layer(tmp.path());
    let built = Built::from_specs(vec![spec(
        vec![layer],
        Platform::linux_amd64(),
        ManifestFormat::Docker,
    )])
    .unwrap();
    let m = String::from_utf8(built.images()[0].manifest_json.clone()).unwrap();
    assert!(m.contains("application/vnd.docker.distribution.manifest.v2+json"));
    assert!(m.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"));
    assert!(m.contains("application/vnd.docker.container.image.v1+json"));
    assert!(!m.contains("annotations"));
    // skopeo's oci: transport lists only OCI manifests, so check the Docker
    // manifest through its dir: transport (manifest.json + blobs by hex).
    let img = &built.images()[0];
    let dir = tmp.path().join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(dir.join("manifest.json"), &img.manifest_json).unwrap();
    std::fs::write(
        dir.join(img.config_descriptor.digest.trim_start_matches("sha256:")),
        &img.config_json,
    )
    .unwrap();
    for l in &img.layers {
        let hex = l.descriptor.digest.trim_start_matches("sha256:");
        std::fs::copy(l.path.as_ref().unwrap(), dir.join(hex)).unwrap();
    }
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("dir:{}", dir.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], built.digest().to_string());
    assert_eq!(v["Architecture"], "amd64");

    let mut b = LayerBuilder::new(LayerOptions {
        compression: Compression::Zstd { level: 3 },
        ..opts()
    });
    b.add_file_bytes("a", Meta::default(), vec![1]).unwrap();
    let z = b.finish(tmp.path()).unwrap();
    let err = Built::from_specs(vec![spec(
        vec![z],
        Platform::linux_amd64(),
        ManifestFormat::Docker,
    )]);
    assert!(matches!(err, Err(ImageError::ZstdInDocker)));
}

/// A busybox root filesystem as a base image built without a daemon, an app
/// layer on top via the layout, then unpacked with umoci and run with runc.
#[test]
fn busybox_image_runs_with_runc() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for tool in ["sh", "echo", "ls", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    let base_layer = layer_from_dir(
        &rootfs,
        &SourceOptions::default(),
        opts(),
        &tmp.path().join("work"),
    )
    .unwrap();
    let mut base_spec = spec(
        vec![base_layer],
        Platform::linux_amd64(),
        ManifestFormat::Oci,
    );
    base_spec.config = ConfigOverrides {
        env: vec![("PATH".into(), "/bin".into())],
        ..Default::default()
    };
    let base = Built::from_specs(vec![base_spec]).unwrap();
    let base_layout = tmp.path().join("base-layout");
    write_oci_layout(&base_layout, &[("busybox", &base)]).unwrap();

    // The app image is built on the base read back from its layout.
    let base_img =
        read_oci_layout_image(&base_layout, "busybox", &Platform::linux_amd64()).unwrap();
    let app = app_layer(&tmp.path().join("work"));
    let mut app_spec = spec(vec![app], Platform::linux_amd64(), ManifestFormat::Oci);
    app_spec.base = Some(base_img);
    app_spec.config.entrypoint = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo hello from ep-imagebuild".into(),
    ]);
    app_spec.config.working_dir = Some("/".into());
    let built = Built::from_specs(vec![app_spec]).unwrap();
    let img = &built.images()[0];
    assert_eq!(img.config.rootfs.diff_ids.len(), 2);
    assert_eq!(
        img.config.config.env,
        ["PATH=/bin", "EP_COMMERCE_ENVNAME=dev"]
    );
    let manifest = String::from_utf8(img.manifest_json.clone()).unwrap();
    assert!(manifest.contains(r#""org.opencontainers.image.base.name":"busybox""#));
    let layout = tmp.path().join("layout");
    write_oci_layout(&layout, &[("app", &built)]).unwrap();

    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:app", layout.display()))
        .arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    assert!(bundle.join("rootfs/ep/bin/start.sh").is_file());

    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = serde_json::Value::Bool(false);
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();

    let id = format!("ep-imagebuild-test-{}", std::process::id());
    let out = Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .output()
        .expect("runc is installed");
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("hello from ep-imagebuild"),
        "runc could not run the image (this is an environment limit if the \
         error is about cgroups/namespaces): status {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
