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
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::framework::timeouts::Operation;

    /// Replays `script` one poll at a time (the last entry repeats) and
    /// records when each poll happened, in virtual time.
    struct Script {
        steps: RefCell<VecDeque<Result<Observed<u32>, Diagnostics>>>,
        last: RefCell<Option<Result<Observed<u32>, Diagnostics>>>,
        polls: RefCell<Vec<Duration>>,
        start: Instant,
    }

    fn status(s: &str, n: u32) -> Result<Observed<u32>, Diagnostics> {
        Ok(Observed::Status(s.to_owned(), n))
    }

    impl Script {
        fn new(steps: Vec<Result<Observed<u32>, Diagnostics>>) -> Self {
            Script {
                steps: RefCell::new(steps.into()),
                last: RefCell::new(None),
                polls: RefCell::new(Vec::new()),
                start: Instant::now(),
            }
        }

        async fn poll(&self) -> Result<Observed<u32>, Diagnostics> {
            self.polls.borrow_mut().push(self.start.elapsed());
            let next = self.steps.borrow_mut().pop_front();
            match next {
                Some(step) => {
                    *self.last.borrow_mut() = Some(step.clone());
                    step
                }
                None => self.last.borrow().clone().unwrap_or(Ok(Observed::NotFound)),
            }
        }

        fn polls(&self) -> usize {
            self.polls.borrow().len()
        }
    }

    fn op(limit: Duration) -> Op<()> {
        Op::for_test(Operation::Create, limit, CancellationToken::new())
    }

    fn fast(target: &[&str]) -> Waiter {
        Waiter::new("db-1", target).interval(Duration::from_secs(1), Duration::from_secs(1))
    }

    #[tokio::test(start_paused = true)]
    async fn waits_through_pending_and_returns_the_last_poll() {
        let s = Script::new(vec![
            status("creating", 1),
            status("backing-up", 2),
            status("available", 3),
        ]);
        let w = fast(&["available"]).pending(&["creating", "backing-up"]);
        let got = w.wait(&op(Duration::from_secs(60)), || s.poll()).await;
        assert_eq!(got.ok().flatten(), Some(3));
        assert_eq!(s.polls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_target_must_be_seen_in_a_row() {
        let s = Script::new(vec![
            status("available", 1),
            status("modifying", 2),
            status("available", 3),
            status("available", 4),
            status("available", 5),
            status("modifying", 6),
        ]);
        let w = fast(&["available"]).occurrences(3);
        let got = w.wait(&op(Duration::from_secs(60)), || s.poll()).await;
        assert_eq!(got.ok().flatten(), Some(5));
        assert_eq!(s.polls(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_status_ends_the_wait() {
        let s = Script::new(vec![status("creating", 1), status("failed", 2)]);
        let w = fast(&["available"]).failure(&["failed", "incompatible-network"]);
        match w.wait(&op(Duration::from_secs(60)), || s.poll()).await {
            Err(WaitError::Failed { status, .. }) => assert_eq!(status, "failed"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_outside_the_declared_sets_is_an_error() {
        let s = Script::new(vec![status("creating", 1), status("storage-full", 2)]);
        let w = fast(&["available"]).pending(&["creating"]);
        match w.wait(&op(Duration::from_secs(60)), || s.poll()).await {
            Err(WaitError::Unexpected {
                status, expected, ..
            }) => {
                assert_eq!(status, "storage-full");
                assert_eq!(expected, "creating, available");
            }
            other => panic!("expected an unexpected-status error, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_pending_set_any_other_status_is_pending() {
        let s = Script::new(vec![status("whatever", 1), status("available", 2)]);
        let got = fast(&["available"])
            .wait(&op(Duration::from_secs(60)), || s.poll())
            .await;
        assert_eq!(got.ok().flatten(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_modes() {
        let gone = || Script::new(vec![status("deleting", 1), Ok(Observed::NotFound)]);
        let s = gone();
        let got = fast(&["deleted"])
            .not_found(NotFound::IsTarget)
            .wait(&op(Duration::from_secs(60)), || s.poll())
            .await;
        assert!(matches!(got, Ok(None)), "{got:?}");

        let s = gone();
        let got = fast(&["available"])
            .wait(&op(Duration::from_secs(60)), || s.poll())
            .await;
        assert!(matches!(got, Err(WaitError::NotFound { .. })), "{got:?}");

        let s = Script::new(vec![
            Ok(Observed::NotFound),
            Ok(Observed::NotFound),
            status("available", 7),
        ]);
        let got = fast(&["available"])
            .not_found(NotFound::Tolerate(2))
            .wait(&op(Duration::from_secs(60)), || s.poll())
            .await;
        assert_eq!(got.ok().flatten(), Some(7));

        let s = Script::new(vec![Ok(Observed::NotFound)]);
        let got = fast(&["available"])
            .not_found(NotFound::Tolerate(2))
            .wait(&op(Duration::from_secs(60)), || s.poll())
            .await;
        assert!(matches!(got, Err(WaitError::NotFound { .. })), "{got:?}");
        assert_eq!(s.polls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_poll_is_returned_with_its_diagnostics() {
        let s = Script::new(vec![
            status("creating", 1),
            Err(Diagnostic::error("DescribeDBInstances failed", "AccessDenied").into()),
        ]);
        match fast(&["available"])
            .wait(&op(Duration::from_secs(60)), || s.poll())
            .await
        {
            Err(WaitError::Refresh { diagnostics, .. }) => {
                assert_eq!(
                    diagnostics.iter().next().map(|d| d.detail.as_str()),
                    Some("AccessDenied")
                );
            }
            other => panic!("expected the poll's error, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_interval_grows_to_its_cap_after_the_initial_delay() {
        let s = Script::new(vec![status("creating", 0)]);
        let w = Waiter::new("db-1", &["available"])
            .delay(Duration::from_secs(10))
            .interval(Duration::from_secs(2), Duration::from_secs(4));
        let got = w.wait(&op(Duration::from_secs(30)), || s.poll()).await;
        assert!(got.is_err());
        let polls = s
            .polls
            .borrow()
            .iter()
            .map(|d| d.as_millis())
            .collect::<Vec<_>>();
        // 10 s delay, then 2, 3, 4, 4, 4 … until the 30 s deadline.
        assert_eq!(polls, vec![10_000, 12_000, 15_000, 19_000, 23_000, 27_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_interrupts_with_the_last_status() {
        let s = Script::new(vec![status("creating", 0)]);
        let started = Instant::now();
        let got = fast(&["available"])
            .wait(&op(Duration::from_secs(90)), || s.poll())
            .await;
        match got {
            Err(WaitError::Interrupted { why, last, .. }) => {
                assert_eq!(
                    why,
                    Interrupted::TimedOut {
                        op: Operation::Create,
                        limit: Duration::from_secs(90)
                    }
                );
                assert_eq!(last.as_deref(), Some("creating"));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(started.elapsed(), Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn ctrl_c_interrupts_a_sleeping_wait_at_once() {
        let stop = CancellationToken::new();
        let op = Op::for_test(Operation::Create, Duration::from_secs(3600), stop.clone());
        let s = Script::new(vec![status("creating", 0)]);
        let w = Waiter::new("db-1", &["available"])
            .interval(Duration::from_secs(600), Duration::from_secs(600));
        let started = Instant::now();
        let canceller = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stop.cancel();
        };
        let (got, ()) = tokio::join!(w.wait(&op, || s.poll()), canceller);
        assert_eq!(
            got.err().and_then(|e| e.interruption()),
            Some(Interrupted::Stopped)
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn ctrl_c_interrupts_a_hanging_poll() {
        let stop = CancellationToken::new();
        let op = Op::for_test(Operation::Delete, Duration::from_secs(3600), stop.clone());
        stop.cancel();
        let got = fast(&["deleted"])
            .wait(&op, || {
                std::future::pending::<Result<Observed<u32>, Diagnostics>>()
            })
            .await;
        let d: Diagnostics = got.err().map(Diagnostics::from).unwrap_or_default();
        let first = d.iter().next().map(|d| d.summary.clone());
        assert_eq!(first.as_deref(), Some("Interrupted"));
    }
}
