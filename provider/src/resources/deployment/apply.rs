//! Bringing a deployment to its configuration: create and update are one
//! convergence, part by part in dependency order (databases and brokers,
//! then task definitions, then services), each part recorded in state as
//! soon as it exists so a failed or interrupted apply orphans nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use futures::future::try_join_all;

use super::catalogue;
use super::database::{self, DEFAULT_SCHEMA, DEFAULT_USER};
use super::discovery::Namespace;
use super::ecs::{self, Network, NewService, Placement};
use super::model::{DeploymentModel, DeploymentPrivate, StackBlock, StackEndpoints};
use super::mq;
use super::single;
use super::steady::Expected;
use super::taskdef::TaskSpec;
use super::validate::SINGLE_INSTANCE;
use super::wiring::{self, StackWiring, TaskContext};
use crate::aws::rds;
use crate::framework::{Diagnostic, Diagnostics, Observed, Op};

/// Tag naming the deployment on every part.
pub const TAG_DEPLOYMENT: &str = "ep:deployment";
/// Tag naming the part (`author/database`, `live/cortex`).
pub const TAG_PART: &str = "ep:part";

/// The AWS clients a run uses.
pub struct Clients {
    /// RDS.
    pub rds: aws_sdk_rds::Client,
    /// Amazon MQ.
    pub mq: aws_sdk_mq::Client,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// AWS Cloud Map.
    pub discovery: aws_sdk_servicediscovery::Client,
}

/// The ECS service name of a service in a stack.
pub fn service_name(stack: &str, service: &str) -> String {
    format!("{stack}-{service}")
}

/// The broker name of a stack.
pub fn broker_name(deployment: &str, stack: &str) -> String {
    format!("ep-{deployment}-{stack}")
}

/// The cluster name of a deployment that owns its cluster.
pub fn cluster_name(deployment: &str) -> String {
    format!("ep-{deployment}")
}

/// The `author` or `live` block of a configuration or state.
pub(super) fn stack_of<'m>(m: &'m DeploymentModel, stack: &str) -> Option<&'m StackBlock> {
    match stack {
        "author" => m.author.as_ref(),
        _ => m.live.as_ref(),
    }
}

/// One service to bring to its task definition.
struct Rollout<'t> {
    /// `stack/service` key in state.
    key: String,
    /// ECS service name.
    name: String,
    /// The task definition it should run.
    spec: TaskSpec,
    /// Tasks.
    desired: u32,
    /// Target group, container and port.
    target_group: Option<(&'t str, &'t str, u16)>,
    /// Cloud Map service its tasks register with.
    registry: Option<String>,
}

/// One apply: the configuration, what existed before, and the state being built.
pub struct Converge<'a> {
    pub(super) op: &'a Op<DeploymentPrivate>,
    pub(super) aws: Clients,
    region: String,
    pub(super) config: &'a DeploymentModel,
    pub(super) prior: Option<&'a DeploymentModel>,
    state: Mutex<DeploymentModel>,
}

impl<'a> Converge<'a> {
    /// Starts from the prior state (or the configuration, on create).
    pub fn new(
        op: &'a Op<DeploymentPrivate>,
        aws: Clients,
        region: String,
        config: &'a DeploymentModel,
        prior: Option<&'a DeploymentModel>,
    ) -> Self {
        let mut state = config.clone();
        state.id = Some(config.name.clone());
        if let Some(p) = prior {
            state.databases = p.databases.clone();
            state.brokers = p.brokers.clone();
            state.task_definitions = p.task_definitions.clone();
            state.services = p.services.clone();
            state.discovery_namespace_id = p.discovery_namespace_id.clone();
            state.discovery_services = p.discovery_services.clone();
            state.endpoints = p.endpoints.clone();
            state.cluster_arn = config.cluster_arn.clone().or_else(|| p.cluster_arn.clone());
        }
        state.status = Some("applying".to_owned());
        Converge {
            op,
            aws,
            region,
            config,
            prior,
            state: Mutex::new(state),
        }
    }

