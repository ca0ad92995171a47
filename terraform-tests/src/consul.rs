//! A private Consul test double (`scripts/lib/consul_double.py`) per test.
//!
//! `scripts/testenv` runs one shared double on 127.0.0.1:8500 (`EP_TESTENV_CONSUL`,
//! `EP_TESTENV_CONSUL_TOKEN`); tests that inject faults, stop the server or need an empty store
//! start their own with [`ConsulDouble::start`], on a free port, stopped on drop.
//!
//! ```no_run
//! use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions, Fault};
//! let consul = ConsulDouble::start(ConsulDoubleOptions::with_token("s3cret")).unwrap();
//! // Let two transactions through, then stop listening (a server that dies mid-apply).
//! consul.fault(&Fault::down().after(2).matching("PUT /v1/txn")).unwrap();
//! let state = consul.state().unwrap(); // {"Index", "Entries": [...], ...}
//! # let _ = state;
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::script_server::ScriptServer;

/// Failures of the double's lifecycle or of a request to it.
#[derive(Debug, thiserror::Error)]
pub enum ConsulDoubleError {
    /// The double could not be started, did not report its port in time, or exited.
    #[error("the Consul double did not start: {0}")]
    Startup(String),
    /// A request failed at the socket level.
    #[error("request {request} to the Consul double failed: {source}")]
    Io {
        /// `METHOD path`.
        request: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The answer could not be parsed.
    #[error("bad answer to {request}: {detail}")]
    BadAnswer {
        /// `METHOD path`.
        request: String,
        /// What was wrong.
        detail: String,
    },
}

/// How the double is started.
#[derive(Debug, Clone, Default)]
pub struct ConsulDoubleOptions {
    /// ACL token every KV and txn request must carry (`X-Consul-Token`); `None` = ACLs off.
    pub token: Option<String>,
    /// 64 (Consul before 1.14, the default) or 128.
    pub txn_max_ops: Option<u32>,
    /// Request body limit (Consul's default 512 KiB).
    pub max_body_bytes: Option<u64>,
    /// Persist the store here, so a restarted double keeps what was written.
    pub state_file: Option<PathBuf>,
    /// Refuse the deprecated `?token=` query parameter (Consul still accepts it).
    pub reject_query_token: bool,
    /// Listen on this port instead of a free one (to restart a stopped double where it was).
    pub port: Option<u16>,
    /// Behave as Consul Enterprise with namespaces: `?ns=` on KV requests and
    /// `Namespace` in transaction operations select a keyspace (refused otherwise).
    pub namespaces: bool,
    /// Serve HTTPS with this PEM certificate and key. [`ConsulDouble::request`] and the
    /// admin helpers speak plain HTTP, so they do not work on such a double.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl ConsulDoubleOptions {
    /// ACLs on with this token, everything else default.
    pub fn with_token(token: &str) -> Self {
        ConsulDoubleOptions {
            token: Some(token.to_owned()),
            ..Default::default()
        }
    }
}

/// How injected failures look to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultMode {
    /// Answer with this HTTP status and a short text body.
    Status(u16),
    /// Close the connection without an answer.
    Close,
    /// Stop listening (connections are refused afterwards) and exit.
    Down,
}

/// A failure to inject: after `after` matching requests pass, the next `count` fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The failure.
    pub mode: FaultMode,
    /// Matching requests let through first.
    pub after: u64,
    /// Failures to inject; `None` = every matching request from then on.
    pub count: Option<u64>,
    /// Only requests whose `METHOD /path` contains this string match (all when `None`).
    pub matching: Option<String>,
}

impl Fault {
    /// Answer `status` to every matching request.
    pub fn status(status: u16) -> Self {
        Fault {
            mode: FaultMode::Status(status),
            after: 0,
            count: None,
            matching: None,
        }
    }
    /// Drop every matching connection without an answer.
    pub fn close() -> Self {
        Fault {
            mode: FaultMode::Close,
            ..Fault::status(500)
        }
    }
    /// Stop the server at the first matching request.
    pub fn down() -> Self {
        Fault {
            mode: FaultMode::Down,
            ..Fault::status(500)
        }
    }
    /// Let `n` matching requests through first.
    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }
    /// Fail only `n` requests.
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }
    /// Only requests whose `METHOD /path` contains `s` (e.g. `"PUT /v1/txn"`).
    pub fn matching(mut self, s: &str) -> Self {
        self.matching = Some(s.to_owned());
        self
    }
}

/// One answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running double, stopped (SIGKILL) on drop.
#[derive(Debug)]
pub struct ConsulDouble {
    server: ScriptServer,
    port: u16,
    token: Option<String>,
    https: bool,
}

/// The tools venv's Python (`EP_TESTENV_TOOLS_PYTHON`, else `$EP_CACHE/venv-tools/bin/python`).
pub fn tools_python() -> PathBuf {
    if let Some(p) = std::env::var_os("EP_TESTENV_TOOLS_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("EP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/ep-provider")
        });
    cache.join("venv-tools/bin/python")
}

