//! The AWS calls of the `ecs` runner: SSM parameters, RunTask, DescribeTasks
//! (as a [`TaskView`]), StopTask, the family's revisions, the log tail.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, DesiredStatus, LaunchType, NetworkConfiguration,
};
use aws_sdk_ssm::types::{ParameterType, Tag};

use super::verdict::{ContainerView, TaskView};
use super::{Clients, STARTED_BY};
use crate::aws::{not_found, ApiError};
use crate::datapop::Secret;
use crate::framework::{Diagnostic, Diagnostics, Observed, Op};
use crate::resources::rds_snapshot::model::{EcsBlock, SnapshotPrivate};

type Result<T> = std::result::Result<T, Diagnostics>;

/// Writes `value` as the `SecureString` parameter `name` (overwriting one
/// an interrupted run left), tags it, and returns its ARN for the task
/// definition. The value is in no message.
pub async fn put_secret(
    c: &Clients,
    name: &str,
    value: &Secret,
    tags: &BTreeMap<String, String>,
) -> Result<String> {
    let subject = format!("SSM parameter {name:?}");
    c.ssm
        .put_parameter()
        .name(name)
        .value(value.expose())
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .description("ep_rds_snapshot: a password for one Data Population task; deleted after it")
        .send()
        .await
        .map_err(|e| ApiError::new("SSM PutParameter", subject.clone(), &e))?;
    // SSM refuses tags together with Overwrite: tagged separately.
    let tag_list: Vec<Tag> = tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    c.ssm
        .add_tags_to_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .set_tags(Some(tag_list))
        .send()
        .await
        .map_err(|e| ApiError::new("SSM AddTagsToResource", subject.clone(), &e))?;
    let out = c
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(false)
        .send()
        .await
        .map_err(|e| ApiError::new("SSM GetParameter", subject.clone(), &e))?;
    out.parameter()
        .and_then(|p| p.arn())
        .map(str::to_owned)
        .ok_or_else(|| Diagnostic::error("SSM returned no parameter ARN", subject).into())
}

/// Deletes the parameters; missing ones are fine.
pub async fn delete_parameters(c: &Clients, names: &[String]) -> Result<()> {
    // DeleteParameters takes at most 10 names.
    for chunk in names.chunks(10) {
        c.ssm
            .delete_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| {
                ApiError::new(
                    "SSM DeleteParameters",
                    format!("SSM parameters {chunk:?}"),
                    &e,
                )
            })?;
    }
    Ok(())
}

/// Starts the task (Fargate, awsvpc); its ARN.
pub async fn run_task(c: &Clients, b: &EcsBlock, task_definition: &str) -> Result<String> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(b.subnet_ids.clone()))
        .set_security_groups(Some(b.security_group_ids.clone()))
        .assign_public_ip(if b.assign_public_ip == Some(true) {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| Diagnostic::error("Invalid network configuration", e.to_string()))?;
    let subject = format!("task of {task_definition:?} in cluster {:?}", b.cluster_arn);
    let out = c
        .ecs
        .run_task()
        .cluster(&b.cluster_arn)
        .task_definition(task_definition)
        .launch_type(LaunchType::Fargate)
        .count(1)
        .started_by(STARTED_BY)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        )
        .send()
        .await
        .map_err(|e| ApiError::new("ECS RunTask", subject.clone(), &e))?;
    if let Some(arn) = out.tasks().first().and_then(|t| t.task_arn()) {
        return Ok(arn.to_owned());
    }
    let why: Vec<String> = out
        .failures()
        .iter()
        .map(|f| format!("{} {}", f.reason().unwrap_or("?"), f.detail().unwrap_or("")))
        .collect();
    Err(Diagnostic::error(
        "ECS did not start the Data Population task",
        format!("RunTask for {subject} started nothing: {}", why.join("; ")),
    )
    .into())
}

