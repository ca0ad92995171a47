//! `ep_rds_snapshot`: a data-populated RDS snapshot, as Elastic Path's
//! CreateRdsSnapshotAuthor/Live jobs made them.
//!
//! Plan computes the data fingerprint from the package's central
//! directories: equal inputs plan nothing; a changed fingerprint plans a
//! new snapshot and says which part changed. Create runs a temporary
//! instance through the Data Population tool (see [`apply`]); update
//! touches nothing in AWS (only how a future run would go changed); read
//! notices a snapshot deleted outside Terraform; delete removes the
//! snapshot (unless retained) and any temporary instance left behind.
//!
//! Timeouts: `timeouts.create` bounds the whole create; `phase_timeouts`
//! bounds its phases (instance 40m, tool 60m, snapshot 20m by default).

mod apply;
mod ecs_runner;
mod model;
mod schema;
pub(super) mod settings;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::provider::ProviderData;
use crate::aws::rds;
use crate::framework::{
    AttrPath, Diagnostic, Diagnostics, Known, Observed, Op, Operation, Plan, Planning, Schema,
    TimeoutDefaults, TypedResource,
};
use apply::{Run, TAG_FINGERPRINT, TAG_GENERATION, TAG_INPUT, TAG_NAME, TAG_RESOURCE};
use model::{SnapshotModel, SnapshotPrivate};
use settings::{RunSettings, Runner};

/// The `ep_rds_snapshot` resource.
pub struct RdsSnapshot {
    data: Arc<ProviderData>,
}

impl RdsSnapshot {
    pub(crate) fn new(data: Arc<ProviderData>) -> Self {
        RdsSnapshot { data }
    }

    async fn client(&self) -> Result<aws_sdk_rds::Client, Diagnostics> {
        let aws = self.data.aws()?;
        aws.rds()
            .await
            .map_err(|e| Diagnostic::error("Cannot set up the RDS client", e.to_string()).into())
    }

    /// The `ecs` runner's clients.
    async fn ecs_clients(&self) -> Result<ecs_runner::Clients, Diagnostics> {
        let aws = self.data.aws()?;
        let setup = |e: crate::aws::AwsError| -> Diagnostics {
            Diagnostic::error("Cannot set up the ecs runner's AWS clients", e.to_string()).into()
        };
        Ok(ecs_runner::Clients {
            ecs: aws.ecs().await.map_err(setup)?,
            ssm: aws.ssm().await.map_err(setup)?,
            logs: aws.logs().await.map_err(setup)?,
            region: aws.region().to_owned(),
        })
    }
}

/// Everything known that the fingerprint needs, as an applying model.
fn known_inputs(c: &SnapshotModel<Planning>) -> Option<SnapshotModel> {
    Some(SnapshotModel {
        name: c.name.get()?.clone(),
        deployment_package: c.deployment_package.get()?.clone(),
        environment: c.environment.get()?.clone(),
        command: c.command.get()?.clone(),
        schema_name: c.schema_name.get()?.clone(),
        database_username: c.database_username.get()?.clone(),
        database_password: String::new(),
        extra_properties: c.extra_properties.get()?.clone(),
        engine: c.engine.get()?.clone(),
        engine_version: c.engine_version.get()?.clone(),
        source_snapshot_identifier: c.source_snapshot_identifier.get()?.clone(),
        ..SnapshotModel::default()
    })
}

/// Sets the identifiers that follow from the name and the fingerprint.
fn set_identifiers<P: crate::framework::Phase>(m: &mut SnapshotModel<P>, name: &str, fp: &str) {
    let snap = settings::snapshot_identifier(name, fp);
    m.id = P::wrap(Some(snap.clone()));
    m.snapshot_identifier = P::wrap(Some(snap));
    m.data_fingerprint = P::wrap(Some(fp.to_owned()));
    m.instance_identifier = P::wrap(Some(settings::instance_identifier(name, fp)));
}

impl RdsSnapshot {
    /// Takes a new snapshot of `config`'s data (fingerprint `fp`).
    async fn take(
        &self,
        op: &Op<SnapshotPrivate>,
        mut config: SnapshotModel,
        fp: String,
        parts: std::collections::BTreeMap<String, String>,
    ) -> Result<SnapshotModel, Diagnostics> {
        op.update_private(|p| p.fingerprint_parts = parts);
        let name = config.name.clone();
        set_identifiers(&mut config, &name, &fp);
        let mut tags = apply::tags_of(&config, &fp);
        let generation = format!("{:016x}", rand::random::<u64>());
        tags.insert(TAG_GENERATION.to_owned(), generation.clone());
        op.update_private(|p| p.generation = Some(generation));
        let ecs = match Runner::parse(config.runner.as_deref()) {
            Ok(Runner::Ecs) => Some(self.ecs_clients().await?),
            Ok(Runner::Local) => None,
            Err(r) => {
                return Err(Diagnostic::error("Unsupported runner", format!("{r:?}"))
                    .at(AttrPath::root("runner"))
                    .into())
            }
        };
        let run = Run {
            ecs,
            rds: self.client().await?,
            op,
            s: RunSettings::of(&config),
            snapshot_id: settings::snapshot_identifier(&name, &fp),
            instance_id: settings::instance_identifier(&name, &fp),
            m: config,
            tags,
        };
        run.execute().await
    }
}

