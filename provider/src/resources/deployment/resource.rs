//! `ep_deployment` on the typed framework: plan → create/update → read →
//! delete → import.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::apply::{self, service_name, stack_of, Clients, Converge};
use super::changes;
use super::discovery;
use super::ecs;
use super::import;
use super::model::{DeploymentModel, DeploymentPrivate};
use super::mq;
use super::registration;
use super::schema;
use super::validate;
use crate::aws::rds;
use crate::framework::timeouts::{Operation, TimeoutDefaults};
use crate::framework::{
    AttrPath, Diagnostic, Diagnostics, Known, Observed, Op, Phase, Plan, Planning, Schema,
    TypedResource,
};
use crate::resources::provider::ProviderData;

/// The `ep_deployment` resource.
pub struct Deployment {
    data: Arc<ProviderData>,
}

impl Deployment {
    pub(crate) fn new(data: Arc<ProviderData>) -> Self {
        Deployment { data }
    }

    async fn clients(&self) -> Result<(Clients, String), Diagnostics> {
        let aws = self.data.aws()?;
        let setup = |e: crate::aws::AwsError| {
            Diagnostics::from(Diagnostic::error(
                "Cannot set up the AWS clients",
                e.to_string(),
            ))
        };
        let clients = Clients {
            rds: aws.rds().await.map_err(setup)?,
            mq: aws.mq().await.map_err(setup)?,
            ecs: aws.ecs().await.map_err(setup)?,
            discovery: aws.servicediscovery().await.map_err(setup)?,
        };
        Ok((clients, aws.region().to_owned()))
    }

    async fn converge(
        &self,
        op: &Op<DeploymentPrivate>,
        config: DeploymentModel,
        prior: Option<&DeploymentModel>,
    ) -> Result<DeploymentModel, Diagnostics> {
        // Values plan could not judge (unknown then) are judged now, before any call.
        let invalid = validate::validate_applying(&config);
        if invalid.has_errors() {
            return Err(invalid);
        }
        let (clients, region) = self.clients().await?;
        missing_snapshots(&clients.rds, &config, prior).await?;
        Converge::new(op, clients, region, &config, prior)
            .run()
            .await
    }
}

/// A snapshot to restore that does not exist stops the apply before anything
/// is created, on its attribute. Not at plan: the snapshot is usually made
/// by an `ep_rds_snapshot` in the same apply, its identifier known before it
/// exists. Only a snapshot new to the deployment is looked up.
async fn missing_snapshots(
    rds_client: &aws_sdk_rds::Client,
    config: &DeploymentModel,
    prior: Option<&DeploymentModel>,
) -> Result<(), Diagnostics> {
    let database =
        |m: &DeploymentModel, stack: &str| stack_of(m, stack).and_then(|b| b.database.clone());
    let mut missing = Diagnostics::new();
    for stack in ["author", "live"] {
        let Some(db) = database(config, stack) else {
            continue;
        };
        let known = prior
            .and_then(|p| database(p, stack))
            .is_some_and(|old| old.snapshot_identifier == db.snapshot_identifier);
        if known {
            continue;
        }
        let id = &db.snapshot_identifier;
        if let Observed::NotFound = rds::describe_snapshot(rds_client, id).await? {
            missing.push(
                Diagnostic::error(
                    "Snapshot not found",
                    format!("There is no DB snapshot {id:?} to restore the {stack} database from."),
                )
                .at(AttrPath::root(stack)
                    .attr("database")
                    .attr("snapshot_identifier")),
            );
        }
    }
    if missing.has_errors() {
        return Err(missing);
    }
    Ok(())
}

/// The configuration, when every part the change summary reads is known.
fn known_config(c: &DeploymentModel<Planning>) -> Option<DeploymentModel> {
    Some(DeploymentModel {
        kind: c.kind.get()?.clone(),
        single_instance: c.single_instance.get()?.clone(),
        author: c.author.get()?.clone(),
        live: c.live.get()?.clone(),
        service: c.service.get()?.clone(),
        service_discovery: c.service_discovery.get()?.clone(),
        execution_role_arn: c.execution_role_arn.get()?.clone(),
        task_role_arn: c.task_role_arn.get()?.clone(),
        log_group: c.log_group.get()?.clone(),
        ..DeploymentModel::default()
    })
}

/// What a refresh found wrong with the parts in state.
fn drift(problems: &[String]) -> String {
    format!("drifted: {}", problems.join("; "))
}

#[async_trait]
impl TypedResource for Deployment {
    type Model<P: Phase> = DeploymentModel<P>;
    type Private = DeploymentPrivate;

