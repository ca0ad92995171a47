//! The AWS part of the provider block: parsing and validation.

use std::fmt;

use crate::framework::{AttrPath, Attribute, Block, Diagnostics, Nesting, Type, Value};

/// An AWS service the provider may call, each with its own endpoint override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Elastic Container Registry (repositories, auth tokens).
    Ecr,
    /// Relational Database Service.
    Rds,
    /// Elastic Container Service.
    Ecs,
    /// Amazon MQ (ActiveMQ brokers).
    Mq,
    /// Systems Manager parameter store.
    Ssm,
    /// Security Token Service.
    Sts,
    /// Lambda.
    Lambda,
    /// CloudWatch Logs (the `ecs` runner's log tail).
    Logs,
    /// AWS Cloud Map (`ep_deployment`'s service discovery).
    ServiceDiscovery,
}

impl Service {
    /// Every service, in schema order.
    pub const ALL: [Service; 9] = [
        Service::Ecr,
        Service::Rds,
        Service::Ecs,
        Service::Mq,
        Service::Ssm,
        Service::Sts,
        Service::Lambda,
        Service::Logs,
        Service::ServiceDiscovery,
    ];

    /// The attribute name in the `endpoints` block.
    pub fn key(self) -> &'static str {
        match self {
            Service::Ecr => "ecr",
            Service::Rds => "rds",
            Service::Ecs => "ecs",
            Service::Mq => "mq",
            Service::Ssm => "ssm",
            Service::Sts => "sts",
            Service::Lambda => "lambda",
            Service::Logs => "logs",
            Service::ServiceDiscovery => "servicediscovery",
        }
    }
}

/// Endpoint overrides: a URL per service, plus where the container registry
/// really is when ECR reports an address that cannot be reached (emulators).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    urls: Vec<(Service, String)>,
    /// Registry address (`http://host:port` or `host:port`) used instead of the
    /// one ECR reports.
    pub registry: Option<String>,
}

impl Endpoints {
    /// The override for `service`, if any.
    pub fn get(&self, service: Service) -> Option<&str> {
        self.urls
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, u)| u.as_str())
    }
}

/// Static credentials from the provider block.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    access_key: String,
    secret_key: String,
    token: Option<String>,
}

impl fmt::Debug for StaticKeys {
    // Never print the secret, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key", &self.access_key)
            .field("secret_key", &"(sensitive)")
            .finish()
    }
}

impl StaticKeys {
    pub(super) fn to_credentials(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            self.token.clone(),
            None,
            "terraform-provider-ep",
        )
    }
}

/// The `assume_role` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRole {
    /// ARN of the role to assume.
    pub role_arn: String,
    /// Session name shown in CloudTrail.
    pub session_name: Option<String>,
    /// External ID the role's trust policy requires.
    pub external_id: Option<String>,
}

/// Everything the provider block says about AWS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// Region; falls back to the environment and the profile.
    pub region: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
    /// Static keys; otherwise the default credential chain.
    pub static_keys: Option<StaticKeys>,
    /// A role to assume on top of the base credentials.
    pub assume_role: Option<AssumeRole>,
    /// Endpoint overrides.
    pub endpoints: Endpoints,
    /// How often the SDK retries a throttled or transient failure
    /// ([`DEFAULT_MAX_RETRIES`] when unset).
    pub max_retries: Option<u32>,
}

/// Retries of a throttled or transient call, as terraform-provider-aws's default.
pub const DEFAULT_MAX_RETRIES: u32 = 25;
/// The most `max_retries` may be: beyond it, an outage looks like a hang.
const MAX_MAX_RETRIES: u64 = 100;

