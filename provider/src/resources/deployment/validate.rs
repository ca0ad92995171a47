//! Validate-time checks of an `ep_deployment` configuration: everything AWS
//! would refuse half-way through an apply, reported on the attribute.

use std::collections::BTreeSet;

use super::broker::{check_password, check_username, EngineVersion};
use super::catalogue::{self, WIRED_VARIABLES};
use super::fargate::check_task_size;
use super::model::{BrokerBlock, DatabaseBlock, DeploymentModel, ServiceBlock, StackBlock};
use crate::framework::{AttrPath, Diagnostic, Diagnostics, Planning};

/// The one kind available so far.
pub const AUTHOR_AND_LIVE: &str = "author_and_live";

fn err(d: &mut Diagnostics, at: AttrPath, summary: &str, detail: impl Into<String>) {
    d.push(Diagnostic::error(summary, detail).at(at));
}

/// Why `name` cannot name a deployment, if it cannot. It prefixes RDS, MQ and
/// ECS names, whose tightest limits (RDS: 63, letters, digits, hyphens)
/// leave room for 24 characters.
pub fn check_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 24 {
        Some("must have 1 to 24 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase letter")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("may hold only lowercase letters, digits and hyphens")
    } else if name.contains("--") || name.ends_with('-') {
        Some("must not contain two hyphens in a row or end with one")
    } else {
        None
    }
}

/// The parts of a configuration the checks look at; `None` where a value
/// is not known yet (a block with any unknown value in it is unknown whole).
struct Parts<'a> {
    name: Option<&'a String>,
    kind: Option<&'a String>,
    subnet_ids: Option<&'a Vec<String>>,
    author: Option<&'a Option<StackBlock>>,
    live: Option<&'a Option<StackBlock>>,
    service: Option<&'a Vec<ServiceBlock>>,
}

/// Every check of a configuration as far as it is known at validate and plan time.
pub fn validate(c: &DeploymentModel<Planning>) -> Diagnostics {
    check(&Parts {
        name: c.name.get(),
        kind: c.kind.get(),
        subnet_ids: c.subnet_ids.get(),
        author: c.author.get(),
        live: c.live.get(),
        service: c.service.get(),
    })
}

/// The same checks on the configuration an apply was given, every value
/// known: what plan could not judge (a block with a value from another
/// resource) is refused here, before any AWS call.
pub fn validate_applying(c: &DeploymentModel) -> Diagnostics {
    check(&Parts {
        name: Some(&c.name),
        kind: Some(&c.kind),
        subnet_ids: Some(&c.subnet_ids),
        author: Some(&c.author),
        live: Some(&c.live),
        service: Some(&c.service),
    })
}

fn check(c: &Parts<'_>) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Some(name) = c.name {
        if let Some(why) = check_name(name) {
            err(
                &mut d,
                AttrPath::root("name"),
                "Invalid deployment name",
                format!("{name:?} {why}."),
            );
        }
    }
    if let Some(kind) = c.kind {
        match kind.as_str() {
            AUTHOR_AND_LIVE => {}
            "single_instance" => err(
                &mut d,
                AttrPath::root("kind"),
                "Single-instance deployments are not available yet",
                "This version of the provider deploys `author_and_live` only.",
            ),
            other => err(
                &mut d,
                AttrPath::root("kind"),
                "Invalid deployment kind",
                format!("{other:?} is not a kind; use \"author_and_live\"."),
            ),
        }
    }
    if let Some(subnets) = c.subnet_ids {
        if subnets.is_empty() {
            err(
                &mut d,
                AttrPath::root("subnet_ids"),
                "No subnets",
                "Give at least one subnet for the tasks.",
            );
        }
    }
    for (stack, block) in [("author", c.author), ("live", c.live)] {
        match block {
            Some(Some(b)) => check_stack(&mut d, stack, b),
            Some(None) => err(
                &mut d,
                AttrPath::root(stack),
                "Missing stack",
                format!("An Author and Live deployment needs an `{stack}` block with its database and broker."),
            ),
            None => {}
        }
    }
    if let Some(services) = c.service {
        check_services(&mut d, services);
    }
    d
}

fn check_stack(d: &mut Diagnostics, stack: &str, b: &StackBlock) {
    let at = AttrPath::root(stack);
    match &b.database {
        Some(db) => check_database(d, at.clone().attr("database"), db),
        None => err(
            d,
            at.clone(),
            "Missing database",
            format!("The {stack} stack needs a `database` block."),
        ),
    }
    match &b.broker {
        Some(br) => check_broker(d, at.clone().attr("broker"), br),
        None => err(
            d,
            at,
            "Missing broker",
            format!("The {stack} stack needs a `broker` block."),
        ),
    }
}

fn check_secret_arn(d: &mut Diagnostics, at: AttrPath, arn: &str) {
    let service = arn.split(':').nth(2).unwrap_or_default();
    if !arn.starts_with("arn:") || !matches!(service, "ssm" | "secretsmanager") {
        err(
            d,
            at,
            "Not a secret ARN",
            format!("{arn:?} is not the ARN of an SSM parameter or a Secrets Manager secret (arn:aws:ssm:… or arn:aws:secretsmanager:…)."),
        );
    }
}

