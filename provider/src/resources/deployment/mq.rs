//! The Amazon MQ calls `ep_deployment` makes: an ActiveMQ broker per stack,
//! its endpoints, and the waits for it to run or be gone.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_mq::types::{DeploymentMode, EngineType, User};
use aws_sdk_mq::Client;

use super::broker::EngineVersion;
use super::model::{BrokerBlock, StackEndpoints};
use crate::aws::{not_found, ApiError};
use crate::framework::typed::PrivateType;
use crate::framework::{Diagnostic, Diagnostics, NotFound, Observed, Op, Waiter};

/// Default engine version.
pub const DEFAULT_ENGINE_VERSION: &str = "5.18";
/// Default instance type.
pub const DEFAULT_INSTANCE_TYPE: &str = "mq.t3.micro";
/// Default deployment mode.
pub const DEFAULT_DEPLOYMENT_MODE: &str = "SINGLE_INSTANCE";

/// A broker as this provider looks at it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Broker {
    /// Broker ID.
    pub id: String,
    /// `CREATION_IN_PROGRESS`, `RUNNING`, `REBOOT_IN_PROGRESS`, …
    pub state: String,
    /// Engine version AWS reports (`5.18.4`).
    pub engine_version: Option<String>,
    /// OpenWire endpoints, one per broker instance.
    pub openwire: Vec<String>,
    /// STOMP endpoints.
    pub stomp: Vec<String>,
    /// Console URL of the first instance.
    pub console_url: Option<String>,
}

impl Broker {
    /// `EP_JMS_URL`: the OpenWire endpoint, or a failover URL over both
    /// instances of an active/standby broker.
    pub fn jms_url(&self) -> Option<String> {
        match self.openwire.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(format!("failover:({})", many.join(","))),
        }
    }

    /// Writes the broker's endpoints into a stack's endpoints.
    pub fn fill(&self, e: &mut StackEndpoints) {
        e.jms_url = self.jms_url();
        e.stomp_url = self.stomp.first().cloned();
        e.console_url = self.console_url.clone();
    }
}

/// Creates the broker `name` for `b`; returns its ID. The creator request
/// ID makes a retried create (after a lost answer) return the same broker.
pub async fn create_broker(
    mq: &Client,
    name: &str,
    b: &BrokerBlock,
    subnets: &[String],
    security_groups: &[String],
    tags: &BTreeMap<String, String>,
) -> Result<String, Diagnostics> {
    let version = b
        .engine_version
        .as_deref()
        .unwrap_or(DEFAULT_ENGINE_VERSION);
    let mode = b
        .deployment_mode
        .as_deref()
        .unwrap_or(DEFAULT_DEPLOYMENT_MODE);
    // A single-instance broker lives in one subnet; active/standby in two.
    let wanted = if mode == "SINGLE_INSTANCE" { 1 } else { 2 };
    let users = b
        .user
        .iter()
        .map(|u| {
            User::builder()
                .username(&u.username)
                .password(u.secret())
                .console_access(u.console_access.unwrap_or(false))
                .build()
        })
        .collect();
    let auto_minor =
        EngineVersion::parse(version).is_some_and(EngineVersion::requires_auto_minor_upgrade);
    let out = mq
        .create_broker()
        .broker_name(name)
        .creator_request_id(name)
        .engine_type(EngineType::Activemq)
        .engine_version(version)
        .host_instance_type(b.instance_type.as_deref().unwrap_or(DEFAULT_INSTANCE_TYPE))
        .deployment_mode(DeploymentMode::from(mode))
        .auto_minor_version_upgrade(auto_minor)
        .publicly_accessible(false)
        .set_subnet_ids(Some(subnets.iter().take(wanted).cloned().collect()))
        .set_security_groups(Some(security_groups.to_vec()))
        .set_users(Some(users))
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| ApiError::new("MQ CreateBroker", format!("broker {name:?}"), &e))?;
    out.broker_id().map(str::to_owned).ok_or_else(|| {
        Diagnostic::error("MQ CreateBroker returned no broker ID", name.to_owned()).into()
    })
}

