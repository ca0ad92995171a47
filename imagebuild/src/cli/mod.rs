//! The `build` subcommand: flags mapped onto [`ep_imagebuild::build::BuildRequest`].

mod progress;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use ep_imagebuild::build::{self, Base, BuildReport, BuildRequest, Output, Progress};
use ep_imagebuild::image::{ConfigOverrides, ManifestFormat, Platform};
use ep_imagebuild::layer::{Compression, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL};
use ep_imagebuild::layering::{CustomLayer, CustomSource, LayoutOptions, Service};
use ep_imagebuild::registry::{ClientOptions, DockerConfigAuth, EcrAuth, RegistryClient, RepoRef};
use ep_imagebuild::source;

use progress::CliProgress;

/// Examples shown by `ep-imagebuild build --help`.
pub(crate) const BUILD_EXAMPLES: &str = "Examples:
  # cortex (with studio) on a Tomcat base in ECR, tagged with the release
  ep-imagebuild build --package ext-deployment-package-8.5.0.zip --service cortex \\
      --base 123456789012.dkr.ecr.us-east-1.amazonaws.com/ep/tomcat:9 \\
      --push 123456789012.dkr.ecr.us-east-1.amazonaws.com/ep/cortex --tag 8.5.0 --ecr

  # to a local registry over plain HTTP, on scratch
  ep-imagebuild build --package pkg.zip --service cm \\
      --push 127.0.0.1:5001/ep/cm --tag dev --insecure-registry 127.0.0.1:5001

  # an OCI layout on a local root filesystem, with an entrypoint
  ep-imagebuild build --package pkg.zip --service batch --base dir:./rootfs \\
      --entrypoint \"/bin/sh -c 'exec catalina.sh run'\" --oci-layout ./out --tag batch

  # explicit layers only, two platforms (an image index), zstd, as an archive
  ep-imagebuild build --package pkg.zip --layer 'database/jdbc/*.jar:/opt/jdbc' \\
      --layer host:./conf:/ep/conf:0640 --platform linux/amd64 --platform linux/arm64 \\
      --compression zstd --oci-archive ./image.tar

  # ECR emulated by moto, registry at another address
  ep-imagebuild build --package pkg.zip --service search \\
      --push 123456789012.dkr.ecr.us-east-1.amazonaws.com/ep/search --tag t1 \\
      --ecr --ecr-endpoint http://127.0.0.1:5000 --registry-endpoint http://127.0.0.1:5002

Services: cortex, cm, batch, integration, search, data-sync, data-population.
--layer SRC:DEST[:MODE]: SRC is a package path, directory or glob (*, ?, **), or host:PATH for
a file or directory on this machine; MODE is octal. --entrypoint and --cmd take a shell-like
string or a JSON array. The build is reproducible: the same package and flags give the same
digests (timestamps come from --source-date-epoch, default $SOURCE_DATE_EPOCH or 0). Unchanged
layers come from the cache in --cache-dir (default <work dir>/cache) and are never re-pushed.";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    Oci,
    Docker,
}

