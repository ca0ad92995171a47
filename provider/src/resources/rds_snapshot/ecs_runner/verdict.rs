//! Whether a stopped Data Population task succeeded, judged from what
//! `DescribeTasks` reported: pure, so every ending (exit codes, a missing
//! exit code, an image that could not be pulled, a stop from outside) is
//! tested without AWS. moto cannot produce most of them (its containers
//! always report exit code 0).

/// What `DescribeTasks` said about a task, reduced to what the verdict uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskView {
    /// `lastStatus`.
    pub last_status: String,
    /// `stopCode` (`EssentialContainerExited`, `TaskFailedToStart`, `UserInitiated`, …).
    pub stop_code: Option<String>,
    /// `stoppedReason`.
    pub stopped_reason: Option<String>,
    /// The task's containers.
    pub containers: Vec<ContainerView>,
}

/// One container of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerView {
    /// Its name.
    pub name: String,
    /// Its exit code, once it has one.
    pub exit_code: Option<i32>,
    /// Why it stopped, when ECS says.
    pub reason: Option<String>,
}

/// How a stopped task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The tool's container exited with 0.
    Succeeded,
    /// Anything else, in words.
    Failed(String),
}

/// Errors in `stoppedReason` that mean the container never ran the tool,
/// whatever exit code is reported.
const START_FAILURES: &[&str] = &[
    "CannotPullContainerError",
    "ResourceInitializationError",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "ResourceNotFoundException",
];

/// Judges the stopped `task` by its container `container`.
pub fn judge(task: &TaskView, container: &str) -> Verdict {
    let reason = task
        .stopped_reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!(" (the task stopped: {r})"))
        .unwrap_or_default();
    if task.last_status != "STOPPED" {
        return Verdict::Failed(format!(
            "the task has not stopped (status {:?}){reason}",
            task.last_status
        ));
    }
    let start_failure = task.stop_code.as_deref() == Some("TaskFailedToStart")
        || task
            .stopped_reason
            .as_deref()
            .is_some_and(|r| START_FAILURES.iter().any(|e| r.contains(e)));
    if start_failure {
        return Verdict::Failed(format!("the task failed to start{reason}"));
    }
    if task.stop_code.as_deref() == Some("UserInitiated") {
        // A tool stopped half-way may still exit 0 on SIGTERM: its data is incomplete.
        return Verdict::Failed(format!(
            "the task was stopped before the tool finished{reason}"
        ));
    }
    let Some(c) = task.containers.iter().find(|c| c.name == container) else {
        return Verdict::Failed(format!("the task has no container {container:?}{reason}"));
    };
    let why = c
        .reason
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match c.exit_code {
        Some(0) => Verdict::Succeeded,
        Some(code) => Verdict::Failed(format!("the tool exited with code {code}{why}")),
        None => Verdict::Failed(format!("the container reported no exit code{why}{reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "data-population";

    fn stopped(code: Option<i32>, stop_code: &str, reason: &str) -> TaskView {
        TaskView {
            last_status: "STOPPED".into(),
            stop_code: Some(stop_code.into()),
            stopped_reason: Some(reason.into()),
            containers: vec![ContainerView {
                name: C.into(),
                exit_code: code,
                reason: None,
            }],
        }
    }

    fn failed(v: Verdict) -> String {
        match v {
            Verdict::Failed(why) => why,
            Verdict::Succeeded => panic!("judged a success"),
        }
    }

    #[test]
    fn exit_code_zero_of_the_tool_container_is_success() {
        let t = stopped(
            Some(0),
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        assert_eq!(judge(&t, C), Verdict::Succeeded);
    }

    #[test]
    fn a_non_zero_exit_code_is_a_failure_naming_it() {
        let mut t = stopped(
            Some(3),
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        t.containers[0].reason =
            Some("OutOfMemoryError: Container killed due to memory usage".into());
        let why = failed(judge(&t, C));
        assert!(why.contains("exited with code 3"), "{why}");
        assert!(why.contains("OutOfMemoryError"), "{why}");
    }

    #[test]
    fn a_missing_exit_code_is_a_failure() {
        let t = stopped(
            None,
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        assert!(failed(judge(&t, C)).contains("no exit code"));
    }

    #[test]
    fn an_image_that_cannot_be_pulled_is_a_start_failure_whatever_the_exit_code() {
        let reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s): \
                      ep/data-pop-tool:missing: not found";
        for code in [None, Some(0)] {
            let t = stopped(code, "TaskFailedToStart", reason);
            let why = failed(judge(&t, C));
            assert!(why.contains("failed to start"), "{why}");
            assert!(why.contains("CannotPullContainerError"), "{why}");
        }
        // Older tasks carry the reason without the stop code.
        let t = stopped(
            None,
            "",
            "ResourceInitializationError: unable to pull secrets",
        );
        assert!(failed(judge(&t, C)).contains("failed to start"));
    }

    #[test]
    fn a_task_stopped_from_outside_fails_even_with_exit_code_zero() {
        let t = stopped(Some(0), "UserInitiated", "Stopped by an operator");
        let why = failed(judge(&t, C));
        assert!(why.contains("stopped before the tool finished"), "{why}");
        assert!(why.contains("Stopped by an operator"), "{why}");
    }

    #[test]
    fn a_task_not_stopped_or_without_the_container_is_not_a_success() {
        let mut t = stopped(Some(0), "EssentialContainerExited", "");
        t.last_status = "RUNNING".into();
        assert!(failed(judge(&t, C)).contains("not stopped"));
        let t = stopped(Some(0), "EssentialContainerExited", "");
        assert!(failed(judge(&t, "other")).contains("no container"));
    }
}
