//! Create: the temporary instance (new, restored, or adopted from an
//! interrupted run), the Data Population tool, the snapshot, and the
//! instance deleted again on every path out unless kept on failure.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_rds::Client;
use rand::distr::{Alphanumeric, SampleString};

use super::ecs_runner::{self, EcsRun, Names};
use super::model::{SnapshotModel, SnapshotPrivate};
use super::settings::{self, FingerprintInputs, RunSettings};
use crate::aws::rds::{self, Instance, Snapshot};
use crate::aws::ApiError;
use crate::datapop::contract::container_env;
use crate::datapop::{self, Connection, DataPopError, Request, Secret, DEFAULT_MAX_DISK};
use crate::framework::timeouts::format_duration;
use crate::framework::{Diagnostic, Diagnostics, Observed, Op};

/// Tag naming the resource type on everything this resource creates.
pub const TAG_RESOURCE: &str = "ep:terraform-resource";
/// Tag with the resource's `name`.
pub const TAG_NAME: &str = "ep:name";
/// Tag with the data fingerprint.
pub const TAG_FINGERPRINT: &str = "ep:data-fingerprint";
/// Tag naming which resource object owns the snapshot (see `SnapshotPrivate::generation`).
pub const TAG_GENERATION: &str = "ep:generation";
/// Prefix of tags recording configured inputs, for import.
pub const TAG_INPUT: &str = "ep:input:";

type Result<T> = std::result::Result<T, Diagnostics>;

/// The fingerprint of `m`'s data inputs (blocking work off the runtime).
pub async fn fingerprint_of(m: &SnapshotModel) -> Result<(String, BTreeMap<String, String>)> {
    let m = m.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let s = RunSettings::of(&m);
        settings::fingerprint(&FingerprintInputs {
            package: &m.deployment_package,
            environment: &m.environment,
            command: s.command,
            engine: &s.engine,
            engine_version: m.engine_version.as_deref(),
            source_snapshot: m.source_snapshot_identifier.as_deref(),
            schema: &s.schema,
            app_user: &s.app_user,
            extra_properties: m.extra_properties.as_ref(),
        })
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Diagnostic::error(
            "Cannot fingerprint the deployment package",
            e.to_string(),
        )
        .at(crate::framework::AttrPath::root("deployment_package"))
        .into()),
        Err(e) => Err(Diagnostic::error("Fingerprinting failed", e.to_string()).into()),
    }
}

/// The tags of the instance and the snapshot: who made them, and the
/// configured inputs (so an import reproduces the configuration).
pub fn tags_of(m: &SnapshotModel, fingerprint: &str) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    t.insert(TAG_RESOURCE.to_owned(), "ep_rds_snapshot".to_owned());
    t.insert(TAG_NAME.to_owned(), m.name.clone());
    t.insert(TAG_FINGERPRINT.to_owned(), fingerprint.to_owned());
    let inputs = [
        ("deployment_package", Some(&m.deployment_package)),
        ("environment", Some(&m.environment)),
        ("command", m.command.as_ref()),
        ("schema_name", m.schema_name.as_ref()),
        ("database_username", m.database_username.as_ref()),
        ("engine", m.engine.as_ref()),
        ("engine_version", m.engine_version.as_ref()),
        (
            "source_snapshot_identifier",
            m.source_snapshot_identifier.as_ref(),
        ),
    ];
    for (k, v) in inputs {
        // RDS tag values hold up to 256 characters.
        if let Some(v) = v.filter(|v| v.len() <= 256) {
            t.insert(format!("{TAG_INPUT}{k}"), v.clone());
        }
    }
    t
}

/// Runs `fut` within a phase limit named `phase_timeouts.<attr>`.
async fn phase<T>(
    limit: Duration,
    attr: &str,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Diagnostic::error(
            format!("Timed out after {}", format_duration(limit)),
            format!(
                "{what} did not finish within {}. Raise `phase_timeouts.{attr}` if it is \
                 expected to take longer (and `timeouts.create`, which bounds the whole run).",
                format_duration(limit)
            ),
        )
        .into()),
    }
}

/// A master password RDS accepts, made fresh for each run.
fn generate_password() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

