//! The tfplugin6 side of the provider: dynamic values, schemas, diagnostics and
//! the gRPC service adapter. Knows nothing of Elastic Path.

pub mod dynamic;
