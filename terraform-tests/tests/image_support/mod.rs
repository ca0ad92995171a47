//! Helpers the `ep_image` acceptance tests share.
#![allow(dead_code)]

use ep_terraform_tests::TestEnv;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The `terraform` block every image test configuration starts with.
pub const HEADER: &str = r#"terraform {
  required_providers {
    ep = { source = "ep-platform/ep" }
  }
}
"#;

/// A repository name no other test (or earlier run) uses.
pub fn unique_repo(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "acc-{}-{}-{nanos}/{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A minimal root filesystem: Debian's static busybox and a shell link.
pub fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .expect("busybox-static is installed by scripts/testenv");
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
}

/// The `.tf` files (and `tests/`) of an example, as (name, content).
pub fn example_files(example: &str) -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    let mut files = Vec::new();
    for sub in ["", "tests"] {
        let Ok(dir) = std::fs::read_dir(src.join(sub)) else {
            continue;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tf") || name.ends_with(".tftest.hcl") {
                let rel = if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                };
                files.push((rel, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
    }
    assert!(!files.is_empty(), "example {example} has no files");
    files
}

/// Asks the emulated ECR (through boto3 in the test tools venv) whether a repository exists.
pub fn ecr_repository_exists(env: &TestEnv, name: &str) -> bool {
    let python = std::env::var("EP_TESTENV_TOOLS_PYTHON")
        .expect("EP_TESTENV_TOOLS_PYTHON (scripts/testenv env)");
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, boto3\nc = boto3.client('ecr', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\nnames = [r['repositoryName'] for r in c.describe_repositories()['repositories']]\nprint('yes' if sys.argv[2] in names else 'no')",
            &env.moto,
            name,
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}
