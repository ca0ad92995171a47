//! The ECS calls `ep_deployment` makes: its cluster, task definitions as
//! [`TaskSpec`]s, and services with the steady-state wait.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, Compatibility,
    ContainerCondition, ContainerDefinition, ContainerDependency, DeploymentCircuitBreaker,
    DeploymentConfiguration, KeyValuePair, LaunchType, LoadBalancer, LogConfiguration, LogDriver,
    NetworkConfiguration, NetworkMode, PortMapping as SdkPort, PropagateTags, Secret,
    ServiceRegistry, Tag, TransportProtocol,
};
use aws_sdk_ecs::Client;

use super::steady::{assess, DeploymentView, Expected, ServiceView, Steadiness};
use super::taskdef::{ContainerSpec, HealthCheck, LogConfig, Networking, PortMapping, TaskSpec};
use crate::aws::{not_found, retry_while, ApiError};
use crate::framework::typed::PrivateType;
use crate::framework::{Diagnostic, Diagnostics, NotFound, Observed, Op, Waiter};

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Creates the cluster `name` (ECS returns the existing one when it is
/// there already) and returns its ARN.
pub async fn create_cluster(
    ecs: &Client,
    name: &str,
    tag_map: &BTreeMap<String, String>,
) -> Result<String, Diagnostics> {
    let out = ecs
        .create_cluster()
        .cluster_name(name)
        .set_tags(Some(tags(tag_map)))
        .send()
        .await
        .map_err(|e| ApiError::new("ECS CreateCluster", format!("cluster {name:?}"), &e))?;
    out.cluster()
        .and_then(|c| c.cluster_arn())
        .map(str::to_owned)
        .ok_or_else(|| {
            Diagnostic::error("ECS CreateCluster returned no cluster", name.to_owned()).into()
        })
}

/// Whether the cluster exists and is active.
pub async fn cluster_active(ecs: &Client, arn: &str) -> Result<bool, Diagnostics> {
    let out = ecs
        .describe_clusters()
        .clusters(arn)
        .send()
        .await
        .map_err(|e| ApiError::new("ECS DescribeClusters", format!("cluster {arn:?}"), &e))?;
    Ok(out.clusters().iter().any(|c| c.status() == Some("ACTIVE")))
}

/// Deletes the cluster; a missing one is fine.
pub async fn delete_cluster(ecs: &Client, arn: &str) -> Result<(), Diagnostics> {
    match ecs.delete_cluster().cluster(arn).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = ApiError::new("ECS DeleteCluster", format!("cluster {arn:?}"), &e);
            if e.code_is(not_found::ECS_CLUSTER) {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

fn to_sdk(c: &ContainerSpec) -> ContainerDefinition {
    let env = c
        .environment
        .iter()
        .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
        .collect();
    let secrets = c
        .secrets
        .iter()
        .filter_map(|(k, v)| Secret::builder().name(k).value_from(v).build().ok())
        .collect();
    let ports = c
        .ports
        .iter()
        .map(|p| {
            SdkPort::builder()
                .container_port(i32::from(p.container_port))
                .set_host_port(p.host_port.map(i32::from))
                .protocol(TransportProtocol::from(
                    p.protocol.as_deref().unwrap_or("tcp"),
                ))
                .build()
        })
        .collect();
    let health = c.health_check.as_ref().and_then(|h| {
        aws_sdk_ecs::types::HealthCheck::builder()
            .set_command(Some(h.command.clone()))
            .set_interval(h.interval.map(to_i32))
            .set_timeout(h.timeout.map(to_i32))
            .set_retries(h.retries.map(to_i32))
            .set_start_period(h.start_period.map(to_i32))
            .build()
            .ok()
    });
    let depends = c
        .depends_on
        .iter()
        .filter_map(|(name, cond)| {
            ContainerDependency::builder()
                .container_name(name)
                .condition(ContainerCondition::from(cond.as_str()))
                .build()
                .ok()
        })
        .collect();
    let log = c.log.as_ref().and_then(|l| {
        LogConfiguration::builder()
            .log_driver(LogDriver::from(l.driver.as_str()))
            .set_options(Some(l.options.clone().into_iter().collect()))
            .build()
            .ok()
    });
    ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .set_cpu(c.cpu.map(to_i32))
        .set_memory(c.memory.map(to_i32))
        .set_essential(c.essential)
        .set_port_mappings(Some(ports))
        .set_environment(Some(env))
        .set_secrets(Some(secrets))
        .set_health_check(health)
        .set_depends_on(Some(depends))
        .set_log_configuration(log)
        .set_links((!c.links.is_empty()).then(|| c.links.clone()))
        .build()
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn from_sdk(c: &ContainerDefinition) -> ContainerSpec {
    ContainerSpec {
        name: c.name().unwrap_or_default().to_owned(),
        image: c.image().unwrap_or_default().to_owned(),
        cpu: Some(to_u32(c.cpu())),
        memory: c.memory().map(to_u32),
        essential: c.essential(),
        ports: c
            .port_mappings()
            .iter()
            .filter_map(|p| {
                Some(PortMapping {
                    container_port: u16::try_from(p.container_port()?).ok()?,
                    host_port: p.host_port().and_then(|h| u16::try_from(h).ok()),
                    protocol: p.protocol().map(|p| p.as_str().to_owned()),
                })
            })
            .collect(),
        environment: c
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_owned(), kv.value().unwrap_or("").to_owned())))
            .collect(),
        secrets: c
            .secrets()
            .iter()
            .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
            .collect(),
        health_check: c.health_check().map(|h| HealthCheck {
            command: h.command().to_vec(),
            interval: h.interval().map(to_u32),
            timeout: h.timeout().map(to_u32),
            retries: h.retries().map(to_u32),
            start_period: h.start_period().map(to_u32),
        }),
        depends_on: c
            .depends_on()
            .iter()
            .map(|d| {
                (
                    d.container_name().to_owned(),
                    d.condition().as_str().to_owned(),
                )
            })
            .collect(),
        log: c.log_configuration().map(|l| LogConfig {
            driver: l.log_driver().as_str().to_owned(),
            options: l
                .options()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }),
        links: c.links().to_vec(),
    }
}

/// Registers `spec` as a new revision of its family; returns its ARN.
pub async fn register(
    ecs: &Client,
    spec: &TaskSpec,
    tag_map: &BTreeMap<String, String>,
) -> Result<String, Diagnostics> {
    let out = ecs
        .register_task_definition()
        .family(&spec.family)
        .network_mode(match spec.networking {
            Networking::Fargate => NetworkMode::Awsvpc,
            Networking::Bridge => NetworkMode::Bridge,
        })
        .requires_compatibilities(match spec.networking {
            Networking::Fargate => Compatibility::Fargate,
            Networking::Bridge => Compatibility::Ec2,
        })
        .cpu(spec.cpu.to_string())
        .memory(spec.memory.to_string())
        .set_execution_role_arn(spec.execution_role_arn.clone())
        .set_task_role_arn(spec.task_role_arn.clone())
        .set_container_definitions(Some(spec.containers.iter().map(to_sdk).collect()))
        .set_tags(Some(tags(tag_map)))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                "ECS RegisterTaskDefinition",
                format!("family {:?}", spec.family),
                &e,
            )
        })?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_owned)
        .ok_or_else(|| {
            Diagnostic::error(
                "ECS RegisterTaskDefinition returned no ARN",
                spec.family.clone(),
            )
            .into()
        })
}

