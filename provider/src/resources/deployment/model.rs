//! The `ep_deployment` model: configuration and state as one struct. Field
//! names are the schema's attribute names; the framework's model check
//! proves they agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::framework::{Applying, Phase};

/// The `database` block of a stack: an RDS instance restored from a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseBlock {
    /// Snapshot to restore (e.g. `ep_rds_snapshot.author.snapshot_identifier`).
    pub snapshot_identifier: String,
    /// Instance class (default `db.t3.medium`).
    pub instance_class: Option<String>,
    /// Multi-AZ (default false).
    pub multi_az: Option<bool>,
    /// Deletion protection (default false): a protected database stops the destroy.
    pub deletion_protection: Option<bool>,
    /// Snapshot taken when the database is deleted; none when null.
    pub final_snapshot_identifier: Option<String>,
    /// DB subnet group.
    pub db_subnet_group_name: Option<String>,
    /// Commerce schema (default `commercedb`).
    pub schema_name: Option<String>,
    /// Application user the services connect as (default `ep`).
    pub username: Option<String>,
    /// ARN of the SSM parameter or Secrets Manager secret holding its password.
    pub password_secret_arn: String,
}

#[cfg(test)]
impl DatabaseBlock {
    /// A block with only the required settings, for tests.
    pub fn for_test(snapshot: &str, secret_arn: &str) -> Self {
        DatabaseBlock {
            snapshot_identifier: snapshot.to_owned(),
            instance_class: None,
            multi_az: None,
            deletion_protection: None,
            final_snapshot_identifier: None,
            db_subnet_group_name: None,
            schema_name: None,
            username: None,
            password_secret_arn: secret_arn.to_owned(),
        }
    }
}

#[cfg(test)]
impl ServiceBlock {
    /// A service with only the required settings, for tests.
    pub fn for_test(name: &str, stack: &str, image: &str) -> Self {
        ServiceBlock {
            name: name.to_owned(),
            stack: stack.to_owned(),
            image: image.to_owned(),
            cpu: None,
            memory: None,
            desired_count: None,
            environment: None,
            secrets: None,
            health_check_path: None,
        }
    }
}

#[cfg(test)]
impl SingleInstanceBlock {
    /// A block with only the required settings, for tests.
    pub fn for_test(database_image: &str, activemq_image: &str, secret_arn: &str) -> Self {
        SingleInstanceBlock {
            database_image: database_image.to_owned(),
            activemq_image: activemq_image.to_owned(),
            schema_name: None,
            username: None,
            password_secret_arn: secret_arn.to_owned(),
            commerce_environment: None,
            database_memory: None,
            activemq_memory: None,
            cortex_host_port: None,
            cm_host_port: None,
            activemq_console_host_port: None,
            capacity_provider: None,
        }
    }
}

/// One `user` block of a broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerUser {
    /// User name.
    pub username: String,
    /// Password (sensitive, kept in state), or else `password_wo`.
    pub password: Option<String>,
    /// Write-only password: in the configuration during apply, in no state.
    pub password_wo: Option<String>,
    /// A change sends `password_wo` to the broker again.
    pub password_wo_version: Option<u64>,
    /// Access to the ActiveMQ web console.
    pub console_access: Option<bool>,
}

impl BrokerUser {
    /// The password to send to Amazon MQ.
    pub fn secret(&self) -> &str {
        self.password
            .as_deref()
            .or(self.password_wo.as_deref())
            .unwrap_or_default()
    }

    /// Equal in everything a state can hold: a write-only password is never
    /// in the prior state, so only its version tells that it changed.
    pub fn same_as_stored(&self, stored: &BrokerUser) -> bool {
        self.username == stored.username
            && self.password == stored.password
            && self.password_wo_version == stored.password_wo_version
            && self.console_access == stored.console_access
    }
}

/// The `broker` block of a stack: an Amazon MQ ActiveMQ broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerBlock {
    /// ActiveMQ version, `major.minor` (default `5.18`).
    pub engine_version: Option<String>,
    /// Instance type (default `mq.t3.micro`).
    pub instance_type: Option<String>,
    /// `SINGLE_INSTANCE` (default) or `ACTIVE_STANDBY_MULTI_AZ`.
    pub deployment_mode: Option<String>,
    /// Users; at least one.
    pub user: Vec<BrokerUser>,
}

/// An `author` or `live` block: the stack's database and broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StackBlock {
    /// `EP_COMMERCE_ENVNAME` of the stack's services (default: the stack's name).
    pub commerce_environment: Option<String>,
    /// Target group Cortex registers with (a load balancer in front of it).
    pub target_group_arn: Option<String>,
    /// The database.
    pub database: Option<DatabaseBlock>,
    /// The broker.
    pub broker: Option<BrokerBlock>,
}

/// The `single_instance` block: the database and broker containers of a
/// single-instance deployment and the host ports it publishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SingleInstanceBlock {
    /// MySQL/MariaDB image with the populated database (`ep_database_image.x.image_uri`).
    pub database_image: String,
    /// ActiveMQ image.
    pub activemq_image: String,
    /// Commerce schema (default `commercedb`).
    pub schema_name: Option<String>,
    /// Application user (default `ep`).
    pub username: Option<String>,
    /// ARN of the SSM parameter or Secrets Manager secret holding its password.
    pub password_secret_arn: String,
    /// `EP_COMMERCE_ENVNAME` of the services (default `single`).
    pub commerce_environment: Option<String>,
    /// Memory of the database container, MiB (default 1024).
    pub database_memory: Option<u32>,
    /// Memory of the ActiveMQ container, MiB (default 512).
    pub activemq_memory: Option<u32>,
    /// Host port of Cortex's 8080 (default 9080).
    pub cortex_host_port: Option<u32>,
    /// Host port of Commerce Manager's 8080 (default 9081).
    pub cm_host_port: Option<u32>,
    /// Host port of the ActiveMQ web console's 8161 (default 8161).
    pub activemq_console_host_port: Option<u32>,
    /// Capacity provider of the cluster to run on; EC2 launch type when unset.
    pub capacity_provider: Option<String>,
}