    fn type_name(&self) -> &'static str {
        "ep_deployment"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn timeouts(&self) -> TimeoutDefaults {
        // RDS 40m and MQ 30m run side by side, then ECS 20m.
        TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(90 * 60))
            .with(Operation::Update, Duration::from_secs(90 * 60))
            .with(Operation::Delete, Duration::from_secs(60 * 60))
    }

    async fn validate(&self, config: &DeploymentModel<Planning>) -> Diagnostics {
        validate::validate(config)
    }

    async fn plan(&self, plan: &mut Plan<Self>) -> Result<(), Diagnostics> {
        let Some(prior) = &plan.prior else {
            return Ok(());
        };
        // The plan says what the update does in Elastic Path terms, as far
        // as the configuration is known.
        if let Some(config) = known_config(&plan.config) {
            for stack in ["author", "live"] {
                let mode = |m: &DeploymentModel| {
                    stack_of(m, stack)
                        .and_then(|s| s.broker.as_ref())
                        .map(|b| b.deployment_mode.clone().unwrap_or_default())
                };
                if let (Some(old), Some(new)) = (mode(prior), mode(&config)) {
                    if old != new {
                        plan.diagnostics.push(
                            Diagnostic::error(
                                "Broker deployment mode cannot change",
                                "Amazon MQ cannot change a broker's deployment mode in place; \
                                 replace the deployment (or keep the mode).",
                            )
                            .at(AttrPath::root(stack).attr("broker").attr("deployment_mode")),
                        );
                    }
                }
            }
            let lines = changes::describe(prior, &config);
            if !lines.is_empty() {
                plan.diagnostics.push(Diagnostic::warning(
                    "Deployment changes",
                    format!("ep_deployment {:?}:\n- {}", prior.name, lines.join("\n- ")),
                ));
            }
        }
        // The endpoints name the services by their discovery names: a
        // service added or removed changes them.
        let names = |services: &[super::model::ServiceBlock]| {
            services
                .iter()
                .map(|s| (s.stack.clone(), s.name.clone()))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let services_moved = match plan.config.service.get() {
            Some(config) => names(config) != names(&prior.service),
            None => true,
        };
        if services_moved
            && (prior.service_discovery.is_some() || prior.kind == validate::SINGLE_INSTANCE)
        {
            plan.planned.endpoints = Known::Unknown;
        }
        // An interrupted apply or drift found by the refresh: plan the
        // repair, which the apply's convergence carries out.
        let status = prior.status.as_deref().unwrap_or("unknown");
        if status != "ready" {
            let p = &mut plan.planned;
            p.status = Known::Unknown;
            p.services = Known::Unknown;
            p.task_definitions = Known::Unknown;
            p.databases = Known::Unknown;
            p.brokers = Known::Unknown;
            p.endpoints = Known::Unknown;
            p.discovery_services = Known::Unknown;
            p.discovery_namespace_id = Known::Unknown;
            plan.diagnostics.push(Diagnostic::warning(
                "The deployment needs repair",
                format!(
                    "ep_deployment {:?} is {status}; this apply restores it.",
                    prior.name
                ),
            ));
        }
        Ok(())
    }

    async fn create(
        &self,
        op: &Op<DeploymentPrivate>,
        config: DeploymentModel,
        _planned: DeploymentModel<Planning>,
    ) -> Result<DeploymentModel, Diagnostics> {
        self.converge(op, config, None).await
    }

    async fn update(
        &self,
        op: &Op<DeploymentPrivate>,
        prior: DeploymentModel,
        config: DeploymentModel,
        _planned: DeploymentModel<Planning>,
    ) -> Result<DeploymentModel, Diagnostics> {
        self.converge(op, config, Some(&prior)).await
    }

    async fn read(
        &self,
        op: &Op<DeploymentPrivate>,
        mut state: DeploymentModel,
    ) -> Result<Option<DeploymentModel>, Diagnostics> {
        let (aws, _) = self.clients().await?;
        let mut problems = Vec::new();
        let mut parts = 0usize;
        if let Some(arn) = state.cluster_arn.clone() {
            if op.private().created_cluster && !ecs::cluster_active(&aws.ecs, &arn).await? {
                problems.push("the ECS cluster is gone".to_owned());
            }
        }
        if let Some(dbs) = state.databases.as_mut() {
            for (stack, id) in dbs.clone() {
                if let Observed::NotFound = rds::describe_instance(&aws.rds, &id).await? {
                    problems.push(format!("the {stack} database {id} is gone"));
                    dbs.remove(&stack);
                }
            }
            parts += dbs.len();
        }
        if let Some(brokers) = state.brokers.as_mut() {
            for (stack, id) in brokers.clone() {
                if let Observed::NotFound = mq::describe_broker(&aws.mq, &id).await? {
                    problems.push(format!("the {stack} broker {id} is gone"));
                    brokers.remove(&stack);
                }
            }
            parts += brokers.len();
        }
        let cluster = state.cluster_arn.clone().unwrap_or_default();
        let desired: BTreeMap<String, u32> = state
            .service
            .iter()
            .map(|s| {
                (
                    format!("{}/{}", s.stack, s.name),
                    s.desired_count.unwrap_or(1),
                )
            })
            .collect();
        if let Some(services) = state.services.as_mut() {
            for (key, _) in services.clone() {
                let Some((stack, svc)) = key.split_once('/') else {
                    continue;
                };
                match ecs::describe_service(&aws.ecs, &cluster, &service_name(stack, svc)).await? {
                    Observed::NotFound => {
                        problems.push(format!("the service {key} is gone"));
                        services.remove(&key);
                    }
                    Observed::Status(_, d) => {
                        let want = desired.get(&key).copied().unwrap_or(1);
                        if u32::try_from(d.view.desired).ok() != Some(want) {
                            problems.push(format!(
                                "the service {key} runs {} tasks instead of {want}",
                                d.view.desired
                            ));
                        }
                    }
                }
            }
            parts += services.len();
        }
        problems.extend(registration::drift(&aws, &mut state).await?);
        // A single-instance deployment's only part is its service: deleted
        // by hand it is drift to repair, as long as the user's cluster is there.
        if parts == 0 && state.kind == validate::SINGLE_INSTANCE && !cluster.is_empty() {
            parts = usize::from(ecs::cluster_active(&aws.ecs, &cluster).await?);
        }
        if parts == 0 && !problems.is_empty() {
            // Nothing of it is left: the deployment is gone.
            return Ok(None);
        }
        if !problems.is_empty() {
            state.status = Some(drift(&problems));
        }
        Ok(Some(state))
    }

    async fn delete(
        &self,
        op: &Op<DeploymentPrivate>,
        state: DeploymentModel,
    ) -> Result<(), Diagnostics> {
        let (aws, _) = self.clients().await?;
        if let Some(cluster) = &state.cluster_arn {
            let services = state.services.clone().unwrap_or_default();
            try_join_all(
                services
                    .keys()
                    .filter_map(|k| k.split_once('/'))
                    .map(|(stack, svc)| {
                        let aws = &aws;
                        async move {
                            ecs::delete_service(&aws.ecs, op, cluster, &service_name(stack, svc))
                                .await
                        }
                    }),
            )
            .await?;
        }
        for arn in state.task_definitions.clone().unwrap_or_default().values() {
            ecs::deregister(&aws.ecs, arn).await?;
        }
        registration::delete_all(&aws, op, &state).await?;
        let brokers = state.brokers.clone().unwrap_or_default();
        let dbs = state.databases.clone().unwrap_or_default();
        let final_snapshot = |stack: &str| {
            stack_of(&state, stack)
                .and_then(|b| b.database.as_ref())
                .and_then(|d| d.final_snapshot_identifier.clone())
        };
        let retiring = op.private().retiring;
        let broker_deletes = brokers.values().map(|id| {
            let aws = &aws;
            async move { mq::delete_broker(&aws.mq, op, id).await }
        });
        let db_deletes = dbs
            .iter()
            .map(|(stack, id)| (id.clone(), final_snapshot(stack)))
            .chain(retiring.into_iter().map(|r| (r.instance, r.final_snapshot)))
            .map(|(id, snap)| {
                let aws = &aws;
                async move { apply::delete_database(&aws.rds, op, &id, snap.as_deref()).await }
            });
        let (b, d) = tokio::join!(try_join_all(broker_deletes), try_join_all(db_deletes));
        b?;
        d?;
        if op.private().created_cluster {
            if let Some(cluster) = &state.cluster_arn {
                ecs::delete_cluster(&aws.ecs, cluster).await?;
            }
        }
        Ok(())
    }

    async fn import(
        &self,
        op: &Op<DeploymentPrivate>,
        id: &str,
    ) -> Result<DeploymentModel, Diagnostics> {
        let (aws, _) = self.clients().await?;
        if let Some((name, cluster)) = id.split_once('@') {
            // Single instance: the cluster is the user's, never deleted.
            return import::find_single(&aws, name, cluster).await;
        }
        let model = import::find(&aws, id).await?;
        // Found by the name this provider gives the clusters it creates.
        op.update_private(|p| p.created_cluster = true);
        if let Some(ns) = &model.discovery_namespace_id {
            if discovery::owned_by(&aws.discovery, ns, id).await? {
                op.update_private(|p| p.owned_namespaces = vec![ns.clone()]);
            }
        }
        Ok(model)
    }
}
