//! The waits on status sequences moto never produces (it jumps straight to
//! `available` and deletes at once), replayed by a scripted fake on tokio's
//! paused clock; and the plan-time checks.

use std::time::Duration;

use crate::aws::rds;
use crate::framework::waiter::script::{test_op as op, Script};
use crate::framework::WaitError;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn instance_waits_through_creating_and_backing_up_and_needs_available_three_times() {
    let s = Script::statuses(&[
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
    let polls = s.poll_times();
    assert_eq!(polls.len(), 8);
    // The first poll comes after the minute's delay, as terraform-provider-aws does.
    assert_eq!(polls.first().copied(), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn instance_wait_fails_at_once_on_incompatible_parameters() {
    let s = Script::statuses(&[Some("creating"), Some("incompatible-parameters")]);
    match rds::instance_available("db")
        .wait(&op(HOUR), || s.poll())
        .await
    {
        Err(WaitError::Failed { status, .. }) => assert_eq!(status, "incompatible-parameters"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(s.polls(), 2);
}

#[tokio::test(start_paused = true)]
async fn instance_wait_refuses_an_unlisted_status() {
    let s = Script::statuses(&[
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
    let s = Script::statuses(&[None, None, Some("creating"), Some("available")]);
    let got = rds::instance_available("db")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert_eq!(got.ok().flatten(), Some("available"));
}

#[tokio::test(start_paused = true)]
async fn instance_deletion_waits_until_it_is_gone() {
    let s = Script::statuses(&[Some("deleting"), Some("deleting"), None]);
    let got = rds::instance_deleted("db")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert!(matches!(got, Ok(None)), "{got:?}");
    assert_eq!(s.polls(), 3);
}

#[tokio::test(start_paused = true)]
async fn snapshot_waits_through_pending_and_creating() {
    let s = Script::statuses(&[Some("pending"), Some("creating"), Some("available")]);
    let got = rds::snapshot_available("snap")
        .wait(&op(HOUR), || s.poll())
        .await;
    assert_eq!(got.ok().flatten(), Some("available"));
    let f = Script::statuses(&[Some("creating"), Some("failed")]);
    assert!(matches!(
        rds::snapshot_available("snap")
            .wait(&op(HOUR), || f.poll())
            .await,
        Err(WaitError::Failed { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_reports_the_last_status() {
    let s = Script::statuses(&[Some("creating")]);
    match rds::instance_available("db")
        .wait(&op(Duration::from_secs(300)), || s.poll())
        .await
    {
        Err(WaitError::Interrupted { last, .. }) => assert_eq!(last.as_deref(), Some("creating")),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
