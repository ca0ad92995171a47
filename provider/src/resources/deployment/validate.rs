//! Validate-time checks of an `ep_deployment` configuration: everything AWS
//! would refuse half-way through an apply, reported on the attribute.

use std::collections::BTreeSet;

use super::broker::{check_password, check_username, EngineVersion};
use super::catalogue::{self, WIRED_VARIABLES};
use super::model::{
    BrokerBlock, DatabaseBlock, DeploymentModel, ServiceBlock, ServiceDiscoveryBlock,
    SingleInstanceBlock, StackBlock,
};
use super::single;
use crate::aws::fargate::check_task_size;
use crate::framework::{AttrPath, Diagnostic, Diagnostics, Planning};

/// RDS, Amazon MQ and one ECS service per service and stack.
pub const AUTHOR_AND_LIVE: &str = "author_and_live";
/// One task on one EC2 container instance (see `single.rs`).
pub const SINGLE_INSTANCE: &str = "single_instance";

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
    subnet_ids: Option<&'a Option<Vec<String>>>,
    cluster_arn: Option<&'a Option<String>>,
    single_instance: Option<&'a Option<SingleInstanceBlock>>,
    author: Option<&'a Option<StackBlock>>,
    live: Option<&'a Option<StackBlock>>,
    service_discovery: Option<&'a Option<ServiceDiscoveryBlock>>,
    service: Option<&'a Vec<ServiceBlock>>,
}

/// Every check of a configuration as far as it is known at validate and plan time.
pub fn validate(c: &DeploymentModel<Planning>) -> Diagnostics {
    check(&Parts {
        name: c.name.get(),
        kind: c.kind.get(),
        subnet_ids: c.subnet_ids.get(),
        cluster_arn: c.cluster_arn.get(),
        single_instance: c.single_instance.get(),
        author: c.author.get(),
        live: c.live.get(),
        service_discovery: c.service_discovery.get(),
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
        cluster_arn: Some(&c.cluster_arn),
        single_instance: Some(&c.single_instance),
        author: Some(&c.author),
        live: Some(&c.live),
        service_discovery: Some(&c.service_discovery),
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
    let single = match c.kind.map(String::as_str) {
        Some(AUTHOR_AND_LIVE) => Some(false),
        Some(SINGLE_INSTANCE) => Some(true),
        Some(other) => {
            err(
                &mut d,
                AttrPath::root("kind"),
                "Invalid deployment kind",
                format!("{other:?} is not a kind; use \"author_and_live\" or \"single_instance\"."),
            );
            None
        }
        None => None,
    };
    match single {
        Some(true) => check_single(&mut d, c),
        Some(false) => check_author_and_live(&mut d, c),
        None => {}
    }
    if let Some(services) = c.service {
        check_services(&mut d, services, single);
    }
    if let Some(Some(block)) = c.service_discovery {
        check_discovery(&mut d, block, single);
    }
    d
}

/// Why `name` cannot name a private DNS namespace, if it cannot.
fn check_dns_name(name: &str) -> Option<&'static str> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 {
        Some("is longer than 253 characters")
    } else if !name.split('.').all(label_ok) {
        Some("is not a DNS name: dot-separated labels of 1–63 lowercase letters, digits and inner hyphens")
    } else {
        None
    }
}

fn check_discovery(d: &mut Diagnostics, b: &ServiceDiscoveryBlock, single: Option<bool>) {
    let at = |name: &str| AttrPath::root("service_discovery").attr(name);
    if single == Some(true) {
        err(
            d,
            AttrPath::root("service_discovery"),
            "Service discovery in one task",
            "A `single_instance` deployment's containers reach each other by their links \
             (`search`, `mysql`, `activemq`); `service_discovery` is for `author_and_live`.",
        );
        return;
    }
    match (&b.namespace_id, &b.vpc_id) {
        (None, None) => err(
            d,
            AttrPath::root("service_discovery"),
            "No namespace",
            "Give `namespace_id` (an existing private DNS namespace) or `vpc_id` (the deployment \
             creates one).",
        ),
        (Some(_), Some(_)) => err(
            d,
            at("vpc_id"),
            "Conflicting namespace settings",
            "`namespace_id` uses an existing namespace; `vpc_id` creates one. Give one of them.",
        ),
        _ => {}
    }
    let ids = [
        ("namespace_id", &b.namespace_id, "ns-"),
        ("vpc_id", &b.vpc_id, "vpc-"),
    ];
    for (attr, value, prefix) in ids {
        if let Some(v) = value {
            let ok = v.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
            });
            if !ok {
                err(
                    d,
                    at(attr),
                    "Invalid ID",
                    format!("{v:?} is not an ID of the form {prefix}…"),
                );
            }
        }
    }
    if let Some(name) = &b.namespace_name {
        if b.vpc_id.is_none() {
            err(
                d,
                at("namespace_name"),
                "Name of a namespace not created",
                "`namespace_name` names the namespace created with `vpc_id`; an existing \
                 namespace keeps its own name.",
            );
        } else if let Some(why) = check_dns_name(name) {
            err(
                d,
                at("namespace_name"),
                "Invalid namespace name",
                format!("{name:?} {why}."),
            );
        }
    }
}

