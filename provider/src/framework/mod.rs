//! The tfplugin6 side of the provider: dynamic values, schemas, diagnostics and
//! the gRPC service adapter. Knows nothing of Elastic Path.

pub mod diagnostics;
pub mod dynamic;
pub mod model;
pub mod operation;
pub mod path;
pub mod schema;
pub mod server;
pub mod state_upgrade;
pub mod timeouts;
pub mod traits;
pub mod typed;
pub mod waiter;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use dynamic::{Type, Value};
pub use model::{Applying, Known, Phase, Planning};
pub use operation::{blocking, Interrupted, Op, Stopper};
pub use path::AttrPath;
pub use schema::{Attribute, Block, Nesting, Schema};
pub use timeouts::{Operation, TimeoutDefaults};
pub use traits::{
    ApplyRequest, ConfigureRequest, DataSource, Imported, PlanRequest, PlanResponse, Provider,
    ReadRequest, Resource, StateResponse,
};
pub use typed::{Plan, Typed, TypedData, TypedDataSource, TypedResource};
pub use waiter::{NotFound, Observed, WaitError, Waiter};
