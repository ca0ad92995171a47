//! Amazon ECR credentials through `GetAuthorizationToken`.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine as _;

use super::auth::{AuthProvider, Credentials};
use super::error::AuthError;

/// ECR tokens live 12 hours; one with less than this left is refreshed, so a
/// push that starts just before expiry does not run into it.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Assumed lifetime when ECR does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a token whose stated expiry is already (nearly) past is used.
const SKEWED_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct CachedToken {
    username: String,
    password: String,
    expires_at: SystemTime,
    proxy_endpoint: Option<String>,
}

/// Credentials for ECR registries from `ecr:GetAuthorizationToken`, cached
/// and refreshed when less than 5 minutes remain or when the registry
/// rejects them ([`AuthProvider::invalidate`]).
///
/// The token is valid for every ECR registry of the account and region the
/// SDK client is configured for, whatever registry name it is asked about.
pub struct EcrAuth {
    client: aws_sdk_ecr::Client,
    cached: Mutex<Option<CachedToken>>,
    // Serializes refreshes: concurrent pushes wait for one API call.
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for EcrAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcrAuth").finish_non_exhaustive()
    }
}

impl EcrAuth {
    /// A provider using `config` (region, credentials), talking to the ECR
    /// API at `endpoint_override` when given (e.g. an emulator).
    pub fn new(config: &aws_config::SdkConfig, endpoint_override: Option<&str>) -> Self {
        let mut b = aws_sdk_ecr::config::Builder::from(config);
        if let Some(url) = endpoint_override {
            b = b.endpoint_url(url);
        }
        Self::from_client(aws_sdk_ecr::Client::from_conf(b.build()))
    }

    /// A provider using an already configured ECR client.
    pub fn from_client(client: aws_sdk_ecr::Client) -> Self {
        EcrAuth {
            client,
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The registry URL ECR reported with the token
    /// (`https://<account>.dkr.ecr.<region>.amazonaws.com`), fetching a token
    /// if none is cached.
    pub async fn proxy_endpoint(&self) -> Result<Option<String>, AuthError> {
        Ok(self.token().await?.proxy_endpoint)
    }

    fn fresh_cached(&self) -> Option<CachedToken> {
        let guard = self.cached.lock().ok()?;
        let t = guard.as_ref()?;
        let left = t
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        (left > REFRESH_MARGIN).then(|| t.clone())
    }

    async fn token(&self) -> Result<CachedToken, AuthError> {
        if let Some(t) = self.fresh_cached() {
            return Ok(t);
        }
        let _gate = self.refresh.lock().await;
        if let Some(t) = self.fresh_cached() {
            return Ok(t);
        }
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| AuthError::Ecr(aws_sdk_ecr::error::DisplayErrorContext(&e).to_string()))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| AuthError::Ecr("no authorizationData in the answer".to_owned()))?;
        let b64 = data
            .authorization_token()
            .ok_or_else(|| AuthError::Ecr("no authorizationToken in the answer".to_owned()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .ok_or_else(|| AuthError::Ecr("authorizationToken is not base64 text".to_owned()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| AuthError::Ecr("authorizationToken is not user:password".to_owned()))?;
        let now = SystemTime::now();
        let stated = data
            .expires_at()
            .and_then(|d| SystemTime::try_from(*d).ok())
            .unwrap_or(now + DEFAULT_LIFETIME);
        // A token just issued is valid now even if its stated expiry is past
        // (clock skew; emulators send fixed dates): keep it for a minute
        // rather than calling the API before every request. A 401 still
        // invalidates it.
        let expires_at = if stated <= now + REFRESH_MARGIN {
            now + REFRESH_MARGIN + SKEWED_LIFETIME
        } else {
            stated
        };
        let token = CachedToken {
            username: username.to_owned(),
            password: password.to_owned(),
            expires_at,
            proxy_endpoint: data.proxy_endpoint().map(str::to_owned),
        };
        if let Ok(mut g) = self.cached.lock() {
            *g = Some(token.clone());
        }
        Ok(token)
    }
}

#[async_trait::async_trait]
impl AuthProvider for EcrAuth {
    async fn credentials(&self, _registry: &str) -> Result<Option<Credentials>, AuthError> {
        let t = self.token().await?;
        Ok(Some(Credentials::Basic(t.username, t.password)))
    }

    fn invalidate(&self, _registry: &str) {
        if let Ok(mut g) = self.cached.lock() {
            *g = None;
        }
    }
}
