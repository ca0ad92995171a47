//! Running one resource operation: its deadline (from `timeouts`), Ctrl-C
//! (`StopProvider`), and what it recorded before it failed.
//!
//! The adapter in [`super::typed`] races the resource's future against the
//! deadline and the stop signal. When either fires, the operation's token is
//! cancelled so waits return at once, the future gets a short grace period
//! to clean up, and then the state last [`Op::checkpoint`]ed is returned
//! with an error: Terraform keeps it (tainted on create), so nothing created
//! is forgotten.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::dynamic::{Type, Value};
use super::model::{decode_diagnostics, to_value};
use super::timeouts::{format_duration, Operation};
use super::{Diagnostic, Diagnostics};

/// How long an interrupted operation may take to clean up before it is
/// abandoned. Terraform users expect Ctrl-C to answer within seconds.
pub const GRACE: Duration = Duration::from_secs(3);

/// The provider-wide stop signal. Each stop cancels the operations running
/// then; operations started afterwards (a debug-mode provider lives on)
/// get a fresh token.
#[derive(Default)]
pub struct Stopper(Mutex<CancellationToken>);

impl Stopper {
    /// The token running operations should watch.
    pub fn token(&self) -> CancellationToken {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Cancels every operation running now.
    pub fn stop(&self) {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        guard.cancel();
        *guard = CancellationToken::new();
    }
}

/// Why an operation stopped before finishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    /// Terraform asked the provider to stop (Ctrl-C).
    Stopped,
    /// The operation's timeout passed.
    TimedOut {
        /// Which operation.
        op: Operation,
        /// Its timeout.
        limit: Duration,
    },
}

impl Interrupted {
    /// The error Terraform shows, saying what to do.
    pub fn to_diagnostic(self, what: &str) -> Diagnostic {
        match self {
            Interrupted::Stopped => Diagnostic::error(
                "Interrupted",
                format!(
                    "Terraform asked the provider to stop while {what}. What was created so \
                     far is recorded in state; the next apply continues or replaces it."
                ),
            ),
            Interrupted::TimedOut { op, limit } => Diagnostic::error(
                format!("Timed out after {}", format_duration(limit)),
                format!(
                    "{what} did not finish within {}. Raise `timeouts.{}` if this operation \
                     is expected to take longer; what was created so far is recorded in state.",
                    format_duration(limit),
                    op.name()
                ),
            ),
        }
    }
}

impl From<Interrupted> for Diagnostics {
    fn from(i: Interrupted) -> Diagnostics {
        i.to_diagnostic("the operation was running").into()
    }
}

/// What an operation recorded, kept outside its future so that it survives
/// the future being dropped.
#[derive(Default)]
pub(super) struct Record {
    /// The last checkpointed state, if any.
    pub state: Option<Value>,
    /// The private data as last set.
    pub private: Vec<u8>,
    /// Warnings to show whatever the outcome.
    pub warnings: Diagnostics,
}

/// The context of one running operation, handed to the resource.
pub struct Op<P> {
    kind: Operation,
    limit: Duration,
    deadline: Instant,
    token: CancellationToken,
    stop: CancellationToken,
    record: Arc<Mutex<Record>>,
    state_type: Type,
    /// Turns a serialized model into the state Terraform would keep.
    finish: Finish,
    private: Mutex<P>,
}

/// Completes a serialized model into a state value (framework-managed
/// attributes such as `timeouts`, inputs as planned).
pub(super) type Finish = Arc<dyn Fn(Value) -> Value + Send + Sync>;

impl<P> Op<P>
where
    P: Serialize + DeserializeOwned + Default + Clone + Send + Sync,
{
    pub(super) fn new(
        kind: Operation,
        limit: Duration,
        stop: CancellationToken,
        private: P,
        record: Arc<Mutex<Record>>,
        state_type: Type,
        finish: Finish,
    ) -> Self {
        Op {
            kind,
            limit,
            deadline: Instant::now() + limit,
            token: stop.child_token(),
            stop,
            record,
            state_type,
            finish,
            private: Mutex::new(private),
        }
    }

    /// Which operation this is.
    pub fn kind(&self) -> Operation {
        self.kind
    }

    /// Time left before the timeout.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The token that is cancelled on Ctrl-C or at the deadline; pass it to
    /// anything long that can watch one.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Why the operation must stop now, if it must.
    pub fn interrupted(&self) -> Option<Interrupted> {
        if self.stop.is_cancelled() {
            Some(Interrupted::Stopped)
        } else if self.token.is_cancelled() || Instant::now() >= self.deadline {
            Some(Interrupted::TimedOut {
                op: self.kind,
                limit: self.limit,
            })
        } else {
            None
        }
    }

    /// Runs `fut` until it finishes, Ctrl-C, or the deadline.
    pub async fn run<T>(&self, fut: impl Future<Output = T>) -> Result<T, Interrupted> {
        if let Some(i) = self.interrupted() {
            return Err(i);
        }
        tokio::select! {
            out = fut => Ok(out),
            _ = self.token.cancelled() => Err(self.interrupted().unwrap_or(Interrupted::Stopped)),
            _ = tokio::time::sleep_until(self.deadline) => Err(Interrupted::TimedOut {
                op: self.kind,
                limit: self.limit,
            }),
        }
    }

    /// Sleeps, returning early when interrupted.
    pub async fn sleep(&self, d: Duration) -> Result<(), Interrupted> {
        self.run(tokio::time::sleep(d)).await
    }

    /// Records `state` as what exists now: if the operation fails or is
    /// interrupted from here on, this is the state Terraform keeps.
    pub fn checkpoint<M: Serialize + Send + Sync>(&self, state: &M) -> Result<(), Diagnostics> {
        let value = to_value(state, &self.state_type)
            .map_err(|e| decode_diagnostics("state it checkpointed", &e))?;
        let value = (self.finish)(value);
        self.with_record(|r| r.state = Some(value));
        Ok(())
    }

    /// Records that nothing exists any more (what the operation created has
    /// been cleaned up): if it fails from here on, Terraform keeps no object
    /// rather than a tainted one.
    pub fn gone(&self) {
        self.with_record(|r| r.state = Some(Value::Null));
    }

    /// The private data as it stands.
    pub fn private(&self) -> P {
        self.private
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the private data; kept whatever the outcome.
    pub fn update_private(&self, f: impl FnOnce(&mut P)) {
        let mut p = self.private.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut p);
        let bytes = serde_json::to_vec(&*p).unwrap_or_default();
        self.with_record(|r| r.private = bytes);
    }

    /// Adds a warning shown whatever the outcome.
    pub fn warn(&self, summary: impl Into<String>, detail: impl Into<String>) {
        self.with_record(|r| r.warnings.push(Diagnostic::warning(summary, detail)));
    }

    fn with_record(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.record.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Runs `f` on a blocking thread; a task that panicked is an error
/// diagnostic, "`what` failed".
pub async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Diagnostics> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Diagnostic::error(format!("{what} failed"), e.to_string()).into())
}

#[cfg(test)]
impl Op<()> {
    /// A bare operation for unit tests: no state, a deadline `limit` from
    /// now, cancelled with `stop`.
    pub(crate) fn for_test(kind: Operation, limit: Duration, stop: CancellationToken) -> Self {
        Op::new(
            kind,
            limit,
            stop,
            (),
            Arc::default(),
            Type::Object(Default::default()),
            Arc::new(|v| v),
        )
    }
}
