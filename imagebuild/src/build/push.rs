//! Pushing a built image: base layers by mount or existence check, our layers and configs in
//! parallel, manifests by digest, the index (if any), then each tag.

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use tokio::task::JoinHandle;

use super::base::ResolvedBase;
use super::{BlobPush, BuildError, Progress};
use crate::digest::Digest;
use crate::image::Built;
use crate::layer::LayerOutput;
use crate::registry::{
    BlobSource, ManifestStatus, MountOutcome, PushOutcome, RegistryClient, RegistryError, RepoRef,
};

/// Base layers from another registry that the target lacks are copied through memory up to
/// this size; larger ones are reported (copy the base into the target registry first).
pub(crate) const MAX_BASE_COPY: u64 = 64 << 20;

/// What a push did.
#[derive(Debug, Default)]
pub(crate) struct PushSummary {
    pub(crate) blobs: HashMap<Digest, BlobPush>,
    pub(crate) bytes_uploaded: u64,
    pub(crate) manifests_pushed: usize,
}

fn outcome(o: PushOutcome) -> BlobPush {
    match o {
        PushOutcome::Skipped => BlobPush::Skipped,
        PushOutcome::Mounted { from } => BlobPush::Mounted { from },
        PushOutcome::Uploaded(n) => BlobPush::Uploaded { bytes: n },
    }
}

/// Makes sure the target has one base layer: present, mounted from the base's repository
/// (same registry), or copied from the base's registry when small enough.
async fn push_base_layer(
    client: &RegistryClient,
    repo: &RepoRef,
    base: &ResolvedBase,
    digest: &Digest,
    size: u64,
) -> Result<BlobPush, BuildError> {
    if client.blob_exists(repo, digest).await?.is_some() {
        return Ok(BlobPush::Skipped);
    }
    if base.repo.registry == repo.registry {
        match client
            .mount_blob(repo, digest, &base.repo.repository)
            .await?
        {
            MountOutcome::Mounted => {
                return Ok(BlobPush::Mounted {
                    from: base.repo.repository.clone(),
                })
            }
            // The opened upload session is left to expire: registries garbage-collect them.
            MountOutcome::NotMounted { .. } => {}
        }
    }
    if size > MAX_BASE_COPY {
        return Err(BuildError::BaseLayerUnavailable {
            digest: digest.to_string(),
            size,
            from: base.repo.to_string(),
            to: repo.to_string(),
        });
    }
    let bytes = client.get_blob_bytes(&base.repo, digest, size).await?;
    let blob = BlobSource::from_bytes(bytes);
    match client.push_blob(repo, &blob).await? {
        PushOutcome::Uploaded(n) => Ok(BlobPush::Copied { bytes: n }),
        other => Ok(outcome(other)),
    }
}

/// Uploads our layers while the rest of the image is still being written: a layer is handed
/// over as soon as it is in the cache, and its upload runs on the runtime's worker threads
/// while the build goes on on the caller's (loopback or network upload and the registry's
/// ingest then overlap compression instead of following it). [`push`] collects the results.
/// Dropping it aborts uploads still running (an upload session left open expires on the
/// registry).
pub(crate) struct EarlyPush {
    runtime: tokio::runtime::Handle,
    client: RegistryClient,
    repo: RepoRef,
    tasks: HashMap<Digest, JoinHandle<Result<PushOutcome, RegistryError>>>,
    warm_up: Option<JoinHandle<()>>,
}

impl EarlyPush {
    /// An early pusher, when the caller runs on a multi-threaded runtime (on a
    /// current-thread one, spawned uploads could not progress during the blocking build).
    pub(crate) fn new(client: &RegistryClient, repo: &RepoRef) -> Option<EarlyPush> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return None;
        }
        let mut early = EarlyPush {
            runtime,
            client: client.clone(),
            repo: repo.clone(),
            tasks: HashMap::new(),
            warm_up: None,
        };
        early.warm_up();
        Some(early)
    }

    /// Reaches the registry while the package is planned: the client's first request
    /// resolves the endpoint (an insecure registry is probed over HTTPS before HTTP) and
    /// learns its auth challenge, which otherwise delays the first upload. A HEAD of the empty
    /// blob changes nothing; its answer is not needed, and a failure shows again (and is
    /// reported) on the real requests.
    fn warm_up(&mut self) {
        let client = self.client.clone();
        let repo = self.repo.clone();
        let empty = Digest::of(b"");
        self.warm_up = Some(self.runtime.spawn(async move {
            let _ = client.blob_exists(&repo, &empty).await;
        }));
    }

    /// Starts uploading a finished layer (once per digest).
    pub(crate) fn start(&mut self, layer: &LayerOutput) {
        if self.tasks.contains_key(&layer.digest) {
            return;
        }
        let client = self.client.clone();
        let repo = self.repo.clone();
        let blob = BlobSource::from_file(layer.digest.clone(), layer.size, layer.path.clone());
        let task = self
            .runtime
            .spawn(async move { client.push_blob(&repo, &blob).await });
        self.tasks.insert(layer.digest.clone(), task);
    }

    fn take(&mut self, digest: &Digest) -> Option<JoinHandle<Result<PushOutcome, RegistryError>>> {
        self.tasks.remove(digest)
    }
}

