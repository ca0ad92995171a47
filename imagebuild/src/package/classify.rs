//! Which entries of a package are its applications, tools, ext-data jar,
//! JDBC drivers and ActiveMQ libraries, by directory and artifact id.

use super::{Artifact, ArtifactKind, DeploymentPackage, EntryKind, PackageError};

/// Application names and the artifact-id fragment that identifies each.
const APPLICATIONS: &[(&str, &str)] = &[
    ("cortex", "-cortex-"),
    ("studio", "-studio-"),
    ("cm", "-cm-"),
    ("batch", "-batch-"),
    ("integration", "-integration-"),
    ("search", "-search-"),
    ("data-sync", "-data-sync-"),
];

/// Tool names and the artifact-id fragment that identifies each.
const TOOLS: &[(&str, &str)] = &[
    ("data-population", "-data-population-"),
    ("import-export", "-import-export-"),
    ("sync", "-sync-"),
];

/// Splits `ext-cortex-webapp-8.5.0-SNAPSHOT` into the artifact id and the version, which
/// starts at the first `-` followed by a digit.
fn split_version(stem: &str) -> (&str, Option<&str>) {
    let bytes = stem.as_bytes();
    for (i, w) in bytes.windows(2).enumerate() {
        if w[0] == b'-' && w[1].is_ascii_digit() {
            return (&stem[..i], Some(&stem[i + 1..]));
        }
    }
    (stem, None)
}

/// Matches a file directly inside `dir` (`dir/<file>.<ext>`) and returns the file stem.
fn file_in<'p>(path: &'p str, dir: &str, ext: &str) -> Option<&'p str> {
    let file = path.strip_prefix(dir)?.strip_prefix('/')?;
    if file.contains('/') {
        return None;
    }
    file.strip_suffix(ext)
}

fn push_unique(found: &mut Vec<Artifact>, artifact: Artifact) -> Result<(), PackageError> {
    if let Some(prev) = found.iter().find(|a| a.name == artifact.name) {
        return Err(PackageError::AmbiguousArtifact {
            name: artifact.name,
            first: prev.path.clone(),
            second: artifact.path,
        });
    }
    found.push(artifact);
    Ok(())
}

fn rank(name: &str, table: &[(&str, &str)]) -> usize {
    table
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or(usize::MAX)
}

impl DeploymentPackage {
    /// Sorts the package's files into its artifacts and derives its version.
    pub(super) fn classify(&mut self) -> Result<(), PackageError> {
        let mut applications = Vec::new();
        let mut tools = Vec::new();
        let mut ext_data: Option<Artifact> = None;
        let mut jdbc_drivers = Vec::new();
        let mut activemq_libraries = Vec::new();
        for e in self.entries().iter().filter(|e| e.kind == EntryKind::File) {
            let artifact = |name: &str, kind, stem: &str| {
                let (_, version) = split_version(stem);
                let version = version.map(|v| {
                    let v = if kind == ArtifactKind::Tool {
                        v.strip_suffix("-package").unwrap_or(v)
                    } else {
                        v
                    };
                    v.to_string()
                });
                Artifact {
                    name: name.to_string(),
                    kind,
                    path: e.path.clone(),
                    size: e.size,
                    version,
                }
            };
            if let Some(stem) = file_in(&e.path, "webapps", ".war") {
                let id = format!("-{}-", split_version(stem).0);
                if let Some((name, _)) = APPLICATIONS.iter().find(|(_, n)| id.contains(n)) {
                    push_unique(
                        &mut applications,
                        artifact(name, ArtifactKind::Application, stem),
                    )?;
                }
            } else if let Some(stem) = file_in(&e.path, "tools", ".zip") {
                let id = format!("-{}-", split_version(stem).0);
                if let Some((name, _)) = TOOLS.iter().find(|(_, n)| id.contains(n)) {
                    push_unique(&mut tools, artifact(name, ArtifactKind::Tool, stem))?;
                }
            } else if let Some(stem) = file_in(&e.path, "tools/activemq/lib", ".jar") {
                let id = split_version(stem).0;
                activemq_libraries.push(artifact(id, ArtifactKind::ActiveMqLibrary, stem));
            } else if let Some(stem) = file_in(&e.path, "database/jdbc", ".jar") {
                let id = split_version(stem).0;
                jdbc_drivers.push(artifact(id, ArtifactKind::JdbcDriver, stem));
            } else if let Some(stem) = file_in(&e.path, "database", ".jar") {
                if split_version(stem).0 == "ext-data" {
                    let found = artifact("ext-data", ArtifactKind::ExtData, stem);
                    if let Some(prev) = &ext_data {
                        return Err(PackageError::AmbiguousArtifact {
                            name: "ext-data".into(),
                            first: prev.path.clone(),
                            second: found.path,
                        });
                    }
                    ext_data = Some(found);
                }
            }
        }
        if applications.is_empty() && tools.is_empty() {
            return Err(PackageError::NotAPackage {
                path: self.path.clone(),
            });
        }
        applications.sort_by_key(|a| rank(&a.name, APPLICATIONS));
        tools.sort_by_key(|a| rank(&a.name, TOOLS));
        self.version = ext_data
            .as_ref()
            .and_then(|a| a.version.clone())
            .or_else(|| applications.iter().find_map(|a| a.version.clone()))
            .or_else(|| tools.iter().find_map(|a| a.version.clone()));
        self.applications = applications;
        self.tools = tools;
        self.ext_data = ext_data;
        self.jdbc_drivers = jdbc_drivers;
        self.activemq_libraries = activemq_libraries;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_versions() {
        assert_eq!(
            split_version("ext-cortex-webapp-8.5.0-SNAPSHOT"),
            ("ext-cortex-webapp", Some("8.5.0-SNAPSHOT"))
        );
        assert_eq!(
            split_version("mysql-connector-j-8.4.0"),
            ("mysql-connector-j", Some("8.4.0"))
        );
        assert_eq!(split_version("cortex"), ("cortex", None));
        assert_eq!(file_in("webapps/a.war", "webapps", ".war"), Some("a"));
        assert_eq!(file_in("webapps/x/a.war", "webapps", ".war"), None);
        assert_eq!(file_in("webapps2/a.war", "webapps", ".war"), None);
    }
}
