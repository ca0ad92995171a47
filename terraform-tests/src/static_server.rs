//! A static file server (`scripts/lib/static_server.py`) on a free port,
//! stopped on drop: a provider network mirror, a Maven-layout repository.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::consul::{scripts_lib, tools_python};

/// A running static file server.
pub struct StaticServer {
    child: Child,
    port: u16,
    https: bool,
    dir: tempfile::TempDir,
}

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct StaticOptions {
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require HTTP Basic authentication with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// Break off the first `count` GETs whose path ends with `matching` after
    /// `bytes` of the body: `(bytes, count, matching)`.
    pub drop: Option<(u64, u32, String)>,
    /// Ignore `Range` headers (always 200 with the whole file).
    pub no_ranges: bool,
}

impl StaticServer {
    /// Serves `root`; over HTTPS with `tls = Some((cert, key))`. Panics when
    /// the server does not start (a test set-up failure).
    pub fn start(root: &Path, tls: Option<(PathBuf, PathBuf)>) -> StaticServer {
        Self::start_with(
            root,
            StaticOptions {
                tls,
                ..Default::default()
            },
        )
    }

    /// Serves `root` as `opts` says.
    pub fn start_with(root: &Path, opts: StaticOptions) -> StaticServer {
        let tls = opts.tls.clone();
        let dir = tempfile::tempdir().expect("temp dir");
        let port_file = dir.path().join("port");
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let mut cmd = Command::new(tools_python());
        cmd.arg(scripts_lib().join("static_server.py"))
            .arg("--dir")
            .arg(root)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(dir.path().join("requests"));
        if let Some((cert, key)) = &tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        if let Some((user, password)) = &opts.basic_auth {
            // The password goes through a file, never the command line.
            let f = dir.path().join("password");
            std::fs::write(&f, password).expect("password file");
            cmd.arg("--basic-auth")
                .arg(format!("{user}:{}", f.display()));
        }
        if let Some((bytes, count, matching)) = &opts.drop {
            cmd.args([
                "--drop-after",
                &bytes.to_string(),
                "--drop-count",
                &count.to_string(),
            ])
            .args(["--drop-match", matching]);
        }
        if opts.no_ranges {
            cmd.arg("--no-ranges");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start static_server.py");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse::<u16>().ok())
            {
                return StaticServer {
                    child,
                    port,
                    https: tls.is_some(),
                    dir,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
                panic!("static server exited with {status}: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "static server: no port after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every request so far, one line each: `METHOD PATH STATUS BYTES [dropped] [RANGE]`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("requests"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `http(s)://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
