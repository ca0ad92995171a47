//! `ep_deployment_package`: what an Elastic Path deployment package holds.
//!
//! Reads the package in place (zip or unpacked directory) through
//! `ep_imagebuild::package`; nothing is unpacked to disk.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use ep_imagebuild::package::{Artifact, DeploymentPackage, PackageError, PackageFormat};
use ep_imagebuild::source::{resolve, FetchOptions, PackageRef, Resolved};
use serde::{Deserialize, Serialize};

use super::package_info_cache;
use crate::framework::{
    blocking, Applying, AttrPath, Attribute, Block, Diagnostic, Diagnostics, Phase, Planning,
    Schema, Type, TypedDataSource,
};

/// The `ep_deployment_package` data source.
pub struct DeploymentPackageData;

fn artifact_type() -> Type {
    Type::object([
        ("path", Type::String),
        ("size", Type::Number),
        ("sha256", Type::String),
        ("version", Type::String),
    ])
}

fn database_type() -> Type {
    Type::object([
        ("name", Type::String),
        ("type", Type::String),
        ("version", Type::String),
        ("aws_deployment", Type::String),
    ])
}

fn ops_spec_type() -> Type {
    Type::object([
        ("java", Type::String),
        ("tomcat", Type::String),
        ("activemq", Type::String),
        ("maven", Type::String),
        ("databases", Type::list(database_type())),
        ("json", Type::String),
    ])
}

/// One file of the package, as the data source reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    path: String,
    size: u64,
    sha256: String,
    version: Option<String>,
}

/// One database entry of `ops-spec.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
    aws_deployment: Option<String>,
}

/// The versions `ops-spec.json` declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpsSpecInfo {
    java: Option<String>,
    tomcat: Option<String>,
    activemq: Option<String>,
    maven: Option<String>,
    databases: Vec<DatabaseInfo>,
    json: String,
}

/// Configuration and result of `ep_deployment_package`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct PackageModel<P: Phase = Applying> {
    path: P::Of<String>,
    maven_repository: P::Of<Option<String>>,
    local_path: P::Of<Option<String>>,
    source_checksum: P::Of<Option<String>>,
    id: P::Of<Option<String>>,
    fingerprint: P::Of<Option<String>>,
    format: P::Of<Option<String>>,
    version: P::Of<Option<String>>,
    applications: P::Of<Option<BTreeMap<String, ArtifactInfo>>>,
    tools: P::Of<Option<BTreeMap<String, ArtifactInfo>>>,
    ext_data: P::Of<Option<ArtifactInfo>>,
    jdbc_drivers: P::Of<Option<Vec<ArtifactInfo>>>,
    activemq_libraries: P::Of<Option<Vec<ArtifactInfo>>>,
    environments: P::Of<Option<Vec<String>>>,
    ops_spec: P::Of<Option<OpsSpecInfo>>,
}

/// Maps a reader error to a diagnostic on `path`, with a summary by kind.
fn package_diagnostic(e: &PackageError) -> Diagnostic {
    let summary = match e {
        PackageError::NotFound { .. } => "Deployment package not found",
        PackageError::NotAZip { .. } | PackageError::CorruptZip { .. } => {
            "Corrupt deployment package"
        }
        PackageError::UnsafePath { .. }
        | PackageError::SymlinkEntry { .. }
        | PackageError::SymlinkEscapes { .. }
        | PackageError::DuplicateEntry { .. } => "Unsafe entry in deployment package",
        PackageError::ZipBomb { .. } | PackageError::TooLarge { .. } => {
            "Deployment package exceeds safety limits"
        }
        PackageError::NotAPackage { .. } => "Not an Elastic Path deployment package",
        _ => "Could not read deployment package",
    };
    Diagnostic::error(summary, format!("{e}.")).at(AttrPath::root("path"))
}

/// The package on this machine: `path` itself, or a verified download.
async fn fetch(config: &PackageModel) -> Result<Resolved, Diagnostics> {
    let at_path = |summary: &str, detail: String| -> Diagnostics {
        Diagnostic::error(summary, detail)
            .at(AttrPath::root("path"))
            .into()
    };
    let reference = PackageRef::parse(&config.path)
        .map_err(|e| at_path("Invalid package reference", e.to_string()))?;
    let cache = crate::resources::image::cache_root().join("packages");
    let opts = FetchOptions::from_env(cache, config.maven_repository.clone())
        .map_err(|e| at_path("Cannot read the Maven settings", e.to_string()))?;
    resolve(&reference, &opts)
        .await
        .map_err(|e| at_path("Could not fetch the deployment package", format!("{e}.")))
}

