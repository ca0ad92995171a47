//! The framework's part of every plan and apply, on values and the schema:
//! replacements, which computed attributes become unknown, and how a
//! resource's model is merged back so inputs always stay as configured.

use std::collections::BTreeMap;

use crate::framework::dynamic::Value;
use crate::framework::schema::{Block, Presence, Recompute};
use crate::framework::timeouts;
use crate::framework::AttrPath;

/// The framework's default plan.
pub struct DefaultPlan {
    /// The planned value before the resource adjusts it.
    pub planned: Value,
    /// `force_new` attributes that changed.
    pub replace: Vec<AttrPath>,
    /// Whether this plans a create (no prior state, or a replacement).
    pub creating: bool,
}

fn attrs(v: &Value) -> BTreeMap<String, Value> {
    v.as_map().cloned().unwrap_or_default()
}

/// Plans a create or update of `block` from Terraform's proposed state.
pub fn default_plan(block: &Block, prior: &Value, proposed: &Value, config: &Value) -> DefaultPlan {
    let replace: Vec<AttrPath> = if prior.is_null() {
        Vec::new()
    } else {
        block
            .attributes
            .iter()
            .filter(|a| a.force_new && config.attr(&a.name) != prior.attr(&a.name))
            .filter(|a| !(a.is_computed() && config.attr(&a.name).is_null()))
            .map(|a| AttrPath::root(a.name.clone()))
            .collect()
    };
    let creating = prior.is_null() || !replace.is_empty();
    let changed = creating || inputs_changed(block, prior, proposed);
    let mut out = attrs(proposed);
    for a in block.attributes.iter().filter(|a| a.is_computed()) {
        if a.presence == Presence::OptionalComputed && !config.attr(&a.name).is_null() {
            continue;
        }
        let value = if creating {
            Value::unknown()
        } else if !changed {
            prior.attr(&a.name).clone()
        } else {
            match &a.recompute {
                Recompute::OnAnyChange => Value::unknown(),
                Recompute::Unless(inputs) => {
                    let steady = inputs.iter().all(|i| {
                        let now = proposed.attr(i);
                        now.is_wholly_known() && now == prior.attr(i)
                    });
                    if steady {
                        prior.attr(&a.name).clone()
                    } else {
                        Value::unknown()
                    }
                }
            }
        };
        out.insert(a.name.clone(), value);
    }
    DefaultPlan {
        planned: Value::Object(out),
        replace,
        creating,
    }
}

/// Whether any input (an attribute the configuration sets, or a nested
/// block other than `timeouts`) differs from the prior state.
fn inputs_changed(block: &Block, prior: &Value, proposed: &Value) -> bool {
    let attr_changed = block
        .attributes
        .iter()
        .filter(|a| a.presence != Presence::Computed)
        .any(|a| proposed.attr(&a.name) != prior.attr(&a.name));
    let block_changed = block
        .blocks
        .iter()
        .filter(|b| b.name != timeouts::BLOCK)
        .any(|b| proposed.attr(&b.name) != prior.attr(&b.name));
    attr_changed || block_changed
}

/// Whether a block has no computed attribute at any depth: its value is
/// the configuration's alone.
fn input_only(block: &Block) -> bool {
    block.attributes.iter().all(|a| !a.is_computed())
        && block.blocks.iter().all(|b| input_only(&b.block))
}

/// The resource's view of the object merged onto `base` (the proposed or
/// planned value): computed attributes come from `model`, except an
/// optional one the configuration set; everything the configuration owns
/// (other attributes, input-only blocks, `timeouts`) comes from `base`.
pub fn merge(block: &Block, base: &Value, model: &Value) -> Value {
    let mut out = attrs(model);
    for a in &block.attributes {
        let from_config = match a.presence {
            Presence::Required | Presence::Optional => true,
            // Set in the configuration: the configured value. Unset (null at
            // plan, unknown at apply): the resource's.
            Presence::OptionalComputed => {
                let v = base.attr(&a.name);
                !v.is_null() && v.is_known()
            }
            Presence::Computed => false,
        };
        if from_config {
            out.insert(a.name.clone(), base.attr(&a.name).clone());
        }
    }
    for b in &block.blocks {
        if b.name == timeouts::BLOCK || input_only(&b.block) {
            out.insert(b.name.clone(), base.attr(&b.name).clone());
        }
    }
    Value::Object(out)
}

