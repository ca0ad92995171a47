//! Where a registry is (scheme, overrides) and how it authenticates (`GET /v2/`).

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use crate::registry::auth::{parse_challenge, Challenge};
use crate::registry::error::{RegistryError, Target};

use super::http::{join, transport};
use super::retry::{retry_after, retryable_status, retryable_transport, retrying, Attempt};
use super::{Endpoint, RegState, RegistryClient};

impl RegistryClient {
    /// Resolves the registry's base URL and learns its auth challenge from
    /// `GET /v2/`, once per registry per client.
    pub(super) async fn endpoint(
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

    pub(super) async fn ping(
        &self,
        ep: &Endpoint,
        op: &'static str,
        target: &Target,
        retry: bool,
    ) -> Result<Challenge, RegistryError> {
        let url = join(&ep.base, "/v2/", op, target)?;
        let policy = &self.inner.opts.retry;
        let attempts = if retry { policy.max_attempts } else { 1 };
        let timeout = if retry {
            self.inner.opts.request_timeout
        } else {
            self.inner.opts.connect_timeout.min(Duration::from_secs(10))
        };
        let http = self.http(ep);
        let url = &url;
        retrying(policy, attempts, move |_| async move {
            match http.get(url.clone()).timeout(timeout).send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => Attempt::Done(Ok(resp
                    .headers()
                    .get_all(reqwest::header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(parse_challenge)
                    .next()
                    .unwrap_or(Challenge::Basic))),
                // 200 or anything else: no auth known up front; a later 401 teaches us the
                // challenge.
                Ok(resp) if retryable_status(resp.status()) => Attempt::Retry {
                    last: Ok(Challenge::None),
                    delay: retry_after(resp.headers(), policy),
                },
                Ok(_) => Attempt::Done(Ok(Challenge::None)),
                Err(e) if retryable_transport(&e) => Attempt::Retry {
                    last: Err(transport(op, target, &e)),
                    delay: None,
                },
                Err(e) => Attempt::Done(Err(transport(op, target, &e))),
            }
        })
        .await
    }
}

/// Whether `host[:port]` names this machine (`localhost`, 127.0.0.0/8, `[::1]`).
pub(super) fn is_loopback(host: &str) -> bool {
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
    pub(super) fn recognises_loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5001"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
