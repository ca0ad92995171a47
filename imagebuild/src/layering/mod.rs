//! Jib-style layering of Elastic Path services: which file of a deployment package lands where
//! in an image, grouped into layers ordered from least to most often changing, so that a
//! typical change (a few classes, a project jar) rebuilds and pushes one small layer.
//!
//! Planning is pure logic over central directories: it never reads file contents of a zip
//! package (only a directory package's top-level files and host files, which have no CRC to
//! read). Each [`LayerPlan`] carries a stable input fingerprint over its entries (destination,
//! mode, owner, size, CRC-32) plus [`LAYERING_VERSION`] and the compression settings: the key
//! of the [`LayerCache`](crate::cache::LayerCache), and something a planner (a Terraform plan)
//! can compute cheaply to predict which layers will change.
//!
//! Web application layers, bottom to top (empty ones are omitted):
//! 1. `tomcat-lib`: JDBC driver(s) and ActiveMQ client jars → `<tomcat lib>/`;
//! 2. `third-party`: `WEB-INF/lib/*.jar` that are neither Elastic Path's nor snapshots;
//! 3. `snapshot`: other `WEB-INF/lib/*-SNAPSHOT.jar`;
//! 4. `project`: Elastic Path's jars (`ep-*`, `ext-*`, or containing `elasticpath`);
//! 5. `resources`: the rest of the WAR except classes;
//! 6. `classes`: `WEB-INF/classes/**/*.class`;
//! 7. `environments`: the ext-data jar's `environments/<env>/**` → `/ep/environments/<env>/**`.
//!
//! The data population tool gets its CLI zip under `/ep/data-population-cli/` (jars split the
//! same way, the JDBC driver added to its `lib/`, `bin/*` and `*.sh` executable), the ext-data
//! jar's Liquibase data under `/ep/ext-data/` and the environments under `/ep/environments/`.

mod glob;
mod listing;
mod sources;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::layer::{normalize_path, path_cmp, Compression, LayerError};
use crate::package::{DeploymentPackage, EntryKind, NestedArchive, PackageError};

pub use listing::ListingCache;
pub use sources::{SourceStats, Sources};
pub use stream::{
    write_layer, write_layers, LayerJob, StreamOptions, StreamStats, DEFAULT_MEMORY_CAP,
};

/// Version of the layering rules, part of every fingerprint: bump it whenever a rule change
/// would put different bytes in a layer built from the same input.
pub const LAYERING_VERSION: u32 = 1;

