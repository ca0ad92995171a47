//! Errors of the registry client. None of them carries an `Authorization`
//! header, a password or a token: they are built from status codes, the
//! registry's JSON error body and our own context only.

use std::fmt;
use std::path::PathBuf;

use crate::digest::Digest;

/// What an operation was acting on, for error messages: registry, repository
/// and (where there is one) the blob digest or manifest reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Registry host as the caller named it (e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`).
    pub registry: String,
    /// Repository inside the registry.
    pub repository: String,
    /// Blob digest, manifest tag/digest, or empty.
    pub object: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "registry {} repository {}",
            self.registry, self.repository
        )?;
        if !self.object.is_empty() {
            write!(f, " ({})", self.object)?;
        }
        Ok(())
    }
}

/// The registry's own explanation from an OCI error body
/// (`{"errors":[{"code":…,"message":…}]}`), when it sent one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryMessage {
    /// Error code such as `BLOB_UNKNOWN` or `DENIED`.
    pub code: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
}

impl fmt::Display for RegistryMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, ": {c}: {m}"),
            (Some(c), None) => write!(f, ": {c}"),
            (None, Some(m)) => write!(f, ": {m}"),
            (None, None) => Ok(()),
        }
    }
}

/// A failure talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused our credentials (401) or the operation (403).
    #[error("{operation}: authentication to {target} failed (HTTP {status}){detail}")]
    Unauthorized {
        /// Operation that failed, e.g. `push blob`.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// 401 or 403.
        status: u16,
        /// The registry's explanation.
        detail: RegistryMessage,
    },
    /// The registry answered with an unexpected status.
    #[error("{operation}: {target}: unexpected HTTP {status}{detail}")]
    Status {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// HTTP status.
        status: u16,
        /// The registry's explanation.
        detail: RegistryMessage,
    },
    /// Network failure (connect, reset, timeout), after retries.
    #[error("{operation}: {target}: {message}")]
    Transport {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// The transport error chain (URLs stripped).
        message: String,
    },
    /// Content did not hash to the digest it was declared or requested under.
    #[error("{operation}: {target}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// The declared digest.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Content did not have the declared size.
    #[error("{operation}: {target}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// The declared size.
        expected: u64,
        /// The size seen.
        actual: u64,
    },
    /// A blob is larger than the caller allowed.
    #[error("{operation}: {target}: blob larger than the {max}-byte limit")]
    TooLarge {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// The limit.
        max: u64,
    },
    /// The registry answered something that does not follow the distribution spec.
    #[error("{operation}: {target}: invalid response: {message}")]
    InvalidResponse {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// What was wrong.
        message: String,
    },
    /// A credential provider failed (ECR API error, credential helper failure, …).
    #[error("credentials for registry {registry}: {source}")]
    Auth {
        /// Registry whose credentials were wanted.
        registry: String,
        /// Why.
        #[source]
        source: AuthError,
    },
    /// Reading a local blob file failed.
    #[error("{operation}: {target}: reading {}: {source}", path.display())]
    Io {
        /// Operation that failed.
        operation: &'static str,
        /// What it acted on.
        target: Box<Target>,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A caller-supplied argument is invalid (bad reference, repository name, URL).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl RegistryError {
    /// The HTTP status behind this error, if it came from a registry answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Unauthorized { status, .. } | RegistryError::Status { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// A failure of an [`AuthProvider`](super::AuthProvider).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The AWS ECR `GetAuthorizationToken` call failed.
    #[error("ECR GetAuthorizationToken: {0}")]
    Ecr(String),
    /// The Docker config file could not be read or parsed.
    #[error("docker config {}: {message}", path.display())]
    DockerConfig {
        /// The config file.
        path: PathBuf,
        /// What was wrong (never the credential values).
        message: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper}: {message}")]
    Helper {
        /// Helper name (suffix).
        helper: String,
        /// What went wrong (never its stdout, which would hold the secret).
        message: String,
    },
    /// A token server refused or answered badly.
    #[error("token server: {0}")]
    Token(String),
    /// Any other provider-specific failure.
    #[error("{0}")]
    Other(String),
}
