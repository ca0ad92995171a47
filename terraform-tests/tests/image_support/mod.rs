//! Helpers the `ep_image` acceptance tests share.
#![allow(dead_code)]

use ep_terraform_tests::TestEnv;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

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
    let src = ep_terraform_tests::repo_root()
        .join("examples")
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

/// Asks the emulated ECR whether a repository exists: one JSON call with
/// curl (tens of milliseconds, where starting boto3 takes about a second,
/// which the interrupt test cannot afford).
pub fn ecr_repository_exists(env: &TestEnv, name: &str) -> bool {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            "-H",
            "Content-Type: application/x-amz-json-1.1",
            // moto takes the region from the credential scope; the signature is not checked.
            "-H",
            "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0",
            "-d",
            "{}",
            &format!("{}/", env.moto),
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "DescribeRepositories: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("DescribeRepositories JSON");
    listed["repositories"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["repositoryName"] == name))
}