    /// Changes the state and records it at once.
    pub(super) fn record(&self, f: impl FnOnce(&mut DeploymentModel)) -> Result<(), Diagnostics> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        self.op.checkpoint(&*s)
    }

    pub(super) fn snapshot(&self) -> DeploymentModel {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn tags(&self, part: &str) -> BTreeMap<String, String> {
        let mut t = self.config.tags.clone().unwrap_or_default();
        t.insert(TAG_DEPLOYMENT.to_owned(), self.config.name.clone());
        t.insert(TAG_PART.to_owned(), part.to_owned());
        t
    }

    /// Runs the whole convergence; the final state on success.
    pub async fn run(self) -> Result<DeploymentModel, Diagnostics> {
        let cluster = self.cluster().await?;
        if self.config.kind == SINGLE_INSTANCE {
            self.single_instance(&cluster).await?;
            self.record(|s| s.status = Some("ready".to_owned()))?;
            return Ok(self.snapshot());
        }
        let stacks = try_join_all(catalogue::STACKS.map(|s| self.stack(s))).await?;
        let mut wirings: BTreeMap<String, StackWiring> = stacks.into_iter().collect();
        let namespace = self.discovery_namespace().await?;
        if let Some(ns) = &namespace {
            self.service_urls(ns, &mut wirings)?;
        }
        self.services(&cluster, &wirings, namespace.as_ref())
            .await?;
        self.drop_unused_discovery(namespace.as_ref()).await?;
        self.retire_databases().await?;
        self.record(|s| s.status = Some("ready".to_owned()))?;
        Ok(self.snapshot())
    }

    async fn cluster(&self) -> Result<String, Diagnostics> {
        if let Some(arn) = &self.config.cluster_arn {
            return Ok(arn.clone());
        }
        if let Some(arn) = self.prior.and_then(|p| p.cluster_arn.clone()) {
            if ecs::cluster_active(&self.aws.ecs, &arn).await? {
                return Ok(arn);
            }
        }
        let name = cluster_name(&self.config.name);
        let arn = ecs::create_cluster(&self.aws.ecs, &name, &self.tags("cluster")).await?;
        self.op.update_private(|p| p.created_cluster = true);
        self.record(|s| s.cluster_arn = Some(arn.clone()))?;
        Ok(arn)
    }

    /// The stack's database and broker, created or adopted, waited for; its wiring.
    async fn stack(&self, stack: &'static str) -> Result<(String, StackWiring), Diagnostics> {
        let Some(block) = stack_of(self.config, stack) else {
            return Err(Diagnostic::error(
                "Missing stack",
                format!("The `{stack}` block is required."),
            )
            .into());
        };
        let (Some(db), Some(broker)) = (&block.database, &block.broker) else {
            return Err(Diagnostic::error(
                "Incomplete stack",
                format!("The `{stack}` block needs `database` and `broker`."),
            )
            .into());
        };
        let (address, port) = self.database(stack, db).await?;
        let broker = self.broker(stack, broker).await?;
        let schema = db
            .schema_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        let mut endpoints = StackEndpoints {
            database_url: Some(wiring::jdbc_url(&address, port, &schema)),
            database_address: Some(address),
            database_port: Some(port),
            ..StackEndpoints::default()
        };
        broker.fill(&mut endpoints);
        self.record(|s| {
            s.endpoints
                .get_or_insert_with(BTreeMap::new)
                .insert(stack.to_owned(), endpoints.clone());
        })?;
        Ok((
            stack.to_owned(),
            StackWiring {
                stack: stack.to_owned(),
                commerce_environment: block
                    .commerce_environment
                    .clone()
                    .unwrap_or_else(|| stack.to_owned()),
                endpoints,
                schema,
                db_user: db
                    .username
                    .clone()
                    .unwrap_or_else(|| DEFAULT_USER.to_owned()),
                db_password_secret_arn: db.password_secret_arn.clone(),
            },
        ))
    }

    async fn database(
        &self,
        stack: &str,
        db: &super::model::DatabaseBlock,
    ) -> Result<(String, u16), Diagnostics> {
        let id = database::instance_identifier(&self.config.name, stack, &db.snapshot_identifier);
        let previous = self
            .prior
            .and_then(|p| p.databases.as_ref())
            .and_then(|m| m.get(stack))
            .filter(|old| **old != id)
            .cloned();
        let observed = rds::describe_instance(&self.aws.rds, &id).await?;
        let mut changed = true;
        if matches!(observed, Observed::NotFound) {
            tracing::info!(stack, instance = %id, snapshot = %db.snapshot_identifier, "restoring the stack's database");
            database::restore(
                &self.aws.rds,
                &id,
                db,
                &self.security_groups(),
                &self.tags(&format!("{stack}/database")),
            )
            .await?;
        } else if let Some(prior_db) = self
            .prior
            .and_then(|p| stack_of(p, stack))
            .and_then(|b| b.database.as_ref())
        {
            let same = prior_db.instance_class == db.instance_class
                && prior_db.multi_az == db.multi_az
                && prior_db.deletion_protection == db.deletion_protection;
            if !same && previous.is_none() {
                database::modify(&self.aws.rds, &id, db).await?;
            } else {
                changed = false;
            }
        } else {
            changed = false;
        }
        if let Some(old) = &previous {
            // The old database stays until the services have moved to the new one.
            let final_snapshot = self
                .prior
                .and_then(|p| stack_of(p, stack))
                .and_then(|b| b.database.as_ref())
                .and_then(|d| d.final_snapshot_identifier.clone());
            let old = old.clone();
            self.op.update_private(|p| {
                if !p.retiring.iter().any(|r| r.instance == old) {
                    p.retiring.push(super::model::Retiring {
                        instance: old,
                        final_snapshot,
                    });
                }
            });
        }
        self.record(|s| {
            s.databases
                .get_or_insert_with(BTreeMap::new)
                .insert(stack.to_owned(), id.clone());
        })?;
        // An untouched, available database needs no wait (the waiter's first
        // poll comes after a minute, as terraform-provider-aws's does).
        let inst = match observed {
            Observed::Status(status, inst)
                if !changed && rds::INSTANCE_TARGET.contains(&status.as_str()) =>
            {
                Some(inst)
            }
            _ => {
                rds::instance_available(&id)
                    .wait(self.op, || rds::describe_instance(&self.aws.rds, &id))
                    .await?
            }
        };
        match inst.and_then(|i| i.address.zip(i.port)) {
            Some(ep) => Ok(ep),
            None => Err(Diagnostic::error(
                "Database without an endpoint",
                format!("DB instance {id:?} is available but has no endpoint."),
            )
            .into()),
        }
    }

    async fn broker(
        &self,
        stack: &str,
        b: &super::model::BrokerBlock,
    ) -> Result<mq::Broker, Diagnostics> {
        let known = self
            .prior
            .and_then(|p| p.brokers.as_ref())
            .and_then(|m| m.get(stack))
            .cloned();
        let existing = match &known {
            Some(id) => mq::describe_broker(&self.aws.mq, id).await?,
            None => Observed::NotFound,
        };
        let prior_block = self
            .prior
            .and_then(|p| stack_of(p, stack))
            .and_then(|s| s.broker.as_ref());
        let change = prior_block
            .map(|old| mq::BrokerChange::between(old, b))
            .filter(|c| !c.is_empty());
        if let (Some(id), Observed::Status(..), Some(change)) = (&known, &existing, &change) {
            return mq::update_broker(&self.aws.mq, self.op, id, b, change).await;
        }
        let id = match (known, existing) {
            (_, Observed::Status(state, broker)) if state == "RUNNING" => {
                // Running already: nothing to wait for.
                return Ok(broker);
            }
            (Some(id), Observed::Status(..)) => id,
            _ => {
                let name = broker_name(&self.config.name, stack);
                tracing::info!(stack, broker = %name, "creating the stack's broker");
                mq::create_broker(
                    &self.aws.mq,
                    &name,
                    b,
                    self.config.subnet_ids.as_deref().unwrap_or_default(),
                    &self.security_groups(),
                    &self.tags(&format!("{stack}/broker")),
                )
                .await?
            }
        };
        self.record(|s| {
            s.brokers
                .get_or_insert_with(BTreeMap::new)
                .insert(stack.to_owned(), id.clone());
        })?;
        mq::wait_running(&self.aws.mq, self.op, &id).await
    }

    fn security_groups(&self) -> Vec<String> {
        self.config.security_group_ids.clone().unwrap_or_default()
    }

    fn task_context(&self) -> TaskContext {
        TaskContext {
            deployment: self.config.name.clone(),
            region: self.region.clone(),
            execution_role_arn: self.config.execution_role_arn.clone(),
            task_role_arn: self.config.task_role_arn.clone(),
            log_group: self.config.log_group.clone(),
        }
    }

    /// Registers what changed, creates or rolls the services, waits for them
    /// all, and removes services no longer configured.
    async fn services(
        &self,
        cluster: &str,
        wirings: &BTreeMap<String, StackWiring>,
        namespace: Option<&Namespace>,
    ) -> Result<(), Diagnostics> {
        let ctx = self.task_context();
        let placement = Placement::Fargate(Network {
            subnets: self.config.subnet_ids.clone().unwrap_or_default(),
            security_groups: self.security_groups(),
            public_ip: self.config.assign_public_ip.unwrap_or(false),
        });
        let mut rollouts = Vec::new();
        for svc in &self.config.service {
            let Some(kind) = catalogue::service(&svc.name) else {
                return Err(Diagnostic::error("Unknown service", svc.name.clone()).into());
            };
            let Some(w) = wirings.get(&svc.stack) else {
                return Err(Diagnostic::error("Unknown stack", svc.stack.clone()).into());
            };
            let target_group = match (
                svc.name.as_str(),
                stack_of(self.config, &svc.stack).and_then(|b| b.target_group_arn.as_deref()),
            ) {
                ("cortex", Some(tg)) => Some((tg, kind.name, kind.port)),
                _ => None,
            };
            let key = format!("{}/{}", svc.stack, svc.name);
            let name = service_name(&svc.stack, &svc.name);
            let registry = match namespace {
                Some(ns) => Some(self.registry(ns, &key, &name).await?),
                None => None,
            };
            rollouts.push(Rollout {
                key,
                name,
                spec: wiring::task_spec(&ctx, kind, svc, w),
                desired: svc.desired_count.unwrap_or(1),
                target_group,
                registry,
            });
        }
        let configured: Vec<String> = rollouts.iter().map(|r| r.key.clone()).collect();
        try_join_all(
            rollouts
                .into_iter()
                .map(|r| self.roll_out(cluster, &placement, r)),
        )
        .await?;
        self.remove_unconfigured(cluster, &configured).await
    }

    /// The `single_instance` kind: one task definition with every service,
    /// the database and the broker, run by one service on the cluster's EC2
    /// capacity.
    async fn single_instance(&self, cluster: &str) -> Result<(), Diagnostics> {
        let Some(block) = &self.config.single_instance else {
            return Err(Diagnostic::error(
                "Missing single_instance block",
                "A `single_instance` deployment needs its `single_instance` block.",
            )
            .into());
        };
        let mut services = Vec::new();
        for svc in &self.config.service {
            let Some(kind) = catalogue::service(&svc.name) else {
                return Err(Diagnostic::error("Unknown service", svc.name.clone()).into());
            };
            services.push((kind, svc));
        }
        let endpoints = single::endpoints_with_urls(block, services.iter().map(|(k, _)| k.name));
        self.record(|s| {
            s.endpoints = Some(BTreeMap::from([(single::STACK.to_owned(), endpoints)]));
        })?;
        let placement = match &block.capacity_provider {
            Some(cp) => Placement::CapacityProvider(cp.clone()),
            None => Placement::Ec2,
        };
        let rollout = Rollout {
            key: single::KEY.to_owned(),
            name: service_name(single::STACK, single::SERVICE),
            spec: single::task_spec(&self.task_context(), block, &services),
            desired: 1,
            target_group: None,
            registry: None,
        };
        self.roll_out(cluster, &placement, rollout).await?;
        self.remove_unconfigured(cluster, &[single::KEY.to_owned()])
            .await
    }

    /// Registers a new revision when the registered one differs, creates or
    /// updates the service, waits for it to be steady, and deregisters the
    /// revision it replaced.
    async fn roll_out(
        &self,
        cluster: &str,
        placement: &Placement,
        r: Rollout<'_>,
    ) -> Result<(), Diagnostics> {
        let Rollout {
            key,
            name,
            spec,
            desired,
            target_group,
            registry,
        } = r;
        let known = self
            .snapshot()
            .task_definitions
            .and_then(|m| m.get(&key).cloned());
        let registered = match &known {
            Some(arn) => ecs::describe_task_definition(&self.aws.ecs, arn).await?,
            None => None,
        };
        let td = match (&known, registered) {
            (Some(arn), Some(registered)) if spec.differences(&registered).is_empty() => {
                arn.clone()
            }
            (_, registered) => {
                if let Some(registered) = registered {
                    tracing::info!(service = %key, changes = ?spec.differences(&registered), "registering a new task definition revision");
                }
                ecs::register(&self.aws.ecs, &spec, &self.tags(&key)).await?
            }
        };
        self.record(|s| {
            s.task_definitions
                .get_or_insert_with(BTreeMap::new)
                .insert(key.clone(), td.clone());
        })?;
        let deployment = match ecs::describe_service(&self.aws.ecs, cluster, &name).await? {
            Observed::NotFound => {
                let tags = self.tags(&key);
                let new = NewService {
                    cluster,
                    name: &name,
                    task_definition: &td,
                    desired,
                    placement,
                    target_group,
                    registry: registry.as_deref(),
                    tags: &tags,
                };
                let (arn, dep) = ecs::create_service(&self.aws.ecs, &new).await?;
                self.record(|s| {
                    s.services
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key.clone(), arn.clone());
                })?;
                Some(dep)
            }
            Observed::Status(_, d) => {
                self.record(|s| {
                    s.services
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key.clone(), d.arn.clone());
                })?;
                let wanted = match placement {
                    Placement::CapacityProvider(cp) => Some(cp.as_str()),
                    Placement::Fargate(_) | Placement::Ec2 => None,
                };
                let change = ecs::ServiceChange {
                    capacity: (d.capacity_provider.as_deref() != wanted).then_some(wanted),
                    registry: (d.registries.as_slice() != registry.as_slice())
                        .then_some(registry.as_deref()),
                };
                if d.view.task_definition != td
                    || d.view.desired != i32::try_from(desired).unwrap_or(i32::MAX)
                    || !change.is_empty()
                {
                    Some(
                        ecs::update_service(&self.aws.ecs, cluster, &name, &td, desired, &change)
                            .await?,
                    )
                } else {
                    None
                }
            }
        };
        if let Some(dep) = deployment {
            let expected = Expected {
                task_definition: &td,
                deployment_id: dep.as_deref(),
            };
            ecs::wait_steady(&self.aws.ecs, self.op, cluster, &name, &expected).await?;
        }
        if let Some(old) = known.filter(|old| *old != td) {
            ecs::deregister(&self.aws.ecs, &old).await?;
        }
        Ok(())
    }

    /// Deletes the services in state that `configured` no longer holds.
    async fn remove_unconfigured(
        &self,
        cluster: &str,
        configured: &[String],
    ) -> Result<(), Diagnostics> {
        let gone: Vec<(String, String)> = self
            .snapshot()
            .services
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !configured.contains(k))
            .collect();
        for (key, _) in gone {
            let Some((stack, svc)) = key.split_once('/') else {
                continue;
            };
            ecs::delete_service(&self.aws.ecs, self.op, cluster, &service_name(stack, svc)).await?;
            let td = self
                .snapshot()
                .task_definitions
                .and_then(|m| m.get(&key).cloned());
            if let Some(td) = td {
                ecs::deregister(&self.aws.ecs, &td).await?;
            }
            self.record(|s| {
                if let Some(m) = s.services.as_mut() {
                    m.remove(&key);
                }
                if let Some(m) = s.task_definitions.as_mut() {
                    m.remove(&key);
                }
            })?;
        }
        Ok(())
    }

    /// Deletes databases the services no longer use (after a snapshot change).
    async fn retire_databases(&self) -> Result<(), Diagnostics> {
        for r in self.op.private().retiring {
            tracing::info!(instance = %r.instance, "deleting the database the services moved away from");
            delete_database(
                &self.aws.rds,
                self.op,
                &r.instance,
                r.final_snapshot.as_deref(),
            )
            .await?;
            self.op
                .update_private(|p| p.retiring.retain(|x| x.instance != r.instance));
        }
        Ok(())
    }
}

/// Deletes a database (with its final snapshot, when one is named) and
/// waits until it is gone.
pub async fn delete_database(
    rds_client: &aws_sdk_rds::Client,
    op: &Op<DeploymentPrivate>,
    id: &str,
    final_snapshot: Option<&str>,
) -> Result<(), Diagnostics> {
    if rds::delete_instance_keeping(rds_client, id, final_snapshot).await? {
        rds::instance_deleted(id)
            .wait(op, || rds::describe_instance(rds_client, id))
            .await?;
    }
    Ok(())
}
