//! How a service is wired into its stack: the task definition this
//! provider registers for it, with the images' own variable contract
//! (`EP_DB_*`, `EP_JMS_URL`, `EP_COMMERCE_ENVNAME`, `EP_CONTAINER_MEM`).

use std::collections::BTreeMap;

use super::catalogue::ServiceKind;
use super::model::{ServiceBlock, StackEndpoints};
use super::taskdef::{ContainerSpec, HealthCheck, LogConfig, PortMapping, TaskSpec};

/// Defaults a service's `environment` may override.
const DEFAULT_ENV: &[(&str, &str)] = &[
    ("EP_DB_JDBC_DRIVER_CLASS", "com.mysql.cj.jdbc.Driver"),
    (
        "EP_JMS_TYPE",
        "org.apache.activemq.pool.PooledConnectionFactory",
    ),
    (
        "EP_JMS_FACTORY",
        "org.apache.activemq.jndi.JNDIReferenceFactory",
    ),
];

/// Deployment-wide settings every task definition shares.
#[derive(Clone, Debug, Default)]
pub struct TaskContext {
    /// Deployment name.
    pub deployment: String,
    /// AWS region (for the log driver).
    pub region: String,
    /// Task execution role.
    pub execution_role_arn: Option<String>,
    /// Task role.
    pub task_role_arn: Option<String>,
    /// CloudWatch Logs group.
    pub log_group: Option<String>,
}

/// What a stack gives its services.
#[derive(Clone, Debug, Default)]
pub struct StackWiring {
    /// `author` or `live`.
    pub stack: String,
    /// `EP_COMMERCE_ENVNAME`.
    pub commerce_environment: String,
    /// Database and broker endpoints.
    pub endpoints: StackEndpoints,
    /// Commerce schema.
    pub schema: String,
    /// Application user.
    pub db_user: String,
    /// Secret with the application user's password.
    pub db_password_secret_arn: String,
}

/// The task definition family of a service.
pub fn family(deployment: &str, stack: &str, service: &str) -> String {
    format!("ep-{deployment}-{stack}-{service}")
}

/// The JDBC URL of a schema.
pub fn jdbc_url(address: &str, port: u16, schema: &str) -> String {
    format!("jdbc:mysql://{address}:{port}/{schema}?characterEncoding=UTF-8")
}

