//! The registry client: endpoint resolution, authentication, retries and the
//! distribution API operations.

mod blobs;
mod endpoint;
mod http;
mod manifests;
mod retry;
mod token;
mod upload;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use url::Url;

use super::auth::{AuthProvider, Challenge};
use super::error::RegistryError;
use crate::digest::Digest;

pub use retry::RetryPolicy;

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
}
