//! Reading `terraform show -json` change records.

use serde_json::Value;

use crate::resources::DeploymentModel;

/// Placeholder for a value Terraform knows only after apply.
pub const UNKNOWN: &str = "(known after apply)";

/// The change's actions (`create`, `update`, `delete`, …).
pub fn actions(rc: &Value) -> Vec<String> {
    rc["change"]["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a value (after [`after_with_unknowns`]) is unknown.
pub fn is_unknown(v: &Value) -> bool {
    v.as_str() == Some(UNKNOWN)
}

/// `after`, with every value `after_unknown` marks replaced by [`UNKNOWN`].
pub fn after_with_unknowns(change: &Value) -> Value {
    let mut after = change["after"].clone();
    mark(&mut after, &change["after_unknown"]);
    after
}

fn mark(v: &mut Value, unknown: &Value) {
    match unknown {
        Value::Bool(true) => *v = Value::String(UNKNOWN.to_owned()),
        Value::Object(m) => {
            if v.is_null() {
                *v = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(obj) = v {
                for (k, u) in m {
                    mark(obj.entry(k.clone()).or_insert(Value::Null), u);
                }
            }
        }
        Value::Array(items) => {
            if let Value::Array(arr) = v {
                for (item, u) in arr.iter_mut().zip(items) {
                    mark(item, u);
                }
            }
        }
        _ => {}
    }
}

/// A deployment's before/after as its model; `None` when it does not fit
/// (e.g. a number not known until apply).
pub fn model(v: &Value) -> Option<DeploymentModel> {
    let Value::Object(attrs) = v else {
        return None;
    };
    // Outputs not known until apply are left out (null); unknown inputs
    // inside blocks stay as the placeholder text, which is what a change
    // summary shows for them.
    let known: serde_json::Map<String, Value> = attrs
        .iter()
        .filter(|(_, v)| !is_unknown(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(known)).ok()
}