/// The registered revision `arn` as a [`TaskSpec`]; `None` when it is gone
/// or deregistered.
pub async fn describe_task_definition(
    ecs: &Client,
    arn: &str,
) -> Result<Option<TaskSpec>, Diagnostics> {
    let out = match ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let e = ApiError::new(
                "ECS DescribeTaskDefinition",
                format!("task definition {arn:?}"),
                &e,
            );
            // ECS answers a missing revision with ClientException.
            if e.code_is(&["ClientException"]) {
                return Ok(None);
            }
            return Err(e.into());
        }
    };
    let Some(t) = out.task_definition() else {
        return Ok(None);
    };
    if t.status().map(|s| s.as_str()) == Some("INACTIVE") {
        return Ok(None);
    }
    Ok(Some(TaskSpec {
        family: t.family().unwrap_or_default().to_owned(),
        networking: match t.network_mode() {
            Some(NetworkMode::Bridge) => Networking::Bridge,
            _ => Networking::Fargate,
        },
        cpu: t.cpu().and_then(|c| c.parse().ok()).unwrap_or(0),
        memory: t.memory().and_then(|m| m.parse().ok()).unwrap_or(0),
        execution_role_arn: t.execution_role_arn().map(str::to_owned),
        task_role_arn: t.task_role_arn().map(str::to_owned),
        containers: t.container_definitions().iter().map(from_sdk).collect(),
    }))
}

