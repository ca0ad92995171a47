//! Plan helpers shared by resources.

use std::collections::BTreeMap;

use super::dynamic::Value;
use super::schema::{Block, Presence};

/// The proposed state with every computed attribute the configuration left
/// null marked unknown: what a create (or an update that will recompute
/// them) must plan.
pub fn computed_unknown(proposed: &Value, block: &Block) -> Value {
    let Value::Object(attrs) = proposed else {
        return proposed.clone();
    };
    let mut out: BTreeMap<String, Value> = attrs.clone();
    for a in &block.attributes {
        let computed = matches!(a.presence, Presence::Computed | Presence::OptionalComputed);
        if computed && out.get(&a.name).is_none_or(Value::is_null) {
            out.insert(a.name.clone(), Value::unknown());
        }
    }
    Value::Object(out)
}

/// The prior value of every computed-only attribute copied into `proposed`:
/// what an update keeps when nothing that feeds those attributes changed.
pub fn keep_computed(proposed: &Value, prior: &Value, block: &Block) -> Value {
    let (Value::Object(attrs), Value::Object(old)) = (proposed, prior) else {
        return proposed.clone();
    };
    let mut out = attrs.clone();
    for a in block
        .attributes
        .iter()
        .filter(|a| a.presence == Presence::Computed)
    {
        if let Some(v) = old.get(&a.name) {
            out.insert(a.name.clone(), v.clone());
        }
    }
    Value::Object(out)
}
