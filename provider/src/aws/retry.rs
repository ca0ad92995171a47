//! Retrying AWS calls that fail for a reason the SDK's own retries do not
//! cover (SSM's `TooManyUpdates`, ECS's "deployments are active",
//! RDS's `InvalidDBInstanceState` while an instance settles), with
//! exponential backoff bounded by the operation's deadline and Ctrl-C.

use std::future::Future;
use std::time::Duration;

use super::ApiError;
use crate::framework::typed::PrivateType;
use crate::framework::{Diagnostics, Op};

/// The first wait between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Calls `call` until it succeeds or fails with an error `retryable` rejects;
/// between attempts, waits with exponential backoff. The operation's
/// deadline and Ctrl-C end the retries with a diagnostic naming the last error.
pub async fn retry_while<T, P, F, Fut>(
    op: &Op<P>,
    retryable: impl Fn(&ApiError) -> bool,
    mut call: F,
) -> Result<T, Diagnostics>
where
    P: PrivateType,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        let err = match op.run(call()).await? {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) => e,
            Err(e) => return Err(e.into()),
        };
        tracing::info!(error = %err, backoff = ?backoff, "retrying");
        if let Err(why) = op.sleep(backoff).await {
            return Err(why.to_diagnostic(&format!("retrying after {err}")).into());
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::framework::timeouts::Operation;

    fn failure(code: &str) -> ApiError {
        ApiError {
            call: "SSM PutParameter".into(),
            subject: "/ep/db".into(),
            code: Some(code.into()),
            message: "busy".into(),
            request_id: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_what_is_retryable_with_growing_backoff() {
        let op = Op::for_test(
            Operation::Create,
            Duration::from_secs(60),
            CancellationToken::new(),
        );
        let calls = Cell::new(0);
        let started = tokio::time::Instant::now();
        let got = retry_while(&op, ApiError::is_throttling, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 4 {
                    Err(failure("TooManyUpdates"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(got.ok(), Some(4));
        // 0.5 + 1 + 2 seconds of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(3500));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_end_at_once() {
        let op = Op::for_test(
            Operation::Create,
            Duration::from_secs(60),
            CancellationToken::new(),
        );
        let calls = Cell::new(0);
        let got: Result<(), _> = retry_while(&op, ApiError::is_throttling, || {
            calls.set(calls.get() + 1);
            async { Err(failure("ParameterAlreadyExists")) }
        })
        .await;
        assert_eq!(calls.get(), 1);
        let d = got.err().unwrap_or_default();
        assert!(
            d.iter()
                .any(|d| d.detail.contains("ParameterAlreadyExists")),
            "{d:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_retries_naming_the_last_error() {
        let op = Op::for_test(
            Operation::Update,
            Duration::from_secs(30),
            CancellationToken::new(),
        );
        let got: Result<(), _> = retry_while(&op, ApiError::is_throttling, || async {
            Err(failure("ThrottlingException"))
        })
        .await;
        let d = got.err().unwrap_or_default();
        let first = d
            .iter()
            .next()
            .map(|d| (d.summary.clone(), d.detail.clone()));
        let (summary, detail) = first.unwrap_or_default();
        assert_eq!(summary, "Timed out after 30s");
        assert!(detail.contains("ThrottlingException"), "{detail}");
    }
}
