//! Reading a [`Value`] into a model through serde, strictly and with paths.

use std::collections::btree_map;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::known::KNOWN_TOKEN;
use super::number::NUMBER_TOKEN;
use super::ModelError;
use crate::framework::dynamic::{Number, Value};
use crate::framework::path::PathStep;

/// A serde deserializer over a borrowed value.
pub(super) struct ValueDeserializer<'a> {
    value: &'a Value,
    /// Check mode: unit enum variants accept any string (the first variant
    /// stands in), so a schema check with sample strings sees every field.
    lenient_enums: bool,
}

impl<'a> ValueDeserializer<'a> {
    pub(super) fn new(value: &'a Value) -> Self {
        ValueDeserializer {
            value,
            lenient_enums: false,
        }
    }

    pub(super) fn checking(value: &'a Value) -> Self {
        ValueDeserializer {
            value,
            lenient_enums: true,
        }
    }

    fn mismatch(&self, expected: &str) -> ModelError {
        match self.value {
            Value::Unknown(_) => ModelError::new("value is not known yet", false),
            v => ModelError::new(
                format!("expected {expected}, found {}", v.kind_name()),
                true,
            ),
        }
    }

    fn number(&self) -> Result<&'a Number, ModelError> {
        match self.value {
            Value::Number(n) => Ok(n),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn unsigned(&self, max: u64) -> Result<u64, ModelError> {
        let n = self.number()?;
        n.to_u64().filter(|v| *v <= max).ok_or_else(|| {
            ModelError::new(format!("{n} is not a whole number from 0 to {max}"), false)
        })
    }

    fn signed(&self, min: i64, max: i64) -> Result<i64, ModelError> {
        let n = self.number()?;
        n.to_i64()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| {
                ModelError::new(
                    format!("{n} is not a whole number from {min} to {max}"),
                    false,
                )
            })
    }
}

macro_rules! unsigned {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
            let n = self.unsigned(<$ty>::MAX as u64)?;
            v.$visit(n as $ty)
        }
    )*};
}

