//! The inputs fingerprint of one image: what a planner (a Terraform plan) computes cheaply to
//! know whether a build would produce a different image, and what the build records in the
//! image as the [`INPUTS_FINGERPRINT_ANNOTATION`](super::INPUTS_FINGERPRINT_ANNOTATION).
//!
//! It covers exactly what goes into this image: the fingerprints of the layers it gets (so a
//! class changed in cortex changes the cortex image's fingerprint and no other's), the base's
//! identity, and every setting that changes the config or manifest. It never covers absolute
//! paths or modification times, so two machines agree; a package's name or location on disk
//! does not count either, only what is taken from it.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::request::{validate_inputs, Base, BuildRequest};
use super::rootfs::rootfs_identity;
use super::{BuildError, LISTINGS_DIR};
use crate::digest::Digest;
use crate::image::{ConfigOverrides, ManifestFormat, Platform};
use crate::layering::{self, LayerPlan, LayoutOptions, ListingCache, Sources};

/// Bumped whenever the builder's output for the same inputs changes in a way the layer
/// fingerprints do not capture (config, manifest or annotation assembly).
const INPUTS_EPOCH: &str = "ep-imagebuild inputs v1";

/// One layer the image gets from the package or the host, as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputLayer {
    /// Layer name (`tomcat-lib`, `classes`, `custom-1`, ...).
    pub name: String,
    /// Its input fingerprint (the layer cache key).
    pub fingerprint: String,
    /// Regular files in it.
    pub files: usize,
    /// Bytes of file content in it (uncompressed).
    pub bytes: u64,
}

/// What [`inspect_inputs`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputsReport {
    /// Hex SHA-256 over everything that determines the image: equal exactly when a build of
    /// the same request would produce the same image.
    pub inputs_fingerprint: String,
    /// The layers the image gets on top of its base, bottom first.
    pub layers: Vec<InputLayer>,
    /// The base: a registry base's manifest (or index) digest, a local rootfs's content
    /// identity; `None` for scratch.
    pub base_identity: Option<String>,
    /// The package version (the version annotation).
    pub package_version: Option<String>,
    /// The whole package's content fingerprint
    /// ([`DeploymentPackage::fingerprint`]); not part of the inputs fingerprint.
    pub package_fingerprint: String,
    /// Things a build would do that the user may not expect (a cortex image without Cortex
    /// Studio); the build reports the same.
    pub warnings: Vec<String>,
}

/// The base as identified for the fingerprint.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BaseId<'a> {
    Scratch,
    Rootfs(&'a str),
    Registry { reference: &'a str, digest: &'a str },
}

impl BaseId<'_> {
    fn identity(&self) -> Option<String> {
        match self {
            BaseId::Scratch => None,
            BaseId::Rootfs(id) => Some((*id).to_string()),
            BaseId::Registry { digest, .. } => Some((*digest).to_string()),
        }
    }
}

/// The platforms a request builds (none given: linux/amd64).
pub(crate) fn platforms(req: &BuildRequest) -> Vec<Platform> {
    if req.platforms.is_empty() {
        vec![Platform::linux_amd64()]
    } else {
        req.platforms.clone()
    }
}

/// The layout a request's layers are planned with (compression and timestamp are the
/// request's).
pub(crate) fn layout(req: &BuildRequest) -> LayoutOptions {
    LayoutOptions {
        compression: req.compression,
        source_date_epoch: req.source_date_epoch,
        ..req.layout.clone()
    }
}

