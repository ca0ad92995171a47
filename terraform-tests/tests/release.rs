//! `scripts/release`: reproducible artifacts from two clones, signed sums,
//! and installation with real Terraform from a filesystem mirror and an
//! HTTPS network mirror, with clean CLI configs and empty plugin caches.
//! A release is a full optimised build of two targets; the clones'
//! build directories live in `~/.cache/ep-provider/release-*`.

mod release_support;

use std::path::Path;
use std::process::Command;

use ep_terraform_tests::static_server::StaticServer;
use ep_terraform_tests::Workdir;
use release_support::*;

/// The same commit released in two clones at different paths, with
/// different build directories, gives byte-identical artifacts (the
/// signature aside: it carries its own time). The sums match, the signature
/// verifies and fails on a changed sums file, the binaries report the
/// version and commit, and the arm64 build is an aarch64 executable.
#[test]
fn two_clones_release_identical_bytes() {
    let a = release("a", true);
    let b = release("b", false);
    assert_eq!(a.commit, b.commit);
    let fa: Vec<_> = files_under(&a.dist)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "sig"))
        .collect();
    assert_eq!(fa, files_under(&b.dist), "the same files");
    for f in &fa {
        let (x, y) = (
            std::fs::read(a.dist.join(f)).expect("read a"),
            std::fs::read(b.dist.join(f)).expect("read b"),
        );
        assert!(x == y, "{} differs between the two clones", f.display());
    }
    for platform in ["linux_amd64", "linux_arm64"] {
        assert!(zip_of(&a, platform).is_file(), "{platform} zip");
        let tools = a
            .dist
            .join(format!("ep-imagebuild_{VERSION}_{platform}.tar.gz"));
        assert!(tools.is_file(), "{platform} tools archive");
    }

    // SHA256SUMS lists every archive and the manifest with its real hash.
    let sums_file = a
        .dist
        .join(format!("terraform-provider-ep_{VERSION}_SHA256SUMS"));
    let sums = std::fs::read_to_string(&sums_file).expect("sums");
    let listed: Vec<&str> = sums.lines().collect();
    assert_eq!(listed.len(), 5, "{sums}");
    for line in listed {
        let (hash, name) = line.split_once("  ").expect("hash  name");
        let actual = run(Command::new("sha256sum").arg(a.dist.join(name)));
        assert!(actual.starts_with(hash), "{name}: {line} vs {actual}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            a.dist
                .join(format!("terraform-provider-ep_{VERSION}_manifest.json")),
        )
        .expect("manifest"),
    )
    .expect("manifest json");
    assert_eq!(
        manifest["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );

    // The detached signature verifies with the key, and not for other bytes.
    let gnupg = a.gnupg.as_ref().expect("signed");
    let sig = a
        .dist
        .join(format!("terraform-provider-ep_{VERSION}_SHA256SUMS.sig"));
    let verify = |data: &Path| {
        Command::new("gpg")
            .env("GNUPGHOME", gnupg)
            .args(["--batch", "--verify"])
            .arg(&sig)
            .arg(data)
            .output()
            .expect("gpg --verify")
            .status
            .success()
    };
    assert!(verify(&sums_file), "the signature verifies");
    let tmp = tempfile::tempdir().expect("tempdir");
    let tampered = tmp.path().join("sums");
    std::fs::write(&tampered, sums.replacen('0', "1", 1)).expect("write");
    assert!(!verify(&tampered), "a changed sums file fails verification");

    // The binaries say what they are. The zip records the provider as an
    // executable (what `unzip` and Terraform restore); Python's extractor
    // drops modes, so the test restores it the same way.
    let mode = run(Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nprint(oct(zipfile.ZipFile(sys.argv[1]).infolist()[0].external_attr >> 16))",
        ])
        .arg(zip_of(&a, "linux_amd64")));
    assert_eq!(mode.trim(), "0o100755", "the provider's mode in the zip");
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(zip_of(&a, "linux_amd64"))
        .arg(tmp.path()));
    let provider = tmp.path().join(format!("terraform-provider-ep_v{VERSION}"));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&provider, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the extracted provider");
    }
    let v = run(Command::new(&provider).arg("--version"));
    assert_eq!(
        v.trim(),
        format!("terraform-provider-ep {VERSION} (commit {})", a.commit)
    );
    run(Command::new("tar")
        .arg("-xzf")
        .arg(
            a.dist
                .join(format!("ep-imagebuild_{VERSION}_linux_amd64.tar.gz")),
        )
        .arg("-C")
        .arg(tmp.path()));
    for tool in ["ep-imagebuild", "ep-plan-summary"] {
        let v = run(Command::new(tmp.path().join(tool)).arg("--version"));
        assert!(
            v.contains(&format!("{VERSION} (commit {})", a.commit)),
            "{tool}: {v}"
        );
    }
    let arm = tmp.path().join("arm");
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(zip_of(&a, "linux_arm64"))
        .arg(&arm));
    let elf =
        std::fs::read(arm.join(format!("terraform-provider-ep_v{VERSION}"))).expect("arm64 binary");
    assert_eq!(&elf[..4], b"\x7fELF");
    // e_machine (little-endian u16 at 18): 0xB7 is AArch64.
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        0xB7,
        "an aarch64 executable"
    );
}

