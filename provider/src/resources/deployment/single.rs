//! The `single_instance` kind: one task definition holding every service
//! plus the MySQL and ActiveMQ containers, on a `bridge` network.
//!
//! Every Elastic Path Tomcat listens on 8080 (shutdown 8005) and the images
//! take no port variable, so the services cannot share one network
//! namespace (`awsvpc`, localhost). Under `bridge` each container keeps its
//! own ports; the Tomcats reach `mysql` and `activemq` through links, and
//! Cortex, Commerce Manager and the ActiveMQ console are published on
//! distinct host ports of the container instance.

use std::collections::BTreeMap;

use super::catalogue::{self, ServiceKind};
use super::database::{DEFAULT_SCHEMA, DEFAULT_USER};
use super::model::{ServiceBlock, SingleInstanceBlock, StackEndpoints};
use super::taskdef::{ContainerSpec, HealthCheck, Networking, PortMapping, TaskSpec};
use super::wiring::{self, StackWiring, TaskContext};

/// The stack name services of a single-instance deployment are given.
pub const STACK: &str = "single";
/// The `stack/service` key of the one service (ECS service `single-instance`).
pub const KEY: &str = "single/instance";
/// The name the one service's part has in keys and ECS names.
pub const SERVICE: &str = "instance";
/// Container (and link) name of the database.
pub const MYSQL: &str = "mysql";
/// Container (and link) name of the broker.
pub const ACTIVEMQ: &str = "activemq";

/// Default host ports.
pub const DEFAULT_CORTEX_PORT: u16 = 9080;
/// Default host port of Commerce Manager.
pub const DEFAULT_CM_PORT: u16 = 9081;
/// Default host port of the ActiveMQ console.
pub const DEFAULT_CONSOLE_PORT: u16 = 8161;
const DEFAULT_DB_MEMORY: u32 = 1024;
const DEFAULT_MQ_MEMORY: u32 = 512;

/// Where the Tomcats of the task find the search server (its link name,
/// its port and context).
pub const SEARCH_MASTER_URL: &str = "http://search:8082/search";

fn port(p: Option<u32>, default: u16) -> u16 {
    p.and_then(|p| u16::try_from(p).ok()).unwrap_or(default)
}

/// The host ports the block asks for (or their defaults): cortex, cm, console.
pub fn host_ports(b: &SingleInstanceBlock) -> [(&'static str, u16); 3] {
    [
        (
            "cortex_host_port",
            port(b.cortex_host_port, DEFAULT_CORTEX_PORT),
        ),
        ("cm_host_port", port(b.cm_host_port, DEFAULT_CM_PORT)),
        (
            "activemq_console_host_port",
            port(b.activemq_console_host_port, DEFAULT_CONSOLE_PORT),
        ),
    ]
}

/// What the services are wired to: the containers' link names, as the
/// Tomcats see them.
pub fn wiring_of(b: &SingleInstanceBlock) -> StackWiring {
    let schema = b
        .schema_name
        .clone()
        .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
    StackWiring {
        stack: STACK.to_owned(),
        commerce_environment: b
            .commerce_environment
            .clone()
            .unwrap_or_else(|| STACK.to_owned()),
        endpoints: endpoints(b),
        db_user: b
            .username
            .clone()
            .unwrap_or_else(|| DEFAULT_USER.to_owned()),
        db_password_secret_arn: b.password_secret_arn.clone(),
        schema,
    }
}

/// The computed `endpoints["single"]`: database and broker as the services
/// reach them inside the task, and the console as a path on the container
/// instance's published port (the instance's address is not the
/// deployment's to know).
pub fn endpoints(b: &SingleInstanceBlock) -> StackEndpoints {
    let [_, _, (_, console)] = host_ports(b);
    endpoints_of(b.schema_name.as_deref().unwrap_or(DEFAULT_SCHEMA), console)
}

/// Adds the URLs of the task's services: Cortex and Commerce Manager on
/// their host ports of the container instance (as `console_url`), search
/// by its link, as the task's Tomcats reach it.
pub fn add_service_urls(
    e: &mut StackEndpoints,
    cortex_port: Option<u16>,
    cm_port: Option<u16>,
    search: bool,
) {
    let url =
        |name: &str, port: Option<u16>| Some(catalogue::service(name)?.url("localhost", port?));
    e.cortex_url = url("cortex", cortex_port);
    e.cm_url = url("cm", cm_port);
    e.search_master_url = search.then(|| SEARCH_MASTER_URL.to_owned());
}

/// [`endpoints`] with the URLs of `services`, the names of the task's services.
pub fn endpoints_with_urls<'s>(
    b: &SingleInstanceBlock,
    services: impl IntoIterator<Item = &'s str>,
) -> StackEndpoints {
    let mut e = endpoints(b);
    let names: Vec<&str> = services.into_iter().collect();
    let [(_, cortex), (_, cm), _] = host_ports(b);
    add_service_urls(
        &mut e,
        names.contains(&"cortex").then_some(cortex),
        names.contains(&"cm").then_some(cm),
        names.contains(&"search"),
    );
    e
}