/// One create, with its clients and settings.
pub struct Run<'a> {
    /// The RDS client.
    pub rds: Client,
    /// The create operation.
    pub op: &'a Op<SnapshotPrivate>,
    /// Settings with defaults applied.
    pub s: RunSettings,
    /// The model being created (identifiers set).
    pub m: SnapshotModel,
    /// The snapshot's identifier.
    pub snapshot_id: String,
    /// The temporary instance's identifier.
    pub instance_id: String,
    /// Tags of the instance and the snapshot.
    pub tags: BTreeMap<String, String>,
    /// The `ecs` runner's clients when the tool runs as a Fargate task.
    pub ecs: Option<ecs_runner::Clients>,
}

impl Run<'_> {
    async fn wait_instance(&self) -> Result<Instance> {
        let id = &self.instance_id;
        let waiter = rds::instance_available(id);
        let wait = waiter.wait(self.op, || rds::describe_instance(&self.rds, id));
        let inst = phase(
            self.s.instance_timeout,
            "instance",
            &format!("DB instance {id:?}"),
            async { Ok(wait.await?) },
        )
        .await?;
        inst.ok_or_else(|| {
            Diagnostic::error("DB instance vanished", format!("{id:?} is gone.")).into()
        })
    }

    async fn wait_instance_deleted(&self) -> Result<()> {
        let id = &self.instance_id;
        let waiter = rds::instance_deleted(id);
        let wait = waiter.wait(self.op, || rds::describe_instance(&self.rds, id));
        phase(
            self.s.instance_timeout,
            "instance",
            &format!("Deleting DB instance {id:?}"),
            async {
                wait.await?;
                Ok(())
            },
        )
        .await
    }

    async fn set_master_password(&self, password: &str) -> Result<()> {
        self.rds
            .modify_db_instance()
            .db_instance_identifier(&self.instance_id)
            .master_user_password(password)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| {
                ApiError::new(
                    "RDS ModifyDBInstance",
                    format!("DB instance {:?}", self.instance_id),
                    &e,
                )
            })?;
        Ok(())
    }

    /// Creates or restores the instance; `true` when its master password
    /// still has to be set (a restore cannot set it).
    async fn launch(&self, password: &str) -> Result<bool> {
        let m = &self.m;
        let subject = format!("DB instance {:?}", self.instance_id);
        if let Some(source) = &m.source_snapshot_identifier {
            self.rds
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&self.instance_id)
                .db_snapshot_identifier(source)
                .db_instance_class(&self.s.instance_class)
                .set_db_subnet_group_name(m.db_subnet_group_name.clone())
                .set_vpc_security_group_ids(m.vpc_security_group_ids.clone())
                .set_db_parameter_group_name(m.parameter_group_name.clone())
                .set_tags(Some(rds::tags(&self.tags)))
                .deletion_protection(false)
                .publicly_accessible(false)
                .send()
                .await
                .map_err(|e| ApiError::new("RDS RestoreDBInstanceFromDBSnapshot", subject, &e))?;
            return Ok(true);
        }
        let storage = i32::try_from(self.s.storage).unwrap_or(i32::MAX);
        self.rds
            .create_db_instance()
            .db_instance_identifier(&self.instance_id)
            .engine(&self.s.engine)
            .set_engine_version(m.engine_version.clone())
            .db_instance_class(&self.s.instance_class)
            .allocated_storage(storage)
            .master_username(&self.s.master_user)
            .master_user_password(password)
            .set_db_subnet_group_name(m.db_subnet_group_name.clone())
            .set_vpc_security_group_ids(m.vpc_security_group_ids.clone())
            .set_db_parameter_group_name(m.parameter_group_name.clone())
            .set_tags(Some(rds::tags(&self.tags)))
            .backup_retention_period(0)
            .deletion_protection(false)
            .publicly_accessible(false)
            .send()
            .await
            .map_err(|e| ApiError::new("RDS CreateDBInstance", subject, &e))?;
        Ok(false)
    }

    /// Makes sure the instance exists: adopts one left by an interrupted
    /// run, replaces a failed or deleting one, or launches a new one.
    /// `true` when its master password still has to be set.
    async fn ensure_instance(&self, password: &str) -> Result<bool> {
        match rds::describe_instance(&self.rds, &self.instance_id).await? {
            Observed::NotFound => self.launch(password).await,
            Observed::Status(status, _) if rds::INSTANCE_FAILURE.contains(&status.as_str()) => {
                tracing::warn!(instance = %self.instance_id, %status, "replacing a temporary instance left behind");
                rds::delete_instance(&self.rds, &self.instance_id).await?;
                self.wait_instance_deleted().await?;
                self.launch(password).await
            }
            Observed::Status(status, _) => {
                self.op.warn(
                    "Adopted a temporary DB instance",
                    format!(
                        "DB instance {:?} (status {status:?}) was left by an earlier run that did \
                         not finish; it is used for this run and deleted afterwards.",
                        self.instance_id
                    ),
                );
                Ok(true)
            }
        }
    }

    /// Runs the tool against the available instance.
    async fn populate(&self, inst: &Instance, password: &str) -> Result<()> {
        let (host, port) = match &self.m.tunnel {
            Some(c) => (c.host.clone(), c.port.unwrap_or(3306)),
            None => match (&inst.address, inst.port) {
                (Some(a), p) => (a.clone(), p.unwrap_or(3306)),
                (None, _) => {
                    return Err(Diagnostic::error(
                        "The DB instance has no endpoint",
                        format!(
                            "DB instance {:?} reports no address to connect to.",
                            self.instance_id
                        ),
                    )
                    .into())
                }
            },
        };
        let connection = Connection {
            host,
            port,
            schema: self.s.schema.clone(),
            username: self.s.app_user.clone(),
            password: Secret::new(self.m.database_password.clone()),
            reset_user: self.s.master_user.clone(),
            reset_password: Secret::new(password),
        };
        if let Some(clients) = &self.ecs {
            let Some(block) = &self.m.ecs else {
                return Err(Diagnostic::error(
                    "The ecs runner needs an ecs block",
                    "`runner = \"ecs\"` without an `ecs` block.",
                )
                .at(crate::framework::AttrPath::root("runner"))
                .into());
            };
            let env = container_env(&self.m.environment, self.s.command, &connection);
            let run = EcsRun {
                clients: clients.clone(),
                op: self.op,
                block,
                names: Names::of(&self.instance_id),
                tags: self.aws_tags(),
            };
            // The runner keeps the `tool` limit itself: it stops the task when it passes.
            return run.run(&env, self.s.tool_timeout).await;
        }
        let request = Request {
            package: self.m.deployment_package.clone().into(),
            environment: self.m.environment.clone(),
            command: self.s.command,
            connection,
            extra_properties: self.m.extra_properties.clone().unwrap_or_default(),
            work_parent: None,
            max_disk: DEFAULT_MAX_DISK,
        };
        let run = async {
            match datapop::run(&request, self.op.token()).await {
                Ok(o) if o.success() => Ok(()),
                Ok(o) => Err(Diagnostic::error(
                    "The Data Population tool failed",
                    format!(
                        "`data-population.sh {}` for environment {:?} exited with {}. Its last \
                         output:\n{}",
                        self.s.command.as_str(),
                        self.m.environment,
                        o.exit_code
                            .map_or("a signal".to_owned(), |c| format!("code {c}")),
                        o.tail.join("\n")
                    ),
                )
                .into()),
                Err(DataPopError::Cancelled { tail }) => {
                    let why = self
                        .op
                        .interrupted()
                        .unwrap_or(crate::framework::Interrupted::Stopped);
                    let mut d = why.to_diagnostic("the Data Population tool was running");
                    if !tail.is_empty() {
                        d.detail
                            .push_str(&format!("\nIts last output:\n{}", tail.join("\n")));
                    }
                    Err(d.into())
                }
                Err(e) => Err(Diagnostic::error(
                    "Cannot run the Data Population tool",
                    e.to_string(),
                )
                .into()),
            }
        };
        phase(self.s.tool_timeout, "tool", "The Data Population tool", run).await
    }

    async fn take_snapshot(&self) -> Result<Snapshot> {
        self.rds
            .create_db_snapshot()
            .db_snapshot_identifier(&self.snapshot_id)
            .db_instance_identifier(&self.instance_id)
            .set_tags(Some(rds::tags(&self.tags)))
            .send()
            .await
            .map_err(|e| {
                ApiError::new(
                    "RDS CreateDBSnapshot",
                    format!("DB snapshot {:?}", self.snapshot_id),
                    &e,
                )
            })?;
        self.checkpoint()?;
        self.wait_snapshot().await
    }

    async fn wait_snapshot(&self) -> Result<Snapshot> {
        let id = &self.snapshot_id;
        let waiter = rds::snapshot_available(id);
        let wait = waiter.wait(self.op, || rds::describe_snapshot(&self.rds, id));
        let snap = phase(
            self.s.snapshot_timeout,
            "snapshot",
            &format!("DB snapshot {id:?}"),
            async { Ok(wait.await?) },
        )
        .await?;
        snap.ok_or_else(|| {
            Diagnostic::error("DB snapshot vanished", format!("{id:?} is gone.")).into()
        })
    }

    /// Everything between an existing instance and an available snapshot.
    async fn populate_and_snapshot(&self, password: &str, set_password: bool) -> Result<Snapshot> {
        let mut inst = self.wait_instance().await?;
        if set_password {
            self.set_master_password(password).await?;
            inst = self.wait_instance().await?;
        }
        self.populate(&inst, password).await?;
        self.take_snapshot().await
    }

    /// Deletes the temporary instance; waits unless the run was interrupted
    /// (the next apply finishes the job then).
    async fn remove_instance(&self) -> Result<()> {
        let started = rds::delete_instance(&self.rds, &self.instance_id).await?;
        if !started || self.op.interrupted().is_some() {
            return Ok(());
        }
        match self.wait_instance_deleted().await {
            // AWS accepted the delete; only the wait was cut short. What the
            // run made (a snapshot) is not thrown away for that.
            Err(_) if self.op.interrupted().is_some() => {
                self.op.warn(
                    "Temporary DB instance still being deleted",
                    format!(
                        "The wait for DB instance {:?} to be deleted was interrupted; AWS goes on \
                         deleting it.",
                        self.instance_id
                    ),
                );
                Ok(())
            }
            other => other,
        }
    }

    /// The whole create.
    pub async fn execute(mut self) -> Result<SnapshotModel> {
        // A snapshot an interrupted run already took is adopted, not taken twice.
        if let Observed::Status(_, snap) =
            rds::describe_snapshot(&self.rds, &self.snapshot_id).await?
        {
            if snap.tags.get(TAG_FINGERPRINT) != self.tags.get(TAG_FINGERPRINT) {
                return Err(Diagnostic::error(
                    "The DB snapshot already exists",
                    format!(
                        "DB snapshot {:?} exists but was not made from these inputs (its {TAG_FINGERPRINT} \
                         tag differs). Import it, or delete it.",
                        self.snapshot_id
                    ),
                )
                .into());
            }
            self.checkpoint()?;
            let snap = self.wait_snapshot().await?;
            self.claim(&snap).await?;
            self.remove_instance().await?;
            self.fill(&snap);
            return Ok(self.m);
        }
        let password = self
            .m
            .master_password
            .clone()
            .or_else(|| self.m.master_password_wo.clone())
            .unwrap_or_else(generate_password);
        let set_password = self.ensure_instance(&password).await?;
        self.checkpoint()?;
        match self.populate_and_snapshot(&password, set_password).await {
            Ok(snap) => {
                self.remove_instance().await?;
                self.fill(&snap);
                Ok(self.m)
            }
            Err(mut d) => {
                if self.m.keep_instance_on_failure == Some(true) {
                    self.op.warn(
                        "Temporary DB instance kept",
                        format!(
                            "DB instance {:?} was kept for investigation (keep_instance_on_failure). \
                             The next apply deletes it before starting again.",
                            self.instance_id
                        ),
                    );
                } else if let Err(e) = self.remove_instance().await {
                    d.extend(e);
                }
                Err(d)
            }
        }
    }

    /// Makes an adopted snapshot this object's: its generation tag.
    async fn claim(&self, snap: &Snapshot) -> Result<()> {
        let (Some(arn), Some(generation)) = (&snap.arn, self.tags.get(TAG_GENERATION)) else {
            return Ok(());
        };
        let tag = rds::tags(&BTreeMap::from([(
            TAG_GENERATION.to_owned(),
            generation.clone(),
        )]));
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tag))
            .send()
            .await
            .map_err(|e| {
                ApiError::new(
                    "RDS AddTagsToResource",
                    format!("DB snapshot {:?}", self.snapshot_id),
                    &e,
                )
            })?;
        Ok(())
    }

    /// The tags of the `ecs` runner's parameters and task definition: the
    /// identifying ones only (ECS and SSM refuse some characters that RDS
    /// tags, such as a package path, may hold).
    fn aws_tags(&self) -> BTreeMap<String, String> {
        self.tags
            .iter()
            .filter(|(k, _)| [TAG_RESOURCE, TAG_NAME, TAG_FINGERPRINT].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn checkpoint(&self) -> Result<()> {
        self.op.checkpoint(&self.m)
    }

    fn fill(&mut self, snap: &Snapshot) {
        self.m.snapshot_arn = snap.arn.clone();
        self.m.created_at = snap.created_at.clone();
        self.m.actual_engine_version = snap.engine_version.clone();
    }
}
