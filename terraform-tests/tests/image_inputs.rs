//! `ep_image` plans from each image's own inputs: a change in one service leaves the others'
//! plans empty and digests as they were; inputs unknown on update apply in one go; what apply
//! would refuse (or warn about) shows at plan.

mod image_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::HEADER;
use ep_terraform_tests::{Scenario, TestEnv, Workdir};
use image_support::{busybox_rootfs, example_files, unique_repo};

/// `ep_image` digests by resource address.
fn digests(wd: &Workdir) -> BTreeMap<String, String> {
    let state = wd.state_json();
    state["values"]["root_module"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == "ep_image")
        .map(|r| {
            (
                r["address"].as_str().unwrap_or_default().to_owned(),
                r["values"]["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// `examples/images` (a Tomcat base and five services), then one cortex class changed in
/// the package in place: exactly one image plans an update, one apply builds it, the other
/// digests stay, and the next plans are empty.
#[test]
fn images_example_one_class_change_updates_only_cortex() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(31), &package).unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let main = example_files("images")
        .into_iter()
        .find(|(name, _)| name == "main.tf")
        .map(|(_, content)| content)
        .expect("examples/images/main.tf");
    let vars = format!(
        "deployment_package = \"{}\"\nbase_rootfs = \"{}\"\naws_endpoint = \"{}\"\n\
         registry_endpoint = \"http://{}\"\nrepository_prefix = \"{}\"\n",
        package.display(),
        rootfs.display(),
        env.moto,
        env.auth_registry,
        unique_repo("images").replace('/', "-"),
    );
    let before = std::rc::Rc::new(std::cell::RefCell::new(BTreeMap::new()));
    let (b1, b2) = (before.clone(), before.clone());
    let pkg = package.clone();
    Scenario::new()
        .file("terraform.tfvars", &vars)
        .step(main.clone(), move |wd| {
            *b1.borrow_mut() = digests(wd);
            assert_eq!(b1.borrow().len(), 6, "{:?}", b1.borrow());
            // The same package path, one class changed.
            synthetic::write_zip(
                &SynthOptions {
                    changed_class: Some(1),
                    ..SynthOptions::small(31)
                },
                &pkg,
            )
            .unwrap();
            let plan = wd.run(&["plan", "-detailed-exitcode", "-no-color"]);
            assert_eq!(plan.code, 2, "{}", plan.all());
            assert!(
                plan.stdout.contains("0 to add, 1 to change, 0 to destroy"),
                "{}",
                plan.all()
            );
            assert!(
                plan.stdout
                    .contains("ep_image.service[\"cortex\"] will be updated in-place"),
                "{}",
                plan.all()
            );
        })
        // The same configuration again: its one apply must succeed, then plans are empty.
        .step(main, move |wd| {
            let after = digests(wd);
            let before = b2.borrow();
            let changed: Vec<&String> = after
                .iter()
                .filter(|(address, digest)| before.get(*address) != Some(digest))
                .map(|(address, _)| address)
                .collect();
            assert_eq!(changed, ["ep_image.service[\"cortex\"]"], "{after:?}");
        })
        .run();
}

/// Every build input of an `ep_image` comes from a `terraform_data` whose input changes
/// between applies: unknown at plan on create and on update, one apply each time.
#[test]
fn inputs_unknown_on_create_and_update_apply_in_one_go() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = (tmp.path().join("v1.zip"), tmp.path().join("v2.zip"));
    synthetic::write_zip(&SynthOptions::small(32), &v1).unwrap();
    synthetic::write_zip(
        &SynthOptions {
            changed_class: Some(1),
            ..SynthOptions::small(32)
        },
        &v2,
    )
    .unwrap();
    let repo = unique_repo("unknown");
    let config = |package: &Path, service: &str, tag: &str, mem: &str| {
        format!(
            r#"{HEADER}{}
resource "terraform_data" "inputs" {{
  input = {{
    package = "{}"
    service = "{service}"
    tag     = "{tag}"
    mem     = "{mem}"
  }}
}}
resource "ep_image" "img" {{
  repository         = "{repo}"
  create_repository  = true
  deployment_package = terraform_data.inputs.output.package
  service            = terraform_data.inputs.output.service
  tags               = [terraform_data.inputs.output.tag]
  env = {{
    EP_CONTAINER_MEM = terraform_data.inputs.output.mem
  }}
}}
output "digest" {{ value = ep_image.img.digest }}
"#,
            env.moto_provider_block(),
            package.display()
        )
    };
    let first = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
    let (f1, f2) = (first.clone(), first.clone());
    Scenario::new()
        .step(config(&v1, "cortex", "one", "3072"), move |wd| {
            *f1.borrow_mut() = wd.outputs()["digest"].as_str().unwrap().to_owned();
        })
        .step(config(&v2, "cortex", "two", "4096"), move |wd| {
            let digest = wd.outputs()["digest"].as_str().unwrap().to_owned();
            assert_ne!(*f2.borrow(), digest, "new inputs, new image");
            let tags = &wd.resource_values("ep_image.img")["tags"];
            assert_eq!(tags, &serde_json::json!(["two"]));
        })
        // A change to the service alone, still through unknown values.
        .step(config(&v2, "cm", "two", "4096"), |_| {})
        .run();
}

/// A zip entry: name, content (a symlink's target), whether it is a symlink.
type ZipEntry<'a> = (&'a str, &'a [u8], bool);

/// A zip in memory.
fn zip_bytes(entries: &[ZipEntry<'_>]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content, symlink) in entries {
        if *symlink {
            let target = std::str::from_utf8(content).unwrap();
            w.add_symlink(*name, target, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(content).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A package holding only a cortex WAR with `war` entries.
fn cortex_only_package(path: &Path, war: &[ZipEntry<'_>]) {
    let war = zip_bytes(war);
    let pkg = zip_bytes(&[("webapps/ext-cortex-webapp-1.0.war", &war, false)]);
    std::fs::write(path, pkg).unwrap();
}

fn cortex_config(env: &TestEnv, package: &Path) -> String {
    format!(
        r#"{HEADER}{}
resource "ep_image" "cortex" {{
  repository         = "{}"
  create_repository  = true
  deployment_package = "{}"
  service            = "cortex"
}}
"#,
        env.moto_provider_block(),
        unique_repo("cortex"),
        package.display()
    )
}

/// Production packages often leave Cortex Studio out: plan says so, apply builds cortex.
#[test]
fn cortex_without_studio_plans_a_warning_and_builds() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("no-studio.zip");
    cortex_only_package(&package, &[("WEB-INF/web.xml", b"<web-app/>\n", false)]);
    let wd = Workdir::new(&[("main.tf", &cortex_config(env, &package))]);
    wd.init();
    let plan = wd.ok(&["plan", "-no-color"]);
    assert!(plan.all().contains("Warning:"), "{}", plan.all());
    assert!(
        plan.all().contains("no studio application"),
        "{}",
        plan.all()
    );
    wd.apply();
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// A WAR entry that escapes with `../`, or is a symlink, fails the plan on
/// `deployment_package` instead of the apply.
#[test]
fn unsafe_war_entries_fail_at_plan_on_deployment_package() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[ZipEntry<'_>], &str); 2] = [
        (
            "dotdot.zip",
            &[
                ("WEB-INF/web.xml", b"<web-app/>\n", false),
                (
                    "WEB-INF/classes/../../../../etc/cron.d/x",
                    b"* * * * *\n",
                    false,
                ),
            ],
            "unsafe entry path",
        ),
        (
            "symlink.zip",
            &[
                ("WEB-INF/web.xml", b"<web-app/>\n", false),
                ("WEB-INF/lib/evil.jar", b"/etc/passwd", true),
            ],
            "symbolic link entry",
        ),
    ];
    for (file, war, message) in cases {
        let package = tmp.path().join(file);
        cortex_only_package(&package, war);
        let wd = Workdir::new(&[("main.tf", &cortex_config(env, &package))]);
        wd.init();
        let out = wd.run(&["plan", "-no-color"]);
        assert_ne!(out.code, 0, "{file}: {}", out.all());
        let text = out.all();
        assert!(text.contains(message), "{file}: {text}");
        assert!(
            text.contains(&format!("deployment_package = \"{}\"", package.display())),
            "{file}: the error is not on deployment_package:\n{text}"
        );
    }
}
