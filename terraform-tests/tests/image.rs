//! `ep_image` through real Terraform: ECR auth against moto with the local
//! auth registry behind it, read back with skopeo and umoci.

mod image_support;

use std::path::Path;
use std::process::Command;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::oci::Registry;
use ep_terraform_tests::HEADER;
use ep_terraform_tests::{Scenario, TestEnv, Workdir};
use image_support::{ecr_repository_exists, unique_repo};

fn image_config(env: &TestEnv, repo: &str, package: &Path, tags: &str) -> String {
    format!(
        r#"{HEADER}{}
resource "ep_image" "cortex" {{
  repository         = "{repo}"
  create_repository  = true
  tags               = {tags}
  deployment_package = "{}"
  service            = "cortex"
  env = {{
    EP_COMMERCE_ENVNAME = "author"
  }}
}}
output "digest" {{ value = ep_image.cortex.digest }}
output "layers" {{ value = ep_image.cortex.layers }}
"#,
        env.moto_provider_block(),
        package.display()
    )
}

/// The htpasswd registry the images go to, as skopeo reaches it.
fn registry(env: &TestEnv) -> Registry<'_> {
    Registry::with_creds(&env.auth_registry_creds)
}

fn layer_digests(wd: &Workdir) -> Vec<String> {
    wd.outputs()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn image_lifecycle_one_class_change_and_import() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let v1 = tmp.path().join("package-v1.zip");
    let v2 = tmp.path().join("package-v2.zip");
    synthetic::write_zip(&SynthOptions::small(21), &v1).unwrap();
    synthetic::write_zip(
        &SynthOptions {
            changed_class: Some(1),
            ..SynthOptions::small(21)
        },
        &v2,
    )
    .unwrap();
    let repo = unique_repo("cortex");
    let local = format!("{}/{repo}", env.auth_registry);
    let unpack = tmp.path().join("unpacked");

    let first_layers = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let stored_before = std::rc::Rc::new(std::cell::RefCell::new(Default::default()));
    let (fl, sb) = (first_layers.clone(), stored_before.clone());
    let (fl2, sb2) = (first_layers.clone(), stored_before.clone());
    let (repo1, repo2, repo3) = (repo.clone(), repo.clone(), repo.clone());
    let (local1, local3) = (local.clone(), local.clone());
    Scenario::new()
        .step(
            image_config(env, &repo, &v1, r#"["v1", "author"]"#),
            move |wd| {
                let digest = wd.outputs()["digest"].as_str().unwrap().to_owned();
                // The registry holds what the state says, under both tags.
                assert_eq!(
                    registry(env).digest(&format!("{local1}:v1")),
                    Some(digest.clone())
                );
                assert_eq!(
                    registry(env).digest(&format!("{local1}:author")),
                    Some(digest)
                );
                // umoci unpacks what skopeo copies out, with the files in the image layout.
                let rootfs = registry(env).unpack(&format!("{local1}:v1"), &unpack);
                for p in [
                    "usr/local/tomcat/webapps/cortex/WEB-INF/web.xml",
                    "usr/local/tomcat/webapps/studio/WEB-INF/web.xml",
                    "ep/environments/author/database.properties",
                    "ep/environments/live/database.properties",
                ] {
                    assert!(rootfs.join(p).is_file(), "{p} missing from the image");
                }
                *fl.borrow_mut() = layer_digests(wd);
                *sb.borrow_mut() = env.auth_registry_layers(&repo1);
            },
        )
        .step(
            image_config(env, &repo, &v2, r#"["v1", "author"]"#),
            move |wd| {
                let before = fl2.borrow().clone();
                let after = layer_digests(wd);
                let changed: Vec<_> = after.iter().filter(|d| !before.contains(d)).collect();
                assert_eq!(
                    changed.len(),
                    1,
                    "one class changed, so one layer: {changed:?}"
                );
                // What the registry stored anew: that layer and the new config, nothing else.
                let stored = env.auth_registry_layers(&repo2);
                let new: Vec<_> = stored.difference(&sb2.borrow()).cloned().collect();
                assert_eq!(new.len(), 2, "uploaded {new:?}");
                assert!(new.contains(changed[0]));
            },
        )
        .import("ep_image.cortex", |wd| {
            let v = wd.resource_values("ep_image.cortex");
            v["image_uri"].as_str().unwrap().to_owned()
        })
        // The package fingerprint is not in the image (it would tie every image's digest to
        // the whole package), so import cannot know it.
        .ignore_on_import(&[
            "deployment_package",
            "service",
            "env",
            "create_repository",
            "package_fingerprint",
        ])
        .destroyed(move || {
            assert_eq!(
                registry(env).digest(&format!("{local3}:v1")),
                None,
                "image left after destroy"
            );
            assert!(
                !ecr_repository_exists(env, &repo3),
                "the ECR repository this resource created is left after destroy"
            );
        })
        .run();
}

/// A cortex image applied from a synthetic package of `seed` with the one
/// tag `tag`: its temporary directory, working directory, `registry/repo`
/// and digest.
fn applied_cortex(
    env: &TestEnv,
    seed: u64,
    tag: &str,
) -> (tempfile::TempDir, Workdir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(seed), &pkg).unwrap();
    let repo = unique_repo("cortex");
    let tags = format!("[\"{tag}\"]");
    let wd = Workdir::new(&[("main.tf", &image_config(env, &repo, &pkg, &tags))]);
    wd.init();
    wd.apply();
    let digest = wd.outputs()["digest"].as_str().unwrap().to_owned();
    (tmp, wd, format!("{}/{repo}", env.auth_registry), digest)
}

#[test]
fn deleted_image_is_detected_and_rebuilt() {
    let env = TestEnv::get();
    let (_tmp, wd, reference, digest) = applied_cortex(env, 22, "drift");
    let del = registry(env).skopeo(&["delete", &format!("docker://{reference}@{digest}")]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    let plan = wd.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(
        plan.code,
        2,
        "the deleted image was not noticed:\n{}",
        plan.all()
    );
    assert!(plan.stdout.contains("will be created"), "{}", plan.all());
    wd.apply();
    // A reproducible build: the repaired image has the same digest.
    assert_eq!(
        registry(env).digest(&format!("{reference}:drift")),
        Some(digest)
    );
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// The image's only tag moved to another manifest behind Terraform's back:
/// the refresh drops it, finds the image itself by digest (so nothing is
/// rebuilt), and the apply points the tag back.
#[test]
fn moved_tag_is_detected_and_pointed_back() {
    let env = TestEnv::get();
    let (_tmp, wd, reference, digest) = applied_cortex(env, 24, "moved");
    // The same image as a Docker v2 manifest: another digest under the tag.
    let copy = Command::new("skopeo")
        .args([
            "copy",
            "--format",
            "v2s2",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args([
            "--src-creds",
            &env.auth_registry_creds,
            "--dest-creds",
            &env.auth_registry_creds,
        ])
        .arg(format!("docker://{reference}@{digest}"))
        .arg(format!("docker://{reference}:moved"))
        .output()
        .expect("skopeo");
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert_ne!(
        registry(env).digest(&format!("{reference}:moved")),
        Some(digest.clone())
    );
    let plan = wd.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(
        plan.code,
        2,
        "the moved tag was not noticed:\n{}",
        plan.all()
    );
    assert!(
        plan.stdout.contains("will be updated in-place"),
        "{}",
        plan.all()
    );
    assert!(!plan.stdout.contains("will be created"), "{}", plan.all());
    wd.apply();
    assert_eq!(
        registry(env).digest(&format!("{reference}:moved")),
        Some(digest)
    );
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn tags_unknown_at_plan_time_plan_cleanly() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(23), &pkg).unwrap();
    let repo = unique_repo("cm");
    let config = format!(
        r#"{HEADER}{}
resource "terraform_data" "build" {{
  input = "build-42"
}}
resource "ep_image" "cm" {{
  repository         = "{repo}"
  create_repository  = true
  tags               = [terraform_data.build.output]
  deployment_package = "{}"
  service            = "cm"
}}
"#,
        env.moto_provider_block(),
        pkg.display()
    );
    let wd = Workdir::new(&[("main.tf", &config)]);
    wd.init();
    let plan = wd.ok(&["plan", "-no-color"]);
    assert!(plan.stdout.contains("2 to add"), "{}", plan.all());
    wd.apply();
    wd.assert_plan_empty(false);
    wd.assert_plan_empty(true);
    assert!(registry(env)
        .digest(&format!("{}/{repo}:build-42", env.auth_registry))
        .is_some());
    wd.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn bad_image_configuration_is_reported_at_validate_and_plan() {
    let env = TestEnv::get();
    let config = format!(
        r#"{HEADER}{}
resource "ep_image" "bad" {{
  repository         = "Not A Repo"
  tags               = ["ok", "bad tag!"]
  deployment_package = "/nonexistent/package.zip"
  service            = "frontend"
  platforms          = ["windows/amd64"]
  base               = "not a reference!"
}}
"#,
        env.moto_provider_block()
    );
    let wd = Workdir::new(&[("main.tf", &config)]);
    wd.init();
    let out = wd.run(&["validate", "-no-color"]);
    assert_ne!(out.code, 0);
    let text = out.all();
    for expected in [
        "Invalid repository",
        "Invalid tag",
        "Unknown service",
        "Unsupported platform",
        "Invalid base image reference",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }

    // A missing package is known at plan time, on its attribute.
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.zip");
    let wd = Workdir::new(&[(
        "main.tf",
        &image_config(env, &unique_repo("x"), &missing, "[]"),
    )]);
    wd.init();
    let out = wd.run(&["plan", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(
        out.all().contains("Cannot read the deployment package"),
        "{}",
        out.all()
    );
    assert!(
        out.all()
            .contains(&format!("deployment_package = \"{}\"", missing.display())),
        "{}",
        out.all()
    );
}

#[test]
fn import_block_adopts_an_existing_image_without_rebuilding() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(24), &pkg).unwrap();
    let repo = unique_repo("batch");
    let config = image_config(env, &repo, &pkg, r#"["adopted"]"#).replace(
        "service            = \"cortex\"",
        "service            = \"batch\"",
    );
    // Build it once, then forget it: the image stays in the registry.
    let first = Workdir::new(&[("main.tf", &config)]);
    first.init();
    first.apply();
    let uri = first.resource_values("ep_image.cortex")["image_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    first.ok(&["state", "rm", "ep_image.cortex"]);

    let adopt = Workdir::new(&[(
        "main.tf",
        &format!("{config}\nimport {{\n  to = ep_image.cortex\n  id = \"{uri}\"\n}}\n"),
    )]);
    adopt.init();
    let plan = adopt.ok(&["plan", "-no-color"]);
    assert!(plan.stdout.contains("1 to import"), "{}", plan.all());
    // The fingerprint read back from the image matches: no rebuild is planned.
    assert!(!plan.stdout.contains("known after apply"), "{}", plan.all());
    adopt.apply();
    adopt.assert_plan_empty(true);
    assert_eq!(
        adopt.resource_values("ep_image.cortex")["image_uri"],
        uri.as_str()
    );
    adopt.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn any_oci_registry_by_host_without_ecr() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(25), &pkg).unwrap();
    // No AWS at all: the repository names its registry host.
    let repo = format!("{}/{}", env.registry, unique_repo("search"));
    let config = format!(
        r#"{HEADER}
provider "ep" {{}}
resource "ep_image" "search" {{
  repository         = "{repo}"
  tags               = ["plain"]
  deployment_package = "{}"
  service            = "search"
  platforms          = ["linux/amd64", "linux/arm64"]
}}
"#,
        pkg.display()
    );
    let mut wd = Workdir::new(&[("main.tf", &config)]);
    wd.set_env("AWS_REGION", "");
    wd.init();
    wd.apply();
    wd.assert_plan_empty(false);
    wd.assert_plan_empty(true);
    let raw =
        || Registry::anonymous().skopeo(&["inspect", "--raw", &format!("docker://{repo}:plain")]);
    let out = raw();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "two platforms make an image index: {index:#}"
    );
    wd.ok(&["destroy", "-auto-approve", "-no-color"]);
    let gone = raw();
    assert!(!gone.status.success(), "image left after destroy");
}
