//! What an update changes, in Elastic Path terms, for the plan: which
//! databases are replaced, which brokers change, which services roll and why.

use super::model::{DeploymentModel, ServiceBlock, StackBlock};
use super::mq::BrokerChange;
use super::single;
use super::validate::SINGLE_INSTANCE;

fn stack<'m>(m: &'m DeploymentModel, name: &str) -> Option<&'m StackBlock> {
    if name == "author" {
        m.author.as_ref()
    } else {
        m.live.as_ref()
    }
}

/// Why a service's own settings differ, by setting name.
fn service_changes(old: &ServiceBlock, new: &ServiceBlock) -> Vec<&'static str> {
    let mut why = Vec::new();
    if old.image != new.image {
        why.push("image");
    }
    if (old.cpu, old.memory) != (new.cpu, new.memory) {
        why.push("size");
    }
    if old.environment != new.environment || old.secrets != new.secrets {
        why.push("environment");
    }
    if old.health_check_path != new.health_check_path {
        why.push("health check");
    }
    if old.desired_count != new.desired_count {
        why.push("task count");
    }
    why
}

/// A `single_instance` update: every change lands in the one task
/// definition, and its new revision restarts every container together.
fn describe_single(prior: &DeploymentModel, config: &DeploymentModel) -> Vec<String> {
    let mut why: Vec<String> = Vec::new();
    if let (Some(o), Some(n)) = (&prior.single_instance, &config.single_instance) {
        let mut part = |what: &str, differs: bool| {
            if differs {
                why.push(what.to_owned());
            }
        };
        part("database image", o.database_image != n.database_image);
        part("ActiveMQ image", o.activemq_image != n.activemq_image);
        part(
            "database wiring",
            (
                &o.schema_name,
                &o.username,
                &o.password_secret_arn,
                &o.commerce_environment,
            ) != (
                &n.schema_name,
                &n.username,
                &n.password_secret_arn,
                &n.commerce_environment,
            ),
        );
        part(
            "container sizes",
            (o.database_memory, o.activemq_memory) != (n.database_memory, n.activemq_memory),
        );
        part("host ports", single::host_ports(o) != single::host_ports(n));
        part(
            "capacity provider (the task moves to it)",
            o.capacity_provider != n.capacity_provider,
        );
    }
    for svc in &config.service {
        match prior.service.iter().find(|o| o.name == svc.name) {
            None => why.push(format!("{} added", svc.name)),
            Some(o) => why.extend(
                service_changes(o, svc)
                    .into_iter()
                    .map(|w| format!("{}: {w}", svc.name)),
            ),
        }
    }
    for old in &prior.service {
        if !config.service.iter().any(|n| n.name == old.name) {
            why.push(format!("{} removed", old.name));
        }
    }
    if prior.execution_role_arn != config.execution_role_arn
        || prior.task_role_arn != config.task_role_arn
        || prior.log_group != config.log_group
    {
        why.push("roles or logging".to_owned());
    }
    if why.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{}: new task definition revision, its one task restarts with every container ({})",
        single::KEY,
        why.join(", ")
    )]
}

fn has_search(m: &DeploymentModel, stack: &str) -> bool {
    m.service
        .iter()
        .any(|s| s.stack == stack && s.name == "search")
}

