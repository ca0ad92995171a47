//! Where a publication (or an `ep_config_store` read) goes: exactly one of
//! the `consul` and `ssm` blocks, plus the prefix; the full store keys and
//! the ID follow from them.

use std::sync::Arc;

use crate::framework::{AttrPath, Diagnostic, Diagnostics, Known};
use crate::resources::provider::ProviderData;
use crate::stores::consul::ConsulClient;
use crate::stores::ssm::SsmStore;
use crate::stores::{keys, Store, StoreError};

use super::model::{ConsulBlock, SsmBlock};

/// The store and prefix, resolved.
#[derive(Clone, Debug)]
pub enum Target {
    /// Consul KV.
    Consul(ConsulBlock),
    /// SSM Parameter Store.
    Ssm(SsmBlock),
}

impl Target {
    /// The target of a wholly known configuration.
    pub fn of(consul: &Option<ConsulBlock>, ssm: &Option<SsmBlock>) -> Result<Self, Diagnostics> {
        match (consul, ssm) {
            (Some(c), None) => Ok(Target::Consul(c.clone())),
            (None, Some(s)) => Ok(Target::Ssm(s.clone())),
            _ => Err(one_store_error().into()),
        }
    }

    /// The full store key of `rel` under `prefix`.
    pub fn full_key(&self, prefix: &str, rel: &str) -> String {
        format!("{}{rel}", self.full_prefix(prefix))
    }

    /// The full store prefix.
    pub fn full_prefix(&self, prefix: &str) -> String {
        match self {
            Target::Consul(_) => prefix.to_owned(),
            Target::Ssm(s) => format!("{}{prefix}", s.path_prefix()),
        }
    }

    /// `consul:<prefix>` or `ssm:<full prefix>`.
    pub fn id(&self, prefix: &str) -> String {
        match self {
            Target::Consul(_) => format!("consul:{prefix}"),
            Target::Ssm(_) => format!("ssm:{}", self.full_prefix(prefix)),
        }
    }

    /// What identifies the store itself: a change means other keys elsewhere,
    /// so a replacement. `None` when it cannot be resolved.
    pub fn identity(&self) -> Option<String> {
        match self {
            Target::Consul(c) => {
                let s = c.settings();
                Some(format!(
                    "consul {} dc={} ns={}",
                    s.base_url().ok()?,
                    s.datacenter.unwrap_or_default(),
                    s.namespace.unwrap_or_default()
                ))
            }
            Target::Ssm(s) => Some(format!("ssm {}", s.path_prefix())),
        }
    }

    /// Connects (no request yet for Consul; SSM builds its AWS client).
    pub async fn connect(&self, data: &Arc<ProviderData>) -> Result<Store, Diagnostics> {
        match self {
            Target::Consul(c) => ConsulClient::new(&c.settings())
                .map(Store::Consul)
                .map_err(|e| store_diagnostic("Cannot set up the Consul client", &e, None)),
            Target::Ssm(s) => {
                let aws = data.aws()?;
                let client = aws.ssm().await.map_err(|e| {
                    Diagnostics::from(Diagnostic::error(
                        "Cannot set up the SSM client",
                        e.to_string(),
                    ))
                })?;
                Ok(Store::Ssm(SsmStore::new(client, s.options())))
            }
        }
    }
}

fn one_store_error() -> Diagnostic {
    Diagnostic::error(
        "Exactly one config store",
        "Set exactly one of the `consul` and `ssm` blocks: where the keys are published.",
    )
}

/// A store failure as a diagnostic, at `path` when one key is to blame.
pub fn store_diagnostic(summary: &str, e: &StoreError, path: Option<AttrPath>) -> Diagnostics {
    let d = Diagnostic::error(summary, e.to_string());
    match path {
        Some(p) => d.at(p).into(),
        None => d.into(),
    }
}

/// Checks the store blocks, the prefix and the full names a configuration
/// implies, where they are known.
pub fn validate(
    prefix: &Known<String>,
    consul: &Known<Option<ConsulBlock>>,
    ssm: &Known<Option<SsmBlock>>,
) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let (Known::Known(c), Known::Known(s)) = (consul, ssm) {
        if c.is_some() == s.is_some() {
            d.push(one_store_error());
        }
    }
    if let Known::Known(p) = prefix {
        if let Err(e) = keys::check_prefix(p) {
            d.attr_error(
                AttrPath::root("prefix"),
                "Invalid prefix",
                format!("prefix {p:?} {e}"),
            );
        }
    }
    if let Known::Known(Some(c)) = consul {
        if let Err(e) = c.settings().base_url() {
            d.attr_error(
                AttrPath::root("consul").attr("address"),
                "Invalid Consul address",
                e.to_string(),
            );
        }
    }
    if let Known::Known(Some(s)) = ssm {
        if let Err(e) = keys::check_ssm_path_prefix(s.path_prefix()) {
            d.attr_error(
                AttrPath::root("ssm").attr("path_prefix"),
                "Invalid SSM path prefix",
                format!("path_prefix {:?} {e}", s.path_prefix()),
            );
        }
        if let Some(t) = &s.tier {
            if !matches!(t.as_str(), "Standard" | "Advanced" | "Intelligent-Tiering") {
                d.attr_error(
                    AttrPath::root("ssm").attr("tier"),
                    "Invalid SSM tier",
                    format!("tier {t:?} is not Standard, Advanced or Intelligent-Tiering"),
                );
            }
        }
    }
    d
}
