//! The package reader against generated, foreign and malicious packages.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::*;
use ep_imagebuild::package::{DeploymentPackage, EntryKind, Limits, PackageError, PackageFormat};
use ep_imagebuild::synthetic::{self, SynthOptions};
use sha2::{Digest, Sha256};

fn small_zip(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("pkg.zip");
    synthetic::write_zip(&SynthOptions::small(3), &path).unwrap();
    path
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn open_err(path: &Path) -> PackageError {
    DeploymentPackage::open(path).expect_err("package should be refused")
}

/// Reads an entry through the zip crate, as an independent oracle.
fn zip_crate_read(path: &Path, name: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn reads_a_generated_package() {
    let tmp = tempfile::tempdir().unwrap();
    let path = small_zip(tmp.path());
    let pkg = DeploymentPackage::open(&path).unwrap();
    assert_eq!(pkg.format(), PackageFormat::Zip);
    assert_eq!(pkg.version(), Some("8.5.0"));
    let names: Vec<_> = pkg.applications().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["cortex", "studio", "cm", "batch", "integration", "search"]
    );
    let cortex = pkg.application("cortex").unwrap();
    assert_eq!(cortex.path, "webapps/ext-cortex-webapp-8.5.0.war");
    assert_eq!(cortex.version.as_deref(), Some("8.5.0"));
    let tool = pkg.tool("data-population").unwrap();
    assert_eq!(tool.path, "tools/ext-data-population-cli-8.5.0-package.zip");
    assert_eq!(tool.version.as_deref(), Some("8.5.0"));
    assert_eq!(pkg.environments().unwrap(), ["author", "default", "live"]);
    assert_eq!(pkg.jdbc_drivers()[0].name, "mysql-connector-j");
    assert!(pkg
        .activemq_libraries()
        .iter()
        .any(|a| a.name == "activemq-client"));

    let spec = pkg.ops_spec().unwrap().unwrap();
    assert_eq!(spec.java.as_deref(), Some("17"));
    assert_eq!(spec.tomcat.as_deref(), Some("9.0.89"));
    assert_eq!(spec.activemq.as_deref(), Some("5.18.4"));
    assert_eq!(spec.maven.as_deref(), Some("3.9.6"));
    assert_eq!(spec.databases[0].kind.as_deref(), Some("mysql"));
    assert!(spec.raw.get("java").is_some());

    // Digests agree with an independent reader.
    let expected = hex::encode(Sha256::digest(zip_crate_read(&path, &cortex.path)));
    assert_eq!(pkg.sha256(cortex).unwrap(), expected);
    assert_eq!(
        cortex.size,
        zip_crate_read(&path, &cortex.path).len() as u64
    );

    let fp = pkg.fingerprint().unwrap();
    assert_eq!(fp.len(), 64);
    assert_eq!(
        DeploymentPackage::open(&path)
            .unwrap()
            .fingerprint()
            .unwrap(),
        fp
    );
}

#[test]
fn nested_archives_stream_without_extraction() {
    let tmp = tempfile::tempdir().unwrap();
    let path = small_zip(tmp.path());
    let pkg = DeploymentPackage::open(&path).unwrap();
    let cortex = pkg.application("cortex").unwrap();

    // Deflated in the package: read through the outer inflater.
    let war = pkg.open_nested(&cortex.path).unwrap();
    assert!(!war.is_seekable());
    assert!(war.entry("WEB-INF/lib/spring-core-5.3.39.jar").is_some());
    assert!(war.entry("WEB-INF/web.xml").is_some());

    // Every entry streams, sizes match, and contents match the zip crate's view.
    let war_bytes = zip_crate_read(&path, &cortex.path);
    let mut oracle = zip::ZipArchive::new(std::io::Cursor::new(war_bytes)).unwrap();
    let mut seen = 0;
    war.for_each_entry(|entry, reader| {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got.len() as u64, entry.size, "{}", entry.path);
        let mut want = Vec::new();
        oracle
            .by_name(&entry.path)
            .unwrap()
            .read_to_end(&mut want)
            .unwrap();
        assert!(got == want, "content differs for {}", entry.path);
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, war.entries().len());
    assert_eq!(seen, oracle.len());

    // Random access too.
    let mut web_xml = String::new();
    war.open_entry("WEB-INF/web.xml")
        .unwrap()
        .read_to_string(&mut web_xml)
        .unwrap();
    assert!(web_xml.contains("ext-cortex-webapp"));

    // The tool zip keeps the launcher executable.
    let tool = pkg
        .open_nested(&pkg.tool("data-population").unwrap().path)
        .unwrap();
    let launcher = tool.entry("bin/data-population.sh").unwrap();
    assert_eq!(launcher.mode, Some(0o755));
    assert!(tool
        .entries()
        .iter()
        .any(|e| e.path.starts_with("lib/") && e.path.ends_with(".jar")));
}

#[test]
fn directory_packages_match_their_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let zip_path = small_zip(tmp.path());
    let dir = tmp.path().join("unpacked");
    synthetic::write_dir(&SynthOptions::small(3), &dir).unwrap();

    let zipped = DeploymentPackage::open(&zip_path).unwrap();
    let unpacked = DeploymentPackage::open(&dir).unwrap();
    assert_eq!(unpacked.format(), PackageFormat::Directory);
    assert_eq!(unpacked.version(), zipped.version());
    assert_eq!(unpacked.applications(), zipped.applications());
    assert_eq!(
        unpacked.environments().unwrap(),
        zipped.environments().unwrap()
    );
    assert_eq!(
        unpacked.fingerprint().unwrap(),
        zipped.fingerprint().unwrap()
    );
    let cortex = unpacked.application("cortex").unwrap();
    assert_eq!(
        unpacked.sha256(cortex).unwrap(),
        zipped.sha256(cortex).unwrap()
    );
    // On disk the WAR is read in place.
    let war = unpacked.open_nested(&cortex.path).unwrap();
    assert!(war.is_seekable());
    let mut n = 0;
    war.for_each_entry(|_, r| {
        std::io::copy(r, &mut std::io::sink()).unwrap();
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, war.entries().len());
}

/// A package in EP's layout written by Python's zipfile: directory entries, a stored WAR
/// (read in place), a WAR written to an unseekable stream (data descriptors), a -SNAPSHOT
/// version, a data-sync webapp, no ops-spec.
#[test]
fn reads_a_package_written_by_another_tool() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 not available; skipping");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("foreign.zip");
    let script = r#"
import io, sys, zipfile
class Unseekable(io.RawIOBase):
    def __init__(self): self.buf = bytearray()
    def writable(self): return True
    def write(self, b): self.buf += b; return len(b)
def war(name, stream=False):
    raw = Unseekable() if stream else io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/", b"")
        z.writestr("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n")
        z.writestr("WEB-INF/web.xml", ("<web-app><display-name>%s</display-name></web-app>" % name).encode())
        z.writestr("WEB-INF/lib/spring-core-5.3.39.jar", bytes(range(256)) * 300)
        z.writestr("WEB-INF/classes/com/example/A.class", b"\xca\xfe\xba\xbe" + b"x" * 500)
    return bytes(raw.buf) if stream else raw.getvalue()
def jar():
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        for env in ("default", "author", "live", "qa"):
            z.writestr("environments/%s/" % env, b"")
            z.writestr("environments/%s/database.properties" % env, b"data.population.host=db\n")
            z.writestr("environments/%s/files/conf/ep.properties" % env, b"ep.x=1\n")
    return raw.getvalue()
v = "8.6.0-SNAPSHOT"
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for d in ("webapps/", "tools/", "database/", "database/jdbc/"):
        z.writestr(d, b"")
    z.writestr(zipfile.ZipInfo("webapps/ext-cortex-webapp-%s.war" % v), war("cortex"), compress_type=zipfile.ZIP_STORED)
    z.writestr("webapps/ext-cm-webapp-%s.war" % v, war("cm", stream=True))
    z.writestr("webapps/ext-data-sync-webapp-%s.war" % v, war("data-sync"))
    z.writestr("database/ext-data-%s.jar" % v, jar())
    z.writestr("database/jdbc/mysql-connector-j-8.0.33.jar", b"PK\x05\x06" + b"\0" * 18)
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());

    let pkg = DeploymentPackage::open(&out).unwrap();
    assert_eq!(pkg.version(), Some("8.6.0-SNAPSHOT"));
    let names: Vec<_> = pkg.applications().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["cortex", "cm", "data-sync"]);
    assert!(pkg.tools().is_empty());
    assert!(pkg.ops_spec().unwrap().is_none());
    assert_eq!(
        pkg.environments().unwrap(),
        ["author", "default", "live", "qa"]
    );
    assert!(pkg
        .entries()
        .iter()
        .any(|e| e.kind == EntryKind::Directory && e.path == "webapps"));

    for app in pkg.applications() {
        let war = pkg.open_nested(&app.path).unwrap();
        assert_eq!(war.is_seekable(), app.name == "cortex", "{}", app.name);
        let mut files = BTreeMap::new();
        war.for_each_entry(|e, r| {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).unwrap();
            files.insert(e.path.clone(), buf);
            Ok(())
        })
        .unwrap();
        let web_xml = String::from_utf8(files["WEB-INF/web.xml"].clone()).unwrap();
        assert!(web_xml.contains(&app.name), "{web_xml}");
        assert_eq!(files["WEB-INF/lib/spring-core-5.3.39.jar"].len(), 256 * 300);
        assert!(files.contains_key("META-INF"));
        // Random access through the outer inflater, as well.
        let mut class = Vec::new();
        war.open_entry("WEB-INF/classes/com/example/A.class")
            .unwrap()
            .read_to_end(&mut class)
            .unwrap();
        assert_eq!(&class[..4], b"\xca\xfe\xba\xbe");
    }
    let fp = pkg.fingerprint().unwrap();
    assert_eq!(
        fp,
        DeploymentPackage::open(&out)
            .unwrap()
            .fingerprint()
            .unwrap()
    );
}

