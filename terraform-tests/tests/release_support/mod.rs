//! Builds releases with `scripts/release` for the release tests, in clones
//! of this repository's HEAD under `~/.cache/ep-provider/release-<name>/src`
//! (fixed places, kept between runs; two names are two different paths,
//! which is what reproducibility is about), all building into
//! `~/.cache/ep-provider/release-target`.
//! The build profile is [`profile`].
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The version the tests release.
pub const VERSION: &str = "0.1.0";
/// The address of the release's mirror tree.
pub const ADDRESS: &str = "registry.terraform.io/ep-platform/ep";
/// The user id of the throwaway signing key.
pub const KEY_UID: &str = "EP release test <release-test@ep.invalid>";

/// A finished release.
pub struct Release {
    /// The output directory (zips, sums, signature, `mirror/`).
    pub dist: PathBuf,
    /// The commit it was built from.
    pub commit: String,
    /// `GNUPGHOME` holding the signing key, when signed.
    pub gnupg: Option<PathBuf>,
}

fn cache() -> PathBuf {
    std::env::var_os("EP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/ep-provider")
        })
}

/// The repository under test.
pub fn repo_root() -> PathBuf {
    ep_terraform_tests::repo_root()
        .canonicalize()
        .expect("repository root")
}

pub use ep_terraform_tests::run_checked as run;

/// A throwaway GPG key (no passphrase) in its own `GNUPGHOME`, made once.
pub fn test_gnupg() -> PathBuf {
    let home = cache().join("release-gnupg");
    let _lock = lock(&cache().join("release-gnupg.lock"));
    let has_key = home.exists()
        && Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--list-secret-keys", KEY_UID])
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_key {
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("gnupg home");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))
                .expect("chmod gnupg home");
        }
        run(Command::new("gpg").env("GNUPGHOME", &home).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            KEY_UID,
            "ed25519",
            "sign",
            "never",
        ]));
    }
    home
}

fn lock(path: &Path) -> File {
    std::fs::create_dir_all(path.parent().expect("lock parent")).expect("lock dir");
    let f = File::create(path).unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    f.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    f
}

/// The release of HEAD built in clone `name`, signed when `sign`. Built
/// once per commit; tests asking for the same clone wait for each other.
pub fn release(name: &str, sign: bool) -> Release {
    let base = cache().join(format!("release-{name}"));
    let _lock = lock(&base.with_extension("lock"));
    let root = repo_root();
    let commit = run(Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["rev-parse", "HEAD"]))
    .trim()
    .to_owned();
    let dist = base.join("dist");
    let stamp = base.join("dist.stamp");
    let profile = profile();
    let want = format!("{commit} signed={sign} profile={profile}");
    let gnupg = sign.then(test_gnupg);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Release {
            dist,
            commit,
            gnupg,
        };
    }
    let _ = std::fs::remove_file(&stamp);
    // The clone is kept (its target/ holds the build), and moved to HEAD.
    let src = base.join("src");
    if !src.join(".git").is_dir() {
        let _ = std::fs::remove_dir_all(&src);
        run(Command::new("git")
            .args(["clone", "-q", "--no-checkout"])
            .arg(&root)
            .arg(&src));
    }
    run(Command::new("git")
        .arg("-C")
        .arg(&src)
        .args(["fetch", "-q"])
        .arg(&root)
        .arg("HEAD"));
    run(Command::new("git")
        .arg("-C")
        .arg(&src)
        .args(["checkout", "-q", "--force", "--detach", &commit]));
    run(Command::new("git")
        .arg("-C")
        .arg(&src)
        .args(["clean", "-q", "-fdx", "-e", "/target"]));
    let mut cmd = Command::new(src.join("scripts/release"));
    cmd.current_dir(&src)
        .args([VERSION, "--profile", &profile, "--out"])
        .arg(&dist)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        // One build directory for both clones: dependencies are built once, this
        // workspace's crates once per clone (their paths differ).
        .env("EP_RELEASE_TARGET_DIR", cache().join("release-target"))
        .env_remove("SOURCE_DATE_EPOCH");
    match &gnupg {
        Some(home) => cmd.env("GNUPGHOME", home).args(["--sign-key", KEY_UID]),
        None => cmd.arg("--no-sign"),
    };
    let log = base.join("release.log");
    let out = cmd.output().expect("run scripts/release");
    std::fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat()).expect("write log");
    assert!(
        out.status.success(),
        "scripts/release in {} failed; the end of {}:\n{}",
        src.display(),
        log.display(),
        tail(&String::from_utf8_lossy(&out.stderr), 40)
    );
    std::fs::write(&stamp, want).expect("stamp");
    Release {
        dist,
        commit,
        gnupg,
    }
}

/// The Cargo profile the tests release with: `release-check` (unoptimised,
/// what CI can build four times in its time) unless `EP_RELEASE_PROFILE`
/// asks for `release`, the one users get (docs/release.md records that run).
pub fn profile() -> String {
    std::env::var("EP_RELEASE_PROFILE").unwrap_or_else(|_| "release-check".to_owned())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Terraform's `h1:` hash of a provider zip, as `scripts/lib/release_pack.py` computes it.
pub fn h1(zip: &Path) -> String {
    run(Command::new("python3")
        .arg(repo_root().join("scripts/lib/release_pack.py"))
        .arg("h1")
        .arg(zip))
    .trim()
    .to_owned()
}

/// The provider zip of `platform`.
pub fn zip_of(r: &Release, platform: &str) -> PathBuf {
    r.dist
        .join(format!("terraform-provider-ep_{VERSION}_{platform}.zip"))
}