macro_rules! signed {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
            let n = self.signed(<$ty>::MIN as i64, <$ty>::MAX as i64)?;
            v.$visit(n as $ty)
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for ValueDeserializer<'a> {
    type Error = ModelError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::Null => v.visit_unit(),
            Value::Unknown(_) => Err(self.mismatch("a value")),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(n) => match (n.to_i64(), n.to_u64()) {
                (Some(i), _) => v.visit_i64(i),
                (_, Some(u)) => v.visit_u64(u),
                _ => v.visit_f64(n.to_f64()),
            },
            Value::String(s) => v.visit_str(s),
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                v.visit_seq(Seq::new(&self, items))
            }
            Value::Map(m) | Value::Object(m) => v.visit_map(Map::new(&self, m)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::Bool(b) => v.visit_bool(*b),
            _ => Err(self.mismatch("a bool")),
        }
    }

    unsigned!(deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
              deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64);
    signed!(deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
            deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        v.visit_f32(self.number()?.to_f64() as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        v.visit_f64(self.number()?.to_f64())
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::String(s) => v.visit_str(s),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::Null => v.visit_none(),
            Value::Unknown(_) => Err(self.mismatch("a value")),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::Null => v.visit_unit(),
            _ => Err(self.mismatch("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, ModelError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, ModelError> {
        match name {
            KNOWN_TOKEN if !self.value.is_wholly_known() => v.visit_unit(),
            NUMBER_TOKEN => v.visit_string(self.number()?.to_string()),
            _ => v.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                v.visit_seq(Seq::new(&self, items))
            }
            _ => Err(self.mismatch("a list or set")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, ModelError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, ModelError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        match self.value {
            Value::Map(m) | Value::Object(m) => v.visit_map(Map::new(&self, m)),
            _ => Err(self.mismatch("a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ModelError> {
        let (Value::Object(m) | Value::Map(m)) = self.value else {
            return Err(self.mismatch("an object"));
        };
        // Strict both ways, so a misspelt field or a forgotten attribute
        // fails loudly instead of reading as null.
        if let Some(extra) = m.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(ModelError::new(
                format!("attribute {extra:?} has no field in {name}"),
                true,
            ));
        }
        if let Some(missing) = fields.iter().find(|f| !m.contains_key(**f)) {
            return Err(ModelError::new(
                format!("field {missing:?} of {name} has no attribute"),
                true,
            ));
        }
        v.visit_map(Map::new(&self, m))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ModelError> {
        let s = match self.value {
            Value::String(s) if self.lenient_enums && !variants.contains(&s.as_str()) => {
                variants.first().copied().unwrap_or_default()
            }
            Value::String(s) => s.as_str(),
            _ => return Err(self.mismatch("a string")),
        };
        let d: StrDeserializer<'_, ModelError> = s.into_deserializer();
        v.visit_enum(d)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ModelError> {
        v.visit_unit()
    }
}

/// The elements of a list, set or tuple.
struct Seq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
    lenient_enums: bool,
}

impl<'a> Seq<'a> {
    fn new(parent: &ValueDeserializer<'a>, items: &'a [Value]) -> Self {
        Seq {
            items: items.iter().enumerate(),
            lenient_enums: parent.lenient_enums,
        }
    }
}

impl<'de, 'a> de::SeqAccess<'de> for Seq<'a> {
    type Error = ModelError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ModelError> {
        let Some((i, item)) = self.items.next() else {
            return Ok(None);
        };
        let d = ValueDeserializer {
            value: item,
            lenient_enums: self.lenient_enums,
        };
        seed.deserialize(d)
            .map(Some)
            .map_err(|e| e.within(PathStep::Index(i64::try_from(i).unwrap_or(i64::MAX))))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a map or the attributes of an object.
struct Map<'a> {
    entries: btree_map::Iter<'a, String, Value>,
    current: Option<(&'a String, &'a Value)>,
    lenient_enums: bool,
    object: bool,
}

impl<'a> Map<'a> {
    fn new(
        parent: &ValueDeserializer<'a>,
        entries: &'a std::collections::BTreeMap<String, Value>,
    ) -> Self {
        Map {
            entries: entries.iter(),
            current: None,
            lenient_enums: parent.lenient_enums,
            object: matches!(parent.value, Value::Object(_)),
        }
    }
}

impl<'de, 'a> de::MapAccess<'de> for Map<'a> {
    type Error = ModelError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ModelError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some((k, v));
        let d: StrDeserializer<'_, ModelError> = k.as_str().into_deserializer();
        seed.deserialize(d).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ModelError> {
        let Some((k, v)) = self.current.take() else {
            return Err(ModelError::new("value asked for before its key", true));
        };
        let d = ValueDeserializer {
            value: v,
            lenient_enums: self.lenient_enums,
        };
        let step = if self.object {
            PathStep::Attr(k.clone())
        } else {
            PathStep::Key(k.clone())
        };
        seed.deserialize(d).map_err(|e| e.within(step))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::super::{from_value, Applying, Known, Phase, Planning};
    use crate::framework::dynamic::Value;

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    #[serde(bound = "")]
    struct Layer<P: Phase = Applying> {
        uid: P::Of<u32>,
        mode: P::Of<Option<String>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(bound = "")]
    struct Thing<P: Phase = Applying> {
        name: P::Of<String>,
        tags: P::Of<Option<Vec<String>>>,
        env: P::Of<BTreeMap<String, String>>,
        layer: P::Of<Vec<Layer<P>>>,
    }

    fn layer(uid: Value) -> Value {
        Value::object([("uid", uid), ("mode", Value::Null)])
    }

    fn thing(name: Value, tags: Value, layers: Vec<Value>) -> Value {
        Value::object([
            ("name", name),
            ("tags", tags),
            ("env", Value::Map(BTreeMap::new())),
            ("layer", Value::List(layers)),
        ])
    }

    #[test]
    fn applying_reads_plain_values() {
        let v = thing(
            Value::string("a"),
            Value::list([Value::string("t")]),
            vec![layer(Value::number(7))],
        );
        let t: Thing = from_value(&v).unwrap();
        assert_eq!(t.name, "a");
        assert_eq!(t.tags, Some(vec!["t".to_owned()]));
        assert_eq!(t.layer[0].uid, 7);
    }

    #[test]
    fn planning_reads_unknowns_as_unknown_and_partial_lists_too() {
        let v = thing(
            Value::unknown(),
            Value::list([Value::string("t"), Value::unknown()]),
            vec![layer(Value::number(1))],
        );
        let t: Thing<Planning> = from_value(&v).unwrap();
        assert_eq!(t.name, Known::Unknown);
        assert_eq!(t.tags, Known::Unknown);
        assert!(t.layer.is_known());
        assert!(from_value::<Thing>(&v).is_err());
    }

    #[test]
    fn out_of_range_numbers_name_their_path() {
        let v = thing(
            Value::string("a"),
            Value::Null,
            vec![
                layer(Value::number(1)),
                layer(Value::number(4_294_967_296u64)),
            ],
        );
        let e = from_value::<Thing>(&v).unwrap_err();
        assert_eq!(e.path().to_string(), "layer[1].uid");
        assert!(!e.is_structural());
        assert!(e.message().contains("4294967295"), "{e}");
    }

    #[test]
    fn surplus_and_missing_attributes_are_structural_errors() {
        let mut v = thing(Value::string("a"), Value::Null, vec![]);
        if let Value::Object(m) = &mut v {
            m.insert("nmae".into(), Value::Null);
        }
        let e = from_value::<Thing>(&v).unwrap_err();
        assert!(e.is_structural() && e.message().contains("nmae"), "{e}");
        let v = Value::object([("name", Value::string("a"))]);
        let e = from_value::<Thing>(&v).unwrap_err();
        assert!(
            e.is_structural() && e.message().contains("has no attribute"),
            "{e}"
        );
    }
}
