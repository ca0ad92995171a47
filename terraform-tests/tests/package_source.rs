//! Deployment packages from a Maven-layout repository served over HTTP on
//! loopback (`scripts/lib/static_server.py`): coordinates, URLs and
//! SNAPSHOTs, the checksum-verified cache (an unchanged package is not
//! downloaded again), a wrong checksum, connections that break off, and
//! credentials from settings.xml; then `ep_deployment_package` and
//! `ep-imagebuild --package` through real Terraform and the real CLI.

use std::path::{Path, PathBuf};

use ep_imagebuild::source::{resolve, FetchOptions, MavenSettings, PackageRef, SourceError};
use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::static_server::{StaticOptions, StaticServer};
use ep_terraform_tests::Workdir;
use sha2::Digest as _;

const GROUP_DIR: &str = "com/elasticpath/ext-deployment-package";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A repository with a release (`.sha256` and `.sha1`), a SNAPSHOT, a
/// sha1-only artifact, one with a wrong checksum and one with none.
fn repository(seed: u64) -> (tempfile::TempDir, Vec<u8>) {
    let repo = tempfile::tempdir().expect("repo");
    let zip = repo.path().join("pkg.zip");
    synthetic::write_zip(&SynthOptions::small(seed), &zip).expect("package");
    let bytes = std::fs::read(&zip).expect("read package");
    std::fs::remove_file(&zip).expect("rm");
    let put = |rel: &str, data: &[u8]| {
        let p = repo.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    };
    let rel = format!("{GROUP_DIR}/8.5.0/ext-deployment-package-8.5.0.zip");
    put(&rel, &bytes);
    put(&format!("{rel}.sha256"), sha256_hex(&bytes).as_bytes());
    let sha1 = {
        use sha1::Digest as _;
        hex::encode(sha1::Sha1::digest(&bytes))
    };
    put(&format!("{rel}.sha1"), sha1.as_bytes());
    let snap = format!("{GROUP_DIR}/8.6.0-SNAPSHOT");
    put(
        &format!("{snap}/maven-metadata.xml"),
        br#"<metadata><versioning><snapshotVersions>
             <snapshotVersion><extension>zip</extension><value>8.6.0-20261201.100000-3</value></snapshotVersion>
           </snapshotVersions></versioning></metadata>"#,
    );
    let snap_rel = format!("{snap}/ext-deployment-package-8.6.0-20261201.100000-3.zip");
    put(&snap_rel, &bytes);
    put(&format!("{snap_rel}.sha256"), sha256_hex(&bytes).as_bytes());
    put("g/sha1only/1.0/sha1only-1.0.zip", &bytes);
    put(
        "g/sha1only/1.0/sha1only-1.0.zip.sha1",
        format!("{sha1}  sha1only-1.0.zip\n").as_bytes(),
    );
    put("g/bad/1.0/bad-1.0.zip", &bytes);
    put("g/bad/1.0/bad-1.0.zip.sha256", "0".repeat(64).as_bytes());
    put("g/nosum/1.0/nosum-1.0.zip", &bytes);
    (repo, bytes)
}

fn opts(server: &StaticServer, cache: &Path) -> FetchOptions {
    FetchOptions {
        cache_dir: cache.to_path_buf(),
        repository: Some(server.url()),
        attempts: 4,
        ..Default::default()
    }
}

fn mvn(s: &str) -> PackageRef {
    PackageRef::parse(s).expect("reference")
}

fn zip_gets(server: &StaticServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|l| {
            l.starts_with("GET ") && l.split(' ').nth(1).is_some_and(|p| p.ends_with(".zip"))
        })
        .collect()
}

