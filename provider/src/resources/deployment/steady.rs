//! When an ECS service counts as steady after a change, judged from one
//! `DescribeServices` answer.
//!
//! terraform-provider-aws calls a service steady when it is ACTIVE, has one
//! deployment and runs as many tasks as it wants. A circuit breaker that rolled
//! the change back satisfies all three, so a failed rollout reads as success
//! there. Here the primary deployment must also run the task definition this
//! apply registered, and a rollout ECS marked FAILED is an error with its reason.

/// The parts of an ECS service the judgement needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// The task definition the service is set to run.
    pub task_definition: String,
    /// Tasks the service wants.
    pub desired: i32,
    /// Tasks running.
    pub running: i32,
    /// The service's deployments, in any order.
    pub deployments: Vec<DeploymentView>,
}

/// One deployment of a service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentView {
    /// Deployment ID (`ecs-svc/…`).
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Task definition ARN it runs.
    pub task_definition: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`; absent when the service has
    /// no circuit breaker (and on emulators).
    pub rollout_state: Option<String>,
    /// ECS's reason for the rollout state.
    pub rollout_state_reason: Option<String>,
    /// Tasks running for this deployment.
    pub running: i32,
    /// Tasks this deployment wants.
    pub desired: i32,
}

/// What this apply expects the service to settle on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The task definition registered for the service.
    pub task_definition: &'a str,
    /// The deployment `CreateService`/`UpdateService` answered with for the
    /// new task definition: if it stops being primary, the change was rolled
    /// back. `None` when the answer held no such deployment (ECS always
    /// starts one; moto does not): then the service's own task definition
    /// and its single deployment are all there is to judge.
    pub deployment_id: Option<&'a str>,
}

/// The verdict on one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Steadiness {
    /// Done.
    Steady,
    /// Not yet, and why (for the log).
    Settling(String),
    /// It will not get there: the rollout failed or was rolled back.
    Failed(String),
}

/// Judges one observation of the service against what the apply expects.
pub fn assess(service: &ServiceView, expected: &Expected<'_>) -> Steadiness {
    if service.status != "ACTIVE" {
        return Steadiness::Failed(format!(
            "the service is {} (deleted while the apply waited?)",
            service.status
        ));
    }
    if let Some(failed) = service.deployments.iter().find(|d| {
        d.rollout_state.as_deref() == Some("FAILED")
            && d.task_definition == expected.task_definition
    }) {
        return Steadiness::Failed(rollout_failure(failed));
    }
    let Some(primary) = service.deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Steadiness::Settling("no primary deployment yet".to_owned());
    };
    if primary.task_definition != expected.task_definition {
        match expected.deployment_id {
            // Our deployment gone from primary means ECS replaced it: a
            // rollback, or another writer. Waiting would only run into the timeout.
            Some(id) if primary.id != id => {
                return Steadiness::Failed(format!(
                    "deployment {id} is no longer primary; the service went back to {} \
                     (a circuit-breaker rollback, or another change to the service)",
                    primary.task_definition
                ));
            }
            None if service.task_definition == expected.task_definition
                && service.deployments.len() == 1 => {}
            _ => {
                return Steadiness::Settling(format!(
                    "the primary deployment runs {}, waiting for {}",
                    primary.task_definition, expected.task_definition
                ))
            }
        }
    }
    if primary.rollout_state.as_deref() == Some("FAILED") {
        return Steadiness::Failed(rollout_failure(primary));
    }
    if service.deployments.len() > 1 {
        return Steadiness::Settling(format!(
            "{} deployments active, waiting for the old ones to drain",
            service.deployments.len()
        ));
    }
    if service.running != service.desired {
        return Steadiness::Settling(format!(
            "{} of {} tasks running",
            service.running, service.desired
        ));
    }
    if primary.rollout_state.as_deref() == Some("IN_PROGRESS") {
        return Steadiness::Settling("rollout in progress".to_owned());
    }
    Steadiness::Steady
}

fn rollout_failure(d: &DeploymentView) -> String {
    format!(
        "the rollout of {} failed: {}",
        d.task_definition,
        d.rollout_state_reason
            .as_deref()
            .unwrap_or("ECS gave no reason")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "arn:aws:ecs:eu-west-1:1:task-definition/cortex:8";
    const OLD: &str = "arn:aws:ecs:eu-west-1:1:task-definition/cortex:7";

    fn deployment(id: &str, status: &str, td: &str, rollout: Option<&str>) -> DeploymentView {
        DeploymentView {
            id: id.to_owned(),
            status: status.to_owned(),
            task_definition: td.to_owned(),
            rollout_state: rollout.map(str::to_owned),
            rollout_state_reason: None,
            running: 2,
            desired: 2,
        }
    }

    fn service(running: i32, deployments: Vec<DeploymentView>) -> ServiceView {
        ServiceView {
            status: "ACTIVE".to_owned(),
            task_definition: NEW.to_owned(),
            desired: 2,
            running,
            deployments,
        }
    }

    fn expect(id: Option<&'static str>) -> Expected<'static> {
        Expected {
            task_definition: NEW,
            deployment_id: id,
        }
    }

    #[test]
    fn one_completed_deployment_of_the_new_revision_with_all_tasks_is_steady() {
        let s = service(2, vec![deployment("d2", "PRIMARY", NEW, Some("COMPLETED"))]);
        assert_eq!(assess(&s, &expect(Some("d2"))), Steadiness::Steady);
        // Without a circuit breaker (and on moto) there is no rollout state.
        let s = service(2, vec![deployment("d2", "PRIMARY", NEW, None)]);
        assert_eq!(assess(&s, &expect(None)), Steadiness::Steady);
    }

    #[test]
    fn a_slow_rollout_is_settling_at_every_stage() {
        let stages = [
            service(
                2,
                vec![
                    deployment("d2", "PRIMARY", NEW, Some("IN_PROGRESS")),
                    deployment("d1", "ACTIVE", OLD, Some("COMPLETED")),
                ],
            ),
            service(
                1,
                vec![deployment("d2", "PRIMARY", NEW, Some("IN_PROGRESS"))],
            ),
            service(
                2,
                vec![deployment("d2", "PRIMARY", NEW, Some("IN_PROGRESS"))],
            ),
        ];
        for s in &stages {
            assert!(
                matches!(assess(s, &expect(Some("d2"))), Steadiness::Settling(_)),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_circuit_breaker_rollback_is_a_failure_with_the_reason() {
        // While rolling back: ours is FAILED, the old revision is primary again.
        let mut failed = deployment("d2", "ACTIVE", NEW, Some("FAILED"));
        failed.rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".to_owned());
        let s = service(
            2,
            vec![
                deployment("d3", "PRIMARY", OLD, Some("IN_PROGRESS")),
                failed,
            ],
        );
        match assess(&s, &expect(Some("d2"))) {
            Steadiness::Failed(why) => assert!(why.contains("tasks failed to start"), "{why}"),
            other => panic!("{other:?}"),
        }
        // After the rollback finished, ours is gone: what terraform-provider-aws
        // takes for success (one deployment, all tasks running) is a failure here.
        let s = service(2, vec![deployment("d3", "PRIMARY", OLD, Some("COMPLETED"))]);
        match assess(&s, &expect(Some("d2"))) {
            Steadiness::Failed(why) => assert!(why.contains("no longer primary"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_a_deployment_id_the_service_definition_decides() {
        // The service still set to the old revision: wait.
        let mut s = service(2, vec![deployment("d1", "PRIMARY", OLD, None)]);
        s.task_definition = OLD.to_owned();
        assert!(matches!(assess(&s, &expect(None)), Steadiness::Settling(_)));
        // Set to the new one, with no deployment started for it (moto's answer).
        s.task_definition = NEW.to_owned();
        assert_eq!(assess(&s, &expect(None)), Steadiness::Steady);
        // With a deployment ID, the same picture is a rollback.
        assert!(matches!(
            assess(&s, &expect(Some("d2"))),
            Steadiness::Failed(_)
        ));
    }

    #[test]
    fn an_inactive_service_fails_at_once() {
        let mut s = service(0, vec![]);
        s.status = "INACTIVE".to_owned();
        assert!(matches!(assess(&s, &expect(None)), Steadiness::Failed(_)));
    }
}
