//! Service discovery during an apply: the namespace, one Cloud Map service
//! per ECS service (in state the moment it exists), the URLs the endpoints
//! carry, and removal of what the configuration no longer names — always
//! after the ECS services stopped registering with it.

use std::collections::BTreeMap;

use super::apply::{Clients, Converge};
use super::discovery::{self, Namespace};
use super::model::{DeploymentModel, DeploymentPrivate};
use super::wiring::StackWiring;
use crate::framework::{AttrPath, Diagnostic, Diagnostics, Observed, Op};

impl Converge<'_> {
    /// The namespace the configuration names or has created; `None`
    /// without `service_discovery`.
    pub(super) async fn discovery_namespace(&self) -> Result<Option<Namespace>, Diagnostics> {
        let Some(block) = &self.config.service_discovery else {
            return Ok(None);
        };
        let sd = &self.aws.discovery;
        let ns = if let Some(id) = &block.namespace_id {
            match discovery::get_namespace(sd, id).await? {
                Observed::Status(_, ns) => ns,
                Observed::NotFound => {
                    return Err(Diagnostic::error(
                        "Cloud Map namespace not found",
                        format!(
                            "There is no Cloud Map namespace {id:?} in this account and region."
                        ),
                    )
                    .at(AttrPath::root("service_discovery").attr("namespace_id"))
                    .into())
                }
            }
        } else {
            let name = discovery::own_namespace_name(block, &self.config.name);
            let vpc = block.vpc_id.as_deref().unwrap_or_default();
            let ns = discovery::create_namespace(
                sd,
                self.op,
                &self.config.name,
                &name,
                vpc,
                &self.tags("discovery"),
            )
            .await?;
            self.op.update_private(|p| p.own_namespace(&ns.id));
            ns
        };
        self.record(|s| s.discovery_namespace_id = Some(ns.id.clone()))?;
        Ok(Some(ns))
    }

    /// Adds the services' URLs in `ns` to each stack's endpoints (search's
    /// becomes the Tomcats' `EP_SEARCH_MASTER_URL`).
    pub(super) fn service_urls(
        &self,
        ns: &Namespace,
        wirings: &mut BTreeMap<String, StackWiring>,
    ) -> Result<(), Diagnostics> {
        for (stack, w) in wirings.iter_mut() {
            let services = self
                .config
                .service
                .iter()
                .filter(|s| &s.stack == stack)
                .map(|s| s.name.as_str());
            discovery::fill_urls(&mut w.endpoints, stack, services, &ns.name);
        }
        self.record(|s| {
            let endpoints = s.endpoints.get_or_insert_with(BTreeMap::new);
            for (stack, w) in wirings.iter() {
                endpoints.insert(stack.clone(), w.endpoints.clone());
            }
        })
    }

    /// The Cloud Map service the ECS service `name` registers with: the one
    /// in state while it is in `ns`, else found by name or created.
    pub(super) async fn registry(
        &self,
        ns: &Namespace,
        key: &str,
        name: &str,
    ) -> Result<String, Diagnostics> {
        let sd = &self.aws.discovery;
        let known = self
            .snapshot()
            .discovery_services
            .and_then(|m| m.get(key).cloned());
        if let Some(arn) = &known {
            if discovery::namespace_of(sd, arn).await?.as_deref() == Some(ns.id.as_str()) {
                return Ok(arn.clone());
            }
        }
        let arn = discovery::ensure_service(sd, &ns.id, name, &self.tags(key)).await?;
        if let Some(old) = known.filter(|old| *old != arn) {
            // Deleted once the ECS service registers with the new one.
            self.op.update_private(|p| p.drop_registry(&old));
        }
        self.record(|s| {
            s.discovery_services
                .get_or_insert_with(BTreeMap::new)
                .insert(key.to_owned(), arn.clone());
        })?;
        Ok(arn)
    }

    /// Deletes the Cloud Map services no configured service registers with
    /// and the namespaces this deployment created but no longer uses.
    pub(super) async fn drop_unused_discovery(
        &self,
        ns: Option<&Namespace>,
    ) -> Result<(), Diagnostics> {
        let configured: Vec<String> = match ns {
            Some(_) => self
                .config
                .service
                .iter()
                .map(|s| format!("{}/{}", s.stack, s.name))
                .collect(),
            None => Vec::new(),
        };
        let unused: Vec<(String, String)> = self
            .snapshot()
            .discovery_services
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !configured.contains(k))
            .collect();
        for (_, arn) in &unused {
            self.op.update_private(|p| p.drop_registry(arn));
        }
        self.record(|s| {
            if let Some(m) = s.discovery_services.as_mut() {
                m.retain(|k, _| configured.contains(k));
            }
            if ns.is_none() {
                s.discovery_services = None;
            }
        })?;
        delete_dropped(&self.aws, self.op, ns.map(|n| n.id.as_str())).await?;
        if ns.is_none() {
            self.record(|s| s.discovery_namespace_id = None)?;
        }
        Ok(())
    }
}

