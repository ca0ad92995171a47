//! The layering's vocabulary: services, layout options, layer roles, planned entries and
//! layers, custom layers, and errors.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::layer::{Compression, LayerError};
use crate::package::PackageError;

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

    /// Those of [`Service::webapps`] the image is built without (with a warning) when the
    /// package lacks them: production packages often leave Cortex Studio out, and cortex
    /// serves the API without it.
    pub fn optional_webapps(self) -> &'static [&'static str] {
        match self {
            Service::Cortex => &["studio"],
            _ => &[],
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
