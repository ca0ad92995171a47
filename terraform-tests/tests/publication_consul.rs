//! `ep_endpoint_publication` and `ep_config_store` on Consul, with real
//! Terraform against private instances of the Consul test double
//! (`scripts/lib/consul_double.py`; no Consul server can be installed here).
//! Every test starts its own double with ACLs on, so faults, races and the
//! store's contents are its own.

use std::collections::BTreeMap;

use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions, Fault};
use ep_terraform_tests::{Scenario, Workdir};

const TOKEN: &str = "publication-t0ken";

const HEADER: &str = r#"terraform {
  required_providers {
    ep = { source = "ep-platform/ep" }
  }
}
"#;

fn double() -> ConsulDouble {
    ConsulDouble::start(ConsulDoubleOptions::with_token(TOKEN)).expect("start the Consul double")
}

/// The value of `key`, read as another client would.
fn kv(c: &ConsulDouble, key: &str) -> Option<String> {
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
fn all(c: &ConsulDouble) -> BTreeMap<String, String> {
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

fn put(c: &ConsulDouble, key: &str, value: &str) {
    let a = c
        .request("PUT", &format!("/v1/kv/{key}"), value.as_bytes())
        .expect("PUT kv");
    assert_eq!((a.status, a.text().as_str()), (200, "true"), "PUT {key}");
}

fn delete(c: &ConsulDouble, key: &str) {
    let a = c
        .request("DELETE", &format!("/v1/kv/{key}"), b"")
        .expect("DELETE kv");
    assert_eq!(a.status, 200, "DELETE {key}");
}

fn consul_block(c: &ConsulDouble, token: &str) -> String {
    format!(
        "  consul {{\n    address = \"{}\"\n    token   = \"{token}\"\n  }}\n",
        c.address()
    )
}

/// A publication `name` under `prefix` with `body` (values etc.), fed
/// through `terraform_data` where the body says so.
fn publication(c: &ConsulDouble, name: &str, prefix: &str, body: &str) -> String {
    format!(
        r#"resource "ep_endpoint_publication" "{name}" {{
  prefix = "{prefix}"
{body}
{consul}}}
"#,
        consul = consul_block(c, TOKEN)
    )
}

fn workdir() -> Workdir {
    let mut wd = Workdir::new(&[]);
    wd.set_env("CONSUL_HTTP_TOKEN", "");
    wd
}

fn apply_fails(wd: &Workdir) -> ep_terraform_tests::Output {
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "apply should fail:\n{}", out.all());
    out
}

/// Terraform wraps diagnostic text: compare with single spaces.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn plan_code(wd: &Workdir) -> (i32, String) {
    let out = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    (out.code, out.all())
}

