//! One Terraform working directory driven through the real CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::TestEnv;

/// What one terraform command printed.
#[derive(Debug)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// A Terraform working directory in a temp dir, wired to the provider mirror.
pub struct Workdir {
    dir: tempfile::TempDir,
    env: &'static TestEnv,
    extra_env: Vec<(String, String)>,
}

impl Workdir {
    /// A new directory holding `files` (name, content).
    pub fn new(files: &[(&str, &str)]) -> Workdir {
        let env = TestEnv::get();
        let dir = tempfile::Builder::new()
            .prefix("ep-tf-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let cli_config = format!(
            r#"provider_installation {{
  filesystem_mirror {{
    path    = "{}"
    include = ["registry.terraform.io/{}"]
  }}
}}
"#,
            env.mirror.display(),
            crate::PROVIDER_SOURCE
        );
        let wd = Workdir {
            dir,
            env,
            extra_env: Vec::new(),
        };
        wd.write(".terraformrc", &cli_config);
        for (name, content) in files {
            wd.write(name, content);
        }
        wd
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (or replaces) a file in the directory.
    pub fn write(&self, name: &str, content: &str) {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.extra_env.push((k.to_owned(), v.to_owned()));
    }

    /// A path inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `terraform <args>` command for this directory, not yet started
    /// (for tests that signal or time it).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.env.terraform);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join(".terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("NO_COLOR", "1")
            .env_remove("TF_REATTACH_PROVIDERS")
            .env_remove("TF_DISABLE_PLUGIN_TLS");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `terraform <args>` here and returns what happened.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.env.terraform.display()));
        Output::from(out)
    }

    /// Starts `terraform apply`, waits (at most `within`) until `ready()`
    /// holds, lets it run `settle` longer, then sends it SIGINT as Ctrl-C
    /// does. Returns what Terraform printed and how long it took to exit
    /// after the signal.
    pub fn apply_interrupted(
        &self,
        ready: impl Fn() -> bool,
        within: Duration,
        settle: Duration,
    ) -> (Output, Duration) {
        let child = self
            .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start terraform: {e}"));
        let waited = Instant::now();
        while !ready() {
            assert!(
                waited.elapsed() < within,
                "what the interrupt waits for did not happen within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(settle);
        let interrupted = Instant::now();
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(kill.success(), "kill -INT failed");
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for terraform: {e}"));
        (Output::from(out), interrupted.elapsed())
    }

    /// [`apply_interrupted`](Self::apply_interrupted) for an apply that must
    /// stop promptly, as every long operation of the provider promises:
    /// Terraform exits with an error within 5 s of the signal. What it printed.
    pub fn apply_stopped_by_ctrl_c(
        &self,
        ready: impl Fn() -> bool,
        within: Duration,
        settle: Duration,
    ) -> Output {
        let (out, took) = self.apply_interrupted(ready, within, settle);
        assert!(
            took < Duration::from_secs(5),
            "took {took:?} to stop after Ctrl-C:\n{}",
            out.all()
        );
        assert_ne!(out.code, 0, "an interrupted apply fails:\n{}", out.all());
        out
    }

    /// Runs a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.code,
            0,
            "terraform {} failed:\n{}",
            args.join(" "),
            out.all()
        );
        out
    }

    /// `terraform init`.
    pub fn init(&self) -> Output {
        self.ok(&["init", "-input=false", "-no-color"])
    }

    /// `terraform apply -auto-approve`.
    pub fn apply(&self) -> Output {
        self.ok(&["apply", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `terraform validate`, which must fail; its whole output (to look for
    /// the diagnostics in).
    pub fn validate_fails(&self) -> String {
        let out = self.run(&["validate", "-no-color"]);
        assert_ne!(out.code, 0, "validate passed:\n{}", out.all());
        out.all()
    }

    /// `terraform validate` fails, and its output holds every one of
    /// `expected` (summaries, or the quoted configuration lines Terraform
    /// points at); the output, for further checks.
    pub fn validate_fails_with(&self, expected: &[&str]) -> String {
        let text = self.validate_fails();
        for e in expected {
            assert!(text.contains(e), "{e}:\n{text}");
        }
        text
    }

    /// Fails unless a plan (with or without refresh) shows no changes.
    pub fn assert_plan_empty(&self, refresh: bool) {
        let refresh_arg = format!("-refresh={refresh}");
        let out = self.run(&[
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            &refresh_arg,
        ]);
        assert_eq!(
            out.code,
            0,
            "plan with {refresh_arg} is not empty (perpetual diff?):\n{}",
            out.all()
        );
    }

    /// `terraform show -json` of the state, parsed.
    pub fn state_json(&self) -> serde_json::Value {
        let out = self.ok(&["show", "-json", "-no-color"]);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("show -json is not JSON: {e}\n{}", out.stdout))
    }

    /// The attribute values of the resource (or data source) at `address`.
    pub fn resource_values(&self, address: &str) -> serde_json::Value {
        let state = self.state_json();
        find_resource(&state["values"]["root_module"], address)
            .unwrap_or_else(|| panic!("{address} not in state:\n{state:#}"))
    }

    /// `terraform output -json`, parsed into name → value.
    pub fn outputs(&self) -> serde_json::Value {
        let out = self.ok(&["output", "-json", "-no-color"]);
        let parsed: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("output -json is not JSON: {e}"));
        let mut m = serde_json::Map::new();
        if let Some(o) = parsed.as_object() {
            for (k, v) in o {
                m.insert(k.clone(), v["value"].clone());
            }
        }
        serde_json::Value::Object(m)
    }
}

fn find_resource(module: &serde_json::Value, address: &str) -> Option<serde_json::Value> {
    module["resources"]
        .as_array()?
        .iter()
        .find(|r| r["address"] == address)
        .map(|r| r["values"].clone())
}
