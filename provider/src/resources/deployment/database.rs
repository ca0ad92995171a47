//! A stack's database: an RDS instance restored from the stack's snapshot.

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use sha2::{Digest, Sha256};

use super::model::DatabaseBlock;
use crate::aws::{rds, ApiError};
use crate::framework::Diagnostics;

/// Default instance class.
pub const DEFAULT_INSTANCE_CLASS: &str = "db.t3.medium";
/// Default schema.
pub const DEFAULT_SCHEMA: &str = "commercedb";
/// Default application user.
pub const DEFAULT_USER: &str = "ep";

/// The instance identifier for a stack restored from `snapshot`: a new
/// snapshot gives a new identifier, so the new database is restored beside
/// the old one instead of replacing it in place.
pub fn instance_identifier(deployment: &str, stack: &str, snapshot: &str) -> String {
    let digest = Sha256::digest(snapshot.as_bytes());
    format!("ep-{deployment}-{stack}-{}", &hex::encode(digest)[..8])
}

/// Restores `db.snapshot_identifier` as instance `id`; a restore already
/// started under that identifier (an interrupted apply) is adopted.
pub async fn restore(
    rds_client: &Client,
    id: &str,
    db: &DatabaseBlock,
    security_groups: &[String],
    tags: &BTreeMap<String, String>,
) -> Result<(), Diagnostics> {
    let res = rds_client
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(id)
        .db_snapshot_identifier(&db.snapshot_identifier)
        .db_instance_class(
            db.instance_class
                .as_deref()
                .unwrap_or(DEFAULT_INSTANCE_CLASS),
        )
        .multi_az(db.multi_az.unwrap_or(false))
        .deletion_protection(db.deletion_protection.unwrap_or(false))
        .publicly_accessible(false)
        .set_db_subnet_group_name(db.db_subnet_group_name.clone())
        .set_vpc_security_group_ids((!security_groups.is_empty()).then(|| security_groups.to_vec()))
        .set_tags(Some(rds::tags(tags)))
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = ApiError::new(
                "RDS RestoreDBInstanceFromDBSnapshot",
                format!(
                    "DB instance {id:?} from snapshot {:?}",
                    db.snapshot_identifier
                ),
                &e,
            );
            if e.code_is(&["DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"]) {
                return Ok(());
            }
            Err(e.into())
        }
    }
}

/// Applies in-place changes (class, multi-AZ, deletion protection) at once.
pub async fn modify(rds_client: &Client, id: &str, db: &DatabaseBlock) -> Result<(), Diagnostics> {
    rds_client
        .modify_db_instance()
        .db_instance_identifier(id)
        .db_instance_class(
            db.instance_class
                .as_deref()
                .unwrap_or(DEFAULT_INSTANCE_CLASS),
        )
        .multi_az(db.multi_az.unwrap_or(false))
        .deletion_protection(db.deletion_protection.unwrap_or(false))
        .apply_immediately(true)
        .send()
        .await
        .map_err(|e| ApiError::new("RDS ModifyDBInstance", format!("DB instance {id:?}"), &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::instance_identifier;

    #[test]
    fn identifiers_follow_the_snapshot_and_fit_rds() {
        let a = instance_identifier("a-24-character-name-xxxx", "author", "snap-1");
        assert!(a.len() <= 63, "{a}");
        assert!(a.starts_with("ep-a-24-character-name-xxxx-author-"));
        assert_eq!(
            a,
            instance_identifier("a-24-character-name-xxxx", "author", "snap-1")
        );
        assert_ne!(
            a,
            instance_identifier("a-24-character-name-xxxx", "author", "snap-2")
        );
    }
}
