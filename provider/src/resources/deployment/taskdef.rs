//! Task definitions as this provider writes them, and the comparison that
//! decides whether a registered revision still matches the configuration.
//!
//! `RegisterTaskDefinition` makes a new revision on every call, and
//! `DescribeTaskDefinition` returns what was registered plus what ECS filled
//! in (`cpu: 0`, empty lists, health-check defaults, `hostPort` equal to the
//! container port under `awsvpc`) with environment entries in any order.
//! Both sides are brought to one normal form before comparing, so an
//! unchanged configuration never registers a revision or rolls a service.

use std::collections::BTreeMap;

/// ECS's health-check defaults, filled in when a field is left out.
const HEALTH_INTERVAL: u32 = 30;
const HEALTH_TIMEOUT: u32 = 5;
const HEALTH_RETRIES: u32 = 3;

/// How a task's containers are networked (and where the task may run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Networking {
    /// `awsvpc` on Fargate: each task its own interface, containers share localhost.
    #[default]
    Fargate,
    /// `bridge` on EC2: each container its own namespace, reached by `links`
    /// and published on host ports.
    Bridge,
}

/// A task definition: what this provider registers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskSpec {
    /// Family (the revision's name without `:N`).
    pub family: String,
    /// Network mode and compatibility.
    pub networking: Networking,
    /// Task CPU units.
    pub cpu: u32,
    /// Task memory, MiB.
    pub memory: u32,
    /// Role ECS uses to pull images and read secrets.
    pub execution_role_arn: Option<String>,
    /// Role the containers run as.
    pub task_role_arn: Option<String>,
    /// Containers, in the order given.
    pub containers: Vec<ContainerSpec>,
}

/// One container of a task definition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// CPU units reserved; `None` and `Some(0)` are the same to ECS.
    pub cpu: Option<u32>,
    /// Hard memory limit, MiB.
    pub memory: Option<u32>,
    /// Whether the task stops when this container stops (ECS default: yes).
    pub essential: Option<bool>,
    /// Container ports (TCP unless the protocol says otherwise).
    pub ports: Vec<PortMapping>,
    /// Plain environment variables.
    pub environment: BTreeMap<String, String>,
    /// Environment variables read from SSM or Secrets Manager: name → ARN.
    pub secrets: BTreeMap<String, String>,
    /// Container health check.
    pub health_check: Option<HealthCheck>,
    /// Containers that must be healthy first: name → condition.
    pub depends_on: BTreeMap<String, String>,
    /// Log driver and its options.
    pub log: Option<LogConfig>,
    /// Other containers reachable by name (bridge network only).
    pub links: Vec<String>,
}

/// A port the container listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMapping {
    /// Port inside the container.
    pub container_port: u16,
    /// Port on the host; under `awsvpc` always the container port, under
    /// `bridge` `None` (or 0) means none published.
    pub host_port: Option<u16>,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
}

/// A container health check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCheck {
    /// `["CMD-SHELL", "…"]` or `["CMD", …]`.
    pub command: Vec<String>,
    /// Seconds between checks.
    pub interval: Option<u32>,
    /// Seconds before a check counts as failed.
    pub timeout: Option<u32>,
    /// Failures before the container is unhealthy.
    pub retries: Option<u32>,
    /// Grace period after start, seconds.
    pub start_period: Option<u32>,
}

/// Where a container's output goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// `awslogs`, …
    pub driver: String,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

impl TaskSpec {
    /// The normal form both sides are compared in.
    pub fn normalised(&self) -> TaskSpec {
        let mut t = self.clone();
        let net = t.networking;
        t.containers = t.containers.iter().map(|c| c.normalised(net)).collect();
        t.containers.sort_by(|a, b| a.name.cmp(&b.name));
        t
    }