/// The value without the framework-managed `timeouts` block, as models see it.
pub fn without_timeouts(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove(timeouts::BLOCK);
            Value::Object(m)
        }
        other => other.clone(),
    }
}

/// `model` with `timeouts` taken from `from` (configuration or prior state).
pub fn with_timeouts(model: Value, from: &Value, has_timeouts: bool) -> Value {
    match model {
        Value::Object(mut m) if has_timeouts => {
            m.insert(
                timeouts::BLOCK.to_owned(),
                from.attr(timeouts::BLOCK).clone(),
            );
            Value::Object(m)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Attribute, Type};

    fn block() -> Block {
        Block::new("")
            .attr(Attribute::required("repository", Type::String).force_new())
            .attr(Attribute::optional("tags", Type::list(Type::String)))
            .attr(
                Attribute::computed("registry", Type::String).keep_unless_changed(&["repository"]),
            )
            .attr(Attribute::computed("digest", Type::String))
    }

    fn state(repo: Value, tags: Value, registry: Value, digest: Value) -> Value {
        Value::object([
            ("repository", repo),
            ("tags", tags),
            ("registry", registry),
            ("digest", digest),
        ])
    }

    #[test]
    fn create_marks_every_computed_attribute_unknown() {
        let proposed = state(Value::string("r"), Value::Null, Value::Null, Value::Null);
        let p = default_plan(&block(), &Value::Null, &proposed, &proposed);
        assert!(p.creating && p.replace.is_empty());
        assert!(!p.planned.attr("registry").is_known());
        assert!(!p.planned.attr("digest").is_known());
    }

    #[test]
    fn unchanged_inputs_keep_everything() {
        let prior = state(
            Value::string("r"),
            Value::Null,
            Value::string("h"),
            Value::string("d"),
        );
        let p = default_plan(&block(), &prior, &prior, &prior);
        assert_eq!(p.planned, prior);
    }

    #[test]
    fn an_unknown_input_on_update_makes_dependent_outputs_unknown() {
        let prior = state(
            Value::string("r"),
            Value::Null,
            Value::string("h"),
            Value::string("d"),
        );
        let proposed = state(
            Value::string("r"),
            Value::list([Value::unknown()]),
            Value::string("h"),
            Value::string("d"),
        );
        let p = default_plan(&block(), &prior, &proposed, &proposed);
        assert!(!p.creating);
        assert_eq!(p.planned.attr("registry"), &Value::string("h"));
        assert!(!p.planned.attr("digest").is_known());
    }

    #[test]
    fn force_new_plans_a_create() {
        let prior = state(
            Value::string("r"),
            Value::Null,
            Value::string("h"),
            Value::string("d"),
        );
        let proposed = state(
            Value::unknown(),
            Value::Null,
            Value::string("h"),
            Value::string("d"),
        );
        let p = default_plan(&block(), &prior, &proposed, &proposed);
        assert_eq!(p.replace, vec![AttrPath::root("repository")]);
        assert!(!p.planned.attr("registry").is_known());
    }

    #[test]
    fn merge_keeps_inputs_from_the_plan() {
        let planned = state(
            Value::string("r"),
            Value::list([Value::string("a")]),
            Value::unknown(),
            Value::unknown(),
        );
        let model = state(
            Value::string("WRONG"),
            Value::Null,
            Value::string("h"),
            Value::string("d"),
        );
        let merged = merge(&block(), &planned, &model);
        assert_eq!(merged.attr("repository"), &Value::string("r"));
        assert_eq!(merged.attr("tags"), planned.attr("tags"));
        assert_eq!(merged.attr("digest"), &Value::string("d"));
    }

    #[test]
    fn optional_computed_takes_the_configured_value_else_the_resources() {
        let b = Block::new("").attr(Attribute::optional_computed("engine_version", Type::String));
        let model = Value::object([("engine_version", Value::string("8.0.35"))]);
        let unset = Value::object([("engine_version", Value::unknown())]);
        assert_eq!(
            merge(&b, &unset, &model).attr("engine_version"),
            &Value::string("8.0.35")
        );
        let set = Value::object([("engine_version", Value::string("8.0"))]);
        assert_eq!(
            merge(&b, &set, &model).attr("engine_version"),
            &Value::string("8.0")
        );
    }
}
