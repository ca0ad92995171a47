//! Elastic Path resources and data sources.
