//! Retries: the policy, and the one loop every retried request goes through.

use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// Retry behaviour for 429, 5xx, timeouts and broken connections.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts per request (and per blob upload), at least 1.
    pub max_attempts: u32,
    /// First backoff; doubled on each retry, with jitter.
    pub initial_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// Ceiling on a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (1-based): exponential, with the
    /// upper half jittered so concurrent clients spread out.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let factor: f64 = rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0);
        exp.mul_f64(factor)
    }
}

/// What one attempt of a retried operation came to.
pub(super) enum Attempt<T, E> {
    /// Final: return this, whatever the attempts left.
    Done(Result<T, E>),
    /// Worth another attempt after `delay` (the policy's backoff when `None`); `last` is the
    /// result when no attempt is left.
    Retry {
        /// What to return if this was the last attempt.
        last: Result<T, E>,
        /// A server-requested delay (`Retry-After`).
        delay: Option<Duration>,
    },
}

/// Runs `attempt` (given the 1-based attempt number) up to `max_attempts` times (at least
/// once), sleeping between attempts. The one retry loop of the client.
///
/// `attempt` returns a fresh future each time; bounding that future (not an async closure)
/// by `Send` keeps callers usable inside `tokio::spawn`.
pub(super) async fn retrying<T, E, F, Fut>(
    policy: &RetryPolicy,
    max_attempts: u32,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>> + Send,
{
    let max_attempts = max_attempts.max(1);

    let mut n = 0;
    loop {
        n += 1;
        match attempt(n).await {
            Attempt::Done(result) => return result,
            Attempt::Retry { last, .. } if n >= max_attempts => return last,
            Attempt::Retry { delay, .. } => {
                tokio::time::sleep(delay.unwrap_or_else(|| policy.backoff(n))).await;
            }
        }
    }
}

pub(super) fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

pub(super) fn retryable_transport(e: &reqwest::Error) -> bool {
    !(e.is_builder() || e.is_redirect() || e.is_status())
}

/// A server's `Retry-After` (seconds form), capped by the policy.
pub(super) fn retry_after(headers: &HeaderMap, policy: &RetryPolicy) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(policy.max_retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            assert!(p.backoff(30) <= Duration::from_millis(1000));
        }
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("120"),
        );
        assert_eq!(retry_after(&h, &p), Some(Duration::from_secs(5)));
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(retry_after(&h, &p), Some(Duration::ZERO));
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_retry_after: Duration::from_millis(5),
        }
    }

    #[tokio::test]
    async fn retrying_stops_at_done_or_after_the_last_attempt() {
        let p = quick();
        let mut seen = Vec::new();
        let r: Result<u32, ()> = retrying(&p, 3, |n| {
            seen.push(n);
            async move {
                if n == 2 {
                    Attempt::Done(Ok(n))
                } else {
                    Attempt::Retry {
                        last: Err(()),
                        delay: None,
                    }
                }
            }
        })
        .await;
        assert_eq!((r, seen.as_slice()), (Ok(2), &[1, 2][..]));
        let mut count = 0;
        let r: Result<u32, u32> = retrying(&p, 3, |n| {
            count += 1;
            async move {
                Attempt::Retry {
                    last: Err(n),
                    delay: Some(Duration::ZERO),
                }
            }
        })
        .await;
        assert_eq!((r, count), (Err(3), 3));
        // Zero attempts still tries once.
        let r: Result<(), u32> = retrying(&p, 0, |n| async move {
            Attempt::Retry {
                last: Err(n),
                delay: None,
            }
        })
        .await;
        assert_eq!(r, Err(1));
    }
}