/// An Elastic Path service image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// The REST API, with Cortex Studio deployed beside it as `webapps/studio`.
    Cortex,
    /// Commerce Manager.
    Cm,
    /// Batch server.
    Batch,
    /// Integration server.
    Integration,
    /// Search server (primary or replica at run time).
    Search,
    /// Data sync tool webapp.
    DataSync,
    /// The data population command-line tool.
    DataPopulation,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 7] = [
        Service::Cortex,
        Service::Cm,
        Service::Batch,
        Service::Integration,
        Service::Search,
        Service::DataSync,
        Service::DataPopulation,
    ];

    /// The service's name (`cortex`, `data-sync`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Service::Cortex => "cortex",
            Service::Cm => "cm",
            Service::Batch => "batch",
            Service::Integration => "integration",
            Service::Search => "search",
            Service::DataSync => "data-sync",
            Service::DataPopulation => "data-population",
        }
    }

    /// The package applications deployed by this service, each under
    /// `<webapps_dir>/<name>`; empty for the data population tool.
    pub fn webapps(self) -> &'static [&'static str] {
        match self {
            Service::Cortex => &["cortex", "studio"],
            Service::Cm => &["cm"],
            Service::Batch => &["batch"],
            Service::Integration => &["integration"],
            Service::Search => &["search"],
            Service::DataSync => &["data-sync"],
            Service::DataPopulation => &[],
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A service name that is not one of [`Service::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {given:?}; valid services: {}", valid_services())]
pub struct UnknownService {
    /// The name given.
    pub given: String,
}

fn valid_services() -> String {
    Service::ALL.map(Service::name).join(", ")
}

impl FromStr for Service {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownService {
                given: s.to_string(),
            })
    }
}

/// Where things go in the image, who owns them, and what determines the layer bytes besides
/// the input (both part of the fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutOptions {
    /// Tomcat's webapps directory; each application lands in `<webapps_dir>/<name>`.
    pub webapps_dir: String,
    /// Tomcat's `lib/` (JDBC driver, ActiveMQ client jars).
    pub tomcat_lib_dir: String,
    /// Where every `environments/<env>/` set goes.
    pub environments_dir: String,
    /// Where the data population tool's zip is unpacked.
    pub data_population_dir: String,
    /// Where the ext-data jar's Liquibase data goes (data population image).
    pub ext_data_dir: String,
    /// Owner uid of everything the service layers add.
    pub uid: u32,
    /// Owner gid of everything the service layers add.
    pub gid: u32,
    /// Layer compression (part of the fingerprint: it determines the blob bytes).
    pub compression: Compression,
    /// The mtime of every entry (part of the fingerprint).
    pub source_date_epoch: u64,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        LayoutOptions {
            webapps_dir: "/usr/local/tomcat/webapps".into(),
            tomcat_lib_dir: "/usr/local/tomcat/lib".into(),
            environments_dir: "/ep/environments".into(),
            data_population_dir: "/ep/data-population-cli".into(),
            ext_data_dir: "/ep/ext-data".into(),
            uid: 0,
            gid: 0,
            compression: Compression::default(),
            source_date_epoch: 0,
        }
    }
}

/// What a layer holds; its position in [`LayerRole::ORDER`] is its position in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerRole {
    /// JDBC driver and ActiveMQ client jars in Tomcat's `lib/`.
    TomcatLib,
    /// Third-party release jars.
    ThirdParty,
    /// Third-party snapshot jars.
    Snapshot,
    /// Elastic Path's jars.
    Project,
    /// Everything else of a WAR or tool zip except classes.
    Resources,
    /// Compiled classes.
    Classes,
    /// The ext-data jar's Liquibase data (data population).
    ExtData,
    /// The environments.
    Environments,
    /// A layer given explicitly.
    Custom,
}

impl LayerRole {
    /// The role's name (`third-party`, ...).
    pub fn name(self) -> &'static str {
        match self {
            LayerRole::TomcatLib => "tomcat-lib",
            LayerRole::ThirdParty => "third-party",
            LayerRole::Snapshot => "snapshot",
            LayerRole::Project => "project",
            LayerRole::Resources => "resources",
            LayerRole::Classes => "classes",
            LayerRole::ExtData => "ext-data",
            LayerRole::Environments => "environments",
            LayerRole::Custom => "custom",
        }
    }
}

/// The kind of a planned entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum PlannedKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (from a host directory), kept verbatim.
    Symlink {
        /// Link target, resolved inside the container only.
        target: String,
    },
}

/// Where a planned file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "from")]
pub enum EntrySource {
    /// Nothing (directories, symlinks).
    None,
    /// A file at the top level of the package.
    Package {
        /// Package-relative path.
        path: String,
    },
    /// An entry of an archive nested in the package (a WAR, a tool zip, the ext-data jar).
    Nested {
        /// Package-relative path of the archive.
        archive: String,
        /// Path inside the archive.
        path: String,
    },
    /// A file on the build host.
    Host {
        /// Its path.
        path: PathBuf,
    },
}

/// One entry of a planned layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEntry {
    /// Path in the image, normalised (no leading `/`).
    pub dest: String,
    /// File, directory or symlink.
    pub kind: PlannedKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Size in bytes (0 unless a file).
    pub size: u64,
    /// CRC-32 of the content (0 unless a file).
    pub crc32: u32,
    /// Where the bytes come from.
    pub source: EntrySource,
}

/// One layer to build: its entries in layer order and its input fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerPlan {
    /// Name, e.g. `classes` or a custom layer's name.
    pub name: String,
    /// What it holds.
    pub role: LayerRole,
    /// Entries sorted in layer order ([`path_cmp`]).
    pub entries: Vec<PlannedEntry>,
    /// Hex SHA-256 input fingerprint (see [`fingerprint_entries`]).
    pub fingerprint: String,
}

impl LayerPlan {
    /// Total bytes of file content.
    pub fn content_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.kind == PlannedKind::File)
            .count()
    }
}

/// A layer given explicitly: files of the package (a path, a directory or a glob) or of a
/// host directory, placed under `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomLayer {
    /// Layer name; `custom-<n>` when `None`.
    pub name: Option<String>,
    /// Where the files come from.
    pub source: CustomSource,
    /// Directory in the image the files land in.
    pub destination: String,
    /// Mode of every file; `None` keeps an executable bit found in the source (0755), else
    /// 0644. Directories are always 0755.
    pub mode: Option<u32>,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

/// The source of a [`CustomLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomSource {
    /// A package-relative path or glob (`*`, `?`, `**`). A file lands as
    /// `<destination>/<file name>`; a directory's files keep their path below it; glob matches
    /// keep their path below the glob's literal prefix.
    Package(String),
    /// A host file or directory (its contents, recursively; symlinks kept as symlinks).
    Host(PathBuf),
}

/// Errors planning or writing layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayeringError {
    /// Reading the package failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The package lacks an application the service deploys.
    #[error("the package has no {application} application (webapps/*-{application}-*.war), needed by the {service} image")]
    MissingApplication {
        /// The service.
        service: Service,
        /// The application.
        application: String,
    },
    /// The package lacks the tool zip a service needs.
    #[error(
        "the package has no {tool} tool (tools/*-{tool}-*.zip), needed by the {service} image"
    )]
    MissingTool {
        /// The service.
        service: Service,
        /// The tool.
        tool: String,
    },
    /// The package lacks the ext-data jar a service needs.
    #[error("the package has no database/ext-data-<version>.jar, needed by the {service} image")]
    MissingExtData {
        /// The service.
        service: Service,
    },
    /// A custom layer's source matched nothing.
    #[error("custom layer source {pattern:?} matches nothing")]
    NoMatch {
        /// The path or glob.
        pattern: String,
    },
    /// A destination that is not an absolute, `..`-free path.
    #[error("invalid destination {path:?}: {reason}")]
    InvalidDestination {
        /// The destination.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Two inputs of one layer land on the same path.
    #[error("layer {layer}: {dest:?} would come from both {first} and {second}")]
    Conflict {
        /// The layer.
        layer: String,
        /// The destination path.
        dest: String,
        /// First source.
        first: String,
        /// Second source.
        second: String,
    },
    /// A host file could not be read.
    #[error("{}: {source}", path.display())]
    Host {
        /// The host path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A host entry that cannot go into a layer (device, fifo, socket, non-UTF-8 name).
    #[error("{}: {reason}", path.display())]
    UnsupportedHostEntry {
        /// The host path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A nested archive the plan needs was not opened in the [`Sources`].
    #[error("archive {0} was not opened for this build")]
    ArchiveNotOpen(String),
    /// An entry the plan expected was not met in its archive's sequential pass.
    #[error("{archive}!/{entry} was planned but not found while streaming")]
    MissingEntry {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
    },
    /// Writing the layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A reorder-buffer spill file failed.
    #[error("spill file {}: {source}", path.display())]
    Spill {
        /// The spill file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// The fingerprint of a layer's entries (sorted in layer order) under these settings: SHA-256
/// over [`LAYERING_VERSION`], the compression's cache id, the source date epoch and each
/// entry's destination, kind, mode, uid, gid, size and CRC-32 (and symlink target).
pub fn fingerprint_entries(
    entries: &[PlannedEntry],
    compression: &Compression,
    source_date_epoch: u64,
) -> String {
    let mut h = Sha256::new();
    h.update(
        format!(
            "ep-imagebuild layering v{LAYERING_VERSION}\n{}\n{source_date_epoch}\n",
            compression.cache_id()
        )
        .as_bytes(),
    );
    for e in entries {
        h.update(e.dest.as_bytes());
        let kind: u8 = match e.kind {
            PlannedKind::File => b'f',
            PlannedKind::Dir => b'd',
            PlannedKind::Symlink { .. } => b'l',
        };
        h.update([0, kind]);
        h.update(e.mode.to_le_bytes());
        h.update(e.uid.to_le_bytes());
        h.update(e.gid.to_le_bytes());
        h.update(e.size.to_le_bytes());
        h.update(e.crc32.to_le_bytes());
        if let PlannedKind::Symlink { target } = &e.kind {
            h.update(target.as_bytes());
            h.update([0]);
        }
    }
    hex::encode(h.finalize())
}

/// Plans the layers of `service`'s image from `package`.
pub fn plan_service(
    package: &DeploymentPackage,
    service: Service,
    opts: &LayoutOptions,
) -> Result<Vec<LayerPlan>, LayeringError> {
    let mut sources = Sources::new(package);
    plan_service_in(&mut sources, service, opts)
}

/// Plans explicit layers over `package` (one layer per [`CustomLayer`], in order).
pub fn plan_custom(
    package: &DeploymentPackage,
    layers: &[CustomLayer],
    opts: &LayoutOptions,
) -> Result<Vec<LayerPlan>, LayeringError> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| plan_custom_layer(package, l, i, opts))
        .collect()
}

/// [`plan_service`] with archives kept open in `sources` for writing afterwards.
pub fn plan_service_in(
    sources: &mut Sources<'_>,
    service: Service,
    opts: &LayoutOptions,
) -> Result<Vec<LayerPlan>, LayeringError> {
    let mut acc = Accumulator::new(opts);
    let pkg = sources.package();
    if service == Service::DataPopulation {
        plan_data_population(sources, service, &mut acc)?;
    } else {
        let lib = dest_dir(&opts.tomcat_lib_dir)?;
        for a in pkg.jdbc_drivers().iter().chain(pkg.activemq_libraries()) {
            let file = file_name(&a.path);
            let crc = top_level_crc(pkg, &a.path)?;
            acc.file(
                LayerRole::TomcatLib,
                &lib,
                file,
                0o644,
                a.size,
                crc,
                EntrySource::Package {
                    path: a.path.clone(),
                },
            )?;
        }
        let webapps = dest_dir(&opts.webapps_dir)?;
        for app in service.webapps() {
            let artifact =
                pkg.application(app)
                    .ok_or_else(|| LayeringError::MissingApplication {
                        service,
                        application: (*app).to_string(),
                    })?;
            let root = join(&webapps, app);
            let war = sources.open(&artifact.path)?;
            plan_archive(&mut acc, war, &artifact.path, &root, classify_war)?;
        }
        plan_environments(sources, service, &mut acc, false)?;
    }
    acc.finish()
}

fn plan_data_population(
    sources: &mut Sources<'_>,
    service: Service,
    acc: &mut Accumulator<'_>,
) -> Result<(), LayeringError> {
    let pkg = sources.package();
    let opts = acc.opts;
    let tool = pkg
        .tool("data-population")
        .ok_or_else(|| LayeringError::MissingTool {
            service,
            tool: "data-population".into(),
        })?;
    let root = dest_dir(&opts.data_population_dir)?;
    let zip = sources.open(&tool.path)?;
    plan_archive(acc, zip, &tool.path, &root, classify_tool)?;
    let lib = join(&root, "lib");
    for d in pkg.jdbc_drivers() {
        let crc = top_level_crc(pkg, &d.path)?;
        acc.file(
            LayerRole::ThirdParty,
            &lib,
            file_name(&d.path),
            0o644,
            d.size,
            crc,
            EntrySource::Package {
                path: d.path.clone(),
            },
        )?;
    }
    plan_environments(sources, service, acc, true)
}

/// Adds the ext-data jar's environments (and, for the data population image, the rest of the
/// jar under the ext-data directory).
fn plan_environments(
    sources: &mut Sources<'_>,
    service: Service,
    acc: &mut Accumulator<'_>,
    with_data: bool,
) -> Result<(), LayeringError> {
    let pkg = sources.package();
    let Some(ext) = pkg.ext_data() else {
        if with_data {
            return Err(LayeringError::MissingExtData { service });
        }
        // A package without ext-data simply has no environments layer.
        return Ok(());
    };
    let env_root = dest_dir(&acc.opts.environments_dir)?;
    let data_root = dest_dir(&acc.opts.ext_data_dir)?;
    let jar = sources.open(&ext.path)?;
    for e in jar.entries() {
        let (role, root, rel) = match e.path.strip_prefix("environments/") {
            Some(rel) => (LayerRole::Environments, &env_root, rel),
            None if with_data => (LayerRole::ExtData, &data_root, e.path.as_str()),
            None => continue,
        };
        // The manifest says nothing the tool reads; keeping it out keeps the layer stable
        // across rebuilds of an otherwise identical jar.
        if rel.is_empty() || (role == LayerRole::ExtData && rel.starts_with("META-INF/")) {
            continue;
        }
        let source = EntrySource::Nested {
            archive: ext.path.clone(),
            path: e.path.clone(),
        };
        match e.kind {
            EntryKind::Directory => acc.dir(role, root, rel),
            EntryKind::File => {
                acc.file(role, root, rel, 0o644, e.size, e.crc32.unwrap_or(0), source)?
            }
        }
    }
    Ok(())
}

/// Where an entry of a WAR goes.
fn classify_war(path: &str) -> (LayerRole, u32) {
    if let Some(name) = path.strip_prefix("WEB-INF/lib/") {
        if !name.contains('/') && name.ends_with(".jar") {
            return (jar_role(name), 0o644);
        }
    }
    if path.starts_with("WEB-INF/classes/") && path.ends_with(".class") {
        return (LayerRole::Classes, 0o644);
    }
    (LayerRole::Resources, 0o644)
}

/// Where an entry of the data population tool's zip goes (after its top folder, if any, is
/// stripped).
fn classify_tool(path: &str) -> (LayerRole, u32) {
    let executable = path.starts_with("bin/") || path.ends_with(".sh");
    let mode = if executable { 0o755 } else { 0o644 };
    if let Some(name) = path.strip_prefix("lib/") {
        if !name.contains('/') && name.ends_with(".jar") {
            return (jar_role(name), mode);
        }
    }
    (LayerRole::Resources, mode)
}

/// Elastic Path's own jars by name; snapshots of anything else; the rest third-party.
fn jar_role(name: &str) -> LayerRole {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("ep-") || lower.starts_with("ext-") || lower.contains("elasticpath") {
        LayerRole::Project
    } else if name.ends_with("-SNAPSHOT.jar") {
        LayerRole::Snapshot
    } else {
        LayerRole::ThirdParty
    }
}

/// Places every entry of `archive` under `root` by `classify`. A single top-level folder
/// holding everything (as tool zips often have) is stripped.
fn plan_archive(
    acc: &mut Accumulator<'_>,
    archive: &NestedArchive<'_>,
    archive_path: &str,
    root: &str,
    classify: fn(&str) -> (LayerRole, u32),
) -> Result<(), LayeringError> {
    let strip = common_top_folder(archive, archive_path.ends_with(".zip"));
    let mut explicit_dirs = Vec::new();
    for e in archive.entries() {
        let rel = match &strip {
            Some(top) => match e.path.strip_prefix(top.as_str()) {
                Some(r) => r.trim_start_matches('/'),
                None => continue,
            },
            None => e.path.as_str(),
        };
        if rel.is_empty() {
            continue;
        }
        match e.kind {
            EntryKind::Directory => explicit_dirs.push(rel.to_string()),
            EntryKind::File => {
                let (role, mode) = classify(rel);
                acc.file(
                    role,
                    root,
                    rel,
                    mode,
                    e.size,
                    e.crc32.unwrap_or(0),
                    EntrySource::Nested {
                        archive: archive_path.to_string(),
                        path: e.path.clone(),
                    },
                )?;
            }
        }
    }
    // Directories only the zip lists (empty ones, say) go with the resources, unless a layer
    // already creates them as parents of its files.
    acc.dir(LayerRole::Resources, root, "");
    for d in explicit_dirs {
        let dest = join(root, &d);
        if !acc.has_dir(&dest) {
            acc.dir(LayerRole::Resources, root, &d);
        }
    }
    Ok(())
}

/// For tool zips: the one top-level folder every entry is below, if there is one and no file
/// sits at the top.
fn common_top_folder(archive: &NestedArchive<'_>, enabled: bool) -> Option<String> {
    if !enabled {
        return None;
    }
    let mut top: Option<&str> = None;
    for e in archive.entries() {
        let (first, rest) = e.path.split_once('/')?;
        if rest.is_empty() && e.kind == EntryKind::File {
            return None;
        }
        match top {
            None => top = Some(first),
            Some(t) if t == first => {}
            Some(_) => return None,
        }
    }
    // A "folder" that is really `bin/` or `lib/` of a flat zip must stay.
    top.filter(|t| !matches!(*t, "bin" | "lib" | "config" | "conf"))
        .map(str::to_string)
}

/// The CRC-32 of a top-level package file: from the zip's central directory, or read (a
/// directory package has no CRCs; these files are small jars).
fn top_level_crc(pkg: &DeploymentPackage, path: &str) -> Result<u32, LayeringError> {
    if let Some(crc) = pkg.entry(path).and_then(|e| e.crc32) {
        return Ok(crc);
    }
    let mut reader = pkg.open_entry(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PackageError::from_io(e, path).into()),
        }
    }
    Ok(hasher.finalize())
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn join(root: &str, rel: &str) -> String {
    match (root.is_empty(), rel.is_empty()) {
        (_, true) => root.to_string(),
        (true, false) => rel.to_string(),
        (false, false) => format!("{root}/{rel}"),
    }
}

/// Validates an in-image destination directory and returns it normalised (no leading `/`).
fn dest_dir(path: &str) -> Result<String, LayeringError> {
    if !path.starts_with('/') {
        return Err(LayeringError::InvalidDestination {
            path: path.to_string(),
            reason: "must be an absolute path",
        });
    }
    if path.split('/').any(|c| c == "..") {
        return Err(LayeringError::InvalidDestination {
            path: path.to_string(),
            reason: "must not contain `..`",
        });
    }
    if path.trim_matches('/').is_empty() {
        // The image root: entries land directly under it.
        return Ok(String::new());
    }
    normalize_path(path).map_err(|_| LayeringError::InvalidDestination {
        path: path.to_string(),
        reason: "contains a NUL byte",
    })
}

fn describe(source: &EntrySource) -> String {
    match source {
        EntrySource::None => "(directory)".into(),
        EntrySource::Package { path } => path.clone(),
        EntrySource::Nested { archive, path } => format!("{archive}!/{path}"),
        EntrySource::Host { path } => path.display().to_string(),
    }
}

/// Entries per layer while planning.
struct Accumulator<'o> {
    opts: &'o LayoutOptions,
    layers: BTreeMap<LayerRole, BTreeMap<String, PlannedEntry>>,
    names: BTreeMap<LayerRole, String>,
    all_dirs: BTreeSet<String>,
}

impl<'o> Accumulator<'o> {
    fn new(opts: &'o LayoutOptions) -> Self {
        Accumulator {
            opts,
            layers: BTreeMap::new(),
            names: BTreeMap::new(),
            all_dirs: BTreeSet::new(),
        }
    }

    fn has_dir(&self, dest: &str) -> bool {
        self.all_dirs.contains(dest)
    }

    /// Adds `root/rel` as a directory, with its parents down from `root`.
    fn dir(&mut self, role: LayerRole, root: &str, rel: &str) {
        let (uid, gid) = (self.opts.uid, self.opts.gid);
        let layer = self.layers.entry(role).or_default();
        let mut add = |dest: String, all: &mut BTreeSet<String>| {
            if dest.is_empty() {
                return;
            }
            all.insert(dest.clone());
            layer.entry(dest.clone()).or_insert(PlannedEntry {
                dest,
                kind: PlannedKind::Dir,
                mode: 0o755,
                uid,
                gid,
                size: 0,
                crc32: 0,
                source: EntrySource::None,
            });
        };
        add(root.to_string(), &mut self.all_dirs);
        let mut prefix = String::new();
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            add(join(root, &prefix), &mut self.all_dirs);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn file(
        &mut self,
        role: LayerRole,
        root: &str,
        rel: &str,
        mode: u32,
        size: u64,
        crc32: u32,
        source: EntrySource,
    ) -> Result<(), LayeringError> {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.dir(role, root, parent);
        } else {
            self.dir(role, root, "");
        }
        let dest = join(root, rel);
        let entry = PlannedEntry {
            dest: dest.clone(),
            kind: PlannedKind::File,
            mode,
            uid: self.opts.uid,
            gid: self.opts.gid,
            size,
            crc32,
            source,
        };
        self.insert(role, entry)
    }

    fn insert(&mut self, role: LayerRole, entry: PlannedEntry) -> Result<(), LayeringError> {
        let layer = self.layers.entry(role).or_default();
        if let Some(prev) = layer.get(&entry.dest) {
            return Err(LayeringError::Conflict {
                layer: self
                    .names
                    .get(&role)
                    .cloned()
                    .unwrap_or_else(|| role.name().to_string()),
                dest: format!("/{}", entry.dest),
                first: describe(&prev.source),
                second: describe(&entry.source),
            });
        }
        layer.insert(entry.dest.clone(), entry);
        Ok(())
    }

    /// Layers in role order; those without a file or symlink are dropped (a layer of bare
    /// directories adds nothing a file layer does not create anyway).
    fn finish(self) -> Result<Vec<LayerPlan>, LayeringError> {
        let mut out = Vec::new();
        for (role, entries) in self.layers {
            if !entries.values().any(|e| e.kind != PlannedKind::Dir) {
                continue;
            }
            let mut entries: Vec<PlannedEntry> = entries.into_values().collect();
            entries.sort_by(|a, b| path_cmp(&a.dest, &b.dest));
            let fingerprint = fingerprint_entries(
                &entries,
                &self.opts.compression,
                self.opts.source_date_epoch,
            );
            let name = self
                .names
                .get(&role)
                .cloned()
                .unwrap_or_else(|| role.name().to_string());
            out.push(LayerPlan {
                name,
                role,
                entries,
                fingerprint,
            });
        }
        Ok(out)
    }
}

fn plan_custom_layer(
    pkg: &DeploymentPackage,
    layer: &CustomLayer,
    index: usize,
    opts: &LayoutOptions,
) -> Result<LayerPlan, LayeringError> {
    let name = layer
        .name
        .clone()
        .unwrap_or_else(|| format!("custom-{}", index + 1));
    let root = dest_dir(&layer.destination)?;
    let layer_opts = LayoutOptions {
        uid: layer.uid,
        gid: layer.gid,
        ..opts.clone()
    };
    let mut acc = Accumulator::new(&layer_opts);
    acc.names.insert(LayerRole::Custom, name.clone());
    let file_mode = |found: Option<u32>| match layer.mode {
        Some(m) => m & 0o7777,
        None if found.is_some_and(|m| m & 0o111 != 0) => 0o755,
        None => 0o644,
    };
    match &layer.source {
        CustomSource::Package(pattern) => {
            let pattern = pattern.trim_matches('/');
            let files = pkg.entries().iter().filter(|e| e.kind == EntryKind::File);
            let mut matched = Vec::new();
            if glob::has_wildcard(pattern) {
                let prefix = glob::literal_prefix(pattern);
                for e in files {
                    if glob::matches(pattern, &e.path) {
                        let rel = e
                            .path
                            .strip_prefix(prefix.as_str())
                            .unwrap_or(&e.path)
                            .trim_start_matches('/');
                        matched.push((rel.to_string(), e));
                    }
                }
            } else {
                for e in files {
                    if e.path == pattern {
                        matched.push((file_name(&e.path).to_string(), e));
                    } else if let Some(rel) = e
                        .path
                        .strip_prefix(pattern)
                        .and_then(|r| r.strip_prefix('/'))
                    {
                        matched.push((rel.to_string(), e));
                    }
                }
            }
            if matched.is_empty() {
                return Err(LayeringError::NoMatch {
                    pattern: pattern.to_string(),
                });
            }
            for (rel, e) in matched {
                let crc = top_level_crc(pkg, &e.path)?;
                acc.file(
                    LayerRole::Custom,
                    &root,
                    &rel,
                    file_mode(e.mode),
                    e.size,
                    crc,
                    EntrySource::Package {
                        path: e.path.clone(),
                    },
                )?;
            }
        }
        CustomSource::Host(path) => {
            plan_host(&mut acc, path, &root, &file_mode)?;
        }
    }
    let mut plans = acc.finish()?;
    match plans.pop() {
        Some(p) => Ok(p),
        None => Err(LayeringError::NoMatch {
            pattern: match &layer.source {
                CustomSource::Package(p) => p.clone(),
                CustomSource::Host(p) => p.display().to_string(),
            },
        }),
    }
}

#[cfg(unix)]
fn host_mode(md: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(md.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn host_mode(_md: &fs::Metadata) -> Option<u32> {
    None
}

/// Plans a host file or directory tree; reads each file once for its CRC-32 (host files have
/// no central directory to take it from).
fn plan_host(
    acc: &mut Accumulator<'_>,
    path: &Path,
    root: &str,
    file_mode: &dyn Fn(Option<u32>) -> u32,
) -> Result<(), LayeringError> {
    let host_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LayeringError::Host { path: p, source }
    };
    let md = fs::symlink_metadata(path).map_err(host_err(path))?;
    if md.is_file() {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            LayeringError::UnsupportedHostEntry {
                path: path.to_path_buf(),
                reason: "file name is not UTF-8",
            }
        })?;
        let crc = host_crc(path)?;
        return acc.file(
            LayerRole::Custom,
            root,
            name,
            file_mode(host_mode(&md)),
            md.len(),
            crc,
            EntrySource::Host {
                path: path.to_path_buf(),
            },
        );
    }
    if !md.is_dir() {
        return Err(LayeringError::UnsupportedHostEntry {
            path: path.to_path_buf(),
            reason: "not a regular file or directory",
        });
    }
    acc.dir(LayerRole::Custom, root, "");
    let mut stack = vec![(path.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut children: Vec<_> = fs::read_dir(&dir)
            .map_err(host_err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(host_err(&dir))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let host = child.path();
            let name = child.file_name().into_string().map_err(|_| {
                LayeringError::UnsupportedHostEntry {
                    path: host.clone(),
                    reason: "file name is not UTF-8",
                }
            })?;
            let child_rel = join(&rel, &name);
            let md = fs::symlink_metadata(&host).map_err(host_err(&host))?;
            let ft = md.file_type();
            if ft.is_dir() {
                acc.dir(LayerRole::Custom, root, &child_rel);
                stack.push((host, child_rel));
            } else if ft.is_file() {
                let crc = host_crc(&host)?;
                acc.file(
                    LayerRole::Custom,
                    root,
                    &child_rel,
                    file_mode(host_mode(&md)),
                    md.len(),
                    crc,
                    EntrySource::Host { path: host },
                )?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&host).map_err(host_err(&host))?;
                let target = target.into_os_string().into_string().map_err(|_| {
                    LayeringError::UnsupportedHostEntry {
                        path: host.clone(),
                        reason: "symlink target is not UTF-8",
                    }
                })?;
                if let Some((parent, _)) = child_rel.rsplit_once('/') {
                    acc.dir(LayerRole::Custom, root, parent);
                }
                let entry = PlannedEntry {
                    dest: join(root, &child_rel),
                    kind: PlannedKind::Symlink { target },
                    mode: 0o777,
                    uid: acc.opts.uid,
                    gid: acc.opts.gid,
                    size: 0,
                    crc32: 0,
                    source: EntrySource::None,
                };
                acc.insert(LayerRole::Custom, entry)?;
            } else {
                return Err(LayeringError::UnsupportedHostEntry {
                    path: host,
                    reason: "devices, fifos and sockets cannot go into a layer",
                });
            }
        }
    }
    Ok(())
}

