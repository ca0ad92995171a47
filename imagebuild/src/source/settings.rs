//! What Maven's `settings.xml` says about repositories: mirrors (where
//! `mvn:` references are looked up) and server credentials (matched to a URL
//! through the mirror or repository with the server's id).

use std::path::{Path, PathBuf};

use super::SourceError;

/// A user name and password for a repository.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Repo {
    id: String,
    url: String,
    mirror_of: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
struct Server {
    id: String,
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The parts of a `settings.xml` that fetching uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MavenSettings {
    repos: Vec<Repo>,
    servers: Vec<Server>,
}

impl MavenSettings {
    /// `~/.m2/settings.xml`.
    pub fn default_path() -> Option<PathBuf> {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".m2/settings.xml"))
    }

    /// Reads `path`; a missing file gives empty settings.
    pub fn load(path: &Path) -> Result<MavenSettings, SourceError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|reason| SourceError::BadDocument {
                what: path.display().to_string(),
                reason,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MavenSettings::default()),
            Err(e) => Err(SourceError::io(path.display().to_string())(e)),
        }
    }

    /// Parses a settings document (`${env.NAME}` values are taken from the environment).
    pub fn parse(xml: &str) -> Result<MavenSettings, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let child = |n: roxmltree::Node<'_, '_>, tag: &str| -> Option<String> {
            n.children()
                .find(|x| x.has_tag_name(tag))
                .and_then(|x| x.text())
                .map(|t| interpolate(t.trim()))
        };
        let mut out = MavenSettings::default();
        for n in doc.descendants() {
            if n.has_tag_name("mirror") || n.has_tag_name("repository") {
                if let (Some(id), Some(url)) = (child(n, "id"), child(n, "url")) {
                    out.repos.push(Repo {
                        id,
                        url,
                        mirror_of: child(n, "mirrorOf"),
                    });
                }
            } else if n.has_tag_name("server") {
                if let Some(id) = child(n, "id") {
                    out.servers.push(Server {
                        id,
                        username: child(n, "username"),
                        password: child(n, "password"),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The mirror that stands for every repository (`mirrorOf` `*` or `central`).
    pub fn mirror_url(&self) -> Option<String> {
        self.repos
            .iter()
            .find(|r| {
                r.mirror_of.as_deref().is_some_and(|m| {
                    m.split(',')
                        .any(|p| p.trim() == "*" || p.trim() == "central")
                })
            })
            .map(|r| r.url.clone())
    }

    /// The credentials of the server whose mirror or repository URL is the
    /// longest prefix of `url`.
    pub fn credentials_for(&self, url: &str) -> Result<Option<Credentials>, SourceError> {
        let repo = self
            .repos
            .iter()
            .filter(|r| url.starts_with(r.url.trim_end_matches('/')))
            .max_by_key(|r| r.url.len());
        let Some(server) = repo.and_then(|r| self.servers.iter().find(|s| s.id == r.id)) else {
            return Ok(None);
        };
        let (Some(username), Some(password)) = (&server.username, &server.password) else {
            return Ok(None);
        };
        if password.starts_with('{') && password.ends_with('}') {
            return Err(SourceError::BadDocument {
                what: format!("settings.xml server {:?}", server.id),
                reason: "its password is encrypted (settings-security.xml), which is not \
                         supported: use ${env.NAME} or EP_MAVEN_USERNAME/EP_MAVEN_PASSWORD"
                    .into(),
            });
        }
        Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }))
    }
}

/// Replaces `${env.NAME}` with the variable's value (empty when unset), as Maven does.
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${env.") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 6..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&std::env::var(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &str = r#"<settings>
      <servers>
        <server><id>nexus</id><username>ci</username><password>${env.EP_TEST_UNSET_VAR}pw</password></server>
        <server><id>enc</id><username>u</username><password>{COQLCE6DU6GtcS5P=}</password></server>
      </servers>
      <mirrors>
        <mirror><id>nexus</id><mirrorOf>*</mirrorOf><url>https://nexus.example.com/repository/maven-public/</url></mirror>
      </mirrors>
      <profiles><profile><repositories>
        <repository><id>enc</id><url>https://other.example.com/repo</url></repository>
      </repositories></profile></profiles>
    </settings>"#;

    #[test]
    fn mirrors_credentials_and_encrypted_passwords() {
        let s = MavenSettings::parse(SETTINGS).unwrap_or_default();
        assert_eq!(
            s.mirror_url().as_deref(),
            Some("https://nexus.example.com/repository/maven-public/")
        );
        let c = s
            .credentials_for("https://nexus.example.com/repository/maven-public/g/a/1/a-1.zip")
            .ok()
            .flatten();
        assert_eq!(
            c,
            Some(Credentials {
                username: "ci".into(),
                password: "pw".into()
            })
        );
        assert!(!format!("{c:?}").contains("pw"));
        assert!(s
            .credentials_for("https://elsewhere/x.zip")
            .ok()
            .flatten()
            .is_none());
        assert!(s
            .credentials_for("https://other.example.com/repo/x.zip")
            .is_err());
    }
}
