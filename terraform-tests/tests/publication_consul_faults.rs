//! `ep_endpoint_publication` on Consul when things go wrong: a concurrent
//! writer, a refused token, a server that is down or stops mid-apply, 413,
//! and TLS verification — each against its own Consul test double.

mod publication_support;

use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions, Fault};
use publication_support::*;

/// Another writer changes a key between the provider's read and its
/// transaction: the `cas` fails, the other writer's value stays, the error
/// names the key; the next apply shows it as drift and restores it.
#[test]
fn a_concurrent_writer_is_detected_not_overwritten() {
    let c = double();
    let wd = workdir();
    let cfg = |v: &str| {
        format!(
            "{HEADER}{}",
            publication(
                &c,
                "p",
                "ep/cas/",
                &format!("  values = {{ host = \"{v}\" }}\n")
            )
        )
    };
    wd.write("main.tf", &cfg("one"));
    wd.init();
    wd.apply();
    c.race("ep/cas/host", "concurrent", "PUT /v1/txn")
        .expect("race");
    wd.write("main.tf", &cfg("two"));
    apply_fails_with(
        &wd,
        &["changed by another writer", "ep/cas/host", "index is stale"],
    );
    assert_eq!(kv(&c, "ep/cas/host").as_deref(), Some("concurrent"));
    let (code, plan) = plan_code(&wd);
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("\"concurrent\" -> \"two\""), "{plan}");
    wd.apply();
    assert_eq!(kv(&c, "ep/cas/host").as_deref(), Some("two"));
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

/// A wrong token and no token are refused with Consul's 403, clearly, and
/// the token is never shown.
#[test]
fn token_refusal_is_a_clear_error() {
    let c = double();
    let wd = workdir();
    let cfg = format!(
        "{HEADER}resource \"ep_endpoint_publication\" \"p\" {{\n  prefix = \"ep/t/\"\n  values = {{ a = \"1\" }}\n{}}}\n",
        consul_block(&c, "wrong-token")
    );
    wd.write("main.tf", &cfg);
    wd.init();
    let out = apply_fails(&wd);
    let text = flat(&out.stderr);
    assert!(
        text.contains("permission denied by Consul"),
        "{}",
        out.all()
    );
    assert!(text.contains("ACL not found"), "{}", out.all());
    assert!(
        !out.all().contains("wrong-token"),
        "the token is shown:\n{}",
        out.all()
    );
    assert!(all(&c).is_empty());
    let anonymous = format!(
        "{HEADER}resource \"ep_endpoint_publication\" \"p\" {{\n  prefix = \"ep/t/\"\n  values = {{ a = \"1\" }}\n  consul {{\n    address = \"{}\"\n  }}\n}}\n",
        c.address()
    );
    wd.write("main.tf", &anonymous);
    apply_fails_with(&wd, &["Permission denied: token with AccessorID"]);
    assert!(all(&c).is_empty());
}

/// No server: a clear error naming the address. A server that stops
/// mid-apply (after the first of two transactions): the error says so and
/// the state records the keys of the committed transaction; restarted, the
/// next apply writes the rest.
#[test]
fn server_down_and_stopping_mid_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_file = dir.path().join("consul.json");
    let opts = ConsulDoubleOptions {
        token: Some(TOKEN.to_owned()),
        state_file: Some(state_file.clone()),
        ..Default::default()
    };
    let c = ConsulDouble::start(opts.clone()).expect("start");
    let port = c.port();
    let values: Vec<String> = (0..100).map(|i| format!("k{i:03} = \"v{i}\"")).collect();
    let cfg = format!(
        "{HEADER}{}",
        publication(
            &c,
            "p",
            "ep/many/",
            &format!("  values = {{\n    {}\n  }}\n", values.join("\n    "))
        )
    );
    let wd = workdir();
    wd.write("main.tf", &cfg);
    wd.init();
    c.fault(&Fault::down().after(1).matching("PUT /v1/txn"))
        .expect("fault");
    let out = apply_fails_with(&wd, &["cannot reach Consul"]);
    // Warnings go to stdout, errors to stderr.
    assert!(out.all().contains("Published in part"), "{}", out.all());
    assert!(
        out.all().contains("64 key(s) were written"),
        "{}",
        out.all()
    );
    drop(c);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wd.file("terraform.tfstate")).expect("state"),
    )
    .expect("state json");
    let keys = &state["resources"][0]["instances"][0]["attributes"]["keys"];
    assert_eq!(keys.as_array().map(Vec::len), Some(64), "{keys:#}");
    assert_eq!(keys[0], "ep/many/k000");
    assert_eq!(keys[63], "ep/many/k063");

    // Down: refresh fails clearly.
    let (code, plan) = plan_code(&wd);
    assert_eq!(code, 1, "{plan}");
    assert!(
        plan.contains("cannot reach Consul at http://127.0.0.1:"),
        "{plan}"
    );

    // Restarted on its state: the rest is written, the plan is empty.
    let c = ConsulDouble::start(ConsulDoubleOptions {
        port: Some(port),
        ..opts
    })
    .expect("restart");
    assert_eq!(all(&c).len(), 64, "the double kept the first transaction");
    let out = wd.apply();
    assert!(
        out.stdout.contains("1 added, 0 changed, 1 destroyed")
            || out.stdout.contains("0 added, 1 changed"),
        "{}",
        out.all()
    );
    assert_eq!(all(&c).len(), 100);
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(all(&c).is_empty());
}