fn check_database(d: &mut Diagnostics, at: AttrPath, db: &DatabaseBlock) {
    if db.snapshot_identifier.trim().is_empty() {
        err(
            d,
            at.clone().attr("snapshot_identifier"),
            "Missing snapshot",
            "Give the snapshot to restore.",
        );
    }
    if let Some(class) = &db.instance_class {
        if !class.starts_with("db.") {
            err(
                d,
                at.clone().attr("instance_class"),
                "Invalid instance class",
                format!("{class:?} is not an RDS instance class such as \"db.t3.medium\"."),
            );
        }
    }
    check_secret_arn(d, at.attr("password_secret_arn"), &db.password_secret_arn);
}

fn check_broker(d: &mut Diagnostics, at: AttrPath, b: &BrokerBlock) {
    if let Some(v) = &b.engine_version {
        if EngineVersion::parse(v).is_none() {
            err(
                d,
                at.clone().attr("engine_version"),
                "Invalid engine version",
                format!("{v:?} is not an ActiveMQ version such as \"5.18\"."),
            );
        }
    }
    if let Some(t) = &b.instance_type {
        if !t.starts_with("mq.") {
            err(
                d,
                at.clone().attr("instance_type"),
                "Invalid instance type",
                format!("{t:?} is not an Amazon MQ instance type such as \"mq.t3.micro\"."),
            );
        }
    }
    if let Some(m) = &b.deployment_mode {
        if !matches!(m.as_str(), "SINGLE_INSTANCE" | "ACTIVE_STANDBY_MULTI_AZ") {
            err(
                d,
                at.clone().attr("deployment_mode"),
                "Invalid deployment mode",
                format!("{m:?}: use \"SINGLE_INSTANCE\" or \"ACTIVE_STANDBY_MULTI_AZ\"."),
            );
        }
    }
    if b.user.is_empty() {
        err(
            d,
            at.clone(),
            "No broker user",
            "Amazon MQ needs at least one `user` block.",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, u) in b.user.iter().enumerate() {
        let at = at.clone().attr("user").index(i);
        if let Some(why) = check_username(&u.username) {
            err(
                d,
                at.clone().attr("username"),
                "Invalid broker user name",
                format!("{:?} {why}.", u.username),
            );
        }
        if !seen.insert(u.username.as_str()) {
            err(
                d,
                at.clone().attr("username"),
                "Duplicate broker user",
                format!("{:?} is given twice.", u.username),
            );
        }
        // The password itself never goes into a diagnostic.
        if let Some(why) = check_password(&u.password) {
            err(
                d,
                at.attr("password"),
                "Invalid broker password",
                format!("The password of {:?} {why}.", u.username),
            );
        }
    }
}

fn check_services(d: &mut Diagnostics, services: &[ServiceBlock]) {
    let mut seen = BTreeSet::new();
    for (i, s) in services.iter().enumerate() {
        let at = AttrPath::root("service").index(i);
        let Some(kind) = catalogue::service(&s.name) else {
            err(
                d,
                at.attr("name"),
                "Unknown service",
                format!(
                    "{:?} is not an Elastic Path service; use one of {}.",
                    s.name,
                    catalogue::service_names()
                ),
            );
            continue;
        };
        if !catalogue::STACKS.contains(&s.stack.as_str()) {
            err(
                d,
                at.clone().attr("stack"),
                "Unknown stack",
                format!("{:?}: use \"author\" or \"live\".", s.stack),
            );
        } else if !seen.insert((s.stack.clone(), s.name.clone())) {
            err(
                d,
                at.clone().attr("name"),
                "Duplicate service",
                format!("The {} stack already runs {}.", s.stack, s.name),
            );
        }
        let (cpu, memory) = (s.cpu.unwrap_or(kind.cpu), s.memory.unwrap_or(kind.memory));
        if let Some(why) = check_task_size(cpu, memory) {
            let attr = if s.memory.is_some() { "memory" } else { "cpu" };
            err(
                d,
                at.clone().attr(attr),
                "Task size Fargate does not run",
                format!("{}: {why}.", s.name),
            );
        }
        if kind.singleton && s.desired_count.is_some_and(|n| n > 1) {
            err(
                d,
                at.clone().attr("desired_count"),
                "Service must run alone",
                format!(
                    "{} runs as a single task (a second one would run its jobs twice).",
                    s.name
                ),
            );
        }
        for key in s
            .environment
            .iter()
            .flat_map(|m| m.keys())
            .chain(s.secrets.iter().flat_map(|m| m.keys()))
        {
            if WIRED_VARIABLES.contains(&key.as_str()) {
                let attr = if s.environment.as_ref().is_some_and(|m| m.contains_key(key)) {
                    "environment"
                } else {
                    "secrets"
                };
                err(
                    d,
                    at.clone().attr(attr).key(key.clone()),
                    "Variable set by the deployment",
                    format!("{key} is wired by the deployment from its stack (database, broker, sizes); set it there instead."),
                );
            }
        }
        for (key, arn) in s.secrets.iter().flatten() {
            check_secret_arn(d, at.clone().attr("secrets").key(key.clone()), arn);
        }
        if let Some(p) = &s.health_check_path {
            if !p.starts_with('/') || p.contains(['\'', '"', '\\', '\n']) {
                err(
                    d,
                    at.attr("health_check_path"),
                    "Invalid health check path",
                    format!(
                        "{p:?} must start with '/' and hold no quotes, backslashes or newlines."
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
