//! Blobs: existence, mounts, pushes (one upload per digest at a time), small reads.

use reqwest::header::CONTENT_LENGTH;
use reqwest::StatusCode;
use url::Url;

use crate::digest::Digest;
use crate::registry::error::RegistryError;
use crate::registry::{BlobData, BlobSource, MountOutcome, PushOutcome, RepoRef};

use super::http::{
    check_bytes, header_u64, join, pull_scope, push_scope, read_limited, status_error, target,
};
use super::upload::location;
use super::{FlightGuard, RegistryClient};

impl RegistryClient {
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

    pub(super) async fn flight(&self, registry: &str, digest: &Digest) -> FlightGuard {
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

    pub(super) fn remember(&self, repo: &RepoRef, digest: &Digest) {
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

    pub(super) fn known_repos(&self, repo: &RepoRef, digest: &Digest) -> Vec<String> {
        self.inner
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(&(repo.registry.clone(), digest.clone())).cloned())
            .unwrap_or_default()
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
}
