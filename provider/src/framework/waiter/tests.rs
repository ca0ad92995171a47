use tokio_util::sync::CancellationToken;

use super::script::{test_op as op, Script};
use super::*;
use crate::framework::timeouts::Operation;

fn status(s: &str, n: u32) -> Result<Observed<u32>, Diagnostics> {
    Ok(Observed::Status(s.to_owned(), n))
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

    let s: Script<u32> = Script::new(vec![Ok(Observed::NotFound)]);
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
        .poll_times()
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