/// Lines describing the update from `prior` to `config`; empty when the
/// configuration did not change.
pub fn describe(prior: &DeploymentModel, config: &DeploymentModel) -> Vec<String> {
    if config.kind == SINGLE_INSTANCE {
        return describe_single(prior, config);
    }
    let mut lines = Vec::new();
    let mut moved_stacks = Vec::new();
    for name in ["author", "live"] {
        let (old, new) = (stack(prior, name), stack(config, name));
        let (old_db, new_db) = (
            old.and_then(|s| s.database.as_ref()),
            new.and_then(|s| s.database.as_ref()),
        );
        if let (Some(o), Some(n)) = (old_db, new_db) {
            if o.snapshot_identifier != n.snapshot_identifier {
                lines.push(format!(
                    "{name} database: restored from {} beside the old one, which is deleted once the services moved",
                    n.snapshot_identifier
                ));
                moved_stacks.push(name);
            } else if o != n {
                lines.push(format!("{name} database: modified in place"));
            }
        }
        if let (Some(o), Some(n)) = (
            old.and_then(|s| s.broker.as_ref()),
            new.and_then(|s| s.broker.as_ref()),
        ) {
            let change = BrokerChange::between(o, n);
            if !change.is_empty() {
                lines.push(format!("{name} broker: {}", change.describe()));
            }
        }
        if old.map(|s| &s.commerce_environment) != new.map(|s| &s.commerce_environment) {
            moved_stacks.push(name);
        }
    }
    let shared = prior.execution_role_arn != config.execution_role_arn
        || prior.task_role_arn != config.task_role_arn
        || prior.log_group != config.log_group;
    let discovery = prior.service_discovery != config.service_discovery;
    if discovery {
        lines.push(match &config.service_discovery {
            Some(_) if prior.service_discovery.is_none() => {
                "service discovery: the services register in Cloud Map".to_owned()
            }
            Some(_) => {
                "service discovery: the services move to another Cloud Map namespace".to_owned()
            }
            None => {
                "service discovery: removed; the services' Cloud Map names are deleted".to_owned()
            }
        });
    }
    for svc in &config.service {
        let key = format!("{}/{}", svc.stack, svc.name);
        let old = prior
            .service
            .iter()
            .find(|o| o.stack == svc.stack && o.name == svc.name);
        let mut why: Vec<&str> = match old {
            None => {
                lines.push(format!("{key}: new service"));
                continue;
            }
            Some(o) => service_changes(o, svc),
        };
        if moved_stacks.contains(&svc.stack.as_str()) {
            why.push("stack wiring");
        }
        if shared {
            why.push("roles or logging");
        }
        if discovery {
            why.push("service discovery");
        } else if config.service_discovery.is_some()
            && svc.name != "search"
            && has_search(prior, &svc.stack) != has_search(config, &svc.stack)
        {
            why.push("search master URL");
        }
        if !why.is_empty() {
            lines.push(format!("{key}: rolls ({})", why.join(", ")));
        }
    }
    for old in &prior.service {
        if !config
            .service
            .iter()
            .any(|n| n.stack == old.stack && n.name == old.name)
        {
            lines.push(format!("{}/{}: removed", old.stack, old.name));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::deployment::model::DatabaseBlock;

    fn service(name: &str, stack: &str, image: &str) -> ServiceBlock {
        ServiceBlock::for_test(name, stack, image)
    }

    fn stack_with(snapshot: &str) -> StackBlock {
        StackBlock {
            commerce_environment: None,
            target_group_arn: None,
            database: Some(DatabaseBlock::for_test(snapshot, "arn:aws:ssm:x")),
            broker: None,
        }
    }

    fn model() -> DeploymentModel {
        DeploymentModel {
            author: Some(stack_with("author-1")),
            live: Some(stack_with("live-1")),
            service: vec![
                service("cm", "author", "cm:1"),
                service("cortex", "live", "cortex:1"),
            ],
            ..DeploymentModel::default()
        }
    }

    #[test]
    fn a_single_instance_image_restarts_the_one_task_and_says_why() {
        let block = crate::resources::deployment::model::SingleInstanceBlock::for_test(
            "db:1",
            "mq:1",
            "arn:aws:ssm:r:1:parameter/p",
        );
        let old = DeploymentModel {
            kind: SINGLE_INSTANCE.to_owned(),
            single_instance: Some(block.clone()),
            service: vec![
                service("cortex", "single", "cortex:1"),
                service("cm", "single", "cm:1"),
            ],
            ..DeploymentModel::default()
        };
        assert!(describe(&old, &old).is_empty());
        let mut new = old.clone();
        new.service[1].image = "cm:2".to_owned();
        if let Some(b) = new.single_instance.as_mut() {
            b.cm_host_port = Some(9999);
        }
        assert_eq!(
            describe(&old, &new),
            vec!["single/instance: new task definition revision, its one task restarts with every container (host ports, cm: image)"]
        );
    }

    #[test]
    fn service_discovery_rolls_every_service_and_a_new_search_the_stack() {
        let mut new = model();
        new.service_discovery = Some(crate::resources::deployment::model::ServiceDiscoveryBlock {
            namespace_id: Some("ns-1".to_owned()),
            vpc_id: None,
            namespace_name: None,
        });
        let lines = describe(&model(), &new);
        assert_eq!(
            lines[0],
            "service discovery: the services register in Cloud Map"
        );
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.contains("rolls (service discovery)")),
            "{lines:?}"
        );
        let prior = new.clone();
        new.service.push(service("search", "live", "search:1"));
        let lines = describe(&prior, &new);
        assert!(
            lines.contains(&"live/search: new service".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("rolls (search master URL)")),
            "{lines:?}"
        );
    }

    #[test]
    fn nothing_changed_says_nothing() {
        assert!(describe(&model(), &model()).is_empty());
    }

    #[test]
    fn an_image_rolls_its_service_only() {
        let mut new = model();
        new.service[1].image = "cortex:2".to_owned();
        assert_eq!(describe(&model(), &new), vec!["live/cortex: rolls (image)"]);
    }

    #[test]
    fn a_new_snapshot_moves_the_stack_and_its_services() {
        let mut new = model();
        new.author = Some(stack_with("author-2"));
        new.service.push(service("search", "live", "search:1"));
        assert_eq!(
            describe(&model(), &new),
            vec![
                "author database: restored from author-2 beside the old one, which is deleted once the services moved",
                "author/cm: rolls (stack wiring)",
                "live/search: new service",
            ]
        );
    }
}
