//! The `ep_image` configuration, read from a Terraform value and checked
//! attribute by attribute so every problem points at its path.

use std::collections::BTreeMap;

use crate::framework::{AttrPath, Diagnostics, Value};

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

/// Services the builder knows.
pub const SERVICES: &[&str] = &[
    "cortex",
    "cm",
    "batch",
    "integration",
    "search",
    "data-sync",
    "data-population",
];

/// Platforms the builder targets.
pub const PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];

/// Whether `t` is a valid OCI tag.
pub fn valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && t.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Splits a repository argument into an explicit registry host (when the
/// first component looks like one) and the repository path.
pub fn split_repository(repo: &str) -> (Option<&str>, &str) {
    match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, repo),
    }
}

fn valid_repository_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 255
        && p.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        })
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_list().map(|l| {
        l.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    })
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
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
pub fn validate(config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Some(repo) = config.attr("repository").as_str() {
        let (host, path) = split_repository(repo);
        if host.is_some_and(str::is_empty) || !valid_repository_path(path) {
            d.attr_error(
                AttrPath::root("repository"),
                "Invalid repository",
                format!(
                    "{repo:?} is neither an ECR repository name (lowercase letters, digits, \
                     `._-` and `/`, such as \"ep/cortex\") nor `registry-host/repository`."
                ),
            );
        }
    }
    if let Some(tags) = config.attr("tags").as_list() {
        for (i, t) in tags.iter().enumerate() {
            if let Some(t) = t.as_str() {
                if !valid_tag(t) {
                    d.attr_error(
                        AttrPath::root("tags").index(i),
                        "Invalid tag",
                        format!(
                            "{t:?} is not a valid image tag: up to 128 letters, digits, `_`, `.` \
                             and `-`, not starting with `.` or `-`."
                        ),
                    );
                }
            }
        }
    }
    if let Some(s) = config.attr("service").as_str() {
        if !SERVICES.contains(&s) {
            d.attr_error(
                AttrPath::root("service"),
                "Unknown service",
                format!(
                    "{s:?} is not a service the builder knows: {}.",
                    SERVICES.join(", ")
                ),
            );
        }
    }
    let service = config.attr("service");
    let layers = config.attr("layer");
    let no_layers = layers.as_list().is_some_and(<[Value]>::is_empty) || layers.is_null();
    if service.is_null() && no_layers && service.is_known() && layers.is_known() {
        d.attr_error(
            AttrPath::root("service"),
            "Nothing to build",
            "Set `service` (with `deployment_package`) or at least one `layer` block.",
        );
    }
    if service.as_str().is_some() && config.attr("deployment_package").is_null() {
        d.attr_error(
            AttrPath::root("deployment_package"),
            "Missing deployment package",
            "`service` builds from a deployment package: set `deployment_package`.",
        );
    }
    if let Some(platforms) = config.attr("platforms").as_list() {
        for (i, p) in platforms.iter().enumerate() {
            if let Some(p) = p.as_str() {
                if !PLATFORMS.contains(&p) {
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
        }
    }
    for (attr, allowed) in [
        ("compression", &["gzip", "zstd"][..]),
        ("format", &["oci", "docker"][..]),
    ] {
        if let Some(v) = config.attr(attr).as_str() {
            if !allowed.contains(&v) {
                d.attr_error(
                    AttrPath::root(attr),
                    format!("Invalid {attr}"),
                    format!("{v:?} is not one of {}.", allowed.join(", ")),
                );
            }
        }
    }
    if let Some(BaseArg::Image(r)) = config.attr("base").as_str().map(parse_base) {
        if r.parse::<ep_imagebuild::registry::Reference>().is_err() {
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
    if let Some(n) = config.attr("source_date_epoch").as_number() {
        if n.to_u64().is_none() {
            d.attr_error(
                AttrPath::root("source_date_epoch"),
                "Invalid timestamp",
                "`source_date_epoch` is a whole number of seconds since 1970, not negative.",
            );
        }
    }
    if let Some(layers) = layers.as_list() {
        for (i, l) in layers.iter().enumerate() {
            if let Some(dest) = l.attr("destination").as_str() {
                if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
                    d.attr_error(
                        AttrPath::root("layer").index(i).attr("destination"),
                        "Invalid destination",
                        format!("{dest:?} must be an absolute path in the image without `..`."),
                    );
                }
            }
            if let Some(mode) = l.attr("mode").as_str() {
                if u32::from_str_radix(mode, 8).map_or(true, |m| m > 0o7777) {
                    d.attr_error(
                        AttrPath::root("layer").index(i).attr("mode"),
                        "Invalid mode",
                        format!("{mode:?} is not an octal file mode such as \"0644\"."),
                    );
                }
            }
        }
    }
    d
}

impl ImageArgs {
    /// Reads a validated, wholly known configuration.
    pub fn from_config(c: &Value) -> ImageArgs {
        let layers = c
            .attr("layer")
            .as_list()
            .unwrap_or_default()
            .iter()
            .map(|l| LayerArg {
                source: opt_str(l.attr("source")).unwrap_or_default(),
                destination: opt_str(l.attr("destination")).unwrap_or_default(),
                mode: l
                    .attr("mode")
                    .as_str()
                    .and_then(|m| u32::from_str_radix(m, 8).ok()),
                uid: l
                    .attr("uid")
                    .as_number()
                    .and_then(|n| n.to_u64())
                    .unwrap_or(0) as u32,
                gid: l
                    .attr("gid")
                    .as_number()
                    .and_then(|n| n.to_u64())
                    .unwrap_or(0) as u32,
            })
            .collect();
        ImageArgs {
            repository: opt_str(c.attr("repository")).unwrap_or_default(),
            tags: strings(c.attr("tags")).unwrap_or_default(),
            deployment_package: opt_str(c.attr("deployment_package")),
            service: opt_str(c.attr("service")),
            layers,
            base: c
                .attr("base")
                .as_str()
                .map(parse_base)
                .unwrap_or(BaseArg::Scratch),
            env: string_map(c.attr("env")),
            entrypoint: strings(c.attr("entrypoint")),
            cmd: strings(c.attr("cmd")),
            working_dir: opt_str(c.attr("working_dir")),
            user: opt_str(c.attr("user")),
            labels: string_map(c.attr("labels")),
            exposed_ports: strings(c.attr("exposed_ports")).unwrap_or_default(),
            stop_signal: opt_str(c.attr("stop_signal")),
            annotations: string_map(c.attr("annotations")),
            platforms: strings(c.attr("platforms"))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| vec!["linux/amd64".to_owned()]),
            source_date_epoch: c
                .attr("source_date_epoch")
                .as_number()
                .and_then(|n| n.to_u64())
                .unwrap_or(0),
            compression: opt_str(c.attr("compression")).unwrap_or_else(|| "gzip".to_owned()),
            format: opt_str(c.attr("format")).unwrap_or_else(|| "oci".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert!(valid_tag("8.5.0"));
        assert!(valid_tag("build_12-rc.1"));
        assert!(!valid_tag("bad tag!"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn repositories() {
        assert_eq!(split_repository("ep/cortex"), (None, "ep/cortex"));
        assert_eq!(
            split_repository("127.0.0.1:5001/ep/cortex"),
            (Some("127.0.0.1:5001"), "ep/cortex")
        );
        assert!(valid_repository_path("ep/cortex"));
        assert!(!valid_repository_path("EP/Cortex"));
        assert!(!valid_repository_path("ep//cortex"));
    }

    #[test]
    fn diagnostics_point_at_attributes() {
        let c = Value::object([
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
        let c = Value::object([
            ("repository", Value::unknown()),
            ("tags", Value::list([Value::unknown()])),
            ("service", Value::unknown()),
            ("layer", Value::unknown()),
        ]);
        assert!(validate(&c).is_empty());
    }
}