fn host_crc(path: &Path) -> Result<u32, LayeringError> {
    let err = |source| LayeringError::Host {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(err)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_parse() {
        for s in Service::ALL {
            assert_eq!(s.name().parse::<Service>().ok(), Some(s));
        }
        let err = "nope".parse::<Service>().unwrap_err().to_string();
        assert!(
            err.contains("cortex") && err.contains("data-population"),
            "{err}"
        );
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify_war("WEB-INF/lib/guava-33.jar").0,
            LayerRole::ThirdParty
        );
        assert_eq!(
            classify_war("WEB-INF/lib/foo-1.0-SNAPSHOT.jar").0,
            LayerRole::Snapshot
        );
        assert_eq!(
            classify_war("WEB-INF/lib/ext-core-1.0-SNAPSHOT.jar").0,
            LayerRole::Project
        );
        assert_eq!(
            classify_war("WEB-INF/lib/ep-core-8.jar").0,
            LayerRole::Project
        );
        assert_eq!(
            classify_war("WEB-INF/lib/com.elasticpath.x.jar").0,
            LayerRole::Project
        );
        assert_eq!(
            classify_war("WEB-INF/lib/sub/a.jar").0,
            LayerRole::Resources
        );
        assert_eq!(
            classify_war("WEB-INF/classes/a/B.class").0,
            LayerRole::Classes
        );
        assert_eq!(
            classify_war("WEB-INF/classes/a/b.properties").0,
            LayerRole::Resources
        );
        assert_eq!(classify_war("index.html").0, LayerRole::Resources);
        assert_eq!(classify_tool("bin/run"), (LayerRole::Resources, 0o755));
        assert_eq!(classify_tool("x/run.sh"), (LayerRole::Resources, 0o755));
        assert_eq!(classify_tool("lib/ep-x.jar"), (LayerRole::Project, 0o644));
    }

    #[test]
    fn destinations() {
        assert_eq!(dest_dir("/usr/local/").unwrap(), "usr/local");
        assert_eq!(dest_dir("/").unwrap(), "");
        assert!(dest_dir("relative").is_err());
        assert!(dest_dir("/a/../b").is_err());
    }
}