/// [`read_package`], answered from the package information cache while
/// the zip is the same file, unchanged.
fn read_package_cached(path: String) -> Result<PackageModel, PackageError> {
    let key = package_info_cache::key(Path::new(&path));
    let dir = package_info_cache::dir();
    if let Some(hit) = key
        .as_deref()
        .and_then(|k| package_info_cache::load(&dir, k))
    {
        tracing::debug!(package = %path, "package information from the cache");
        return Ok(hit);
    }
    let model = read_package(path)?;
    if let Some(k) = &key {
        package_info_cache::store(&dir, k, &model);
    }
    Ok(model)
}

/// Everything the data source reports, read on a blocking thread.
fn read_package(path: String) -> Result<PackageModel, PackageError> {
    let pkg = DeploymentPackage::open(Path::new(&path))?;
    let artifact = |a: &Artifact| -> Result<ArtifactInfo, PackageError> {
        Ok(ArtifactInfo {
            path: a.path.clone(),
            size: a.size,
            sha256: pkg.sha256(a)?,
            version: a.version.clone(),
        })
    };
    let by_name = |items: &[Artifact]| -> Result<BTreeMap<String, ArtifactInfo>, PackageError> {
        items
            .iter()
            .map(|a| Ok((a.name.clone(), artifact(a)?)))
            .collect()
    };
    let list = |items: &[Artifact]| -> Result<Vec<ArtifactInfo>, PackageError> {
        items.iter().map(artifact).collect()
    };
    let ops_spec = pkg.ops_spec()?.map(|spec| OpsSpecInfo {
        java: spec.java.clone(),
        tomcat: spec.tomcat.clone(),
        activemq: spec.activemq.clone(),
        maven: spec.maven.clone(),
        databases: spec
            .databases
            .iter()
            .map(|d| DatabaseInfo {
                name: d.name.clone(),
                kind: d.kind.clone(),
                version: d.version.clone(),
                aws_deployment: d.aws_deployment.clone(),
            })
            .collect(),
        json: spec.raw.to_string(),
    });
    let fingerprint = pkg.fingerprint()?;
    Ok(PackageModel {
        id: Some(fingerprint.clone()),
        fingerprint: Some(fingerprint),
        format: Some(
            match pkg.format() {
                PackageFormat::Zip => "zip",
                PackageFormat::Directory => "directory",
            }
            .to_owned(),
        ),
        version: pkg.version().map(str::to_owned),
        applications: Some(by_name(pkg.applications())?),
        tools: Some(by_name(pkg.tools())?),
        ext_data: pkg.ext_data().map(artifact).transpose()?,
        jdbc_drivers: Some(list(pkg.jdbc_drivers())?),
        activemq_libraries: Some(list(pkg.activemq_libraries())?),
        environments: Some(pkg.environments()?),
        ops_spec,
        maven_repository: None,
        local_path: Some(path.clone()),
        source_checksum: None,
        path,
    })
}

#[async_trait]
impl TypedDataSource for DeploymentPackageData {
    type Model<P: Phase> = PackageModel<P>;

