//! Acceptance harness: drives the real `terraform` CLI against the provider
//! built from this tree, the way terraform-plugin-testing does for Go
//! providers.
//!
//! A [`Workdir`] is one Terraform working directory in a temp dir, set up
//! with a CLI config whose filesystem mirror holds the freshly built
//! provider, so `terraform init` installs it as a user would get it and
//! Terraform launches it itself (handshake and AutoMTLS included). A
//! [`Scenario`] runs the standard lifecycle on a configuration: init,
//! validate, plan, apply, a plan without refresh and one with refresh that
//! must both be empty, optional import with every attribute compared,
//! destroy, and a check through the API that nothing is left.

#![forbid(unsafe_code)]

pub mod consul;
pub mod env;
pub mod hold_proxy;
pub mod mariadb;
pub mod moto;
pub mod oci;
mod scenario;
pub mod schema_docs;
pub mod script_server;
pub mod static_server;
pub mod tls;
mod workdir;

pub use env::{repo_root, TestEnv};
pub use scenario::{Scenario, Step};
pub use workdir::{Output, Workdir};

/// The provider's source address as configurations write it.
pub const PROVIDER_SOURCE: &str = "ep-platform/ep";
/// The version the mirror advertises.
pub const PROVIDER_VERSION: &str = "0.1.0";

/// The `terraform` block every test configuration starts with: this
/// provider, found through the test CLI config's filesystem mirror.
pub const HEADER: &str = r#"terraform {
  required_providers {
    ep = { source = "ep-platform/ep" }
  }
}
"#;

/// Runs `cmd`, which must succeed (else the test fails with its output);
/// its standard output.
pub fn run_checked(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
