//! AWS Cloud Map for `ep_deployment`: a private DNS namespace and one
//! discovery service per ECS service, so that a stack's services reach each
//! other by name (`live-search.prod.ep.internal`) — above all, the Tomcats
//! find search's master without a user-given `EP_SEARCH_MASTER_URL`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_servicediscovery::types::{
    DnsConfig, DnsRecord, HealthCheckCustomConfig, NamespaceFilter, NamespaceFilterName,
    OperationStatus, RecordType, RoutingPolicy, ServiceFilter, ServiceFilterName, Tag,
};
use aws_sdk_servicediscovery::Client;

use super::apply::{service_name, TAG_DEPLOYMENT};
use super::catalogue;
use super::model::{ServiceDiscoveryBlock, StackEndpoints};
use crate::aws::{retry_while, ApiError};
use crate::framework::typed::PrivateType;
use crate::framework::{Diagnostic, Diagnostics, Observed, Op, Waiter};

/// Cloud Map's "no such namespace".
const NAMESPACE_NOT_FOUND: &[&str] = &["NamespaceNotFound"];
/// Cloud Map's "no such service".
const SERVICE_NOT_FOUND: &[&str] = &["ServiceNotFound"];
/// Cloud Map refuses to delete a service with instances (ECS deregisters
/// them while its tasks stop) or a namespace with services.
const IN_USE: &[&str] = &["ResourceInUse"];

/// The name of the namespace a deployment creates when given only a VPC.
pub fn default_namespace_name(deployment: &str) -> String {
    format!("{deployment}.ep.internal")
}

/// The name of the namespace `deployment` creates for `block`: its
/// `namespace_name`, else the default.
pub fn own_namespace_name(block: &ServiceDiscoveryBlock, deployment: &str) -> String {
    block
        .namespace_name
        .clone()
        .unwrap_or_else(|| default_namespace_name(deployment))
}

/// The DNS name a discovery service answers to.
pub fn host(service: &str, namespace: &str) -> String {
    format!("{service}.{namespace}")
}

/// Tag on a namespace this provider creates: the VPC it was made for.
pub const TAG_VPC: &str = "ep:vpc";

/// Puts the URLs of a stack's services, by their discovery names in
/// `namespace`, into the stack's endpoints.
pub fn fill_urls<'s>(
    e: &mut StackEndpoints,
    stack: &str,
    services: impl IntoIterator<Item = &'s str>,
    namespace: &str,
) {
    for svc in services {
        let Some(kind) = catalogue::service(svc) else {
            continue;
        };
        let url = Some(kind.url(&host(&service_name(stack, svc), namespace), kind.port));
        match svc {
            "cortex" => e.cortex_url = url,
            "cm" => e.cm_url = url,
            "integration" => e.integration_url = url,
            "search" => e.search_master_url = url,
            _ => {}
        }
    }
}

/// A Cloud Map namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// `ns-…`.
    pub id: String,
    /// Its DNS name.
    pub name: String,
}

/// The ID at the end of a Cloud Map ARN (`…:service/srv-abc` → `srv-abc`).
pub fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// Cloud Map's description of the namespace `id`; `None` when it has none.
async fn describe_namespace(
    sd: &Client,
    id: &str,
) -> Result<Option<aws_sdk_servicediscovery::types::Namespace>, Diagnostics> {
    match sd.get_namespace().id(id).send().await {
        Ok(out) => Ok(out.namespace().cloned()),
        Err(e) => {
            let e = ApiError::new("Cloud Map GetNamespace", format!("namespace {id:?}"), &e);
            if e.code_is(NAMESPACE_NOT_FOUND) {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
    }
}

/// The namespace `id`; `NotFound` when Cloud Map has none.
pub async fn get_namespace(sd: &Client, id: &str) -> Result<Observed<Namespace>, Diagnostics> {
    Ok(match describe_namespace(sd, id).await? {
        Some(ns) => Observed::Status(
            "ACTIVE".to_owned(),
            Namespace {
                id: id.to_owned(),
                name: ns.name().unwrap_or_default().to_owned(),
            },
        ),
        None => Observed::NotFound,
    })
}

/// A Cloud Map resource's tags.
async fn tags_of(sd: &Client, arn: &str) -> Result<BTreeMap<String, String>, Diagnostics> {
    let out = sd
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| ApiError::new("Cloud Map ListTagsForResource", arn.to_owned(), &e))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
}

/// A private DNS namespace called `name`, and the tags that say whose it is.
pub struct NamedNamespace {
    /// Its ID.
    pub id: String,
    /// The deployment that made it (`TAG_DEPLOYMENT`), if this provider did.
    pub deployment: Option<String>,
    /// The VPC it was made for (`TAG_VPC`).
    pub vpc: Option<String>,
}

/// Every private DNS namespace called `name` (one per VPC at most), with its
/// owner tags.
pub async fn namespaces_named(sd: &Client, name: &str) -> Result<Vec<NamedNamespace>, Diagnostics> {
    let mut found = Vec::new();
    let mut pages = sd
        .list_namespaces()
        .filters(
            NamespaceFilter::builder()
                .name(NamespaceFilterName::Type)
                .values("DNS_PRIVATE")
                .build()
                .map_err(|e| Diagnostic::error("Invalid Cloud Map filter", e.to_string()))?,
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ApiError::new("Cloud Map ListNamespaces", name, &e))?;
        for ns in page
            .namespaces()
            .iter()
            .filter(|ns| ns.name() == Some(name))
        {
            let mut tags = tags_of(sd, ns.arn().unwrap_or_default()).await?;
            found.push(NamedNamespace {
                id: ns.id().unwrap_or_default().to_owned(),
                deployment: tags.remove(TAG_DEPLOYMENT),
                vpc: tags.remove(TAG_VPC),
            });
        }
    }
    Ok(found)
}