    /// What differs between the configuration (`self`) and a registered
    /// revision, in words for the plan and the log; empty when nothing does.
    pub fn differences(&self, registered: &TaskSpec) -> Vec<String> {
        let (want, have) = (self.normalised(), registered.normalised());
        let mut out = Vec::new();
        if want.cpu != have.cpu || want.memory != have.memory {
            out.push(format!(
                "task size {}/{} → {}/{}",
                have.cpu, have.memory, want.cpu, want.memory
            ));
        }
        if want.networking != have.networking {
            out.push("network mode".to_owned());
        }
        if want.execution_role_arn != have.execution_role_arn {
            out.push("execution role".to_owned());
        }
        if want.task_role_arn != have.task_role_arn {
            out.push("task role".to_owned());
        }
        for w in &want.containers {
            match have.containers.iter().find(|h| h.name == w.name) {
                Some(h) => out.extend(
                    w.differences(h)
                        .into_iter()
                        .map(|d| format!("{}: {d}", w.name)),
                ),
                None => out.push(format!("container {} added", w.name)),
            }
        }
        for h in &have.containers {
            if !want.containers.iter().any(|w| w.name == h.name) {
                out.push(format!("container {} removed", h.name));
            }
        }
        out
    }
}

impl ContainerSpec {
    fn normalised(&self, net: Networking) -> ContainerSpec {
        let mut c = self.clone();
        c.cpu = c.cpu.filter(|&n| n != 0);
        c.essential = Some(c.essential.unwrap_or(true));
        for p in &mut c.ports {
            p.protocol = Some(p.protocol.take().unwrap_or_else(|| "tcp".to_owned()));
            p.host_port = match net {
                Networking::Fargate => Some(p.container_port),
                Networking::Bridge => p.host_port.filter(|&h| h != 0),
            };
        }
        c.links.sort();
        c.links.dedup();
        c.ports.sort();
        c.ports.dedup();
        c.health_check = c.health_check.map(|h| HealthCheck {
            command: h.command,
            interval: Some(h.interval.unwrap_or(HEALTH_INTERVAL)),
            timeout: Some(h.timeout.unwrap_or(HEALTH_TIMEOUT)),
            retries: Some(h.retries.unwrap_or(HEALTH_RETRIES)),
            start_period: h.start_period.filter(|&s| s != 0),
        });
        c
    }

    /// What differs, by field name (both sides normalised).
    fn differences(&self, other: &ContainerSpec) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, differs: bool| {
            if differs {
                out.push(name.to_owned());
            }
        };
        field("image", self.image != other.image);
        field("cpu", self.cpu != other.cpu);
        field("memory", self.memory != other.memory);
        field("essential", self.essential != other.essential);
        field("ports", self.ports != other.ports);
        field("health check", self.health_check != other.health_check);
        field("depends on", self.depends_on != other.depends_on);
        field("logging", self.log != other.log);
        field("links", self.links != other.links);
        out.extend(map_differences(
            "environment",
            &self.environment,
            &other.environment,
        ));
        out.extend(map_differences("secret", &self.secrets, &other.secrets));
        out
    }
}