fn cache_files(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_release_is_downloaded_once_and_verified() {
    let (repo, bytes) = repository(31);
    let server = StaticServer::start(repo.path(), None);
    let cache = tempfile::tempdir().expect("cache");
    let r = mvn("mvn:com.elasticpath:ext-deployment-package:8.5.0");
    let first = resolve(&r, &opts(&server, cache.path()))
        .await
        .expect("resolve");
    assert!(first.downloaded);
    assert_eq!(
        first.checksum,
        Some(format!("sha256:{}", sha256_hex(&bytes)))
    );
    assert_eq!(std::fs::read(&first.path).expect("cached"), bytes);
    ep_imagebuild::package::DeploymentPackage::open(&first.path).expect("a package");
    let again = resolve(&r, &opts(&server, cache.path()))
        .await
        .expect("resolve");
    assert!(!again.downloaded);
    assert_eq!(again.path, first.path);
    assert_eq!(zip_gets(&server).len(), 1, "{:?}", server.requests());

    // The same file by URL, a SNAPSHOT and a sha1-only artifact: one cache entry.
    let url = format!(
        "{}/{GROUP_DIR}/8.5.0/ext-deployment-package-8.5.0.zip",
        server.url()
    );
    let by_url = resolve(&mvn(&url), &opts(&server, cache.path()))
        .await
        .expect("url");
    assert_eq!(by_url.path, first.path);
    let snap = resolve(
        &mvn("mvn:com.elasticpath:ext-deployment-package:8.6.0-SNAPSHOT"),
        &opts(&server, cache.path()),
    )
    .await
    .expect("snapshot");
    assert!(
        snap.url
            .as_deref()
            .is_some_and(|u| u.ends_with("8.6.0-20261201.100000-3.zip")),
        "{snap:?}"
    );
    let s1 = resolve(&mvn("mvn:g:sha1only:1.0"), &opts(&server, cache.path()))
        .await
        .expect("sha1");
    assert!(s1.checksum.is_some_and(|c| c.starts_with("sha1:")));
}

#[tokio::test]
async fn wrong_or_missing_checksums_keep_nothing() {
    let (repo, _) = repository(32);
    let server = StaticServer::start(repo.path(), None);
    let cache = tempfile::tempdir().expect("cache");
    let err = resolve(&mvn("mvn:g:bad:1.0"), &opts(&server, cache.path()))
        .await
        .expect_err("mismatch");
    assert!(matches!(err, SourceError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("bad-1.0.zip"), "{err}");
    let err = resolve(&mvn("mvn:g:nosum:1.0"), &opts(&server, cache.path()))
        .await
        .expect_err("no checksum");
    assert!(matches!(err, SourceError::NoChecksum { .. }), "{err}");
    let err = resolve(&mvn("mvn:g:absent:1.0"), &opts(&server, cache.path()))
        .await
        .expect_err("absent");
    assert!(err.to_string().contains("404"), "{err}");
    assert!(
        cache_files(cache.path()).is_empty(),
        "{:?}",
        cache_files(cache.path())
    );
}

#[tokio::test]
async fn a_broken_download_is_resumed_or_restarted() {
    let (repo, bytes) = repository(33);
    let r = mvn("mvn:com.elasticpath:ext-deployment-package:8.5.0");
    for no_ranges in [false, true] {
        let server = StaticServer::start_with(
            repo.path(),
            StaticOptions {
                drop: Some((100_000, 2, ".zip".into())),
                no_ranges,
                ..Default::default()
            },
        );
        let cache = tempfile::tempdir().expect("cache");
        let got = resolve(&r, &opts(&server, cache.path()))
            .await
            .expect("resolve");
        assert_eq!(std::fs::read(&got.path).expect("cached"), bytes);
        let gets = zip_gets(&server);
        assert_eq!(gets.len(), 3, "two broken, one whole: {gets:?}");
        assert!(
            gets[0].contains("dropped") && gets[1].contains("dropped"),
            "{gets:?}"
        );
        if no_ranges {
            assert!(gets.iter().all(|g| g.contains(" 200 ")), "{gets:?}");
        } else {
            assert!(
                gets[1].contains(" 206 ") && gets[2].contains("bytes="),
                "{gets:?}"
            );
        }
        assert_eq!(cache_files(cache.path()).len(), 1, "only the verified file");
    }
    // A server that breaks off every time: an error, and no partial file kept.
    let server = StaticServer::start_with(
        repo.path(),
        StaticOptions {
            drop: Some((1000, 100, ".zip".into())),
            no_ranges: true,
            ..Default::default()
        },
    );
    let cache = tempfile::tempdir().expect("cache");
    let err = resolve(&r, &opts(&server, cache.path()))
        .await
        .expect_err("never completes");
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err}");
    assert!(
        cache_files(cache.path()).is_empty(),
        "{:?}",
        cache_files(cache.path())
    );
}

#[tokio::test]
async fn credentials_come_from_settings_xml() {
    let (repo, _) = repository(34);
    let server = StaticServer::start_with(
        repo.path(),
        StaticOptions {
            basic_auth: Some(("ci".into(), "s3cret-pw".into())),
            ..Default::default()
        },
    );
    let cache = tempfile::tempdir().expect("cache");
    let r = mvn("mvn:com.elasticpath:ext-deployment-package:8.5.0");
    let err = resolve(&r, &opts(&server, cache.path()))
        .await
        .expect_err("401");
    assert!(
        err.to_string().contains("401") && err.to_string().contains("settings.xml"),
        "{err}"
    );
    let settings = MavenSettings::parse(&format!(
        "<settings><servers><server><id>nexus</id><username>ci</username>\
         <password>s3cret-pw</password></server></servers><mirrors><mirror><id>nexus</id>\
         <mirrorOf>*</mirrorOf><url>{}/</url></mirror></mirrors></settings>",
        server.url()
    ))
    .expect("settings");
    let o = FetchOptions {
        repository: None, // the mirror is the repository
        settings,
        ..opts(&server, cache.path())
    };
    let got = resolve(&r, &o).await.expect("with credentials");
    assert!(got.downloaded);
    assert!(
        !format!("{o:?}").contains("s3cret-pw"),
        "credentials stay out of Debug"
    );
}

/// `ep_deployment_package` with a coordinate, through Terraform: the package
/// is read from the verified copy, a second plan downloads nothing, and a
/// bad reference is refused at validate on `path`.
#[test]
fn the_data_source_reads_a_maven_package() {
    let (repo, bytes) = repository(35);
    let server = StaticServer::start(repo.path(), None);
    let cache = tempfile::tempdir().expect("cache");
    let config = |path: &str| {
        format!(
            r#"terraform {{
  required_providers {{
    ep = {{ source = "ep-platform/ep" }}
  }}
}}
data "ep_deployment_package" "release" {{
  path             = "{path}"
  maven_repository = "{}"
}}
output "pkg" {{
  value = {{
    version  = data.ep_deployment_package.release.version
    local    = data.ep_deployment_package.release.local_path
    checksum = data.ep_deployment_package.release.source_checksum
    apps     = keys(data.ep_deployment_package.release.applications)
  }}
}}
"#,
            server.url()
        )
    };
    let mut wd = Workdir::new(&[(
        "main.tf",
        &config("mvn:com.elasticpath:ext-deployment-package:8.5.0"),
    )]);
    wd.set_env("XDG_CACHE_HOME", cache.path().to_str().expect("utf-8"));
    wd.init();
    wd.apply();
    let out = &wd.outputs()["pkg"];
    let local = PathBuf::from(out["local"].as_str().expect("local_path"));
    assert!(local.starts_with(cache.path()), "{out}");
    assert_eq!(std::fs::read(&local).expect("cached package"), bytes);
    assert_eq!(out["checksum"], format!("sha256:{}", sha256_hex(&bytes)));
    assert!(out["apps"].to_string().contains("cortex"), "{out}");
    wd.assert_plan_empty(true);
    assert_eq!(zip_gets(&server).len(), 1, "plans verify the checksum only");

    wd.write("main.tf", &config("mvn:com.elasticpath:only-two"));
    let out = wd.run(&["validate", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("Invalid package reference") && out.stderr.contains("path"),
        "{}",
        out.all()
    );
}

/// `ep-imagebuild build --package mvn:…` builds from the verified download.
#[test]
fn the_cli_builds_from_a_maven_package() {
    let (repo, _) = repository(36);
    let server = StaticServer::start(repo.path(), None);
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = std::env::var("EP_IMAGEBUILD_BIN").expect("EP_IMAGEBUILD_BIN (scripts/test sets it)");
    let out = std::process::Command::new(bin)
        .args([
            "build",
            "--package",
            "mvn:com.elasticpath:ext-deployment-package:8.5.0",
        ])
        .args([
            "--maven-repository",
            &server.url(),
            "--service",
            "batch",
            "--tag",
            "t",
        ])
        .arg("--work-dir")
        .arg(tmp.path().join("work"))
        .arg("--oci-layout")
        .arg(tmp.path().join("layout"))
        .env_remove("EP_MAVEN_REPOSITORY")
        .output()
        .expect("run ep-imagebuild");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("downloaded"), "{stderr}");
    assert!(tmp.path().join("layout/index.json").is_file());
}
