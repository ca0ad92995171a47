//! The tfplugin6 side of the provider: dynamic values, schemas, diagnostics and
//! the gRPC service adapter. Knows nothing of Elastic Path.

pub mod diagnostics;
pub mod dynamic;
pub mod path;
pub mod plan;
pub mod schema;
pub mod server;
pub mod state_upgrade;
pub mod traits;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use dynamic::{Type, Value};
pub use path::AttrPath;
pub use schema::{Attribute, Block, Nesting, Schema};
pub use traits::{
    ApplyRequest, ConfigureRequest, DataSource, PlanRequest, PlanResponse, Provider, Resource,
    StateResponse,
};
