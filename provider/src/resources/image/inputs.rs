//! Plan-time resolution of an image's inputs: the cheap reads (a zip's
//! central directory, one manifest HEAD) that the input fingerprint needs.

use std::path::PathBuf;

use crate::framework::{AttrPath, Diagnostic, Diagnostics};
use crate::resources::provider::ProviderData;

use super::args::{BaseArg, ImageArgs};
use super::fingerprint::{self, Resolved};

/// Runs a blocking read, naming `what` when the thread itself fails.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, Diagnostics> + Send + 'static,
) -> Result<T, Diagnostics> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            format!("Reading the {what} failed"),
            e.to_string(),
        ))
    })?
}

/// Resolves the package fingerprint and the base's identity.
pub async fn resolve(data: &ProviderData, args: &ImageArgs) -> Result<Resolved, Diagnostics> {
    let package_fingerprint = match &args.deployment_package {
        Some(p) => {
            let p = PathBuf::from(p);
            Some(
                blocking("package", move || {
                    fingerprint::package_fingerprint(&p).map_err(|e| {
                        Diagnostic::error("Cannot read the deployment package", format!("{e}."))
                            .at(AttrPath::root("deployment_package"))
                            .into()
                    })
                })
                .await?,
            )
        }
        None => None,
    };
    let base_identity = match &args.base {
        BaseArg::Scratch => None,
        BaseArg::Dir(p) | BaseArg::Tar(p) => {
            let p = PathBuf::from(p);
            Some(
                blocking("base", move || {
                    fingerprint::rootfs_fingerprint(&p).map_err(|e| {
                        Diagnostic::error(
                            "Cannot read the base root filesystem",
                            format!("{}: {e}.", p.display()),
                        )
                        .at(AttrPath::root("base"))
                        .into()
                    })
                })
                .await?,
            )
        }
        BaseArg::Image(reference) => Some(
            data.registry()
                .resolve_reference(reference, || data.aws())
                .await
                .map_err(|d| d.at_root("base"))?
                .to_string(),
        ),
    };
    Ok(Resolved {
        package_fingerprint,
        base_identity,
    })
}
