//! terraform-provider-ep: a Terraform provider for Elastic Path Commerce on AWS.
//!
//! Three layers with one-way dependencies: [`plugin`] (go-plugin process
//! plumbing) and [`framework`] (tfplugin6 protocol, values, schemas,
//! diagnostics) know nothing of Elastic Path; [`resources`] holds the EP
//! resources and data sources built on them, with [`aws`] for SDK clients.

#![forbid(unsafe_code)]

pub mod aws;
pub mod datapop;
pub mod dbserver;
pub mod framework;
pub mod logging;
pub mod plan_summary;
pub mod plugin;
pub mod resources;
pub mod stores;
