//! The `ep_image` configuration, read from a Terraform value and checked
//! attribute by attribute so every problem points at its path.

use std::collections::BTreeMap;

use ep_imagebuild::layering::Service;
use ep_imagebuild::registry::{valid_repository, valid_tag};

use super::model::ImageModel;
use crate::framework::model::Field;
use crate::framework::{AttrPath, Diagnostics, Phase, Planning};

/// Where the image's base comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseArg {
    /// No base: our layers only.
    Scratch,
    /// A local root filesystem directory, turned into a layer.
    Dir(String),
    /// A local root filesystem tarball, turned into a layer.
    Tar(String),
    /// An image in a registry (tag or digest reference).
    Image(String),
}

/// One explicit `layer` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerArg {
    /// Path or glob inside the package (or a host directory).
    pub source: String,
    /// Destination directory in the image.
    pub destination: String,
    /// File mode, when set.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Everything `ep_image` is configured with, wholly known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageArgs {
    /// Repository as written: an ECR repository name or `host/repo`.
    pub repository: String,
    /// Tags to push.
    pub tags: Vec<String>,
    /// The deployment package.
    pub deployment_package: Option<String>,
    /// The service to build.
    pub service: Option<String>,
    /// Explicit layers.
    pub layers: Vec<LayerArg>,
    /// The base.
    pub base: BaseArg,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed ports.
    pub exposed_ports: Vec<String>,
    /// Stop signal.
    pub stop_signal: Option<String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Target platforms.
    pub platforms: Vec<String>,
    /// Timestamp written into the image.
    pub source_date_epoch: u64,
    /// `gzip` or `zstd`.
    pub compression: String,
    /// `oci` or `docker`.
    pub format: String,
}

/// Platforms the builder targets.
pub const PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];

/// Splits a repository argument into an explicit registry host (when the
/// first component looks like one, by the builder's rule) and the path.
pub fn split_repository(repo: &str) -> (Option<&str>, &str) {
    ep_imagebuild::registry::split_host(repo)
}

/// Parses a base argument: `scratch`, `dir:PATH`, `tar:PATH` or an image reference.
pub fn parse_base(s: &str) -> BaseArg {
    if s == "scratch" {
        BaseArg::Scratch
    } else if let Some(p) = s.strip_prefix("dir:") {
        BaseArg::Dir(p.to_owned())
    } else if let Some(p) = s.strip_prefix("tar:") {
        BaseArg::Tar(p.to_owned())
    } else {
        BaseArg::Image(s.to_owned())
    }
}

/// Checks what can be checked of a (possibly partly unknown) configuration.
pub fn validate(c: &ImageModel<Planning>) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Some(repo) = c.repository.get() {
        let (host, path) = split_repository(repo);
        if host.is_some_and(str::is_empty) || !valid_repository(path) {
            d.attr_error(
                AttrPath::root("repository"),
                "Invalid repository",
                format!(
                    "{repo:?} is neither an ECR repository name (such as \"ep/cortex\": \
                     `/`-separated parts of lowercase letters and digits, joined within a part \
                     by `.`, `_`, `__` or dashes) nor `registry-host/repository`."
                ),
            );
        }
    }
    for (i, t) in c.tags.present().into_iter().flatten().enumerate() {
        if !valid_tag(t) {
            d.attr_error(
                AttrPath::root("tags").index(i),
                "Invalid tag",
                format!(
                    "{t:?} is not a valid image tag: up to 128 letters, digits, `_`, `.` and \
                     `-`, not starting with `.` or `-`."
                ),
            );
        }
    }
    if let Some(s) = c.service.present() {
        if let Err(e) = s.parse::<Service>() {
            d.attr_error(
                AttrPath::root("service"),
                "Unknown service",
                format!("{e}."),
            );
        }
    }
    if c.service.is_null() && c.layer.get().is_some_and(Vec::is_empty) {
        d.attr_error(
            AttrPath::root("service"),
            "Nothing to build",
            "Set `service` (with `deployment_package`) or at least one `layer` block.",
        );
    }
    if c.service.present().is_some() && c.deployment_package.is_null() {
        d.attr_error(
            AttrPath::root("deployment_package"),
            "Missing deployment package",
            "`service` builds from a deployment package: set `deployment_package`.",
        );
    }
    for (i, p) in c.platforms.present().into_iter().flatten().enumerate() {
        if !PLATFORMS.contains(&p.as_str()) {
            d.attr_error(
                AttrPath::root("platforms").index(i),
                "Unsupported platform",
                format!(
                    "{p:?} is not supported; use one of {}.",
                    PLATFORMS.join(", ")
                ),
            );
        }
    }
    for (attr, value, allowed) in [
        ("compression", &c.compression, &["gzip", "zstd"][..]),
        ("format", &c.format, &["oci", "docker"][..]),
    ] {
        if let Some(v) = value.present() {
            if !allowed.contains(&v.as_str()) {
                d.attr_error(
                    AttrPath::root(attr),
                    format!("Invalid {attr}"),
                    format!("{v:?} is not one of {}.", allowed.join(", ")),
                );
            }
        }
    }
    if let Some(BaseArg::Image(r)) = c.base.present().map(|b| parse_base(b)) {
        // The builder's parser, not `str::parse::<Reference>` (oci-spec's
        // regular expression: ~0.1 s to compile in every provider process).
        if ep_imagebuild::registry::RepoRef::parse_reference(&r).is_err() {
            d.attr_error(
                AttrPath::root("base"),
                "Invalid base image reference",
                format!(
                    "{r:?} is not an image reference (`registry/repo:tag` or \
                     `registry/repo@sha256:…`), `scratch`, `dir:PATH` or `tar:PATH`."
                ),
            );
        }
    }
    for (i, l) in c.layer.get().into_iter().flatten().enumerate() {
        let dest = &l.destination;
        if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
            d.attr_error(
                AttrPath::root("layer").index(i).attr("destination"),
                "Invalid destination",
                format!("{dest:?} must be an absolute path in the image without `..`."),
            );
        }
        if let Some(mode) = &l.mode {
            if parse_mode(mode).is_none() {
                d.attr_error(
                    AttrPath::root("layer").index(i).attr("mode"),
                    "Invalid mode",
                    format!("{mode:?} is not an octal file mode such as \"0644\"."),
                );
            }
        }
    }
    d
}

