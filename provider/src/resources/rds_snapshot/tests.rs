//! The waits on status sequences moto never produces (it jumps straight to
//! `available` and deletes at once), replayed by a scripted fake on tokio's
//! paused clock; and the plan-time checks.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aws::rds;
use crate::framework::{Diagnostics, Observed, Op, Operation, WaitError};

/// Replays statuses one poll at a time; the last one repeats.
struct Script {
    steps: RefCell<VecDeque<Observed<&'static str>>>,
    last: RefCell<Option<Observed<&'static str>>>,
    polls: RefCell<Vec<Duration>>,
    start: Instant,
}

impl Script {
    fn new(steps: &[Option<&'static str>]) -> Self {
        let steps = steps
            .iter()
            .map(|s| match s {
                Some(s) => Observed::Status((*s).to_owned(), *s),
                None => Observed::NotFound,
            })
            .collect();
        Script {
            steps: RefCell::new(steps),
            last: RefCell::new(None),
            polls: RefCell::new(Vec::new()),
            start: Instant::now(),
        }
    }

    async fn poll(&self) -> Result<Observed<&'static str>, Diagnostics> {
        self.polls.borrow_mut().push(self.start.elapsed());
        let next = self.steps.borrow_mut().pop_front();
        if let Some(n) = next {
            *self.last.borrow_mut() = Some(n);
        }
        Ok(self.last.borrow().clone().unwrap_or(Observed::NotFound))
    }
}

fn op(limit: Duration) -> Op<()> {
    Op::for_test(Operation::Create, limit, CancellationToken::new())
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn instance_waits_through_creating_and_backing_up_and_needs_available_three_times() {
    let s = Script::new(&[
        Some("creating"),
        Some("creating"),
        Some("backing-up"),
        Some("available"),
        Some("modifying"),
        Some("available"),
        Some("available"),
        Some("available"),
    ]);
    let got = rds::instance_available("db")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert_eq!(got.ok().flatten(), Some("available"));
    let polls = s.polls.borrow();
    assert_eq!(polls.len(), 8);
    // The first poll comes after the minute's delay, as terraform-provider-aws does.
    assert_eq!(polls.first().copied(), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn instance_wait_fails_at_once_on_incompatible_parameters() {
    let s = Script::new(&[Some("creating"), Some("incompatible-parameters")]);
    match rds::instance_available("db")
        .wait(&op(HOUR), || s.poll())
        .await
    {
        Err(WaitError::Failed { status, .. }) => assert_eq!(status, "incompatible-parameters"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(s.polls.borrow().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn instance_wait_refuses_an_unlisted_status() {
    let s = Script::new(&[
        Some("creating"),
        Some("inaccessible-encryption-credentials"),
    ]);
    match rds::instance_available("db")
        .wait(&op(HOUR), || s.poll())
        .await
    {
        Err(WaitError::Unexpected { status, .. }) => {
            assert_eq!(status, "inaccessible-encryption-credentials")
        }
        other => panic!("expected an unexpected-status error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_just_created_instance_may_be_missing_for_a_few_polls() {
    let s = Script::new(&[None, None, Some("creating"), Some("available")]);
    let got = rds::instance_available("db")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert_eq!(got.ok().flatten(), Some("available"));
}

#[tokio::test(start_paused = true)]
async fn instance_deletion_waits_until_it_is_gone() {
    let s = Script::new(&[Some("deleting"), Some("deleting"), None]);
    let got = rds::instance_deleted("db")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert!(matches!(got, Ok(None)), "{got:?}");
    assert_eq!(s.polls.borrow().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn snapshot_waits_through_pending_and_creating() {
    let s = Script::new(&[Some("pending"), Some("creating"), Some("available")]);
    let got = rds::snapshot_available("snap")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert_eq!(got.ok().flatten(), Some("available"));
    let f = Script::new(&[Some("creating"), Some("failed")]);
    assert!(matches!(
        rds::snapshot_available("snap")
            .wait(&op(HOUR), || f.poll())
            .await,
        Err(WaitError::Failed { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_reports_the_last_status() {
    let s = Script::new(&[Some("creating")]);
    match rds::instance_available("db")
        .wait(&op(Duration::from_secs(300)), || s.poll())
        .await
    {
        Err(WaitError::Interrupted { last, .. }) => assert_eq!(last.as_deref(), Some("creating")),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
