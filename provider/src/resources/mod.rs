//! Elastic Path resources and data sources, and the `provider "ep"` block.

mod caller_identity;
mod deployment_package;
mod image;
mod provider;

pub use provider::{EpProvider, ProviderData};

use std::sync::Arc;

use crate::framework::server::ProviderService;

/// The gRPC service for the ep provider, ready to serve.
pub fn provider_service() -> ProviderService {
    ProviderService::new(Arc::new(EpProvider::new()))
}