impl Drop for EarlyPush {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
        if let Some(task) = &self.warm_up {
            task.abort();
        }
    }
}

/// Our blob `b`: the result of its early upload if one was started, else uploaded now.
async fn push_ours(
    client: &RegistryClient,
    repo: &RepoRef,
    b: &BlobSource,
    early: Option<JoinHandle<Result<PushOutcome, RegistryError>>>,
) -> Result<PushOutcome, BuildError> {
    match early {
        Some(task) => match task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(BuildError::UploadStopped {
                digest: b.digest.to_string(),
                reason: e.to_string(),
            }),
        },
        None => Ok(client.push_blob(repo, b).await?),
    }
}

/// Pushes `built` to `repo` under `tags`; blobs `early` started uploading are awaited there.
pub(crate) async fn push(
    client: &RegistryClient,
    repo: &RepoRef,
    built: &Built,
    base: Option<&ResolvedBase>,
    tags: &[String],
    progress: &dyn Progress,
    mut early: Option<EarlyPush>,
) -> Result<PushSummary, BuildError> {
    let mut summary = PushSummary::default();
    let mut seen = HashSet::new();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for img in built.images() {
        for l in &img.layers {
            let digest: Digest = l.descriptor.digest.parse().map_err(|_| {
                BuildError::InvalidRequest(format!(
                    "layer digest {:?} is not sha256",
                    l.descriptor.digest
                ))
            })?;
            if !seen.insert(digest.clone()) {
                continue;
            }
            let size = u64::try_from(l.descriptor.size).unwrap_or(0);
            match &l.path {
                Some(path) => ours.push(BlobSource::from_file(digest, size, path.clone())),
                None => theirs.push((digest, size)),
            }
        }
        let config = BlobSource::from_bytes(img.config_json.clone());
        if seen.insert(config.digest.clone()) {
            ours.push(config);
        }
    }

    // Base layers first (cheap HEADs and mounts), then ours in parallel: the client bounds
    // concurrent uploads and serialises identical digests.
    if !theirs.is_empty() {
        let base = base.ok_or_else(|| {
            BuildError::InvalidRequest("base layers without a registry base".into())
        })?;
        let results = join_all(
            theirs
                .iter()
                .map(|(d, size)| push_base_layer(client, repo, base, d, *size)),
        )
        .await;
        for ((d, _), r) in theirs.iter().zip(results) {
            let o = r?;
            progress.blob_pushed(d, &o);
            summary.bytes_uploaded += o.uploaded();
            summary.blobs.insert(d.clone(), o);
        }
    }
    let started: Vec<_> = ours
        .iter()
        .map(|b| early.as_mut().and_then(|e| e.take(&b.digest)))
        .collect();
    let results = join_all(
        ours.iter()
            .zip(started)
            .map(|(b, task)| push_ours(client, repo, b, task)),
    )
    .await;
    for (b, r) in ours.iter().zip(results) {
        let o = outcome(r?);
        progress.blob_pushed(&b.digest, &o);
        summary.bytes_uploaded += o.uploaded();
        summary.blobs.insert(b.digest.clone(), o);
    }

    // Manifests last, by digest; then the index; then the tags.
    let put = |status: ManifestStatus, len: usize, s: &mut PushSummary| {
        if status == ManifestStatus::Pushed {
            s.bytes_uploaded += len as u64;
            s.manifests_pushed += 1;
        }
    };
    for img in built.images() {
        let o = client
            .push_manifest(
                repo,
                img.manifest_digest.as_str(),
                img.format.manifest_media_type(),
                &img.manifest_json,
            )
            .await?;
        put(o.status, img.manifest_json.len(), &mut summary);
    }
    let (media_type, bytes) = match built {
        Built::Image(img) => (img.format.manifest_media_type(), &img.manifest_json),
        Built::Index(ix) => {
            let o = client
                .push_manifest(
                    repo,
                    ix.digest.as_str(),
                    ix.format.index_media_type(),
                    &ix.index_json,
                )
                .await?;
            put(o.status, ix.index_json.len(), &mut summary);
            (ix.format.index_media_type(), &ix.index_json)
        }
    };
    for t in tags {
        let o = client.push_manifest(repo, t, media_type, bytes).await?;
        put(o.status, bytes.len(), &mut summary);
    }
    Ok(summary)
}
