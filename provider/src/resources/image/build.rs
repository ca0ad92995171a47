//! What `ep_image` does to the registry: build and push, retag, refresh,
//! delete, import.

use std::path::PathBuf;
use std::time::Duration;

use ep_imagebuild::build::{self as builder, Base, BuildRequest, NoProgress, Output};
use ep_imagebuild::digest::Digest;
use ep_imagebuild::image::{ConfigOverrides, ManifestFormat, Platform};
use ep_imagebuild::layer::{Compression, DEFAULT_ZSTD_LEVEL};
use ep_imagebuild::layering::{CustomLayer, CustomSource, Service};
use ep_imagebuild::registry::{media_types, RegistryClient, RepoRef};
use serde::{Deserialize, Serialize};

use crate::framework::{ApplyRequest, AttrPath, Diagnostic, Diagnostics, StateResponse, Value};

use super::super::provider::ProviderData;
use super::access::{registry_diag, Target};
use super::args::{BaseArg, ImageArgs};
use super::repository::EcrRepository;
use super::state;

/// Config label carrying the input fingerprint, so an imported image plans
/// clean against the configuration that built it.
pub const INPUT_FINGERPRINT_LABEL: &str = "com.elasticpath.image.input-fingerprint";

/// What `ep_image` keeps beside its state.
#[derive(Default, Serialize, Deserialize)]
struct Private {
    /// This resource created the ECR repository (and so may delete it).
    #[serde(default)]
    created_repository: bool,
}