#[async_trait]
impl TypedResource for RdsSnapshot {
    type Model<P: crate::framework::Phase> = SnapshotModel<P>;
    type Private = SnapshotPrivate;

    fn type_name(&self) -> &'static str {
        "ep_rds_snapshot"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn timeouts(&self) -> TimeoutDefaults {
        TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(3 * 3600))
            .with(Operation::Update, Duration::from_secs(10 * 60))
            .with(Operation::Delete, Duration::from_secs(60 * 60))
    }

    async fn validate(&self, config: &SnapshotModel<Planning>) -> Diagnostics {
        let mut d = settings::validate(config);
        d.extend(
            settings::validate_known_package(&config.deployment_package, &config.environment).await,
        );
        d
    }

    async fn plan(&self, plan: &mut Plan<Self>) -> Result<(), Diagnostics> {
        let inputs = known_inputs(&plan.config);
        let computed = match &inputs {
            Some(m) => Some(apply::fingerprint_of(m).await?),
            None => None,
        };
        let prior = plan.prior.clone();
        match (prior, computed) {
            (Some(prior), Some((fp, _)))
                if prior.data_fingerprint.as_deref() == Some(fp.as_str()) =>
            {
                plan.planned.keep_outputs_of(&prior);
            }
            (prior, Some((fp, parts))) => {
                if let (Some(_), Some(name)) = (&prior, plan.config.name.get()) {
                    let changed: Vec<&str> = parts
                        .iter()
                        .filter(|(k, v)| plan.private.fingerprint_parts.get(*k) != Some(*v))
                        .map(|(k, _)| k.as_str())
                        .collect();
                    let why = if changed.is_empty() || plan.private.fingerprint_parts.is_empty() {
                        "the data inputs changed".to_owned()
                    } else {
                        format!("changed: {}", changed.join(", "))
                    };
                    plan.replace.push(AttrPath::root("data_fingerprint"));
                    plan.diagnostics.push(Diagnostic::warning(
                        "A new RDS snapshot is needed",
                        format!("ep_rds_snapshot {name:?} plans a new snapshot because its data fingerprint changed ({why})."),
                    ));
                }
                if let Some(name) = plan.config.name.get().cloned() {
                    set_identifiers(&mut plan.planned, &name, &fp);
                }
                plan.private.fingerprint_parts = parts;
            }
            (Some(_), None) => {
                // Inputs not known yet: the fingerprint may change, so the
                // snapshot may. Terraform requires the action planned now to be
                // the one applied, so this is a replacement.
                plan.replace.push(AttrPath::root("data_fingerprint"));
                for f in [
                    &mut plan.planned.id,
                    &mut plan.planned.snapshot_identifier,
                    &mut plan.planned.snapshot_arn,
                    &mut plan.planned.data_fingerprint,
                    &mut plan.planned.actual_engine_version,
                    &mut plan.planned.instance_identifier,
                    &mut plan.planned.created_at,
                ] {
                    *f = Known::Unknown;
                }
                plan.diagnostics.push(Diagnostic::warning(
                    "A new RDS snapshot may be needed",
                    "ep_rds_snapshot's data inputs (deployment_package, environment, …) are not \
                     known until apply, so neither is its data fingerprint: the snapshot is \
                     replaced, under the same identifier if the data turns out unchanged.",
                ));
            }
            (None, None) => {}
        }
        Ok(())
    }

    async fn create(
        &self,
        op: &Op<SnapshotPrivate>,
        config: SnapshotModel,
        _planned: SnapshotModel<Planning>,
    ) -> Result<SnapshotModel, Diagnostics> {
        let (fp, parts) = apply::fingerprint_of(&config).await?;
        self.take(op, config, fp, parts).await
    }

    async fn update(
        &self,
        _op: &Op<SnapshotPrivate>,
        prior: SnapshotModel,
        mut config: SnapshotModel,
        _planned: SnapshotModel<Planning>,
    ) -> Result<SnapshotModel, Diagnostics> {
        // Planned as an update only when the data fingerprint was known and
        // unchanged; only how a future run would go changed.
        let (fp, _) = apply::fingerprint_of(&config).await?;
        if prior.data_fingerprint.as_deref() != Some(fp.as_str()) {
            return Err(Diagnostic::error(
                "The data changed since the plan",
                "The deployment package's data-population content changed between plan and \
                 apply. Run terraform plan again.",
            )
            .at(AttrPath::root("deployment_package"))
            .into());
        }
        config.keep_outputs_of(&prior);
        Ok(config)
    }

    async fn read(
        &self,
        _op: &Op<SnapshotPrivate>,
        mut state: SnapshotModel,
    ) -> Result<Option<SnapshotModel>, Diagnostics> {
        let Some(id) = state.snapshot_identifier.clone() else {
            return Ok(None);
        };
        let rds = self.client().await?;
        match rds::describe_snapshot(&rds, &id).await? {
            Observed::Status(_, snap) => {
                state.snapshot_arn = snap.arn.or(state.snapshot_arn);
                state.created_at = snap.created_at.or(state.created_at);
                state.actual_engine_version = snap.engine_version.or(state.actual_engine_version);
                Ok(Some(state))
            }
            Observed::NotFound => {
                // A run that was interrupted may have left its instance: keep the
                // state so that the replacement's delete removes it.
                let leftover = match &state.instance_identifier {
                    Some(i) => {
                        matches!(rds::describe_instance(&rds, i).await?, Observed::Status(..))
                    }
                    None => false,
                };
                if leftover {
                    state.snapshot_arn = None;
                    Ok(Some(state))
                } else {
                    Ok(None)
                }
            }
        }
    }

    async fn delete(
        &self,
        op: &Op<SnapshotPrivate>,
        state: SnapshotModel,
    ) -> Result<(), Diagnostics> {
        let rds = self.client().await?;
        if let Some(id) = &state.snapshot_identifier {
            let owner = match rds::describe_snapshot(&rds, id).await? {
                Observed::Status(_, snap) => snap.tags.get(TAG_GENERATION).cloned(),
                Observed::NotFound => None,
            };
            let ours = op.private().generation;
            if state.retain_on_delete == Some(true) {
                tracing::info!(snapshot = %id, "retain_on_delete: keeping the DB snapshot");
            } else if owner.is_some() && ours.is_some() && owner != ours {
                op.warn(
                    "DB snapshot kept",
                    format!(
                        "DB snapshot {id:?} now belongs to the object that replaced this one \
                         (it adopted the snapshot, whose data did not change), so it is kept."
                    ),
                );
            } else if rds::delete_snapshot(&rds, id).await? {
                rds::snapshot_deleted(id)
                    .wait(op, || rds::describe_snapshot(&rds, id))
                    .await?;
            }
        }
        if let Some(inst) = &state.instance_identifier {
            // A run cut off hard may have left its task, parameters and task
            // definition; none of them outlives the instance they were for.
            let ecs_runner_used = state.runner.as_deref() == Some("ecs");
            if ecs_runner_used || op.private().ecs_task.is_some() {
                let clients = self.ecs_clients().await?;
                ecs_runner::clean_after(&clients, op, inst).await?;
            }
            if rds::delete_instance(&rds, inst).await? {
                rds::instance_deleted(inst)
                    .wait(op, || rds::describe_instance(&rds, inst))
                    .await?;
            }
        }
        Ok(())
    }

    async fn import(
        &self,
        _op: &Op<SnapshotPrivate>,
        id: &str,
    ) -> Result<SnapshotModel, Diagnostics> {
        let rds = self.client().await?;
        let snap = match rds::describe_snapshot(&rds, id).await? {
            Observed::Status(_, s) => s,
            Observed::NotFound => {
                return Err(Diagnostic::error(
                    "Cannot import",
                    format!("There is no DB snapshot {id:?}."),
                )
                .into())
            }
        };
        let (Some(name), Some(fp)) = (snap.tags.get(TAG_NAME), snap.tags.get(TAG_FINGERPRINT))
        else {
            return Err(Diagnostic::error(
                "Cannot import",
                format!(
                    "DB snapshot {id:?} was not made by ep_rds_snapshot (it has no {TAG_NAME} and \
                     {TAG_FINGERPRINT} tags; {TAG_RESOURCE} marks those that were)."
                ),
            )
            .into());
        };
        let input = |k: &str| snap.tags.get(&format!("{TAG_INPUT}{k}")).cloned();
        let mut m = SnapshotModel {
            name: name.clone(),
            deployment_package: input("deployment_package").unwrap_or_default(),
            environment: input("environment").unwrap_or_default(),
            command: input("command"),
            schema_name: input("schema_name"),
            database_username: input("database_username"),
            engine: input("engine"),
            engine_version: input("engine_version"),
            source_snapshot_identifier: input("source_snapshot_identifier"),
            snapshot_arn: snap.arn.clone(),
            actual_engine_version: snap.engine_version.clone(),
            created_at: snap.created_at.clone(),
            ..SnapshotModel::default()
        };
        set_identifiers(&mut m, name, fp);
        m.id = Some(id.to_owned());
        m.snapshot_identifier = Some(id.to_owned());
        Ok(m)
    }
}
