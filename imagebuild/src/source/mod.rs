//! Where a deployment package comes from: a local path, an HTTP(S) URL into
//! a Maven-layout repository, or a Maven coordinate (`mvn:group:artifact:version`),
//! as CloudOps for Kubernetes stores packages in Nexus.
//!
//! A remote package is downloaded once into a content-addressed cache and
//! verified against the repository's `.sha256` (else `.sha1`) before it is
//! kept; an unchanged package costs one small checksum request. SNAPSHOT
//! versions are resolved through `maven-metadata.xml`. A download that breaks
//! off is resumed with a range request (or restarted) and never leaves a
//! partial file in the cache.

mod download;
mod maven;
mod settings;

use std::path::{Path, PathBuf};

pub use maven::Coordinate;
pub use settings::{Credentials, MavenSettings};

/// A package reference as users write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageRef {
    /// A zip or unpacked directory on this machine.
    Local(PathBuf),
    /// An HTTP(S) URL of the zip.
    Url(url::Url),
    /// A Maven coordinate, found in the configured repository.
    Maven(Coordinate),
}

impl PackageRef {
    /// Parses `mvn:…`, `http(s)://…`, or a local path.
    pub fn parse(s: &str) -> Result<PackageRef, SourceError> {
        if let Some(coord) = s.strip_prefix("mvn:") {
            return Ok(PackageRef::Maven(Coordinate::parse(coord)?));
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let url = url::Url::parse(s).map_err(|e| SourceError::BadReference {
                reference: s.to_owned(),
                reason: e.to_string(),
            })?;
            return Ok(PackageRef::Url(url));
        }
        if s.contains("://") {
            return Err(SourceError::BadReference {
                reference: s.to_owned(),
                reason: "only http://, https:// and mvn: references are remote".into(),
            });
        }
        Ok(PackageRef::Local(PathBuf::from(s)))
    }

    /// Whether resolving it needs the network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, PackageRef::Local(_))
    }
}

/// How remote packages are fetched.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Where verified packages are kept (`<dir>/sha256-<hex>.zip`, …).
    pub cache_dir: PathBuf,
    /// Repository base URL for `mvn:` references; else the settings' mirror.
    pub repository: Option<String>,
    /// What `~/.m2/settings.xml` (or the file given) says: mirrors and server credentials.
    pub settings: MavenSettings,
    /// Credentials that win over the settings' (e.g. from the environment).
    pub credentials: Option<Credentials>,
    /// Download attempts before giving up (resumed where the server allows).
    pub attempts: u32,
}

impl FetchOptions {
    /// Options from the environment: `EP_MAVEN_REPOSITORY` (unless `repository`
    /// is given), `EP_MAVEN_USERNAME` and `EP_MAVEN_PASSWORD`, and the settings
    /// in `EP_MAVEN_SETTINGS` or `~/.m2/settings.xml`.
    pub fn from_env(cache_dir: PathBuf, repository: Option<String>) -> Result<Self, SourceError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let settings_path = var("EP_MAVEN_SETTINGS")
            .map(PathBuf::from)
            .or_else(MavenSettings::default_path);
        let settings = match settings_path {
            Some(p) => MavenSettings::load(&p)?,
            None => MavenSettings::default(),
        };
        let credentials = match (var("EP_MAVEN_USERNAME"), var("EP_MAVEN_PASSWORD")) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            _ => None,
        };
        Ok(FetchOptions {
            cache_dir,
            repository: repository
                .filter(|r| !r.is_empty())
                .or_else(|| var("EP_MAVEN_REPOSITORY")),
            settings,
            credentials,
            attempts: 4,
        })
    }
}

/// A package ready to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The file or directory to open.
    pub path: PathBuf,
    /// The URL it came from (remote packages).
    pub url: Option<String>,
    /// The checksum it was verified with, as `sha256:<hex>` or `sha1:<hex>`.
    pub checksum: Option<String>,
    /// Whether this call downloaded it (false: it was in the cache).
    pub downloaded: bool,
}

/// Why a package could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A reference that is neither a path, a URL nor a coordinate.
    #[error("{reference:?} is not a package reference: {reason}")]
    BadReference { reference: String, reason: String },
    /// A `mvn:` reference without a repository to find it in.
    #[error(
        "{coordinate} names no repository: set the Maven repository URL, or a <mirror> in \
         ~/.m2/settings.xml"
    )]
    NoRepository { coordinate: String },
    /// The repository answered with an error status.
    #[error("GET {url}: HTTP {status}{hint}")]
    Http {
        url: String,
        status: u16,
        hint: String,
    },
    /// The repository could not be reached, or stopped answering.
    #[error("GET {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// Neither `.sha256` nor `.sha1` is published beside the package.
    #[error("{url} has no .sha256 or .sha1 beside it: the download could not be verified")]
    NoChecksum { url: String },
    /// The bytes are not what the repository's checksum says.
    #[error("{url}: checksum mismatch: the repository says {expected}, the download is {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// A maven-metadata.xml or settings.xml that cannot be used.
    #[error("{what}: {reason}")]
    BadDocument { what: String, reason: String },
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SourceError {
        let what = what.into();
        move |source| SourceError::Io { what, source }
    }
}

/// Makes `reference` a local path: remote packages are fetched into the cache
/// (or found there) and verified.
pub async fn resolve(reference: &PackageRef, opts: &FetchOptions) -> Result<Resolved, SourceError> {
    let url = match reference {
        PackageRef::Local(p) => {
            return Ok(Resolved {
                path: p.clone(),
                url: None,
                checksum: None,
                downloaded: false,
            })
        }
        PackageRef::Url(u) => u.clone(),
        PackageRef::Maven(c) => {
            let repo = opts
                .repository
                .clone()
                .or_else(|| opts.settings.mirror_url())
                .ok_or_else(|| SourceError::NoRepository {
                    coordinate: c.to_string(),
                })?;
            let client = download::Client::new(opts, &repo)?;
            maven::artifact_url(&client, &repo, c).await?
        }
    };
    let client = download::Client::new(opts, url.as_str())?;
    download::fetch_verified(&client, &url, &opts.cache_dir).await
}

/// The default cache: `<work dir>/packages`.
pub fn default_cache_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("packages")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(matches!(
            PackageRef::parse("build/pkg.zip"),
            Ok(PackageRef::Local(_))
        ));
        assert!(matches!(
            PackageRef::parse("https://nexus/repo/a/b/1/b-1.zip"),
            Ok(PackageRef::Url(_))
        ));
        let Ok(PackageRef::Maven(c)) =
            PackageRef::parse("mvn:com.elasticpath:ext-deployment-package:8.5.0")
        else {
            panic!("a coordinate")
        };
        assert_eq!(c.artifact, "ext-deployment-package");
        assert!(PackageRef::parse("s3://bucket/pkg.zip").is_err());
        assert!(PackageRef::parse("mvn:only-two:parts").is_err());
    }
}
