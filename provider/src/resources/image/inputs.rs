//! Plan-time resolution of an image's inputs: the base's manifest digest
//! (one HEAD for a tag), then `ep_imagebuild::build::inspect_inputs` on a
//! blocking thread — the package's central directories, cached nested
//! listings and a local base's cached identity, nothing built.

use ep_imagebuild::build::{inspect_inputs, InputsReport};

use crate::framework::{blocking, Diagnostics};
use crate::resources::provider::ProviderData;

use super::args::{BaseArg, ImageArgs};
use super::fingerprint;
use super::request::plan_request;

/// Inspects the inputs `args` describe. Errors a build would hit (a
/// missing application, an unsafe entry in a WAR, an unreadable base) are
/// diagnostics on the attribute responsible.
pub async fn resolve(data: &ProviderData, args: &ImageArgs) -> Result<InputsReport, Diagnostics> {
    let base_digest = match &args.base {
        BaseArg::Image(reference) => Some(
            data.registry()
                .resolve_reference(reference, || data.aws())
                .await
                .map_err(|d| d.at_root("base"))?,
        ),
        BaseArg::Scratch | BaseArg::Dir(_) | BaseArg::Tar(_) => None,
    };
    let req = plan_request(args)?;
    let layers = args.layers.clone();
    blocking("Reading the image inputs", move || {
        let started = std::time::Instant::now();
        let report = inspect_inputs(&req, base_digest.as_ref());
        tracing::debug!(
            ms = started.elapsed().as_secs_f64() * 1e3,
            "image inputs inspected"
        );
        report
    })
    .await?
    .map_err(|e| fingerprint::input_error(&e, &layers).into())
}
