//! `ep_endpoint_publication`: a deployment's endpoints (key → value) in a
//! config store, Consul KV or SSM Parameter Store, where Elastic Path's
//! images read them at start through envconsul. Replaces CloudDeploy's
//! RDSEndpointFunction and ActiveMqEndpointFunction Lambdas.
//!
//! The resource owns the keys it wrote (`keys`), not the prefix. Read
//! reads every owned key back, so a value changed or deleted outside
//! Terraform shows as drift and the next apply restores it. Delete removes
//! only owned keys that still hold their published values. Import takes
//! every key under a prefix: `consul:<prefix>[@<address>]` or
//! `ssm:<prefix>[@<path_prefix>]`.

mod apply;
mod layout;
pub(crate) mod model;
pub(crate) mod schema;
pub(crate) mod target;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::provider::ProviderData;
use crate::framework::{
    AttrPath, Diagnostic, Diagnostics, Known, Op, Operation, Phase, Plan, Planning, Schema,
    TimeoutDefaults, TypedResource,
};
use crate::stores::keys;
use model::{ConsulBlock, PublicationModel, SsmBlock};
use target::Target;

/// The `ep_endpoint_publication` resource.
pub struct EndpointPublication {
    data: Arc<ProviderData>,
}

impl EndpointPublication {
    pub(crate) fn new(data: Arc<ProviderData>) -> Self {
        EndpointPublication { data }
    }
}

/// The target of a planning model, when both blocks are known.
fn planned_target(m: &PublicationModel<Planning>) -> Option<Target> {
    Target::of(m.consul.get()?, m.ssm.get()?).ok()
}

/// Value and name checks of the store, where everything they need is known.
fn validate_store_limits(config: &PublicationModel<Planning>) -> Diagnostics {
    let mut d = Diagnostics::new();
    let (Some(values), Some(sensitive), Some(endpoints)) = (
        config.values.get(),
        config.sensitive_values.get(),
        config.endpoints.get(),
    ) else {
        return d;
    };
    let desired = match layout::desired(values.as_ref(), sensitive.as_ref(), endpoints.as_ref()) {
        Ok(x) => x,
        Err(errs) => {
            for e in errs {
                d.push(Diagnostic::error("Invalid key", e.message).at(e.path));
            }
            return d;
        }
    };
    let Some(target) = planned_target(config) else {
        return d;
    };
    let errs = match &target {
        Target::Consul(_) => layout::check_values(&desired, &keys::check_consul_value),
        Target::Ssm(s) => {
            let tier = s.tier.clone();
            let mut errs = layout::check_values(&desired, &move |v: &str| {
                keys::check_ssm_value(v, tier.as_deref())
            });
            if let Some(prefix) = config.prefix.get() {
                for (rel, want) in &desired {
                    if let Err(e) = keys::check_ssm_name(&target.full_key(prefix, rel)) {
                        errs.push(layout::LayoutError {
                            path: want.source.path(rel),
                            message: e.to_string(),
                        });
                    }
                }
            }
            errs
        }
    };
    for e in errs {
        d.push(Diagnostic::error("Invalid value or name for the store", e.message).at(e.path));
    }
    d
}

/// Parses an import ID into the prefix and the target.
fn parse_import_id(id: &str) -> Result<(String, Target), Diagnostics> {
    let bad = |why: &str| -> Diagnostics {
        Diagnostic::error(
            "Invalid import ID",
            format!(
                "{id:?}: {why}. Expected consul:<prefix>[@<address>][?dc=<dc>&ns=<namespace>] \
                 or ssm:<prefix>[@<path_prefix>], e.g. consul:ep/author/@127.0.0.1:8500?ns=team-a \
                 or ssm:author/@/ep/."
            ),
        )
        .into()
    };
    let (kind, rest) = id.split_once(':').ok_or_else(|| bad("no store"))?;
    // Keys never hold `?`, so what follows one is the Consul query.
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) if kind == "consul" => (r, Some(q)),
        Some(_) => return Err(bad("only a consul ID takes ?dc= and ?ns=")),
        None => (rest, None),
    };
    let (mut datacenter, mut namespace) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "dc" if !v.is_empty() => datacenter = Some(v.into_owned()),
            "ns" if !v.is_empty() => namespace = Some(v.into_owned()),
            other => return Err(bad(&format!("unexpected query parameter {other:?}"))),
        }
    }
    let (prefix, at) = match rest.split_once('@') {
        Some((p, a)) => (p, Some(a.to_owned())),
        None => (rest, None),
    };
    keys::check_prefix(prefix).map_err(|e| bad(&format!("the prefix {e}")))?;
    let target = match kind {
        "consul" => Target::Consul(ConsulBlock {
            address: at,
            scheme: None,
            token: None,
            datacenter,
            namespace,
            ca_file: None,
        }),
        "ssm" => {
            if let Some(p) = &at {
                keys::check_ssm_path_prefix(p).map_err(|e| bad(&format!("the path prefix {e}")))?;
            }
            Target::Ssm(SsmBlock {
                path_prefix: at,
                key_id: None,
                tier: None,
                tags: None,
            })
        }
        _ => return Err(bad("the store is neither consul nor ssm")),
    };
    Ok((prefix.to_owned(), target))
}