/// Deregisters a revision no service uses any more; a missing one is fine.
pub async fn deregister(ecs: &Client, arn: &str) -> Result<(), Diagnostics> {
    match ecs
        .deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = ApiError::new(
                "ECS DeregisterTaskDefinition",
                format!("task definition {arn:?}"),
                &e,
            );
            if e.code_is(&["ClientException"]) {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

/// Where a service's tasks run: Fargate in subnets, or the cluster's EC2
/// capacity (bridge network, no subnets).
#[derive(Clone, Debug)]
pub enum Placement {
    /// Fargate, `awsvpc`.
    Fargate(Network),
    /// The EC2 launch type.
    Ec2,
    /// A capacity provider of the cluster.
    CapacityProvider(String),
}

/// The subnets and security groups of a Fargate service.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Subnets.
    pub subnets: Vec<String>,
    /// Security groups.
    pub security_groups: Vec<String>,
    /// Public IP on each task.
    pub public_ip: bool,
}

/// A service to create.
#[derive(Clone, Debug)]
pub struct NewService<'a> {
    /// Cluster ARN.
    pub cluster: &'a str,
    /// Service name.
    pub name: &'a str,
    /// Task definition ARN.
    pub task_definition: &'a str,
    /// Tasks.
    pub desired: u32,
    /// Where its tasks run.
    pub placement: &'a Placement,
    /// Target group and the container/port it routes to.
    pub target_group: Option<(&'a str, &'a str, u16)>,
    /// Cloud Map service its tasks register with.
    pub registry: Option<&'a str>,
    /// Tags.
    pub tags: &'a BTreeMap<String, String>,
}

fn deployment_for(service: Option<&aws_sdk_ecs::types::Service>, td: &str) -> Option<String> {
    service?
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY") && d.task_definition() == Some(td))
        .and_then(|d| d.id())
        .map(str::to_owned)
}

/// Creates a service with the circuit breaker on (rollback
/// included); returns its ARN and the deployment it started.
pub async fn create_service(
    ecs: &Client,
    s: &NewService<'_>,
) -> Result<(String, Option<String>), Diagnostics> {
    let (launch_type, network, strategy) = match s.placement {
        Placement::Fargate(n) => {
            let vpc = AwsVpcConfiguration::builder()
                .set_subnets(Some(n.subnets.clone()))
                .set_security_groups(Some(n.security_groups.clone()))
                .assign_public_ip(if n.public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| Diagnostic::error("Invalid network configuration", e.to_string()))?;
            let net = NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build();
            (Some(LaunchType::Fargate), Some(net), None)
        }
        Placement::Ec2 => (Some(LaunchType::Ec2), None, None),
        Placement::CapacityProvider(name) => {
            let item = CapacityProviderStrategyItem::builder()
                .capacity_provider(name)
                .weight(1)
                .build()
                .map_err(|e| Diagnostic::error("Invalid capacity provider", e.to_string()))?;
            (None, None, Some(vec![item]))
        }
    };
    // One task on one host cannot overlap itself (its host ports are
    // taken): the old task stops before the new one starts.
    let (min_healthy, max) = match s.placement {
        Placement::Fargate(_) => (100, 200),
        _ => (0, 100),
    };
    let breaker = DeploymentCircuitBreaker::builder()
        .enable(true)
        .rollback(true)
        .build();
    let lbs = s.target_group.map(|(tg, container, port)| {
        vec![LoadBalancer::builder()
            .target_group_arn(tg)
            .container_name(container)
            .container_port(i32::from(port))
            .build()]
    });
    let out = ecs
        .create_service()
        .cluster(s.cluster)
        .service_name(s.name)
        .task_definition(s.task_definition)
        .desired_count(to_i32(s.desired))
        .set_launch_type(launch_type)
        .set_network_configuration(network)
        .set_capacity_provider_strategy(strategy)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(breaker)
                .minimum_healthy_percent(min_healthy)
                .maximum_percent(max)
                .build(),
        )
        .set_load_balancers(lbs)
        .set_service_registries(s.registry.map(registries))
        .propagate_tags(PropagateTags::Service)
        .enable_ecs_managed_tags(true)
        .set_tags(Some(tags(s.tags)))
        .send()
        .await
        .map_err(|e| ApiError::new("ECS CreateService", format!("service {:?}", s.name), &e))?;
    let arn = out
        .service()
        .and_then(|x| x.service_arn())
        .map(str::to_owned)
        .ok_or_else(|| {
            Diagnostic::error("ECS CreateService returned no service", s.name.to_owned())
        })?;
    Ok((arn, deployment_for(out.service(), s.task_definition)))
}