/// The private DNS namespace `name` for `deployment`: one an earlier,
/// interrupted apply created (found by name and tag) or a new one in `vpc`.
pub async fn create_namespace<P: PrivateType>(
    sd: &Client,
    op: &Op<P>,
    deployment: &str,
    name: &str,
    vpc: &str,
    tag_map: &BTreeMap<String, String>,
) -> Result<Namespace, Diagnostics> {
    for ns in namespaces_named(sd, name).await? {
        if ns.deployment.as_deref() != Some(deployment) {
            return Err(Diagnostic::error(
                "Cloud Map namespace name taken",
                format!(
                    "A private DNS namespace {name:?} ({}) exists and is not this deployment's. \
                     Give its ID as `service_discovery.namespace_id` to use it, or choose another \
                     `namespace_name`.",
                    ns.id
                ),
            )
            .into());
        }
        // This deployment's namespace in another VPC is the one it used
        // before, deleted once the services have moved.
        if ns.vpc.as_deref() == Some(vpc) {
            return Ok(Namespace {
                id: ns.id,
                name: name.to_owned(),
            });
        }
    }
    tracing::info!(namespace = name, vpc, "creating the Cloud Map namespace");
    let mut tag_map = tag_map.clone();
    tag_map.insert(TAG_VPC.to_owned(), vpc.to_owned());
    let out = sd
        .create_private_dns_namespace()
        .name(name)
        .vpc(vpc)
        .description(format!("Elastic Path deployment {deployment}"))
        .set_tags(Some(tags(&tag_map)))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                "Cloud Map CreatePrivateDnsNamespace",
                format!("namespace {name:?}"),
                &e,
            )
        })?;
    let operation = out.operation_id().unwrap_or_default().to_owned();
    let id = wait_operation(sd, op, &operation, &format!("namespace {name:?}"))
        .await?
        .ok_or_else(|| {
            Diagnostic::error(
                "Cloud Map created no namespace",
                format!("Operation {operation} succeeded without naming the namespace {name:?}."),
            )
        })?;
    Ok(Namespace {
        id,
        name: name.to_owned(),
    })
}

/// Waits for a Cloud Map operation; the namespace it targets, if any.
async fn wait_operation<P: PrivateType>(
    sd: &Client,
    op: &Op<P>,
    operation: &str,
    what: &str,
) -> Result<Option<String>, Diagnostics> {
    let done = Waiter::new(format!("Cloud Map operation on {what}"), &["SUCCESS"])
        .pending(&["SUBMITTED", "PENDING"])
        .failure(&["FAIL"])
        .occurrences(1)
        .interval(Duration::from_secs(2), Duration::from_secs(10))
        .wait(op, || async {
            let out = sd
                .get_operation()
                .operation_id(operation)
                .send()
                .await
                .map_err(|e| ApiError::new("Cloud Map GetOperation", operation.to_owned(), &e))?;
            let Some(o) = out.operation() else {
                return Ok(Observed::NotFound);
            };
            if o.status() == Some(&OperationStatus::Fail) {
                return Err(Diagnostic::error(
                    format!("Cloud Map could not finish the operation on {what}"),
                    o.error_message().unwrap_or("no reason given").to_owned(),
                )
                .into());
            }
            let status = o.status().map_or("PENDING", |s| s.as_str()).to_owned();
            let target = o
                .targets()
                .and_then(|t| t.iter().find(|(k, _)| k.as_str() == "NAMESPACE"))
                .map(|(_, v)| v.clone());
            Ok(Observed::Status(status, target))
        })
        .await
        .map_err(Diagnostics::from)?;
    Ok(done.flatten())
}