/// Names added, removed or changed between two maps (values never shown:
/// secrets' ARNs and environment values may be sensitive).
fn map_differences(
    what: &str,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in want {
        match have.get(k) {
            None => out.push(format!("{what} {k} added")),
            Some(h) if h != v => out.push(format!("{what} {k} changed")),
            Some(_) => {}
        }
    }
    for k in have.keys().filter(|k| !want.contains_key(*k)) {
        out.push(format!("{what} {k} removed"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cortex() -> TaskSpec {
        TaskSpec {
            family: "demo-live-cortex".to_owned(),
            networking: Networking::Fargate,
            cpu: 1024,
            memory: 5120,
            execution_role_arn: Some("arn:aws:iam::1:role/exec".to_owned()),
            task_role_arn: None,
            containers: vec![ContainerSpec {
                name: "cortex".to_owned(),
                image: "1.dkr.ecr.eu-west-1.amazonaws.com/ep/cortex@sha256:aa".to_owned(),
                memory: Some(5120),
                ports: vec![PortMapping {
                    container_port: 8080,
                    host_port: None,
                    protocol: None,
                }],
                environment: [
                    ("EP_COMMERCE_ENVNAME", "live"),
                    ("EP_CONTAINER_MEM", "5120"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
                secrets: [("EP_DB_PASS", "arn:aws:ssm:eu-west-1:1:parameter/demo/db")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                health_check: Some(HealthCheck {
                    command: vec![
                        "CMD-SHELL".to_owned(),
                        "curl -fs localhost:8080/cortex/healthcheck".to_owned(),
                    ],
                    start_period: Some(300),
                    ..HealthCheck::default()
                }),
                ..ContainerSpec::default()
            }],
        }
    }

    /// What DescribeTaskDefinition gives back for `cortex()`: ECS's defaults filled in.
    fn as_registered() -> TaskSpec {
        let mut t = cortex();
        let c = &mut t.containers[0];
        c.cpu = Some(0);
        c.essential = Some(true);
        c.ports[0].protocol = Some("tcp".to_owned());
        c.ports[0].host_port = Some(8080);
        if let Some(h) = c.health_check.as_mut() {
            h.interval = Some(30);
            h.timeout = Some(5);
            h.retries = Some(3);
        }
        t
    }

    #[test]
    fn what_ecs_fills_in_is_no_difference() {
        assert_eq!(cortex().differences(&as_registered()), Vec::<String>::new());
    }

    #[test]
    fn a_new_image_is_named_and_nothing_else() {
        let mut want = cortex();
        want.containers[0].image =
            "1.dkr.ecr.eu-west-1.amazonaws.com/ep/cortex@sha256:bb".to_owned();
        assert_eq!(want.differences(&as_registered()), vec!["cortex: image"]);
    }

    #[test]
    fn environment_changes_name_the_variable_but_never_its_value() {
        let mut want = cortex();
        let env = &mut want.containers[0].environment;
        env.insert("EP_COMMERCE_ENVNAME".to_owned(), "secret-ish".to_owned());
        env.insert("EXTRA".to_owned(), "1".to_owned());
        want.containers[0].secrets.clear();
        let d = want.differences(&as_registered());
        assert_eq!(
            d,
            vec![
                "cortex: environment EP_COMMERCE_ENVNAME changed",
                "cortex: environment EXTRA added",
                "cortex: secret EP_DB_PASS removed",
            ]
        );
        assert!(!d.iter().any(|s| s.contains("secret-ish")));
    }

    #[test]
    fn bridge_host_ports_and_links_are_compared_as_ecs_returns_them() {
        let mut want = cortex();
        want.networking = Networking::Bridge;
        want.containers[0].ports[0].host_port = Some(9080);
        want.containers[0].links = vec!["mysql".to_owned(), "activemq".to_owned()];
        let mut have = as_registered();
        have.networking = Networking::Bridge;
        have.containers[0].ports[0].host_port = Some(9080);
        have.containers[0].links = vec!["activemq".to_owned(), "mysql".to_owned()];
        assert!(want.differences(&have).is_empty());
        have.containers[0].ports[0].host_port = Some(0);
        assert_eq!(want.differences(&have), vec!["cortex: ports"]);
        want.containers[0].ports[0].host_port = None;
        assert!(
            want.differences(&have).is_empty(),
            "0 and none both publish nothing"
        );
        have.containers[0].links.pop();
        assert_eq!(want.differences(&have), vec!["cortex: links"]);
        have.networking = Networking::Fargate;
        assert!(want.differences(&have).contains(&"network mode".to_owned()));
    }

    #[test]
    fn container_order_and_task_size_are_compared_as_ecs_sees_them() {
        let mut two = cortex();
        let mut studio = two.containers[0].clone();
        studio.name = "a-sidecar".to_owned();
        two.containers.push(studio);
        let mut reversed = two.clone();
        reversed.containers.reverse();
        assert!(two.differences(&reversed).is_empty());
        reversed.memory = 8192;
        assert_eq!(
            two.differences(&reversed),
            vec!["task size 1024/8192 → 1024/5120"]
        );
        assert_eq!(
            cortex().differences(&two),
            vec!["container a-sidecar removed"]
        );
    }
}