fn registries(arn: &str) -> Vec<ServiceRegistry> {
    vec![ServiceRegistry::builder().registry_arn(arn).build()]
}

/// What an update changes besides the task definition and count; `None`
/// leaves a setting as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServiceChange<'a> {
    /// Move to a capacity provider (`Some(Some(name))`) or back to the
    /// launch type (`Some(None)`).
    pub capacity: Option<Option<&'a str>>,
    /// Register with a Cloud Map service (`Some(Some(arn))`) or with none.
    pub registry: Option<Option<&'a str>>,
}

impl ServiceChange<'_> {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.capacity.is_none() && self.registry.is_none()
    }
}

/// Points a service at a task definition and a task count, with `change`
/// on top; returns the deployment that started.
pub async fn update_service(
    ecs: &Client,
    cluster: &str,
    name: &str,
    task_definition: &str,
    desired: u32,
    change: &ServiceChange<'_>,
) -> Result<Option<String>, Diagnostics> {
    // ECS takes a new strategy without starting a deployment: force one, so
    // the task moves now. An empty strategy returns to the launch type.
    let strategy = match change.capacity {
        None => None,
        Some(None) => Some(Vec::new()),
        Some(Some(cp)) => Some(vec![CapacityProviderStrategyItem::builder()
            .capacity_provider(cp)
            .weight(1)
            .build()
            .map_err(|e| Diagnostic::error("Invalid capacity provider", e.to_string()))?]),
    };
    let out = ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .task_definition(task_definition)
        .desired_count(to_i32(desired))
        .set_force_new_deployment((!change.is_empty()).then_some(true))
        .set_capacity_provider_strategy(strategy)
        .set_service_registries(
            change
                .registry
                .map(|r| r.map(registries).unwrap_or_default()),
        )
        .send()
        .await
        .map_err(|e| ApiError::new("ECS UpdateService", format!("service {name:?}"), &e))?;
    Ok(deployment_for(out.service(), task_definition))
}

/// A service as far as this provider looks at it.
#[derive(Clone, Debug)]
pub struct Described {
    /// ARN.
    pub arn: String,
    /// The view the steady-state judgement takes.
    pub view: ServiceView,
    /// The capacity provider it runs on; `None` for a launch type.
    pub capacity_provider: Option<String>,
    /// The Cloud Map services its tasks register with.
    pub registries: Vec<String>,
}