const CONFIG: &str = r#"terraform {
  required_providers {
    ep = {
      source  = "ep-platform/ep"
      version = "0.1.0"
    }
  }
}
"#;

/// A working directory whose CLI config installs only through `installation`
/// (nothing direct), with an empty plugin cache.
fn clean_workdir(installation: &str) -> (Workdir, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("plugin cache dir");
    let mut wd = Workdir::new(&[("main.tf", CONFIG)]);
    wd.write(
        ".terraformrc",
        &format!("provider_installation {{\n{installation}\n}}\n"),
    );
    wd.set_env(
        "TF_PLUGIN_CACHE_DIR",
        cache.path().to_str().expect("utf-8 path"),
    );
    (wd, cache)
}

/// A CLI config's installation method: the filesystem mirror at `path`.
fn filesystem_mirror(path: &Path) -> String {
    format!(
        "  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"ep-platform/ep\"]\n  }}",
        path.display()
    )
}

/// The hashes the lock file records for the provider.
fn locked_hashes(wd: &Workdir) -> Vec<String> {
    let lock = std::fs::read_to_string(wd.file(".terraform.lock.hcl")).expect("lock file");
    lock.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("\"h1:") || l.starts_with("\"zh:"))
        .map(|l| l.trim_end_matches(',').trim_matches('"').to_owned())
        .collect()
}

/// `terraform init` from the filesystem mirror (the packed layout the
/// release writes) installs the release: the lock file's h1 hash is the
/// zip's, the provider runs; a zip changed afterwards is refused.
#[test]
fn terraform_installs_from_a_filesystem_mirror() {
    let r = release("a", true);
    let mirror = tempfile::tempdir().expect("mirror copy");
    copy_tree(&r.dist.join("mirror"), mirror.path());
    let (wd, _cache) = clean_workdir(&filesystem_mirror(mirror.path()));
    wd.init();
    let zip = zip_of(&r, "linux_amd64");
    assert_eq!(
        locked_hashes(&wd),
        vec![h1(&zip)],
        "the lock file holds the zip's h1"
    );
    let schema = wd.ok(&["providers", "schema", "-json"]).stdout;
    assert!(schema.contains("ep_deployment"), "the provider runs");

    // A zip whose content changed since the lock file was written: init
    // refuses it. A fresh directory and an empty plugin cache, or Terraform
    // would take the provider it already unpacked and never read the mirror.
    let mirrored = mirror
        .path()
        .join(ADDRESS)
        .join(zip.file_name().expect("zip name"));
    tamper_zip(&mirrored);
    let (wd2, _cache2) = clean_workdir(&filesystem_mirror(mirror.path()));
    let lock = std::fs::read_to_string(wd.file(".terraform.lock.hcl")).expect("lock file");
    wd2.write(".terraform.lock.hcl", &lock);
    init_refuses_the_package(&wd2);
}

/// `terraform init` from an HTTPS network mirror (index.json and
/// VERSION.json served from the release's mirror tree) installs it, verified
/// against the mirror's hashes; the lock file holds the zip's h1; a mirror
/// serving a changed zip is refused.
#[test]
fn terraform_installs_from_a_network_mirror() {
    let r = release("a", true);
    let certs = tempfile::tempdir().expect("certs");
    let (ca, cert, key) = ep_terraform_tests::tls::certificates(certs.path());
    let served = tempfile::tempdir().expect("mirror copy");
    copy_tree(&r.dist.join("mirror"), served.path());
    let server = StaticServer::start(served.path(), Some((cert, key)));
    let network = format!(
        "  network_mirror {{\n    url     = \"{}/\"\n    include = [\"ep-platform/ep\"]\n  }}",
        server.url()
    );
    let (mut wd, _cache) = clean_workdir(&network);
    // Terraform (Go) trusts the test CA through SSL_CERT_FILE.
    wd.set_env("SSL_CERT_FILE", ca.to_str().expect("utf-8 path"));
    wd.init();
    let zip = zip_of(&r, "linux_amd64");
    // Terraform checks the package against the mirror's hashes and records
    // the h1 it computed itself: ours, if release_pack computes it right.
    assert_eq!(locked_hashes(&wd), vec![h1(&zip)]);
    wd.ok(&["providers", "schema", "-json"]);

    // A fresh directory, the mirror now serving a changed zip: refused.
    tamper_zip(
        &served
            .path()
            .join(ADDRESS)
            .join(zip.file_name().expect("zip name")),
    );
    let (mut wd2, _cache2) = clean_workdir(&network);
    wd2.set_env("SSL_CERT_FILE", ca.to_str().expect("utf-8 path"));
    init_refuses_the_package(&wd2);
}

