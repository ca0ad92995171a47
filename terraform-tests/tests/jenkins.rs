//! examples/jenkins/Jenkinsfile without Jenkins: its `sh` steps, read from
//! the file in order, run in one workspace against the local emulated AWS
//! and registry, with the environment its `environment` block sets, as the
//! pod agent would run them. Non-shell steps are played by the test: the
//! approval answers yes, `junit` and `archiveArtifacts` find their files.

mod image_support;

use std::path::PathBuf;
use std::process::Command;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::{TestEnv, Workdir};
use image_support::example_files;

fn jenkinsfile() -> String {
    let p = ep_terraform_tests::repo_root().join("examples/jenkins/Jenkinsfile");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `sh '''…'''` steps in order, each with the stage it belongs to.
fn shell_steps(jf: &str) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    let mut stage = String::new();
    let mut rest = jf;
    loop {
        let next_stage = rest.find("stage('");
        let next_sh = rest.find("sh '''");
        match (next_stage, next_sh) {
            (Some(s), Some(h)) if s < h => {
                let after = &rest[s + 7..];
                let end = after.find('\'').expect("stage name ends");
                stage = after[..end].to_owned();
                rest = &after[end..];
            }
            (_, Some(h)) => {
                let after = &rest[h + 6..];
                let end = after.find("'''").expect("sh block ends");
                steps.push((stage.clone(), after[..end].to_owned()));
                rest = &after[end + 3..];
            }
            _ => return steps,
        }
    }
}

/// `K = 'V'` lines of the pipeline's `environment` block.
fn environment(jf: &str) -> Vec<(String, String)> {
    let start = jf.find("environment {").expect("environment block");
    let block = &jf[start..start + jf[start..].find('}').expect("block end")];
    block
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        })
        .collect()
}

struct Job {
    wd: Workdir,
    root: PathBuf,
    env: Vec<(String, String)>,
}

impl Job {
    /// Runs every shell step; `Err((stage, output))` at the first that fails.
    fn run(&self) -> Result<String, (String, String)> {
        let mut log = String::new();
        for (stage, script) in shell_steps(&jenkinsfile()) {
            let out = Command::new("bash")
                .args(["-eu", "-c", &script])
                .current_dir(self.wd.path())
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output()
                .expect("run bash");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            log.push_str(&format!("== {stage}\n{text}"));
            if !out.status.success() {
                return Err((stage, log));
            }
        }
        Ok(log)
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

#[test]
fn jenkinsfile_steps_plan_summarise_test_and_apply() {
    let jf = jenkinsfile();
    let stages: Vec<String> = shell_steps(&jf).into_iter().map(|(s, _)| s).collect();
    assert_eq!(stages, ["Format", "Validate", "Plan", "Test", "Apply"]);

    let env = TestEnv::get();
    let tmp = tempfile::tempdir().expect("tempdir");
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(21), &package).expect("package");
    // The infra repository: the quickstart as environments/dev.
    let files: Vec<(String, String)> = example_files("quickstart")
        .into_iter()
        .map(|(n, c)| (format!("environments/dev/{n}"), c))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let wd = Workdir::new(&refs);
    let root = wd.path().join("environments/dev");
    let provider_dir = PathBuf::from(
        std::env::var("EP_PROVIDER_BIN").expect("EP_PROVIDER_BIN (scripts/test sets it)"),
    );
    let terraform_dir = env.terraform.parent().expect("terraform's directory");
    let path = format!(
        "{}:{}:{}",
        terraform_dir.display(),
        provider_dir.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repository = format!("ep/jenkins-{}", std::process::id());
    let mut job_env = environment(&jf);
    assert!(
        job_env.contains(&("TF_IN_AUTOMATION".into(), "1".into())),
        "{job_env:?}"
    );
    job_env.extend([
        ("TF_ROOT".to_owned(), "environments/dev".to_owned()),
        ("PATH".to_owned(), path),
        (
            "TF_CLI_CONFIG_FILE".to_owned(),
            wd.file(".terraformrc").display().to_string(),
        ),
        ("CHECKPOINT_DISABLE".to_owned(), "1".to_owned()),
        (
            "TF_VAR_deployment_package".to_owned(),
            package.display().to_string(),
        ),
        ("TF_VAR_aws_endpoint".to_owned(), env.moto.clone()),
        (
            "TF_VAR_registry_endpoint".to_owned(),
            format!("http://{}", env.auth_registry),
        ),
        ("TF_VAR_repository".to_owned(), repository.clone()),
    ]);
    let job = Job {
        wd,
        root,
        env: job_env,
    };

    // A badly formatted file stops the job at its first stage.
    std::fs::write(job.root.join("extra.tf"), "locals {\nx=1\n}\n").expect("write");
    let (stage, log) = job.run().expect_err("fmt -check must fail");
    assert_eq!(stage, "Format", "{log}");
    std::fs::remove_file(job.root.join("extra.tf")).expect("remove");

    // First run: changes, summarised; tests pass as JUnit; approved; applied.
    let log = job
        .run()
        .unwrap_or_else(|(s, l)| panic!("stage {s} failed:\n{l}"));
    assert_eq!(job.file("plan.exitcode").trim(), "2", "{log}");
    let summary = job.file("plan-summary.txt");
    assert!(
        summary.contains(&format!(
            "ep_image.cortex — {repository}: built and pushed (a new image)"
        )),
        "{summary}"
    );
    serde_json::from_str::<serde_json::Value>(&job.file("plan.json")).expect("plan.json");
    let junit = job.file("terraform-test.xml");
    assert!(
        junit.contains("<testsuites") && junit.contains("<testcase"),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(log.contains("Apply complete!"), "{log}");

    // Second run: nothing to change, nothing applied.
    let log = job
        .run()
        .unwrap_or_else(|(s, l)| panic!("stage {s} failed:\n{l}"));
    assert_eq!(job.file("plan.exitcode").trim(), "0", "{log}");
    assert!(log.contains("No changes: nothing to apply."), "{log}");

    let out = Command::new(&env.terraform)
        .args(["destroy", "-auto-approve", "-input=false", "-no-color"])
        .current_dir(&job.root)
        .envs(job.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("terraform destroy");
    assert!(out.status.success(), "destroy: {out:?}");
}
