//! Ctrl-C during an `ep_image` build: Terraform stops within seconds, and
//! the next apply builds the image (adopting the repository the interrupted
//! one created).

mod image_support;

use std::time::Duration;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::HEADER;
use ep_terraform_tests::{TestEnv, Workdir};
use image_support::{ecr_repository_exists, unique_repo};

#[test]
fn ctrl_c_during_a_build_stops_promptly_and_the_next_apply_builds() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().expect("tempdir");
    let package = tmp.path().join("package.zip");
    // Big enough that building and pushing cortex takes seconds, and new
    // content every run: a package built before would come from the
    // builder's cache and the registry in about a second.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(31);
    let opts = SynthOptions {
        seed,
        target_size: 120 << 20,
        ..SynthOptions::default()
    };
    synthetic::write_zip(&opts, &package).expect("package");
    let repo = unique_repo("cortex");
    let cfg = format!(
        r#"{HEADER}{}
resource "ep_image" "cortex" {{
  repository         = "{repo}"
  create_repository  = true
  deployment_package = "{}"
  service            = "cortex"
}}
"#,
        env.moto_provider_block(),
        package.display()
    );
    let wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.init();
    // The repository is created just before the build starts.
    let out = wd.apply_stopped_by_ctrl_c(
        || ecr_repository_exists(env, &repo),
        Duration::from_secs(120),
        Duration::from_millis(100),
    );
    assert!(out.all().contains("Interrupted"), "{}", out.all());
    wd.apply();
    wd.assert_plan_empty(true);
    let digest = wd.resource_values("ep_image.cortex")["digest"].clone();
    assert!(
        digest.as_str().is_some_and(|d| d.starts_with("sha256:")),
        "{digest}"
    );
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}