/// Create with values unknown at plan, update with values unknown again,
/// import, destroy: a key beside the prefix (`ep/authority`) is never touched,
/// sensitive values never appear in plan output.
#[test]
fn lifecycle_with_unknown_values_import_and_destroy() {
    let c = double();
    // Matched by a prefix without its trailing `/`: must never be read or touched.
    put(&c, "ep/authority", "not-ours");
    let step1 = format!(
        r#"{HEADER}
resource "terraform_data" "db" {{
  input = "db1.internal"
}}
{}
data "ep_config_store" "read" {{
  prefix         = "ep/author/"
  sensitive_keys = ["db/password"]
  consul {{
    address = "{addr}"
    token   = "{TOKEN}"
  }}
  depends_on = [ep_endpoint_publication.author]
}}
output "seen" {{
  value = data.ep_config_store.read.values
}}
"#,
        publication(
            &c,
            "author",
            "ep/author/",
            r#"  values = {
    "db/host" = terraform_data.db.output
    "db/port" = "3306"
  }
  sensitive_values = {
    "db/password" = "S3cret-Pw"
  }
  endpoints = {
    author = { db_url = "jdbc:mysql://db1.internal:3306/commerce", jms_url = "tcp://mq:61616" }
  }"#
        ),
        addr = c.address(),
    );
    let step2 = format!(
        r#"{HEADER}
resource "terraform_data" "db" {{
  input = "db2.internal"
}}
{}"#,
        publication(
            &c,
            "author",
            "ep/author/",
            r#"  values = {
    "db/host" = terraform_data.db.output
    "db/name" = "commerce"
  }"#
        )
    );
    let c1 = std::rc::Rc::new(c);
    let (ca, cb, cc) = (c1.clone(), c1.clone(), c1.clone());
    let import_id = format!("consul:ep/author/@{}", c1.address());
    Scenario::new()
        .env("CONSUL_HTTP_TOKEN", TOKEN)
        .step(step1, move |wd| {
            let kvs = all(&ca);
            let want: BTreeMap<String, String> = [
                (
                    "ep/author/author/EP_DB_URL",
                    "jdbc:mysql://db1.internal:3306/commerce",
                ),
                ("ep/author/author/EP_JMS_URL", "tcp://mq:61616"),
                ("ep/author/db/host", "db1.internal"),
                ("ep/author/db/password", "S3cret-Pw"),
                ("ep/author/db/port", "3306"),
                ("ep/authority", "not-ours"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            assert_eq!(kvs, want);
            let v = wd.resource_values("ep_endpoint_publication.author");
            assert_eq!(v["id"], "consul:ep/author/");
            assert_eq!(
                v["keys"],
                serde_json::json!([
                    "ep/author/author/EP_DB_URL",
                    "ep/author/author/EP_JMS_URL",
                    "ep/author/db/host",
                    "ep/author/db/password",
                    "ep/author/db/port"
                ])
            );
            let seen = &wd.outputs()["seen"];
            assert!(seen.get("ity").is_none(), "{seen:#}");
            assert_eq!(seen["db/port"], "3306", "{seen:#}");
            assert_eq!(seen["db/host"], "db1.internal", "{seen:#}");
            let shown = wd.ok(&["show", "-no-color"]);
            assert!(
                !shown.stdout.contains("S3cret-Pw"),
                "a sensitive value is shown:\n{}",
                shown.stdout
            );
        })
        .step(step2, move |wd| {
            let kvs = all(&cb);
            assert_eq!(
                kvs.get("ep/author/db/host").map(String::as_str),
                Some("db2.internal")
            );
            assert_eq!(
                kvs.get("ep/author/db/name").map(String::as_str),
                Some("commerce")
            );
            assert_eq!(
                kvs.get("ep/authority").map(String::as_str),
                Some("not-ours")
            );
            for gone in [
                "db/port",
                "db/password",
                "author/EP_DB_URL",
                "author/EP_JMS_URL",
            ] {
                assert!(
                    !kvs.contains_key(&format!("ep/author/{gone}")),
                    "{gone} left: {kvs:?}"
                );
            }
            let v = wd.resource_values("ep_endpoint_publication.author");
            assert_eq!(
                v["keys"],
                serde_json::json!(["ep/author/db/host", "ep/author/db/name"])
            );
        })
        .import("ep_endpoint_publication.author", move |_| import_id.clone())
        // Import cannot know the token (it comes from CONSUL_HTTP_TOKEN).
        .ignore_on_import(&["consul"])
        .destroyed(move || {
            let kvs = all(&cc);
            let left: Vec<&String> = kvs.keys().collect();
            assert_eq!(left, vec!["ep/authority"], "destroy removed only its keys");
        })
        .run();
}

/// Values changed or deleted outside Terraform are drift: the plan shows
/// them, apply restores them, and the plan is empty again.
#[test]
fn drift_is_detected_and_restored() {
    let c = double();
    let wd = workdir();
    wd.write(
        "main.tf",
        &format!(
            "{HEADER}{}",
            publication(
                &c,
                "p",
                "ep/live/",
                "  values = { a = \"1\", b = \"2\", c = \"3\" }\n"
            )
        ),
    );
    wd.init();
    wd.apply();
    wd.assert_plan_empty(true);
    put(&c, "ep/live/a", "changed");
    delete(&c, "ep/live/b");
    let (code, out) = plan_code(&wd);
    assert_eq!(code, 2, "drift must show in the plan:\n{out}");
    assert!(out.contains("\"changed\" -> \"1\""), "{out}");
    wd.apply();
    assert_eq!(kv(&c, "ep/live/a").as_deref(), Some("1"));
    assert_eq!(kv(&c, "ep/live/b").as_deref(), Some("2"));
    wd.assert_plan_empty(true);
    // A key changed outside Terraform is left on destroy, with a warning.
    put(&c, "ep/live/c", "theirs-now");
    let out = wd.ok(&[
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-refresh=false",
    ]);
    assert!(
        out.all().contains("Keys left in place") && out.all().contains("ep/live/c"),
        "destroy warns about the key it left:\n{}",
        out.all()
    );
    assert_eq!(kv(&c, "ep/live/a"), None);
    assert_eq!(kv(&c, "ep/live/c").as_deref(), Some("theirs-now"));
}

/// A key that exists and is not this resource's is refused (nothing is
/// written), unless `overwrite = true`.
#[test]
fn overwrite_is_refused_by_default() {
    let c = double();
    put(&c, "ep/x/taken", "someone-else");
    let wd = workdir();
    let cfg = |extra: &str| {
        format!(
            "{HEADER}{}",
            publication(
                &c,
                "p",
                "ep/x/",
                &format!("  values = {{ taken = \"mine\", free = \"f\" }}\n{extra}")
            )
        )
    };
    wd.write("main.tf", &cfg(""));
    wd.init();
    let out = apply_fails(&wd);
    assert!(
        flat(&out.stderr).contains("Key exists and is not this resource's"),
        "{}",
        out.all()
    );
    assert!(flat(&out.stderr).contains("ep/x/taken"), "{}", out.all());
    assert!(
        flat(&out.stderr).contains("overwrite = true"),
        "{}",
        out.all()
    );
    assert_eq!(kv(&c, "ep/x/taken").as_deref(), Some("someone-else"));
    assert_eq!(
        kv(&c, "ep/x/free"),
        None,
        "nothing is written when a key is refused"
    );
    wd.write("main.tf", &cfg("  overwrite = true\n"));
    wd.apply();
    assert_eq!(kv(&c, "ep/x/taken").as_deref(), Some("mine"));
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(kv(&c, "ep/x/taken"), None);
}

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
    let out = apply_fails(&wd);
    assert!(
        flat(&out.stderr).contains("changed by another writer"),
        "{}",
        out.all()
    );
    assert!(flat(&out.stderr).contains("ep/cas/host"), "{}", out.all());
    assert!(
        flat(&out.stderr).contains("index is stale"),
        "{}",
        out.all()
    );
    assert_eq!(kv(&c, "ep/cas/host").as_deref(), Some("concurrent"));
    let (code, plan) = plan_code(&wd);
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("\"concurrent\" -> \"two\""), "{plan}");
    wd.apply();
    assert_eq!(kv(&c, "ep/cas/host").as_deref(), Some("two"));
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