/// Flags of `ep-imagebuild build`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The deployment package: a zip or unpacked directory, an http(s) URL of the zip in a
    /// Maven-layout repository, or mvn:group:artifact:version[:extension[:classifier]].
    #[arg(long, required_unless_present = "context", conflicts_with = "context")]
    package: Option<String>,
    /// Repository URL for an mvn: package (default: $EP_MAVEN_REPOSITORY, then the
    /// settings.xml mirror).
    #[arg(long, value_name = "URL")]
    maven_repository: Option<String>,
    /// Instead of a package: any directory (or zip) whose files --layer takes, for an image
    /// that is not an Elastic Path service (e.g. of tools).
    #[arg(long)]
    context: Option<PathBuf>,
    /// The service image to build.
    #[arg(long, value_parser = parse_service, conflicts_with = "context")]
    service: Option<Service>,
    /// An explicit layer SRC:DEST[:MODE] (repeatable; on top of the service's layers).
    #[arg(long = "layer", value_name = "SRC:DEST[:MODE]")]
    layers: Vec<String>,
    /// Owner UID:GID of the files the layers add (default 0:0).
    #[arg(long, value_name = "UID:GID")]
    owner: Option<String>,
    /// Base image: a registry reference, dir:PATH or tar:PATH (a root filesystem), or scratch.
    #[arg(
        long,
        default_value = "scratch",
        value_name = "REF|dir:PATH|tar:PATH|scratch"
    )]
    base: String,
    /// Environment variable K=V (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Entrypoint (shell-like words or a JSON array); resets the base's Cmd.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Cmd (shell-like words or a JSON array).
    #[arg(long)]
    cmd: Option<String>,
    /// Working directory.
    #[arg(long)]
    workdir: Option<String>,
    /// User (name, uid, or uid:gid).
    #[arg(long)]
    user: Option<String>,
    /// Config label K=V (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Exposed port, PORT[/tcp|udp] (repeatable).
    #[arg(long = "expose", value_name = "PORT")]
    expose: Vec<String>,
    /// Stop signal, e.g. SIGTERM.
    #[arg(long)]
    stop_signal: Option<String>,
    /// Target platform os/arch[/variant] (repeatable; several give an image index).
    #[arg(long = "platform", value_parser = parse_platform)]
    platforms: Vec<Platform>,
    /// Manifest annotation K=V (repeatable).
    #[arg(long = "annotation", value_name = "K=V")]
    annotations: Vec<String>,
    /// Timestamp of every file and of the config (default: $SOURCE_DATE_EPOCH, else 0).
    #[arg(long)]
    source_date_epoch: Option<u64>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    compression: CompressionArg,
    /// Manifest format.
    #[arg(long, value_enum, default_value_t = FormatArg::Oci)]
    format: FormatArg,
    /// Tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Push to this repository (registry/repo).
    #[arg(long, value_name = "REPO", group = "output")]
    push: Option<String>,
    /// Write an OCI layout directory.
    #[arg(long, value_name = "DIR", group = "output")]
    oci_layout: Option<PathBuf>,
    /// Write an OCI layout tar file.
    #[arg(long, value_name = "FILE", group = "output")]
    oci_archive: Option<PathBuf>,
    /// A registry reached over plain HTTP or unverified TLS (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Authenticate to the push (and base) registry with ECR GetAuthorizationToken.
    #[arg(long)]
    ecr: bool,
    /// ECR API endpoint (e.g. an emulator).
    #[arg(long, value_name = "URL", requires = "ecr")]
    ecr_endpoint: Option<String>,
    /// Address of the push registry, when not https://<its host> (e.g. an emulator).
    #[arg(long, value_name = "URL")]
    registry_endpoint: Option<String>,
    /// Docker config.json with registry credentials (default: $DOCKER_CONFIG or ~/.docker).
    #[arg(long, value_name = "PATH")]
    docker_config: Option<PathBuf>,
    /// Layer cache directory (default: <work dir>/cache).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Work directory (default: $XDG_CACHE_HOME/ep-imagebuild or ~/.cache/ep-imagebuild).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Tomcat's webapps directory in the image.
    #[arg(long, default_value = "/usr/local/tomcat/webapps", value_name = "DIR")]
    webapps_dir: String,
    /// Tomcat's lib directory in the image.
    #[arg(long, default_value = "/usr/local/tomcat/lib", value_name = "DIR")]
    tomcat_lib_dir: String,
    /// Where the environments go in the image.
    #[arg(long, default_value = "/ep/environments", value_name = "DIR")]
    environments_dir: String,
    /// Print the report as JSON on stdout (and no progress).
    #[arg(long)]
    json: bool,
}

fn parse_service(s: &str) -> Result<Service, String> {
    s.parse()
        .map_err(|e: ep_imagebuild::layering::UnknownService| e.to_string())
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    match s {
        "linux/amd64" => Ok(Platform::linux_amd64()),
        "linux/arm64" | "linux/arm64/v8" => Ok(Platform::linux_arm64()),
        _ => Platform::parse(s).ok_or_else(|| {
            format!("invalid platform {s:?} (expected os/arch[/variant], e.g. linux/amd64)")
        }),
    }
}

