//! Polling an AWS-style status until it settles: pending, target and
//! failure sets, the target seen several times in a row (eventually
//! consistent APIs report `available` and then `modifying`), an initial
//! delay and a growing interval, the operation's deadline and Ctrl-C.

use std::fmt;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::operation::{Interrupted, Op};
use super::timeouts::format_duration;
use super::{Diagnostic, Diagnostics};

/// What one poll saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed<T> {
    /// The object exists with this status.
    Status(String, T),
    /// The object does not exist.
    NotFound,
}

/// How a missing object is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFound {
    /// An error: the object should exist.
    Fail,
    /// The goal: waiting for a delete.
    IsTarget,
    /// Still pending for up to this many polls in a row (a just-created
    /// object that the API does not list yet).
    Tolerate(u32),
}

/// A status wait, configured as terraform-provider-aws's waiters are.
#[derive(Clone, Debug)]
pub struct Waiter {
    what: String,
    pending: Vec<String>,
    target: Vec<String>,
    failure: Vec<String>,
    occurrences: u32,
    delay: Duration,
    interval: Duration,
    max_interval: Duration,
    not_found: NotFound,
}

/// Why a wait ended without reaching its target.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Ctrl-C or the deadline, with the last status seen.
    #[error("{what}: interrupted while {}", last.as_deref().map_or("waiting".to_owned(), |s| format!("in status {s:?}")))]
    Interrupted {
        /// What was awaited.
        what: String,
        /// Why it stopped.
        why: Interrupted,
        /// The last status seen.
        last: Option<String>,
    },
    /// A failure status.
    #[error("{what} entered status {status:?}")]
    Failed {
        /// What was awaited.
        what: String,
        /// The failure status.
        status: String,
    },
    /// A status in none of the sets.
    #[error("{what} entered unexpected status {status:?} (expected {expected})")]
    Unexpected {
        /// What was awaited.
        what: String,
        /// The status.
        status: String,
        /// The pending and target statuses.
        expected: String,
    },
    /// The object is gone.
    #[error("{what} no longer exists")]
    NotFound {
        /// What was awaited.
        what: String,
    },
    /// A poll failed.
    #[error("{what}: {}", first_detail(.diagnostics))]
    Refresh {
        /// What was awaited.
        what: String,
        /// The poll's diagnostics.
        diagnostics: Diagnostics,
    },
}

fn first_detail(d: &Diagnostics) -> String {
    d.iter()
        .next()
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .unwrap_or_default()
}

impl WaitError {
    /// The interruption, if that is why the wait ended.
    pub fn interruption(&self) -> Option<Interrupted> {
        match self {
            WaitError::Interrupted { why, .. } => Some(*why),
            _ => None,
        }
    }
}

impl From<WaitError> for Diagnostics {
    fn from(e: WaitError) -> Diagnostics {
        match e {
            WaitError::Interrupted { what, why, last } => {
                let doing = match last {
                    Some(s) => format!("waiting for {what} (last status {s:?})"),
                    None => format!("waiting for {what}"),
                };
                why.to_diagnostic(&doing).into()
            }
            WaitError::Refresh { diagnostics, .. } => diagnostics,
            other => Diagnostic::error("Wait failed", other.to_string()).into(),
        }
    }
}

/// Factor applied to every delay and interval, from `EP_WAIT_SCALE`
/// (e.g. `0.01`), so that tests against emulators that settle at once run
/// in milliseconds. Real deployments leave it unset.
fn scale() -> f64 {
    static SCALE: OnceLock<f64> = OnceLock::new();
    *SCALE.get_or_init(|| {
        std::env::var("EP_WAIT_SCALE")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f >= 0.0)
            .unwrap_or(1.0)
    })
}

fn scaled(d: Duration) -> Duration {
    d.mul_f64(scale())
}

impl Waiter {
    /// A wait for `what` (named in messages and logs) to reach one of `target`.
    pub fn new(what: impl Into<String>, target: &[&str]) -> Self {
        Waiter {
            what: what.into(),
            pending: Vec::new(),
            target: target.iter().map(|s| (*s).to_owned()).collect(),
            failure: Vec::new(),
            occurrences: 1,
            delay: Duration::ZERO,
            interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            not_found: NotFound::Fail,
        }
    }

