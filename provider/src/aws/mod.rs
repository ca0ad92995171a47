//! AWS SDK configuration from the `provider "ep"` block: region, profile,
//! static keys, assume-role, and per-service endpoint overrides so the same
//! code runs against AWS, LocalStack or moto.

mod errors;
pub mod fargate;
pub mod rds;
mod retry;
mod settings;

pub use errors::{not_found, ApiError};
pub use retry::retry_while;

pub use settings::{
    schema as settings_schema, AssumeRole, AwsSettings, Endpoints, Service, StaticKeys,
    DEFAULT_MAX_RETRIES,
};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::sync::OnceCell;

/// Why AWS clients could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No region in the provider block, the environment or the profile.
    #[error(
        "no AWS region is configured: set `region` in the provider block, or AWS_REGION in the \
         environment, or a region in the selected profile"
    )]
    NoRegion,
    /// The environment or profile names a region that cannot be one.
    #[error("the AWS region {0:?} (from the environment or profile) is not a region name such as \"us-east-1\"")]
    InvalidRegion(String),
    /// Assuming the role failed.
    #[error("could not assume role {role_arn}: {message}")]
    AssumeRole {
        /// The role that was asked for.
        role_arn: String,
        /// What STS said.
        message: String,
    },
}

/// A method that builds one service's client from the shared configuration,
/// with that service's endpoint override.
macro_rules! client {
    ($(#[$doc:meta])* $name:ident, $sdk:ident, $service:expr) => {
        $(#[$doc])*
        pub async fn $name(&self) -> Result<$sdk::Client, AwsError> {
            let sdk = self.sdk_config().await?;
            let mut conf = $sdk::config::Builder::from(sdk);
            if let Some(url) = self.settings.endpoints.get($service) {
                conf = conf.endpoint_url(url);
            }
            Ok($sdk::Client::from_conf(conf.build()))
        }
    };
}

/// Lazily built AWS SDK configuration, shared by every resource.
///
/// Nothing talks to AWS until a resource needs it, so plans that touch only
/// local data (a deployment package) need no credentials.
pub struct AwsClients {
    settings: AwsSettings,
    region: Region,
    sdk: OnceCell<SdkConfig>,
}

impl AwsClients {
    /// Resolves the region now (a configure-time error if there is none) and
    /// keeps the rest for first use.
    pub async fn new(settings: AwsSettings) -> Result<Self, AwsError> {
        // Explicit, then environment, then profile; never the instance
        // metadata service, which would stall off EC2. An empty variable
        // counts as unset, as the AWS CLI treats it.
        use aws_config::meta::region::ProvideRegion;
        let non_empty = |r: Option<Region>| r.filter(|r| !r.as_ref().is_empty());
        let mut region = non_empty(settings.region.clone().map(Region::new));
        if region.is_none() {
            region = non_empty(
                aws_config::environment::EnvironmentVariableRegionProvider::new()
                    .region()
                    .await,
            );
        }
        if region.is_none() {
            let mut profile = aws_config::profile::ProfileFileRegionProvider::builder();
            if let Some(p) = &settings.profile {
                profile = profile.profile_name(p);
            }
            region = non_empty(profile.build().region().await);
        }
        let region = region.ok_or(AwsError::NoRegion)?;
        if !settings::valid_region(region.as_ref()) {
            return Err(AwsError::InvalidRegion(region.as_ref().to_owned()));
        }
        Ok(AwsClients {
            settings,
            region,
            sdk: OnceCell::new(),
        })
    }

    /// The settings these clients were built from.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The resolved region.
    pub fn region(&self) -> &str {
        self.region.as_ref()
    }

    /// The shared SDK configuration, with credentials (and an assumed role) resolved.
    pub async fn sdk_config(&self) -> Result<&SdkConfig, AwsError> {
        self.sdk.get_or_try_init(|| self.load()).await
    }

    async fn load(&self) -> Result<SdkConfig, AwsError> {
        // The SDK's standard mode retries throttling and transient errors with
        // jittered exponential backoff; only the attempt count is ours.
        let retries = self.settings.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(self.region.clone())
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(retries.saturating_add(1))
                    .with_max_backoff(std::time::Duration::from_secs(30)),
            );
        if let Some(p) = &self.settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(keys) = &self.settings.static_keys {
            loader = loader.credentials_provider(keys.to_credentials());
        }
        let base = loader.load().await;
        let Some(role) = &self.settings.assume_role else {
            return Ok(base);
        };
        // The role is assumed through STS, so STS's endpoint override applies here too.
        let mut sts_base = base.to_builder();
        if let Some(url) = self.settings.endpoints.get(Service::Sts) {
            sts_base.set_endpoint_url(Some(url.to_owned()));
        }
        let sts_base = sts_base.build();
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
            .session_name(
                role.session_name
                    .as_deref()
                    .unwrap_or("terraform-provider-ep"),
            )
            .configure(&sts_base);
        if let Some(id) = &role.external_id {
            provider = provider.external_id(id);
        }
        let provider = provider.build().await;
        // Assume once now so a bad role fails here, with its name, not in the middle of an apply.
        use aws_credential_types::provider::ProvideCredentials;
        provider
            .provide_credentials()
            .await
            .map_err(|e| AwsError::AssumeRole {
                role_arn: role.role_arn.clone(),
                message: aws_error_chain(&e),
            })?;
        Ok(base
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build())
    }

    client!(
        /// An ECR client honouring the `ecr` endpoint override.
        ecr, aws_sdk_ecr, Service::Ecr
    );
    client!(
        /// An RDS client honouring the `rds` endpoint override.
        rds, aws_sdk_rds, Service::Rds
    );
    client!(
        /// An ECS client honouring the `ecs` endpoint override.
        ecs, aws_sdk_ecs, Service::Ecs
    );
    client!(
        /// An Amazon MQ client honouring the `mq` endpoint override.
        mq, aws_sdk_mq, Service::Mq
    );
    client!(
        /// An STS client honouring the `sts` endpoint override.
        sts, aws_sdk_sts, Service::Sts
    );
    client!(
        /// An SSM client honouring the `ssm` endpoint override.
        ssm, aws_sdk_ssm, Service::Ssm
    );
    client!(
        /// A CloudWatch Logs client honouring the `logs` endpoint override.
        logs, aws_sdk_cloudwatchlogs, Service::Logs
    );
    client!(
        /// An AWS Cloud Map client honouring the `servicediscovery` endpoint override.
        servicediscovery, aws_sdk_servicediscovery, Service::ServiceDiscovery
    );
}

/// Renders an SDK error with its sources: the top-level Display of SDK errors
/// is often just "service error".
pub fn aws_error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    ep_imagebuild::error_chain(e)
}
