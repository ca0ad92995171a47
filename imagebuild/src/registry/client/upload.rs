//! Blob uploads: sessions, attempts, and what a failed attempt means.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::digest::Digest;
use crate::registry::error::{RegistryError, Target};
use crate::registry::upload::{Verdict, VerifyingStream};
use crate::registry::{BlobData, BlobSource, RepoRef};

use super::http::{error_body, join, push_scope, status_error, target, transport};
use super::retry::{retry_after, retryable_status, retrying, Attempt};
use super::{RegState, RegistryClient};

/// How one attempt of a blob upload failed.
pub(super) enum AttemptError {
    Retry(RegistryError, Option<Duration>),
    Fatal(RegistryError),
}

impl RegistryClient {
    /// Best-effort `DELETE` of an unused upload session.
    pub(super) async fn cancel_session(&self, repo: &RepoRef, url: &Url) {
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
    pub(super) async fn upload(
        &self,
        repo: &RepoRef,
        blob: &BlobSource,
        session: Option<Url>,
        target: &Target,
    ) -> Result<(), RegistryError> {
        let policy = &self.inner.opts.retry;
        // The first attempt may use a session a declined mount opened; later ones open their own.
        let session = std::sync::Mutex::new(session);
        let session = &session;
        retrying(policy, policy.max_attempts, move |n| async move {
            if n > 1 {
                // A previous attempt may have committed before its answer was lost.
                if let Ok(Some(size)) = self.blob_exists(repo, &blob.digest).await {
                    if size == blob.size {
                        return Attempt::Done(Ok(()));
                    }
                }
            }
            let first = session.lock().ok().and_then(|mut s| s.take());
            match self.upload_attempt(repo, blob, first, target).await {
                Ok(()) => Attempt::Done(Ok(())),
                Err(AttemptError::Fatal(e)) => Attempt::Done(Err(e)),
                Err(AttemptError::Retry(e, delay)) => Attempt::Retry {
                    last: Err(e),
                    delay,
                },
            }
        })
        .await
    }

    pub(super) async fn upload_attempt(
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

    pub(super) async fn upload_failure(
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

    pub(super) async fn open_session(
        &self,
        repo: &RepoRef,
        target: &Target,
    ) -> Result<Url, RegistryError> {
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
}

/// The `Location` of an upload session, resolved against the registry URL;
/// its query (the distribution registry's `_state`) is kept.
pub(super) fn location(
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

pub(super) fn with_digest(url: &Url, digest: &Digest) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut().append_pair("digest", digest.as_str());
    u
}

/// Turns an error from a replayable sub-request of an upload into an
/// attempt result: transport failures and retryable statuses restart the
/// upload, the rest end it.
pub(super) fn classify(e: RegistryError) -> AttemptError {
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
    use reqwest::header::{HeaderMap, HeaderValue};

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
}
