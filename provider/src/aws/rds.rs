//! The RDS calls the resources make (instances and snapshots), and their
//! waiters configured as terraform-provider-aws's are.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_rds::types::Tag;
use aws_sdk_rds::Client;

use crate::aws::{not_found, ApiError};
use crate::framework::{Diagnostics, NotFound, Observed, Waiter};

/// Statuses an instance passes through on its way to `available`.
pub const INSTANCE_PENDING: &[&str] = &[
    "backing-up",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "creating",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "stopping",
    "storage-full",
    "upgrading",
];
/// Statuses that count as available.
pub const INSTANCE_TARGET: &[&str] = &["available", "storage-optimization"];
/// Statuses from which an instance never becomes available.
pub const INSTANCE_FAILURE: &[&str] = &[
    "deleted",
    "deleting",
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
];
/// Statuses an instance passes through while being deleted.
pub const INSTANCE_DELETE_PENDING: &[&str] = &[
    "available",
    "backing-up",
    "creating",
    "delete-precheck",
    "deleting",
    "modifying",
    "starting",
    "stopping",
    "storage-full",
    "storage-optimization",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "failed",
];

/// The wait for an instance to become available: polled every 10 s (up to
/// 30 s) after a minute, `available` seen 3 times in a row.
pub fn instance_available(id: &str) -> Waiter {
    Waiter::new(format!("DB instance {id:?}"), INSTANCE_TARGET)
        .pending(INSTANCE_PENDING)
        .failure(INSTANCE_FAILURE)
        .occurrences(3)
        .delay(Duration::from_secs(60))
        .interval(Duration::from_secs(10), Duration::from_secs(30))
        .not_found(NotFound::Tolerate(3))
}

/// The wait for an instance to be gone.
pub fn instance_deleted(id: &str) -> Waiter {
    Waiter::new(format!("deletion of DB instance {id:?}"), &[])
        .pending(INSTANCE_DELETE_PENDING)
        .delay(Duration::from_secs(10))
        .interval(Duration::from_secs(10), Duration::from_secs(30))
        .not_found(NotFound::IsTarget)
}

/// The wait for a snapshot to become available.
pub fn snapshot_available(id: &str) -> Waiter {
    Waiter::new(format!("DB snapshot {id:?}"), &["available"])
        .pending(&["creating", "pending", "backing-up"])
        .failure(&["failed", "error", "deleted", "deleting"])
        .delay(Duration::from_secs(10))
        .interval(Duration::from_secs(10), Duration::from_secs(30))
        .not_found(NotFound::Tolerate(3))
}

/// The wait for a snapshot to be gone.
pub fn snapshot_deleted(id: &str) -> Waiter {
    Waiter::new(format!("deletion of DB snapshot {id:?}"), &[])
        .pending(&["available", "deleting", "creating", "pending", "failed"])
        .interval(Duration::from_secs(2), Duration::from_secs(15))
        .not_found(NotFound::IsTarget)
}

/// What the resource needs of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its status.
    pub status: String,
    /// Endpoint address, once there is one.
    pub address: Option<String>,
    /// Endpoint port.
    pub port: Option<u16>,
    /// The engine version it runs.
    pub engine_version: Option<String>,
}

/// What the resource needs of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Its status.
    pub status: String,
    /// Its ARN.
    pub arn: Option<String>,
    /// When it was taken, RFC 3339.
    pub created_at: Option<String>,
    /// Engine.
    pub engine: Option<String>,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// Tags as RDS takes them.
pub fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The instance `id`, or `NotFound`.
pub async fn describe_instance(rds: &Client, id: &str) -> Result<Observed<Instance>, Diagnostics> {
    let out = match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let e = ApiError::new("RDS DescribeDBInstances", format!("DB instance {id:?}"), &e);
            if e.code_is(not_found::RDS_INSTANCE) {
                return Ok(Observed::NotFound);
            }
            return Err(e.into());
        }
    };
    let Some(i) = out.db_instances().first() else {
        return Ok(Observed::NotFound);
    };
    let status = i.db_instance_status().unwrap_or("unknown").to_owned();
    let inst = Instance {
        status: status.clone(),
        address: i.endpoint().and_then(|e| e.address()).map(str::to_owned),
        port: i
            .endpoint()
            .and_then(|e| e.port())
            .and_then(|p| u16::try_from(p).ok()),
        engine_version: i.engine_version().map(str::to_owned),
    };
    Ok(Observed::Status(status, inst))
}

/// The snapshot `id`, or `NotFound`.
pub async fn describe_snapshot(rds: &Client, id: &str) -> Result<Observed<Snapshot>, Diagnostics> {
    let out = match rds
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let e = ApiError::new("RDS DescribeDBSnapshots", format!("DB snapshot {id:?}"), &e);
            if e.code_is(not_found::RDS_SNAPSHOT) {
                return Ok(Observed::NotFound);
            }
            return Err(e.into());
        }
    };
    let Some(s) = out.db_snapshots().first() else {
        return Ok(Observed::NotFound);
    };
    let status = s.status().unwrap_or("unknown").to_owned();
    let created_at = s
        .snapshot_create_time()
        .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok());
    let snap = Snapshot {
        status: status.clone(),
        arn: s.db_snapshot_arn().map(str::to_owned),
        created_at,
        engine: s.engine().map(str::to_owned),
        engine_version: s.engine_version().map(str::to_owned),
        tags: s
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
            .collect(),
    };
    Ok(Observed::Status(status, snap))
}

/// Starts deleting instance `id` (no final snapshot, no automated backups
/// kept). Returns whether there was anything to delete.
pub async fn delete_instance(rds: &Client, id: &str) -> Result<bool, ApiError> {
    delete_instance_keeping(rds, id, None).await
}

/// Starts deleting instance `id`, taking `final_snapshot` first when given.
/// Returns whether there was anything to delete; "already being deleted"
/// counts as started.
pub async fn delete_instance_keeping(
    rds: &Client,
    id: &str,
    final_snapshot: Option<&str>,
) -> Result<bool, ApiError> {
    let res = rds
        .delete_db_instance()
        .db_instance_identifier(id)
        .skip_final_snapshot(final_snapshot.is_none())
        .set_final_db_snapshot_identifier(final_snapshot.map(str::to_owned))
        .delete_automated_backups(true)
        .send()
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = ApiError::new("RDS DeleteDBInstance", format!("DB instance {id:?}"), &e);
            if e.code_is(not_found::RDS_INSTANCE) {
                Ok(false)
            } else if e.code_is(&["InvalidDBInstanceState", "InvalidDBInstanceStateFault"])
                && e.message.contains("already being deleted")
            {
                Ok(true)
            } else {
                Err(e)
            }
        }
    }
}

/// Deletes snapshot `id`; a missing one is fine.
pub async fn delete_snapshot(rds: &Client, id: &str) -> Result<bool, ApiError> {
    match rds
        .delete_db_snapshot()
        .db_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = ApiError::new("RDS DeleteDBSnapshot", format!("DB snapshot {id:?}"), &e);
            if e.code_is(not_found::RDS_SNAPSHOT) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}
