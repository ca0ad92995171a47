//! Reading stored state back: Terraform hands state over as JSON (with the
//! schema version it was written under) before any other operation uses it.

use ep_tfproto::tfplugin6 as pb;

use super::diagnostics::{Diagnostic, Diagnostics};
use super::dynamic::{self, Value};
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
    dynamic::from_stored_json(&raw.json, &schema.value_type()).map_err(|e| {
        Diagnostic::error(
            "Stored state does not match the resource schema",
            e.to_string(),
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::dynamic::Type;
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
    fn keeps_every_digit_of_big_numbers() {
        let raw = pb::RawState {
            json: br#"{"a":"x","b":18446744073709551617}"#.to_vec(),
            flatmap: Default::default(),
        };
        let v = upgrade(&schema(), 0, &raw).unwrap();
        assert_eq!(
            v.attr("b").as_number().map(ToString::to_string).as_deref(),
            Some("18446744073709551617")
        );
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
