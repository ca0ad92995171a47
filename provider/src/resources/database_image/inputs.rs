//! Plan-time (and apply-time) resolution of the inputs into the data
//! fingerprint: the package's data-population content from its central
//! directories, the server's `--version`, and the base's digest (one HEAD)
//! or a local root filesystem's content identity. No server is started.

use std::path::PathBuf;

use ep_imagebuild::build::rootfs_identity;
use ep_imagebuild::registry::RepoRef;

use super::settings::{fingerprint, Args, FingerprintInputs};
use crate::datapop::content::package_data_hash;
use crate::framework::{blocking, AttrPath, Diagnostic, Diagnostics};
use crate::resources::image::args::BaseArg;
use crate::resources::image::request::cache_root;
use crate::resources::provider::ProviderData;

/// What the inputs resolve to.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The data fingerprint.
    pub fingerprint: String,
    /// The server's version.
    pub server_version: String,
    /// The base pinned to what was fingerprinted: `registry/repo@digest`,
    /// or the local root filesystem.
    pub pinned_base: BaseArg,
}

fn at(attr: &str, summary: &str, detail: String) -> Diagnostics {
    Diagnostic::error(summary, detail)
        .at(AttrPath::root(attr))
        .into()
}

/// Resolves `args` (every input known).
pub async fn resolve(data: &ProviderData, args: &Args) -> Result<Resolved, Diagnostics> {
    let package = PathBuf::from(&args.package);
    let package_hash = blocking("Reading the deployment package", move || {
        package_data_hash(&package)
    })
    .await?
    .map_err(|e| {
        at(
            "deployment_package",
            "The package cannot populate a database",
            e.to_string(),
        )
    })?;
    let server_version = crate::dbserver::server_version(&args.server)
        .await
        .map_err(|e| {
            at(
                "server_binary",
                "Cannot run the database server",
                format!("{e}. Install MariaDB (`mariadb-server`) or set `server_binary`."),
            )
        })?;
    let (base_identity, pinned_base) = match &args.base {
        BaseArg::Image(reference) => {
            let digest = data
                .registry()
                .resolve_reference(reference, || data.aws())
                .await
                .map_err(|d| d.at_root("base"))?;
            let (repo, _) = RepoRef::parse_reference(reference)
                .map_err(|e| at("base", "Invalid base image reference", e.to_string()))?;
            (
                digest.to_string(),
                BaseArg::Image(format!("{repo}@{digest}")),
            )
        }
        BaseArg::Dir(p) | BaseArg::Tar(p) => {
            let path = PathBuf::from(p);
            let cache = cache_root().join("layers");
            let identity = blocking("Reading the base root filesystem", move || {
                rootfs_identity(&path, Some(&cache))
            })
            .await?
            .map_err(|e| {
                at(
                    "base",
                    "Cannot read the base root filesystem",
                    e.to_string(),
                )
            })?;
            (identity, args.base.clone())
        }
        BaseArg::Scratch => {
            return Err(at(
                "base",
                "A database image needs a server",
                "`scratch` has no server to run the data.".into(),
            ))
        }
    };
    let fingerprint = fingerprint(&FingerprintInputs {
        package_hash: &package_hash,
        args,
        server_version: &server_version,
        base_identity: &base_identity,
    });
    Ok(Resolved {
        fingerprint,
        server_version,
        pinned_base,
    })
}
