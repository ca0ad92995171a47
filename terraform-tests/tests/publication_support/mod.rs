//! Helpers the `ep_endpoint_publication` Consul tests share: a private
//! Consul double per test (ACLs on) and the configurations.
#![allow(dead_code)]

use std::collections::BTreeMap;

use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions};
use ep_terraform_tests::Workdir;

pub const TOKEN: &str = "publication-t0ken";

pub use ep_terraform_tests::HEADER;

pub fn double() -> ConsulDouble {
    ConsulDouble::start(ConsulDoubleOptions::with_token(TOKEN)).expect("start the Consul double")
}

/// The value of `key`, read as another client would.
pub fn kv(c: &ConsulDouble, key: &str) -> Option<String> {
    let a = c
        .request("GET", &format!("/v1/kv/{key}?raw"), b"")
        .expect("GET kv");
    match a.status {
        200 => Some(a.text()),
        404 => None,
        s => panic!("GET {key}: {s} {}", a.text()),
    }
}

/// Every key and value in the double.
pub fn all(c: &ConsulDouble) -> BTreeMap<String, String> {
    let state = c.state().expect("double state");
    state["Entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let k = e["Key"].as_str()?.to_owned();
            Some((k.clone(), kv(c, &k).unwrap_or_default()))
        })
        .collect()
}

pub fn put(c: &ConsulDouble, key: &str, value: &str) {
    let a = c
        .request("PUT", &format!("/v1/kv/{key}"), value.as_bytes())
        .expect("PUT kv");
    assert_eq!((a.status, a.text().as_str()), (200, "true"), "PUT {key}");
}

pub fn delete(c: &ConsulDouble, key: &str) {
    let a = c
        .request("DELETE", &format!("/v1/kv/{key}"), b"")
        .expect("DELETE kv");
    assert_eq!(a.status, 200, "DELETE {key}");
}

pub fn consul_block(c: &ConsulDouble, token: &str) -> String {
    format!(
        "  consul {{\n    address = \"{}\"\n    token   = \"{token}\"\n  }}\n",
        c.address()
    )
}

/// A publication `name` under `prefix` with `body` (values etc.), fed
/// through `terraform_data` where the body says so.
pub fn publication(c: &ConsulDouble, name: &str, prefix: &str, body: &str) -> String {
    format!(
        r#"resource "ep_endpoint_publication" "{name}" {{
  prefix = "{prefix}"
{body}
{consul}}}
"#,
        consul = consul_block(c, TOKEN)
    )
}

pub fn workdir() -> Workdir {
    let mut wd = Workdir::new(&[]);
    wd.set_env("CONSUL_HTTP_TOKEN", "");
    wd
}

pub fn apply_fails(wd: &Workdir) -> ep_terraform_tests::Output {
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "apply should fail:\n{}", out.all());
    out
}

/// An apply that fails with every one of `expected` in its diagnostics
/// (compared with Terraform's line wrapping undone); its output.
pub fn apply_fails_with(wd: &Workdir, expected: &[&str]) -> ep_terraform_tests::Output {
    let out = apply_fails(wd);
    let text = flat(&out.stderr);
    for e in expected {
        assert!(text.contains(e), "{e:?}:\n{}", out.all());
    }
    out
}

/// Terraform wraps diagnostic text: compare with single spaces.
pub fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn plan_code(wd: &Workdir) -> (i32, String) {
    let out = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    (out.code, out.all())
}
