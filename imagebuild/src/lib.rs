//! A daemonless, reproducible OCI image builder for Elastic Path deployment
//! packages. Knows nothing of Terraform.

pub mod digest;
pub mod package;
pub mod registry;
pub mod synthetic;
