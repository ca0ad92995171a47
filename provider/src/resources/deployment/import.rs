//! Import by deployment name (`<name>@<cluster>` for `single_instance`):
//! every part is found again by its name or its `ep:deployment` /
//! `ep:part` tags.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::ServiceField;

use super::apply::{broker_name, cluster_name, Clients, TAG_DEPLOYMENT, TAG_PART};
use super::catalogue::STACKS;
use super::database::DEFAULT_SCHEMA;
use super::discovery;
use super::ecs;
use super::model::{DeploymentModel, StackEndpoints};
use super::mq;
use super::single;
use super::validate::{AUTHOR_AND_LIVE, SINGLE_INSTANCE};
use super::wiring::jdbc_url;
use crate::aws::ApiError;
use crate::framework::{Diagnostic, Diagnostics, Observed};

/// The deployment `name` as it exists in AWS, its inputs left for the
/// configuration to supply.
pub async fn find(aws: &Clients, name: &str) -> Result<DeploymentModel, Diagnostics> {
    let not_found = || {
        Diagnostics::from(Diagnostic::error(
            "Cannot import",
            format!(
                "There is no deployment {name:?}: no ECS cluster {:?} is active.",
                cluster_name(name)
            ),
        ))
    };
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(cluster_name(name))
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                "ECS DescribeClusters",
                format!("cluster {:?}", cluster_name(name)),
                &e,
            )
        })?;
    let cluster = clusters
        .clusters()
        .iter()
        .find(|c| c.status() == Some("ACTIVE"))
        .and_then(|c| c.cluster_arn())
        .map(str::to_owned)
        .ok_or_else(not_found)?;
    let mut m: DeploymentModel = DeploymentModel {
        name: name.to_owned(),
        kind: AUTHOR_AND_LIVE.to_owned(),
        id: Some(name.to_owned()),
        cluster_arn: Some(cluster.clone()),
        status: Some("ready".to_owned()),
        ..DeploymentModel::default()
    };
    let (services, task_definitions, registries) = services(aws, &cluster, name).await?;
    let namespace = match registries.values().next() {
        Some(arn) => match discovery::namespace_of(&aws.discovery, arn).await? {
            Some(id) => match discovery::get_namespace(&aws.discovery, &id).await? {
                Observed::Status(_, ns) => Some(ns),
                Observed::NotFound => None,
            },
            None => None,
        },
        None => None,
    };
    m.discovery_namespace_id = namespace.as_ref().map(|ns| ns.id.clone());
    m.discovery_services = namespace.as_ref().map(|_| registries);
    let databases = databases(aws, name).await?;
    let mut brokers = BTreeMap::new();
    let mut endpoints = BTreeMap::new();
    for stack in STACKS {
        let mut e = StackEndpoints::default();
        if let Some((id, address, port)) = databases.get(stack) {
            e.database_url = Some(jdbc_url(address, *port, DEFAULT_SCHEMA));
            e.database_address = Some(address.clone());
            e.database_port = Some(*port);
            m.databases
                .get_or_insert_with(BTreeMap::new)
                .insert(stack.to_owned(), id.clone());
        }
        if let Some(broker) = broker(aws, &broker_name(name, stack)).await? {
            broker.fill(&mut e);
            brokers.insert(stack.to_owned(), broker.id);
        }
        if let Some(ns) = &namespace {
            let prefix = format!("{stack}/");
            let here = services.keys().filter_map(|k| k.strip_prefix(&prefix));
            discovery::fill_urls(&mut e, stack, here, &ns.name);
        }
        endpoints.insert(stack.to_owned(), e);
    }
    m.services = Some(services);
    m.task_definitions = Some(task_definitions);
    m.brokers = Some(brokers);
    m.endpoints = Some(endpoints);
    Ok(m)
}