/// Deletes a namespace this deployment created, once its services are gone.
pub async fn delete_namespace<P: PrivateType>(
    sd: &Client,
    op: &Op<P>,
    id: &str,
) -> Result<(), Diagnostics> {
    let operation = retry_while(
        op,
        |e| e.code_is(IN_USE),
        || async {
            match sd.delete_namespace().id(id).send().await {
                Ok(out) => Ok(out.operation_id().map(str::to_owned)),
                Err(e) => {
                    let e =
                        ApiError::new("Cloud Map DeleteNamespace", format!("namespace {id:?}"), &e);
                    if e.code_is(NAMESPACE_NOT_FOUND) {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        },
    )
    .await?;
    if let Some(operation) = operation {
        wait_operation(sd, op, &operation, &format!("namespace {id:?}")).await?;
    }
    Ok(())
}

/// The discovery service `name` in `namespace` (created with an A record per
/// task, as `awsvpc` tasks need, and ECS reporting their health); its ARN.
pub async fn ensure_service(
    sd: &Client,
    namespace: &str,
    name: &str,
    tag_map: &BTreeMap<String, String>,
) -> Result<String, Diagnostics> {
    let filter = ServiceFilter::builder()
        .name(ServiceFilterName::NamespaceId)
        .values(namespace)
        .build()
        .map_err(|e| Diagnostic::error("Invalid Cloud Map filter", e.to_string()))?;
    let mut pages = sd.list_services().filters(filter).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ApiError::new("Cloud Map ListServices", name, &e))?;
        // Some emulators ignore the filter: check the namespace here too.
        for s in page.services().iter().filter(|s| s.name() == Some(name)) {
            let arn = s.arn().unwrap_or_default();
            if namespace_of(sd, arn).await?.as_deref() == Some(namespace) {
                return Ok(arn.to_owned());
            }
        }
    }
    let record = DnsRecord::builder()
        .r#type(RecordType::A)
        .ttl(10)
        .build()
        .map_err(|e| Diagnostic::error("Invalid Cloud Map record", e.to_string()))?;
    let dns = DnsConfig::builder()
        .routing_policy(RoutingPolicy::Multivalue)
        .dns_records(record)
        .build()
        .map_err(|e| Diagnostic::error("Invalid Cloud Map DNS config", e.to_string()))?;
    let out = sd
        .create_service()
        .name(name)
        .namespace_id(namespace)
        .dns_config(dns)
        // ECS reports its tasks' health to Cloud Map.
        .health_check_custom_config(HealthCheckCustomConfig::builder().build())
        .set_tags(Some(tags(tag_map)))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                "Cloud Map CreateService",
                format!("discovery service {name:?}"),
                &e,
            )
        })?;
    out.service()
        .and_then(|s| s.arn())
        .map(str::to_owned)
        .ok_or_else(|| {
            Diagnostic::error(
                "Cloud Map CreateService returned no service",
                name.to_owned(),
            )
            .into()
        })
}

/// The namespace of the discovery service `arn`; `None` when the service is gone.
pub async fn namespace_of(sd: &Client, arn: &str) -> Result<Option<String>, Diagnostics> {
    match sd.get_service().id(id_of(arn)).send().await {
        Ok(out) => Ok(out
            .service()
            .and_then(|s| s.namespace_id())
            .map(str::to_owned)),
        Err(e) => {
            let e = ApiError::new("Cloud Map GetService", arn.to_owned(), &e);
            if e.code_is(SERVICE_NOT_FOUND) {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
    }
}

/// Whether `deployment` created the namespace `id` (its tag says so).
pub async fn owned_by(sd: &Client, id: &str, deployment: &str) -> Result<bool, Diagnostics> {
    match describe_namespace(sd, id)
        .await?
        .and_then(|n| n.arn().map(str::to_owned))
    {
        Some(arn) => Ok(tags_of(sd, &arn)
            .await?
            .get(TAG_DEPLOYMENT)
            .map(String::as_str)
            == Some(deployment)),
        None => Ok(false),
    }
}

/// Deletes a discovery service, waiting out the instances ECS still
/// deregisters after the service's tasks stopped.
pub async fn delete_service<P: PrivateType>(
    sd: &Client,
    op: &Op<P>,
    arn: &str,
) -> Result<(), Diagnostics> {
    retry_while(
        op,
        |e| e.code_is(IN_USE),
        || async {
            match sd.delete_service().id(id_of(arn)).send().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = ApiError::new("Cloud Map DeleteService", arn.to_owned(), &e);
                    if e.code_is(SERVICE_NOT_FOUND) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(default_namespace_name("prod"), "prod.ep.internal");
        assert_eq!(
            host("live-search", "prod.ep.internal"),
            "live-search.prod.ep.internal"
        );
        assert_eq!(
            id_of("arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abc"),
            "srv-abc"
        );
        assert_eq!(id_of("srv-abc"), "srv-abc");
    }
}