/// The endpoints of the schema `schema` with the console on host port `console`.
pub fn endpoints_of(schema: &str, console: u16) -> StackEndpoints {
    StackEndpoints {
        database_address: Some(MYSQL.to_owned()),
        database_port: Some(3306),
        database_url: Some(wiring::jdbc_url(MYSQL, 3306, schema)),
        jms_url: Some(format!("tcp://{ACTIVEMQ}:61616")),
        stomp_url: Some(format!("stomp://{ACTIVEMQ}:61613")),
        console_url: Some(format!("http://localhost:{console}/admin")),
        ..StackEndpoints::default()
    }
}

fn shell_check(cmd: &str, start_period: u32) -> HealthCheck {
    HealthCheck {
        command: vec!["CMD-SHELL".to_owned(), cmd.to_owned()],
        interval: Some(15),
        timeout: Some(5),
        retries: Some(10),
        start_period: Some(start_period),
    }
}

/// The one task definition: `services` (with their kinds) as Tomcat
/// containers wired to the `mysql` and `activemq` containers.
pub fn task_spec(
    ctx: &TaskContext,
    b: &SingleInstanceBlock,
    services: &[(&ServiceKind, &ServiceBlock)],
) -> TaskSpec {
    let w = wiring_of(b);
    let [(_, cortex_port), (_, cm_port), (_, console_port)] = host_ports(b);
    let db_memory = b.database_memory.unwrap_or(DEFAULT_DB_MEMORY);
    let mq_memory = b.activemq_memory.unwrap_or(DEFAULT_MQ_MEMORY);
    let mysql = ContainerSpec {
        name: MYSQL.to_owned(),
        image: b.database_image.clone(),
        memory: Some(db_memory),
        essential: Some(true),
        // The populated data directory is in the image; the entrypoint
        // starts it without initialising anything.
        health_check: Some(shell_check(
            "mysqladmin ping -h 127.0.0.1 --silent || mariadb-admin ping -h 127.0.0.1 --silent",
            60,
        )),
        ..ContainerSpec::default()
    };
    let activemq = ContainerSpec {
        name: ACTIVEMQ.to_owned(),
        image: b.activemq_image.clone(),
        memory: Some(mq_memory),
        essential: Some(true),
        ports: vec![PortMapping {
            container_port: 8161,
            host_port: Some(console_port),
            protocol: Some("tcp".to_owned()),
        }],
        health_check: Some(shell_check(
            "(echo > /dev/tcp/127.0.0.1/61616) 2>/dev/null || nc -z 127.0.0.1 61616",
            30,
        )),
        ..ContainerSpec::default()
    };
    let mut containers = vec![mysql, activemq];
    let has_search = services.iter().any(|(k, _)| k.name == "search");
    for (kind, svc) in services {
        // The Fargate wiring of the service, then what bridge changes: its
        // neighbours by link, the published port, the start order.
        let own = wiring::task_spec(ctx, kind, svc, &w);
        let Some(mut c) = own.containers.into_iter().next() else {
            continue;
        };
        let published = match kind.name {
            "cortex" => Some(cortex_port),
            "cm" => Some(cm_port),
            _ => None,
        };
        c.ports = published
            .map(|h| {
                vec![PortMapping {
                    container_port: kind.port,
                    host_port: Some(h),
                    protocol: Some("tcp".to_owned()),
                }]
            })
            .unwrap_or_default();
        c.links = vec![MYSQL.to_owned(), ACTIVEMQ.to_owned()];
        if has_search && kind.name != "search" {
            c.links.push("search".to_owned());
            // In one task the search server is known: its link. A value
            // in the service's own `environment` still wins.
            c.environment
                .entry("EP_SEARCH_MASTER_URL".to_owned())
                .or_insert_with(|| SEARCH_MASTER_URL.to_owned());
        }
        c.depends_on = BTreeMap::from([
            (MYSQL.to_owned(), "HEALTHY".to_owned()),
            (ACTIVEMQ.to_owned(), "HEALTHY".to_owned()),
        ]);
        // One Tomcat failing must not stop the database under the others.
        c.essential = Some(kind.name == "cortex" || kind.name == "cm");
        containers.push(c);
    }
    let memory = containers.iter().filter_map(|c| c.memory).sum();
    let cpu = services
        .iter()
        .map(|(k, s)| s.cpu.unwrap_or(k.cpu))
        .sum::<u32>()
        .max(256);
    TaskSpec {
        family: wiring::family(&ctx.deployment, STACK, SERVICE),
        networking: Networking::Bridge,
        cpu,
        memory,
        execution_role_arn: ctx.execution_role_arn.clone(),
        task_role_arn: ctx.task_role_arn.clone(),
        containers,
    }
}

