//! The provider block against real Terraform: credentials, assumed roles and
//! endpoint overrides reach moto; bad values are reported with their path.

use ep_terraform_tests::{Scenario, TestEnv, Workdir};

fn header() -> &'static str {
    r#"terraform {
  required_providers {
    ep = { source = "ep-platform/ep" }
  }
}
"#
}

#[test]
fn caller_identity_through_moto_with_auto_mtls() {
    let env = TestEnv::get();
    let config = format!(
        "{}{}\ndata \"ep_caller_identity\" \"me\" {{}}\noutput \"arn\" {{ value = data.ep_caller_identity.me.arn }}\n",
        header(),
        env.moto_provider_block()
    );
    Scenario::new()
        .step(config, |wd| {
            let out = wd.outputs();
            assert_eq!(out["arn"], "arn:aws:sts::123456789012:user/moto");
            // Terraform launched the provider itself, with AutoMTLS: the
            // provider's own log line arrives in Terraform's log.
            let mut logged = Workdir::new(&[]);
            logged.write(
                "main.tf",
                &std::fs::read_to_string(wd.file("main.tf")).unwrap(),
            );
            logged.init();
            logged.set_env("TF_LOG", "debug");
            logged.set_env("TF_LOG_PATH", logged.file("tf.log").to_str().unwrap());
            logged.ok(&["plan", "-no-color"]);
            let log = std::fs::read_to_string(logged.file("tf.log")).unwrap();
            assert!(
                log.contains("configuring client automatic mTLS"),
                "Terraform did not enable AutoMTLS"
            );
            assert!(
                log.contains("configuring server automatic mTLS")
                    && log.contains("@module=provider.terraform-provider-ep"),
                "the provider's structured log did not reach Terraform's log"
            );
            assert!(
                !log.contains("\"test\""),
                "a credential appeared in the log"
            );
        })
        .run();
}

#[test]
fn assume_role_uses_the_sts_endpoint_override() {
    let env = TestEnv::get();
    let config = format!(
        r#"{}
provider "ep" {{
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"
  assume_role {{
    role_arn     = "arn:aws:iam::123456789012:role/ep-deployer"
    session_name = "acceptance"
  }}
  endpoints {{
    sts = "{}"
  }}
}}
data "ep_caller_identity" "me" {{}}
output "arn" {{ value = data.ep_caller_identity.me.arn }}
"#,
        header(),
        env.moto
    );
    Scenario::new()
        .step(config, |wd| {
            let arn = wd.outputs()["arn"].as_str().unwrap_or_default().to_owned();
            assert!(
                arn.contains("assumed-role/ep-deployer/acceptance"),
                "not the assumed role: {arn}"
            );
        })
        .run();
}

#[test]
fn invalid_provider_config_is_reported_with_attribute_paths() {
    let config = format!(
        r#"{}
provider "ep" {{
  region     = "moon-base"
  access_key = "AKIAEXAMPLE"
  assume_role {{
    role_arn = "arn:aws:iam::42:user/bob"
  }}
  endpoints {{
    ecr = "ftp://127.0.0.1:5000"
  }}
}}
data "ep_caller_identity" "me" {{}}
"#,
        header()
    );
    let wd = Workdir::new(&[("main.tf", &config)]);
    wd.init();
    let out = wd.run(&["validate", "-no-color"]);
    assert_ne!(out.code, 0, "validate accepted a bad provider block");
    let text = out.all();
    for expected in [
        "Invalid AWS region",
        "region     = \"moon-base\"",
        "Incomplete static credentials",
        "Invalid role ARN",
        "role_arn = \"arn:aws:iam::42:user/bob\"",
        "Invalid endpoint URL",
        "ecr = \"ftp://127.0.0.1:5000\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn missing_region_fails_only_when_aws_is_used() {
    let config = format!(
        "{}provider \"ep\" {{}}\ndata \"ep_caller_identity\" \"me\" {{}}\n",
        header()
    );
    let mut wd = Workdir::new(&[("main.tf", &config)]);
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        wd.set_env(var, "");
    }
    wd.set_env("AWS_CONFIG_FILE", "/nonexistent");
    wd.init();
    let out = wd.run(&["plan", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(
        out.all().contains("no AWS region is configured"),
        "{}",
        out.all()
    );
}

#[test]
fn named_profile_from_shared_files() {
    let env = TestEnv::get();
    let config = format!(
        r#"{}
provider "ep" {{
  profile = "ep-deployer"
  endpoints {{
    sts = "{}"
  }}
}}
data "ep_caller_identity" "me" {{}}
output "region" {{ value = data.ep_caller_identity.me.region }}
"#,
        header(),
        env.moto
    );
    // The profile's credentials come from a credential_process that leaves a
    // marker, so the test can tell they were used and not the environment's.
    let mut wd = Workdir::new(&[("main.tf", &config)]);
    let marker = wd.file("aws/credential-process-ran");
    let script = wd.file("aws/creds.sh");
    wd.write(
        "aws/creds.sh",
        &format!(
            "#!/bin/sh\ntouch '{}'\necho '{{\"Version\":1,\"AccessKeyId\":\"AKIAPROFILEKEY000001\",\"SecretAccessKey\":\"s\"}}'\n",
            marker.display()
        ),
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    wd.write(
        "aws/config",
        &format!(
            "[profile ep-deployer]\nregion = eu-west-2\ncredential_process = {}\n",
            script.display()
        ),
    );
    wd.set_env("AWS_CONFIG_FILE", wd.file("aws/config").to_str().unwrap());
    wd.set_env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    // The profile, not the environment, must supply region and keys.
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        wd.set_env(var, "");
    }
    wd.init();
    wd.apply();
    assert_eq!(wd.outputs()["region"], "eu-west-2");
    assert!(
        marker.exists(),
        "the profile's credential_process was not used"
    );
}
