//! A daemonless, reproducible OCI image builder for Elastic Path deployment
//! packages. Knows nothing of Terraform.

#![forbid(unsafe_code)]

pub mod build;
pub mod cache;
pub mod digest;
pub mod image;
pub mod layer;
pub mod layering;
pub mod package;
pub mod registry;
pub mod synthetic;
