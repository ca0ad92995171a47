//! Manifests and tags: head, get, push, delete, list; whole images.

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::StatusCode;
use url::Url;

use crate::digest::Digest;
use crate::registry::error::RegistryError;
use crate::registry::{
    media_types, valid_tag, BlobSource, FetchedManifest, ImagePush, ImagePushReport, ManifestHead,
    ManifestPushOutcome, ManifestStatus, RepoRef,
};

use super::http::{
    check_reference, content_type, header_u64, join, pull_scope, push_scope, push_scope_delete,
    read_limited, status_error, target,
};
use super::RegistryClient;

pub(super) const MAX_TAG_PAGES: usize = 10_000;

impl RegistryClient {
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

/// `Link: </v2/x/tags/list?n=2&last=b>; rel="next"` → the next page URL.
pub(super) fn next_link(base: &Url, headers: &HeaderMap) -> Option<Url> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

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
}