/// The service `name`; `NotFound` when ECS reports it missing or inactive.
pub async fn describe_service(
    ecs: &Client,
    cluster: &str,
    name: &str,
) -> Result<Observed<Described>, Diagnostics> {
    let out = match ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let e = ApiError::new("ECS DescribeServices", format!("service {name:?}"), &e);
            if e.code_is(not_found::ECS_CLUSTER) || e.code_is(not_found::ECS_SERVICE) {
                return Ok(Observed::NotFound);
            }
            return Err(e.into());
        }
    };
    let Some(s) = out.services().first() else {
        return Ok(Observed::NotFound);
    };
    let status = s.status().unwrap_or("UNKNOWN").to_owned();
    if status == "INACTIVE" {
        return Ok(Observed::NotFound);
    }
    let view = ServiceView {
        status: status.clone(),
        task_definition: s.task_definition().unwrap_or_default().to_owned(),
        desired: s.desired_count(),
        running: s.running_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| DeploymentView {
                id: d.id().unwrap_or_default().to_owned(),
                status: d.status().unwrap_or_default().to_owned(),
                task_definition: d.task_definition().unwrap_or_default().to_owned(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                running: d.running_count(),
                desired: d.desired_count(),
            })
            .collect(),
    };
    Ok(Observed::Status(
        status,
        Described {
            arn: s.service_arn().unwrap_or_default().to_owned(),
            view,
            capacity_provider: s
                .capacity_provider_strategy()
                .first()
                .map(|c| c.capacity_provider().to_owned()),
            registries: s
                .service_registries()
                .iter()
                .filter_map(|r| r.registry_arn().map(str::to_owned))
                .collect(),
        },
    ))
}

/// Waits until the service runs `expected` steadily (see [`assess`]).
pub async fn wait_steady<P: PrivateType>(
    ecs: &Client,
    op: &Op<P>,
    cluster: &str,
    name: &str,
    expected: &Expected<'_>,
) -> Result<(), Diagnostics> {
    Waiter::new(format!("ECS service {name:?}"), &["steady"])
        .pending(&["settling"])
        .occurrences(2)
        .delay(Duration::from_secs(10))
        .interval(Duration::from_secs(10), Duration::from_secs(30))
        .not_found(NotFound::Fail)
        .wait(op, || async {
            match describe_service(ecs, cluster, name).await? {
                Observed::NotFound => Ok(Observed::NotFound),
                Observed::Status(_, d) => match assess(&d.view, expected) {
                    Steadiness::Steady => Ok(Observed::Status("steady".to_owned(), ())),
                    Steadiness::Settling(why) => {
                        tracing::info!(service = name, "{why}");
                        Ok(Observed::Status("settling".to_owned(), ()))
                    }
                    Steadiness::Failed(why) => Err(Diagnostics::from(Diagnostic::error(
                        format!("ECS service {name:?} did not reach a steady state"),
                        why,
                    ))),
                },
            }
        })
        .await
        .map(|_| ())
        .map_err(Diagnostics::from)
}

/// Deletes a service: scaled to zero first (ECS refuses to delete one with
/// running deployments), then deleted and waited for until gone.
pub async fn delete_service<P: PrivateType>(
    ecs: &Client,
    op: &Op<P>,
    cluster: &str,
    name: &str,
) -> Result<(), Diagnostics> {
    if let Observed::NotFound = describe_service(ecs, cluster, name).await? {
        return Ok(());
    }
    let scaled = ecs
        .update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(0)
        .send()
        .await;
    if let Err(e) = scaled {
        let e = ApiError::new("ECS UpdateService", format!("service {name:?}"), &e);
        if !e.code_is(&["ServiceNotActiveException"]) && !e.code_is(not_found::ECS_SERVICE) {
            return Err(e.into());
        }
    }
    let deleted = retry_while(
        op,
        |e| e.message.contains("deployments are active"),
        || async {
            match ecs
                .delete_service()
                .cluster(cluster)
                .service(name)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = ApiError::new("ECS DeleteService", format!("service {name:?}"), &e);
                    if e.code_is(not_found::ECS_SERVICE)
                        || e.code_is(&["ServiceNotActiveException"])
                    {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
            }
        },
    )
    .await;
    deleted?;
    Waiter::new(format!("deletion of ECS service {name:?}"), &[])
        .pending(&["ACTIVE", "DRAINING"])
        .interval(Duration::from_secs(5), Duration::from_secs(30))
        .not_found(NotFound::IsTarget)
        .wait(op, || describe_service(ecs, cluster, name))
        .await
        .map(|_| ())
        .map_err(Diagnostics::from)
}
