//! A static file server (`scripts/lib/static_server.py`) on a free port,
//! stopped on drop: a provider network mirror, a Maven-layout repository.

use std::path::{Path, PathBuf};

use crate::script_server::ScriptServer;

/// A running static file server.
pub struct StaticServer {
    server: ScriptServer,
    https: bool,
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
        let server = ScriptServer::start("static_server.py", |cmd, dir| {
            cmd.arg("--dir")
                .arg(root)
                .arg("--log")
                .arg(dir.join("requests"));
            if let Some((cert, key)) = &opts.tls {
                cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            }
            if let Some((user, password)) = &opts.basic_auth {
                // The password goes through a file, never the command line.
                let f = dir.join("password");
                std::fs::write(&f, password)?;
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
            Ok(())
        })
        .unwrap_or_else(|e| panic!("static server: {e}"));
        StaticServer {
            server,
            https: opts.tls.is_some(),
        }
    }

    /// Every request so far, one line each: `METHOD PATH STATUS BYTES [dropped] [RANGE]`.
    pub fn requests(&self) -> Vec<String> {
        self.server.lines("requests")
    }

    /// `http(s)://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.server.port())
    }
}
