//! Checks of `runner` and the `ecs` block (validate time, on the attribute),
//! and the runner a configuration chose.

use super::super::model::{EcsBlock, SnapshotModel};
use super::{err, DEFAULT_ECS_CPU, DEFAULT_ECS_MEMORY};
use crate::aws::fargate::{check_task_size, offers_cpu};
use crate::framework::{AttrPath, Diagnostic, Diagnostics, Known, Planning};

/// Checks of `runner` and the `ecs` block, and of what the `ecs` runner
/// cannot carry (a tunnel, extra properties).
pub(super) fn validate_runner(d: &mut Diagnostics, c: &SnapshotModel<Planning>) {
    let runner = match &c.runner {
        Known::Known(r) => Some(Runner::parse(r.as_deref())),
        Known::Unknown => None,
    };
    if let Some(Err(r)) = &runner {
        err(
            d,
            "runner",
            "Unsupported runner",
            format!("{r:?}: the runners are `local` and `ecs`."),
        );
    }
    match (&runner, &c.ecs) {
        (Some(Ok(Runner::Ecs)), Known::Known(None)) => err(
            d,
            "runner",
            "The ecs runner needs an ecs block",
            "`runner = \"ecs\"` runs the tool as a Fargate task: add an `ecs` block with its \
             cluster, image, network, roles and log group."
                .into(),
        ),
        (Some(Ok(Runner::Local)), Known::Known(Some(_))) => err(
            d,
            "ecs",
            "An ecs block without the ecs runner",
            "The `ecs` block applies only with `runner = \"ecs\"`; this configuration runs the \
             tool locally. Set `runner = \"ecs\"` or remove the block."
                .into(),
        ),
        _ => {}
    }
    if let Known::Known(Some(e)) = &c.ecs {
        validate_ecs(d, e);
    }
    if matches!(runner, Some(Ok(Runner::Ecs))) {
        if matches!(&c.tunnel, Known::Known(Some(_))) {
            err(
                d,
                "tunnel",
                "The ecs runner connects to the instance itself",
                "The Fargate task reaches the temporary instance's endpoint through its subnets; a \
                 `tunnel` (the local end of a tunnel) means nothing to it. Remove the block."
                    .into(),
            );
        }
        if let Some(extra) = c.extra_properties.present() {
            if !extra.is_empty() {
                err(
                    d,
                    "extra_properties",
                    "The ecs runner cannot pass extra properties",
                    "The `data-pop-tool` image takes its settings from EP_* variables only; \
                     `extra_properties` are for the local runner."
                        .into(),
                );
            }
        }
    }
}

/// Checks of a known `ecs` block, on its attributes.
fn validate_ecs(d: &mut Diagnostics, e: &EcsBlock) {
    let at = |attr: &str| AttrPath::root("ecs").attr(attr);
    let mut bad = |attr: &str, summary: &str, detail: String| {
        d.push(Diagnostic::error(summary, detail).at(at(attr)));
    };
    let (cpu, memory) = (
        e.cpu.unwrap_or(DEFAULT_ECS_CPU),
        e.memory.unwrap_or(DEFAULT_ECS_MEMORY),
    );
    if let Some(why) = check_task_size(cpu, memory) {
        let attr = if offers_cpu(cpu) { "memory" } else { "cpu" };
        bad(
            attr,
            "Fargate would refuse this task size",
            format!("Task size {cpu}/{memory}: {why}."),
        );
    }
    for (attr, v) in [
        ("cluster_arn", &e.cluster_arn),
        ("image", &e.image),
        ("execution_role_arn", &e.execution_role_arn),
        ("log_group", &e.log_group),
    ] {
        if v.trim().is_empty() {
            bad(
                attr,
                "Missing value",
                format!("`ecs.{attr}` must not be empty."),
            );
        }
    }
    for (attr, v) in [
        ("execution_role_arn", Some(&e.execution_role_arn)),
        ("task_role_arn", e.task_role_arn.as_ref()),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty() && !v.starts_with("arn:")) {
            bad(
                attr,
                "Not a role ARN",
                format!("{v:?} is not an IAM role ARN (`arn:aws:iam::…:role/…`)."),
            );
        }
    }
    for (attr, list) in [
        ("subnet_ids", &e.subnet_ids),
        ("security_group_ids", &e.security_group_ids),
    ] {
        if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
            bad(
                attr,
                "Missing network setting",
                format!("`ecs.{attr}` needs at least one non-empty ID."),
            );
        }
    }
}

/// Where the tool runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// On the machine running Terraform.
    Local,
    /// As a Fargate task.
    Ecs,
}

impl Runner {
    /// `None` is the default, `local`; anything unknown comes back as the error.
    pub fn parse(r: Option<&str>) -> Result<Self, String> {
        match r {
            None | Some("local") => Ok(Runner::Local),
            Some("ecs") => Ok(Runner::Ecs),
            Some(other) => Err(other.to_owned()),
        }
    }
}
