//! Registry access for `ep_image`: one shared client per provider process,
//! so images applied in parallel never upload the same blob twice at once,
//! with ECR credentials fetched per operation (never stored in state).

use std::collections::HashMap;
use std::sync::Arc;

use ep_imagebuild::registry::{
    ClientOptions, DockerConfigAuth, EcrAuth, RegistryClient, RegistryError, RepoRef,
};
use tokio::sync::OnceCell;

use crate::aws::AwsClients;
use crate::framework::{Diagnostic, Diagnostics};

use super::args::split_repository;

/// Where an `ep_image` repository lives and the client to reach it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Registry host and repository path.
    pub repo: RepoRef,
    /// The ECR repository name when the repository is in ECR.
    pub ecr_repository: Option<String>,
    /// The client to use.
    pub client: RegistryClient,
}

/// Lazily built registry clients shared by every `ep_image`.
#[derive(Default)]
pub struct RegistryAccess {
    generic: OnceCell<RegistryClient>,
    ecr: OnceCell<(RegistryClient, String)>,
}

fn diag(summary: &str, e: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error(summary, e.to_string()).into()
}

fn new_client(endpoint_overrides: HashMap<String, String>) -> Result<RegistryClient, Diagnostics> {
    let opts = ClientOptions {
        endpoint_overrides,
        ..ClientOptions::default()
    };
    let docker = DockerConfigAuth::from_default_location()
        .map_err(|e| diag("Could not read the Docker client configuration", e))?;
    Ok(RegistryClient::new(opts)
        .map_err(|e| diag("Could not create the registry client", e))?
        .with_default_auth(Arc::new(docker)))
}

impl RegistryAccess {
    /// The client for registries named by host (Docker config credentials).
    async fn generic_client(&self) -> Result<RegistryClient, Diagnostics> {
        Ok(self
            .generic
            .get_or_try_init(|| async { new_client(HashMap::new()) })
            .await?
            .clone())
    }

    /// The client for the account's ECR registry, and that registry's host.
    async fn ecr_client(
        &self,
        aws: impl FnOnce() -> Result<Arc<AwsClients>, Diagnostics>,
    ) -> Result<(RegistryClient, String), Diagnostics> {
        let aws = aws()?;
        Ok(self.ecr.get_or_try_init(|| ecr_client(aws)).await?.clone())
    }

    /// The target for a repository argument: `host/repo` for any registry,
    /// or a bare name for ECR in the provider's account and region.
    pub async fn target(
        &self,
        repository: &str,
        aws: impl FnOnce() -> Result<Arc<AwsClients>, Diagnostics>,
    ) -> Result<Target, Diagnostics> {
        match split_repository(repository) {
            (Some(host), path) => {
                let client = self.generic_client().await?;
                let repo = RepoRef::new(host, path).map_err(|e| diag("Invalid repository", e))?;
                Ok(Target {
                    repo,
                    ecr_repository: None,
                    client,
                })
            }
            (None, path) => {
                let (client, host) = self.ecr_client(aws).await?;
                let repo = RepoRef::new(&host, path).map_err(|e| diag("Invalid repository", e))?;
                Ok(Target {
                    repo,
                    ecr_repository: Some(path.to_owned()),
                    client,
                })
            }
        }
    }
}

/// A client authenticated against the account's ECR registry, and its host.
async fn ecr_client(aws: Arc<AwsClients>) -> Result<(RegistryClient, String), Diagnostics> {
    // The provider's one ECR client (endpoint override, assumed role).
    let ecr = aws
        .ecr()
        .await
        .map_err(|e| diag("Could not set up AWS credentials", e))?;
    let auth = EcrAuth::from_client(ecr);
    let proxy = auth
        .proxy_endpoint()
        .await
        .map_err(|e| diag("ECR GetAuthorizationToken failed", e))?
        .ok_or_else(|| {
            diag(
                "ECR returned no registry address",
                "GetAuthorizationToken had no proxyEndpoint.",
            )
        })?;
    let host = proxy
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut overrides = HashMap::new();
    if let Some(url) = &aws.settings().endpoints.registry {
        let url = if url.contains("://") {
            url.clone()
        } else {
            format!("https://{url}")
        };
        overrides.insert(host.clone(), url);
    }
    let client = new_client(overrides)?.with_auth(&host, Arc::new(auth));
    Ok((client, host))
}

/// A registry error as a diagnostic naming what failed.
pub fn registry_diag(summary: &str, e: &RegistryError) -> Diagnostics {
    diag(summary, e)
}

impl RegistryAccess {
    /// Resolves an image reference to its manifest digest (a digest
    /// reference as is), with ECR credentials for ECR hosts.
    pub async fn resolve_reference(
        &self,
        reference: &str,
        aws: impl FnOnce() -> Result<Arc<AwsClients>, Diagnostics>,
    ) -> Result<ep_imagebuild::digest::Digest, Diagnostics> {
        let (repo, parsed) =
            RepoRef::parse_reference(reference).map_err(|e| diag("Invalid image reference", e))?;
        if let Some(d) = parsed.digest() {
            return d.parse().map_err(|e| diag("Invalid image digest", e));
        }
        let tag = parsed.tag().unwrap_or("latest").to_owned();
        let client = if repo.registry.contains(".dkr.ecr.") {
            self.ecr_client(aws).await?.0
        } else {
            self.generic_client().await?
        };
        match client.head_manifest(&repo, &tag).await {
            Ok(Some(h)) => Ok(h.digest),
            Ok(None) => Err(diag(
                "Base image not found",
                format!("{reference} does not exist in the registry."),
            )),
            Err(e) => Err(diag("Could not resolve the base image", e)),
        }
    }
}