#[test]
fn missing_package() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        open_err(&tmp.path().join("nope.zip")),
        PackageError::NotFound { .. }
    ));
}

#[test]
fn not_a_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "x.zip", b"this is a text file, not a zip");
    assert!(matches!(open_err(&p), PackageError::NotAZip { .. }));
    let p = write(tmp.path(), "empty.zip", b"");
    assert!(matches!(open_err(&p), PackageError::NotAZip { .. }));
}

#[test]
fn truncated_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = fs::read(small_zip(tmp.path())).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 10, 40] {
        let p = write(tmp.path(), "cut.zip", &bytes[..cut]);
        let err = open_err(&p);
        assert!(
            matches!(err, PackageError::CorruptZip { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn bad_central_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = raw_zip(&[stored("webapps/ext-cortex-webapp-1.war", &tiny_war())]);
    // Point the central directory offset past its end.
    let n = bytes.len();
    bytes[n - 6..n - 2].copy_from_slice(&u32::MAX.wrapping_sub(5).to_le_bytes());
    let p = write(tmp.path(), "badcd.zip", &bytes);
    assert!(matches!(open_err(&p), PackageError::CorruptZip { .. }));

    // Break the first central record's signature.
    let mut bytes = raw_zip(&[stored("webapps/ext-cortex-webapp-1.war", &tiny_war())]);
    // The outer central record is the last one (the WAR carries its own).
    let cd = bytes
        .windows(4)
        .rposition(|w| w == [0x50, 0x4b, 1, 2])
        .unwrap();
    bytes[cd + 3] = 9;
    let p = write(tmp.path(), "badsig.zip", &bytes);
    let err = open_err(&p);
    assert!(matches!(err, PackageError::CorruptZip { .. }), "{err}");
}

#[test]
fn escaping_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "../evil",
        "webapps/../../evil",
        "/etc/passwd",
        "C:\\evil",
        "webapps\\x.war",
        "c:/x",
    ] {
        let bytes = raw_zip(&[
            stored("webapps/ext-cortex-webapp-1.war", &tiny_war()),
            stored(name, b"boom"),
        ]);
        let p = write(tmp.path(), "evil.zip", &bytes);
        match open_err(&p) {
            PackageError::UnsafePath { entry, .. } => assert_eq!(entry, name),
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn escaping_names_inside_a_war_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let war = raw_zip(&[
        stored("WEB-INF/web.xml", b"<x/>"),
        stored("../../etc/cron.d/x", b"boom"),
    ]);
    let p = write(
        tmp.path(),
        "p.zip",
        &raw_zip(&[deflated("webapps/ext-cortex-webapp-1.war", &war)]),
    );
    let pkg = DeploymentPackage::open(&p).unwrap();
    match pkg
        .open_nested("webapps/ext-cortex-webapp-1.war")
        .unwrap_err()
    {
        PackageError::UnsafePath { entry, .. } => {
            assert_eq!(entry, "webapps/ext-cortex-webapp-1.war!/../../etc/cron.d/x")
        }
        other => panic!("{other}"),
    }
}

#[test]
fn symlink_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = raw_zip(&[
        stored("webapps/ext-cortex-webapp-1.war", &tiny_war()),
        with_mode(stored("webapps/link", b"/etc/passwd"), 0o120_777),
    ]);
    let p = write(tmp.path(), "link.zip", &bytes);
    match open_err(&p) {
        PackageError::SymlinkEntry { entry } => assert_eq!(entry, "webapps/link"),
        other => panic!("{other}"),
    }
    // A regular unix file with a mode is fine.
    let bytes = raw_zip(&[with_mode(
        stored("webapps/ext-cortex-webapp-1.war", &tiny_war()),
        0o100_644,
    )]);
    let p = write(tmp.path(), "ok.zip", &bytes);
    let pkg = DeploymentPackage::open(&p).unwrap();
    assert_eq!(pkg.entries()[0].mode, Some(0o644));
}

#[test]
fn duplicate_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let war = tiny_war();
    let bytes = raw_zip(&[
        stored("webapps/ext-cortex-webapp-1.war", &war),
        stored("webapps/ext-cortex-webapp-1.war", b"other"),
    ]);
    let p = write(tmp.path(), "dup.zip", &bytes);
    match open_err(&p) {
        PackageError::DuplicateEntry { entry } => {
            assert_eq!(entry, "webapps/ext-cortex-webapp-1.war")
        }
        other => panic!("{other}"),
    }
    // A file that is also a directory.
    let bytes = raw_zip(&[
        stored("webapps", b"file"),
        stored("webapps/ext-cortex-webapp-1.war", &war),
    ]);
    let p = write(tmp.path(), "dup2.zip", &bytes);
    assert!(matches!(open_err(&p), PackageError::DuplicateEntry { .. }));
}

#[test]
fn zip_bombs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 64 << 20];
    // Honest headers, absurd ratio: refused before inflating.
    let bytes = raw_zip(&[
        stored("webapps/ext-cortex-webapp-1.war", &tiny_war()),
        deflated("webapps/zeros.bin", &zeros),
    ]);
    let p = write(tmp.path(), "bomb.zip", &bytes);
    match open_err(&p) {
        PackageError::ZipBomb { entry, .. } => assert_eq!(entry, "webapps/zeros.bin"),
        other => panic!("{other}"),
    }

    // Lying headers: declares 1 KiB, inflates to 64 MiB. Caught while streaming.
    let mut liar = deflated("ops-spec.json", &zeros);
    liar.size = 1024;
    let bytes = raw_zip(&[stored("webapps/ext-cortex-webapp-1.war", &tiny_war()), liar]);
    let p = write(tmp.path(), "liar.zip", &bytes);
    let pkg = DeploymentPackage::open(&p).unwrap();
    let mut sink = Vec::new();
    let err = pkg
        .open_entry("ops-spec.json")
        .unwrap()
        .read_to_end(&mut sink)
        .unwrap_err();
    let err = PackageError::from_io(err, "ops-spec.json");
    assert!(matches!(err, PackageError::ZipBomb { .. }), "{err}");
    assert!(
        sink.len() <= 1024 + 64 * 1024,
        "stopped early: {}",
        sink.len()
    );
    assert!(matches!(
        pkg.ops_spec().unwrap_err(),
        PackageError::ZipBomb { .. }
    ));

    // Ratio limits from the caller apply to small entries too.
    let limits = Limits {
        max_ratio: 10,
        ratio_threshold: 0,
        ..Limits::default()
    };
    let bytes = raw_zip(&[deflated(
        "webapps/ext-cortex-webapp-1.war",
        &vec![7u8; 5000],
    )]);
    let p = write(tmp.path(), "ratio.zip", &bytes);
    let err = DeploymentPackage::open_with_limits(&p, limits).unwrap_err();
    assert!(matches!(err, PackageError::ZipBomb { .. }), "{err}");

    // Size limits from the caller.
    let limits = Limits {
        max_entry_size: 1000,
        ..Limits::default()
    };
    let bytes = raw_zip(&[deflated(
        "webapps/ext-cortex-webapp-1.war",
        &vec![7u8; 5000],
    )]);
    let p = write(tmp.path(), "big.zip", &bytes);
    let err = DeploymentPackage::open_with_limits(&p, limits).unwrap_err();
    assert!(matches!(err, PackageError::ZipBomb { .. }), "{err}");
}

