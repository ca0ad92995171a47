//! `ep_deployment`: an Author and Live, or single-instance, Elastic Path
//! environment on ECS, RDS and Amazon MQ.
//!
//! Built up in steps: the rules that hold without AWS (Fargate sizes, Amazon
//! MQ credentials and versions, task definition comparison, the steady-state
//! judgement) come first, each with its tests; the resource that uses them
//! follows. Until then they are used only by their tests.
#![cfg_attr(not(test), allow(dead_code))]

pub mod broker;
pub mod catalogue;
pub mod fargate;
pub mod model;
pub mod schema;
pub mod steady;
pub mod taskdef;
pub mod validate;
