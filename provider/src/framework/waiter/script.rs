//! A scripted status source for waiter tests (test builds only): it replays
//! its polls one at a time, the last one repeating, and records when each
//! poll came in tokio's (paused) virtual time. It stands in for the status
//! sequences the emulators never produce.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Observed;
use crate::framework::timeouts::Operation;
use crate::framework::{Diagnostics, Op};

/// Replays `Result<Observed<T>, _>` answers one poll at a time.
pub(crate) struct Script<T> {
    steps: RefCell<VecDeque<Result<Observed<T>, Diagnostics>>>,
    last: RefCell<Option<Result<Observed<T>, Diagnostics>>>,
    polls: RefCell<Vec<Duration>>,
    start: Instant,
}

impl<T: Clone> Script<T> {
    /// Answers `steps` in order, then the last one forever.
    pub(crate) fn new(steps: Vec<Result<Observed<T>, Diagnostics>>) -> Self {
        Script {
            steps: RefCell::new(steps.into()),
            last: RefCell::new(None),
            polls: RefCell::new(Vec::new()),
            start: Instant::now(),
        }
    }

    /// The next answer.
    pub(crate) async fn poll(&self) -> Result<Observed<T>, Diagnostics> {
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

    /// When each poll came, from the script's creation.
    pub(crate) fn poll_times(&self) -> Vec<Duration> {
        self.polls.borrow().clone()
    }

    /// How many polls came.
    pub(crate) fn polls(&self) -> usize {
        self.polls.borrow().len()
    }
}

impl Script<&'static str> {
    /// Statuses (each answered with itself as the object); `None` is "not found".
    pub(crate) fn statuses(steps: &[Option<&'static str>]) -> Self {
        Script::new(
            steps
                .iter()
                .map(|s| {
                    Ok(match s {
                        Some(s) => Observed::Status((*s).to_owned(), *s),
                        None => Observed::NotFound,
                    })
                })
                .collect(),
        )
    }
}

/// An operation with `limit` left and no Ctrl-C.
pub(crate) fn test_op(limit: Duration) -> Op<()> {
    Op::for_test(Operation::Create, limit, CancellationToken::new())
}
