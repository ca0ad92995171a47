//! The examples users copy, run through `terraform test` (their
//! `tests/*.tftest.hcl`) against the provider built from this tree.

use std::path::Path;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::{TestEnv, Workdir};

/// Copies an example's `.tf` files and `tests/` into a fresh working directory.
fn workdir_for(example: &str) -> Workdir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    let mut files = Vec::new();
    for sub in ["", "tests"] {
        let dir = src.join(sub);
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
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
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Workdir::new(&refs)
}

#[test]
fn quickstart_terraform_test() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(11), &package).unwrap();
    let wd = workdir_for("quickstart");
    wd.init();
    let out = wd.ok(&[
        "test",
        "-no-color",
        &format!("-var=deployment_package={}", package.display()),
        &format!("-var=aws_endpoint={}", env.moto),
    ]);
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.all());
}
