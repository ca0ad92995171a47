//! Progress reporting from a build, for a terminal UI or logs.

use crate::digest::Digest;

use super::{BlobPush, LayerReport};

/// Receives build progress. Every method has a no-op default; implementations must be cheap
/// (they are called from the layer-writing loop) and thread-safe (pushes run concurrently).
pub trait Progress: Send + Sync {
    /// A phase of the build starts (`resolving base`, `pushing`, ...).
    fn message(&self, _text: &str) {}
    /// A layer is about to be written (or taken from the cache): `bytes` of content in total.
    fn layer_started(&self, _name: &str, _bytes: u64) {}
    /// `bytes` more content bytes of the layer were written.
    fn layer_advanced(&self, _name: &str, _bytes: u64) {}
    /// A layer is ready.
    fn layer_finished(&self, _layer: &LayerReport) {}
    /// A blob reached the target repository (or was found there).
    fn blob_pushed(&self, _digest: &Digest, _outcome: &BlobPush) {}
}

/// Ignores all progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
