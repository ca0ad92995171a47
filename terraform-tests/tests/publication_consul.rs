//! `ep_endpoint_publication` and `ep_config_store` on Consul, with real
//! Terraform against private instances of the Consul test double
//! (`scripts/lib/consul_double.py`; no Consul server can be installed here).
//! Every test starts its own double with ACLs on, so the store's contents
//! are its own. Faults, races, TLS: `publication_consul_faults.rs`.

mod publication_support;

use std::collections::BTreeMap;

use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions};
use ep_terraform_tests::Scenario;
use publication_support::*;

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
    # The shape of ep_deployment.endpoints: a number port, a null for what the stack lacks.
    author = {
      database_address = "db1.internal"
      database_port    = 3306
      database_url     = "jdbc:mysql://db1.internal:3306/commerce"
      jms_url          = "tcp://mq:61616"
      stomp_url        = null
    }
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
                ("ep/author/author/EP_DB_HOSTNAME", "db1.internal"),
                ("ep/author/author/EP_DB_PORT", "3306"),
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
                    "ep/author/author/EP_DB_HOSTNAME",
                    "ep/author/author/EP_DB_PORT",
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
                "author/EP_DB_HOSTNAME",
                "author/EP_DB_PORT",
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
    apply_fails_with(
        &wd,
        &[
            "Key exists and is not this resource's",
            "ep/x/taken",
            "overwrite = true",
        ],
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
    apply_fails_with(
        &wd,
        &["the value of \"ep/big\" is too large", "txn_max_req_len"],
    );
    assert!(all(&c).is_empty(), "nothing is written");
}

/// Consul Enterprise namespaces are separate keyspaces: one prefix in two
/// namespaces holds two publications that never see each other, the data
/// source reads its namespace, and import takes the namespace from its ID.
#[test]
fn one_prefix_in_two_namespaces() {
    let c = ConsulDouble::start(ConsulDoubleOptions {
        namespaces: true,
        ..ConsulDoubleOptions::with_token(TOKEN)
    })
    .expect("start the Consul double with namespaces");
    let addr = c.address();
    let in_ns = |name: &str, ns: &str, host: &str| {
        format!(
            r#"resource "ep_endpoint_publication" "{name}" {{
  prefix = "ep/author/"
  values = {{ "db/host" = "{host}" }}
  consul {{
    address   = "{addr}"
    token     = "{TOKEN}"
    namespace = "{ns}"
  }}
}}
"#
        )
    };
    let reader = format!(
        r#"data "ep_config_store" "b" {{
  prefix = "ep/author/"
  consul {{
    address   = "{addr}"
    token     = "{TOKEN}"
    namespace = "team-b"
  }}
  depends_on = [ep_endpoint_publication.b]
}}
output "b_seen" {{
  value = data.ep_config_store.b.values
}}
"#
    );
    let mut wd = workdir();
    let b = in_ns("b", "team-b", "b.internal");
    wd.write(
        "main.tf",
        &format!("{HEADER}{}{b}{reader}", in_ns("a", "team-a", "a.internal")),
    );
    wd.init();
    wd.apply();
    assert_eq!(
        in_namespaces(&c, "ep/author/db/host"),
        vec![
            ("team-a".to_owned(), "a.internal".to_owned()),
            ("team-b".to_owned(), "b.internal".to_owned())
        ]
    );
    let seen = wd.ok(&["output", "-json", "b_seen"]).stdout;
    assert!(
        seen.contains("b.internal") && !seen.contains("a.internal"),
        "{seen}"
    );
    wd.assert_plan_empty(true);

    // A change in one namespace leaves the other alone; so does a destroy.
    wd.write(
        "main.tf",
        &format!("{HEADER}{}{b}{reader}", in_ns("a", "team-a", "a2.internal")),
    );
    wd.apply();
    wd.assert_plan_empty(true);
    assert_eq!(
        in_namespaces(&c, "ep/author/db/host"),
        vec![
            ("team-a".to_owned(), "a2.internal".to_owned()),
            ("team-b".to_owned(), "b.internal".to_owned())
        ]
    );
    wd.write("main.tf", &format!("{HEADER}{b}{reader}"));
    wd.apply();
    assert_eq!(
        in_namespaces(&c, "ep/author/db/host"),
        vec![("team-b".to_owned(), "b.internal".to_owned())]
    );

    // Import finds the keys in the namespace its ID names (the token from
    // the environment, as the ID holds none).
    wd.ok(&["state", "rm", "ep_endpoint_publication.b"]);
    wd.set_env("CONSUL_HTTP_TOKEN", TOKEN);
    wd.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "ep_endpoint_publication.b",
        &format!("consul:ep/author/@{addr}?ns=team-b"),
    ]);
    // The token is all that differs (the ID holds none): address and
    // namespace came from the ID, so nothing is replaced.
    let (code, out) = plan_code(&wd);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("0 to add, 1 to change, 0 to destroy") && out.contains("+ token"),
        "{out}"
    );
    wd.apply();
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(in_namespaces(&c, "ep/author/db/host").is_empty());
}

/// `(namespace, value)` of every entry named `key`, across namespaces.
fn in_namespaces(c: &ConsulDouble, key: &str) -> Vec<(String, String)> {
    let state = c.state().expect("double state");
    let mut out: Vec<(String, String)> = state["Entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["Key"] == key)
        .filter_map(|e| {
            let ns = e["Namespace"].as_str()?.to_owned();
            let a = c
                .request("GET", &format!("/v1/kv/{key}?raw&ns={ns}"), b"")
                .expect("GET kv in a namespace");
            Some((ns, a.text()))
        })
        .collect();
    out.sort();
    out
}
