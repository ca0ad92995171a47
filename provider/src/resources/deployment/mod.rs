//! `ep_deployment`: an Author and Live Elastic Path environment on ECS, RDS
//! and Amazon MQ.
//!
//! The rules that hold without AWS (Fargate sizes, Amazon MQ credentials and
//! versions, the task definition normal form, the steady-state judgement,
//! the services' wiring) live apart from the calls that use them, each with
//! its own tests.

mod apply;
mod broker;
mod catalogue;
mod changes;
mod database;
mod discovery;
pub(crate) mod ecs;
mod import;
mod model;
mod mq;
mod registration;
mod resource;
mod schema;
mod single;
mod steady;
pub(crate) mod taskdef;
mod validate;
mod wiring;

pub use changes::describe as describe_changes;
pub use model::DeploymentModel;
pub use resource::Deployment;
