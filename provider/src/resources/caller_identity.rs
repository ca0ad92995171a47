//! `ep_caller_identity`: who the provider's AWS credentials are. Proves the
//! provider block (keys, profile, assumed role, endpoints) end to end.

use std::sync::Arc;

use async_trait::async_trait;

use crate::aws::ApiError;
use serde::{Deserialize, Serialize};

use crate::framework::{
    Applying, Attribute, Block, Diagnostic, Diagnostics, Phase, Schema, Type, TypedDataSource,
};

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

/// Result of `ep_caller_identity` (it takes no arguments).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct IdentityModel<P: Phase = Applying> {
    id: P::Of<Option<String>>,
    account_id: P::Of<Option<String>>,
    arn: P::Of<Option<String>>,
    user_id: P::Of<Option<String>>,
    region: P::Of<Option<String>>,
}

#[async_trait]
impl TypedDataSource for CallerIdentity {
    type Model<P: Phase> = IdentityModel<P>;

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

    async fn read(&self, _config: IdentityModel) -> Result<IdentityModel, Diagnostics> {
        let aws = self.data.aws()?;
        let sts = aws.sts().await.map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Could not set up AWS credentials",
                e.to_string(),
            ))
        })?;
        let out = sts.get_caller_identity().send().await.map_err(|e| {
            ApiError::new("STS GetCallerIdentity", "the provider's credentials", &e)
        })?;
        let account = out.account().map(str::to_owned);
        Ok(IdentityModel {
            id: account.clone(),
            account_id: account,
            arn: out.arn().map(str::to_owned),
            user_id: out.user_id().map(str::to_owned),
            region: Some(aws.region().to_owned()),
        })
    }
}