impl Private {
    fn from_bytes(b: &[u8]) -> Private {
        serde_json::from_slice(b).unwrap_or_default()
    }

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `30s`, `45m`, `2h`, `1h30m`.
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
    }
    (num.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

fn timeout(config: &Value, op: &str, default_secs: u64) -> Result<Duration, Diagnostics> {
    match config.attr("timeouts").attr(op).as_str() {
        None => Ok(Duration::from_secs(default_secs)),
        Some(s) => parse_duration(s).ok_or_else(|| {
            Diagnostic::error(
                "Invalid timeout",
                format!("{s:?} is not a duration such as \"30m\" or \"1h30m\"."),
            )
            .at(AttrPath::root("timeouts").attr(op))
            .into()
        }),
    }
}

fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("EP_IMAGE_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("terraform-provider-ep")
}

fn error_keeping(prior: Value, private: Vec<u8>, diags: Diagnostics) -> StateResponse {
    StateResponse {
        new_state: prior,
        private,
        diagnostics: diags,
    }
}

async fn target_for(data: &ProviderData, state: &Value) -> Result<Target, Diagnostics> {
    let repo = state
        .attr("repository")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    data.registry()
        .target(&repo, || data.aws())
        .await
        .map_err(|d| d.at_root("repository"))
}

fn build_request(
    args: &ImageArgs,
    target: &Target,
    fingerprint: &str,
) -> Result<BuildRequest, Diagnostics> {
    let work = cache_root();
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
    let output = Output::Push {
        repository: target.repo.to_string(),
        tags: args.tags.clone(),
    };
    let mut req = BuildRequest::new(
        package,
        output,
        work.join("work")
            .join(format!("{}-{}", std::process::id(), &fingerprint[..12])),
    );
    req.cache_dir = Some(work.join("layers"));
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
    let mut labels = args.labels.clone();
    labels.insert(INPUT_FINGERPRINT_LABEL.to_owned(), fingerprint.to_owned());
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
        labels,
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

/// Create or update: build and push when inputs changed, else only retag.
pub async fn create_or_update(data: &ProviderData, req: ApplyRequest) -> StateResponse {
    let creating = req.prior_state.is_null();
    let mut private = Private::from_bytes(&req.planned_private);
    let fail = |diags: Diagnostics, private: &Private| {
        if creating {
            error_keeping(Value::Null, private.to_bytes(), diags)
        } else {
            error_keeping(req.prior_state.clone(), private.to_bytes(), diags)
        }
    };
    let op = if creating { "create" } else { "update" };
    let limit = match timeout(&req.config, op, 3600) {
        Ok(t) => t,
        Err(d) => return fail(d, &private),
    };
    let target = match target_for(data, &req.config).await {
        Ok(t) => t,
        Err(d) => return fail(d, &private),
    };
    let mut diags = Diagnostics::new();
    if let (Some(name), Some(true)) = (
        target.ecr_repository.as_deref(),
        req.config.attr("create_repository").as_bool(),
    ) {
        let settings = req.config.attr("repository_settings");
        let immutable = settings.attr("image_tag_mutability").as_str() == Some("IMMUTABLE");
        let scan = settings.attr("scan_on_push").as_bool().unwrap_or(false);
        match data.aws() {
            Ok(aws) => match aws.ecr().await {
                Ok(ecr) => match EcrRepository::new(&ecr, name).create(immutable, scan).await {
                    Ok(created) => private.created_repository |= created,
                    Err(e) => {
                        return fail(
                            Diagnostic::error("Could not create the ECR repository", e.to_string())
                                .into(),
                            &private,
                        )
                    }
                },
                Err(e) => {
                    return fail(
                        Diagnostic::error("Could not set up ECR", e.to_string()).into(),
                        &private,
                    )
                }
            },
            Err(d) => return fail(d, &private),
        }
    }
    let args = ImageArgs::from_config(&req.config);
    let fingerprint = req
        .planned_state
        .attr("source_fingerprint")
        .as_str()
        .map(str::to_owned);
    let retag_only = !creating
        && fingerprint.is_some()
        && req.prior_state.attr("source_fingerprint").as_str() == fingerprint.as_deref()
        && req.prior_state.attr("digest").as_str().is_some();
    let work = async {
        if retag_only {
            retag(&target, &req.prior_state, &args.tags).await?;
            Ok(state::set(
                &req.planned_state,
                [("tags", req.config.attr("tags").clone())],
            ))
        } else {
            let fp = fingerprint.clone().unwrap_or_default();
            let breq = build_request(&args, &target, &fp)?;
            let report = builder::build(&breq, &target.client, &NoProgress)
                .await
                .map_err(|e| {
                    Diagnostics::from(Diagnostic::error(
                        "Image build or push failed",
                        e.to_string(),
                    ))
                })?;
            let _ = std::fs::remove_dir_all(&breq.work_dir);
            let pushed = target
                .client
                .get_manifest(
                    &target.repo,
                    report.manifest_digest.as_str(),
                    &media_types::ALL_MANIFESTS,
                )
                .await
                .map_err(|e| registry_diag("Could not read back the pushed image", &e))?
                .ok_or_else(|| {
                    Diagnostics::from(Diagnostic::error(
                        "Pushed image not found",
                        format!(
                            "{}@{} is missing right after the push.",
                            target.repo, report.manifest_digest
                        ),
                    ))
                })?;
            let details = super::manifest::describe(&target, &pushed).await?;
            Ok(state::from_report(
                &req.planned_state,
                &target.repo.registry,
                &target.repo.repository,
                &report,
                details.layers,
            ))
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(new_state)) => StateResponse {
            new_state,
            private: private.to_bytes(),
            diagnostics: diags,
        },
        Ok(Err(d)) => fail(d, &private),
        Err(_) => {
            diags.error(
                format!("Image {op} timed out"),
                format!(
                    "Building and pushing did not finish within {}s; raise `timeouts.{op}`.",
                    limit.as_secs()
                ),
            );
            fail(diags, &private)
        }
    }
}

/// Points the new tags at the existing manifest; tags no longer listed are
/// removed where the registry allows it.
async fn retag(target: &Target, prior: &Value, tags: &[String]) -> Result<(), Diagnostics> {
    let digest = prior.attr("digest").as_str().unwrap_or_default();
    let manifest = target
        .client
        .get_manifest(&target.repo, digest, &media_types::ALL_MANIFESTS)
        .await
        .map_err(|e| registry_diag("Could not read the image's manifest", &e))?
        .ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Image disappeared",
                format!(
                    "{}@{digest} no longer exists; run plan again to rebuild it.",
                    target.repo
                ),
            ))
        })?;
    for t in tags {
        target
            .client
            .push_manifest(&target.repo, t, &manifest.media_type, &manifest.bytes)
            .await
            .map_err(|e| registry_diag("Could not tag the image", &e))?;
    }
    Ok(())
}

