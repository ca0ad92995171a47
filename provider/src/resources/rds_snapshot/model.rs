//! The `ep_rds_snapshot` model: configuration and state as one struct.
//! Field names are the schema's attribute names; the framework's model
//! check proves they agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::{Applying, Phase};

/// The `tunnel` block: where the tool reaches the database instead of
/// the instance's endpoint (a tunnel, a proxy, or a test database).
/// (`connection` is a block name Terraform keeps for provisioners.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TunnelBlock {
    /// Host name or address.
    pub host: String,
    /// Port (default 3306).
    pub port: Option<u16>,
}

/// The `phase_timeouts` block: limits of each phase inside the create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimeoutsBlock {
    /// Creating or restoring the instance until it is available (and deleting it).
    pub instance: Option<String>,
    /// Running the Data Population tool.
    pub tool: Option<String>,
    /// Creating the snapshot until it is available.
    pub snapshot: Option<String>,
}

/// The `ecs` block: where and how the `ecs` runner's Fargate task runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EcsBlock {
    /// Cluster the task runs in.
    pub cluster_arn: String,
    /// The `data-pop-tool` image.
    pub image: String,
    /// Subnets of the task's network interface.
    pub subnet_ids: Vec<String>,
    /// Security groups of the task's network interface.
    pub security_group_ids: Vec<String>,
    /// Whether the task gets a public IP (default false).
    pub assign_public_ip: Option<bool>,
    /// Role ECS uses to pull the image, read the secrets and write the log.
    pub execution_role_arn: String,
    /// Role the container runs as.
    pub task_role_arn: Option<String>,
    /// Task CPU units (default 1024).
    pub cpu: Option<u32>,
    /// Task memory, MiB (default 4096).
    pub memory: Option<u32>,
    /// CloudWatch Logs group of the container's output (awslogs).
    pub log_group: String,
}

/// Configuration and state of `ep_rds_snapshot`. The default (every
/// string empty, every option null) is the base that import and the
/// fingerprint fill in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SnapshotModel<P: Phase = Applying> {
    // What the snapshot holds.
    pub name: P::Of<String>,
    pub deployment_package: P::Of<String>,
    pub environment: P::Of<String>,
    pub command: P::Of<Option<String>>,
    pub schema_name: P::Of<Option<String>>,
    pub database_username: P::Of<Option<String>>,
    pub database_password: P::Of<String>,
    pub extra_properties: P::Of<Option<BTreeMap<String, String>>>,
    pub engine: P::Of<Option<String>>,
    pub engine_version: P::Of<Option<String>>,
    pub source_snapshot_identifier: P::Of<Option<String>>,
    // The temporary instance.
    pub instance_class: P::Of<Option<String>>,
    pub allocated_storage: P::Of<Option<u32>>,
    pub db_subnet_group_name: P::Of<Option<String>>,
    pub vpc_security_group_ids: P::Of<Option<Vec<String>>>,
    pub parameter_group_name: P::Of<Option<String>>,
    pub master_username: P::Of<Option<String>>,
    pub master_password: P::Of<Option<String>>,
    pub master_password_wo: P::Of<Option<String>>,
    pub runner: P::Of<Option<String>>,
    pub ecs: P::Of<Option<EcsBlock>>,
    pub keep_instance_on_failure: P::Of<Option<bool>>,
    pub retain_on_delete: P::Of<Option<bool>>,
    pub tunnel: P::Of<Option<TunnelBlock>>,
    pub phase_timeouts: P::Of<Option<PhaseTimeoutsBlock>>,
    // Outputs.
    pub id: P::Of<Option<String>>,
    pub snapshot_identifier: P::Of<Option<String>>,
    pub snapshot_arn: P::Of<Option<String>>,
    pub data_fingerprint: P::Of<Option<String>>,
    pub actual_engine_version: P::Of<Option<String>>,
    pub instance_identifier: P::Of<Option<String>>,
    pub created_at: P::Of<Option<String>>,
}

impl<P: Phase> SnapshotModel<P> {
    /// Copies every output of `prior` into this (planned) model.
    pub fn keep_outputs_of(&mut self, prior: &SnapshotModel) {
        self.id = P::wrap(prior.id.clone());
        self.snapshot_identifier = P::wrap(prior.snapshot_identifier.clone());
        self.snapshot_arn = P::wrap(prior.snapshot_arn.clone());
        self.data_fingerprint = P::wrap(prior.data_fingerprint.clone());
        self.actual_engine_version = P::wrap(prior.actual_engine_version.clone());
        self.instance_identifier = P::wrap(prior.instance_identifier.clone());
        self.created_at = P::wrap(prior.created_at.clone());
    }
}

/// What `ep_rds_snapshot` keeps beside its state: the parts of the data
/// fingerprint, so a plan can say which of them changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPrivate {
    /// Part name → its hash.
    #[serde(default)]
    pub fingerprint_parts: BTreeMap<String, String>,
    /// The `ep:generation` tag this object put on its snapshot: when the
    /// snapshot carries another one, a newer object (a replacement that
    /// adopted it) owns it and this one's delete leaves it alone.
    #[serde(default)]
    pub generation: Option<String>,
    /// The `ecs` runner's task while it may be running: an apply that was
    /// cut off without stopping it leaves it here for the next one to stop.
    #[serde(default)]
    pub ecs_task: Option<EcsTaskRecord>,
}

/// A Fargate task the `ecs` runner started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EcsTaskRecord {
    /// Its cluster.
    pub cluster: String,
    /// Its ARN.
    pub task_arn: String,
}
