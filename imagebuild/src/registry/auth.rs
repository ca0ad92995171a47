//! Credentials: the [`AuthProvider`] trait, static and `~/.docker/config.json`
//! providers, and the parsing of `WWW-Authenticate` challenges and token
//! server answers used by the client's bearer flow.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncWriteExt as _;

pub use oci_client::secrets::RegistryAuth as Credentials;

use super::error::AuthError;

/// Supplies credentials for registries. The client calls [`credentials`]
/// whenever it needs to authenticate (it does not cache what this returns
/// beyond one operation, apart from bearer tokens obtained with it), and
/// [`invalidate`] when the registry rejected them, so that a provider with
/// expiring credentials (ECR) fetches fresh ones.
///
/// [`credentials`]: AuthProvider::credentials
/// [`invalidate`]: AuthProvider::invalidate
#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync + fmt::Debug {
    /// Credentials for `registry` (the `host[:port]` the caller named), or
    /// `None` for anonymous access.
    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, AuthError>;

    /// The registry rejected what [`credentials`](AuthProvider::credentials)
    /// returned: drop any cached copy.
    fn invalidate(&self, _registry: &str) {}
}

/// Fixed credentials (or anonymous access).
#[derive(Clone, Debug)]
pub struct StaticAuth(Credentials);

impl StaticAuth {
    /// Anonymous access.
    pub fn anonymous() -> Self {
        StaticAuth(Credentials::Anonymous)
    }

    /// HTTP basic credentials (also used to obtain bearer tokens).
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        StaticAuth(Credentials::Basic(username.into(), password.into()))
    }

    /// A registry bearer token sent as is.
    pub fn bearer(token: impl Into<String>) -> Self {
        StaticAuth(Credentials::Bearer(token.into()))
    }
}

#[async_trait::async_trait]
impl AuthProvider for StaticAuth {
    async fn credentials(&self, _registry: &str) -> Result<Option<Credentials>, AuthError> {
        Ok(match &self.0 {
            Credentials::Anonymous => None,
            c => Some(c.clone()),
        })
    }
}

/// Credentials from a Docker `config.json`: `auths` entries (base64 `auth`
/// or `username`/`password`), `credHelpers` per registry and the default
/// `credsStore`, the latter two by running `docker-credential-<name> get`.
#[derive(Clone)]
pub struct DockerConfigAuth {
    path: PathBuf,
    auths: HashMap<String, (String, String)>,
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
    helper_dir: Option<PathBuf>,
}

impl fmt::Debug for DockerConfigAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfigAuth")
            .field("path", &self.path)
            .field("auths", &self.auths.keys().collect::<Vec<_>>())
            .field("cred_helpers", &self.cred_helpers)
            .field("creds_store", &self.creds_store)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize, Default)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, DockerAuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(serde::Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The key Docker uses for Docker Hub in `config.json` and helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// `https://host:port/v1/` → `host:port`; Docker Hub aliases → `index.docker.io`.
fn normalize_registry_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".to_owned(),
        _ => host,
    }
}

impl DockerConfigAuth {
    /// Reads `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; a
    /// missing file means no credentials (anonymous).
    pub fn from_default_location() -> Result<Self, AuthError> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(".docker"),
                None => PathBuf::from(".docker"),
            },
        };
        Self::from_path(dir.join("config.json"))
    }

    /// Reads the given config file; a missing file means no credentials.
    pub fn from_path(path: impl Into<PathBuf>) -> Result<Self, AuthError> {
        let path = path.into();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(AuthError::DockerConfig {
                    path,
                    message: e.to_string(),
                })
            }
        };
        Self::from_json(&path, &text)
    }

    fn from_json(path: &Path, text: &[u8]) -> Result<Self, AuthError> {
        let cfg: DockerConfigFile = if text.iter().all(u8::is_ascii_whitespace) {
            DockerConfigFile::default()
        } else {
            // serde_json's message names a line/column, never the value.
            serde_json::from_slice(text).map_err(|e| AuthError::DockerConfig {
                path: path.to_owned(),
                message: format!("invalid JSON: {e}"),
            })?
        };
        let mut auths = HashMap::new();
        for (key, entry) in cfg.auths {
            let pair = if let Some(b64) = entry.auth.filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| AuthError::DockerConfig {
                        path: path.to_owned(),
                        message: format!("auths[{key}].auth is not valid base64"),
                    })?;
                let s = String::from_utf8(raw).map_err(|_| AuthError::DockerConfig {
                    path: path.to_owned(),
                    message: format!("auths[{key}].auth is not UTF-8"),
                })?;
                match s.split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => {
                        return Err(AuthError::DockerConfig {
                            path: path.to_owned(),
                            message: format!("auths[{key}].auth is not user:password"),
                        })
                    }
                }
            } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
                (u, p)
            } else {
                // identitytoken-only entries and empty ones: nothing usable here.
                continue;
            };
            auths.insert(normalize_registry_key(&key), pair);
        }
        let cred_helpers = cfg
            .cred_helpers
            .into_iter()
            .map(|(k, v)| (normalize_registry_key(&k), v))
            .collect();
        Ok(DockerConfigAuth {
            path: path.to_owned(),
            auths,
            cred_helpers,
            creds_store: cfg.creds_store.filter(|s| !s.is_empty()),
            helper_dir: None,
        })
    }

    /// Run credential helpers from this directory instead of searching `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    async fn run_helper(
        &self,
        helper: &str,
        server: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        let herr = |message: String| AuthError::Helper {
            helper: helper.to_owned(),
            message,
        };
        if helper.is_empty() || helper.contains(['/', '\\']) {
            return Err(herr("invalid helper name".to_owned()));
        }
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let mut child = tokio::process::Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| herr(format!("cannot run {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server.as_bytes())
                .await
                .map_err(|e| herr(format!("writing stdin: {e}")))?;
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .map_err(|_| herr("timed out after 60 s".to_owned()))?
            .map_err(|e| herr(e.to_string()))?;
        if !out.status.success() {
            // Helpers print "credentials not found in native keychain" on stdout
            // when they have nothing: that is anonymous access, not a failure.
            let text = String::from_utf8_lossy(&out.stdout);
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            return Err(herr(format!("exited with {}: {first}", out.status)));
        }
        let parsed: HelperOutput = serde_json::from_slice(&out.stdout)
            .map_err(|_| herr("output is not the expected JSON".to_owned()))?;
        if parsed.username == "<token>" {
            return Err(herr(
                "returned an identity token, which is not supported; use a username/password"
                    .to_owned(),
            ));
        }
        Ok(Some(Credentials::Basic(parsed.username, parsed.secret)))
    }
}

