//! Sending requests (auth, re-auth, retries) and the HTTP helpers every operation uses.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use url::Url;

use crate::digest::Digest;
use crate::registry::error::{RegistryError, RegistryMessage, Target};
use crate::registry::{valid_tag, RepoRef};

use super::retry::{retry_after, retryable_status, retryable_transport, retrying, Attempt};
use super::{Endpoint, RegistryClient};

impl RegistryClient {
    /// Sends a replayable request with auth, one re-authentication on 401,
    /// and retries on 429/5xx/transport errors. Returns the final response
    /// whatever its status, except 401/403 which become errors.
    pub(super) async fn execute(
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
        // One re-authentication per request, not per attempt; it does not use up an attempt.
        let reauthed = AtomicBool::new(false);
        let (reg, ep, reauthed) = (&reg, &ep, &reauthed);
        retrying(policy, policy.max_attempts, move |_| async move {
            let resp = loop {
                let generation = Self::auth_generation(reg);
                let auth = match self.auth_header(ep, reg, scopes, op, target).await {
                    Ok(a) => a,
                    Err(e) => return Attempt::Done(Err(e)),
                };
                let rb = match build(self.http(ep), &ep.base) {
                    Ok(rb) => rb.timeout(self.inner.opts.request_timeout),
                    Err(e) => return Attempt::Done(Err(e)),
                };
                match self.send_authorized(ep, rb, auth).await {
                    Ok(resp)
                        if resp.status() == StatusCode::UNAUTHORIZED
                            && !reauthed.swap(true, Ordering::Relaxed) =>
                    {
                        self.unauthorized(reg, resp.headers(), generation);
                    }
                    Ok(resp) => break resp,
                    Err(e) if retryable_transport(&e) => {
                        return Attempt::Retry {
                            last: Err(transport(op, target, &e)),
                            delay: None,
                        }
                    }
                    Err(e) => return Attempt::Done(Err(transport(op, target, &e))),
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let detail = error_body(resp).await;
                return Attempt::Done(Err(RegistryError::Unauthorized {
                    operation: op,
                    target: Box::new(target.clone()),
                    status: status.as_u16(),
                    detail,
                }));
            }
            if retryable_status(status) {
                Attempt::Retry {
                    delay: retry_after(resp.headers(), policy),
                    last: Ok(resp),
                }
            } else {
                Attempt::Done(Ok(resp))
            }
        })
        .await
    }

    /// Sends `rb`, with `auth` only when it goes to the registry's own
    /// origin: upload `Location`s and pagination links may point elsewhere
    /// (storage backends), which must not see the registry's credentials.
    pub(super) async fn send_authorized(
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
}

// ---------------------------------------------------------------------- helpers

pub(super) fn target(repo: &RepoRef, object: &str) -> Target {
    Target {
        registry: repo.registry.clone(),
        repository: repo.repository.clone(),
        object: object.to_owned(),
    }
}

pub(super) fn pull_scope(repo: &RepoRef) -> Vec<String> {
    vec![format!("repository:{}:pull", repo.repository)]
}

pub(super) fn push_scope(repo: &RepoRef) -> Vec<String> {
    vec![format!("repository:{}:pull,push", repo.repository)]
}

pub(super) fn push_scope_delete(repo: &RepoRef) -> Vec<String> {
    vec![format!("repository:{}:delete", repo.repository)]
}

pub(super) fn check_reference(reference: &str) -> Result<(), RegistryError> {
    if valid_tag(reference) || reference.parse::<Digest>().is_ok() {
        Ok(())
    } else {
        Err(RegistryError::InvalidArgument(format!(
            "manifest reference {reference:?} is neither a tag nor a sha256 digest"
        )))
    }
}

pub(super) fn check_bytes(
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

pub(super) fn join(
    base: &Url,
    path: &str,
    op: &'static str,
    target: &Target,
) -> Result<Url, RegistryError> {
    base.join(path).map_err(|e| RegistryError::InvalidResponse {
        operation: op,
        target: Box::new(target.clone()),
        message: format!("cannot build URL: {e}"),
    })
}

pub(super) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let t = v.split(';').next()?.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

pub(super) fn basic_header(user: &str, pass: &str) -> HeaderValue {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    secret_header(&format!("Basic {enc}"))
}

/// A header value marked sensitive (kept out of reqwest/hyper debug output).
pub(super) fn secret_header(v: &str) -> HeaderValue {
    // Credentials with bytes not allowed in headers cannot be sent anyway;
    // an empty value makes the registry answer 401 with a clear error.
    let mut h = HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.set_sensitive(true);
    h
}

/// A transport error as text, without the URL (which can carry upload
/// session state) — never with headers.
pub(super) fn transport(op: &'static str, target: &Target, e: &reqwest::Error) -> RegistryError {
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

pub(super) async fn read_limited(
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
pub(super) async fn error_body(resp: reqwest::Response) -> RegistryMessage {
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

pub(super) async fn status_error(
    op: &'static str,
    target: &Target,
    resp: reqwest::Response,
) -> RegistryError {
    let status = resp.status().as_u16();
    let detail = error_body(resp).await;
    RegistryError::Status {
        operation: op,
        target: Box::new(target.clone()),
        status,
        detail,
    }
}