fn tag_list(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

/// Tags in the repository that point at `digest` (bounded: a repository
/// with thousands of tags is not walked entirely).
async fn tags_pointing_at(
    client: &RegistryClient,
    repo: &RepoRef,
    digest: &str,
) -> Result<Vec<String>, Diagnostics> {
    let all = client
        .list_tags(repo)
        .await
        .map_err(|e| registry_diag("Could not list tags", &e))?;
    let mut out = Vec::new();
    for t in all.into_iter().take(1000) {
        if let Ok(Some(h)) = client.head_manifest(repo, &t).await {
            if h.digest.as_str() == digest {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Read: the manifest must still exist; tags that moved are dropped from
/// state so the next plan puts them back.
pub async fn refresh(data: &ProviderData, state_v: Value, private: Vec<u8>) -> StateResponse {
    let Some(digest) = state_v.attr("digest").as_str().map(str::to_owned) else {
        return error_keeping(state_v, private, Diagnostics::new());
    };
    let target = match target_for(data, &state_v).await {
        Ok(t) => t,
        Err(d) => return error_keeping(state_v, private, d),
    };
    match target.client.head_manifest(&target.repo, &digest).await {
        Ok(None) => {
            return StateResponse {
                new_state: Value::Null,
                private,
                diagnostics: Diagnostics::new(),
            }
        }
        Ok(Some(_)) => {}
        Err(e) => {
            return error_keeping(
                state_v,
                private,
                registry_diag("Could not check the image", &e),
            )
        }
    }
    // Every tag at once: a refresh of many images must stay cheap.
    let tags = tag_list(state_v.attr("tags"));
    let heads = futures::future::join_all(
        tags.iter()
            .map(|t| target.client.head_manifest(&target.repo, t)),
    )
    .await;
    let mut kept = Vec::new();
    for (t, head) in tags.iter().zip(heads) {
        match head {
            Ok(Some(h)) if h.digest.as_str() == digest => kept.push(Value::string(t)),
            Ok(_) => {}
            Err(e) => {
                return error_keeping(state_v, private, registry_diag("Could not check a tag", &e))
            }
        }
    }
    let tags = if state_v.attr("tags").is_null() {
        Value::Null
    } else {
        Value::List(kept)
    };
    StateResponse {
        new_state: state::set(&state_v, [("tags", tags)]),
        private,
        diagnostics: Diagnostics::new(),
    }
}

/// Delete: remove the tags this resource pushed, and the manifest unless
/// `keep_on_destroy` or another tag still points at it.
pub async fn destroy(data: &ProviderData, prior: Value, private_bytes: Vec<u8>) -> StateResponse {
    let private = Private::from_bytes(&private_bytes);
    let limit = match timeout(&prior, "delete", 600) {
        Ok(t) => t,
        Err(d) => return error_keeping(prior, private_bytes, d),
    };
    let work =
        async {
            let mut diags = Diagnostics::new();
            let target = target_for(data, &prior).await?;
            let digest = prior.attr("digest").as_str().unwrap_or_default().to_owned();
            let ours = tag_list(prior.attr("tags"));
            let keep = prior.attr("keep_on_destroy").as_bool().unwrap_or(false);
            let ecr = match &target.ecr_repository {
                Some(_) => Some(data.aws()?.ecr().await.map_err(|e| {
                    Diagnostics::from(Diagnostic::error("Could not set up ECR", e.to_string()))
                })?),
                None => None,
            };
            let ecr_repo = ecr
                .as_ref()
                .zip(target.ecr_repository.as_deref())
                .map(|(c, n)| EcrRepository::new(c, n));
            let others: Vec<String> = if digest.is_empty() {
                Vec::new()
            } else {
                tags_pointing_at(&target.client, &target.repo, &digest)
                    .await?
                    .into_iter()
                    .filter(|t| !ours.contains(t))
                    .collect()
            };
            if keep || !others.is_empty() {
                match &ecr_repo {
                    Some(r) => r.untag(&ours).await.map_err(|e| {
                        Diagnostics::from(Diagnostic::error("Could not remove tags", e.to_string()))
                    })?,
                    None if !ours.is_empty() => {
                        diags.push(Diagnostic::warning(
                            "Tags left in place",
                            format!(
                        "The image {}@{digest} was kept ({}), and this registry cannot remove \
                         single tags: {} still point at it.",
                        target.repo,
                        if keep { "keep_on_destroy" } else { "other tags point at it" },
                        ours.join(", ")
                    ),
                        ))
                    }
                    None => {}
                }
            } else if !digest.is_empty() {
                let parsed: Digest =
                    digest
                        .parse()
                        .map_err(|e: ep_imagebuild::digest::InvalidDigest| {
                            Diagnostics::from(Diagnostic::error(
                                "Invalid digest in state",
                                e.to_string(),
                            ))
                        })?;
                target
                    .client
                    .delete_manifest(&target.repo, &parsed)
                    .await
                    .map_err(|e| registry_diag("Could not delete the image", &e))?;
                if let Some(r) = &ecr_repo {
                    // Real ECR may refuse the registry-API delete; its own API is authoritative.
                    let _ = r.delete_digest(&digest).await;
                }
            }
            if private.created_repository {
                if let Some(r) = &ecr_repo {
                    let force = prior
                        .attr("repository_settings")
                        .attr("force_delete")
                        .as_bool()
                        .unwrap_or(false);
                    match r.delete(force).await {
                        Ok(true) => {}
                        Ok(false) => diags.push(Diagnostic::warning(
                            "Repository kept",
                            "The ECR repository this resource created still holds other images; \
                         set repository_settings.force_delete to remove it anyway.",
                        )),
                        Err(e) => diags.error("Could not delete the ECR repository", e.to_string()),
                    }
                }
            }
            Ok::<_, Diagnostics>(diags)
        };
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(diags)) if !diags.has_errors() => StateResponse {
            new_state: Value::Null,
            private: Vec::new(),
            diagnostics: diags,
        },
        Ok(Ok(diags)) | Ok(Err(diags)) => error_keeping(prior, private_bytes, diags),
        Err(_) => error_keeping(
            prior,
            private_bytes,
            Diagnostic::error("Image delete timed out", "Raise `timeouts.delete`.").into(),
        ),
    }
}

/// Import from `registry/repository@sha256:…`.
pub async fn import(data: &ProviderData, id: &str) -> Result<Value, Diagnostics> {
    let bad = || {
        Diagnostics::from(Diagnostic::error(
            "Invalid import ID",
            format!("{id:?} is not `registry/repository@sha256:<digest>`."),
        ))
    };
    let (name, digest) = id.split_once('@').ok_or_else(bad)?;
    let digest: Digest = digest.parse().map_err(|_| bad())?;
    let (host, path) = name.split_once('/').ok_or_else(bad)?;
    let repository = if host.contains(".dkr.ecr.") {
        path.to_owned()
    } else {
        name.to_owned()
    };
    let target = data.registry().target(&repository, || data.aws()).await?;
    let fetched = target
        .client
        .get_manifest(&target.repo, digest.as_str(), &media_types::ALL_MANIFESTS)
        .await
        .map_err(|e| registry_diag("Could not read the image", &e))?
        .ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Image not found",
                format!("{}@{digest} does not exist.", target.repo),
            ))
        })?;
    let details = super::manifest::describe(&target, &fetched).await?;
    let tags = tags_pointing_at(&target.client, &target.repo, digest.as_str()).await?;
    let uri = format!(
        "{}/{}@{digest}",
        target.repo.registry, target.repo.repository
    );
    // Everything the registry cannot tell starts null (or an empty block list).
    let schema = super::schema::schema();
    let mut m: std::collections::BTreeMap<String, Value> = schema
        .block
        .attributes
        .iter()
        .map(|a| (a.name.clone(), Value::Null))
        .collect();
    for b in schema.block.blocks {
        m.insert(
            b.name.clone(),
            match b.nesting {
                crate::framework::Nesting::Single => Value::Null,
                _ => Value::List(Vec::new()),
            },
        );
    }
    m.insert("id".into(), Value::string(&uri));
    m.insert("image_uri".into(), Value::string(&uri));
    m.insert("repository".into(), Value::string(&repository));
    m.insert("registry".into(), Value::string(&target.repo.registry));
    m.insert("digest".into(), Value::string(digest.as_str()));
    m.insert(
        "tags".into(),
        Value::List(tags.into_iter().map(Value::string).collect()),
    );
    m.insert("layers".into(), details.layers);
    m.insert(
        "base_digest".into(),
        details
            .base_digest
            .map(Value::string)
            .unwrap_or(Value::Null),
    );
    m.insert(
        "source_fingerprint".into(),
        details
            .input_fingerprint
            .map(Value::string)
            .unwrap_or(Value::Null),
    );
    m.insert(
        "package_fingerprint".into(),
        details
            .package_fingerprint
            .map(Value::string)
            .unwrap_or(Value::Null),
    );
    Ok(Value::Object(m))
}