fn key_value(flag: &str, s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("--{flag} {s:?}: expected KEY=VALUE")),
    }
}

/// Splits a command line like a POSIX shell would (quotes and backslashes, no expansion),
/// or parses a JSON array of strings.
pub(crate) fn split_words(flag: &str, s: &str) -> Result<Vec<String>, String> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(t)
            .map_err(|e| format!("--{flag}: invalid JSON array: {e}"));
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = t.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("--{flag}: unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("--{flag}: unterminated double quote")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("--{flag}: unterminated double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err(format!("--{flag}: trailing backslash")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err(format!("--{flag}: empty command"));
    }
    Ok(words)
}

/// Parses `SRC:DEST[:MODE]` (SRC may be `host:PATH`).
pub(crate) fn parse_layer(s: &str, uid: u32, gid: u32) -> Result<CustomLayer, String> {
    let bad = || format!("--layer {s:?}: expected SRC:DEST[:MODE] with an absolute DEST");
    let (host, rest) = match s.strip_prefix("host:") {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    parts.reverse();
    let (src, dest, mode) = match parts.as_slice() {
        [src, dest, mode]
            if dest.starts_with('/')
                && !mode.is_empty()
                && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) =>
        {
            let m = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
            if m > 0o7777 {
                return Err(format!(
                    "--layer {s:?}: mode {mode} is not a permission mode"
                ));
            }
            (src.to_string(), dest.to_string(), Some(m))
        }
        [a, b, c] if c.starts_with('/') => (format!("{a}:{b}"), c.to_string(), None),
        [src, dest] if dest.starts_with('/') => (src.to_string(), dest.to_string(), None),
        _ => return Err(bad()),
    };
    if src.is_empty() {
        return Err(bad());
    }
    Ok(CustomLayer {
        name: None,
        source: if host {
            CustomSource::Host(PathBuf::from(src))
        } else {
            CustomSource::Package(src)
        },
        destination: dest,
        mode,
        uid,
        gid,
    })
}

fn default_work_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match base {
        Some(b) => b.join("ep-imagebuild"),
        None => PathBuf::from(".ep-imagebuild"),
    }
}

fn parse_owner(s: Option<&str>) -> Result<(u32, u32), String> {
    let Some(s) = s else { return Ok((0, 0)) };
    let bad = || format!("--owner {s:?}: expected UID:GID (numbers)");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

fn request(args: &BuildArgs) -> Result<BuildRequest, String> {
    let source_date_epoch = match args.source_date_epoch {
        Some(v) => v,
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse()
                .map_err(|_| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
            _ => 0,
        },
    };
    let (uid, gid) = parse_owner(args.owner.as_deref())?;
    let custom_layers = args
        .layers
        .iter()
        .map(|l| parse_layer(l, uid, gid))
        .collect::<Result<Vec<_>, _>>()?;
    let base = match args.base.as_str() {
        "scratch" => Base::Scratch,
        b => match (b.strip_prefix("dir:"), b.strip_prefix("tar:")) {
            (Some(p), _) | (_, Some(p)) => Base::LocalRootfs(PathBuf::from(p)),
            _ => Base::Registry(b.to_string()),
        },
    };
    let mut config = ConfigOverrides::default();
    for e in &args.env {
        config.env.push(key_value("env", e)?);
    }
    config.entrypoint = args
        .entrypoint
        .as_deref()
        .map(|s| split_words("entrypoint", s))
        .transpose()?;
    config.cmd = args
        .cmd
        .as_deref()
        .map(|s| split_words("cmd", s))
        .transpose()?;
    config.working_dir = args.workdir.clone();
    config.user = args.user.clone();
    for l in &args.labels {
        let (k, v) = key_value("label", l)?;
        config.labels.insert(k, v);
    }
    for p in &args.expose {
        let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(format!("--expose {p:?}: expected PORT[/tcp|udp|sctp]"));
        }
        config.exposed_ports.push(p.clone());
    }
    config.stop_signal = args.stop_signal.clone();
    let mut annotations = BTreeMap::new();
    for a in &args.annotations {
        let (k, v) = key_value("annotation", a)?;
        annotations.insert(k, v);
    }
    let output = match (&args.push, &args.oci_layout, &args.oci_archive) {
        (Some(r), None, None) => Output::Push {
            repository: r.clone(),
            tags: args.tags.clone(),
        },
        (None, Some(p), None) => Output::OciLayout {
            path: p.clone(),
            tags: args.tags.clone(),
        },
        (None, None, Some(p)) => Output::OciArchive {
            path: p.clone(),
            tags: args.tags.clone(),
        },
        _ => return Err("give exactly one of --push, --oci-layout, --oci-archive".into()),
    };
    let compression = match args.compression {
        CompressionArg::Gzip => Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        },
        CompressionArg::Zstd => Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        },
        CompressionArg::None => Compression::None,
    };
    let work_dir = args.work_dir.clone().unwrap_or_else(default_work_dir);
    let source = match (&args.package, &args.context) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(p)) => p.clone(),
        (None, None) => return Err("give --package or --context".into()),
    };
    let mut req = BuildRequest::new(source, output, work_dir);
    req.context_only = args.package.is_none();
    req.service = args.service;
    req.custom_layers = custom_layers;
    req.layout = LayoutOptions {
        webapps_dir: args.webapps_dir.clone(),
        tomcat_lib_dir: args.tomcat_lib_dir.clone(),
        environments_dir: args.environments_dir.clone(),
        uid,
        gid,
        ..LayoutOptions::default()
    };
    req.base = base;
    req.config = config;
    req.platforms = args.platforms.clone();
    req.annotations = annotations;
    req.source_date_epoch = source_date_epoch;
    req.compression = compression;
    req.format = match args.format {
        FormatArg::Oci => ManifestFormat::Oci,
        FormatArg::Docker => ManifestFormat::Docker,
    };
    req.cache_dir = args.cache_dir.clone();
    Ok(req)
}

