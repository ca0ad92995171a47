//! ECR repositories and images by tag: what the distribution API cannot do
//! (create a repository, remove a single tag, list what points at a digest).

use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

use crate::aws::ApiError;

/// A failed ECR call: the call, the repository, ECR's code and message and
/// the request ID.
pub type EcrError = ApiError;

fn err<E>(action: &'static str, repository: &str, e: &E) -> EcrError
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + 'static,
{
    ApiError::new(
        &format!("ECR {action}"),
        format!("repository {repository:?}"),
        e,
    )
}

/// ECR operations on one repository.
pub struct EcrRepository<'a> {
    client: &'a aws_sdk_ecr::Client,
    name: &'a str,
}

impl<'a> EcrRepository<'a> {
    /// Operations on repository `name`.
    pub fn new(client: &'a aws_sdk_ecr::Client, name: &'a str) -> Self {
        EcrRepository { client, name }
    }

    /// Creates the repository; `Ok(false)` when it already existed.
    pub async fn create(&self, immutable: bool, scan_on_push: bool) -> Result<bool, EcrError> {
        let res = self
            .client
            .create_repository()
            .repository_name(self.name)
            .image_tag_mutability(if immutable {
                ImageTagMutability::Immutable
            } else {
                ImageTagMutability::Mutable
            })
            .image_scanning_configuration(
                aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                    .scan_on_push(scan_on_push)
                    .build(),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(err("CreateRepository", self.name, &e)),
        }
    }

    /// Deletes the repository: only when empty unless `force`. `Ok(false)`
    /// when it was not empty and not forced, so it was kept.
    pub async fn delete(&self, force: bool) -> Result<bool, EcrError> {
        match self
            .client
            .delete_repository()
            .repository_name(self.name)
            .force(force)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_repository_not_empty_exception() => Ok(false),
                Some(s) if s.is_repository_not_found_exception() => Ok(true),
                _ => Err(err("DeleteRepository", self.name, &e)),
            },
        }
    }

    /// Removes tags (not the images behind them).
    pub async fn untag(&self, tags: &[String]) -> Result<(), EcrError> {
        if tags.is_empty() {
            return Ok(());
        }
        let ids = tags
            .iter()
            .map(|t| ImageIdentifier::builder().image_tag(t).build())
            .collect();
        self.client
            .batch_delete_image()
            .repository_name(self.name)
            .set_image_ids(Some(ids))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err("BatchDeleteImage", self.name, &e))
    }

    /// Deletes the image with `digest` (and so every tag on it).
    pub async fn delete_digest(&self, digest: &str) -> Result<(), EcrError> {
        self.client
            .batch_delete_image()
            .repository_name(self.name)
            .image_ids(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| err("BatchDeleteImage", self.name, &e))
    }
}