    /// Statuses to keep waiting through. When set, any status outside
    /// pending, target and failure is an error; when empty, it is pending.
    pub fn pending(mut self, statuses: &[&str]) -> Self {
        self.pending = statuses.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Statuses that end the wait with an error at once.
    pub fn failure(mut self, statuses: &[&str]) -> Self {
        self.failure = statuses.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// How many polls in a row must see a target status.
    pub fn occurrences(mut self, n: u32) -> Self {
        self.occurrences = n.max(1);
        self
    }

    /// Wait before the first poll.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// First interval between polls and the cap it grows to.
    pub fn interval(mut self, first: Duration, cap: Duration) -> Self {
        self.interval = first;
        self.max_interval = cap.max(first);
        self
    }

    /// How a missing object is taken.
    pub fn not_found(mut self, n: NotFound) -> Self {
        self.not_found = n;
        self
    }

    /// Polls `refresh` until a target status has been seen the required
    /// number of times in a row, and returns what the last poll returned
    /// (`None` when the target was the object's absence).
    pub async fn wait<P, T, F, Fut>(
        &self,
        op: &Op<P>,
        mut refresh: F,
    ) -> Result<Option<T>, WaitError>
    where
        P: Serialize + DeserializeOwned + Default + Clone + Send + Sync,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Observed<T>, Diagnostics>>,
    {
        let started = Instant::now();
        let interrupted = |why, last: &Option<String>| WaitError::Interrupted {
            what: self.what.clone(),
            why,
            last: last.clone(),
        };
        let mut last: Option<String> = None;
        let mut seen_target = 0u32;
        let mut missing = 0u32;
        let mut interval = scaled(self.interval);
        op.sleep(scaled(self.delay))
            .await
            .map_err(|why| interrupted(why, &last))?;
        loop {
            let observed = op
                .run(refresh())
                .await
                .map_err(|why| interrupted(why, &last))?
                .map_err(|diagnostics| WaitError::Refresh {
                    what: self.what.clone(),
                    diagnostics,
                })?;
            match observed {
                Observed::NotFound => match self.not_found {
                    NotFound::IsTarget => {
                        tracing::info!(what = %self.what, elapsed = %Elapsed(started), "gone");
                        return Ok(None);
                    }
                    NotFound::Tolerate(n) if missing < n => missing += 1,
                    _ => {
                        return Err(WaitError::NotFound {
                            what: self.what.clone(),
                        })
                    }
                },
                Observed::Status(status, item) => {
                    missing = 0;
                    if last.as_deref() != Some(status.as_str()) {
                        tracing::info!(what = %self.what, status = %status, elapsed = %Elapsed(started), "status");
                    }
                    last = Some(status.clone());
                    if self.target.contains(&status) {
                        seen_target += 1;
                        if seen_target >= self.occurrences {
                            return Ok(Some(item));
                        }
                    } else {
                        seen_target = 0;
                        if self.failure.contains(&status) {
                            return Err(WaitError::Failed {
                                what: self.what.clone(),
                                status,
                            });
                        }
                        if !self.pending.is_empty() && !self.pending.contains(&status) {
                            return Err(WaitError::Unexpected {
                                what: self.what.clone(),
                                status,
                                expected: self
                                    .pending
                                    .iter()
                                    .chain(&self.target)
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            });
                        }
                    }
                }
            }
            op.sleep(interval)
                .await
                .map_err(|why| interrupted(why, &last))?;
            interval = interval.mul_f64(1.5).min(scaled(self.max_interval));
        }
    }
}

/// Elapsed time since an instant, shown as a Terraform duration.
struct Elapsed(Instant);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.elapsed().as_secs();
        f.write_str(&format_duration(Duration::from_secs(secs)))
    }
}

#[cfg(test)]
pub(crate) mod script;
#[cfg(test)]
mod tests;