/// `scripts/lib` of this source tree.
pub fn scripts_lib() -> PathBuf {
    crate::repo_root().join("scripts/lib")
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl ConsulDouble {
    /// Starts a double on a free 127.0.0.1 port and waits until it listens (30 s at most).
    pub fn start(opts: ConsulDoubleOptions) -> Result<Self, ConsulDoubleError> {
        let server = ScriptServer::start("consul_double.py", |cmd, dir| {
            cmd.args(["--port", &opts.port.unwrap_or(0).to_string()]);
            if let Some(token) = &opts.token {
                // The token goes through a file, never the command line.
                let tf = dir.join("token");
                std::fs::write(&tf, token)?;
                cmd.arg("--token-file").arg(&tf);
            }
            if let Some(n) = opts.txn_max_ops {
                cmd.args(["--txn-max-ops", &n.to_string()]);
            }
            if let Some(n) = opts.max_body_bytes {
                cmd.args(["--max-body-bytes", &n.to_string()]);
            }
            if let Some(f) = &opts.state_file {
                cmd.arg("--state-file").arg(f);
            }
            if opts.reject_query_token {
                cmd.arg("--reject-query-token");
            }
            if opts.namespaces {
                cmd.arg("--namespaces");
            }
            if let Some((cert, key)) = &opts.tls {
                cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            }
            cmd.env_remove("CONSUL_DOUBLE_TOKEN");
            Ok(())
        })
        .map_err(ConsulDoubleError::Startup)?;
        Ok(ConsulDouble {
            port: server.port(),
            server,
            token: opts.token,
            https: opts.tls.is_some(),
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with TLS).
    pub fn address(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ACL token, when ACLs are on.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether the process still runs (false after a [`FaultMode::Down`] fault fired).
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// One HTTP/1.1 request (`Connection: close`), with the token in `X-Consul-Token` when
    /// ACLs are on. `path` includes the query string.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Answer, ConsulDoubleError> {
        self.request_with(method, path, body, self.token.as_deref())
    }

    /// Like [`ConsulDouble::request`] with an explicit token (or none).
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> Result<Answer, ConsulDoubleError> {
        let request = format!("{method} {path}");
        let io = |source| ConsulDoubleError::Io {
            request: request.clone(),
            source,
        };
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("X-Consul-Token: {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(io)?;
        s.write_all(body).map_err(io)?;
        let _ = s.shutdown(Shutdown::Write);
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(io)?;
        parse_answer(&raw).ok_or_else(|| ConsulDoubleError::BadAnswer {
            request: request.clone(),
            detail: format!("{:?}", String::from_utf8_lossy(&raw)),
        })
    }

    fn admin(&self, action: &str) -> Result<(), ConsulDoubleError> {
        let a = self.request_with("POST", &format!("/_double/{action}"), b"", None)?;
        if a.status == 200 {
            Ok(())
        } else {
            Err(ConsulDoubleError::BadAnswer {
                request: format!("POST /_double/{action}"),
                detail: format!("{} {}", a.status, a.text()),
            })
        }
    }

    /// Injects `fault` (replacing any earlier one).
    pub fn fault(&self, fault: &Fault) -> Result<(), ConsulDoubleError> {
        let (mode, status) = match fault.mode {
            FaultMode::Status(s) => ("status", s),
            FaultMode::Close => ("close", 500),
            FaultMode::Down => ("down", 500),
        };
        let mut q = format!(
            "fault?mode={mode}&status={status}&after={}&count={}",
            fault.after,
            fault.count.map(|c| c as i64).unwrap_or(-1)
        );
        if let Some(m) = &fault.matching {
            q.push_str(&format!("&match={}", pct(m)));
        }
        self.admin(&q)
    }

    /// Makes another writer set `key` to `value` just before the first request matching
    /// `matching` (`METHOD /path` substring, e.g. `"PUT /v1/txn"`): a concurrent write between
    /// a client's read and its write. Fires once.
    pub fn race(&self, key: &str, value: &str, matching: &str) -> Result<(), ConsulDoubleError> {
        self.admin(&format!(
            "race?key={}&value={}&match={}",
            pct(key),
            pct(value),
            pct(matching)
        ))
    }

    /// Removes any injected fault.
    pub fn clear_faults(&self) -> Result<(), ConsulDoubleError> {
        self.admin("fault?mode=none")
    }

    /// Delays every answer by `ms` milliseconds (0 = off).
    pub fn delay(&self, ms: u64) -> Result<(), ConsulDoubleError> {
        self.admin(&format!("delay?ms={ms}"))
    }

    /// Empties the store and clears faults.
    pub fn reset(&self) -> Result<(), ConsulDoubleError> {
        self.admin("reset")
    }

    /// `{"Index", "Requests", "FaultsInjected", "Entries": [KV entries as Consul returns them]}`.
    pub fn state(&self) -> Result<serde_json::Value, ConsulDoubleError> {
        let a = self.request_with("GET", "/_double/state", b"", None)?;
        serde_json::from_slice(&a.body).map_err(|e| ConsulDoubleError::BadAnswer {
            request: "GET /_double/state".into(),
            detail: e.to_string(),
        })
    }
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}
