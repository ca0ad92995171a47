//! A fault-injecting HTTP/1.1 proxy in front of a registry, on loopback.
//!
//! Each client connection carries one request (the proxy answers with
//! `Connection: close`). Per `/v2/` request a seeded RNG decides whether to
//! answer 503, 429 (`Retry-After: 0`) or drop the connection instead of
//! forwarding. Optionally the proxy also plays a bearer-token registry:
//! `/v2/` requests need a token from its `/token` endpoint, obtained with
//! HTTP basic credentials, valid for the repositories in its scope, until
//! it expires or is revoked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy did to a request instead of forwarding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answered 503.
    Unavailable,
    /// Answered 429 with `Retry-After: 0`.
    TooManyRequests,
    /// Closed the connection without an answer.
    Drop,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// Whether it was forwarded to the upstream registry.
    pub forwarded: bool,
}

/// Bearer-token front settings.
#[derive(Clone, Debug)]
pub struct BearerFront {
    /// Basic credentials the token endpoint accepts.
    pub user: String,
    /// Password for `user`.
    pub password: String,
    /// Token lifetime announced and enforced.
    pub ttl: Duration,
}

/// Proxy settings.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The registry to forward to.
    pub upstream: SocketAddr,
    /// Share of `/v2/` requests that get a fault (0.0 = none).
    pub fault_rate: f64,
    /// RNG seed for fault decisions.
    pub seed: u64,
    /// Require bearer tokens.
    pub bearer: Option<BearerFront>,
}

struct State {
    cfg: ProxyConfig,
    addr: SocketAddr,
    rng: Mutex<rand::rngs::StdRng>,
    log: Mutex<Vec<LoggedRequest>>,
    tokens: Mutex<HashMap<String, (Instant, String)>>,
    token_requests: AtomicU64,
    next_token: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Retries patient enough to get through a 20 % fault rate, with short waits.
pub fn patient_retry() -> ep_imagebuild::registry::RetryPolicy {
    ep_imagebuild::registry::RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(1),
    }
}

impl FaultProxy {
    /// A registry client that reaches this proxy's host over plain HTTP.
    pub fn client(
        &self,
        retry: ep_imagebuild::registry::RetryPolicy,
    ) -> ep_imagebuild::registry::RegistryClient {
        let mut endpoints = HashMap::new();
        endpoints.insert(self.host_port(), self.url());
        ep_imagebuild::registry::RegistryClient::new(ep_imagebuild::registry::ClientOptions {
            endpoint_overrides: endpoints,
            retry,
            ..Default::default()
        })
        .expect("registry client")
    }

