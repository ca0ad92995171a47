//! Credentials, bearer tokens and what a 401 teaches.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;

use crate::registry::auth::{parse_challenge, Challenge, Credentials, TokenResponse};
use crate::registry::error::{RegistryError, Target};

use super::http::{basic_header, error_body, read_limited, secret_header, status_error, transport};
use super::retry::{retry_after, retryable_status, retryable_transport, retrying, Attempt};
use super::{Endpoint, RegState, RegistryClient};

impl RegistryClient {
    pub(super) async fn credentials(
        &self,
        registry: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
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
    pub(super) async fn auth_header(
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
    pub(super) async fn fetch_token(
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
        let http = self.http(ep);
        let timeout = self.inner.opts.request_timeout;
        let url = &url;
        let resp = retrying(policy, policy.max_attempts, move |_| async move {
            let mut rb = http.get(url.clone()).timeout(timeout);
            if let Some(Credentials::Basic(u, p)) = creds {
                rb = rb.header(AUTHORIZATION, basic_header(u, p));
            }
            match rb.send().await {
                Ok(r) if retryable_status(r.status()) => Attempt::Retry {
                    delay: retry_after(r.headers(), policy),
                    last: Ok(r),
                },
                Ok(r) => Attempt::Done(Ok(r)),
                Err(e) if retryable_transport(&e) => Attempt::Retry {
                    last: Err(transport(op, target, &e)),
                    delay: None,
                },
                Err(e) => Attempt::Done(Err(transport(op, target, &e))),
            }
        })
        .await?;
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

    pub(super) fn auth_generation(reg: &RegState) -> u64 {
        reg.auth_gen.lock().map(|g| *g).unwrap_or(0)
    }

    /// The registry said 401 to credentials of generation `used`: forget
    /// cached credentials and tokens (unless a concurrent request already
    /// did) and learn the challenge it sent.
    pub(super) fn unauthorized(&self, reg: &RegState, headers: &HeaderMap, used: u64) {
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
}
