//! The build request for an `ep_image` configuration: the one translation of the
//! configuration into what `ep_imagebuild` builds, used by plan (to fingerprint the
//! inputs) and by apply (to build them), so the two cannot disagree.

use std::path::PathBuf;

use ep_imagebuild::build::{Base, BuildRequest, Output};
use ep_imagebuild::image::{ConfigOverrides, ManifestFormat, Platform};
use ep_imagebuild::layer::{Compression, DEFAULT_ZSTD_LEVEL};
use ep_imagebuild::layering::{CustomLayer, CustomSource, Service};

use crate::framework::{AttrPath, Diagnostic, Diagnostics};

use super::args::{BaseArg, ImageArgs};

/// Where the provider keeps its layer cache (and the nested listings and
/// rootfs identities the plan reads) and its build directories.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("EP_IMAGE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("terraform-provider-ep")
}

/// The request building `args` into `output`, with scratch space in
/// `work_dir` and the provider's shared layer cache.
pub fn build_request(
    args: &ImageArgs,
    output: Output,
    work_dir: PathBuf,
) -> Result<BuildRequest, Diagnostics> {
    let package = args
        .deployment_package
        .clone()
        .map(PathBuf::from)
        .ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::error(
                    "Missing deployment package",
                    "Building needs `deployment_package`.",
                )
                .at(AttrPath::root("deployment_package")),
            )
        })?;
    let mut req = BuildRequest::new(package, output, work_dir);
    req.cache_dir = Some(cache_root().join("layers"));
    req.service = match &args.service {
        Some(s) => Some(s.parse::<Service>().map_err(|e| {
            Diagnostics::from(
                Diagnostic::error("Unknown service", e.to_string()).at(AttrPath::root("service")),
            )
        })?),
        None => None,
    };
    req.custom_layers = args
        .layers
        .iter()
        .map(|l| CustomLayer {
            name: None,
            source: match l.source.strip_prefix("host:") {
                Some(p) => CustomSource::Host(PathBuf::from(p)),
                None => CustomSource::Package(l.source.clone()),
            },
            destination: l.destination.clone(),
            mode: l.mode,
            uid: l.uid,
            gid: l.gid,
        })
        .collect();
    req.base = match &args.base {
        BaseArg::Scratch => Base::Scratch,
        BaseArg::Dir(p) | BaseArg::Tar(p) => Base::LocalRootfs(PathBuf::from(p)),
        BaseArg::Image(r) => Base::Registry(r.clone()),
    };
    req.config = ConfigOverrides {
        env: args
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        entrypoint: args.entrypoint.clone(),
        cmd: args.cmd.clone(),
        working_dir: args.working_dir.clone(),
        user: args.user.clone(),
        labels: args.labels.clone(),
        exposed_ports: args.exposed_ports.clone(),
        volumes: Vec::new(),
        stop_signal: args.stop_signal.clone(),
    };
    req.platforms = args
        .platforms
        .iter()
        .filter_map(|p| Platform::parse(p))
        .collect();
    req.annotations = args.annotations.clone();
    req.source_date_epoch = args.source_date_epoch;
    req.compression = if args.compression == "zstd" {
        Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    } else {
        Compression::default()
    };
    req.format = if args.format == "docker" {
        ManifestFormat::Docker
    } else {
        ManifestFormat::Oci
    };
    Ok(req)
}

/// The request as plan sees it: the output does not change the image, so
/// the repository is named as written and nothing is contacted.
pub fn plan_request(args: &ImageArgs) -> Result<BuildRequest, Diagnostics> {
    build_request(
        args,
        Output::Push {
            repository: args.repository.clone(),
            tags: args.tags.clone(),
        },
        cache_root().join("work"),
    )
}
