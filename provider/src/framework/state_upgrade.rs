//! Reading stored state back: Terraform hands state over as JSON (with the
//! schema version it was written under) before any other operation uses it.

use ep_tfproto::tfplugin6 as pb;
use serde_json::Value as Json;

use super::diagnostics::{Diagnostic, Diagnostics};
use super::dynamic::{self, Type, Value};
use super::schema::Schema;

/// Decodes stored state into a value of the current schema.
///
/// Attributes that the schema no longer has are dropped and new ones start
/// as null, so adding or removing an attribute needs no version bump.
pub fn upgrade(schema: &Schema, version: i64, raw: &pb::RawState) -> Result<Value, Diagnostics> {
    if version > schema.version {
        return Err(Diagnostic::error(
            "State written by a newer provider",
            format!(
                "The stored state has schema version {version}, but this provider only knows \
                 versions up to {}. Upgrade the provider.",
                schema.version
            ),
        )
        .into());
    }
    if raw.json.is_empty() {
        if raw.flatmap.is_empty() {
            return Ok(Value::Null);
        }
        return Err(Diagnostic::error(
            "Unsupported legacy state",
            "The stored state uses the flatmap format of Terraform 0.11, which this provider \
             cannot read.",
        )
        .into());
    }
    let parsed: Json = serde_json::from_slice(&raw.json).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Stored state is not valid JSON",
            e.to_string(),
        ))
    })?;
    let ty = schema.value_type();
    let fitted = fit_to_type(parsed, &ty);
    let bytes = serde_json::to_vec(&fitted).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Could not re-encode stored state",
            e.to_string(),
        ))
    })?;
    dynamic::from_json(&bytes, &ty).map_err(|e| {
        Diagnostic::error(
            "Stored state does not match the resource schema",
            e.to_string(),
        )
        .into()
    })
}

/// Drops object attributes the type does not have and adds missing ones as null.
fn fit_to_type(v: Json, ty: &Type) -> Json {
    match (v, ty) {
        (Json::Object(mut m), Type::Object(attrs)) => {
            let mut out = serde_json::Map::new();
            for (name, aty) in attrs {
                let inner = m.remove(name).unwrap_or(Json::Null);
                out.insert(name.clone(), fit_to_type(inner, aty));
            }
            Json::Object(out)
        }
        (Json::Array(items), Type::List(ety) | Type::Set(ety)) => {
            Json::Array(items.into_iter().map(|i| fit_to_type(i, ety)).collect())
        }
        (Json::Object(m), Type::Map(ety)) => Json::Object(
            m.into_iter()
                .map(|(k, i)| (k, fit_to_type(i, ety)))
                .collect(),
        ),
        (v, _) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, Block};

    fn schema() -> Schema {
        Schema::new(
            Block::new("")
                .attr(Attribute::required("a", Type::String))
                .attr(Attribute::optional("b", Type::Number)),
        )
    }

    #[test]
    fn drops_removed_and_nulls_added_attributes() {
        let raw = pb::RawState {
            json: br#"{"a":"x","gone":1}"#.to_vec(),
            flatmap: Default::default(),
        };
        let v = upgrade(&schema(), 0, &raw).unwrap();
        assert_eq!(v.attr("a").as_str(), Some("x"));
        assert!(v.attr("b").is_null());
    }

    #[test]
    fn refuses_newer_versions() {
        let raw = pb::RawState {
            json: br#"{"a":"x"}"#.to_vec(),
            flatmap: Default::default(),
        };
        assert!(upgrade(&schema(), 3, &raw).is_err());
    }
}
