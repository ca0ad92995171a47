//! What the provider pushed, read with the outside oracles: skopeo inspects
//! and copies images out of the loopback registries, umoci unpacks them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::run_checked;

/// A loopback registry as skopeo reaches it: plain HTTP, with credentials
/// (`user:password`) for the htpasswd registry or none.
#[derive(Clone, Copy, Debug)]
pub struct Registry<'a> {
    creds: Option<&'a str>,
}

impl<'a> Registry<'a> {
    /// The registry without authentication.
    pub fn anonymous() -> Self {
        Registry { creds: None }
    }

    /// The registry that checks `user:password`.
    pub fn with_creds(creds: &'a str) -> Self {
        Registry { creds: Some(creds) }
    }

    /// Runs `skopeo <args>` against this registry (TLS off, its credentials).
    pub fn skopeo(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("skopeo");
        cmd.args(args).arg("--tls-verify=false");
        if let Some(c) = self.creds {
            cmd.args(["--creds", c]);
        }
        cmd.output()
            .expect("skopeo is installed by scripts/testenv")
    }

    /// The manifest digest the registry has for `reference`, or `None` when it has none.
    pub fn digest(&self, reference: &str) -> Option<String> {
        let out = self.skopeo(&["inspect", &format!("docker://{reference}")]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["Digest"].as_str().map(str::to_owned)
    }

    /// Copies `reference` into an OCI layout under `into` with skopeo and
    /// unpacks it there with umoci; the image's root filesystem.
    pub fn unpack(&self, reference: &str, into: &Path) -> PathBuf {
        std::fs::create_dir_all(into).expect("unpack directory");
        let layout = into.join("layout");
        let mut copy = Command::new("skopeo");
        copy.args(["copy", "--src-tls-verify=false"]);
        if let Some(c) = self.creds {
            copy.args(["--src-creds", c]);
        }
        run_checked(
            copy.arg(format!("docker://{reference}"))
                .arg(format!("oci:{}:image", layout.display())),
        );
        let bundle = into.join("bundle");
        run_checked(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:image", layout.display()))
                .arg(&bundle),
        );
        bundle.join("rootfs")
    }
}