fn parse_mode(mode: &str) -> Option<u32> {
    u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777)
}

impl ImageArgs {
    /// The build inputs of a model, or `None` while any of them is unknown.
    /// Tags, repository settings and `keep_on_destroy` do not feed the
    /// build: they may stay unknown.
    pub fn from_model<P: Phase>(c: &ImageModel<P>) -> Option<ImageArgs> {
        fn k<P: Phase, T: Field>(v: &P::Of<T>) -> Option<T> {
            P::known(v).cloned()
        }
        let layers = k::<P, _>(&c.layer)?
            .into_iter()
            .map(|l| LayerArg {
                mode: l.mode.as_deref().and_then(parse_mode),
                uid: l.uid.unwrap_or(0),
                gid: l.gid.unwrap_or(0),
                source: l.source,
                destination: l.destination,
            })
            .collect();
        Some(ImageArgs {
            repository: k::<P, _>(&c.repository)?,
            tags: P::known(&c.tags).cloned().flatten().unwrap_or_default(),
            deployment_package: k::<P, _>(&c.deployment_package)?,
            service: k::<P, _>(&c.service)?,
            layers,
            base: k::<P, _>(&c.base)?
                .map(|b| parse_base(&b))
                .unwrap_or(BaseArg::Scratch),
            env: k::<P, _>(&c.env)?.unwrap_or_default(),
            entrypoint: k::<P, _>(&c.entrypoint)?,
            cmd: k::<P, _>(&c.cmd)?,
            working_dir: k::<P, _>(&c.working_dir)?,
            user: k::<P, _>(&c.user)?,
            labels: k::<P, _>(&c.labels)?.unwrap_or_default(),
            exposed_ports: k::<P, _>(&c.exposed_ports)?.unwrap_or_default(),
            stop_signal: k::<P, _>(&c.stop_signal)?,
            annotations: k::<P, _>(&c.annotations)?.unwrap_or_default(),
            platforms: k::<P, _>(&c.platforms)?
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| vec!["linux/amd64".to_owned()]),
            source_date_epoch: k::<P, _>(&c.source_date_epoch)?.unwrap_or(0),
            compression: k::<P, _>(&c.compression)?.unwrap_or_else(|| "gzip".to_owned()),
            format: k::<P, _>(&c.format)?.unwrap_or_else(|| "oci".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::from_value;
    use crate::framework::Value;

    /// A configuration with `attrs` set and everything else null.
    fn config<'a>(attrs: impl IntoIterator<Item = (&'a str, Value)>) -> ImageModel<Planning> {
        let mut v = Value::object(attrs);
        if v.attr("layer").is_null() {
            v = match v {
                Value::Object(mut m) => {
                    m.insert("layer".into(), Value::List(Vec::new()));
                    Value::Object(m)
                }
                other => other,
            };
        }
        from_value(&v.fit(&super::super::schema::schema().value_type())).expect("model")
    }

    #[test]
    fn repositories() {
        assert_eq!(split_repository("ep/cortex"), (None, "ep/cortex"));
        assert_eq!(
            split_repository("127.0.0.1:5001/ep/cortex"),
            (Some("127.0.0.1:5001"), "ep/cortex")
        );
        // The builder's own grammar: what validate lets through, apply accepts.
        assert!(valid_repository("ep/cortex"));
        for bad in ["EP/Cortex", "ep//cortex", "ep/a..b", "ep/a._b"] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }

    #[test]
    fn diagnostics_point_at_attributes() {
        let c = config([
            ("repository", Value::string("Bad Repo")),
            (
                "tags",
                Value::list([Value::string("ok"), Value::string("bad tag!")]),
            ),
            ("service", Value::string("frontend")),
            ("deployment_package", Value::string("p.zip")),
            ("platforms", Value::list([Value::string("windows/amd64")])),
            ("base", Value::string("not a ref!")),
        ]);
        let paths: Vec<String> = validate(&c)
            .iter()
            .filter_map(|d| d.path.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(
            paths,
            ["repository", "tags[1]", "service", "platforms[0]", "base"]
        );
    }

    #[test]
    fn unknown_values_pass() {
        let c = config([
            ("repository", Value::unknown()),
            ("tags", Value::list([Value::unknown()])),
            ("service", Value::unknown()),
            ("layer", Value::unknown()),
        ]);
        assert!(validate(&c).is_empty());
        assert!(ImageArgs::from_model(&c).is_none());
    }

    #[test]
    fn unknown_tags_leave_the_build_inputs_known() {
        let c = config([
            ("repository", Value::string("ep/cortex")),
            ("tags", Value::unknown()),
            ("service", Value::string("cortex")),
            ("deployment_package", Value::string("p.zip")),
        ]);
        let args = ImageArgs::from_model(&c).expect("known build inputs");
        assert_eq!(args.platforms, ["linux/amd64"]);
        assert!(args.tags.is_empty());
    }
}