/// A wrong token and no token are refused with Consul's 403, clearly.
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
    let out = apply_fails(&wd);
    assert!(
        flat(&out.stderr).contains("cannot reach Consul"),
        "{}",
        out.all()
    );
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

/// Two publications under one prefix each own their keys: no flip-flop,
/// and destroying one leaves the other's keys.
#[test]
fn two_resources_under_one_prefix() {
    let c = double();
    let wd = workdir();
    let a = publication(&c, "a", "ep/shared/", "  values = { from_a = \"1\" }\n");
    let b = publication(&c, "b", "ep/shared/", "  values = { from_b = \"2\" }\n");
    wd.write("main.tf", &format!("{HEADER}{a}{b}"));
    wd.init();
    wd.apply();
    wd.assert_plan_empty(true);
    wd.apply();
    wd.assert_plan_empty(true);
    wd.write("main.tf", &format!("{HEADER}{b}"));
    wd.apply();
    assert_eq!(kv(&c, "ep/shared/from_a"), None);
    assert_eq!(kv(&c, "ep/shared/from_b").as_deref(), Some("2"));
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(all(&c).is_empty());
}

/// Bad input is refused at validate, on its attribute, before any call; a
/// value Consul's transaction limit refuses (413) is an error naming its key.
#[test]
fn bad_input_is_refused() {
    let c = double();
    let wd = workdir();
    wd.write("main.tf", HEADER);
    wd.init();
    let big = "x".repeat(512 * 1024 + 1);
    wd.write("big.txt", &big);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            publication(&c, "p", "/ep/", "  values = { a = \"1\" }\n"),
            "must not start with `/`",
            "prefix",
        ),
        (
            publication(&c, "p", "ep", "  values = { a = \"1\" }\n"),
            "must end with `/`",
            "prefix",
        ),
        (
            publication(&c, "p", "ep/", "  values = { \"a/../b\" = \"1\" }\n"),
            "must not contain a `..` segment",
            "values",
        ),
        (
            publication(&c, "p", "ep/", "  values = { \"a b\" = \"1\" }\n"),
            "is not allowed",
            "values",
        ),
        (
            publication(&c, "p", "ep/", "  values = { big = file(\"big.txt\") }\n"),
            "allows at most 524288",
            "values",
        ),
        (
            format!(
                "resource \"ep_endpoint_publication\" \"p\" {{\n  prefix = \"ep/\"\n  values = {{ a = \"1\" }}\n{}  ssm {{}}\n}}\n",
                consul_block(&c, TOKEN)
            ),
            "Exactly one config store",
            "",
        ),
        (
            "resource \"ep_endpoint_publication\" \"p\" {\n  prefix = \"ep/\"\n  values = { a = \"1\" }\n}\n".to_owned(),
            "Exactly one config store",
            "",
        ),
    ];
    for (cfg, want, attr) in cases {
        wd.write("main.tf", &format!("{HEADER}{cfg}"));
        let out = wd.run(&["validate", "-no-color"]);
        assert_ne!(out.code, 0, "passed validate:\n{cfg}\n{}", out.all());
        assert!(
            flat(&out.stderr).contains(want),
            "{want:?} not in:\n{}",
            out.all()
        );
        if !attr.is_empty() {
            // Terraform quotes the offending line when the diagnostic has a path.
            assert!(
                flat(&out.stderr).contains(&format!(" {attr} = "))
                    || flat(&out.stderr).contains(&format!("{attr} =")),
                "no attribute path for {want:?}:\n{}",
                out.all()
            );
        }
    }
    assert!(all(&c).is_empty(), "validation made calls");

    // 400 KiB passes Consul's value limit, but base64 makes the transaction
    // larger than 512 KiB: refused before anything is sent, on the key.
    wd.write("big.txt", &"y".repeat(400 * 1024));
    wd.write(
        "main.tf",
        &format!(
            "{HEADER}{}",
            publication(
                &c,
                "p",
                "ep/",
                "  values = { big = file(\"big.txt\"), small = \"s\" }\n"
            )
        ),
    );
    let out = apply_fails(&wd);
    assert!(
        flat(&out.stderr).contains("the value of \"ep/big\" is too large"),
        "{}",
        out.all()
    );
    assert!(
        flat(&out.stderr).contains("txn_max_req_len"),
        "{}",
        out.all()
    );
    assert!(all(&c).is_empty(), "nothing is written");
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
    let out = apply_fails(&wd);
    assert!(
        flat(&out.stderr).contains("the value of \"ep/big\" is too large"),
        "{}",
        out.all()
    );
    assert!(
        flat(&out.stderr).contains("max size: 8192 bytes"),
        "{}",
        out.all()
    );
    // The diagnostic points at the value's attribute.
    assert!(flat(&out.stderr).contains("values = {"), "{}", out.all());
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI:
/// (ca.pem, cert.pem, key.pem).
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ep test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// HTTPS: the server's certificate is verified (a CA the system does not
/// know is refused) and trusted through `ca_file`; `datacenter` is sent as
/// `?dc=` (an unknown one is Consul's "No path to datacenter").
#[test]
fn tls_is_verified_ca_file_trusted_and_datacenter_sent() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(certs.path());
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
