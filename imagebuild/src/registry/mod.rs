//! An OCI distribution client for pushing images and reading manifests and
//! small blobs: blob existence checks, cross-repository mounts, streamed and
//! verified uploads that work with ECR's partly conformant upload API,
//! manifests, tags, deletes; anonymous, basic, bearer-token, ECR and Docker
//! config credentials; retries with backoff; single-flight uploads shared by
//! concurrent pushes in one process.
//!
//! References are `oci-client`'s type, read by our own parser (its regular
//! expression costs ~0.1 s to compile in every process); the transfer path is
//! our own because `oci-client` buffers whole layers and neither checks,
//! mounts nor retries.

mod auth;
mod client;
mod ecr;
mod error;
mod reference;
mod upload;

use std::fmt;
use std::path::PathBuf;

pub use auth::{AuthProvider, Credentials, DockerConfigAuth, StaticAuth};
pub use client::{ClientOptions, RegistryClient, RetryPolicy};
pub use ecr::EcrAuth;
pub use error::{AuthError, RegistryError, RegistryMessage, Target};
pub use oci_client::Reference;
pub use reference::{split_host, valid_repository, valid_tag};

use crate::digest::Digest;

/// Manifest and index media types this client reads and writes (defined once, in
/// [`crate::image`]).
pub mod media_types {
    pub use crate::image::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

    /// Everything [`RegistryClient::get_manifest`](super::RegistryClient::get_manifest)
    /// accepts when the caller passes no `Accept` list.
    pub const ALL_MANIFESTS: [&str; 4] = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];
}

/// A repository in a registry: `registry` is the `host[:port]` the caller uses
/// to name it (credentials and endpoint overrides are keyed by it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoRef {
    /// Registry `host[:port]`, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub registry: String,
    /// Repository path, e.g. `ep/commerce`.
    pub repository: String,
}

impl RepoRef {
    /// A repository reference, validating the repository name against the
    /// distribution spec's grammar.
    pub fn new(
        registry: impl Into<String>,
        repository: impl Into<String>,
    ) -> Result<Self, RegistryError> {
        let registry = registry.into();
        let repository = repository.into();
        if registry.is_empty()
            || registry.contains(['/', ' ', '?', '#', '@'])
            || registry.chars().any(|c| c.is_control())
        {
            return Err(RegistryError::InvalidArgument(format!(
                "invalid registry host {registry:?}"
            )));
        }
        if !valid_repository(&repository) {
            return Err(RegistryError::InvalidArgument(format!(
                "invalid repository name {repository:?}"
            )));
        }
        Ok(RepoRef {
            registry,
            repository,
        })
    }

    /// Parses an image reference (`[registry/]repo[:tag][@digest]`, Docker
    /// Hub defaults applied) into the repository and the full reference.
    pub fn parse_reference(s: &str) -> Result<(RepoRef, Reference), RegistryError> {
        let r = reference::parse(s)
            .map_err(|e| RegistryError::InvalidArgument(format!("image reference {s:?}: {e}")))?;
        Ok((RepoRef::from_reference(&r)?, r))
    }