#[async_trait::async_trait]
impl AuthProvider for DockerConfigAuth {
    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, AuthError> {
        let key = normalize_registry_key(registry);
        let server = if key == "index.docker.io" {
            DOCKER_HUB_KEY.to_owned()
        } else {
            key.clone()
        };
        if let Some(helper) = self.cred_helpers.get(&key) {
            return self.run_helper(helper, &server).await;
        }
        if let Some((u, p)) = self.auths.get(&key) {
            return Ok(Some(Credentials::Basic(u.clone(), p.clone())));
        }
        if let Some(store) = &self.creds_store {
            return self.run_helper(store, &server).await;
        }
        Ok(None)
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No authentication needed (the `/v2/` ping answered 200).
    None,
    /// HTTP basic.
    Basic,
    /// Token flow.
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for, if it said (used in addition
        /// to the scopes we compute).
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params.get("realm")?.clone();
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    } else {
        None
    }
}

/// `k="v", k2=v2` → map with lowercase keys; commas inside quotes are kept.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    out
}

/// A token server's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lives (the spec's default is 60 s).
    pub fn into_token(self) -> Option<(String, Duration)> {
        // Capped: the value is the server's, and an absurd one must not overflow.
        let ttl = Duration::from_secs(self.expires_in.unwrap_or(60).clamp(1, 24 * 3600));
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
            .map(|t| (t, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"Bearer realm=http://x/t, service = "a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("a\"b".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn docker_config_auths_and_redaction() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpzM2NyZXQ6eA=="},
            "reg.example:5000":{"username":"u","password":"p"},"empty.example":{}},
            "credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login"}}"#;
        let cfg = DockerConfigAuth::from_json(Path::new("c.json"), json).unwrap();
        assert_eq!(
            cfg.auths.get("index.docker.io"),
            Some(&("user".to_owned(), "s3cret:x".to_owned()))
        );
        assert_eq!(
            cfg.auths.get("reg.example:5000"),
            Some(&("u".to_owned(), "p".to_owned()))
        );
        assert!(!cfg.auths.contains_key("empty.example"));
        assert_eq!(
            cfg.cred_helpers
                .get("123.dkr.ecr.us-east-1.amazonaws.com")
                .map(String::as_str),
            Some("ecr-login")
        );
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let bad =
            DockerConfigAuth::from_json(Path::new("c.json"), br#"{"auths":{"x":{"auth":"!!"}}}"#);
        assert!(matches!(bad, Err(AuthError::DockerConfig { .. })));
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials::Basic("me".into(), "hunter2".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Bearer("tok123".into())).contains("tok123"));
    }

    #[test]
    fn token_response() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token(), Some(("a".into(), Duration::from_secs(300))));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"b"}"#).unwrap();
        assert_eq!(t.into_token(), Some(("b".into(), Duration::from_secs(60))));
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"c","expires_in":18446744073709551615}"#).unwrap();
        assert_eq!(
            t.into_token(),
            Some(("c".into(), Duration::from_secs(86400)))
        );
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }
}
