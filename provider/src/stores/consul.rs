//! A client of Consul's KV HTTP API: recursive reads of a prefix and
//! writes through `/v1/txn` (see [`super::consul_txn`]). The ACL token is
//! sent only in `X-Consul-Token`; TLS certificates are verified, against the
//! system roots plus an optional CA file.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::{Committed, Entry, Remove, StoreError, Write};

/// The default agent address, as Consul's own tools use.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8500";

/// How to reach Consul.
#[derive(Clone, Default)]
pub struct ConsulSettings {
    /// `host:port`, or a URL with a scheme.
    pub address: Option<String>,
    /// `http` or `https` (default: the address's scheme, else `http`).
    pub scheme: Option<String>,
    /// ACL token; `CONSUL_HTTP_TOKEN` when unset.
    pub token: Option<String>,
    /// Datacenter (`?dc=`).
    pub datacenter: Option<String>,
    /// Enterprise namespace (`?ns=`).
    pub namespace: Option<String>,
    /// PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for ConsulSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulSettings")
            .field("address", &self.address)
            .field("scheme", &self.scheme)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("datacenter", &self.datacenter)
            .field("namespace", &self.namespace)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl ConsulSettings {
    /// `scheme://host:port`, from the settings and `CONSUL_HTTP_ADDR`.
    pub fn base_url(&self) -> Result<String, StoreError> {
        let addr = self
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| {
                std::env::var("CONSUL_HTTP_ADDR")
                    .ok()
                    .filter(|a| !a.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        let (addr_scheme, hostport) = match addr.split_once("://") {
            Some((s, rest)) => (Some(s.to_owned()), rest.trim_end_matches('/').to_owned()),
            None => (None, addr.trim_end_matches('/').to_owned()),
        };
        let scheme = self
            .scheme
            .clone()
            .or(addr_scheme)
            .unwrap_or_else(|| "http".to_owned());
        if scheme != "http" && scheme != "https" {
            return Err(StoreError::Setup(format!(
                "Consul scheme {scheme:?} is neither \"http\" nor \"https\""
            )));
        }
        if hostport.is_empty() || hostport.contains('/') {
            return Err(StoreError::Setup(format!(
                "Consul address {addr:?} is not host:port"
            )));
        }
        Ok(format!("{scheme}://{hostport}"))
    }
}

/// One KV entry as Consul returns it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvEntry {
    key: String,
    value: Option<String>,
    modify_index: u64,
}

/// A connection to one Consul agent.
pub struct ConsulClient {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    token: Option<String>,
    datacenter: Option<String>,
    namespace: Option<String>,
}

impl ConsulClient {
    /// A client for `settings` (no request is made yet).
    pub fn new(settings: &ConsulSettings) -> Result<Self, StoreError> {
        let base = settings.base_url()?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("terraform-provider-ep/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = settings.ca_file.as_deref().filter(|c| !c.is_empty()) {
            let pem = std::fs::read(ca)
                .map_err(|e| StoreError::Setup(format!("cannot read ca_file {ca:?}: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                StoreError::Setup(format!("ca_file {ca:?} holds no PEM certificates: {e}"))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| StoreError::Setup(format!("cannot set up the HTTP client: {e}")))?;
        let token = settings
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| std::env::var("CONSUL_HTTP_TOKEN").ok())
            .filter(|t| !t.is_empty());
        Ok(ConsulClient {
            http,
            base,
            token,
            datacenter: settings.datacenter.clone().filter(|d| !d.is_empty()),
            namespace: settings.namespace.clone().filter(|n| !n.is_empty()),
        })
    }

    /// `scheme://host:port`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The Enterprise namespace every key lives in (`None`: the token's, or `default`).
    pub(super) fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// A request with the token header and the `dc` query; KV requests also
    /// carry `ns`. `/v1/txn` documents no `ns` parameter: its operations name
    /// their namespace one by one (see [`super::consul_txn`]).
    pub(super) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        flags: &[&str],
    ) -> Result<reqwest::RequestBuilder, StoreError> {
        let mut url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| StoreError::Setup(format!("bad Consul URL {}{path}: {e}", self.base)))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(dc) = &self.datacenter {
                q.append_pair("dc", dc);
            }
            if let Some(ns) = self
                .namespace
                .as_ref()
                .filter(|_| path.starts_with("/v1/kv/"))
            {
                q.append_pair("ns", ns);
            }
            for f in flags {
                q.append_key_only(f);
            }
        }
        let mut rb = self.http.request(method, url);
        if let Some(t) = &self.token {
            rb = rb.header("X-Consul-Token", t);
        }
        Ok(rb)
    }

    pub(super) fn unreachable(&self, e: &reqwest::Error) -> StoreError {
        StoreError::Unreachable {
            store: format!("Consul at {}", self.base),
            detail: ep_imagebuild::error_chain(e),
        }
    }

    /// An error for a non-success answer other than the ones the caller handles.
    pub(super) fn status_error(&self, request: &str, status: u16, body: &str) -> StoreError {
        let body: String = body.trim().chars().take(300).collect();
        if status == 403 {
            return StoreError::Denied {
                store: format!("Consul at {}", self.base),
                detail: format!("{request}: {body}"),
            };
        }
        StoreError::Http {
            store: format!("Consul at {}", self.base),
            request: request.to_owned(),
            status,
            body,
        }
    }

    /// Every key under `prefix` (which ends in `/`, so `foo/` never matches `food`).
    pub async fn list(&self, prefix: &str) -> Result<BTreeMap<String, Entry>, StoreError> {
        let path = format!("/v1/kv/{prefix}");
        let request = format!("GET {path}");
        let resp = self
            .request(reqwest::Method::GET, &path, &["recurse"])?
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status == 404 {
            return Ok(BTreeMap::new());
        }
        if status != 200 {
            return Err(self.status_error(&request, status, &String::from_utf8_lossy(&body)));
        }
        let entries: Vec<KvEntry> =
            serde_json::from_slice(&body).map_err(|e| StoreError::BadAnswer {
                store: format!("Consul at {}", self.base),
                request: request.clone(),
                detail: e.to_string(),
            })?;
        let mut out = BTreeMap::new();
        for e in entries {
            let raw = match e.value {
                Some(b64) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|err| StoreError::BadAnswer {
                        store: format!("Consul at {}", self.base),
                        request: request.clone(),
                        detail: format!("value of {:?} is not base64: {err}", e.key),
                    })?,
                None => Vec::new(),
            };
            // Keys hold text; a binary value is shown lossily rather than failing the read.
            let value = String::from_utf8(raw)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            out.insert(
                e.key,
                Entry {
                    value,
                    version: e.modify_index,
                    secure: false,
                },
            );
        }
        Ok(out)
    }

    /// Writes and removes, in transactions of at most 64 operations and
    /// 512 KB (see [`super::consul_txn`]).
    pub async fn apply(
        &self,
        writes: &[Write],
        removes: &[Remove],
        committed: &std::sync::Mutex<Committed>,
    ) -> Result<(), StoreError> {
        super::consul_txn::apply(self, writes, removes, committed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_schemes() {
        let s = |address: &str, scheme: Option<&str>| ConsulSettings {
            address: Some(address.to_owned()),
            scheme: scheme.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(
            s("127.0.0.1:8500", None).base_url().ok().as_deref(),
            Some("http://127.0.0.1:8500")
        );
        assert_eq!(
            s("https://consul.internal:8501/", None)
                .base_url()
                .ok()
                .as_deref(),
            Some("https://consul.internal:8501")
        );
        assert_eq!(
            s("consul:8501", Some("https")).base_url().ok().as_deref(),
            Some("https://consul:8501")
        );
        assert!(s("consul:8500", Some("ftp")).base_url().is_err());
        assert!(s("http://consul:8500/v1/kv", None).base_url().is_err());
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let s = ConsulSettings {
            token: Some("s3cret-token".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