    /// Starts listening on 127.0.0.1 (ephemeral port).
    pub async fn start(cfg: ProxyConfig) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(State {
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(cfg.seed)),
            cfg,
            addr,
            log: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            token_requests: AtomicU64::new(0),
            next_token: AtomicU64::new(1),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = handle(st, conn).await;
                });
            }
        });
        FaultProxy { state, task }
    }

    /// `host:port` of the proxy.
    pub fn host_port(&self) -> String {
        self.state.addr.to_string()
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets all issued tokens: the next request with one gets a 401.
    pub fn revoke_tokens(&self) {
        if let Ok(mut t) = self.state.tokens.lock() {
            t.clear();
        }
    }

    /// How many tokens were issued.
    pub fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Completed-upload requests forwarded to the registry (`PUT …/blobs/uploads/…?digest=`),
    /// counted per digest.
    pub fn uploads_by_digest(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.requests() {
            if !(r.forwarded && r.method == "PUT" && r.target.contains("/blobs/uploads/")) {
                continue;
            }
            let query = r.target.split_once('?').map(|(_, q)| q).unwrap_or("");
            if let Some((_, d)) =
                url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "digest")
            {
                *out.entry(d.into_owned()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Forwarded `PATCH` requests (streamed blob bodies).
    pub fn forwarded_patches(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.forwarded && r.method == "PATCH")
            .count()
    }

    /// Requests that got a fault.
    pub fn faults(&self) -> usize {
        self.requests().iter().filter(|r| r.fault.is_some()).count()
    }
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> u64 {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(4096);
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let raw = buf[..pos + 4].to_vec();
            let rest = buf[pos + 4..].to_vec();
            let text = String::from_utf8_lossy(&raw).into_owned();
            let mut lines = text.split("\r\n");
            let first = lines.next().unwrap_or("");
            let mut parts = first.split(' ');
            let method = parts.next().unwrap_or("").to_owned();
            let target = parts.next().unwrap_or("").to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Ok(Some(Head {
                method,
                target,
                headers,
                raw,
                rest,
            }));
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Reads and discards the rest of the request body (by Content-Length).
async fn drain(conn: &mut TcpStream, head: &Head) -> std::io::Result<()> {
    let mut left = head.content_length().saturating_sub(head.rest.len() as u64);
    let mut tmp = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = tmp.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = conn.read(&mut tmp[..want]).await?;
        if n == 0 {
            break;
        }
        left -= n as u64;
    }
    Ok(())
}

async fn respond(
    conn: &mut TcpStream,
    status: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes()).await?;
    conn.write_all(body).await?;
    conn.flush().await?;
    let _ = conn.shutdown().await;
    Ok(())
}

fn log(st: &State, head: &Head, fault: Option<Fault>, forwarded: bool) {
    if let Ok(mut l) = st.log.lock() {
        l.push(LoggedRequest {
            method: head.method.clone(),
            target: head.target.clone(),
            fault,
            forwarded,
        });
    }
}

/// `/v2/<name>/(blobs|manifests|tags)/…` → `<name>`.
fn repo_of(path: &str) -> Option<&str> {
    let p = path.split('?').next()?.strip_prefix("/v2/")?;
    ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|m| p.rfind(m).map(|i| &p[..i]))
        .max_by_key(|s| s.len())
}

async fn handle(st: Arc<State>, mut conn: TcpStream) -> std::io::Result<()> {
    let Some(head) = read_head(&mut conn).await? else {
        return Ok(());
    };
    let path = head.target.split('?').next().unwrap_or("").to_owned();

    if let Some(front) = &st.cfg.bearer {
        if path == "/token" {
            log(&st, &head, None, false);
            return token_endpoint(&st, front, &mut conn, &head).await;
        }
        if path.starts_with("/v2/") && !token_ok(&st, &head, &path) {
            log(&st, &head, None, false);
            drain(&mut conn, &head).await?;
            let scope = repo_of(&path)
                .map(|r| format!(",scope=\"repository:{r}:pull\""))
                .unwrap_or_default();
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"fault-proxy\"{scope}",
                st.addr
            );
            let body =
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            return respond(
                &mut conn,
                "401 Unauthorized",
                &[
                    ("WWW-Authenticate", challenge),
                    ("Content-Type", "application/json".to_owned()),
                ],
                body,
            )
            .await;
        }
    }

    let fault = if path.starts_with("/v2/") && st.cfg.fault_rate > 0.0 {
        let mut rng = st
            .rng
            .lock()
            .map_err(|_| std::io::Error::other("rng poisoned"))?;
        if rng.random_bool(st.cfg.fault_rate.clamp(0.0, 1.0)) {
            Some(match rng.random_range(0..3) {
                0 => Fault::Unavailable,
                1 => Fault::TooManyRequests,
                _ => Fault::Drop,
            })
        } else {
            None
        }
    } else {
        None
    };
    log(&st, &head, fault, fault.is_none());
    match fault {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Unavailable) => {
            drain(&mut conn, &head).await?;
            let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#;
            return respond(
                &mut conn,
                "503 Service Unavailable",
                &[("Content-Type", "application/json".to_owned())],
                body,
            )
            .await;
        }
        Some(Fault::TooManyRequests) => {
            drain(&mut conn, &head).await?;
            let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected fault"}]}"#;
            return respond(
                &mut conn,
                "429 Too Many Requests",
                &[
                    ("Retry-After", "0".to_owned()),
                    ("Content-Type", "application/json".to_owned()),
                ],
                body,
            )
            .await;
        }
        None => {}
    }
    forward(&st, conn, head).await
}

async fn forward(st: &State, conn: TcpStream, head: Head) -> std::io::Result<()> {
    let mut up = TcpStream::connect(st.cfg.upstream).await?;
    // Same request head, but one request per connection and no credentials
    // for the (unauthenticated) upstream.
    let text = String::from_utf8_lossy(&head.raw).into_owned();
    let mut out = String::new();
    for (i, line) in text.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if i > 0
            && (lower.starts_with("connection:")
                || lower.starts_with("authorization:")
                || lower.starts_with("keep-alive:"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes()).await?;
    up.write_all(&head.rest).await?;

    let (mut cr, mut cw) = conn.into_split();
    let (mut ur, mut uw) = up.into_split();
    let upload = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
    });
    let _ = tokio::io::copy(&mut ur, &mut cw).await;
    let _ = cw.shutdown().await;
    upload.abort();
    Ok(())
}

async fn token_endpoint(
    st: &State,
    front: &BearerFront,
    conn: &mut TcpStream,
    head: &Head,
) -> std::io::Result<()> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", front.user, front.password))
    );
    if head.header("authorization") != Some(expected.as_str()) {
        return respond(
            conn,
            "401 Unauthorized",
            &[],
            br#"{"details":"bad credentials"}"#,
        )
        .await;
    }
    let query = head.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .collect();
    st.token_requests.fetch_add(1, Ordering::SeqCst);
    let n = st.next_token.fetch_add(1, Ordering::SeqCst);
    let token = format!("tok-{n}-{:x}", rand::rng().random::<u64>());
    if let Ok(mut t) = st.tokens.lock() {
        t.insert(
            token.clone(),
            (Instant::now() + front.ttl, scopes.join(" ")),
        );
    }
    let body = serde_json::json!({ "token": token, "expires_in": front.ttl.as_secs() });
    respond(
        conn,
        "200 OK",
        &[("Content-Type", "application/json".to_owned())],
        body.to_string().as_bytes(),
    )
    .await
}

fn token_ok(st: &State, head: &Head, path: &str) -> bool {
    let Some(tok) = head
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Ok(tokens) = st.tokens.lock() else {
        return false;
    };
    let Some((exp, scopes)) = tokens.get(tok) else {
        return false;
    };
    if *exp <= Instant::now() {
        return false;
    }
    match repo_of(path) {
        Some(repo) => scopes
            .split(' ')
            .any(|s| s.starts_with(&format!("repository:{repo}:"))),
        None => true,
    }
}