    /// The repository of a parsed reference.
    pub fn from_reference(r: &Reference) -> Result<RepoRef, RegistryError> {
        RepoRef::new(r.registry(), r.repository())
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// Where a blob's bytes come from.
#[derive(Clone, Debug)]
pub enum BlobData {
    /// A file, streamed from disk (re-opened on each upload attempt).
    File(PathBuf),
    /// Bytes in memory (image configs and other small blobs).
    Bytes(bytes::Bytes),
}

/// A blob to push: its declared digest and size (both verified while
/// uploading), its content, and repositories of the same registry that may
/// already hold it (mount candidates).
#[derive(Clone, Debug)]
pub struct BlobSource {
    /// Declared digest.
    pub digest: Digest,
    /// Declared size in bytes.
    pub size: u64,
    /// The content.
    pub data: BlobData,
    /// Repositories (same registry) to try a cross-repository mount from.
    pub mount_from: Vec<String>,
}

impl BlobSource {
    /// A blob stored in a file.
    pub fn from_file(digest: Digest, size: u64, path: impl Into<PathBuf>) -> Self {
        BlobSource {
            digest,
            size,
            data: BlobData::File(path.into()),
            mount_from: Vec::new(),
        }
    }

    /// A small in-memory blob; digest and size are computed.
    pub fn from_bytes(bytes: impl Into<bytes::Bytes>) -> Self {
        let bytes = bytes.into();
        BlobSource {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            data: BlobData::Bytes(bytes),
            mount_from: Vec::new(),
        }
    }

    /// Adds a cross-repository mount candidate.
    pub fn with_mount_from(mut self, repository: impl Into<String>) -> Self {
        self.mount_from.push(repository.into());
        self
    }
}

/// Result of a cross-repository mount request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountOutcome {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry did not mount (source lacks it, or mounts are not
    /// supported) and opened an upload session at this URL instead.
    NotMounted {
        /// Absolute upload session URL.
        upload_url: String,
    },
}

/// What [`RegistryClient::push_blob`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The repository already had the blob.
    Skipped,
    /// Mounted from another repository of the same registry.
    Mounted {
        /// The source repository.
        from: String,
    },
    /// Uploaded this many bytes.
    Uploaded(u64),
}

/// Whether a manifest PUT changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestStatus {
    /// The identical manifest (same digest) was already under that reference.
    Unchanged,
    /// The manifest was written.
    Pushed,
}

/// Result of [`RegistryClient::push_manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestPushOutcome {
    /// Digest of the manifest bytes.
    pub digest: Digest,
    /// Whether it was written.
    pub status: ManifestStatus,
}

/// A manifest read from a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedManifest {
    /// Digest of `bytes`.
    pub digest: Digest,
    /// Media type (from `Content-Type`, else the document's `mediaType`).
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

/// A manifest's descriptor from a HEAD request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// A whole image to push with [`RegistryClient::push_image`]: blobs first
/// (in parallel), then the manifest by digest, then under each tag.
#[derive(Clone, Debug)]
pub struct ImagePush {
    /// Layers and config.
    pub blobs: Vec<BlobSource>,
    /// Manifest media type.
    pub manifest_media_type: String,
    /// Manifest bytes, pushed exactly as given.
    pub manifest: Vec<u8>,
    /// Tags to point at the manifest.
    pub tags: Vec<String>,
}

/// What [`RegistryClient::push_image`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePushReport {
    /// One entry per distinct blob, in the order given.
    pub blobs: Vec<(Digest, PushOutcome)>,
    /// The manifest digest.
    pub manifest_digest: Digest,
    /// The PUT by digest.
    pub by_digest: ManifestStatus,
    /// One entry per tag.
    pub tags: Vec<(String, ManifestStatus)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["a", "ep/commerce", "a-b__c.d/e--f", "0/1"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "", "A", "a//b", "-a", "a-", "a..b", "a/../b", "a?b", "a b", "a___b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(valid_tag("v1.0_rc-1") && valid_tag("_x"));
        assert!(
            !valid_tag("") && !valid_tag(".x") && !valid_tag("a/b") && !valid_tag(&"a".repeat(129))
        );
    }

    #[test]
    fn references() {
        let (repo, r) = RepoRef::parse_reference("alpine:3.20").unwrap();
        assert_eq!(repo.registry, "docker.io");
        assert_eq!(repo.repository, "library/alpine");
        assert_eq!(r.tag(), Some("3.20"));
        let (repo, r) = RepoRef::parse_reference("127.0.0.1:5001/ep/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
        assert_eq!(repo.registry, "127.0.0.1:5001");
        assert_eq!(repo.repository, "ep/app");
        assert!(r.digest().is_some());
        assert!(RepoRef::parse_reference("UPPER/x").is_err());
        assert!(RepoRef::new("reg/x", "a").is_err());
    }
}