#[test]
fn crc_mismatch_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = stored("webapps/ext-cortex-webapp-1.war", &tiny_war());
    e.crc ^= 1;
    let p = write(tmp.path(), "crc.zip", &raw_zip(&[e]));
    let pkg = DeploymentPackage::open(&p).unwrap();
    let err = pkg.sha256(&pkg.applications()[0]).unwrap_err();
    match err {
        PackageError::CorruptZip { archive, reason } => {
            assert_eq!(archive, "webapps/ext-cortex-webapp-1.war");
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn unknown_or_empty_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "readme.zip",
        &raw_zip(&[stored("README.txt", b"hello")]),
    );
    let err = open_err(&p);
    assert!(matches!(err, PackageError::NotAPackage { .. }));
    assert!(err.to_string().contains("webapps/*.war"), "{err}");
    let p = write(tmp.path(), "empty.zip", &raw_zip(&[]));
    assert!(matches!(open_err(&p), PackageError::NotAPackage { .. }));
    let empty_dir = tmp.path().join("emptydir");
    fs::create_dir(&empty_dir).unwrap();
    assert!(matches!(
        open_err(&empty_dir),
        PackageError::NotAPackage { .. }
    ));
}

#[test]
fn ambiguous_applications() {
    let tmp = tempfile::tempdir().unwrap();
    let war = tiny_war();
    let bytes = raw_zip(&[
        stored("webapps/ext-cortex-webapp-1.war", &war),
        stored("webapps/my-cortex-webapp-2.war", &war),
    ]);
    let p = write(tmp.path(), "amb.zip", &bytes);
    assert!(matches!(
        open_err(&p),
        PackageError::AmbiguousArtifact { .. }
    ));
}

