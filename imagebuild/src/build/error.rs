//! Why a build fails.

use std::io;
use std::path::{Path, PathBuf};

use crate::cache::CacheError;
use crate::image::ImageError;
use crate::layer::LayerError;
use crate::layering::LayeringError;
use crate::package::PackageError;
use crate::registry::RegistryError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The request itself is inconsistent.
    #[error("invalid build request: {0}")]
    InvalidRequest(String),
    /// A tag that the distribution spec does not allow.
    #[error(
        "invalid tag {0:?}: tags are 1-128 characters of [A-Za-z0-9_.-], not starting with . or -"
    )]
    InvalidTag(String),
    /// An image or repository reference that does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The base reference names nothing.
    #[error("base image {reference} not found")]
    BaseNotFound {
        /// The reference.
        reference: String,
    },
    /// The base has no image for a requested platform.
    #[error("base image {reference} has no {platform} image")]
    BasePlatform {
        /// The reference.
        reference: String,
        /// The platform.
        platform: String,
    },
    /// The base's manifest or config is malformed.
    #[error("base image {reference}: {reason}")]
    InvalidBase {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A base layer from another registry is missing in the target and too large to copy.
    #[error("base layer {digest} ({size} bytes) of {from} is not in {to} and too large to copy through memory; copy the base image into the target registry first (e.g. skopeo copy)")]
    BaseLayerUnavailable {
        /// The layer.
        digest: String,
        /// Its size.
        size: u64,
        /// The base repository.
        from: String,
        /// The target repository.
        to: String,
    },
    /// Layout output needs every layer locally, and a registry base's are not downloaded.
    #[error("{0} output cannot use a registry base (its layers are never downloaded); push instead, or use a local rootfs or scratch base")]
    RegistryBaseNeedsPush(&'static str),
    /// The package could not be read.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Planning or streaming layers failed.
    #[error(transparent)]
    Layering(#[from] LayeringError),
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The layer cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Assembling or writing the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A layer upload started during the build ended without a result (its task panicked
    /// or was cancelled).
    #[error("upload of layer {digest} did not complete: {reason}")]
    UploadStopped {
        /// The layer.
        digest: String,
        /// Why.
        reason: String,
    },
    /// A file system failure in the work directory or output.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}