/// Adds the AWS attributes and blocks to the provider schema.
pub fn schema(block: Block) -> Block {
    let mut endpoints = Block::new(
        "Custom endpoint URLs, for LocalStack, moto or VPC endpoints. The SDK's \
         `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` variables work as well.",
    );
    for s in Service::ALL {
        endpoints = endpoints.attr(
            Attribute::optional(s.key(), Type::String)
                .describe(&format!("Endpoint URL for {}.", s.key().to_uppercase())),
        );
    }
    endpoints = endpoints.attr(Attribute::optional("registry", Type::String).describe(
        "Address of the container registry to push to instead of the one ECR reports \
         (`http://127.0.0.1:5002` for a local registry behind an emulated ECR).",
    ));
    block
        .attr(
            Attribute::optional("region", Type::String)
                .describe("AWS region. Defaults to `AWS_REGION` or the profile's region."),
        )
        .attr(Attribute::optional("max_retries", Type::Number).describe(
            "How many times a throttled or transient AWS call is retried, with exponential \
             backoff (default 25, at most 100). `0` fails at the first error.",
        ))
        .attr(
            Attribute::optional("profile", Type::String)
                .describe("Named profile in the shared AWS config and credentials files."),
        )
        .attr(
            Attribute::optional("access_key", Type::String)
                .sensitive()
                .describe("Static access key ID; requires `secret_key`."),
        )
        .attr(
            Attribute::optional("secret_key", Type::String)
                .sensitive()
                .describe("Static secret access key; requires `access_key`."),
        )
        .attr(
            Attribute::optional("token", Type::String)
                .sensitive()
                .describe("Session token for temporary static credentials."),
        )
        .block(
            "assume_role",
            Nesting::Single,
            Block::new("A role to assume with the base credentials.")
                .attr(Attribute::required("role_arn", Type::String).describe("Role ARN."))
                .attr(
                    Attribute::optional("session_name", Type::String)
                        .describe("Session name (default `terraform-provider-ep`)."),
                )
                .attr(
                    Attribute::optional("external_id", Type::String)
                        .sensitive()
                        .describe("External ID required by the role's trust policy."),
                ),
        )
        .block("endpoints", Nesting::Single, endpoints)
}

fn known_str<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.attr(name).as_str()
}

pub(super) fn valid_region(r: &str) -> bool {
    // `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`…
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| !p.is_empty())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
}

fn valid_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len()
}

/// Checks an endpoint URL: absolute http(s) with a host, nothing else.
fn check_url(s: &str) -> Result<(), String> {
    let u = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{s:?} must use http or https"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(())
}