/// A `single_instance` deployment, imported as `<name>@<cluster>` (its
/// cluster is not one it created, so the name alone does not find it).
pub async fn find_single(
    aws: &Clients,
    name: &str,
    cluster: &str,
) -> Result<DeploymentModel, Diagnostics> {
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .map_err(|e| ApiError::new("ECS DescribeClusters", format!("cluster {cluster:?}"), &e))?;
    let Some(cluster_arn) = clusters
        .clusters()
        .iter()
        .find(|c| c.status() == Some("ACTIVE"))
        .and_then(|c| c.cluster_arn())
        .map(str::to_owned)
    else {
        return Err(Diagnostic::error(
            "Cannot import",
            format!("No ECS cluster {cluster:?} is active."),
        )
        .into());
    };
    let (services, task_definitions, _) = services(aws, &cluster_arn, name).await?;
    let registered = match task_definitions.get(single::KEY) {
        Some(arn) => ecs::describe_task_definition(&aws.ecs, arn).await?,
        None => None,
    };
    let Some(registered) = registered else {
        return Err(Diagnostic::error(
            "Cannot import",
            format!(
                "Cluster {cluster:?} runs no single-instance deployment {name:?} (no service tagged {TAG_PART}={}).",
                single::KEY
            ),
        )
        .into());
    };
    Ok(DeploymentModel {
        name: name.to_owned(),
        kind: SINGLE_INSTANCE.to_owned(),
        id: Some(name.to_owned()),
        cluster_arn: Some(cluster_arn),
        status: Some("ready".to_owned()),
        services: Some(services),
        task_definitions: Some(task_definitions),
        endpoints: Some(BTreeMap::from([(
            single::STACK.to_owned(),
            single::endpoints_registered(&registered),
        )])),
        ..DeploymentModel::default()
    })
}

/// ARNs by `stack/service`, from the services' `ep:part` tags.
type Arns = BTreeMap<String, String>;

/// Service, task definition and Cloud Map service ARNs by `stack/service`.
async fn services(
    aws: &Clients,
    cluster: &str,
    name: &str,
) -> Result<(Arns, Arns, Arns), Diagnostics> {
    let mut arns = Vec::new();
    let mut pages = aws
        .ecs
        .list_services()
        .cluster(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| ApiError::new("ECS ListServices", format!("cluster {cluster:?}"), &e))?;
        arns.extend(page.service_arns().iter().cloned());
    }
    let (mut services, mut tds, mut registries) = (Arns::new(), Arns::new(), Arns::new());
    // DescribeServices takes at most 10 services a call.
    for chunk in arns.chunks(10) {
        let out = aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(|e| {
                ApiError::new("ECS DescribeServices", format!("cluster {cluster:?}"), &e)
            })?;
        for s in out
            .services()
            .iter()
            .filter(|s| s.status() != Some("INACTIVE"))
        {
            let tag = |k: &str| {
                s.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            if tag(TAG_DEPLOYMENT) != Some(name) {
                continue;
            }
            if let (Some(part), Some(arn), Some(td)) =
                (tag(TAG_PART), s.service_arn(), s.task_definition())
            {
                services.insert(part.to_owned(), arn.to_owned());
                tds.insert(part.to_owned(), td.to_owned());
                if let Some(r) = s
                    .service_registries()
                    .first()
                    .and_then(|r| r.registry_arn())
                {
                    registries.insert(part.to_owned(), r.to_owned());
                }
            }
        }
    }
    Ok((services, tds, registries))
}

/// Stack → (instance, address, port) of the deployment's databases.
async fn databases(
    aws: &Clients,
    name: &str,
) -> Result<BTreeMap<String, (String, String, u16)>, Diagnostics> {
    let mut found = BTreeMap::new();
    let mut pages = aws.rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| ApiError::new("RDS DescribeDBInstances", "every DB instance", &e))?;
        for i in page.db_instances() {
            let tag = |k: &str| {
                i.tag_list()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            if tag(TAG_DEPLOYMENT) != Some(name) || i.db_instance_status() == Some("deleting") {
                continue;
            }
            let Some(stack) = tag(TAG_PART).and_then(|p| p.strip_suffix("/database")) else {
                continue;
            };
            let endpoint = i
                .endpoint()
                .and_then(|e| Some((e.address()?.to_owned(), u16::try_from(e.port()?).ok()?)));
            if let (Some(id), Some((address, port))) = (i.db_instance_identifier(), endpoint) {
                found.insert(stack.to_owned(), (id.to_owned(), address, port));
            }
        }
    }
    Ok(found)
}

/// The broker called `broker_name`, if it exists.
async fn broker(aws: &Clients, broker_name: &str) -> Result<Option<mq::Broker>, Diagnostics> {
    let list = aws
        .mq
        .list_brokers()
        .send()
        .await
        .map_err(|e| ApiError::new("MQ ListBrokers", "every broker", &e))?;
    let Some(id) = list
        .broker_summaries()
        .iter()
        .find(|b| b.broker_name() == Some(broker_name))
        .and_then(|b| b.broker_id())
    else {
        return Ok(None);
    };
    Ok(match mq::describe_broker(&aws.mq, id).await? {
        Observed::Status(_, b) => Some(b),
        Observed::NotFound => None,
    })
}
