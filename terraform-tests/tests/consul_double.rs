//! The Consul test double (`scripts/lib/consul_double.py`), checked by an independent client
//! (PyPI's py-consul, through `scripts/lib/consul_double_check.py`) and through the Rust helper
//! [`ep_terraform_tests::consul`] that resource tests use.

use std::process::Command;

use ep_terraform_tests::consul::{
    scripts_lib, tools_python, ConsulDouble, ConsulDoubleOptions, Fault,
};

fn b64_json_value(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// py-consul drives a private double: KV with cas and flags, recurse/keys, txn commit and
/// 409 rollback, 413 over 64 operations and over 512 KiB, token refusal, key validation,
/// `?dc`, and the fault modes (500, dropped connection, server down mid-apply).
#[test]
fn py_consul_accepts_the_double() {
    let out = Command::new(tools_python())
        .arg(scripts_lib().join("consul_double_check.py"))
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CONSUL_HTTP_ADDR")
        .output()
        .expect("run the tools venv python (scripts/testenv install)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("consul double check: all ok"),
        "py-consul check failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "a check failed:\n{stdout}");
}

#[test]
fn kv_index_cas_and_token_through_the_rust_helper() {
    let c = ConsulDouble::start(ConsulDoubleOptions::with_token("t0ken")).expect("start");
    let put = c
        .request("PUT", "/v1/kv/app/db/host?cas=0", b"db1")
        .expect("put");
    assert_eq!((put.status, put.text().as_str()), (200, "true"));
    let again = c
        .request("PUT", "/v1/kv/app/db/host?cas=0", b"db2")
        .expect("put");
    assert_eq!(again.text(), "false", "cas=0 must not overwrite");
    let get = c.request("GET", "/v1/kv/app/?recurse", b"").expect("get");
    assert_eq!(get.status, 200);
    let index: u64 = get
        .header("X-Consul-Index")
        .and_then(|v| v.parse().ok())
        .expect("X-Consul-Index");
    let entries: serde_json::Value = serde_json::from_slice(&get.body).expect("json");
    assert_eq!(entries[0]["Key"], "app/db/host");
    assert_eq!(b64_json_value(&entries[0]["Value"]), "ZGIx"); // "db1"
    assert_eq!(entries[0]["ModifyIndex"].as_u64(), Some(index));

    let anon = c
        .request_with("GET", "/v1/kv/app/db/host", b"", None)
        .expect("get");
    assert_eq!(anon.status, 403);
    assert!(
        anon.text().starts_with("Permission denied"),
        "{}",
        anon.text()
    );
    let wrong = c
        .request_with("GET", "/v1/kv/app/db/host", b"", Some("nope"))
        .expect("get");
    assert_eq!(
        (wrong.status, wrong.text().as_str()),
        (403, "ACL not found")
    );

    let txn = br#"[{"KV":{"Verb":"cas","Key":"app/db/host","Value":"eA==","Index":1}}]"#;
    let conflict = c.request("PUT", "/v1/txn", txn).expect("txn");
    assert_eq!(conflict.status, 409);
    let body: serde_json::Value = serde_json::from_slice(&conflict.body).expect("json");
    assert_eq!(body["Errors"][0]["OpIndex"], 0);
    assert!(body["Errors"][0]["What"]
        .as_str()
        .unwrap_or_default()
        .contains("app/db/host"));

    let state = c.state().expect("state");
    assert_eq!(state["Entries"].as_array().map(Vec::len), Some(1));
}

#[test]
fn server_stops_mid_apply_and_keeps_what_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_file = dir.path().join("consul.json");
    let opts = ConsulDoubleOptions {
        token: Some("t".into()),
        state_file: Some(state_file.clone()),
        ..Default::default()
    };
    let mut c = ConsulDouble::start(opts.clone()).expect("start");
    c.fault(&Fault::down().after(1).matching("PUT /v1/txn"))
        .expect("fault");
    let first = br#"[{"KV":{"Verb":"set","Key":"p/a","Value":"MQ=="}}]"#;
    assert_eq!(c.request("PUT", "/v1/txn", first).expect("txn").status, 200);
    let second = br#"[{"KV":{"Verb":"set","Key":"p/b","Value":"Mg=="}}]"#;
    assert!(
        c.request("PUT", "/v1/txn", second).is_err(),
        "the second transaction must see a dropped connection"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!c.is_running(), "the double must have gone down");
    assert!(
        c.request("GET", "/v1/kv/p/a", b"").is_err(),
        "connections must be refused once down"
    );
    // A restart on the same state file shows what was written before the stop.
    let c2 = ConsulDouble::start(opts).expect("restart");
    let a = c2.request("GET", "/v1/kv/p/a?raw", b"").expect("get");
    assert_eq!((a.status, a.text().as_str()), (200, "1"));
    let b = c2.request("GET", "/v1/kv/p/b", b"").expect("get");
    assert_eq!(b.status, 404);
}

#[test]
fn operation_limit_is_configurable() {
    let opts = ConsulDoubleOptions {
        txn_max_ops: Some(128),
        ..Default::default()
    };
    let c = ConsulDouble::start(opts).expect("start");
    let ops = |n: usize| {
        let v: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"KV": {"Verb": "get-or-empty", "Key": format!("k{i}")}}))
            .collect();
        serde_json::to_vec(&v).expect("json")
    };
    assert_eq!(
        c.request("PUT", "/v1/txn", &ops(128)).expect("txn").status,
        200
    );
    let over = c.request("PUT", "/v1/txn", &ops(129)).expect("txn");
    assert_eq!(over.status, 413);
    assert!(over.text().contains("129 > 128"), "{}", over.text());
    c.fault(&Fault::status(503).count(1)).expect("fault");
    assert_eq!(c.request("GET", "/v1/kv/k1", b"").expect("get").status, 503);
    assert_eq!(c.request("GET", "/v1/kv/k1", b"").expect("get").status, 404);
}
