//! The `ep-imagebuild` command line.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ep-imagebuild"))
}

#[test]
fn synth_then_inspect_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p.zip");
    let status = bin()
        .args(["synth-package", "--small", "--seed", "4", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let output = bin()
        .arg("inspect")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["version"], "8.5.0");
    assert_eq!(v["applications"].as_array().unwrap().len(), 6);
    assert_eq!(v["applications"][0]["name"], "cortex");
    assert_eq!(v["applications"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        v["environments"],
        serde_json::json!(["author", "default", "live"])
    );
    assert_eq!(v["ops_spec"]["tomcat"], "9.0.89");
    assert_eq!(v["fingerprint"].as_str().unwrap().len(), 64);

    let dir = tmp.path().join("d");
    let status = bin()
        .args(["synth-package", "--small", "--seed", "4", "--dir", "--out"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let text = bin()
        .arg("inspect")
        .arg(&dir)
        .arg("--no-digests")
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains(v["fingerprint"].as_str().unwrap()), "{text}");
}

#[test]
fn errors_exit_non_zero_with_a_message() {
    let output = bin()
        .args(["inspect", "/definitely/not/here.zip"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("not found"), "{err}");

    let output = bin()
        .args(["synth-package", "--out", "/tmp/x.zip", "--size", "12XB"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let help = bin().args(["synth-package", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
}
