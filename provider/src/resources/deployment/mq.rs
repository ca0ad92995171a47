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
                .password(&u.password)
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

/// Waits until the broker runs.
pub async fn wait_running<P: PrivateType>(
    mq: &Client,
    op: &Op<P>,
    id: &str,
) -> Result<Broker, Diagnostics> {
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
