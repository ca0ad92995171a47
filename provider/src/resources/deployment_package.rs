//! `ep_deployment_package`: what an Elastic Path deployment package holds.
//!
//! Reads the package in place (zip or unpacked directory) through
//! `ep_imagebuild::package`; nothing is unpacked to disk.

use std::path::PathBuf;

use async_trait::async_trait;
use ep_imagebuild::package::{Artifact, DeploymentPackage, PackageError, PackageFormat};

use crate::framework::{
    AttrPath, Attribute, Block, DataSource, Diagnostic, Diagnostics, Schema, Type, Value,
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

fn opt_string(s: Option<&str>) -> Value {
    s.map(Value::string).unwrap_or(Value::Null)
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

/// Everything the data source reports, read on a blocking thread.
fn read_package(path: PathBuf) -> Result<Value, PackageError> {
    let pkg = DeploymentPackage::open(&path)?;
    let artifact = |a: &Artifact| -> Result<Value, PackageError> {
        Ok(Value::object([
            ("path", Value::string(&a.path)),
            ("size", Value::number(a.size)),
            ("sha256", Value::string(pkg.sha256(a)?)),
            ("version", opt_string(a.version.as_deref())),
        ]))
    };
    let by_name = |items: &[Artifact]| -> Result<Value, PackageError> {
        let mut m = std::collections::BTreeMap::new();
        for a in items {
            m.insert(a.name.clone(), artifact(a)?);
        }
        Ok(Value::Map(m))
    };
    let list = |items: &[Artifact]| -> Result<Value, PackageError> {
        Ok(Value::List(
            items.iter().map(artifact).collect::<Result<_, _>>()?,
        ))
    };
    let ops_spec = match pkg.ops_spec()? {
        None => Value::Null,
        Some(spec) => Value::object([
            ("java", opt_string(spec.java.as_deref())),
            ("tomcat", opt_string(spec.tomcat.as_deref())),
            ("activemq", opt_string(spec.activemq.as_deref())),
            ("maven", opt_string(spec.maven.as_deref())),
            (
                "databases",
                Value::List(
                    spec.databases
                        .iter()
                        .map(|d| {
                            Value::object([
                                ("name", opt_string(d.name.as_deref())),
                                ("type", opt_string(d.kind.as_deref())),
                                ("version", opt_string(d.version.as_deref())),
                                ("aws_deployment", opt_string(d.aws_deployment.as_deref())),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("json", Value::string(spec.raw.to_string())),
        ]),
    };
    let fingerprint = pkg.fingerprint()?;
    let ext_data = match pkg.ext_data() {
        Some(a) => artifact(a)?,
        None => Value::Null,
    };
    Ok(Value::object([
        ("path", Value::string(path.to_string_lossy())),
        ("id", Value::string(&fingerprint)),
        ("fingerprint", Value::string(fingerprint)),
        (
            "format",
            Value::string(match pkg.format() {
                PackageFormat::Zip => "zip",
                PackageFormat::Directory => "directory",
            }),
        ),
        ("version", opt_string(pkg.version())),
        ("applications", by_name(pkg.applications())?),
        ("tools", by_name(pkg.tools())?),
        ("ext_data", ext_data),
        ("jdbc_drivers", list(pkg.jdbc_drivers())?),
        ("activemq_libraries", list(pkg.activemq_libraries())?),
        (
            "environments",
            Value::List(pkg.environments()?.into_iter().map(Value::string).collect()),
        ),
        ("ops_spec", ops_spec),
    ]))
}

#[async_trait]
impl DataSource for DeploymentPackageData {
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
                "Path to the package `.zip` or unpacked directory, relative to the working \
                 directory (use `path.module` for module-relative paths).",
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

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        if config.attr("path").as_str() == Some("") {
            d.attr_error(
                AttrPath::root("path"),
                "Empty package path",
                "`path` must name a deployment package .zip or an unpacked package directory.",
            );
        }
        d
    }

    async fn read(&self, config: Value) -> (Value, Diagnostics) {
        let Some(path) = config.attr("path").as_str().map(PathBuf::from) else {
            return (
                Value::Null,
                Diagnostic::error("Missing package path", "`path` is required.")
                    .at(AttrPath::root("path"))
                    .into(),
            );
        };
        match tokio::task::spawn_blocking(move || read_package(path)).await {
            Ok(Ok(v)) => (v, Diagnostics::new()),
            Ok(Err(e)) => (Value::Null, package_diagnostic(&e).into()),
            Err(join) => (
                Value::Null,
                Diagnostic::error("Reading the deployment package failed", join.to_string()).into(),
            ),
        }
    }
}