/// `terraform init` fails on a package whose hash is not the expected one.
fn init_refuses_the_package(wd: &Workdir) {
    let out = wd.run(&["init", "-input=false", "-no-color"]);
    assert_ne!(
        out.code,
        0,
        "a changed package must be refused:\n{}",
        out.all()
    );
    assert!(
        out.all().contains("checksum") || out.all().contains("doesn't match"),
        "{}",
        out.all()
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for rel in files_under(from) {
        let dst = to.join(&rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from.join(&rel), &dst).expect("copy");
    }
}

/// Rewrites the zip with one byte of the provider changed: still a valid
/// zip, but not the released package.
fn tamper_zip(zip: &Path) {
    let script = r#"
import sys, zipfile
src = sys.argv[1]
with zipfile.ZipFile(src) as z:
    items = [(i, z.read(i)) for i in z.infolist()]
with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z:
    for info, data in items:
        data = bytearray(data)
        data[-1] ^= 0xFF
        z.writestr(info, bytes(data))
"#;
    run(Command::new("python3").arg("-c").arg(script).arg(zip));
}

/// `scripts/release-image` makes the Jenkins agent image from the release
/// with ep-imagebuild itself: unpacked with umoci and run with runc, the
/// provider and the tools report the release, and Terraform's CLI config
/// points at the provider's mirror inside the image.
#[test]
fn the_release_image_runs_under_runc() {
    let r = release("a", true);
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = glibc_rootfs(tmp.path(), &zip_of(&r, "linux_amd64"));
    let layout = tmp.path().join("layout");
    run(Command::new(repo_root().join("scripts/release-image"))
        .arg(VERSION)
        .arg("--dist")
        .arg(&r.dist)
        .arg("--base")
        .arg(format!("dir:{}", rootfs.display()))
        .arg("--oci-layout")
        .arg(&layout));
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{VERSION}", layout.display()))
        .arg(&bundle));
    let plugin = format!(
        "/usr/local/share/terraform/plugins/{ADDRESS}/{VERSION}/linux_amd64/terraform-provider-ep_v{VERSION}"
    );
    let rc = std::fs::read_to_string(bundle.join("rootfs/etc/terraformrc")).expect("terraformrc");
    assert!(rc.contains("/usr/local/share/terraform/plugins"), "{rc}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).expect("config"))
            .expect("runtime config");
    let env = config["process"]["env"].to_string();
    assert!(env.contains("TF_CLI_CONFIG_FILE=/etc/terraformrc"), "{env}");
    for (args, want) in [
        (vec![plugin.as_str(), "--version"], "terraform-provider-ep"),
        (
            vec!["/usr/local/bin/ep-imagebuild", "--version"],
            "ep-imagebuild",
        ),
        (
            vec!["/usr/local/bin/ep-plan-summary", "--version"],
            "ep-plan-summary",
        ),
    ] {
        let out = runc(&bundle, &args);
        assert_eq!(
            out.trim(),
            format!("{want} {VERSION} (commit {})", r.commit),
            "{args:?}"
        );
    }
}

/// Runs `args` in the unpacked bundle with runc, without a terminal.
fn runc(bundle: &Path, args: &[&str]) -> String {
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("config")).expect("json");
    config["process"]["terminal"] = serde_json::Value::Bool(false);
    config["process"]["args"] = serde_json::json!(args);
    std::fs::write(&config_path, serde_json::to_vec(&config).expect("json")).expect("write");
    let id = format!("ep-release-{}", std::process::id());
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .output()
        .expect("runc");
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    assert!(
        out.status.success(),
        "runc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A root filesystem with busybox and the shared libraries the provider
/// links (from this machine, found with ldd): what a Debian slim base gives.
fn glibc_rootfs(dir: &Path, provider_zip: &Path) -> std::path::PathBuf {
    let unpacked = dir.join("bin-unpacked");
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(provider_zip)
        .arg(&unpacked));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
    let ldd =
        run(Command::new("ldd").arg(unpacked.join(format!("terraform-provider-ep_v{VERSION}"))));
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let dst = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().expect("lib dir")).expect("mkdir");
        // Copies the file a symlink names, under the link's path.
        std::fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
    rootfs
}