/// The broker `id`, or `NotFound` (also once it is deleted).
pub async fn describe_broker(mq: &Client, id: &str) -> Result<Observed<Broker>, Diagnostics> {
    let out = match mq.describe_broker().broker_id(id).send().await {
        Ok(o) => o,
        Err(e) => {
            let e = ApiError::new("MQ DescribeBroker", format!("broker {id:?}"), &e);
            if e.code_is(not_found::MQ_BROKER) {
                return Ok(Observed::NotFound);
            }
            return Err(e.into());
        }
    };
    let state = out
        .broker_state()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "UNKNOWN".to_owned());
    let mut broker = Broker {
        id: id.to_owned(),
        state: state.clone(),
        engine_version: out.engine_version().map(str::to_owned),
        ..Broker::default()
    };
    for inst in out.broker_instances() {
        for ep in inst.endpoints() {
            if ep.starts_with("ssl://") || ep.starts_with("tcp://") {
                broker.openwire.push(ep.clone());
            } else if ep.starts_with("stomp") {
                broker.stomp.push(ep.clone());
            }
        }
        if broker.console_url.is_none() {
            broker.console_url = inst.console_url().map(str::to_owned);
        }
    }
    Ok(Observed::Status(state, broker))
}

/// The wait for a broker to run: after creation, and after the reboot
/// that applies a change.
pub fn running(id: &str) -> Waiter {
    Waiter::new(format!("Amazon MQ broker {id:?}"), &["RUNNING"])
        .pending(&["CREATION_IN_PROGRESS", "REBOOT_IN_PROGRESS"])
        .failure(&[
            "CREATION_FAILED",
            "DELETION_IN_PROGRESS",
            "CRITICAL_ACTION_REQUIRED",
        ])
        .delay(Duration::from_secs(30))
        .interval(Duration::from_secs(10), Duration::from_secs(30))
        .not_found(NotFound::Tolerate(3))
}

/// Waits until the broker runs.
pub async fn wait_running<P: PrivateType>(
    mq: &Client,
    op: &Op<P>,
    id: &str,
) -> Result<Broker, Diagnostics> {
    running(id)
        .wait(op, || describe_broker(mq, id))
        .await?
        .ok_or_else(|| Diagnostic::error("Amazon MQ broker vanished", id.to_owned()).into())
}

/// Deletes the broker and waits until it is gone; a missing one is fine.
pub async fn delete_broker<P: PrivateType>(
    mq: &Client,
    op: &Op<P>,
    id: &str,
) -> Result<(), Diagnostics> {
    match mq.delete_broker().broker_id(id).send().await {
        Ok(_) => {}
        Err(e) => {
            let e = ApiError::new("MQ DeleteBroker", format!("broker {id:?}"), &e);
            if e.code_is(not_found::MQ_BROKER) {
                return Ok(());
            }
            // Deleting a broker that is already being deleted is a conflict, not a failure.
            if !e.code_is(&["ConflictException"]) {
                return Err(e.into());
            }
        }
    }
    Waiter::new(format!("deletion of Amazon MQ broker {id:?}"), &[])
        .pending(&[
            "DELETION_IN_PROGRESS",
            "RUNNING",
            "REBOOT_IN_PROGRESS",
            "CREATION_IN_PROGRESS",
            "CREATION_FAILED",
        ])
        .interval(Duration::from_secs(10), Duration::from_secs(30))
        .not_found(NotFound::IsTarget)
        .wait(op, || describe_broker(mq, id))
        .await
        .map(|_| ())
        .map_err(Diagnostics::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::waiter::script::{test_op, Script};
    use crate::framework::WaitError;

    /// moto's brokers are RUNNING at once and its reboot does nothing: the
    /// sequences a real broker goes through are replayed here.
    #[tokio::test(start_paused = true)]
    async fn a_rebooting_broker_is_waited_for_and_a_failed_one_stops_the_wait() {
        let hour = Duration::from_secs(3600);
        let s = Script::statuses(&[
            Some("REBOOT_IN_PROGRESS"),
            Some("REBOOT_IN_PROGRESS"),
            Some("RUNNING"),
        ]);
        let got = running("b-1").wait(&test_op(hour), || s.poll()).await;
        assert_eq!(got.ok().flatten(), Some("RUNNING"));
        // The first poll comes after the delay (a broker just told to reboot
        // may still say RUNNING), then after 10 s, growing towards 30 s.
        let secs: Vec<u64> = s.poll_times().iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![30, 40, 55]);
        let s = Script::statuses(&[Some("CREATION_IN_PROGRESS"), Some("CREATION_FAILED")]);
        let got = running("b-2").wait(&test_op(hour), || s.poll()).await;
        assert!(
            matches!(got, Err(WaitError::Failed { ref status, .. }) if status == "CREATION_FAILED"),
            "{got:?}"
        );
        let s = Script::statuses(&[Some("REBOOT_IN_PROGRESS")]);
        let got = running("b-3")
            .wait(&test_op(Duration::from_secs(600)), || s.poll())
            .await;
        assert!(matches!(got, Err(WaitError::Interrupted { .. })), "{got:?}");
    }

    #[test]
    fn an_active_standby_broker_is_reached_through_failover() {
        let mut b = Broker {
            openwire: vec!["ssl://b-1-1.mq:61617".to_owned()],
            ..Broker::default()
        };
        assert_eq!(b.jms_url().as_deref(), Some("ssl://b-1-1.mq:61617"));
        b.openwire.push("ssl://b-1-2.mq:61617".to_owned());
        assert_eq!(
            b.jms_url().as_deref(),
            Some("failover:(ssl://b-1-1.mq:61617,ssl://b-1-2.mq:61617)")
        );
        b.openwire.clear();
        assert_eq!(b.jms_url(), None);
    }
}