fn check_author_and_live(d: &mut Diagnostics, c: &Parts<'_>) {
    if let Some(subnets) = c.subnet_ids {
        if subnets.as_ref().is_none_or(Vec::is_empty) {
            err(
                d,
                AttrPath::root("subnet_ids"),
                "No subnets",
                "Give at least one subnet for the tasks.",
            );
        }
    }
    if let Some(Some(_)) = c.single_instance {
        err(
            d,
            AttrPath::root("single_instance"),
            "Block of the other kind",
            "An `author_and_live` deployment takes `author` and `live` blocks, not `single_instance`.",
        );
    }
    for (stack, block) in [("author", c.author), ("live", c.live)] {
        match block {
            Some(Some(b)) => check_stack(d, stack, b),
            Some(None) => err(
                d,
                AttrPath::root(stack),
                "Missing stack",
                format!("An Author and Live deployment needs an `{stack}` block with its database and broker."),
            ),
            None => {}
        }
    }
}

fn check_single(d: &mut Diagnostics, c: &Parts<'_>) {
    if let Some(None) = c.cluster_arn {
        err(
            d,
            AttrPath::root("cluster_arn"),
            "Missing cluster",
            "A `single_instance` deployment runs on an existing cluster with EC2 capacity (a \
             registered container instance or a capacity provider); give its `cluster_arn`.",
        );
    }
    for (stack, block) in [("author", c.author), ("live", c.live)] {
        if let Some(Some(_)) = block {
            err(
                d,
                AttrPath::root(stack),
                "Block of the other kind",
                format!("A `single_instance` deployment has no RDS or Amazon MQ: remove the `{stack}` block (its database and broker are containers set in `single_instance`)."),
            );
        }
    }
    match c.single_instance {
        Some(Some(b)) => check_single_block(d, b),
        Some(None) => err(
            d,
            AttrPath::root("single_instance"),
            "Missing single_instance block",
            "A `single_instance` deployment needs a `single_instance` block with its database and ActiveMQ images.",
        ),
        None => {}
    }
}

fn check_single_block(d: &mut Diagnostics, b: &SingleInstanceBlock) {
    let at = AttrPath::root("single_instance");
    check_secret_arn(
        d,
        at.clone().attr("password_secret_arn"),
        &b.password_secret_arn,
    );
    for (attr, value) in [
        ("database_image", &b.database_image),
        ("activemq_image", &b.activemq_image),
    ] {
        if value.trim().is_empty() {
            err(
                d,
                at.clone().attr(attr),
                "Missing image",
                format!("Give the `{attr}`."),
            );
        }
    }
    let mut used = BTreeSet::new();
    for (attr, value) in [
        ("cortex_host_port", b.cortex_host_port),
        ("cm_host_port", b.cm_host_port),
        ("activemq_console_host_port", b.activemq_console_host_port),
    ] {
        if let Some(p) = value {
            if !(1..=65535).contains(&p) {
                err(
                    d,
                    at.clone().attr(attr),
                    "Invalid port",
                    format!("{p} is not a TCP port."),
                );
            }
        }
    }
    for (attr, port) in single::host_ports(b) {
        if !used.insert(port) {
            err(
                d,
                at.clone().attr(attr),
                "Host port used twice",
                format!(
                    "Port {port} is published for another container already; give each its own."
                ),
            );
        }
    }
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
        for (attr, value) in [("password", &u.password), ("password_wo", &u.password_wo)] {
            if let Some(why) = value.as_deref().and_then(check_password) {
                err(
                    d,
                    at.clone().attr(attr),
                    "Invalid broker password",
                    format!("The password of {:?} {why}.", u.username),
                );
            }
        }
        match (&u.password, &u.password_wo) {
            (Some(_), Some(_)) => err(
                d,
                at.clone().attr("password_wo"),
                "Conflicting broker passwords",
                format!(
                    "Give {:?} `password` or `password_wo`, not both.",
                    u.username
                ),
            ),
            (None, None) => err(
                d,
                at.clone().attr("password"),
                "Missing broker password",
                format!("Give {:?} `password` or `password_wo`.", u.username),
            ),
            _ => {}
        }
        if u.password_wo.is_some() && u.password_wo_version.is_none() {
            err(
                d,
                at.attr("password_wo_version"),
                "Missing password_wo_version",
                format!(
                    "{:?} has a write-only password: set `password_wo_version`, and change it \
                     whenever the password changes (Terraform keeps no trace of the value to \
                     compare with).",
                    u.username
                ),
            );
        }
    }
}

/// `single`: the deployment's kind when known (`Some(true)` for `single_instance`).
fn check_services(d: &mut Diagnostics, services: &[ServiceBlock], single: Option<bool>) {
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
        let stack_ok = match single {
            Some(true) => s.stack == single::STACK,
            Some(false) => catalogue::STACKS.contains(&s.stack.as_str()),
            None => true,
        };
        if !stack_ok {
            let hint = if single == Some(true) {
                "a `single_instance` deployment has the one stack \"single\""
            } else {
                "use \"author\" or \"live\""
            };
            err(
                d,
                at.clone().attr("stack"),
                "Unknown stack",
                format!("{:?}: {hint}.", s.stack),
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
        if single == Some(true) {
            if s.desired_count.is_some_and(|n| n != 1) {
                err(
                    d,
                    at.clone().attr("desired_count"),
                    "One task only",
                    "Every service of a `single_instance` deployment runs once, in its one task.",
                );
            }
        } else if let Some(why) = check_task_size(cpu, memory) {
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