#[async_trait]
impl TypedResource for EndpointPublication {
    type Model<P: Phase> = PublicationModel<P>;
    type Private = ();

    fn type_name(&self) -> &'static str {
        "ep_endpoint_publication"
    }

    fn schema(&self) -> Schema {
        schema::resource()
    }

    fn timeouts(&self) -> TimeoutDefaults {
        TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(5 * 60))
            .with(Operation::Update, Duration::from_secs(5 * 60))
            .with(Operation::Delete, Duration::from_secs(5 * 60))
    }

    async fn validate(&self, config: &PublicationModel<Planning>) -> Diagnostics {
        let mut d = target::validate(&config.prefix, &config.consul, &config.ssm);
        d.extend(validate_store_limits(config));
        d
    }

    async fn plan(&self, plan: &mut Plan<Self>) -> Result<(), Diagnostics> {
        let target = planned_target(&plan.config);
        // Another store (or another Consul, datacenter, path prefix) holds
        // other keys: replace, so the old keys are removed from the old store.
        if let Some(prior) = &plan.prior {
            let before = Target::of(&prior.consul, &prior.ssm)
                .ok()
                .and_then(|t| t.identity());
            let after = target.as_ref().and_then(Target::identity);
            if after.is_none() || before != after {
                let block = match &target {
                    Some(Target::Ssm(_)) => "ssm",
                    _ => "consul",
                };
                plan.replace.push(AttrPath::root(block));
            }
        }
        // A successful apply confirms every write.
        plan.planned.unconfirmed = Known::Known(None);
        let (Some(target), Some(prefix)) = (target, plan.config.prefix.get().cloned()) else {
            plan.planned.id = Known::Unknown;
            plan.planned.keys = Known::Unknown;
            return Ok(());
        };
        plan.planned.id = Known::Known(Some(target.id(&prefix)));
        let c = &plan.config;
        plan.planned.keys = match (c.values.get(), c.sensitive_values.get(), c.endpoints.get()) {
            (Some(v), Some(s), Some(e)) => {
                match layout::desired(v.as_ref(), s.as_ref(), e.as_ref()) {
                    Ok(d) => Known::Known(Some(
                        d.keys().map(|rel| target.full_key(&prefix, rel)).collect(),
                    )),
                    Err(_) => Known::Unknown,
                }
            }
            _ => Known::Unknown,
        };
        Ok(())
    }

    async fn create(
        &self,
        op: &Op<()>,
        config: PublicationModel,
        _planned: PublicationModel<Planning>,
    ) -> Result<PublicationModel, Diagnostics> {
        let target = Target::of(&config.consul, &config.ssm)?;
        let store = target.connect(&self.data).await?;
        apply::publish(op, &store, &target, None, config).await
    }

    async fn update(
        &self,
        op: &Op<()>,
        prior: PublicationModel,
        config: PublicationModel,
        _planned: PublicationModel<Planning>,
    ) -> Result<PublicationModel, Diagnostics> {
        let target = Target::of(&config.consul, &config.ssm)?;
        let store = target.connect(&self.data).await?;
        apply::publish(op, &store, &target, Some(&prior), config).await
    }

    async fn read(
        &self,
        op: &Op<()>,
        mut state: PublicationModel,
    ) -> Result<Option<PublicationModel>, Diagnostics> {
        let target = Target::of(&state.consul, &state.ssm)?;
        let store = target.connect(&self.data).await?;
        let current = apply::list(op, &store, &target.full_prefix(&state.prefix)).await?;
        let desired = apply::desired_full(&state, &target)?;
        let owned: std::collections::BTreeSet<String> =
            state.keys.clone().unwrap_or_default().into_iter().collect();
        for (full, (rel, want)) in &desired {
            let seen = current
                .get(full)
                .filter(|_| owned.contains(full))
                .filter(|e| matches!(target, Target::Consul(_)) || e.secure == want.secure)
                .map(|e| e.value.clone());
            // A value seen is put back where it came from; a key deleted
            // (or never written) is taken out, so the plan adds it back.
            match &want.source {
                layout::Source::Values | layout::Source::Sensitive => {
                    let map = if want.source == layout::Source::Values {
                        state.values.as_mut()
                    } else {
                        state.sensitive_values.as_mut()
                    };
                    if let Some(map) = map {
                        match seen {
                            Some(v) => map.insert(rel.clone(), v),
                            None => map.remove(rel),
                        };
                    }
                }
                layout::Source::Endpoint { stack, name } => {
                    if let Some(map) = state.endpoints.as_mut().and_then(|e| e.get_mut(stack)) {
                        match seen {
                            Some(v) => map.insert(name.clone(), Some(v)),
                            None => map.remove(name),
                        };
                    }
                }
            }
        }
        Ok(Some(state))
    }

    async fn delete(&self, op: &Op<()>, state: PublicationModel) -> Result<(), Diagnostics> {
        let target = Target::of(&state.consul, &state.ssm)?;
        let store = target.connect(&self.data).await?;
        apply::unpublish(op, &store, &target, state).await
    }

    async fn import(&self, op: &Op<()>, id: &str) -> Result<PublicationModel, Diagnostics> {
        let (prefix, target) = parse_import_id(id)?;
        let store = target.connect(&self.data).await?;
        let full_prefix = target.full_prefix(&prefix);
        let current = apply::list(op, &store, &full_prefix).await?;
        if current.is_empty() {
            return Err(Diagnostic::error(
                "Cannot import",
                format!(
                    "There are no keys under {full_prefix:?} in {}.",
                    store.describe()
                ),
            )
            .into());
        }
        let mut values = BTreeMap::new();
        let mut sensitive = BTreeMap::new();
        for (full, e) in &current {
            let Some(rel) = full.strip_prefix(&full_prefix).map(str::to_owned) else {
                continue;
            };
            if e.secure {
                sensitive.insert(rel, e.value.clone());
            } else {
                values.insert(rel, e.value.clone());
            }
        }
        let (consul, ssm) = match &target {
            Target::Consul(c) => (Some(c.clone()), None),
            Target::Ssm(s) => (None, Some(s.clone())),
        };
        Ok(PublicationModel {
            id: Some(target.id(&prefix)),
            prefix,
            values: Some(values).filter(|m| !m.is_empty()),
            sensitive_values: Some(sensitive).filter(|m| !m.is_empty()),
            endpoints: None,
            overwrite: None,
            keys: Some(current.keys().cloned().collect()),
            unconfirmed: None,
            consul,
            ssm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids() {
        let Ok((p, t)) = parse_import_id("consul:ep/author/@127.0.0.1:8500") else {
            panic!("consul id")
        };
        assert_eq!(p, "ep/author/");
        assert_eq!(t.id(&p), "consul:ep/author/");
        let Ok((p, t)) = parse_import_id("ssm:author/@/ep/") else {
            panic!("ssm id")
        };
        assert_eq!(t.full_prefix(&p), "/ep/author/");
        assert_eq!(t.id(&p), "ssm:/ep/author/");
        let Ok((p, Target::Consul(c))) =
            parse_import_id("consul:ep/author/@127.0.0.1:8500?ns=team-a&dc=dc2")
        else {
            panic!("consul id with a namespace")
        };
        assert_eq!(p, "ep/author/");
        assert_eq!(c.address.as_deref(), Some("127.0.0.1:8500"));
        assert_eq!(c.namespace.as_deref(), Some("team-a"));
        assert_eq!(c.datacenter.as_deref(), Some("dc2"));
        assert!(parse_import_id("consul:ep/author/?partition=x").is_err());
        assert!(parse_import_id("ssm:author/?ns=a").is_err());
        assert!(parse_import_id("consul:ep/author").is_err());
        assert!(parse_import_id("vault:ep/").is_err());
        assert!(parse_import_id("ssm:a/@ep").is_err());
    }
}
