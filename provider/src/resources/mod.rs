//! Elastic Path resources and data sources, and the `provider "ep"` block.

mod caller_identity;
mod config_store;
mod database_image;
mod deployment;
mod deployment_package;
mod fixture;
mod image;
mod package_info_cache;
mod provider;
mod publication;
mod rds_snapshot;

pub use deployment::{describe_changes as deployment_changes, DeploymentModel};
pub use provider::{EpProvider, ProviderData};

use std::sync::Arc;

use crate::framework::server::ProviderService;

/// The gRPC service for the ep provider, ready to serve.
pub fn provider_service() -> ProviderService {
    ProviderService::new(Arc::new(EpProvider::new()))
}

#[cfg(test)]
mod tests {
    use crate::framework::Provider;

    use super::EpProvider;

    /// Every typed model and its schema agree, attribute for attribute: a
    /// renamed attribute or a misspelt field fails here, not in a user's plan.
    #[test]
    fn every_model_matches_its_schema() {
        let p = EpProvider::new();
        let mut problems = Vec::new();
        for r in p.resources() {
            problems.extend(r.check_model().err());
        }
        // Served only under test, checked always.
        let fixture = crate::framework::Typed::new(super::fixture::Fixture);
        problems.extend(crate::framework::Resource::check_model(&fixture).err());
        for d in p.data_sources() {
            problems.extend(d.check_model().err());
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
