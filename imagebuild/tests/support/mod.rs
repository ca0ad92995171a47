//! Shared helpers for the registry tests: the local test environment
//! (`scripts/testenv`), small test images, and a fault-injecting HTTP proxy
//! that can also play a bearer-token registry front.
#![allow(dead_code)]

pub mod proxy;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ep_imagebuild::digest::Digest;
use ep_imagebuild::registry::{media_types, BlobSource, ImagePush};
use rand::{Rng as _, RngCore as _, SeedableRng as _};

/// Endpoints of the running test services.
#[derive(Clone, Debug)]
pub struct TestEnv {
    /// Plain registry (no auth, delete enabled), host:port.
    pub registry: String,
    /// Basic-auth registry, host:port.
    pub auth_registry: String,
    /// Its user (what moto's ECR `GetAuthorizationToken` returns).
    pub auth_user: String,
    /// Its password.
    pub auth_password: String,
    /// moto's URL.
    pub moto: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn require_reachable(what: &str, host_port: &str) {
    let addr: SocketAddr = match host_port.parse() {
        Ok(a) => a,
        Err(e) => panic!("{what} address {host_port:?} is not host:port ({e})"),
    };
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        panic!(
            "{what} is not reachable at {host_port}: {e}. Start the test services with \
             `scripts/testenv start` (and `eval \"$(scripts/testenv env)\"`)."
        );
    }
}

/// The test services; panics (the test fails, it does not skip) with a
/// clear message when one is not reachable. Defaults match `scripts/testenv`.
pub fn testenv() -> TestEnv {
    let env = TestEnv {
        registry: env_or("EP_TESTENV_REGISTRY", "127.0.0.1:5001"),
        auth_registry: env_or("EP_TESTENV_AUTH_REGISTRY", "127.0.0.1:5002"),
        auth_user: env_or("EP_TESTENV_AUTH_REGISTRY_USER", "AWS"),
        auth_password: env_or(
            "EP_TESTENV_AUTH_REGISTRY_PASSWORD",
            "123456789012-auth-token",
        ),
        moto: env_or("EP_TESTENV_MOTO", "http://127.0.0.1:5000"),
    };
    require_reachable(
        "the plain test registry (EP_TESTENV_REGISTRY)",
        &env.registry,
    );
    require_reachable(
        "the auth test registry (EP_TESTENV_AUTH_REGISTRY)",
        &env.auth_registry,
    );
    let moto_hp = env.moto.trim_start_matches("http://").trim_end_matches('/');
    require_reachable("moto (EP_TESTENV_MOTO)", moto_hp);
    env
}

/// A unique repository name under `prefix`.
pub fn unique_repo(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("regtest/{prefix}-{n:016x}")
}

/// A blob file of `size` bytes from a seeded RNG, with its digest.
pub fn random_blob_file(dir: &Path, name: &str, size: usize, seed: u64) -> (PathBuf, Digest) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; size];
    rng.fill_bytes(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, &data).expect("write blob file");
    (path, Digest::of(&data))
}

/// A test image: layer files, a config, a manifest.
#[derive(Clone, Debug)]
pub struct TestImage {
    /// Layers (from files) then the config (from bytes).
    pub blobs: Vec<BlobSource>,
    /// OCI manifest bytes.
    pub manifest: Vec<u8>,
    /// Digest of the manifest.
    pub manifest_digest: Digest,
}

impl TestImage {
    /// The image as an [`ImagePush`] with these tags.
    pub fn push(&self, tags: &[&str]) -> ImagePush {
        ImagePush {
            blobs: self.blobs.clone(),
            manifest_media_type: media_types::OCI_MANIFEST.to_owned(),
            manifest: self.manifest.clone(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }
}

/// A minimal valid OCI image from layer files (treated as uncompressed tar
/// layers; registries and skopeo do not look inside). `label` makes the
/// config, and so the image, distinct.
pub fn build_image(layers: &[(PathBuf, Digest, u64)], label: &str) -> TestImage {
    let diff_ids: Vec<String> = layers.iter().map(|(_, d, _)| d.to_string()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "test": label } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = serde_json::to_vec(&config).expect("config json");
    let config_blob = BlobSource::from_bytes(config.clone());
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|(_, d, size)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d.to_string(),
                "size": size,
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_blob.digest.to_string(),
            "size": config.len(),
        },
        "layers": layer_descs,
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let mut blobs: Vec<BlobSource> = layers
        .iter()
        .map(|(p, d, s)| BlobSource::from_file(d.clone(), *s, p.clone()))
        .collect();
    blobs.push(config_blob);
    TestImage {
        manifest_digest: Digest::of(&manifest),
        blobs,
        manifest,
    }
}

/// `skopeo inspect docker://<registry>/<repo>:<tag>` (TLS verification off)
/// as a subprocess; returns its JSON output.
pub fn skopeo_inspect(
    registry: &str,
    repo: &str,
    tag: &str,
    creds: Option<(&str, &str)>,
) -> serde_json::Value {
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if let Some((u, p)) = creds {
        cmd.arg(format!("--creds={u}:{p}"));
    }
    cmd.arg(format!("docker://{registry}/{repo}:{tag}"));
    let out = cmd
        .output()
        .expect("run skopeo (apt-get install skopeo; scripts/testenv install)");
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("skopeo JSON")
}