#[test]
fn bad_ops_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = raw_zip(&[
        stored("webapps/ext-cortex-webapp-1.war", &tiny_war()),
        stored("ops-spec.json", b"{ not json"),
    ]);
    let p = write(tmp.path(), "ops.zip", &bytes);
    let pkg = DeploymentPackage::open(&p).unwrap();
    assert!(matches!(
        pkg.ops_spec().unwrap_err(),
        PackageError::InvalidOpsSpec { .. }
    ));
    assert!(matches!(
        pkg.open_entry("nope").err().unwrap(),
        PackageError::EntryNotFound { .. }
    ));
}

#[cfg(unix)]
#[test]
fn directory_symlinks() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pkg");
    fs::create_dir_all(root.join("webapps")).unwrap();
    fs::write(root.join("webapps/ext-cortex-webapp-1.war"), tiny_war()).unwrap();
    // A link to a file inside the root is followed.
    symlink(
        "ext-cortex-webapp-1.war",
        root.join("webapps/ext-cm-webapp-1.war"),
    )
    .unwrap();
    let pkg = DeploymentPackage::open(&root).unwrap();
    let cm = pkg.application("cm").unwrap();
    assert_eq!(cm.size, tiny_war().len() as u64);
    assert_eq!(
        pkg.sha256(cm).unwrap(),
        pkg.sha256(pkg.application("cortex").unwrap()).unwrap()
    );

    // A link leaving the root is refused.
    fs::write(tmp.path().join("secret"), b"s").unwrap();
    symlink("../../secret", root.join("webapps/secret")).unwrap();
    match open_err(&root) {
        PackageError::SymlinkEscapes { entry, .. } => assert_eq!(entry, "webapps/secret"),
        other => panic!("{other}"),
    }
    fs::remove_file(root.join("webapps/secret")).unwrap();

    // A link to a directory is refused (loops).
    symlink("..", root.join("webapps/loop")).unwrap();
    assert!(matches!(
        open_err(&root),
        PackageError::UnsupportedEntry { .. }
    ));
}