/// The registry host of a reference, if it parses.
fn registry_of(reference: &str) -> Option<String> {
    RepoRef::parse_reference(reference)
        .ok()
        .map(|(r, _)| r.registry)
}

async fn client(args: &BuildArgs, req: &BuildRequest) -> Result<RegistryClient, String> {
    let target = match &req.output {
        Output::Push { repository, .. } => registry_of(repository),
        _ => None,
    };
    let base = match &req.base {
        Base::Registry(r) => registry_of(r),
        _ => None,
    };
    let mut endpoint_overrides = HashMap::new();
    if let Some(url) = &args.registry_endpoint {
        let host = target
            .clone()
            .ok_or("--registry-endpoint needs --push with a valid repository")?;
        let parsed =
            url::Url::parse(url).map_err(|e| format!("--registry-endpoint {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "--registry-endpoint {url:?}: expected an http(s) URL"
            ));
        }
        endpoint_overrides.insert(host, url.trim_end_matches('/').to_string());
    }
    let opts = ClientOptions {
        insecure_registries: args.insecure_registries.clone(),
        endpoint_overrides,
        ..ClientOptions::default()
    };
    let docker = match &args.docker_config {
        Some(p) => DockerConfigAuth::from_path(p.clone()),
        None => DockerConfigAuth::from_default_location(),
    }
    .map_err(|e| e.to_string())?;
    let client = RegistryClient::new(opts)
        .map_err(|e| e.to_string())?
        .with_default_auth(Arc::new(docker));
    if args.ecr {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let ecr = Arc::new(EcrAuth::new(&config, args.ecr_endpoint.as_deref()));
        for host in target.iter().chain(base.iter()) {
            client.set_auth(host, ecr.clone());
        }
    }
    Ok(client)
}

