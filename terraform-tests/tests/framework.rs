//! The resource framework through real Terraform, on the test-only
//! `ep_test_fixture` resource: waits, updates, import, `timeouts` checked
//! at validate and enforced at apply, and Ctrl-C during a long create.

use std::path::Path;
use std::time::{Duration, Instant};

use ep_terraform_tests::{Scenario, Workdir};

const FIXTURES: (&str, &str) = ("EP_PROVIDER_TEST_FIXTURES", "1");

use ep_terraform_tests::HEADER;

fn fixture(store: &Path, settle: &str, extra: &str) -> String {
    format!(
        r#"{HEADER}
resource "ep_test_fixture" "f" {{
  store  = "{}"
  name   = "object"
  settle = "{settle}"
{extra}
}}
"#,
        store.display()
    )
}

fn workdir() -> Workdir {
    let mut wd = Workdir::new(&[]);
    wd.set_env(FIXTURES.0, FIXTURES.1);
    wd
}

fn store() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ep-fixture-")
        .tempdir()
        .unwrap_or_else(|e| panic!("temp dir: {e}"))
}

fn resource_instance(wd: &Workdir) -> serde_json::Value {
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wd.file("terraform.tfstate"))
            .unwrap_or_else(|e| panic!("read state: {e}")),
    )
    .unwrap_or_else(|e| panic!("state is not JSON: {e}"));
    state["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "ep_test_fixture"))
        .map(|r| r["instances"][0].clone())
        .unwrap_or_else(|| panic!("no ep_test_fixture in state:\n{state:#}"))
}

/// The next apply, with a quick `settle`, replaces the tainted object; then
/// plans are empty and destroy works.
fn replace_the_tainted_object_and_destroy(wd: &Workdir, store: &Path) {
    wd.write("main.tf", &fixture(store, "1s", ""));
    let out = wd.apply();
    assert!(
        out.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        out.all()
    );
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

#[test]
fn waits_updates_imports_and_destroys() {
    let store = store();
    let object = store.path().join("object");
    let seen = object.clone();
    let gone = object.clone();
    Scenario::new()
        .env(FIXTURES.0, FIXTURES.1)
        .step(fixture(store.path(), "1s", ""), move |wd| {
            let v = wd.resource_values("ep_test_fixture.f");
            assert_eq!(v["status"], "available", "{v:#}");
            assert_eq!(v["id"], seen.display().to_string());
        })
        .step(fixture(store.path(), "2s", ""), |wd| {
            let v = wd.resource_values("ep_test_fixture.f");
            assert_eq!(v["status"], "available", "{v:#}");
            assert_eq!(v["settle"], "2s");
        })
        .import("ep_test_fixture.f", move |_| object.display().to_string())
        .ignore_on_import(&["settle"])
        .destroyed(move || assert!(!gone.exists(), "destroy left {}", gone.display()))
        .run();
}

#[test]
fn timeouts_are_checked_at_validate_with_their_path() {
    let store = store();
    let wd = workdir();
    wd.write(
        "main.tf",
        &fixture(
            store.path(),
            "1s",
            "  timeouts {\n    create = \"1h30m\"\n  }",
        ),
    );
    wd.init();
    wd.ok(&["validate", "-no-color"]);
    for (bad, why) in [
        ("banana", "has unknown unit"),
        ("90", "a number without a unit"),
        ("99999999999999999999h", "longer than the maximum"),
        ("0s", "is zero"),
    ] {
        let line = format!("    create = \"{bad}\"");
        wd.write(
            "main.tf",
            &fixture(store.path(), "1s", &format!("  timeouts {{\n{line}\n  }}")),
        );
        let out = wd.run(&["validate", "-no-color"]);
        assert_ne!(out.code, 0, "{bad:?} passed validate:\n{}", out.all());
        assert!(out.stderr.contains("Invalid timeout"), "{}", out.all());
        assert!(out.stderr.contains(why), "{bad:?}: {}", out.all());
        // Terraform quotes the offending line when the diagnostic carries its path.
        assert!(
            out.stderr.contains(line.trim()),
            "no attribute path: {}",
            out.all()
        );
    }
}

#[test]
fn a_create_that_times_out_is_recorded_tainted_and_replaced_next_time() {
    let store = store();
    let wd = workdir();
    wd.write(
        "main.tf",
        &fixture(store.path(), "1h", "  timeouts {\n    create = \"2s\"\n  }"),
    );
    wd.init();
    let started = Instant::now();
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("Timed out after 2s"), "{}", out.all());
    assert!(out.stderr.contains("timeouts.create"), "{}", out.all());
    assert!(started.elapsed() < Duration::from_secs(30));
    let recorded = resource_instance(&wd);
    assert_eq!(recorded["status"], "tainted", "{recorded:#}");
    assert_eq!(recorded["attributes"]["status"], "creating", "{recorded:#}");

    replace_the_tainted_object_and_destroy(&wd, store.path());
}

/// Ctrl-C: Terraform forwards SIGINT as `StopProvider`; the wait must end
/// within seconds and the object created so far must be in state.
#[test]
fn ctrl_c_during_a_long_create_stops_promptly_and_keeps_what_was_created() {
    let store = store();
    let object = store.path().join("object");
    let wd = workdir();
    wd.write("main.tf", &fixture(store.path(), "1h", ""));
    wd.init();
    // Let the create settle into its wait before the interrupt.
    let out = wd.apply_stopped_by_ctrl_c(
        || object.exists(),
        Duration::from_secs(60),
        Duration::from_millis(500),
    );
    assert!(out.stderr.contains("Interrupted"), "{}", out.all());

    let recorded = resource_instance(&wd);
    assert_eq!(recorded["status"], "tainted", "{recorded:#}");
    assert_eq!(recorded["attributes"]["id"], object.display().to_string());

    // The next apply finds it and replaces it.
    replace_the_tainted_object_and_destroy(&wd, store.path());
    assert!(!object.exists());
}

/// A write-only attribute (Terraform 1.11+): its value reaches create (the
/// object records its SHA-256) but never the plan or the state, plans stay
/// empty, and a value from another resource works the same.
#[test]
fn write_only_values_reach_create_and_never_the_state() {
    let store = store();
    let wd = workdir();
    let secret = "wo-s3cret-value-17";
    wd.write(
        "main.tf",
        &fixture(
            store.path(),
            "1ms",
            &format!("  secret_wo = terraform_data.secret.output\n}}\nresource \"terraform_data\" \"secret\" {{\n  input = \"{secret}\""),
        ),
    );
    wd.init();
    let out = wd.apply();
    assert!(
        out.stdout.contains("secret_wo = (write-only attribute)"),
        "{}",
        out.all()
    );
    let stored = std::fs::read_to_string(store.path().join("object")).expect("object file");
    let want = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(secret.as_bytes()))
    };
    assert!(stored.contains(&want), "create got the secret: {stored}");
    let state = std::fs::read_to_string(wd.file("terraform.tfstate")).expect("state");
    let ours = resource_instance(&wd);
    assert!(ours["attributes"]["secret_wo"].is_null(), "{ours:#}");
    // terraform_data keeps its own input; the fixture's state holds no copy.
    assert_eq!(
        state.matches(secret).count(),
        2,
        "only terraform_data's input and output:\n{state}"
    );
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}
