//! Maven coordinates and SNAPSHOT resolution through `maven-metadata.xml`.

use super::download::Client;
use super::SourceError;

/// `group:artifact:version[:extension[:classifier]]` (extension `zip` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinate {
    /// `com.elasticpath`
    pub group: String,
    /// `ext-deployment-package`
    pub artifact: String,
    /// `8.5.0` or `8.6.0-SNAPSHOT`
    pub version: String,
    /// `zip`
    pub extension: String,
    /// An optional classifier.
    pub classifier: Option<String>,
}

impl Coordinate {
    /// Parses the part after `mvn:`.
    pub fn parse(s: &str) -> Result<Coordinate, SourceError> {
        let bad = |reason: &str| SourceError::BadReference {
            reference: format!("mvn:{s}"),
            reason: format!(
                "{reason} (expected mvn:group:artifact:version[:extension[:classifier]])"
            ),
        };
        let parts: Vec<&str> = s.split(':').collect();
        if !(3..=5).contains(&parts.len()) {
            return Err(bad("3 to 5 parts"));
        }
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !p.starts_with('.')
        };
        if let Some(p) = parts.iter().find(|p| !ok(p)) {
            return Err(bad(&format!("{p:?} is not a valid part")));
        }
        Ok(Coordinate {
            group: parts[0].to_owned(),
            artifact: parts[1].to_owned(),
            version: parts[2].to_owned(),
            extension: parts.get(3).map_or("zip", |e| e).to_owned(),
            classifier: parts.get(4).map(|c| (*c).to_owned()),
        })
    }

    fn directory(&self, repo: &str) -> String {
        format!(
            "{}/{}/{}/{}/",
            repo.trim_end_matches('/'),
            self.group.replace('.', "/"),
            self.artifact,
            self.version
        )
    }

    fn file_name(&self, version: &str) -> String {
        match &self.classifier {
            Some(c) => format!("{}-{version}-{c}.{}", self.artifact, self.extension),
            None => format!("{}-{version}.{}", self.artifact, self.extension),
        }
    }
}

impl std::fmt::Display for Coordinate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mvn:{}:{}:{}:{}",
            self.group, self.artifact, self.version, self.extension
        )?;
        if let Some(c) = &self.classifier {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

/// The artifact's URL in `repo`; a SNAPSHOT's is its latest timestamped file.
pub(super) async fn artifact_url(
    client: &Client,
    repo: &str,
    c: &Coordinate,
) -> Result<url::Url, SourceError> {
    let dir = c.directory(repo);
    let version = if c.version.ends_with("-SNAPSHOT") {
        let meta_url = format!("{dir}maven-metadata.xml");
        let xml = client
            .get_text(&meta_url)
            .await?
            .ok_or_else(|| SourceError::Http {
                url: meta_url.clone(),
                status: 404,
                hint: format!(" (no SNAPSHOT of {c} has been deployed)"),
            })?;
        snapshot_version(&xml, c).map_err(|reason| SourceError::BadDocument {
            what: meta_url,
            reason,
        })?
    } else {
        c.version.clone()
    };
    let s = format!("{dir}{}", c.file_name(&version));
    url::Url::parse(&s).map_err(|e| SourceError::BadReference {
        reference: s,
        reason: e.to_string(),
    })
}

/// The timestamped version of the coordinate's file in a SNAPSHOT's metadata.
fn snapshot_version(xml: &str, c: &Coordinate) -> Result<String, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let versioning = doc
        .descendants()
        .find(|n| n.has_tag_name("versioning"))
        .ok_or("no <versioning>")?;
    let text = |n: roxmltree::Node<'_, '_>, tag: &str| {
        n.children()
            .find(|x| x.has_tag_name(tag))
            .and_then(|x| x.text())
            .map(str::trim)
            .map(str::to_owned)
    };
    // Maven 3 lists every file of the snapshot with its own value.
    if let Some(list) = versioning
        .children()
        .find(|n| n.has_tag_name("snapshotVersions"))
    {
        for sv in list
            .children()
            .filter(|n| n.has_tag_name("snapshotVersion"))
        {
            let ext = text(sv, "extension");
            let classifier = text(sv, "classifier").filter(|s| !s.is_empty());
            if ext.as_deref() == Some(c.extension.as_str()) && classifier == c.classifier {
                return text(sv, "value")
                    .ok_or_else(|| "a <snapshotVersion> without <value>".into());
            }
        }
    }
    // Maven 2 style: one timestamp and build number for all files.
    let snapshot = versioning
        .children()
        .find(|n| n.has_tag_name("snapshot"))
        .ok_or_else(|| format!("no file of extension {:?} is listed", c.extension))?;
    let ts = text(snapshot, "timestamp").ok_or("<snapshot> without <timestamp>")?;
    let build = text(snapshot, "buildNumber").ok_or("<snapshot> without <buildNumber>")?;
    let base = c.version.trim_end_matches("-SNAPSHOT");
    Ok(format!("{base}-{ts}-{build}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coord(s: &str) -> Coordinate {
        Coordinate::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn coordinates_and_paths() {
        let c = coord("com.elasticpath:ext-deployment-package:8.5.0");
        assert_eq!(
            format!("{}{}", c.directory("https://nexus/repo/"), c.file_name("8.5.0")),
            "https://nexus/repo/com/elasticpath/ext-deployment-package/8.5.0/ext-deployment-package-8.5.0.zip"
        );
        let c = coord("g:a:1.0:tar.gz:bin");
        assert_eq!(c.file_name("1.0"), "a-1.0-bin.tar.gz");
        assert_eq!(c.to_string(), "mvn:g:a:1.0:tar.gz:bin");
        assert!(Coordinate::parse("g:a").is_err());
        assert!(Coordinate::parse("g:a:../1").is_err());
        assert!(Coordinate::parse("g::1").is_err());
    }

    #[test]
    fn snapshot_versions_maven3_and_maven2() {
        let c = coord("g:a:8.6.0-SNAPSHOT");
        let m3 = r#"<metadata><versioning>
            <snapshot><timestamp>20261201.090000</timestamp><buildNumber>2</buildNumber></snapshot>
            <snapshotVersions>
              <snapshotVersion><extension>pom</extension><value>8.6.0-20261201.090000-2</value></snapshotVersion>
              <snapshotVersion><classifier>sources</classifier><extension>zip</extension><value>8.6.0-x</value></snapshotVersion>
              <snapshotVersion><extension>zip</extension><value>8.6.0-20261201.100000-3</value></snapshotVersion>
            </snapshotVersions></versioning></metadata>"#;
        assert_eq!(
            snapshot_version(m3, &c).as_deref(),
            Ok("8.6.0-20261201.100000-3")
        );
        let m2 = "<metadata><versioning><snapshot><timestamp>20261130.235959</timestamp>\
                  <buildNumber>7</buildNumber></snapshot></versioning></metadata>";
        assert_eq!(
            snapshot_version(m2, &c).as_deref(),
            Ok("8.6.0-20261130.235959-7")
        );
        assert!(snapshot_version("<metadata/>", &c).is_err());
        assert!(snapshot_version("not xml", &c).is_err());
    }
}