    fn type_name(&self) -> &'static str {
        "ep_deployment_package"
    }

    fn schema(&self) -> Schema {
        let artifacts = |what: &str| {
            format!("{what}: `path` in the package, `size` in bytes, `sha256` (hex), `version` from the file name.")
        };
        Schema::new(
            Block::new(
                "Reads an Elastic Path deployment package — the zip built by the packager \
                 (`extensions/packager`), or the same tree unpacked — and reports what it \
                 contains. The package is read in place; nothing is unpacked to disk.",
            )
            .attr(Attribute::required("path", Type::String).describe(
                "The package: a `.zip` or unpacked directory (relative to the working \
                 directory; use `path.module` for module-relative paths), an `https://` URL \
                 of the zip in a Maven-layout repository, or a Maven coordinate \
                 `mvn:group:artifact:version[:extension[:classifier]]` (`SNAPSHOT` versions \
                 resolved through `maven-metadata.xml`). Remote packages are downloaded once \
                 into a cache and verified against the repository's `.sha256` or `.sha1`; \
                 credentials come from `EP_MAVEN_USERNAME`/`EP_MAVEN_PASSWORD` or a \
                 `<server>` in `~/.m2/settings.xml` (`EP_MAVEN_SETTINGS`).",
            ))
            .attr(Attribute::optional("maven_repository", Type::String).describe(
                "Repository URL for a `mvn:` path. Default: `EP_MAVEN_REPOSITORY`, then the \
                 `settings.xml` mirror of `*` or `central`.",
            ))
            .attr(Attribute::computed("local_path", Type::String).describe(
                "Where the package is on this machine: `path` itself, or the verified copy in \
                 the cache (`$XDG_CACHE_HOME/terraform-provider-ep/packages/`). Give this to \
                 `ep_image.deployment_package` and the data resources.",
            ))
            .attr(Attribute::computed("source_checksum", Type::String).describe(
                "`sha256:<hex>` (or `sha1:<hex>`) that a downloaded package was verified \
                 with; null for a local path.",
            ))
            .attr(Attribute::computed("id", Type::String).describe("Same as `fingerprint`."))
            .attr(Attribute::computed("fingerprint", Type::String).describe(
                "SHA-256 over every entry's relative name, size and CRC-32: equal for equal \
                 content on any machine, whatever the paths and modification times.",
            ))
            .attr(Attribute::computed("format", Type::String).describe("`zip` or `directory`."))
            .attr(
                Attribute::computed("version", Type::String)
                    .describe("The release version, from the `ext-data` jar or the WAR names."),
            )
            .attr(
                Attribute::computed("applications", Type::map(artifact_type())).describe(
                    &artifacts(
                        "WARs by application (`cortex`, `studio`, `cm`, `batch`, `integration`, \
                         `search`, `data-sync`)",
                    ),
                ),
            )
            .attr(
                Attribute::computed("tools", Type::map(artifact_type())).describe(&artifacts(
                    "Tool zips by name (`data-population`, `import-export`, `sync`)",
                )),
            )
            .attr(
                Attribute::computed("ext_data", artifact_type())
                    .describe(&artifacts("The `database/ext-data` jar")),
            )
            .attr(
                Attribute::computed("jdbc_drivers", Type::list(artifact_type()))
                    .describe(&artifacts("JDBC driver jars under `database/jdbc/`")),
            )
            .attr(
                Attribute::computed("activemq_libraries", Type::list(artifact_type()))
                    .describe(&artifacts("ActiveMQ client jars under `tools/activemq/lib/`")),
            )
            .attr(
                Attribute::computed("environments", Type::list(Type::String))
                    .describe("Environment names in the `ext-data` jar (`default`, `author`, `live`, …), sorted."),
            )
            .attr(Attribute::computed("ops_spec", ops_spec_type()).describe(
                "Versions from `ops-spec.json` (`java`, `tomcat`, `activemq`, `maven`, \
                 `databases`) and the whole document as `json`; null when the package has none.",
            )),
        )
    }

    async fn validate(&self, config: &PackageModel<Planning>) -> Diagnostics {
        let mut d = Diagnostics::new();
        if config.path.get().is_some_and(String::is_empty) {
            d.attr_error(
                AttrPath::root("path"),
                "Empty package path",
                "`path` must name a deployment package .zip or an unpacked package directory.",
            );
        } else if let Some(Err(e)) = config.path.get().map(|p| PackageRef::parse(p)) {
            d.attr_error(
                AttrPath::root("path"),
                "Invalid package reference",
                e.to_string(),
            );
        }
        d
    }

    async fn read(&self, config: PackageModel) -> Result<PackageModel, Diagnostics> {
        let fetched = fetch(&config).await?;
        let local = fetched.path.display().to_string();
        let m = blocking("Reading the deployment package", move || {
            read_package_cached(local)
        })
        .await?
        .map_err(|e| Diagnostics::from(package_diagnostic(&e)))?;
        Ok(PackageModel {
            path: config.path,
            maven_repository: config.maven_repository,
            local_path: Some(fetched.path.display().to_string()),
            source_checksum: fetched.checksum,
            ..m
        })
    }
}
