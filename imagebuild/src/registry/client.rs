//! The registry client: endpoint resolution, authentication, retries and the
//! distribution API operations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE,
};
use reqwest::{Method, StatusCode};
use url::Url;

use super::auth::{parse_challenge, AuthProvider, Challenge, Credentials, TokenResponse};
use super::error::{RegistryError, RegistryMessage, Target};
use super::upload::{Verdict, VerifyingStream};
use super::{
    media_types, valid_tag, BlobData, BlobSource, FetchedManifest, ImagePush, ImagePushReport,
    ManifestHead, ManifestPushOutcome, ManifestStatus, MountOutcome, PushOutcome, RepoRef,
};
use crate::digest::Digest;

/// Retry behaviour for 429, 5xx, timeouts and broken connections.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts per request (and per blob upload), at least 1.
    pub max_attempts: u32,
    /// First backoff; doubled on each retry, with jitter.
    pub initial_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// Ceiling on a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (1-based): exponential, with the
    /// upper half jittered so concurrent clients spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let factor: f64 = rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0);
        exp.mul_f64(factor)
    }
}

/// Options for a [`RegistryClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Registries (`host[:port]`) that may be reached over plain HTTP or with
    /// TLS verification off: HTTPS without verification is tried first,
    /// plain HTTP if that cannot connect. Loopback registries (`localhost`,
    /// 127.0.0.0/8, `[::1]`) are always treated so, plain HTTP first.
    pub insecure_registries: Vec<String>,
    /// Registry host → base URL (`http://127.0.0.1:5002`) to use instead of
    /// `https://<host>`, e.g. to reach an emulated ECR's registry. The
    /// credentials are still those of the registry named.
    pub endpoint_overrides: HashMap<String, String>,
    /// Retries.
    pub retry: RetryPolicy,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for each non-upload request.
    pub request_timeout: Duration,
    /// Timeout for each blob body request (PATCH/PUT).
    pub upload_timeout: Duration,
    /// Blob uploads running at once, across all pushes sharing the client.
    pub max_parallel_uploads: usize,
    /// Blobs up to this size go up in one `PUT`; larger ones as one streamed
    /// `PATCH` followed by an empty `PUT` (ECR rejects chunks < 5 MiB and
    /// stalls on some `Content-Range`s, so no chunking).
    pub monolithic_threshold: u64,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            endpoint_overrides: HashMap::new(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            upload_timeout: Duration::from_secs(3600),
            max_parallel_uploads: 4,
            monolithic_threshold: 10 * 1024 * 1024,
            user_agent: concat!("ep-imagebuild/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Per-registry state: where it is, how it authenticates, cached tokens.
#[derive(Debug)]
struct RegState {
    name: String,
    ready: tokio::sync::OnceCell<Endpoint>,
    challenge: Mutex<Option<Challenge>>,
    /// Bearer tokens by scope set, with their expiry.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// Bumped each time credentials are invalidated, so that concurrent
    /// requests failing with the same stale credentials invalidate once.
    auth_gen: Mutex<u64>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    base: Url,
    /// Use the client without TLS verification.
    insecure: bool,
}

type FlightMap = HashMap<(String, Digest), Arc<tokio::sync::Mutex<()>>>;

struct Inner {
    opts: ClientOptions,
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    auth: RwLock<HashMap<String, Arc<dyn AuthProvider>>>,
    default_auth: RwLock<Option<Arc<dyn AuthProvider>>>,
    registries: Mutex<HashMap<String, Arc<RegState>>>,
    uploads: tokio::sync::Semaphore,
    inflight: Arc<Mutex<FlightMap>>,
    /// Repositories where a blob is known to exist, per (registry, digest):
    /// mount candidates for later pushes to other repositories.
    known: Mutex<HashMap<(String, Digest), Vec<String>>>,
}

/// An OCI distribution client. Cheap to clone (shared state behind an
/// `Arc`); one per process serves any number of concurrent pushes, which
/// then share connection pools, tokens and upload de-duplication.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// Holds the single-flight slot for one (registry, digest); frees the map
/// entry when nobody else waits for it.
struct FlightGuard {
    map: Arc<Mutex<FlightMap>>,
    key: (String, Digest),
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.guard.take();
        if let Ok(mut m) = self.map.lock() {
            if m.get(&self.key).is_some_and(|e| Arc::strong_count(e) == 1) {
                m.remove(&self.key);
            }
        }
    }
}

/// How one attempt of a blob upload failed.
enum AttemptError {
    Retry(RegistryError, Option<Duration>),
    Fatal(RegistryError),
}

const MAX_TAG_PAGES: usize = 10_000;

impl RegistryClient {
    /// A client with these options and no credentials (anonymous everywhere
    /// until [`with_auth`](Self::with_auth) / [`with_default_auth`](Self::with_default_auth)).
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(opts.user_agent.clone())
                .connect_timeout(opts.connect_timeout)
                .tls_danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| RegistryError::InvalidArgument(format!("HTTP client: {e}")))
        };
        let http = build(false)?;
        let http_insecure = build(true)?;
        let permits = opts.max_parallel_uploads.max(1);
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                http,
                http_insecure,
                auth: RwLock::new(HashMap::new()),
                default_auth: RwLock::new(None),
                registries: Mutex::new(HashMap::new()),
                uploads: tokio::sync::Semaphore::new(permits),
                inflight: Arc::new(Mutex::new(HashMap::new())),
                known: Mutex::new(HashMap::new()),
                opts,
            }),
        })
    }

    /// Uses `auth` for `registry` (`host[:port]` as callers name it).
    pub fn with_auth(self, registry: &str, auth: Arc<dyn AuthProvider>) -> Self {
        self.set_auth(registry, auth);
        self
    }

    /// Uses `auth` for `registry` from now on (shared by all clones); cached
    /// tokens for that registry are dropped.
    pub fn set_auth(&self, registry: &str, auth: Arc<dyn AuthProvider>) {
        if let Ok(mut m) = self.inner.auth.write() {
            m.insert(registry.to_owned(), auth);
        }
        if let Some(st) = self
            .inner
            .registries
            .lock()
            .ok()
            .and_then(|m| m.get(registry).cloned())
        {
            if let Ok(mut t) = st.tokens.lock() {
                t.clear();
            }
        }
    }

    /// Uses `auth` for registries without their own provider (e.g. a
    /// [`DockerConfigAuth`](super::DockerConfigAuth)).
    pub fn with_default_auth(self, auth: Arc<dyn AuthProvider>) -> Self {
        if let Ok(mut d) = self.inner.default_auth.write() {
            *d = Some(auth);
        }
        self
    }

    fn provider(&self, registry: &str) -> Option<Arc<dyn AuthProvider>> {
        if let Some(p) = self
            .inner
            .auth
            .read()
            .ok()
            .and_then(|m| m.get(registry).cloned())
        {
            return Some(p);
        }
        self.inner.default_auth.read().ok().and_then(|d| d.clone())
    }

    fn reg_state(&self, registry: &str) -> Arc<RegState> {
        let mut m = match self.inner.registries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(registry.to_owned())
            .or_insert_with(|| {
                Arc::new(RegState {
                    name: registry.to_owned(),
                    ready: tokio::sync::OnceCell::new(),
                    challenge: Mutex::new(None),
                    tokens: Mutex::new(HashMap::new()),
                    auth_gen: Mutex::new(0),
                })
            })
            .clone()
    }

    fn http(&self, ep: &Endpoint) -> &reqwest::Client {
        if ep.insecure {
            &self.inner.http_insecure
        } else {
            &self.inner.http
        }
    }

    // ------------------------------------------------------------------ endpoint & ping

    /// Resolves the registry's base URL and learns its auth challenge from
    /// `GET /v2/`, once per registry per client.
    async fn endpoint(
        &self,
        reg: &RegState,
        op: &'static str,
        target: &Target,
    ) -> Result<Endpoint, RegistryError> {
        reg.ready
            .get_or_try_init(|| async {
                let name = reg.name.as_str();
                let candidates: Vec<Endpoint> =
                    if let Some(o) = self.inner.opts.endpoint_overrides.get(name) {
                        let base = Url::parse(o).map_err(|e| {
                            RegistryError::InvalidArgument(format!(
                                "endpoint override {o:?} for {name}: {e}"
                            ))
                        })?;
                        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
                            return Err(RegistryError::InvalidArgument(format!(
                                "endpoint override {o:?} for {name}: not an http(s) URL"
                            )));
                        }
                        let insecure = self
                            .inner
                            .opts
                            .insecure_registries
                            .iter()
                            .any(|r| r == name);
                        vec![Endpoint { base, insecure }]
                    } else {
                        let host = if matches!(name, "docker.io" | "index.docker.io") {
                            "registry-1.docker.io"
                        } else {
                            name
                        };
                        let parse = |scheme: &str| {
                            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                                RegistryError::InvalidArgument(format!("registry {name:?}: {e}"))
                            })
                        };
                        // Loopback registries are trusted as insecure, as Docker does.
                        if is_loopback(name)
                            || self
                                .inner
                                .opts
                                .insecure_registries
                                .iter()
                                .any(|r| r == name)
                        {
                            let https = Endpoint {
                                base: parse("https")?,
                                insecure: true,
                            };
                            let http = Endpoint {
                                base: parse("http")?,
                                insecure: true,
                            };
                            // A registry on loopback almost always speaks plain
                            // HTTP: ask that first and spare a TLS handshake.
                            if is_loopback(host) {
                                vec![http, https]
                            } else {
                                vec![https, http]
                            }
                        } else {
                            vec![Endpoint {
                                base: parse("https")?,
                                insecure: false,
                            }]
                        }
                    };
                let last = candidates.len() - 1;
                for (i, ep) in candidates.into_iter().enumerate() {
                    // Only the last candidate gets retries: a failing HTTPS
                    // probe of an insecure registry means "try HTTP".
                    match self.ping(&ep, op, target, i == last).await {
                        Ok(ch) => {
                            if let Ok(mut c) = reg.challenge.lock() {
                                *c = Some(ch);
                            }
                            return Ok(ep);
                        }
                        Err(e) if i == last => return Err(e),
                        Err(_) => {}
                    }
                }
                Err(RegistryError::InvalidArgument(format!(
                    "registry {name}: no endpoint"
                )))
            })
            .await
            .cloned()
    }

    async fn ping(
        &self,
        ep: &Endpoint,
        op: &'static str,
        target: &Target,
        retry: bool,
    ) -> Result<Challenge, RegistryError> {
        let url = join(&ep.base, "/v2/", op, target)?;
        let policy = &self.inner.opts.retry;
        let attempts = if retry { policy.max_attempts.max(1) } else { 1 };
        let timeout = if retry {
            self.inner.opts.request_timeout
        } else {
            self.inner.opts.connect_timeout.min(Duration::from_secs(10))
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self.http(ep).get(url.clone()).timeout(timeout).send().await;
            let delay = match res {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED {
                        let ch = resp
                            .headers()
                            .get_all(reqwest::header::WWW_AUTHENTICATE)
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .filter_map(parse_challenge)
                            .next()
                            .unwrap_or(Challenge::Basic);
                        return Ok(ch);
                    }
                    if !retryable_status(status) || attempt >= attempts {
                        // 200 or anything else: no auth known up front; a
                        // later 401 teaches us the challenge.
                        return Ok(Challenge::None);
                    }
                    retry_after(resp.headers(), policy)
                }
                Err(e) => {
                    if attempt >= attempts || !retryable_transport(&e) {
                        return Err(transport(op, target, &e));
                    }
                    None
                }
            };
            tokio::time::sleep(delay.unwrap_or_else(|| policy.backoff(attempt))).await;
        }
    }

    // ------------------------------------------------------------------ auth

    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        match self.provider(registry) {
            None => Ok(None),
            Some(p) => p
                .credentials(registry)
                .await
                .map_err(|source| RegistryError::Auth {
                    registry: registry.to_owned(),
                    source,
                }),
        }
    }

    /// The `Authorization` value for a request needing `scopes`, fetching a
    /// bearer token when the registry uses the token flow.
    async fn auth_header(
        &self,
        ep: &Endpoint,
        reg: &RegState,
        scopes: &[String],
        op: &'static str,
        target: &Target,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = reg.challenge.lock().ok().and_then(|c| c.clone());
        let creds = match &challenge {
            None | Some(Challenge::None) => return Ok(None),
            _ => self.credentials(&reg.name).await?,
        };
        match (challenge, creds) {
            (_, Some(Credentials::Bearer(t))) => Ok(Some(secret_header(&format!("Bearer {t}")))),
            (Some(Challenge::Basic), Some(Credentials::Basic(u, p))) => {
                Ok(Some(basic_header(&u, &p)))
            }
            (Some(Challenge::Basic), _) => Ok(None),
            (
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope: _,
                }),
                creds,
            ) => {
                let key = scopes.join(" ");
                if let Some((tok, exp)) = reg.tokens.lock().ok().and_then(|t| t.get(&key).cloned())
                {
                    if exp > Instant::now() {
                        return Ok(Some(secret_header(&format!("Bearer {tok}"))));
                    }
                }
                let tok = self
                    .fetch_token(
                        ep,
                        &realm,
                        service.as_deref(),
                        scopes,
                        creds.as_ref(),
                        op,
                        target,
                    )
                    .await?;
                Ok(Some(secret_header(&format!("Bearer {tok}"))))
            }
            (Some(Challenge::None) | None, _) => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
        op: &'static str,
        target: &Target,
    ) -> Result<String, RegistryError> {
        let mut url = ep
            .base
            .join(realm)
            .map_err(|_| RegistryError::InvalidResponse {
                operation: op,
                target: Box::new(target.clone()),
                message: "token realm is not a URL".to_owned(),
            })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let policy = &self.inner.opts.retry;
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let mut rb = self
                .http(ep)
                .get(url.clone())
                .timeout(self.inner.opts.request_timeout);
            if let Some(Credentials::Basic(u, p)) = creds {
                rb = rb.header(AUTHORIZATION, basic_header(u, p));
            }
            match rb.send().await {
                Ok(r) if retryable_status(r.status()) && attempt < policy.max_attempts => {
                    let d =
                        retry_after(r.headers(), policy).unwrap_or_else(|| policy.backoff(attempt));
                    tokio::time::sleep(d).await;
                }
                Ok(r) => break r,
                Err(e) if retryable_transport(&e) && attempt < policy.max_attempts => {
                    tokio::time::sleep(policy.backoff(attempt)).await;
                }
                Err(e) => return Err(transport(op, target, &e)),
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_body(resp).await;
            return Err(RegistryError::Unauthorized {
                operation: op,
                target: Box::new(target.clone()),
                status: status.as_u16(),
                detail,
            });
        }
        if !status.is_success() {
            return Err(status_error(op, target, resp).await);
        }
        let body = read_limited(resp, 1 << 20, op, target).await?;
        let (tok, ttl) = serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| RegistryError::InvalidResponse {
                operation: op,
                target: Box::new(target.clone()),
                message: "token server answer has no token".to_owned(),
            })?;
        // Renew a little early so a token does not expire in flight.
        let margin = (ttl / 10).min(Duration::from_secs(30));
        let reg = self.reg_state(&target.registry);
        if let Ok(mut t) = reg.tokens.lock() {
            t.insert(
                scopes.join(" "),
                (tok.clone(), Instant::now() + ttl - margin),
            );
        }
        Ok(tok)
    }

    fn auth_generation(reg: &RegState) -> u64 {
        reg.auth_gen.lock().map(|g| *g).unwrap_or(0)
    }

    /// The registry said 401 to credentials of generation `used`: forget
    /// cached credentials and tokens (unless a concurrent request already
    /// did) and learn the challenge it sent.
    fn unauthorized(&self, reg: &RegState, headers: &HeaderMap, used: u64) {
        if let Ok(mut g) = reg.auth_gen.lock() {
            if *g == used {
                if let Some(p) = self.provider(&reg.name) {
                    p.invalidate(&reg.name);
                }
                if let Ok(mut t) = reg.tokens.lock() {
                    t.clear();
                }
                *g += 1;
            }
        }
        if let Some(ch) = headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .next()
        {
            if let Ok(mut c) = reg.challenge.lock() {
                *c = Some(ch);
            }
        }
    }

    // ------------------------------------------------------------------ request execution

    /// Sends a replayable request with auth, one re-authentication on 401,
    /// and retries on 429/5xx/transport errors. Returns the final response
    /// whatever its status, except 401/403 which become errors.
    async fn execute(
        &self,
        op: &'static str,
        target: &Target,
        repo: &RepoRef,
        scopes: &[String],
        build: &(dyn Fn(&reqwest::Client, &Url) -> Result<reqwest::RequestBuilder, RegistryError>
              + Send
              + Sync),
    ) -> Result<reqwest::Response, RegistryError> {
        let reg = self.reg_state(&repo.registry);
        let ep = self.endpoint(&reg, op, target).await?;
        let policy = &self.inner.opts.retry;
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            attempt += 1;
            let generation = Self::auth_generation(&reg);
            let auth = self.auth_header(&ep, &reg, scopes, op, target).await?;
            let rb = build(self.http(&ep), &ep.base)?.timeout(self.inner.opts.request_timeout);
            let delay = match self.send_authorized(&ep, rb, auth).await {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && !reauthed {
                        reauthed = true;
                        self.unauthorized(&reg, resp.headers(), generation);
                        attempt -= 1;
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        let detail = error_body(resp).await;
                        return Err(RegistryError::Unauthorized {
                            operation: op,
                            target: Box::new(target.clone()),
                            status: status.as_u16(),
                            detail,
                        });
                    }
                    if retryable_status(status) && attempt < policy.max_attempts {
                        retry_after(resp.headers(), policy)
                    } else {
                        return Ok(resp);
                    }
                }
                Err(e) => {
                    if retryable_transport(&e) && attempt < policy.max_attempts {
                        None
                    } else {
                        return Err(transport(op, target, &e));
                    }
                }
            };
            tokio::time::sleep(delay.unwrap_or_else(|| policy.backoff(attempt))).await;
        }
    }

    /// Sends `rb`, with `auth` only when it goes to the registry's own
    /// origin: upload `Location`s and pagination links may point elsewhere
    /// (storage backends), which must not see the registry's credentials.
    async fn send_authorized(
        &self,
        ep: &Endpoint,
        rb: reqwest::RequestBuilder,
        auth: Option<HeaderValue>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut req = rb.build()?;
        if let Some(a) = auth {
            if req.url().origin() == ep.base.origin() {
                req.headers_mut().insert(AUTHORIZATION, a);
            }
        }
        self.http(ep).execute(req).await
    }

    // ------------------------------------------------------------------ blobs

    /// `HEAD` a blob: its size if the repository has it, `None` if not.
    pub async fn blob_exists(
        &self,
        repo: &RepoRef,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let op = "check blob";
        let target = target(repo, digest.as_str());
        let path = format!("/v2/{}/blobs/{}", repo.repository, digest);
        let resp = self
            .execute(op, &target, repo, &pull_scope(repo), &|c, base| {
                Ok(c.head(join(base, &path, op, &target)?))
            })
            .await?;
        match resp.status() {
            s if s.is_success() => {
                let size =
                    header_u64(resp.headers(), CONTENT_LENGTH.as_str()).ok_or_else(|| {
                        RegistryError::InvalidResponse {
                            operation: op,
                            target: Box::new(target.clone()),
                            message: "blob HEAD without Content-Length".to_owned(),
                        }
                    })?;
                self.remember(repo, digest);
                Ok(Some(size))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(op, &target, resp).await),
        }
    }

    /// Asks the registry to mount `digest` from `from_repo` (same registry)
    /// into `repo`. A 202 answer (not mounted; an upload session opened
    /// instead) is an outcome, not an error.
    pub async fn mount_blob(
        &self,
        repo: &RepoRef,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let op = "mount blob";
        let target = target(repo, digest.as_str());
        let from = RepoRef::new(repo.registry.clone(), from_repo)?;
        let mut scopes = push_scope(repo);
        scopes.extend(pull_scope(&from));
        let path = format!("/v2/{}/blobs/uploads/", repo.repository);
        let resp = self
            .execute(op, &target, repo, &scopes, &|c, base| {
                let mut url = join(base, &path, op, &target)?;
                url.query_pairs_mut()
                    .append_pair("mount", digest.as_str())
                    .append_pair("from", from_repo);
                Ok(c.post(url).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => {
                self.remember(repo, digest);
                Ok(MountOutcome::Mounted)
            }
            StatusCode::ACCEPTED => {
                let ep = self
                    .endpoint(&self.reg_state(&repo.registry), op, &target)
                    .await?;
                let url = location(&ep.base, resp.headers(), op, &target)?;
                Ok(MountOutcome::NotMounted {
                    upload_url: url.to_string(),
                })
            }
            _ => Err(status_error(op, &target, resp).await),
        }
    }

    /// Makes sure `repo` has the blob: skips it if present, mounts it from a
    /// candidate repository (the blob's own list, then repositories this
    /// client has seen it in), else uploads it, verified. Concurrent calls
    /// for the same digest on the same registry run one at a time, so a
    /// blob is never uploaded twice at once: later callers find it present
    /// (same repository) or mount it (another repository).
    pub async fn push_blob(
        &self,
        repo: &RepoRef,
        blob: &BlobSource,
    ) -> Result<PushOutcome, RegistryError> {
        let op = "push blob";
        let target = target(repo, blob.digest.as_str());
        if let BlobData::Bytes(b) = &blob.data {
            check_bytes(op, &target, b, &blob.digest, blob.size)?;
        }
        let _flight = self.flight(&repo.registry, &blob.digest).await;

        if let Some(size) = self.blob_exists(repo, &blob.digest).await? {
            if size != blob.size {
                return Err(RegistryError::SizeMismatch {
                    operation: op,
                    target: Box::new(target),
                    expected: blob.size,
                    actual: size,
                });
            }
            return Ok(PushOutcome::Skipped);
        }

        let mut candidates: Vec<String> = blob.mount_from.clone();
        candidates.extend(self.known_repos(repo, &blob.digest));
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|c| c != &repo.repository && seen.insert(c.clone()));
        let mut session: Option<Url> = None;
        for from in &candidates {
            if let Some(old) = session.take() {
                self.cancel_session(repo, &old).await;
            }
            match self.mount_blob(repo, &blob.digest, from).await? {
                MountOutcome::Mounted => return Ok(PushOutcome::Mounted { from: from.clone() }),
                MountOutcome::NotMounted { upload_url } => {
                    session = Url::parse(&upload_url).ok();
                }
            }
        }

        let _permit =
            self.inner
                .uploads
                .acquire()
                .await
                .map_err(|_| RegistryError::InvalidResponse {
                    operation: op,
                    target: Box::new(target.clone()),
                    message: "client shut down".to_owned(),
                })?;
        self.upload(repo, blob, session, &target).await?;
        // Confirm what the registry now reports.
        match self.blob_exists(repo, &blob.digest).await? {
            Some(size) if size == blob.size => Ok(PushOutcome::Uploaded(blob.size)),
            Some(size) => Err(RegistryError::SizeMismatch {
                operation: op,
                target: Box::new(target),
                expected: blob.size,
                actual: size,
            }),
            None => Err(RegistryError::InvalidResponse {
                operation: op,
                target: Box::new(target),
                message: "blob missing after a successful upload".to_owned(),
            }),
        }
    }

    async fn flight(&self, registry: &str, digest: &Digest) -> FlightGuard {
        let key = (registry.to_owned(), digest.clone());
        let slot = {
            let mut m = match self.inner.inflight.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            m.entry(key.clone()).or_default().clone()
        };
        let guard = slot.lock_owned().await;
        FlightGuard {
            map: self.inner.inflight.clone(),
            key,
            guard: Some(guard),
        }
    }

    fn remember(&self, repo: &RepoRef, digest: &Digest) {
        if let Ok(mut k) = self.inner.known.lock() {
            let v = k
                .entry((repo.registry.clone(), digest.clone()))
                .or_default();
            if !v.contains(&repo.repository) {
                v.push(repo.repository.clone());
                if v.len() > 8 {
                    v.remove(0);
                }
            }
        }
    }

    fn known_repos(&self, repo: &RepoRef, digest: &Digest) -> Vec<String> {
        self.inner
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(&(repo.registry.clone(), digest.clone())).cloned())
            .unwrap_or_default()
    }

    /// Best-effort `DELETE` of an unused upload session.
    async fn cancel_session(&self, repo: &RepoRef, url: &Url) {
        let target = target(repo, "upload session");
        let url = url.clone();
        let _ = self
            .execute(
                "cancel upload",
                &target,
                repo,
                &push_scope(repo),
                &|c, _| Ok(c.delete(url.clone())),
            )
            .await;
    }

    /// Uploads with retries; each attempt starts from a fresh session (the
    /// first may be one a declined mount opened) and re-opens the file.
    async fn upload(
        &self,
        repo: &RepoRef,
        blob: &BlobSource,
        mut session: Option<Url>,
        target: &Target,
    ) -> Result<(), RegistryError> {
        let policy = &self.inner.opts.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                // A previous attempt may have committed before its answer was lost.
                if let Ok(Some(size)) = self.blob_exists(repo, &blob.digest).await {
                    if size == blob.size {
                        return Ok(());
                    }
                }
            }
            match self
                .upload_attempt(repo, blob, session.take(), target)
                .await
            {
                Ok(()) => return Ok(()),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(e, _)) if attempt >= policy.max_attempts => return Err(e),
                Err(AttemptError::Retry(_, delay)) => {
                    tokio::time::sleep(delay.unwrap_or_else(|| policy.backoff(attempt))).await;
                }
            }
        }
    }

    async fn upload_attempt(
        &self,
        repo: &RepoRef,
        blob: &BlobSource,
        session: Option<Url>,
        target: &Target,
    ) -> Result<(), AttemptError> {
        let op = "upload blob";
        let reg = self.reg_state(&repo.registry);
        let ep = self
            .endpoint(&reg, op, target)
            .await
            .map_err(AttemptError::Fatal)?;
        let scopes = push_scope(repo);
        let session = match session {
            Some(s) => s,
            None => self.open_session(repo, target).await.map_err(classify)?,
        };
        let monolithic = blob.size <= self.inner.opts.monolithic_threshold;
        let (body, verdict) = match &blob.data {
            BlobData::Bytes(b) => (reqwest::Body::from(b.clone()), None),
            BlobData::File(path) => {
                let file = tokio::fs::File::open(path).await.map_err(|source| {
                    AttemptError::Fatal(RegistryError::Io {
                        operation: op,
                        target: Box::new(target.clone()),
                        path: path.clone(),
                        source,
                    })
                })?;
                let (stream, verdict) = VerifyingStream::new(file, blob.digest.clone(), blob.size);
                (reqwest::Body::wrap_stream(stream), Some(verdict))
            }
        };
        let mismatch = |verdict: &Option<Arc<Mutex<Verdict>>>| -> Option<RegistryError> {
            let v = verdict.as_ref()?.lock().ok()?.clone();
            match v {
                Verdict::Digest { actual } => Some(RegistryError::DigestMismatch {
                    operation: op,
                    target: Box::new(target.clone()),
                    expected: blob.digest.clone(),
                    actual,
                }),
                Verdict::Size { actual } => Some(RegistryError::SizeMismatch {
                    operation: op,
                    target: Box::new(target.clone()),
                    expected: blob.size,
                    actual,
                }),
                Verdict::Ok | Verdict::Incomplete => None,
            }
        };

        let generation = Self::auth_generation(&reg);
        let auth = self
            .auth_header(&ep, &reg, &scopes, op, target)
            .await
            .map_err(classify)?;
        let (method, url) = if monolithic {
            (Method::PUT, with_digest(&session, &blob.digest))
        } else {
            (Method::PATCH, session.clone())
        };
        let rb = self
            .http(&ep)
            .request(method, url)
            .timeout(self.inner.opts.upload_timeout)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, blob.size.to_string())
            .body(body);
        let sent = self.send_authorized(&ep, rb, auth).await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if let Some(m) = mismatch(&verdict) {
                    return Err(AttemptError::Fatal(m));
                }
                return Err(AttemptError::Retry(transport(op, target, &e), None));
            }
        };
        if let Some(m) = mismatch(&verdict) {
            return Err(AttemptError::Fatal(m));
        }
        let status = resp.status();
        let expect_ok = if monolithic {
            status == StatusCode::CREATED
        } else {
            // ECR answers a streamed PATCH with 201 instead of 202.
            status == StatusCode::ACCEPTED
                || status == StatusCode::CREATED
                || status == StatusCode::NO_CONTENT
        };
        if !expect_ok {
            return Err(self
                .upload_failure(&reg, generation, op, target, resp)
                .await);
        }
        if monolithic {
            return Ok(());
        }
        if let Some(v) = &verdict {
            if v.lock().ok().map(|g| g.clone()) != Some(Verdict::Ok) {
                return Err(AttemptError::Retry(
                    RegistryError::InvalidResponse {
                        operation: op,
                        target: Box::new(target.clone()),
                        message: "registry answered before receiving the whole blob".to_owned(),
                    },
                    None,
                ));
            }
        }
        let next = if resp.headers().contains_key(reqwest::header::LOCATION) {
            location(&ep.base, resp.headers(), op, target).map_err(AttemptError::Fatal)?
        } else {
            session
        };
        let put_url = with_digest(&next, &blob.digest);
        let resp = self
            .execute("finish blob upload", target, repo, &scopes, &|c, _| {
                Ok(c.put(put_url.clone()).header(CONTENT_LENGTH, "0"))
            })
            .await
            .map_err(classify)?;
        if resp.status() == StatusCode::CREATED {
            Ok(())
        } else {
            Err(self
                .upload_failure(&reg, generation, "finish blob upload", target, resp)
                .await)
        }
    }

    async fn upload_failure(
        &self,
        reg: &RegState,
        generation: u64,
        op: &'static str,
        target: &Target,
        resp: reqwest::Response,
    ) -> AttemptError {
        let status = resp.status();
        let delay = retry_after(resp.headers(), &self.inner.opts.retry);
        if status == StatusCode::UNAUTHORIZED {
            // Expired mid-push (ECR tokens, bearer tokens): refresh and start over.
            self.unauthorized(reg, resp.headers(), generation);
            let detail = error_body(resp).await;
            return AttemptError::Retry(
                RegistryError::Unauthorized {
                    operation: op,
                    target: Box::new(target.clone()),
                    status: status.as_u16(),
                    detail,
                },
                Some(Duration::ZERO),
            );
        }
        // 404 here means the session vanished (BLOB_UPLOAD_UNKNOWN): new session.
        let retry = retryable_status(status) || status == StatusCode::NOT_FOUND;
        let err = status_error(op, target, resp).await;
        if retry {
            AttemptError::Retry(err, delay)
        } else {
            AttemptError::Fatal(err)
        }
    }

    async fn open_session(&self, repo: &RepoRef, target: &Target) -> Result<Url, RegistryError> {
        let op = "start blob upload";
        let path = format!("/v2/{}/blobs/uploads/", repo.repository);
        let resp = self
            .execute(op, target, repo, &push_scope(repo), &|c, base| {
                Ok(c.post(join(base, &path, op, target)?)
                    .header(CONTENT_LENGTH, "0"))
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(op, target, resp).await);
        }
        let ep = self
            .endpoint(&self.reg_state(&repo.registry), op, target)
            .await?;
        location(&ep.base, resp.headers(), op, target)
    }

    /// Reads a small blob (at most `max` bytes), verified against `digest`.
    pub async fn get_blob_bytes(
        &self,
        repo: &RepoRef,
        digest: &Digest,
        max: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let op = "get blob";
        let target = target(repo, digest.as_str());
        let path = format!("/v2/{}/blobs/{}", repo.repository, digest);
        let resp = self
            .execute(op, &target, repo, &pull_scope(repo), &|c, base| {
                Ok(c.get(join(base, &path, op, &target)?))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(op, &target, resp).await);
        }
        let bytes = read_limited(resp, max, op, &target).await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                operation: op,
                target: Box::new(target),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    // ------------------------------------------------------------------ manifests

    /// `HEAD` a manifest by tag or digest: `None` if absent.
    pub async fn head_manifest(
        &self,
        repo: &RepoRef,
        reference: &str,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let op = "check manifest";
        let target = target(repo, reference);
        check_reference(reference)?;
        let path = format!("/v2/{}/manifests/{}", repo.repository, reference);
        let accept = media_types::ALL_MANIFESTS.join(", ");
        let resp = self
            .execute(op, &target, repo, &pull_scope(repo), &|c, base| {
                Ok(c.head(join(base, &path, op, &target)?)
                    .header(ACCEPT, accept.as_str()))
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let digest = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok());
                let media_type = content_type(resp.headers());
                let size = header_u64(resp.headers(), CONTENT_LENGTH.as_str());
                match (digest, media_type, size) {
                    (Some(digest), Some(media_type), Some(size)) => Ok(Some(ManifestHead {
                        digest,
                        media_type,
                        size,
                    })),
                    // Some registries omit headers on HEAD: read it instead.
                    _ => Ok(self
                        .get_manifest(repo, reference, &[])
                        .await?
                        .map(|m| ManifestHead {
                            size: m.bytes.len() as u64,
                            digest: m.digest,
                            media_type: m.media_type,
                        })),
                }
            }
            _ => Err(status_error(op, &target, resp).await),
        }
    }

    /// `GET` a manifest or index by tag or digest, `None` if absent. `accept`
    /// lists the media types wanted (empty: OCI and Docker schema 2
    /// manifests and indexes). When `reference` is a digest the bytes are
    /// verified against it.
    pub async fn get_manifest(
        &self,
        repo: &RepoRef,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let op = "get manifest";
        let target = target(repo, reference);
        check_reference(reference)?;
        let path = format!("/v2/{}/manifests/{}", repo.repository, reference);
        let accept = if accept.is_empty() {
            media_types::ALL_MANIFESTS.join(", ")
        } else {
            accept.join(", ")
        };
        let resp = self
            .execute(op, &target, repo, &pull_scope(repo), &|c, base| {
                Ok(c.get(join(base, &path, op, &target)?)
                    .header(ACCEPT, accept.as_str()))
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(op, &target, resp).await);
        }
        let header_type = content_type(resp.headers());
        let bytes = read_limited(resp, 4 << 20, op, &target).await?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = reference.parse::<Digest>() {
            if want != digest {
                return Err(RegistryError::DigestMismatch {
                    operation: op,
                    target: Box::new(target),
                    expected: want,
                    actual: digest,
                });
            }
        }
        let media_type = match header_type {
            Some(t) if t != "application/json" && t != "text/plain" => t,
            _ => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .ok_or_else(|| RegistryError::InvalidResponse {
                    operation: op,
                    target: Box::new(target.clone()),
                    message: "manifest has no media type".to_owned(),
                })?,
        };
        Ok(Some(FetchedManifest {
            digest,
            media_type,
            bytes,
        }))
    }

    /// Puts a manifest under `reference` (a tag or its own digest), unless
    /// the registry already has the identical manifest there (ECR with
    /// immutable tags rejects even identical re-puts).
    pub async fn push_manifest(
        &self,
        repo: &RepoRef,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<ManifestPushOutcome, RegistryError> {
        let op = "push manifest";
        let target = target(repo, reference);
        check_reference(reference)?;
        let digest = Digest::of(bytes);
        if let Ok(d) = reference.parse::<Digest>() {
            if d != digest {
                return Err(RegistryError::DigestMismatch {
                    operation: op,
                    target: Box::new(target),
                    expected: d,
                    actual: digest,
                });
            }
        }
        if let Some(head) = self.head_manifest(repo, reference).await? {
            if head.digest == digest {
                return Ok(ManifestPushOutcome {
                    digest,
                    status: ManifestStatus::Unchanged,
                });
            }
        }
        let path = format!("/v2/{}/manifests/{}", repo.repository, reference);
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .execute(op, &target, repo, &push_scope(repo), &|c, base| {
                Ok(c.put(join(base, &path, op, &target)?)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone()))
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(op, &target, resp).await);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
        {
            if d != digest {
                return Err(RegistryError::DigestMismatch {
                    operation: op,
                    target: Box::new(target),
                    expected: digest,
                    actual: d,
                });
            }
        }
        Ok(ManifestPushOutcome {
            digest,
            status: ManifestStatus::Pushed,
        })
    }

    /// Deletes a manifest by digest; `false` if it did not exist.
    pub async fn delete_manifest(
        &self,
        repo: &RepoRef,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let op = "delete manifest";
        let target = target(repo, digest.as_str());
        let path = format!("/v2/{}/manifests/{}", repo.repository, digest);
        let resp = self
            .execute(op, &target, repo, &push_scope_delete(repo), &|c, base| {
                Ok(c.delete(join(base, &path, op, &target)?))
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(status_error(op, &target, resp).await),
        }
    }

    /// All tags of a repository, following `Link` pagination; an unknown
    /// repository has none.
    pub async fn list_tags(&self, repo: &RepoRef) -> Result<Vec<String>, RegistryError> {
        self.list_tags_paged(repo, None).await
    }

    /// Like [`list_tags`](Self::list_tags), asking for `page_size` tags per
    /// request (`?n=`).
    pub async fn list_tags_paged(
        &self,
        repo: &RepoRef,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let op = "list tags";
        let target = target(repo, "");
        let reg = self.reg_state(&repo.registry);
        let ep = self.endpoint(&reg, op, &target).await?;
        let mut url = join(
            &ep.base,
            &format!("/v2/{}/tags/list", repo.repository),
            op,
            &target,
        )?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let page_url = url.clone();
            let resp = self
                .execute(op, &target, repo, &pull_scope(repo), &|c, _| {
                    Ok(c.get(page_url.clone()))
                })
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !resp.status().is_success() {
                return Err(status_error(op, &target, resp).await);
            }
            let next = next_link(&ep.base, resp.headers());
            let body = read_limited(resp, 16 << 20, op, &target).await?;
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| RegistryError::InvalidResponse {
                    operation: op,
                    target: Box::new(target.clone()),
                    message: format!("tag list: {e}"),
                })?;
            let got = page.tags.unwrap_or_default();
            let empty = got.is_empty();
            tags.extend(got);
            match next {
                Some(n) if !empty && n != url => url = n,
                _ => return Ok(tags),
            }
        }
        Err(RegistryError::InvalidResponse {
            operation: op,
            target: Box::new(target),
            message: format!("more than {MAX_TAG_PAGES} pages of tags"),
        })
    }

    // ------------------------------------------------------------------ images

    /// Pushes an image: blobs in parallel (bounded by `max_parallel_uploads`),
    /// then the manifest by digest, then under each tag.
    pub async fn push_image(
        &self,
        repo: &RepoRef,
        image: &ImagePush,
    ) -> Result<ImagePushReport, RegistryError> {
        for t in &image.tags {
            if !valid_tag(t) {
                return Err(RegistryError::InvalidArgument(format!("invalid tag {t:?}")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        let blobs: Vec<&BlobSource> = image
            .blobs
            .iter()
            .filter(|b| seen.insert(b.digest.clone()))
            .collect();
        let outcomes =
            futures_util::future::try_join_all(blobs.iter().map(|b| self.push_blob(repo, b)))
                .await?;
        let digest = Digest::of(&image.manifest);
        let by_digest = self
            .push_manifest(
                repo,
                digest.as_str(),
                &image.manifest_media_type,
                &image.manifest,
            )
            .await?;
        let mut tags = Vec::new();
        for t in &image.tags {
            let o = self
                .push_manifest(repo, t, &image.manifest_media_type, &image.manifest)
                .await?;
            tags.push((t.clone(), o.status));
        }
        Ok(ImagePushReport {
            blobs: blobs
                .iter()
                .map(|b| b.digest.clone())
                .zip(outcomes)
                .collect(),
            manifest_digest: digest,
            by_digest: by_digest.status,
            tags,
        })
    }
}

// ---------------------------------------------------------------------- helpers

fn target(repo: &RepoRef, object: &str) -> Target {
    Target {
        registry: repo.registry.clone(),
        repository: repo.repository.clone(),
        object: object.to_owned(),
    }
}

fn pull_scope(repo: &RepoRef) -> Vec<String> {
    vec![format!("repository:{}:pull", repo.repository)]
}

fn push_scope(repo: &RepoRef) -> Vec<String> {
    vec![format!("repository:{}:pull,push", repo.repository)]
}

fn push_scope_delete(repo: &RepoRef) -> Vec<String> {
    vec![format!("repository:{}:delete", repo.repository)]
}

fn check_reference(reference: &str) -> Result<(), RegistryError> {
    if valid_tag(reference) || reference.parse::<Digest>().is_ok() {
        Ok(())
    } else {
        Err(RegistryError::InvalidArgument(format!(
            "manifest reference {reference:?} is neither a tag nor a sha256 digest"
        )))
    }
}

fn check_bytes(
    op: &'static str,
    target: &Target,
    b: &[u8],
    digest: &Digest,
    size: u64,
) -> Result<(), RegistryError> {
    if b.len() as u64 != size {
        return Err(RegistryError::SizeMismatch {
            operation: op,
            target: Box::new(target.clone()),
            expected: size,
            actual: b.len() as u64,
        });
    }
    let actual = Digest::of(b);
    if &actual != digest {
        return Err(RegistryError::DigestMismatch {
            operation: op,
            target: Box::new(target.clone()),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(())
}

fn join(base: &Url, path: &str, op: &'static str, target: &Target) -> Result<Url, RegistryError> {
    base.join(path).map_err(|e| RegistryError::InvalidResponse {
        operation: op,
        target: Box::new(target.clone()),
        message: format!("cannot build URL: {e}"),
    })
}

/// The `Location` of an upload session, resolved against the registry URL;
/// its query (the distribution registry's `_state`) is kept.
fn location(
    base: &Url,
    headers: &HeaderMap,
    op: &'static str,
    target: &Target,
) -> Result<Url, RegistryError> {
    let loc = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::InvalidResponse {
            operation: op,
            target: Box::new(target.clone()),
            message: "no Location header".to_owned(),
        })?;
    base.join(loc).map_err(|_| RegistryError::InvalidResponse {
        operation: op,
        target: Box::new(target.clone()),
        message: "Location header is not a URL".to_owned(),
    })
}

fn with_digest(url: &Url, digest: &Digest) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut().append_pair("digest", digest.as_str());
    u
}

/// `Link: </v2/x/tags/list?n=2&last=b>; rel="next"` → the next page URL.
fn next_link(base: &Url, headers: &HeaderMap) -> Option<Url> {
    for v in headers.get_all(reqwest::header::LINK) {
        let s = v.to_str().ok()?;
        for part in s.split(',') {
            let part = part.trim();
            let (url_part, params) = part.split_once(';').unwrap_or((part, ""));
            let is_next = params.split(';').any(|p| {
                p.trim()
                    .replace(' ', "")
                    .eq_ignore_ascii_case("rel=\"next\"")
                    || p.trim().eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                let u = url_part
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>');
                return base.join(u).ok();
            }
        }
    }
    None
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let t = v.split(';').next()?.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn basic_header(user: &str, pass: &str) -> HeaderValue {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    secret_header(&format!("Basic {enc}"))
}

/// A header value marked sensitive (kept out of reqwest/hyper debug output).
fn secret_header(v: &str) -> HeaderValue {
    // Credentials with bytes not allowed in headers cannot be sent anyway;
    // an empty value makes the registry answer 401 with a clear error.
    let mut h = HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.set_sensitive(true);
    h
}

fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn retryable_transport(e: &reqwest::Error) -> bool {
    !(e.is_builder() || e.is_redirect() || e.is_status())
}

/// A server's `Retry-After` (seconds form), capped by the policy.
fn retry_after(headers: &HeaderMap, policy: &RetryPolicy) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(policy.max_retry_after))
}

/// A transport error as text, without the URL (which can carry upload
/// session state) — never with headers.
fn transport(op: &'static str, target: &Target, e: &reqwest::Error) -> RegistryError {
    let mut msg = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut first = true;
    while let Some(err) = cur {
        let s = if first {
            let mut s = err.to_string();
            if let Some(u) = e.url() {
                s = s
                    .replace(&format!(" ({u})"), "")
                    .replace(u.as_str(), "<url>");
            }
            s.replace(" for url", "")
        } else {
            err.to_string()
        };
        if !msg.contains(&s) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&s);
        }
        first = false;
        cur = err.source();
    }
    if e.is_timeout() && !msg.contains("timed out") {
        msg.push_str(" (timed out)");
    }
    RegistryError::Transport {
        operation: op,
        target: Box::new(target.clone()),
        message: msg,
    }
}

async fn read_limited(
    resp: reqwest::Response,
    max: u64,
    op: &'static str,
    target: &Target,
) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|l| l > max) {
        return Err(RegistryError::TooLarge {
            operation: op,
            target: Box::new(target.clone()),
            max,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport(op, target, &e))?;
        if out.len() as u64 + chunk.len() as u64 > max {
            return Err(RegistryError::TooLarge {
                operation: op,
                target: Box::new(target.clone()),
                max,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The first entry of an OCI error body, if any.
async fn error_body(resp: reqwest::Response) -> RegistryMessage {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > 64 * 1024 {
            break;
        }
    }
    match serde_json::from_slice::<Body>(&buf) {
        Ok(b) => b
            .errors
            .into_iter()
            .next()
            .map(|e| RegistryMessage {
                code: e.code,
                message: e.message.map(|m| m.chars().take(500).collect()),
            })
            .unwrap_or_default(),
        Err(_) => RegistryMessage::default(),
    }
}

async fn status_error(op: &'static str, target: &Target, resp: reqwest::Response) -> RegistryError {
    let status = resp.status().as_u16();
    let detail = error_body(resp).await;
    RegistryError::Status {
        operation: op,
        target: Box::new(target.clone()),
        status,
        detail,
    }
}

/// Turns an error from a replayable sub-request of an upload into an
/// attempt result: transport failures and retryable statuses restart the
/// upload, the rest end it.
fn classify(e: RegistryError) -> AttemptError {
    match &e {
        RegistryError::Transport { .. } => AttemptError::Retry(e, None),
        RegistryError::Status { status, .. }
            if *status >= 500 || *status == 429 || *status == 404 =>
        {
            AttemptError::Retry(e, None)
        }
        _ => AttemptError::Fatal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        let base = Url::parse("http://127.0.0.1:5001/").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("</v2/a/tags/list?last=b&n=2>; rel=\"next\""),
        );
        assert_eq!(
            next_link(&base, &h).unwrap().as_str(),
            "http://127.0.0.1:5001/v2/a/tags/list?last=b&n=2"
        );
        assert_eq!(next_link(&base, &HeaderMap::new()), None);
    }

    #[test]
    fn location_keeps_query() {
        let base = Url::parse("http://r:5000/").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LOCATION,
            HeaderValue::from_static("/v2/a/blobs/uploads/u1?_state=xyz"),
        );
        let t = Target {
            registry: "r".into(),
            repository: "a".into(),
            object: String::new(),
        };
        let u = location(&base, &h, "x", &t).unwrap();
        let d = Digest::of(b"");
        assert_eq!(
            with_digest(&u, &d).as_str(),
            format!(
                "http://r:5000/v2/a/blobs/uploads/u1?_state=xyz&digest=sha256%3A{}",
                d.hex()
            )
        );
        h.insert(
            reqwest::header::LOCATION,
            HeaderValue::from_static("https://other/v2/a/blobs/uploads/u2"),
        );
        assert_eq!(
            location(&base, &h, "x", &t).unwrap().as_str(),
            "https://other/v2/a/blobs/uploads/u2"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            assert!(p.backoff(30) <= Duration::from_millis(1000));
        }
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("120"),
        );
        assert_eq!(retry_after(&h, &p), Some(Duration::from_secs(5)));
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(retry_after(&h, &p), Some(Duration::ZERO));
    }
}

/// Whether `host[:port]` names this machine (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod loopback_tests {
    use super::is_loopback;

    #[test]
    fn recognises_loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5001"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
