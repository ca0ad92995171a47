//! The plan-time input fingerprint (`source_fingerprint`) is the builder's
//! per-image inputs fingerprint (`ep_imagebuild::build::inspect_inputs`):
//! cheap, machine-independent, and equal exactly when a build would produce
//! the same image. It covers this image's own layers (so a class changed in
//! cortex leaves `cm` alone), the base by digest or content, and every
//! setting that changes the image; never tags, repository settings,
//! absolute paths or modification times. The build records the same value
//! in the image (annotation `com.elasticpath.image.inputs-fingerprint`), so
//! an imported image plans clean against the configuration that built it.
//!
//! This module turns what the inspection says into Terraform diagnostics
//! on the attribute responsible.

use ep_imagebuild::build::{BuildError, InputsReport};
use ep_imagebuild::layering::LayeringError;

use crate::framework::{AttrPath, Diagnostic, Diagnostics};

use super::args::LayerArg;

/// The attribute a failed inspection is about.
fn path_of(e: &BuildError, layers: &[LayerArg]) -> Option<AttrPath> {
    let layer_named = |pattern: &str| {
        layers
            .iter()
            .position(|l| {
                let source = l.source.strip_prefix("host:").unwrap_or(&l.source);
                source == pattern || source.trim_matches('/') == pattern
            })
            .map_or_else(
                || AttrPath::root("layer"),
                |i| AttrPath::root("layer").index(i),
            )
    };
    Some(match e {
        BuildError::Package(_) => AttrPath::root("deployment_package"),
        BuildError::Layering(l) => match l {
            LayeringError::Package(_) => AttrPath::root("deployment_package"),
            LayeringError::MissingApplication { .. }
            | LayeringError::MissingTool { .. }
            | LayeringError::MissingExtData { .. } => AttrPath::root("service"),
            LayeringError::NoMatch { pattern } => layer_named(pattern),
            LayeringError::Host { path, .. } | LayeringError::UnsupportedHostEntry { path, .. } => {
                let host = |l: &LayerArg| match l.source.strip_prefix("host:") {
                    Some(p) => path.starts_with(p),
                    None => false,
                };
                layers.iter().position(host).map_or_else(
                    || AttrPath::root("layer"),
                    |i| AttrPath::root("layer").index(i),
                )
            }
            LayeringError::InvalidDestination { .. } | LayeringError::Conflict { .. } => {
                AttrPath::root("layer")
            }
            _ => return None,
        },
        BuildError::Io { .. } | BuildError::InvalidReference { .. } => AttrPath::root("base"),
        _ => return None,
    })
}

/// A failed inspection as the error apply would hit, on its attribute.
pub fn input_error(e: &BuildError, layers: &[LayerArg]) -> Diagnostic {
    let summary = match e {
        BuildError::Package(_) => "Cannot read the deployment package",
        BuildError::Layering(LayeringError::Package(_)) => {
            "The deployment package cannot be built into an image"
        }
        BuildError::Layering(
            LayeringError::MissingApplication { .. }
            | LayeringError::MissingTool { .. }
            | LayeringError::MissingExtData { .. },
        ) => "The deployment package lacks what the service needs",
        BuildError::Io { .. } => "Cannot read the base root filesystem",
        _ => "Invalid image inputs",
    };
    let d = Diagnostic::error(summary, format!("{e}."));
    match path_of(e, layers) {
        Some(p) => d.at(p),
        None => d,
    }
}

/// What the builder warns about (a cortex image without Cortex Studio), as
/// warnings on `service`.
pub fn warnings(inputs: &InputsReport) -> Diagnostics {
    let mut d = Diagnostics::new();
    for w in &inputs.warnings {
        d.push(
            Diagnostic::warning("Image built without part of the service", format!("{w}."))
                .at(AttrPath::root("service")),
        );
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use ep_imagebuild::layering::Service;
    use ep_imagebuild::package::PackageError;

    fn layer(source: &str) -> LayerArg {
        LayerArg {
            source: source.into(),
            destination: "/x".into(),
            mode: None,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn errors_point_at_their_attribute() {
        let layers = [layer("database/jdbc/*.jar"), layer("tools/*.zip")];
        let cases = [
            (
                BuildError::Layering(LayeringError::Package(PackageError::SymlinkEntry {
                    entry: "webapps/x.war!/WEB-INF/lib/a.jar".into(),
                })),
                "deployment_package",
            ),
            (
                BuildError::Layering(LayeringError::MissingApplication {
                    service: Service::Cm,
                    application: "cm".into(),
                }),
                "service",
            ),
            (
                BuildError::Layering(LayeringError::NoMatch {
                    pattern: "tools/*.zip".into(),
                }),
                "layer[1]",
            ),
        ];
        for (e, want) in cases {
            let d = input_error(&e, &layers);
            assert_eq!(
                d.path.as_ref().map(ToString::to_string).as_deref(),
                Some(want),
                "{e}"
            );
        }
    }
}
