//! The `ecs` runner: the Data Population tool as a Fargate task from the
//! `data-pop-tool` image. Per run: the two passwords go into temporary SSM
//! `SecureString` parameters, a task definition (deterministic family)
//! references them as `secrets`, `RunTask` starts it (awsvpc), the waiter
//! follows it to `STOPPED`, and [`verdict::judge`] decides; a failure's
//! diagnostic carries the tail of the container's CloudWatch log. On every
//! path out the task is stopped if it still runs, the task definition
//! deregistered and the parameters deleted. The task's ARN is kept in the
//! private state while it may run, and tasks of the family still running
//! are found by `ListTasks`, so an apply cut off hard is cleaned up by the
//! next one (as the temporary instance is found by its identifier).

mod calls;
pub mod verdict;

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::{EcsBlock, EcsTaskRecord, SnapshotPrivate};
use super::settings::{DEFAULT_ECS_CPU, DEFAULT_ECS_MEMORY};
use crate::datapop::contract::{ContainerEnv, Setting};
use crate::datapop::Masker;
use crate::framework::timeouts::format_duration;
use crate::framework::{Diagnostic, Diagnostics, NotFound, Op, Waiter};
use crate::resources::deployment::taskdef::{ContainerSpec, LogConfig, Networking, TaskSpec};
use verdict::{judge, Verdict};

type Result<T> = std::result::Result<T, Diagnostics>;

/// The container's name in the task definition (and in its log stream).
pub const CONTAINER: &str = "data-population";
/// The awslogs stream prefix: streams are `<prefix>/<container>/<task id>`.
pub const STREAM_PREFIX: &str = "ep-datapop";
/// `startedBy` of the tasks this runner starts.
pub const STARTED_BY: &str = "ep_rds_snapshot";
/// Log lines shown with a failure.
pub const TAIL_LINES: usize = 40;

/// Every ECS task status before `STOPPED`.
const TASK_PENDING: &[&str] = &[
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
];

/// The names one run uses, all derived from the temporary instance's
/// identifier so that the next apply finds what an interrupted one left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// Task definition family.
    pub family: String,
    /// Prefix of the SSM parameters (ends without `/`).
    pub parameter_prefix: String,
}

impl Names {
    /// The names of the run against instance `instance_id`.
    pub fn of(instance_id: &str) -> Self {
        Names {
            family: format!("ep-datapop-{instance_id}"),
            parameter_prefix: format!("/ep/rds-snapshot/{instance_id}"),
        }
    }

    /// The SSM parameter holding variable `env`.
    pub fn parameter(&self, env: &str) -> String {
        format!("{}/{env}", self.parameter_prefix)
    }

    /// Every parameter a run may create.
    pub fn parameters(&self) -> Vec<String> {
        Setting::ALL
            .iter()
            .filter(|s| s.is_secret())
            .map(|s| self.parameter(s.env()))
            .collect()
    }
}

/// The `awslogs` stream of the task `task_arn`'s container.
pub fn log_stream(task_arn: &str) -> String {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    format!("{STREAM_PREFIX}/{CONTAINER}/{id}")
}

/// The AWS clients the runner uses.
#[derive(Clone, Debug)]
pub struct Clients {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// SSM (the passwords).
    pub ssm: aws_sdk_ssm::Client,
    /// CloudWatch Logs (the tail).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// The region (the awslogs driver needs it).
    pub region: String,
}

/// One run of the tool as a Fargate task.
pub struct EcsRun<'a> {
    /// Clients.
    pub clients: Clients,
    /// The create operation.
    pub op: &'a Op<SnapshotPrivate>,
    /// The configured block.
    pub block: &'a EcsBlock,
    /// Deterministic names.
    pub names: Names,
    /// Tags of the parameters and the task definition.
    pub tags: BTreeMap<String, String>,
}