/// Deletes the dropped Cloud Map services, then every namespace this
/// deployment created other than `keep`, each struck from private state
/// as it goes.
pub async fn delete_dropped(
    aws: &Clients,
    op: &Op<DeploymentPrivate>,
    keep: Option<&str>,
) -> Result<(), Diagnostics> {
    for arn in op.private().dropped_registries {
        tracing::info!(service = %arn, "deleting the Cloud Map service");
        discovery::delete_service(&aws.discovery, op, &arn).await?;
        op.update_private(|p| p.dropped_registries.retain(|x| *x != arn));
    }
    for id in op.private().owned_namespaces {
        if Some(id.as_str()) == keep {
            continue;
        }
        tracing::info!(namespace = %id, "deleting the Cloud Map namespace");
        discovery::delete_namespace(&aws.discovery, op, &id).await?;
        op.update_private(|p| p.owned_namespaces.retain(|x| *x != id));
    }
    Ok(())
}

/// On destroy: every Cloud Map service in state and every namespace the
/// deployment created (its ECS services are gone by then) — including one
/// whose creation an interrupted apply never saw finish, found by its name
/// and this deployment's tag.
pub async fn delete_all(
    aws: &Clients,
    op: &Op<DeploymentPrivate>,
    state: &DeploymentModel,
) -> Result<(), Diagnostics> {
    let arns: Vec<String> = state
        .discovery_services
        .clone()
        .unwrap_or_default()
        .into_values()
        .collect();
    op.update_private(|p| arns.iter().for_each(|arn| p.drop_registry(arn)));
    if let Some(block) = state
        .service_discovery
        .as_ref()
        .filter(|b| b.namespace_id.is_none())
    {
        let name = discovery::own_namespace_name(block, &state.name);
        for ns in discovery::namespaces_named(&aws.discovery, &name).await? {
            if ns.deployment.as_deref() == Some(state.name.as_str()) {
                op.update_private(|p| p.own_namespace(&ns.id));
            }
        }
    }
    delete_dropped(aws, op, None).await
}

/// What a refresh finds gone of the deployment's service discovery; the
/// gone Cloud Map services are struck from `state` so the apply makes them again.
pub async fn drift(aws: &Clients, state: &mut DeploymentModel) -> Result<Vec<String>, Diagnostics> {
    let mut problems = Vec::new();
    if let Some(id) = &state.discovery_namespace_id {
        if let Observed::NotFound = discovery::get_namespace(&aws.discovery, id).await? {
            problems.push(format!("the Cloud Map namespace {id} is gone"));
        }
    }
    if let Some(services) = state.discovery_services.as_mut() {
        for (key, arn) in services.clone() {
            if discovery::namespace_of(&aws.discovery, &arn)
                .await?
                .is_none()
            {
                problems.push(format!("the Cloud Map service of {key} is gone"));
                services.remove(&key);
            }
        }
    }
    Ok(problems)
}