/// The `service_discovery` block: the AWS Cloud Map namespace the services
/// register in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDiscoveryBlock {
    /// An existing private DNS namespace (`ns-…`); else `vpc_id`.
    pub namespace_id: Option<String>,
    /// VPC of the private DNS namespace the deployment creates and owns.
    pub vpc_id: Option<String>,
    /// Name of that namespace (default `<name>.ep.internal`).
    pub namespace_name: Option<String>,
}

/// One `service` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceBlock {
    /// `cortex`, `cm`, `batch`, `integration`, `search` or `data-sync`.
    pub name: String,
    /// `author` or `live`.
    pub stack: String,
    /// Image reference, best by digest (`ep_image.cortex.image_uri`).
    pub image: String,
    /// Task CPU units.
    pub cpu: Option<u32>,
    /// Memory, MiB; also `EP_CONTAINER_MEM`.
    pub memory: Option<u32>,
    /// Tasks (default 1; cm and batch must stay at 1).
    pub desired_count: Option<u32>,
    /// Extra environment variables.
    pub environment: Option<BTreeMap<String, String>>,
    /// Extra secrets: variable → SSM parameter or Secrets Manager ARN.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Health check path on port 8080 instead of the service's own.
    pub health_check_path: Option<String>,
}

/// The computed endpoints of one stack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StackEndpoints {
    /// Database host name.
    pub database_address: Option<String>,
    /// Database port.
    pub database_port: Option<u16>,
    /// JDBC URL of the commerce schema (`EP_DB_URL`).
    pub database_url: Option<String>,
    /// OpenWire URL (`EP_JMS_URL`).
    pub jms_url: Option<String>,
    /// STOMP URL.
    pub stomp_url: Option<String>,
    /// ActiveMQ web console URL.
    pub console_url: Option<String>,
    /// Cortex's URL by its discovery name (with `service_discovery`).
    pub cortex_url: Option<String>,
    /// Commerce Manager's URL by its discovery name.
    pub cm_url: Option<String>,
    /// Integration server's URL by its discovery name.
    pub integration_url: Option<String>,
    /// Search master's URL (`EP_SEARCH_MASTER_URL` of the stack's services).
    pub search_master_url: Option<String>,
}

/// Configuration and state of `ep_deployment`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct DeploymentModel<P: Phase = Applying> {
    // Inputs.
    pub name: P::Of<String>,
    pub kind: P::Of<String>,
    pub cluster_arn: P::Of<Option<String>>,
    pub subnet_ids: P::Of<Option<Vec<String>>>,
    pub security_group_ids: P::Of<Option<Vec<String>>>,
    pub assign_public_ip: P::Of<Option<bool>>,
    pub execution_role_arn: P::Of<Option<String>>,
    pub task_role_arn: P::Of<Option<String>>,
    pub log_group: P::Of<Option<String>>,
    pub tags: P::Of<Option<BTreeMap<String, String>>>,
    pub author: P::Of<Option<StackBlock>>,
    pub live: P::Of<Option<StackBlock>>,
    pub single_instance: P::Of<Option<SingleInstanceBlock>>,
    pub service_discovery: P::Of<Option<ServiceDiscoveryBlock>>,
    pub service: P::Of<Vec<ServiceBlock>>,
    // Outputs.
    pub id: P::Of<Option<String>>,
    pub databases: P::Of<Option<BTreeMap<String, String>>>,
    pub brokers: P::Of<Option<BTreeMap<String, String>>>,
    pub task_definitions: P::Of<Option<BTreeMap<String, String>>>,
    pub services: P::Of<Option<BTreeMap<String, String>>>,
    pub discovery_namespace_id: P::Of<Option<String>>,
    pub discovery_services: P::Of<Option<BTreeMap<String, String>>>,
    pub endpoints: P::Of<Option<BTreeMap<String, StackEndpoints>>>,
    pub status: P::Of<Option<String>>,
}

/// A database the services have moved away from, deleted once they run
/// against its successor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Retiring {
    /// Instance identifier.
    pub instance: String,
    /// Final snapshot to take, when the configuration named one.
    pub final_snapshot: Option<String>,
}

/// What `ep_deployment` keeps beside its state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPrivate {
    /// This resource created the ECS cluster (and deletes it).
    #[serde(default)]
    pub created_cluster: bool,
    /// Databases waiting to be deleted.
    #[serde(default)]
    pub retiring: Vec<Retiring>,
    /// Cloud Map namespaces this resource created and has not deleted yet.
    #[serde(default)]
    pub owned_namespaces: Vec<String>,
    /// Cloud Map services to delete once no ECS service registers with them.
    #[serde(default)]
    pub dropped_registries: Vec<String>,
}

impl DeploymentPrivate {
    /// Marks the Cloud Map service `arn` for deletion (once).
    pub fn drop_registry(&mut self, arn: &str) {
        if !self.dropped_registries.iter().any(|a| a == arn) {
            self.dropped_registries.push(arn.to_owned());
        }
    }

    /// Records the Cloud Map namespace `id` as the deployment's own (once).
    pub fn own_namespace(&mut self, id: &str) {
        if !self.owned_namespaces.iter().any(|n| n == id) {
            self.owned_namespaces.push(id.to_owned());
        }
    }
}
