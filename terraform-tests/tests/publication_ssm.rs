//! `ep_endpoint_publication` and `ep_config_store` on SSM Parameter Store,
//! with real Terraform against both emulators that implement SSM: moto and
//! LocalStack community. Every test runs against each, under its own path.

use ep_terraform_tests::{Scenario, TestEnv, Workdir};

use ep_terraform_tests::HEADER;

/// An emulator: its name and endpoint.
#[derive(Clone, Copy)]
enum Emulator {
    Moto,
    LocalStack,
}

impl Emulator {
    fn endpoint(self) -> String {
        let env = TestEnv::get();
        match self {
            Emulator::Moto => env.moto.clone(),
            Emulator::LocalStack => env.localstack.clone(),
        }
    }

    fn provider(self) -> String {
        format!(
            r#"provider "ep" {{
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"
  endpoints {{
    ssm = "{}"
    sts = "{}"
  }}
}}
"#,
            self.endpoint(),
            self.endpoint()
        )
    }
}

/// A path no other test (or earlier run) uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{name}{:x}{:x}", std::process::id(), nanos % 0xffffff)
}

/// One SSM JSON API call to the emulator through curl; the parsed answer.
fn ssm(em: Emulator, action: &str, body: serde_json::Value) -> serde_json::Value {
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", &em.endpoint()])
        .args(["-H", &format!("X-Amz-Target: AmazonSSM.{action}")])
        .args(["-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0"])
        .args(["--data-binary", &body.to_string()])
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Every parameter under `path` (name → (value, type)), read as another client would.
fn params(em: Emulator, path: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = serde_json::json!({
            "Path": path.trim_end_matches('/'), "Recursive": true, "WithDecryption": true, "MaxResults": 10
        });
        if let Some(t) = &token {
            req["NextToken"] = t.clone().into();
        }
        let page = ssm(em, "GetParametersByPath", req);
        for p in page["Parameters"].as_array().into_iter().flatten() {
            out.insert(
                p["Name"].as_str().unwrap_or_default().to_owned(),
                (
                    p["Value"].as_str().unwrap_or_default().to_owned(),
                    p["Type"].as_str().unwrap_or_default().to_owned(),
                ),
            );
        }
        token = page["NextToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

fn put(em: Emulator, name: &str, value: &str) {
    let r = ssm(
        em,
        "PutParameter",
        serde_json::json!({"Name": name, "Value": value, "Type": "String", "Overwrite": true}),
    );
    assert!(r.get("Version").is_some(), "PutParameter {name}: {r}");
}

fn delete(em: Emulator, name: &str) {
    ssm(em, "DeleteParameter", serde_json::json!({"Name": name}));
}

/// Terraform wraps diagnostic text: compare with single spaces.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn publication(em: Emulator, base: &str, body: &str) -> String {
    format!(
        r#"{HEADER}
{provider}
resource "ep_endpoint_publication" "p" {{
  prefix = "author/"
{body}
  ssm {{
    path_prefix = "/{base}/"
    tags        = {{ owner = "ep-tests" }}
  }}
}}
"#,
        provider = em.provider()
    )
}

/// String and SecureString, more than 10 keys (pages of 10, deletes in
/// batches of 10), values unknown at plan on create and update, the data
/// source, import, destroy.
fn lifecycle(em: Emulator) {
    let base = unique("eptest");
    let many: Vec<String> = (0..23)
        .map(|i| format!("    \"svc/k{i:02}\" = \"v{i}\""))
        .collect();
    let step1 = format!(
        r#"{}
resource "terraform_data" "host" {{
  input = "db1.internal"
}}
data "ep_config_store" "read" {{
  prefix = "author/"
  ssm {{
    path_prefix = "/{base}/"
  }}
  depends_on = [ep_endpoint_publication.p]
}}
output "seen" {{
  value = data.ep_config_store.read.values
}}
output "secret_count" {{
  value     = length(data.ep_config_store.read.sensitive_values)
  sensitive = true
}}
"#,
        publication(
            em,
            &base,
            &format!(
                "  values = {{\n    \"db/host\" = terraform_data.host.output\n{}\n  }}\n  sensitive_values = {{ \"db/password\" = \"S3cret-Pw\" }}\n",
                many.join("\n")
            )
        )
    );
    let step2 = format!(
        r#"{}
resource "terraform_data" "host" {{
  input = "db2.internal"
}}
"#,
        publication(
            em,
            &base,
            "  values = {\n    \"db/host\" = terraform_data.host.output\n    \"svc/k00\" = \"changed\"\n  }\n  sensitive_values = { \"db/password\" = \"S3cret-Pw\" }\n"
        )
    );
    let prefix = format!("/{base}/author/");
    let (p1, p2, p3) = (prefix.clone(), prefix.clone(), prefix.clone());
    let import_id = format!("ssm:author/@/{base}/");
    Scenario::new()
        .step(step1, move |wd| {
            let got = params(em, &p1);
            assert_eq!(got.len(), 25, "{got:?}");
            assert_eq!(
                got[&format!("{p1}db/host")],
                ("db1.internal".into(), "String".into())
            );
            assert_eq!(
                got[&format!("{p1}db/password")],
                ("S3cret-Pw".into(), "SecureString".into())
            );
            assert_eq!(got[&format!("{p1}svc/k22")].0, "v22");
            // Tags are applied separately (SSM refuses them with Overwrite).
            let tags = ssm(
                em,
                "ListTagsForResource",
                serde_json::json!({"ResourceType": "Parameter", "ResourceId": format!("{p1}db/host")}),
            );
            assert_eq!(
                tags["TagList"],
                serde_json::json!([{"Key": "owner", "Value": "ep-tests"}]),
                "{tags}"
            );
            let out = wd.outputs();
            assert_eq!(out["seen"]["svc/k07"], "v7", "{out:#}");
            assert_eq!(out["secret_count"], 1, "{out:#}");
            let v = wd.resource_values("ep_endpoint_publication.p");
            assert_eq!(v["id"], format!("ssm:{p1}"));
            assert_eq!(v["keys"].as_array().map(Vec::len), Some(25));
            let shown = wd.ok(&["show", "-no-color"]);
            assert!(!shown.stdout.contains("S3cret-Pw"), "{}", shown.stdout);
        })
        .step(step2, move |_| {
            let got = params(em, &p2);
            let names: Vec<&str> = got.keys().map(String::as_str).collect();
            assert_eq!(
                names,
                vec![
                    format!("{p2}db/host").as_str(),
                    format!("{p2}db/password").as_str(),
                    format!("{p2}svc/k00").as_str()
                ],
                "22 removed in batches of 10"
            );
            assert_eq!(got[&format!("{p2}db/host")].0, "db2.internal");
            assert_eq!(got[&format!("{p2}svc/k00")].0, "changed");
        })
        .import("ep_endpoint_publication.p", move |_| import_id.clone())
        .ignore_on_import(&["ssm"])
        .destroyed(move || {
            let left = params(em, &p3);
            assert!(left.is_empty(), "destroy left {left:?}");
        })
        .run();
}

#[test]
fn lifecycle_moto() {
    lifecycle(Emulator::Moto);
}

#[test]
fn lifecycle_localstack() {
    lifecycle(Emulator::LocalStack);
}

/// Drift restored (a changed value, a deleted one, a SecureString turned
/// into a String); a foreign parameter refused unless `overwrite`; a value
/// over the Standard tier's 4096 characters refused at validate.
fn drift_overwrite_and_limits(em: Emulator) {
    let base = unique("epdrift");
    let prefix = format!("/{base}/author/");
    let wd = Workdir::new(&[]);
    put(em, &format!("{prefix}taken"), "someone-else");
    let cfg = |extra: &str| {
        publication(
            em,
            &base,
            &format!(
                "  values = {{ a = \"1\", b = \"2\", taken = \"mine\" }}\n  sensitive_values = {{ pw = \"Pw-1\" }}\n{extra}"
            ),
        )
    };
    wd.write("main.tf", &cfg(""));
    wd.init();
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        flat(&out.stderr).contains("Key exists and is not this resource's"),
        "{}",
        out.all()
    );
    assert!(
        flat(&out.stderr).contains(&format!("{prefix}taken")),
        "{}",
        out.all()
    );
    let got = params(em, &prefix);
    assert_eq!(
        got.len(),
        1,
        "nothing written when a key is refused: {got:?}"
    );

    wd.write("main.tf", &cfg("  overwrite = true\n"));
    wd.apply();
    assert_eq!(params(em, &prefix)[&format!("{prefix}taken")].0, "mine");
    wd.assert_plan_empty(true);

    put(em, &format!("{prefix}a"), "changed");
    delete(em, &format!("{prefix}b"));
    // Same value, but no longer encrypted.
    put(em, &format!("{prefix}pw"), "Pw-1");
    assert_eq!(params(em, &prefix)[&format!("{prefix}pw")].1, "String");
    let plan = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stdout.contains("\"changed\" -> \"1\""),
        "{}",
        plan.all()
    );
    wd.apply();
    let got = params(em, &prefix);
    assert_eq!(got[&format!("{prefix}a")].0, "1");
    assert_eq!(got[&format!("{prefix}b")].0, "2");
    assert_eq!(
        got[&format!("{prefix}pw")],
        ("Pw-1".to_owned(), "SecureString".to_owned())
    );
    wd.assert_plan_empty(true);

    wd.write("big.txt", &"x".repeat(4097));
    wd.write(
        "main.tf",
        &publication(em, &base, "  values = { big = file(\"big.txt\") }\n"),
    );
    let out = wd.run(&["plan", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        flat(&out.stderr)
            .contains("the value is 4097 characters long; SSM's Standard tier allows at most 4096"),
        "{}",
        out.all()
    );

    wd.write("main.tf", &cfg("  overwrite = true\n"));
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(params(em, &prefix).is_empty());
}

#[test]
fn drift_overwrite_and_limits_moto() {
    drift_overwrite_and_limits(Emulator::Moto);
}

#[test]
fn drift_overwrite_and_limits_localstack() {
    drift_overwrite_and_limits(Emulator::LocalStack);
}

/// Names SSM reserves and hierarchies deeper than 15 levels are refused at validate.
#[test]
fn ssm_names_are_validated() {
    let wd = Workdir::new(&[]);
    wd.write("main.tf", HEADER);
    wd.init();
    let deep: Vec<&str> = vec!["d"; 14];
    for (path_prefix, key, want) in [
        ("/aws/", "x", "must not start with `aws` or `ssm`"),
        ("/", "k", ""),
        ("/a/", &deep.join("/"), "SSM allows at most 15"),
    ] {
        let cfg = format!(
            "{HEADER}{}resource \"ep_endpoint_publication\" \"p\" {{\n  prefix = \"p/\"\n  values = {{ \"{key}\" = \"1\" }}\n  ssm {{\n    path_prefix = \"{path_prefix}\"\n  }}\n}}\n",
            Emulator::Moto.provider()
        );
        wd.write("main.tf", &cfg);
        let out = wd.run(&["validate", "-no-color"]);
        if want.is_empty() {
            assert_eq!(out.code, 0, "{}", out.all());
        } else {
            assert_ne!(out.code, 0, "{cfg}\n{}", out.all());
            assert!(flat(&out.stderr).contains(want), "{want:?}:\n{}", out.all());
        }
    }
}

/// `key_id` and `tier` reach SSM: a SecureString encrypted with a KMS key
/// made in moto, in the Advanced tier, as `DescribeParameters` reports it.
#[test]
fn key_id_and_tier_are_applied_moto() {
    let em = Emulator::Moto;
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", &em.endpoint()])
        .args(["-H", "X-Amz-Target: TrentService.CreateKey"])
        .args(["-H", "Content-Type: application/x-amz-json-1.1"])
        .args(["-H", "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0"])
        .args(["--data-binary", "{}"])
        .output()
        .expect("curl");
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let key_id = key["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("a KMS key")
        .to_owned();
    let base = unique("epkms");
    let cfg = format!(
        r#"{HEADER}
{provider}
resource "ep_endpoint_publication" "p" {{
  prefix           = "author/"
  values           = {{ "EP_DB_HOSTNAME" = "db.internal" }}
  sensitive_values = {{ "EP_DB_PASS" = "s3cret-value" }}
  ssm {{
    path_prefix = "/{base}/"
    key_id      = "{key_id}"
    tier        = "Advanced"
  }}
}}
"#,
        provider = em.provider()
    );
    let wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.init();
    wd.apply();
    wd.assert_plan_empty(true);
    let described = ssm(
        em,
        "DescribeParameters",
        serde_json::json!({ "ParameterFilters": [{ "Key": "Path", "Option": "Recursive", "Values": [format!("/{base}")] }] }),
    );
    let found: Vec<(String, String, String, String)> = described["Parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                    (s("Name"), s("Type"), s("KeyId"), s("Tier"))
                })
                .collect()
        })
        .unwrap_or_default();
    let secret = found
        .iter()
        .find(|p| p.0.ends_with("/EP_DB_PASS"))
        .unwrap_or_else(|| panic!("EP_DB_PASS not found: {described}"));
    assert_eq!(secret.1, "SecureString", "{described}");
    assert!(
        secret.2.ends_with(&key_id),
        "KeyId {:?} is not {key_id}: {described}",
        secret.2
    );
    assert!(found.iter().all(|p| p.3 == "Advanced"), "{described}");
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert!(params(em, &format!("/{base}/")).is_empty());
}