impl EcsRun<'_> {
    /// Runs the tool with `env` within `limit`; `Ok` when it exited with 0.
    /// Whatever happens, nothing of the run is left behind.
    pub async fn run(&self, env: &ContainerEnv, limit: Duration) -> Result<()> {
        let c = &self.clients;
        let cluster = &self.block.cluster_arn;
        let secrets: Vec<&str> = env.secrets.values().map(|s| s.expose()).collect();
        let masker = Masker::new(&secrets);
        calls::stop_leftovers(c, self.op, cluster, &self.names.family).await?;
        let outcome = self.start_and_wait(env, limit, &masker).await;
        let cleanup = cleanup(c, &self.names).await;
        match (outcome, cleanup) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(mut d), Err(e)) => {
                d.extend(e);
                Err(d)
            }
            (Err(d), Ok(())) | (Ok(()), Err(d)) => Err(d),
        }
    }

    async fn start_and_wait(
        &self,
        env: &ContainerEnv,
        limit: Duration,
        masker: &Masker,
    ) -> Result<()> {
        let c = &self.clients;
        let mut secret_arns = BTreeMap::new();
        for (name, value) in &env.secrets {
            let param = self.names.parameter(name);
            let arn = calls::put_secret(c, &param, value, &self.tags).await?;
            secret_arns.insert(name.clone(), arn);
        }
        let spec = self.task_spec(env, secret_arns);
        let td = crate::resources::deployment::ecs::register(&c.ecs, &spec, &self.tags).await?;
        let task_arn = calls::run_task(c, self.block, &td).await?;
        let record = EcsTaskRecord {
            cluster: self.block.cluster_arn.clone(),
            task_arn: task_arn.clone(),
        };
        self.op
            .update_private(|p| p.ecs_task = Some(record.clone()));
        tracing::info!(task = %task_arn, "the Data Population task started");
        let waiter = Waiter::new(format!("ECS task {task_arn:?}"), &["STOPPED"])
            .pending(TASK_PENDING)
            .delay(Duration::from_secs(10))
            .interval(Duration::from_secs(6), Duration::from_secs(30))
            .not_found(NotFound::Tolerate(3));
        let wait = waiter.wait(self.op, || {
            calls::describe_task(c, &record.cluster, &task_arn)
        });
        let stopped = match tokio::time::timeout(limit, wait).await {
            Ok(Ok(Some(view))) => view,
            Ok(Ok(None)) => {
                self.op.update_private(|p| p.ecs_task = None);
                return Err(Diagnostic::error(
                    "The Data Population task vanished",
                    format!("ECS no longer knows task {task_arn:?}."),
                )
                .into());
            }
            other => {
                // Interrupted, timed out, or no longer observable: the task
                // must not go on writing into an instance about to be deleted.
                let mut d: Diagnostics = match other {
                    Ok(Err(e)) => e.into(),
                    _ => Diagnostic::error(
                        format!("Timed out after {}", format_duration(limit)),
                        format!(
                            "The Data Population task did not finish within {}. Raise \
                             `phase_timeouts.tool` if it is expected to take longer (and \
                             `timeouts.create`, which bounds the whole run).",
                            format_duration(limit)
                        ),
                    )
                    .into(),
                };
                match calls::stop_task(c, &record.cluster, &task_arn).await {
                    Ok(()) => self.op.update_private(|p| p.ecs_task = None),
                    Err(e) => d.extend(e),
                }
                return Err(d);
            }
        };
        self.op.update_private(|p| p.ecs_task = None);
        match judge(&stopped, CONTAINER) {
            Verdict::Succeeded => Ok(()),
            Verdict::Failed(why) => {
                let stream = log_stream(&task_arn);
                let tail = match calls::log_tail(c, &self.block.log_group, &stream, TAIL_LINES)
                    .await
                {
                    Ok(lines) if lines.is_empty() => "(the log stream has no lines)".to_owned(),
                    Ok(lines) => lines
                        .iter()
                        .map(|l| masker.mask(l))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Err(e) => format!("(the log stream could not be read: {})", masker.mask(&e)),
                };
                Err(Diagnostic::error(
                    "The Data Population task failed",
                    format!(
                        "ECS task {task_arn:?}: {}. The last lines of its log (group {:?}, stream \
                         {stream:?}):\n{tail}",
                        masker.mask(&why),
                        self.block.log_group
                    ),
                )
                .into())
            }
        }
    }

    fn task_spec(&self, env: &ContainerEnv, secret_arns: BTreeMap<String, String>) -> TaskSpec {
        let b = self.block;
        let (cpu, memory) = (
            b.cpu.unwrap_or(DEFAULT_ECS_CPU),
            b.memory.unwrap_or(DEFAULT_ECS_MEMORY),
        );
        let log = LogConfig {
            driver: "awslogs".into(),
            options: BTreeMap::from([
                ("awslogs-group".to_owned(), b.log_group.clone()),
                ("awslogs-region".to_owned(), self.clients.region.clone()),
                ("awslogs-stream-prefix".to_owned(), STREAM_PREFIX.to_owned()),
            ]),
        };
        TaskSpec {
            family: self.names.family.clone(),
            cpu,
            memory,
            execution_role_arn: Some(b.execution_role_arn.clone()),
            task_role_arn: b.task_role_arn.clone(),
            containers: vec![ContainerSpec {
                name: CONTAINER.into(),
                image: b.image.clone(),
                // The whole task's memory as the container's hard limit.
                memory: Some(memory),
                essential: Some(true),
                environment: env.plain.clone(),
                secrets: secret_arns,
                log: Some(log),
                ..ContainerSpec::default()
            }],
            // awsvpc on Fargate, as the run's network configuration needs.
            networking: Networking::Fargate,
        }
    }
}

/// Removes what runs against the instance `names` belong to leave behind:
/// every active revision of the family and the parameters. Missing ones
/// are fine.
pub async fn cleanup(c: &Clients, names: &Names) -> Result<()> {
    let mut d = Diagnostics::new();
    match calls::active_revisions(c, &names.family).await {
        Ok(arns) => {
            for arn in arns {
                if let Err(e) = crate::resources::deployment::ecs::deregister(&c.ecs, &arn).await {
                    d.extend(e);
                }
            }
        }
        Err(e) => d.extend(e),
    }
    if let Err(e) = calls::delete_parameters(c, &names.parameters()).await {
        d.extend(e);
    }
    if d.has_errors() {
        Err(d)
    } else {
        Ok(())
    }
}

/// Stops the task an interrupted run recorded (if any) and cleans up
/// after it: for delete, which has no `ecs` block to go by.
pub async fn clean_after(c: &Clients, op: &Op<SnapshotPrivate>, instance_id: &str) -> Result<()> {
    if let Some(t) = op.private().ecs_task {
        calls::stop_task(c, &t.cluster, &t.task_arn).await?;
        op.update_private(|p| p.ecs_task = None);
    }
    cleanup(c, &Names::of(instance_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_instance_and_fit_aws_limits() {
        let id = format!("{}-01234567-tmp", "a".repeat(40));
        let n = Names::of(&id);
        assert!(n.family.len() <= 255);
        assert!(n
            .family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            Names::of("ep-01234567-tmp").parameters(),
            [
                "/ep/rds-snapshot/ep-01234567-tmp/EP_DB_PASS",
                "/ep/rds-snapshot/ep-01234567-tmp/EP_DB_ROOT_PASS"
            ]
        );
        assert_eq!(
            log_stream("arn:aws:ecs:us-east-1:1:task/c/0123abcd"),
            "ep-datapop/data-population/0123abcd"
        );
    }
}
