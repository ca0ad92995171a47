//! A daemonless, reproducible OCI image builder for Elastic Path deployment
//! packages. Knows nothing of Terraform.

#![forbid(unsafe_code)]

pub mod build;
pub mod build_info;
pub mod cache;
pub mod digest;
pub mod image;
pub mod layer;
pub mod layering;
pub mod package;
pub mod registry;
pub mod source;
pub mod synthetic;

/// An error with its sources, `: `-joined, each cause once (HTTP and SDK
/// errors often say little at the top and the reason further down).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = s.source();
    }
    text
}