/// The endpoints a registered single-instance task definition gives (for
/// import): the schema its Tomcats are wired to, the console's host port.
pub fn endpoints_registered(t: &TaskSpec) -> StackEndpoints {
    let schema = t
        .containers
        .iter()
        .find_map(|c| c.environment.get("EP_DB_SCHEMA_NAME").cloned())
        .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
    // The host port the container `name` publishes its `port` on.
    let published = |name: &str, port: u16| {
        t.containers
            .iter()
            .filter(|c| c.name == name)
            .flat_map(|c| c.ports.iter())
            .find(|p| p.container_port == port)
            .and_then(|p| p.host_port)
    };
    let console = published(ACTIVEMQ, 8161).unwrap_or(DEFAULT_CONSOLE_PORT);
    let mut e = endpoints_of(&schema, console);
    add_service_urls(
        &mut e,
        published("cortex", 8080),
        published("cm", 8080),
        t.containers.iter().any(|c| c.name == "search"),
    );
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::deployment::catalogue::service;

    fn block() -> SingleInstanceBlock {
        SingleInstanceBlock {
            cm_host_port: Some(9999),
            ..SingleInstanceBlock::for_test(
                "reg/ep/mysql@sha256:db",
                "reg/activemq:5.18",
                "arn:aws:ssm:eu-west-1:1:parameter/dev/db",
            )
        }
    }

    fn svc(name: &str) -> ServiceBlock {
        ServiceBlock::for_test(name, STACK, &format!("reg/ep/{name}@sha256:aa"))
    }

    fn spec(names: &[&str]) -> TaskSpec {
        let blocks: Vec<ServiceBlock> = names.iter().map(|n| svc(n)).collect();
        let services: Vec<(&ServiceKind, &ServiceBlock)> = blocks
            .iter()
            .filter_map(|b| Some((service(&b.name)?, b)))
            .collect();
        let ctx = TaskContext {
            deployment: "dev".to_owned(),
            ..TaskContext::default()
        };
        task_spec(&ctx, &block(), &services)
    }

    #[test]
    fn one_bridge_task_wires_every_service_to_the_linked_containers() {
        let t = spec(&["cortex", "cm", "search"]);
        assert_eq!(t.family, "ep-dev-single-instance");
        assert_eq!(t.networking, Networking::Bridge);
        let names: Vec<&str> = t.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["mysql", "activemq", "cortex", "cm", "search"]);
        let Some(cortex) = t.containers.iter().find(|c| c.name == "cortex") else {
            panic!("no cortex")
        };
        let env = |k: &str| cortex.environment.get(k).map(String::as_str);
        assert_eq!(
            env("EP_DB_URL"),
            Some("jdbc:mysql://mysql:3306/commercedb?characterEncoding=UTF-8")
        );
        assert_eq!(env("EP_JMS_URL"), Some("tcp://activemq:61616"));
        assert_eq!(env("EP_COMMERCE_ENVNAME"), Some("single"));
        assert_eq!(env("EP_CONTAINER_MEM"), Some("5120"));
        assert_eq!(env("EP_DB_PASS"), None, "the password is a secret only");
        assert!(cortex.secrets.contains_key("EP_DB_PASS"));
        assert_eq!(cortex.links, ["mysql", "activemq", "search"]);
        assert_eq!(
            env("EP_SEARCH_MASTER_URL"),
            Some("http://search:8082/search")
        );
        assert_eq!(
            cortex.depends_on.get("mysql").map(String::as_str),
            Some("HEALTHY")
        );
        assert_eq!(cortex.ports[0].host_port, Some(9080));
        assert_eq!(cortex.ports[0].container_port, 8080);
        let cm = t.containers.iter().find(|c| c.name == "cm");
        assert_eq!(cm.map(|c| c.ports[0].host_port), Some(Some(9999)));
        let search = t.containers.iter().find(|c| c.name == "search");
        assert_eq!(search.map(|c| c.ports.is_empty()), Some(true));
        assert_eq!(
            search.and_then(|c| c.environment.get("EP_SEARCH_ROLE").cloned()),
            Some("standalone".to_owned())
        );
        assert_eq!(
            search.and_then(|c| c.environment.get("EP_SEARCH_MASTER_URL").cloned()),
            None,
            "the search server is not its own client"
        );
        assert_eq!(t.memory, 1024 + 512 + 5120 + 3072 + 3072);
        // Import reads back what apply computed, URLs included.
        let e = endpoints_with_urls(&block(), ["cortex", "cm", "search"]);
        assert_eq!(endpoints_registered(&t), e);
        assert_eq!(
            e.cortex_url.as_deref(),
            Some("http://localhost:9080/cortex")
        );
        assert_eq!(e.cm_url.as_deref(), Some("http://localhost:9999/cm"));
        assert_eq!(e.search_master_url.as_deref(), Some(SEARCH_MASTER_URL));
        assert_eq!(e.integration_url, None);
        let without = endpoints_with_urls(&block(), ["cm"]);
        assert_eq!(
            (without.cortex_url, without.search_master_url),
            (None, None)
        );
    }

    #[test]
    fn an_image_change_touches_only_its_container() {
        let mut other = spec(&["cortex", "cm"]);
        if let Some(c) = other.containers.iter_mut().find(|c| c.name == "cm") {
            c.image = "reg/ep/cm@sha256:bb".to_owned();
        }
        assert_eq!(spec(&["cortex", "cm"]).differences(&other), ["cm: image"]);
    }

    #[test]
    fn endpoints_name_the_containers() {
        let e = endpoints(&block());
        assert_eq!(e.database_address.as_deref(), Some("mysql"));
        assert_eq!(e.jms_url.as_deref(), Some("tcp://activemq:61616"));
        assert_eq!(
            e.console_url.as_deref(),
            Some("http://localhost:8161/admin")
        );
    }
}
