//! Generated bindings for the wire protocols the provider speaks.
//!
//! Nothing but generated code lives here; conversions and logic belong to the
//! provider's `framework` and `plugin` modules.

#![forbid(unsafe_code)]
#![allow(clippy::all, missing_docs, rustdoc::all)]

/// Terraform's provider protocol, version 6.10.
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller, stdio and broker services.
pub mod go_plugin {
    tonic::include_proto!("plugin");
}