fn print_text(r: &BuildReport) {
    println!("digest:       {}", r.manifest_digest);
    if let Some(reference) = &r.image_reference {
        println!("image:        {reference}");
    }
    if !r.tags.is_empty() {
        println!("tags:         {}", r.tags.join(", "));
    }
    if let (Some(b), Some(d)) = (&r.base_reference, &r.base_digest) {
        println!("base:         {b} ({d})");
    }
    println!("config:       {}", r.config_digest);
    println!("inputs:       {}", r.inputs_fingerprint);
    println!("package:      {}", r.package_fingerprint);
    for w in &r.warnings {
        println!("warning:      {w}");
    }
    println!("layers:");
    for l in &r.layers {
        let push = match &l.push {
            None => String::new(),
            Some(p) => format!(
                "  {}",
                match p {
                    build::BlobPush::Uploaded { .. } => "pushed",
                    build::BlobPush::Copied { .. } => "copied",
                    build::BlobPush::Skipped => "skipped",
                    build::BlobPush::Mounted { .. } => "mounted",
                }
            ),
        };
        println!(
            "  {:<14} {} {:>12}{}{}",
            l.name,
            l.digest,
            l.size,
            if l.cache_hit { "  cached" } else { "" },
            push
        );
    }
    if r.image_reference.is_some() {
        println!(
            "blobs:        {} pushed, {} skipped, {} mounted; {} bytes uploaded",
            r.blobs_pushed, r.blobs_skipped, r.blobs_mounted, r.bytes_uploaded
        );
    }
}

/// Makes a remote `--package` a verified local file in `<work dir>/packages`.
async fn fetch_package(
    args: &BuildArgs,
    mut req: BuildRequest,
    progress: &CliProgress,
) -> Result<BuildRequest, String> {
    let Some(package) = &args.package else {
        return Ok(req);
    };
    let reference = source::PackageRef::parse(package).map_err(|e| e.to_string())?;
    if !reference.is_remote() {
        return Ok(req);
    }
    let opts = source::FetchOptions::from_env(
        source::default_cache_dir(&req.work_dir),
        args.maven_repository.clone(),
    )
    .map_err(|e| e.to_string())?;
    let resolved = source::resolve(&reference, &opts)
        .await
        .map_err(|e| e.to_string())?;
    progress.message(&format!(
        "package {} ({}{})",
        resolved.url.as_deref().unwrap_or(package),
        resolved.checksum.as_deref().unwrap_or("local"),
        if resolved.downloaded {
            ", downloaded"
        } else {
            ", cached"
        }
    ));
    req.package = resolved.path;
    Ok(req)
}

/// Runs `ep-imagebuild build`.
pub(crate) fn run(args: BuildArgs) -> Result<(), String> {
    let req = request(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let progress = CliProgress::new(args.json);
    let started = std::time::Instant::now();
    let report = runtime.block_on(async {
        let req = fetch_package(&args, req, &progress).await?;
        let client = client(&args, &req).await?;
        build::build(&req, &client, &progress)
            .await
            .map_err(|e| error_chain(&e))
    })?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print_text(&report);
        eprintln!("built in {:.2?}", started.elapsed());
    }
    Ok(())
}

/// The error and its sources, `: `-joined (the registry's and the package's errors wrap
/// causes worth seeing).
fn error_chain(e: &dyn std::error::Error) -> String {
    ep_imagebuild::error_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words("x", "/bin/sh -c 'echo hello from ep-imagebuild'").unwrap(),
            ["/bin/sh", "-c", "echo hello from ep-imagebuild"]
        );
        assert_eq!(split_words("x", r#"["a b","c"]"#).unwrap(), ["a b", "c"]);
        assert_eq!(
            split_words("x", r#"a "b \"c\"" d\ e"#).unwrap(),
            ["a", "b \"c\"", "d e"]
        );
        assert!(split_words("x", "'open").is_err());
        assert!(split_words("x", "  ").is_err());
    }

    #[test]
    fn layers() {
        let l = parse_layer("database/jdbc/*.jar:/opt/jdbc", 0, 0).unwrap();
        assert_eq!(
            l.source,
            CustomSource::Package("database/jdbc/*.jar".into())
        );
        assert_eq!((l.destination.as_str(), l.mode), ("/opt/jdbc", None));
        let l = parse_layer("host:./conf:/ep/conf:0640", 1, 2).unwrap();
        assert_eq!(l.source, CustomSource::Host("./conf".into()));
        assert_eq!((l.mode, l.uid, l.gid), (Some(0o640), 1, 2));
        assert!(parse_layer("a", 0, 0).is_err());
        assert!(parse_layer("a:relative", 0, 0).is_err());
    }
}