impl AwsSettings {
    /// Checks the AWS part of a provider block; unknown values are skipped.
    pub fn validate(config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        if let Some(r) = known_str(config, "region") {
            if !valid_region(r) {
                d.attr_error(
                    AttrPath::root("region"),
                    "Invalid AWS region",
                    format!("{r:?} is not an AWS region name such as \"us-east-1\"."),
                );
            }
        }
        if let Some(n) = config.attr("max_retries").as_number() {
            if n.to_u64().is_none_or(|n| n > MAX_MAX_RETRIES) {
                d.attr_error(
                    AttrPath::root("max_retries"),
                    "Invalid max_retries",
                    format!("{n} is not a whole number from 0 to {MAX_MAX_RETRIES}."),
                );
            }
        }
        let ak = config.attr("access_key");
        let sk = config.attr("secret_key");
        if ak.is_known() && sk.is_known() && ak.is_null() != sk.is_null() {
            let (missing, present) = if ak.is_null() {
                ("access_key", "secret_key")
            } else {
                ("secret_key", "access_key")
            };
            d.attr_error(
                AttrPath::root(missing),
                "Incomplete static credentials",
                format!("`{present}` is set, so `{missing}` must be set too."),
            );
        }
        if config.attr("token").as_str().is_some() && ak.is_null() && ak.is_known() {
            d.attr_error(
                AttrPath::root("token"),
                "Session token without keys",
                "`token` only makes sense with `access_key` and `secret_key`.",
            );
        }
        let role = config.attr("assume_role");
        if let Some(arn) = role.attr("role_arn").as_str() {
            if !valid_role_arn(arn) {
                d.attr_error(
                    AttrPath::root("assume_role").attr("role_arn"),
                    "Invalid role ARN",
                    format!(
                        "{arn:?} is not an IAM role ARN such as \
                         \"arn:aws:iam::123456789012:role/deployer\"."
                    ),
                );
            }
        }
        if let Some(name) = role.attr("session_name").as_str() {
            let ok = (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c));
            if !ok {
                d.attr_error(
                    AttrPath::root("assume_role").attr("session_name"),
                    "Invalid session name",
                    "A session name has 2 to 64 characters: letters, digits and =,.@-_",
                );
            }
        }
        let endpoints = config.attr("endpoints");
        for s in Service::ALL {
            if let Some(u) = endpoints.attr(s.key()).as_str() {
                if let Err(msg) = check_url(u) {
                    d.attr_error(
                        AttrPath::root("endpoints").attr(s.key()),
                        "Invalid endpoint URL",
                        msg,
                    );
                }
            }
        }
        if let Some(r) = endpoints.attr("registry").as_str() {
            let as_url = if r.contains("://") {
                r.to_owned()
            } else {
                format!("https://{r}")
            };
            if let Err(msg) = check_url(&as_url) {
                d.attr_error(
                    AttrPath::root("endpoints").attr("registry"),
                    "Invalid registry address",
                    msg,
                );
            }
        }
        d
    }

    /// Reads a validated, wholly known provider block.
    pub fn from_config(config: &Value) -> Self {
        let owned = |name: &str| known_str(config, name).map(str::to_owned);
        let static_keys = match (owned("access_key"), owned("secret_key")) {
            (Some(access_key), Some(secret_key)) => Some(StaticKeys {
                access_key,
                secret_key,
                token: owned("token"),
            }),
            _ => None,
        };
        let role = config.attr("assume_role");
        let assume_role = role.attr("role_arn").as_str().map(|arn| AssumeRole {
            role_arn: arn.to_owned(),
            session_name: role.attr("session_name").as_str().map(str::to_owned),
            external_id: role.attr("external_id").as_str().map(str::to_owned),
        });
        let ep = config.attr("endpoints");
        let endpoints = Endpoints {
            urls: Service::ALL
                .iter()
                .filter_map(|s| ep.attr(s.key()).as_str().map(|u| (*s, u.to_owned())))
                .collect(),
            registry: ep.attr("registry").as_str().map(str::to_owned),
        };
        AwsSettings {
            region: owned("region"),
            profile: owned("profile"),
            static_keys,
            assume_role,
            endpoints,
            max_retries: config
                .attr("max_retries")
                .as_number()
                .and_then(|n| n.to_u64())
                .and_then(|n| u32::try_from(n).ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    #[test]
    fn region_names() {
        assert!(valid_region("us-east-1"));
        assert!(valid_region("us-gov-west-1"));
        assert!(!valid_region("useast1"));
        assert!(!valid_region("US-EAST-1"));
        assert!(!valid_region("us-east-x"));
    }

    #[test]
    fn role_arns() {
        assert!(valid_role_arn("arn:aws:iam::123456789012:role/deployer"));
        assert!(valid_role_arn("arn:aws-us-gov:iam::123456789012:role/a/b"));
        assert!(!valid_role_arn("arn:aws:iam::1234:role/x"));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:user/x"));
    }

    #[test]
    fn diagnostics_point_at_the_attribute() {
        let c = cfg(&[
            ("region", Value::string("moon-1")),
            ("max_retries", Value::number(101u32)),
            ("access_key", Value::string("AKIA")),
            ("secret_key", Value::Null),
            (
                "endpoints",
                cfg(&[
                    ("ecr", Value::string("ftp://x")),
                    ("registry", Value::string("127.0.0.1:5001")),
                ]),
            ),
        ]);
        let d = AwsSettings::validate(&c);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|x| x.path.as_ref().map(|p| p.to_string()))
            .collect();
        assert_eq!(
            paths,
            vec!["region", "max_retries", "secret_key", "endpoints.ecr"]
        );
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let c = cfg(&[
            ("region", Value::unknown()),
            ("access_key", Value::unknown()),
        ]);
        assert!(AwsSettings::validate(&c).is_empty());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = cfg(&[
            ("access_key", Value::string("AKIAEXAMPLE")),
            ("secret_key", Value::string("very-secret")),
        ]);
        let s = AwsSettings::from_config(&c);
        assert!(!format!("{s:?}").contains("very-secret"));
    }
}
