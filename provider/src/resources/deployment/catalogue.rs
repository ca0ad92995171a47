//! The Elastic Path services a deployment runs, with what each needs by
//! default: size, health endpoint, whether it may scale out.

/// One Elastic Path service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceKind {
    /// Name in configuration (`cortex`).
    pub name: &'static str,
    /// Port its Tomcat listens on.
    pub port: u16,
    /// Health endpoint path on that port.
    pub health_path: &'static str,
    /// Default task CPU units.
    pub cpu: u32,
    /// Default task memory, MiB (CloudOps sizing: cortex ~5 GiB, the others ~3 GiB).
    pub memory: u32,
    /// Runs as exactly one task: a second one would run jobs twice.
    pub singleton: bool,
}

/// Every service a deployment knows.
pub const SERVICES: &[ServiceKind] = &[
    ServiceKind {
        name: "cortex",
        port: 8080,
        health_path: "/cortex/healthcheck",
        cpu: 1024,
        memory: 5120,
        singleton: false,
    },
    ServiceKind {
        name: "cm",
        port: 8080,
        health_path: "/cm/?servicehandler=status",
        cpu: 1024,
        memory: 3072,
        singleton: true,
    },
    ServiceKind {
        name: "batch",
        port: 8080,
        health_path: "/batch/status",
        cpu: 1024,
        memory: 3072,
        singleton: true,
    },
    ServiceKind {
        name: "integration",
        port: 8080,
        health_path: "/integration/status",
        cpu: 1024,
        memory: 3072,
        singleton: false,
    },
    ServiceKind {
        name: "search",
        port: 8082,
        health_path: "/search/status",
        cpu: 1024,
        memory: 3072,
        singleton: false,
    },
    ServiceKind {
        name: "data-sync",
        port: 8080,
        health_path: "/data-sync/status",
        cpu: 1024,
        memory: 3072,
        singleton: true,
    },
];

/// The stacks of an Author and Live deployment.
impl ServiceKind {
    /// The service's webapp at `host:port`: its context is the first
    /// segment of its health path (`http://host:8080/cortex`).
    pub fn url(&self, host: &str, port: u16) -> String {
        let context = self.health_path.split('/').nth(1).unwrap_or(self.name);
        format!("http://{host}:{port}/{context}")
    }
}

pub const STACKS: [&str; 2] = ["author", "live"];

/// The service called `name`, if there is one.
pub fn service(name: &str) -> Option<&'static ServiceKind> {
    SERVICES.iter().find(|s| s.name == name)
}

/// Names of every service, for diagnostics.
pub fn service_names() -> String {
    SERVICES
        .iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Variables the deployment sets from its own wiring; a service's
/// `environment` cannot set them (they would silently disagree with the
/// database or broker the service is really given).
pub const WIRED_VARIABLES: &[&str] = &[
    "EP_COMMERCE_ENVNAME",
    "EP_CONTAINER_MEM",
    "EP_DB_URL",
    "EP_DB_USER",
    "EP_DB_PASS",
    "EP_DB_HOSTNAME",
    "EP_DB_PORT",
    "EP_DB_SCHEMA_NAME",
    "EP_JMS_URL",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fargate::check_task_size;

    #[test]
    fn every_default_size_is_one_fargate_runs() {
        for s in SERVICES {
            assert_eq!(check_task_size(s.cpu, s.memory), None, "{}", s.name);
        }
    }

    #[test]
    fn services_are_found_by_name_only() {
        assert_eq!(service("cm").map(|s| s.singleton), Some(true));
        assert_eq!(service("Cortex"), None);
        assert!(service_names().contains("`data-sync`"));
    }
}
