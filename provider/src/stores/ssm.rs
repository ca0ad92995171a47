//! SSM Parameter Store as a config store: `GetParametersByPath` in pages of
//! 10, `PutParameter` with `Overwrite` only where a version is expected
//! (after checking it is still that version: SSM has no compare-and-set),
//! tags applied separately (SSM refuses tags with `Overwrite`),
//! `DeleteParameters` in batches of 10. Throttling (`ThrottlingException`,
//! `TooManyUpdates`) is retried with backoff.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_ssm::types::{ParameterTier, ParameterType, ResourceTypeForTagging, Tag};

use super::{record, Committed, Entry, Expect, Remove, StoreError, Write};
use crate::aws::{not_found, ApiError};

/// Names per `DeleteParameters` call and results per page.
const BATCH: usize = 10;
/// Attempts of a throttled call.
const ATTEMPTS: u32 = 8;

/// How parameters are written.
#[derive(Clone, Debug, Default)]
pub struct SsmOptions {
    /// KMS key for `SecureString` values (AWS's `alias/aws/ssm` when unset).
    pub key_id: Option<String>,
    /// `Standard` (default), `Advanced` or `Intelligent-Tiering`.
    pub tier: Option<String>,
    /// Tags on every parameter written.
    pub tags: BTreeMap<String, String>,
}

/// An SSM client with the options of one publication.
pub struct SsmStore {
    client: aws_sdk_ssm::Client,
    opts: SsmOptions,
}

/// Calls `call` again while AWS throttles it, with exponential backoff.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_throttling() && attempt < ATTEMPTS => {
                tracing::info!(error = %e, ?backoff, "SSM throttled; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl SsmStore {
    /// A store on `client`.
    pub fn new(client: aws_sdk_ssm::Client, opts: SsmOptions) -> Self {
        SsmStore { client, opts }
    }

    /// Every parameter under `prefix` (`/a/b/`), decrypted.
    pub async fn list(&self, prefix: &str) -> Result<BTreeMap<String, Entry>, StoreError> {
        let path = prefix.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let page = retrying(|| {
                let req = self
                    .client
                    .get_parameters_by_path()
                    .path(path)
                    .recursive(true)
                    .with_decryption(true)
                    .max_results(BATCH as i32)
                    .set_next_token(token.clone());
                let subject = format!("path {path:?}");
                async move {
                    req.send()
                        .await
                        .map_err(|e| ApiError::new("SSM GetParametersByPath", subject, &e))
                }
            })
            .await?;
            for p in page.parameters() {
                let (Some(name), Some(value)) = (p.name(), p.value()) else {
                    continue;
                };
                out.insert(
                    name.to_owned(),
                    Entry {
                        value: value.to_owned(),
                        version: u64::try_from(p.version()).unwrap_or(0),
                        secure: p.r#type() == Some(&ParameterType::SecureString),
                    },
                );
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The parameter's current version, if it exists.
    async fn version_of(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let got = retrying(|| {
            let req = self.client.get_parameter().name(name);
            let subject = format!("parameter {name:?}");
            async move {
                req.send()
                    .await
                    .map_err(|e| ApiError::new("SSM GetParameter", subject, &e))
            }
        })
        .await;
        match got {
            Ok(o) => Ok(o
                .parameter()
                .map(|p| u64::try_from(p.version()).unwrap_or(0))),
            Err(e) if e.code_is(not_found::SSM_PARAMETER) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(&self, w: &Write) -> Result<(), StoreError> {
        let overwrite = match w.expect {
            Expect::Absent => false,
            Expect::Version(v) => {
                let now = self.version_of(&w.key).await?;
                if now.is_some_and(|n| n != v) {
                    return Err(StoreError::Conflict {
                        key: w.key.clone(),
                        detail: format!("version {} now, {v} when read", now.unwrap_or_default()),
                    });
                }
                // Deleted since it was read: create it again.
                now.is_some()
            }
        };
        let ty = if w.secure {
            ParameterType::SecureString
        } else {
            ParameterType::String
        };
        let put = retrying(|| {
            let mut req = self
                .client
                .put_parameter()
                .name(&w.key)
                .value(&w.value)
                .r#type(ty.clone())
                .overwrite(overwrite);
            if w.secure {
                req = req.set_key_id(self.opts.key_id.clone());
            }
            if let Some(t) = &self.opts.tier {
                req = req.tier(ParameterTier::from(t.as_str()));
            }
            let subject = format!("parameter {:?}", w.key);
            async move {
                req.send()
                    .await
                    .map_err(|e| ApiError::new("SSM PutParameter", subject, &e))
            }
        })
        .await;
        match put {
            Ok(_) => {}
            Err(e) if e.code_is(&["ParameterAlreadyExists"]) => {
                return Err(StoreError::Conflict {
                    key: w.key.clone(),
                    detail: "it was created by another writer".to_owned(),
                })
            }
            Err(e) => return Err(e.into()),
        }
        if !self.opts.tags.is_empty() {
            let tags: Vec<Tag> = self
                .opts
                .tags
                .iter()
                .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                .collect();
            retrying(|| {
                let req = self
                    .client
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&w.key)
                    .set_tags(Some(tags.clone()));
                let subject = format!("parameter {:?}", w.key);
                async move {
                    req.send()
                        .await
                        .map_err(|e| ApiError::new("SSM AddTagsToResource", subject, &e))
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Writes one parameter at a time (SSM has no batch write), then
    /// deletes in batches of 10.
    pub async fn apply(
        &self,
        writes: &[Write],
        removes: &[Remove],
        committed: &std::sync::Mutex<Committed>,
    ) -> Result<(), StoreError> {
        for w in writes {
            self.put(w).await?;
            record(committed, |c| c.written.push(w.key.clone()));
        }
        for chunk in removes.chunks(BATCH) {
            let names: Vec<String> = chunk.iter().map(|r| r.key.clone()).collect();
            let out = retrying(|| {
                let req = self
                    .client
                    .delete_parameters()
                    .set_names(Some(names.clone()));
                let subject = format!("{} parameters, first {:?}", names.len(), names.first());
                async move {
                    req.send()
                        .await
                        .map_err(|e| ApiError::new("SSM DeleteParameters", subject, &e))
                }
            })
            .await?;
            // Names SSM did not find are gone already: removed either way.
            let _ = out.invalid_parameters();
            record(committed, |c| c.removed.extend(names.iter().cloned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn failure(code: &str) -> ApiError {
        ApiError {
            call: "SSM PutParameter".into(),
            subject: "/ep/db".into(),
            code: Some(code.into()),
            message: "slow down".into(),
            request_id: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_and_too_many_updates_are_retried_with_backoff() {
        let calls = Cell::new(0);
        let started = tokio::time::Instant::now();
        let got = retrying(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                match n {
                    1 => Err(failure("ThrottlingException")),
                    2 => Err(failure("TooManyUpdates")),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(got.ok(), Some(3));
        // 0.5 s, then 1 s of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_and_persistent_throttling_end() {
        let calls = Cell::new(0);
        let got: Result<(), _> = retrying(|| {
            calls.set(calls.get() + 1);
            async { Err(failure("ParameterAlreadyExists")) }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert!(got.is_err());
        calls.set(0);
        let got: Result<(), _> = retrying(|| {
            calls.set(calls.get() + 1);
            async { Err(failure("ThrottlingException")) }
        })
        .await;
        assert_eq!(calls.get(), ATTEMPTS);
        assert_eq!(
            got.err().and_then(|e| e.code).as_deref(),
            Some("ThrottlingException")
        );
    }
}
