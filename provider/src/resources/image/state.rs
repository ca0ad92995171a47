//! Planned and applied state of `ep_image`: which attributes are outputs and
//! how they carry over.

use std::collections::BTreeMap;

use ep_imagebuild::build::BuildReport;

use crate::framework::Value;

use super::args::{BaseArg, ImageArgs};
use super::fingerprint::Resolved;

/// Attributes the provider computes.
const OUTPUTS: &[&str] = &[
    "id",
    "digest",
    "image_uri",
    "registry",
    "base_digest",
    "package_fingerprint",
    "source_fingerprint",
    "layers",
];

/// Attributes that do not feed the build: they may be unknown at plan time
/// without making the image's digest unknown.
const NOT_BUILD_INPUTS: &[&str] = &[
    "tags",
    "create_repository",
    "repository_settings",
    "keep_on_destroy",
    "timeouts",
];

/// Whether every input that determines the image is known.
pub fn build_inputs_known(config: &Value) -> bool {
    match config.as_map() {
        Some(attrs) => attrs
            .iter()
            .filter(|(k, _)| !NOT_BUILD_INPUTS.contains(&k.as_str()))
            .all(|(_, v)| v.is_wholly_known()),
        None => config.is_wholly_known(),
    }
}

fn with(base: &Value, set: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let mut m: BTreeMap<String, Value> = base.as_map().cloned().unwrap_or_default();
    for (k, v) in set {
        m.insert(k.to_owned(), v);
    }
    Value::Object(m)
}

/// Unchanged inputs: every output stays as it was.
pub fn keep_outputs(proposed: &Value, prior: &Value) -> Value {
    with(
        proposed,
        OUTPUTS.iter().map(|k| (*k, prior.attr(k).clone())),
    )
}

/// Changed inputs: what is known now, and unknown for what the build decides.
pub fn new_outputs(
    proposed: &Value,
    prior: &Value,
    fp: &str,
    resolved: &Resolved,
    args: &ImageArgs,
) -> Value {
    // The registry only changes with the repository (which replaces the resource).
    let registry = match prior.attr("registry") {
        Value::String(r) if prior.attr("repository") == proposed.attr("repository") => {
            Value::string(r)
        }
        _ => Value::unknown(),
    };
    let base_digest = match (&args.base, &resolved.base_identity) {
        (BaseArg::Image(_), Some(d)) => Value::string(d),
        _ => Value::Null,
    };
    with(
        proposed,
        [
            ("id", Value::unknown()),
            ("digest", Value::unknown()),
            ("image_uri", Value::unknown()),
            ("registry", registry),
            ("layers", Value::unknown()),
            ("base_digest", base_digest),
            (
                "package_fingerprint",
                resolved
                    .package_fingerprint
                    .as_deref()
                    .map(Value::string)
                    .unwrap_or(Value::Null),
            ),
            ("source_fingerprint", Value::string(fp)),
        ],
    )
}

/// One entry of the `layers` output.
pub fn layer_value(digest: &str, size: u64, created_by: Option<&str>) -> Value {
    Value::object([
        ("digest", Value::string(digest)),
        ("size", Value::number(size)),
        (
            "created_by",
            created_by.map(Value::string).unwrap_or(Value::Null),
        ),
    ])
}

/// The state after a build: planned values plus what the build reported and
/// the registry describes (the same description an import reads).
pub fn from_report(
    planned: &Value,
    registry: &str,
    repository: &str,
    report: &BuildReport,
    layers: Value,
) -> Value {
    let uri = format!("{registry}/{repository}@{}", report.manifest_digest);
    with(
        planned,
        [
            ("id", Value::string(&uri)),
            ("image_uri", Value::string(&uri)),
            ("digest", Value::string(report.manifest_digest.as_str())),
            ("registry", Value::string(registry)),
            ("layers", layers),
        ],
    )
}

/// Replaces the attributes named with `set`.
pub fn set(state: &Value, set: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    with(state, set)
}
