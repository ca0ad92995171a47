//! `ep_caller_identity`: who the provider's AWS credentials are. Proves the
//! provider block (keys, profile, assumed role, endpoints) end to end.

use std::sync::Arc;

use async_trait::async_trait;

use crate::aws::aws_error_chain;
use crate::framework::{Attribute, Block, DataSource, Diagnostics, Schema, Type, Value};

use super::provider::ProviderData;

/// The `ep_caller_identity` data source.
pub struct CallerIdentity {
    data: Arc<ProviderData>,
}

impl CallerIdentity {
    pub(super) fn new(data: Arc<ProviderData>) -> Self {
        CallerIdentity { data }
    }
}

#[async_trait]
impl DataSource for CallerIdentity {
    fn type_name(&self) -> &'static str {
        "ep_caller_identity"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new("The AWS identity the provider acts as (STS `GetCallerIdentity`).")
                .attr(Attribute::computed("id", Type::String).describe("The account ID."))
                .attr(Attribute::computed("account_id", Type::String).describe("AWS account ID."))
                .attr(Attribute::computed("arn", Type::String).describe("ARN of the caller."))
                .attr(
                    Attribute::computed("user_id", Type::String)
                        .describe("Unique ID of the caller."),
                )
                .attr(
                    Attribute::computed("region", Type::String).describe("The provider's region."),
                ),
        )
    }

    async fn read(&self, _config: Value) -> (Value, Diagnostics) {
        let mut diags = Diagnostics::new();
        let aws = match self.data.aws() {
            Ok(a) => a,
            Err(d) => return (Value::Null, d),
        };
        let sts = match aws.sts().await {
            Ok(s) => s,
            Err(e) => {
                diags.error("Could not set up AWS credentials", e.to_string());
                return (Value::Null, diags);
            }
        };
        match sts.get_caller_identity().send().await {
            Ok(out) => {
                let account = out.account().unwrap_or_default().to_owned();
                (
                    Value::object([
                        ("id", Value::string(account.clone())),
                        ("account_id", Value::string(account)),
                        ("arn", Value::string(out.arn().unwrap_or_default())),
                        ("user_id", Value::string(out.user_id().unwrap_or_default())),
                        ("region", Value::string(aws.region())),
                    ]),
                    diags,
                )
            }
            Err(e) => {
                diags.error("STS GetCallerIdentity failed", aws_error_chain(&e));
                (Value::Null, diags)
            }
        }
    }
}