/// What changes between two configurations of one broker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerChange {
    /// Engine version, instance type or minor-upgrade setting to apply.
    pub settings: bool,
    /// Users to create (by index in the new configuration).
    pub create: Vec<usize>,
    /// Users whose password or console access changed (index in the new configuration).
    pub update: Vec<usize>,
    /// Users to delete (names).
    pub delete: Vec<String>,
}

impl BrokerChange {
    /// The change from `old` to `new`.
    pub fn between(old: &BrokerBlock, new: &BrokerBlock) -> Self {
        let mut c = BrokerChange {
            settings: old.engine_version != new.engine_version
                || old.instance_type != new.instance_type,
            ..BrokerChange::default()
        };
        for (i, u) in new.user.iter().enumerate() {
            match old.user.iter().find(|o| o.username == u.username) {
                None => c.create.push(i),
                Some(o) if !u.same_as_stored(o) => c.update.push(i),
                Some(_) => {}
            }
        }
        c.delete = old
            .user
            .iter()
            .filter(|o| !new.user.iter().any(|u| u.username == o.username))
            .map(|o| o.username.clone())
            .collect();
        c
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        *self == BrokerChange::default()
    }

    /// Words for the plan.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.settings {
            parts.push("engine version or instance type".to_owned());
        }
        let users = self.create.len() + self.update.len() + self.delete.len();
        if users > 0 {
            parts.push(format!("{users} user(s)"));
        }
        format!(
            "{} change; the broker reboots to apply it",
            parts.join(" and ")
        )
    }
}

