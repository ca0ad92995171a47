//! Proving a model struct and its schema agree, before any value flows.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::de::ValueDeserializer;
use super::{to_value, ModelError};
use crate::framework::dynamic::{Number, Type, Value};

/// A wholly known, non-null value of type `ty`: every attribute set, every
/// collection with one element, so that decoding it visits every field.
pub fn sample(ty: &Type) -> Value {
    match ty {
        Type::Bool => Value::Bool(true),
        Type::Number => Value::Number(Number::from(1u32)),
        Type::String | Type::Dynamic => Value::string("x"),
        Type::List(t) => Value::List(vec![sample(t)]),
        Type::Set(t) => Value::Set(vec![sample(t)]),
        Type::Map(t) => Value::Map(BTreeMap::from([("k".to_owned(), sample(t))])),
        Type::Object(attrs) => {
            Value::Object(attrs.iter().map(|(k, t)| (k.clone(), sample(t))).collect())
        }
        Type::Tuple(ts) => Value::Tuple(ts.iter().map(sample).collect()),
    }
}

/// Checks that model `M` decodes a value of type `ty` with every attribute
/// set and encodes it back unchanged: a field without an attribute, an
/// attribute without a field or a field of the wrong kind fails, naming it.
pub fn check_model<M: Serialize + DeserializeOwned>(ty: &Type) -> Result<(), ModelError> {
    let full = sample(ty);
    let decoded: M = M::deserialize(ValueDeserializer::checking(&full))?;
    let back = to_value(&decoded, ty)?;
    if !same_shape(&full, &back) {
        return Err(ModelError::new(
            format!("the model does not encode back to its schema's shape: {back:?}"),
            true,
        ));
    }
    Ok(())
}

/// Same attributes and kinds everywhere (leaf values may differ: enums
/// decode sample strings to their first variant).
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) | (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_shape(v, w)))
        }
        (Value::List(x), Value::List(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::Tuple(x), Value::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_shape(v, w))
        }
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::framework::model::{Applying, Phase, Planning};

    fn ty() -> Type {
        Type::object([
            ("name", Type::String),
            ("count", Type::Number),
            ("tags", Type::set(Type::String)),
        ])
    }

    #[derive(Serialize, Deserialize)]
    #[serde(bound = "")]
    struct Good<P: Phase = Applying> {
        name: P::Of<String>,
        count: P::Of<Option<u32>>,
        tags: P::Of<Vec<String>>,
    }

    #[derive(Serialize, Deserialize)]
    struct Misspelt {
        nmae: String,
        count: u32,
        tags: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct WrongKind {
        name: bool,
        count: u32,
        tags: Vec<String>,
    }

    #[test]
    fn agreeing_models_pass_in_both_phases() {
        check_model::<Good>(&ty()).unwrap();
        check_model::<Good<Planning>>(&ty()).unwrap();
    }

    #[test]
    fn misspelt_fields_and_wrong_kinds_fail() {
        let e = check_model::<Misspelt>(&ty()).unwrap_err();
        assert!(e.to_string().contains("name"), "{e}");
        let e = check_model::<WrongKind>(&ty()).unwrap_err();
        assert!(e.to_string().contains("expected a bool"), "{e}");
    }
}