/// The inputs fingerprint of `req` given its base and its planned layers (name and
/// fingerprint, bottom first). The one definition both [`inspect_inputs`] and the build use.
pub(crate) fn fingerprint(
    req: &BuildRequest,
    base: BaseId<'_>,
    layers: &[(&str, &str)],
    package_version: Option<&str>,
) -> String {
    // Destructured so that a new request field is a compile error here until it is decided
    // whether it changes the image.
    let BuildRequest {
        package: _,      // only what is taken from it counts: the layers and the version
        context_only: _, // a context has no service and no version: the layers say it all
        service,
        custom_layers: _, // in the layer plans
        layout: _,        // in the layer plans (destinations, owners)
        base: _,          // as `base`
        config,
        platforms: _, // normalised below
        annotations,
        source_date_epoch,
        compression,
        format,
        output: _,   // where the image goes, not what it is
        work_dir: _, // scratch space
        cache_dir: _,
    } = req;
    let ConfigOverrides {
        env,
        entrypoint,
        cmd,
        working_dir,
        user,
        labels,
        exposed_ports,
        volumes,
        stop_signal,
    } = config;
    let base = match base {
        BaseId::Scratch => serde_json::json!({ "kind": "scratch" }),
        BaseId::Rootfs(identity) => serde_json::json!({ "kind": "rootfs", "identity": identity }),
        // The reference as written is recorded in the `base.name` annotation, so it counts.
        BaseId::Registry { reference, digest } => {
            serde_json::json!({ "kind": "registry", "reference": reference, "digest": digest })
        }
    };
    let doc = serde_json::json!({
        "builder": INPUTS_EPOCH,
        "service": service.map(|s| s.name()),
        "layers": layers,
        "base": base,
        "config": {
            "env": env,
            "entrypoint": entrypoint,
            "cmd": cmd,
            "working_dir": working_dir,
            "user": user,
            "labels": labels,
            "exposed_ports": exposed_ports,
            "volumes": volumes,
            "stop_signal": stop_signal,
        },
        "platforms": platforms(req).iter().map(ToString::to_string).collect::<Vec<_>>(),
        "annotations": annotations,
        "source_date_epoch": source_date_epoch,
        "compression": compression.cache_id(),
        "format": match format {
            ManifestFormat::Oci => "oci",
            ManifestFormat::Docker => "docker",
        },
        "package_version": package_version,
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// Plans the layers `req` gets from its package (service layers, then custom layers), with
/// the warnings a build would give.
pub(crate) fn plan_layers(
    sources: &mut Sources<'_>,
    req: &BuildRequest,
) -> Result<(Vec<LayerPlan>, Vec<String>), BuildError> {
    let layout = layout(req);
    let pkg = sources.package();
    let mut warnings = Vec::new();
    let mut plans = match req.service {
        Some(s) => {
            warnings.extend(layering::service_warnings(pkg, s));
            layering::plan_service_in(sources, s, &layout)?
        }
        None => Vec::new(),
    };
    plans.extend(layering::plan_custom(pkg, &req.custom_layers, &layout)?);
    Ok((plans, warnings))
}

/// The inputs of the image `req` describes, from cheap reads only: the package's central
/// directory and its nested archives' listings (cached under the layer cache, so a WAR that
/// did not change is not inflated), and a local rootfs's cached identity. Nothing is built
/// and nothing is contacted.
///
/// A registry base is identified by the manifest digest its reference resolves to. Resolving
/// a tag needs the registry, so the caller passes the digest as `registry_base` (a digest
/// reference needs none); [`build`](super::build) records the same value for the same
/// request when it resolves the tag itself. The output is not looked at: where an image goes
/// does not change what it is.
pub fn inspect_inputs(
    req: &BuildRequest,
    registry_base: Option<&Digest>,
) -> Result<InputsReport, BuildError> {
    validate_inputs(req)?;
    let cache_dir = req.layer_cache_dir();
    let rootfs;
    let digest;
    let base = match &req.base {
        Base::Scratch => BaseId::Scratch,
        Base::LocalRootfs(path) => {
            rootfs = rootfs_identity(path, Some(&cache_dir))?;
            BaseId::Rootfs(&rootfs)
        }
        Base::Registry(reference) => {
            digest = match registry_base {
                Some(d) => d.to_string(),
                None => reference_digest(reference)?,
            };
            BaseId::Registry {
                reference,
                digest: &digest,
            }
        }
    };
    let pkg = req.open_package()?;
    let mut sources =
        Sources::with_listing_cache(&pkg, ListingCache::new(cache_dir.join(LISTINGS_DIR)));
    let (plans, warnings) = plan_layers(&mut sources, req)?;
    let names: Vec<(&str, &str)> = plans
        .iter()
        .map(|p| (p.name.as_str(), p.fingerprint.as_str()))
        .collect();
    let version = pkg.version().map(str::to_string);
    Ok(InputsReport {
        inputs_fingerprint: fingerprint(req, base, &names, version.as_deref()),
        layers: plans
            .iter()
            .map(|p| InputLayer {
                name: p.name.clone(),
                fingerprint: p.fingerprint.clone(),
                files: p.file_count(),
                bytes: p.content_bytes(),
            })
            .collect(),
        base_identity: base.identity(),
        package_version: version,
        package_fingerprint: pkg.fingerprint()?,
        warnings,
    })
}

/// The digest of a digest reference; a tag reference must be resolved by the caller.
fn reference_digest(reference: &str) -> Result<String, BuildError> {
    let (_, parsed) = crate::registry::RepoRef::parse_reference(reference).map_err(|e| {
        BuildError::InvalidReference {
            reference: reference.to_string(),
            reason: e.to_string(),
        }
    })?;
    parsed.digest().map(str::to_string).ok_or_else(|| {
        BuildError::InvalidRequest(format!(
            "base image {reference} is a tag: resolve it to a manifest digest and pass that \
                 to inspect_inputs"
        ))
    })
}