/// Applies `change` to broker `id` (whose new configuration is `new`) and
/// reboots it: Amazon MQ applies users, engine version and instance type
/// only on reboot. Returns once it runs again.
pub async fn update_broker<P: PrivateType>(
    mq: &Client,
    op: &Op<P>,
    id: &str,
    new: &BrokerBlock,
    change: &BrokerChange,
) -> Result<Broker, Diagnostics> {
    let subject = || format!("broker {id:?}");
    if change.settings {
        let version = new
            .engine_version
            .as_deref()
            .unwrap_or(DEFAULT_ENGINE_VERSION);
        let auto_minor =
            EngineVersion::parse(version).is_some_and(EngineVersion::requires_auto_minor_upgrade);
        mq.update_broker()
            .broker_id(id)
            .engine_version(version)
            .host_instance_type(
                new.instance_type
                    .as_deref()
                    .unwrap_or(DEFAULT_INSTANCE_TYPE),
            )
            .auto_minor_version_upgrade(auto_minor)
            .send()
            .await
            .map_err(|e| ApiError::new("MQ UpdateBroker", subject(), &e))?;
    }
    // CreateUser and UpdateUser take the same fields on different builders.
    macro_rules! put_user {
        ($call:ident, $name:literal, $indexes:expr) => {
            for &i in $indexes {
                let u = &new.user[i];
                mq.$call()
                    .broker_id(id)
                    .username(&u.username)
                    .password(u.secret())
                    .console_access(u.console_access.unwrap_or(false))
                    .send()
                    .await
                    .map_err(|e| {
                        ApiError::new($name, format!("user {:?} of {}", u.username, subject()), &e)
                    })?;
            }
        };
    }
    put_user!(create_user, "MQ CreateUser", &change.create);
    put_user!(update_user, "MQ UpdateUser", &change.update);
    for name in &change.delete {
        if let Err(e) = mq.delete_user().broker_id(id).username(name).send().await {
            let e = ApiError::new(
                "MQ DeleteUser",
                format!("user {name:?} of {}", subject()),
                &e,
            );
            if !e.code_is(not_found::MQ_BROKER) {
                return Err(e.into());
            }
        }
    }
    tracing::info!(
        broker = id,
        "rebooting the broker to apply {}",
        change.describe()
    );
    mq.reboot_broker()
        .broker_id(id)
        .send()
        .await
        .map_err(|e| ApiError::new("MQ RebootBroker", subject(), &e))?;
    wait_running(mq, op, id).await
}

#[cfg(test)]
mod change_tests {
    use super::*;
    use crate::resources::deployment::model::BrokerUser;

    fn user(name: &str, pw: &str) -> BrokerUser {
        BrokerUser {
            username: name.to_owned(),
            password: Some(pw.to_owned()),
            password_wo: None,
            password_wo_version: None,
            console_access: None,
        }
    }

    fn broker(users: Vec<BrokerUser>) -> BrokerBlock {
        BrokerBlock {
            engine_version: Some("5.18".to_owned()),
            instance_type: None,
            deployment_mode: None,
            user: users,
        }
    }

    #[test]
    fn users_are_created_updated_and_deleted_by_name() {
        let old = broker(vec![
            user("ep", "password-one-1"),
            user("ops", "password-two-2"),
        ]);
        let new = broker(vec![
            user("ep", "password-one-X"),
            user("app", "password-three"),
        ]);
        let c = BrokerChange::between(&old, &new);
        assert_eq!(
            (c.create.clone(), c.update.clone(), c.delete.clone()),
            (vec![1], vec![0], vec!["ops".to_owned()])
        );
        assert!(!c.settings);
        assert_eq!(
            c.describe(),
            "3 user(s) change; the broker reboots to apply it"
        );
        assert!(BrokerChange::between(&new, &new).is_empty());
    }

    #[test]
    fn a_write_only_password_is_sent_again_only_when_its_version_changes() {
        let stored = |version| BrokerUser {
            username: "ep".to_owned(),
            password: None,
            password_wo: None,
            password_wo_version: Some(version),
            console_access: None,
        };
        let configured = |pw: &str, version| BrokerUser {
            password_wo: Some(pw.to_owned()),
            ..stored(version)
        };
        // The prior state never holds the value: the same version is no change.
        let old = broker(vec![stored(1)]);
        let same = broker(vec![configured("a-new-password-9", 1)]);
        assert!(BrokerChange::between(&old, &same).is_empty());
        let bumped = broker(vec![configured("a-new-password-9", 2)]);
        assert_eq!(BrokerChange::between(&old, &bumped).update, vec![0]);
        assert_eq!(bumped.user[0].secret(), "a-new-password-9");
    }

    #[test]
    fn a_new_engine_version_is_a_settings_change() {
        let old = broker(vec![user("ep", "password-one-1")]);
        let mut new = old.clone();
        new.engine_version = Some("5.19".to_owned());
        let c = BrokerChange::between(&old, &new);
        assert!(c.settings && c.create.is_empty() && c.delete.is_empty());
    }
}
