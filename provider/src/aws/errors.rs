//! AWS API failures as users need to read them: which call, about what,
//! AWS's error code and message, and the request ID to give AWS support.
//! "Not found" is decided by error code per service, including the codes
//! emulators answer with where they differ from AWS.

use std::error::Error;
use std::fmt;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

use super::aws_error_chain;
use crate::framework::{Diagnostic, Diagnostics};

/// Error codes that mean "the object does not exist", per kind of object.
pub mod not_found {
    /// RDS DB instances.
    pub const RDS_INSTANCE: &[&str] = &["DBInstanceNotFound", "DBInstanceNotFoundFault"];
    /// RDS DB snapshots; moto answers `DBSnapshotNotFoundFault` where AWS says
    /// `DBSnapshotNotFound`.
    pub const RDS_SNAPSHOT: &[&str] = &["DBSnapshotNotFound", "DBSnapshotNotFoundFault"];
    /// RDS DB subnet groups.
    pub const RDS_SUBNET_GROUP: &[&str] = &["DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"];
    /// ECR repositories.
    pub const ECR_REPOSITORY: &[&str] = &["RepositoryNotFoundException"];
    /// ECR images.
    pub const ECR_IMAGE: &[&str] = &["ImageNotFoundException"];
    /// ECS clusters.
    pub const ECS_CLUSTER: &[&str] = &["ClusterNotFoundException"];
    /// ECS services (DescribeServices reports absence as a `MISSING` failure instead).
    pub const ECS_SERVICE: &[&str] = &["ServiceNotFoundException"];
    /// Amazon MQ brokers.
    pub const MQ_BROKER: &[&str] = &["NotFoundException"];
    /// SSM parameters.
    pub const SSM_PARAMETER: &[&str] = &["ParameterNotFound"];
}

/// Codes AWS uses for throttling across services, plus SSM's `TooManyUpdates`
/// (which the SDK does not retry on its own).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "TooManyUpdates",
];

/// One failed AWS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Service and operation, e.g. `RDS DescribeDBSnapshots`.
    pub call: String,
    /// What the call was about, e.g. `DB snapshot "ep-author-1"`.
    pub subject: String,
    /// AWS's error code, when the service answered with one.
    pub code: Option<String>,
    /// AWS's message, or the transport failure with its causes.
    pub message: String,
    /// The request ID AWS assigned, when the service answered.
    pub request_id: Option<String>,
}

impl ApiError {
    /// Describes `err`, an SDK error (`SdkError<OperationError, _>`) of `call`
    /// about `subject`.
    pub fn new<E>(call: &str, subject: impl Into<String>, err: &E) -> Self
    where
        E: ProvideErrorMetadata + RequestId + Error + 'static,
    {
        let message = match err.message() {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => aws_error_chain(err),
        };
        ApiError {
            call: call.to_owned(),
            subject: subject.into(),
            code: err.code().map(str::to_owned),
            message,
            request_id: err.request_id().map(str::to_owned),
        }
    }

    /// Whether AWS answered with one of `codes` (e.g. [`not_found::RDS_SNAPSHOT`]).
    pub fn code_is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// Whether the call was throttled and may succeed if repeated later.
    pub fn is_throttling(&self) -> bool {
        self.code_is(THROTTLING)
    }

    /// The error as a Terraform diagnostic.
    pub fn to_diagnostic(&self) -> Diagnostic {
        Diagnostic::error(format!("{} failed", self.call), self.to_string())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {}: ", self.call, self.subject)?;
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message)?,
            None => f.write_str(&self.message)?,
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request ID {id})")?;
        }
        Ok(())
    }
}

impl From<ApiError> for Diagnostics {
    fn from(e: ApiError) -> Diagnostics {
        e.to_diagnostic().into()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecr::config::http::HttpResponse;
    use aws_sdk_ecr::error::{ErrorMetadata, SdkError};
    use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// An ECR service error as the SDK builds it from a response.
    fn service_error(
        code: &str,
        request_id: Option<&str>,
    ) -> SdkError<DescribeRepositoriesError, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("it is not there")
            .build();
        let mut raw = HttpResponse::new(
            400.try_into()
                .unwrap_or_else(|_| unreachable!("400 is a status code")),
            SdkBody::empty(),
        );
        if let Some(id) = request_id {
            raw.headers_mut().insert("x-amzn-requestid", id.to_owned());
        }
        SdkError::service_error(DescribeRepositoriesError::generic(meta), raw)
    }

    #[test]
    fn names_the_call_the_subject_the_code_and_the_request_id() {
        let e = ApiError::new(
            "ECR DescribeRepositories",
            "repository \"ep/cortex\"",
            &service_error("RepositoryNotFoundException", Some("4f1c-req")),
        );
        assert_eq!(
            e.to_string(),
            "ECR DescribeRepositories for repository \"ep/cortex\": \
             RepositoryNotFoundException: it is not there (request ID 4f1c-req)"
        );
        assert!(e.code_is(not_found::ECR_REPOSITORY));
        assert!(!e.code_is(not_found::ECR_IMAGE));
        assert!(!e.is_throttling());
    }

    #[test]
    fn moto_and_aws_snapshot_codes_both_mean_not_found() {
        for code in ["DBSnapshotNotFound", "DBSnapshotNotFoundFault"] {
            let e = ApiError::new("RDS DescribeDBSnapshots", "s", &service_error(code, None));
            assert!(e.code_is(not_found::RDS_SNAPSHOT), "{code}");
        }
    }

    #[test]
    fn throttling_codes_are_recognised() {
        for code in [
            "ThrottlingException",
            "TooManyUpdates",
            "RequestLimitExceeded",
        ] {
            let e = ApiError::new("SSM PutParameter", "p", &service_error(code, None));
            assert!(e.is_throttling(), "{code}");
        }
    }
}