/// The task as the verdict sees it; its `lastStatus` is the status.
pub async fn describe_task(
    c: &Clients,
    cluster: &str,
    task_arn: &str,
) -> Result<Observed<TaskView>> {
    let out = c
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(task_arn)
        .send()
        .await
        .map_err(|e| ApiError::new("ECS DescribeTasks", format!("task {task_arn:?}"), &e))?;
    let Some(t) = out.tasks().iter().find(|t| t.task_arn() == Some(task_arn)) else {
        return Ok(Observed::NotFound);
    };
    let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    let view = TaskView {
        last_status: t.last_status().unwrap_or_default().to_owned(),
        stop_code: t.stop_code().map(|s| s.as_str().to_owned()),
        stopped_reason: non_empty(t.stopped_reason()),
        containers: t
            .containers()
            .iter()
            .map(|k| ContainerView {
                name: k.name().unwrap_or_default().to_owned(),
                exit_code: k.exit_code(),
                reason: non_empty(k.reason()),
            })
            .collect(),
    };
    Ok(Observed::Status(view.last_status.clone(), view))
}

/// Stops the task; one already stopped or gone is fine.
pub async fn stop_task(c: &Clients, cluster: &str, task_arn: &str) -> Result<()> {
    match c
        .ecs
        .stop_task()
        .cluster(cluster)
        .task(task_arn)
        .reason("ep_rds_snapshot: the apply was interrupted or timed out")
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(task = %task_arn, "stopped the Data Population task");
            Ok(())
        }
        Err(e) => {
            let e = ApiError::new("ECS StopTask", format!("task {task_arn:?}"), &e);
            // A task or cluster that is gone has nothing left to stop.
            if e.code_is(&["InvalidParameterException"]) || e.code_is(not_found::ECS_CLUSTER) {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

/// Stops what an earlier, interrupted run left running against the same
/// instance: the task recorded in the private state, and any task of the
/// family still running in `cluster`.
pub async fn stop_leftovers(
    c: &Clients,
    op: &Op<SnapshotPrivate>,
    cluster: &str,
    family: &str,
) -> Result<()> {
    let mut left: Vec<(String, String)> = op
        .private()
        .ecs_task
        .map(|t| vec![(t.cluster, t.task_arn)])
        .unwrap_or_default();
    let listed = c
        .ecs
        .list_tasks()
        .cluster(cluster)
        .family(family)
        .desired_status(DesiredStatus::Running)
        .send()
        .await;
    match listed {
        Ok(out) => left.extend(
            out.task_arns()
                .iter()
                .map(|a| (cluster.to_owned(), a.clone())),
        ),
        Err(e) => {
            let e = ApiError::new("ECS ListTasks", format!("family {family:?}"), &e);
            // A family never registered (or a new cluster) has no tasks.
            if !e.code_is(&["ClientException", "InvalidParameterException"]) {
                return Err(e.into());
            }
        }
    }
    left.sort();
    left.dedup();
    for (cl, arn) in left {
        op.warn(
            "Stopped a Data Population task left running",
            format!("ECS task {arn:?} was started by an earlier run that did not finish; it was stopped before this run."),
        );
        stop_task(c, &cl, &arn).await?;
    }
    op.update_private(|p| p.ecs_task = None);
    Ok(())
}

/// The family's active revisions.
pub async fn active_revisions(c: &Clients, family: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                ApiError::new("ECS ListTaskDefinitions", format!("family {family:?}"), &e)
            })?;
        // familyPrefix matches by prefix: keep this family's own revisions.
        out.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| {
                    a.rsplit('/')
                        .next()
                        .and_then(|r| r.rsplit_once(':'))
                        .map(|(f, _)| f)
                        == Some(family)
                })
                .cloned(),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The last `n` lines of the log stream, oldest first.
pub async fn log_tail(
    c: &Clients,
    group: &str,
    stream: &str,
    n: usize,
) -> std::result::Result<Vec<String>, String> {
    let out = c
        .logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(false)
        .limit(i32::try_from(n).unwrap_or(100))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                "CloudWatch Logs GetLogEvents",
                format!("stream {stream:?}"),
                &e,
            )
            .to_string()
        })?;
    Ok(out
        .events()
        .iter()
        .filter_map(|e| e.message())
        .map(|m| m.trim_end().to_owned())
        .collect())
}