/// A server with a lower request limit answers 413: reported on the key.
#[test]
fn a_413_from_consul_names_the_key() {
    let c = ConsulDouble::start(ConsulDoubleOptions {
        token: Some(TOKEN.to_owned()),
        max_body_bytes: Some(8192),
        ..Default::default()
    })
    .expect("start");
    let wd = workdir();
    wd.write("big.txt", &"z".repeat(10_000));
    wd.write(
        "main.tf",
        &format!(
            "{HEADER}{}",
            publication(&c, "p", "ep/", "  values = { big = file(\"big.txt\") }\n")
        ),
    );
    wd.init();
    // The diagnostic points at the value's attribute.
    apply_fails_with(
        &wd,
        &[
            "the value of \"ep/big\" is too large",
            "max size: 8192 bytes",
            "values = {",
        ],
    );
}

/// HTTPS: the server's certificate is verified (a CA the system does not
/// know is refused) and trusted through `ca_file`; `datacenter` is sent as
/// `?dc=` (an unknown one is Consul's "No path to datacenter").
#[test]
fn tls_is_verified_ca_file_trusted_and_datacenter_sent() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = ep_terraform_tests::tls::certificates(certs.path());
    let c = ConsulDouble::start(ConsulDoubleOptions {
        token: Some(TOKEN.to_owned()),
        tls: Some((cert, key)),
        ..Default::default()
    })
    .expect("start the HTTPS double");
    assert!(c.address().starts_with("https://127.0.0.1:"));
    let consul = |extra: &str| {
        format!(
            "  consul {{\n    address = \"{}\"\n    token   = \"{TOKEN}\"\n{extra}  }}\n",
            c.address()
        )
    };
    let cfg = |extra: &str, data_dc: &str| {
        format!(
            r#"{HEADER}
resource "ep_endpoint_publication" "p" {{
  prefix = "ep/tls/"
  values = {{ host = "db.internal" }}
{}}}
data "ep_config_store" "read" {{
  prefix = "ep/tls/"
{}  depends_on = [ep_endpoint_publication.p]
}}
output "host" {{
  value = data.ep_config_store.read.values["host"]
}}
"#,
            consul(extra),
            consul(&format!(
                "    ca_file    = \"{}\"\n    datacenter = \"{data_dc}\"\n",
                ca.display()
            ))
        )
    };
    let wd = workdir();
    wd.write("main.tf", &cfg("", "dc1"));
    wd.init();
    let out = apply_fails(&wd);
    let text = flat(&out.stderr);
    assert!(
        text.contains("cannot reach Consul at https://127.0.0.1:"),
        "{}",
        out.all()
    );
    assert!(text.to_lowercase().contains("certificate"), "{}", out.all());

    let trusted = format!(
        "    ca_file    = \"{}\"\n    datacenter = \"dc1\"\n",
        ca.display()
    );
    wd.write("main.tf", &cfg(&trusted, "dc1"));
    wd.apply();
    assert_eq!(wd.outputs()["host"], "db.internal");
    wd.assert_plan_empty(true);

    wd.write("main.tf", &cfg(&trusted, "elsewhere"));
    let out = wd.run(&["plan", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        flat(&out.stderr).contains("No path to datacenter"),
        "{}",
        out.all()
    );

    wd.write("main.tf", &cfg(&trusted, "dc1"));
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    let state = wd.state_json();
    assert!(state["values"]["root_module"]["resources"]
        .as_array()
        .is_none_or(|r| r.iter().all(|r| r["mode"] == "data")));
}

/// Ctrl-C while the second of two transactions is in flight: the state
/// records the 64 keys confirmed, the unconfirmed ones are remembered as
/// pending, and though Consul commits them after the client gave up, the
/// next apply (a replacement of the tainted object) removes and rewrites
/// them instead of refusing them as someone else's.
#[test]
fn ctrl_c_mid_apply_and_an_answer_that_never_came() {
    let c = double();
    let values: Vec<String> = (0..100).map(|i| format!("k{i:03} = \"v{i}\"")).collect();
    let cfg = format!(
        "{HEADER}{}",
        publication(
            &c,
            "p",
            "ep/int/",
            &format!("  values = {{\n    {}\n  }}\n", values.join("\n    "))
        )
    );
    let wd = workdir();
    wd.write("main.tf", &cfg);
    wd.init();
    c.delay(2000).expect("delay");
    let (out, took) = wd.apply_interrupted(
        // The double's state (an admin request, never delayed), not KV reads.
        || entries(&c) >= 64,
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(500),
    );
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        took < std::time::Duration::from_secs(6),
        "took {took:?}:\n{}",
        out.all()
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wd.file("terraform.tfstate")).expect("state"),
    )
    .expect("state json");
    let instance = &state["resources"][0]["instances"][0];
    assert_eq!(instance["status"], "tainted", "{instance:#}");
    assert_eq!(
        instance["attributes"]["keys"].as_array().map(Vec::len),
        Some(64),
        "{instance:#}"
    );
    let unconfirmed = instance["attributes"]["unconfirmed"]
        .as_object()
        .map(|m| m.len());
    assert_eq!(unconfirmed, Some(36), "{instance:#}");
    // The second transaction was sent: Consul commits it after its delay.
    std::thread::sleep(std::time::Duration::from_secs(3));
    c.delay(0).expect("delay off");
    assert_eq!(
        all(&c).len(),
        100,
        "the unanswered transaction was committed"
    );

    let out = wd.apply();
    assert!(
        out.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        out.all()
    );
    assert_eq!(all(&c).len(), 100);
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(all(&c).is_empty(), "{:?}", all(&c));
}

/// How many keys the double holds, without a (delayed) KV read.
fn entries(c: &ConsulDouble) -> usize {
    c.state()
        .ok()
        .and_then(|s| s["Entries"].as_array().map(Vec::len))
        .unwrap_or(0)
}