/// The task definition for `svc` of kind `kind` in the stack `w`.
pub fn task_spec(
    ctx: &TaskContext,
    kind: &ServiceKind,
    svc: &ServiceBlock,
    w: &StackWiring,
) -> TaskSpec {
    let cpu = svc.cpu.unwrap_or(kind.cpu);
    let memory = svc.memory.unwrap_or(kind.memory);
    let mut environment: BTreeMap<String, String> = DEFAULT_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    if kind.name == "search" {
        environment.insert("EP_SEARCH_ROLE".to_owned(), "standalone".to_owned());
    }
    // The user's variables over the defaults; the wiring over both
    // (validation refuses user values for wired names).
    environment.extend(svc.environment.clone().unwrap_or_default());
    let e = &w.endpoints;
    // The stack's search by its discovery name; the service's own value wins.
    if let (Some(url), false) = (&e.search_master_url, kind.name == "search") {
        environment
            .entry("EP_SEARCH_MASTER_URL".to_owned())
            .or_insert_with(|| url.clone());
    }
    let wired = [
        ("EP_COMMERCE_ENVNAME", Some(w.commerce_environment.clone())),
        ("EP_CONTAINER_MEM", Some(memory.to_string())),
        ("EP_DB_URL", e.database_url.clone()),
        ("EP_DB_HOSTNAME", e.database_address.clone()),
        ("EP_DB_PORT", e.database_port.map(|p| p.to_string())),
        ("EP_DB_SCHEMA_NAME", Some(w.schema.clone())),
        ("EP_DB_USER", Some(w.db_user.clone())),
        ("EP_JMS_URL", e.jms_url.clone()),
    ];
    for (k, v) in wired {
        if let Some(v) = v {
            environment.insert(k.to_owned(), v);
        }
    }
    let mut secrets = svc.secrets.clone().unwrap_or_default();
    secrets.insert("EP_DB_PASS".to_owned(), w.db_password_secret_arn.clone());
    let path = svc.health_check_path.as_deref().unwrap_or(kind.health_path);
    let health_check = HealthCheck {
        command: vec![
            "CMD-SHELL".to_owned(),
            format!(
                "curl -fsS 'http://localhost:{}{path}' > /dev/null || exit 1",
                kind.port
            ),
        ],
        interval: Some(30),
        timeout: Some(10),
        retries: Some(5),
        // Webapps take minutes to start; 300 s is the most ECS allows.
        start_period: Some(300),
    };
    let log = ctx.log_group.as_ref().map(|group| LogConfig {
        driver: "awslogs".to_owned(),
        options: BTreeMap::from([
            ("awslogs-group".to_owned(), group.clone()),
            ("awslogs-region".to_owned(), ctx.region.clone()),
            (
                "awslogs-stream-prefix".to_owned(),
                format!("{}-{}", ctx.deployment, w.stack),
            ),
        ]),
    });
    TaskSpec {
        family: family(&ctx.deployment, &w.stack, kind.name),
        networking: super::taskdef::Networking::Fargate,
        cpu,
        memory,
        execution_role_arn: ctx.execution_role_arn.clone(),
        task_role_arn: ctx.task_role_arn.clone(),
        containers: vec![ContainerSpec {
            name: kind.name.to_owned(),
            image: svc.image.clone(),
            cpu: None,
            memory: Some(memory),
            essential: Some(true),
            ports: vec![PortMapping {
                container_port: kind.port,
                host_port: None,
                protocol: Some("tcp".to_owned()),
            }],
            environment,
            secrets,
            health_check: Some(health_check),
            depends_on: BTreeMap::new(),
            log,
            links: Vec::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::deployment::catalogue::service;

    fn wiring() -> StackWiring {
        StackWiring {
            stack: "live".to_owned(),
            commerce_environment: "prod-live".to_owned(),
            endpoints: StackEndpoints {
                database_address: Some("db.example".to_owned()),
                database_port: Some(3306),
                database_url: Some(jdbc_url("db.example", 3306, "commercedb")),
                jms_url: Some("ssl://mq.example:61617".to_owned()),
                ..StackEndpoints::default()
            },
            schema: "commercedb".to_owned(),
            db_user: "ep".to_owned(),
            db_password_secret_arn: "arn:aws:ssm:eu-west-1:1:parameter/live/db".to_owned(),
        }
    }

    fn block(name: &str) -> ServiceBlock {
        ServiceBlock {
            name: name.to_owned(),
            stack: "live".to_owned(),
            image: "reg/ep/x@sha256:aa".to_owned(),
            cpu: None,
            memory: None,
            desired_count: None,
            environment: Some(BTreeMap::from([
                ("EP_JMS_TYPE".to_owned(), "custom".to_owned()),
                ("FEATURE".to_owned(), "on".to_owned()),
            ])),
            secrets: None,
            health_check_path: None,
        }
    }

    #[test]
    fn services_get_the_stack_wiring_and_the_password_only_as_a_secret() {
        let ctx = TaskContext {
            deployment: "demo".to_owned(),
            region: "eu-west-1".to_owned(),
            log_group: Some("/ep/demo".to_owned()),
            ..TaskContext::default()
        };
        let Some(kind) = service("cortex") else {
            panic!("cortex")
        };
        let t = task_spec(&ctx, kind, &block("cortex"), &wiring());
        assert_eq!(t.family, "ep-demo-live-cortex");
        assert_eq!((t.cpu, t.memory), (1024, 5120));
        let c = &t.containers[0];
        let env = |k: &str| c.environment.get(k).map(String::as_str);
        assert_eq!(
            env("EP_DB_URL"),
            Some("jdbc:mysql://db.example:3306/commercedb?characterEncoding=UTF-8")
        );
        assert_eq!(env("EP_JMS_URL"), Some("ssl://mq.example:61617"));
        assert_eq!(env("EP_COMMERCE_ENVNAME"), Some("prod-live"));
        assert_eq!(env("EP_CONTAINER_MEM"), Some("5120"));
        assert_eq!(
            env("EP_JMS_TYPE"),
            Some("custom"),
            "a default the user overrides"
        );
        assert_eq!(env("FEATURE"), Some("on"));
        assert_eq!(env("EP_DB_PASS"), None);
        assert_eq!(
            c.secrets.get("EP_DB_PASS").map(String::as_str),
            Some("arn:aws:ssm:eu-west-1:1:parameter/live/db")
        );
        let check = c
            .health_check
            .as_ref()
            .map(|h| h.command.join(" "))
            .unwrap_or_default();
        assert!(
            check.contains("http://localhost:8080/cortex/healthcheck"),
            "{check}"
        );
        assert_eq!(c.log.as_ref().map(|l| l.driver.as_str()), Some("awslogs"));
    }

    #[test]
    fn search_listens_on_its_own_port_and_defaults_to_standalone() {
        let Some(kind) = service("search") else {
            panic!("search")
        };
        let t = task_spec(&TaskContext::default(), kind, &block("search"), &wiring());
        let c = &t.containers[0];
        assert_eq!(c.ports[0].container_port, 8082);
        assert_eq!(
            c.environment.get("EP_SEARCH_ROLE").map(String::as_str),
            Some("standalone")
        );
        assert!(c.log.is_none());
        assert!(!c.environment.contains_key("EP_SEARCH_MASTER_URL"));
    }

    #[test]
    fn tomcats_find_search_by_its_discovery_name_unless_they_say_otherwise() {
        let mut w = wiring();
        w.endpoints.search_master_url =
            Some("http://live-search.demo.ep.internal:8082/search".to_owned());
        let master = |svc: &ServiceBlock, name: &str| {
            let Some(kind) = service(name) else {
                panic!("{name}")
            };
            task_spec(&TaskContext::default(), kind, svc, &w).containers[0]
                .environment
                .get("EP_SEARCH_MASTER_URL")
                .cloned()
        };
        assert_eq!(
            master(&block("cortex"), "cortex").as_deref(),
            Some("http://live-search.demo.ep.internal:8082/search")
        );
        assert_eq!(master(&block("search"), "search"), None);
        let mut own = block("batch");
        own.environment = Some(BTreeMap::from([(
            "EP_SEARCH_MASTER_URL".to_owned(),
            "http://elsewhere:8082/search".to_owned(),
        )]));
        assert_eq!(
            master(&own, "batch").as_deref(),
            Some("http://elsewhere:8082/search")
        );
    }
}
