//! Writing a model as a [`Value`] through serde.

use std::collections::BTreeMap;

use serde::ser::{self, Serialize};

use super::known::UNKNOWN_TOKEN;
use super::number::NUMBER_TOKEN;
use super::ModelError;
use crate::framework::dynamic::{Number, Value};

/// Serializes into a [`Value`]; the result is fitted to the schema's type
/// afterwards, so lists become sets and maps objects where the type says so.
pub(super) struct ValueSerializer;

fn unsupported(what: &str) -> ModelError {
    ModelError::new(format!("{what} cannot be a Terraform value"), true)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ModelError;
    type SerializeSeq = SeqWriter;
    type SerializeTuple = SeqWriter;
    type SerializeTupleStruct = SeqWriter;
    type SerializeTupleVariant = ser::Impossible<Value, ModelError>;
    type SerializeMap = MapWriter;
    type SerializeStruct = MapWriter;
    type SerializeStructVariant = ser::Impossible<Value, ModelError>;

    fn serialize_bool(self, v: bool) -> Result<Value, ModelError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ModelError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ModelError> {
        Ok(Value::Number(Number::from(v)))
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ModelError> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ModelError> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ModelError> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ModelError> {
        Ok(Value::Number(Number::from(v)))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ModelError> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ModelError> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| ModelError::new(format!("{v} is not a finite number"), false))
    }

    fn serialize_char(self, v: char) -> Result<Value, ModelError> {
        Ok(Value::String(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ModelError> {
        Ok(Value::string(v))
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<Value, ModelError> {
        Err(unsupported("raw bytes"))
    }

    fn serialize_none(self) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ModelError> {
        v.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, ModelError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<Value, ModelError> {
        Ok(if name == UNKNOWN_TOKEN {
            Value::unknown()
        } else {
            Value::Null
        })
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ModelError> {
        Ok(Value::string(variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<Value, ModelError> {
        let inner = v.serialize(self)?;
        if name != NUMBER_TOKEN {
            return Ok(inner);
        }
        match inner.as_str().map(str::parse::<Number>) {
            Some(Ok(n)) => Ok(Value::Number(n)),
            _ => Err(ModelError::new("a number's text did not parse", true)),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _v: &T,
    ) -> Result<Value, ModelError> {
        Err(unsupported("an enum variant with data"))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqWriter, ModelError> {
        Ok(SeqWriter(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqWriter, ModelError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqWriter, ModelError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ModelError> {
        Err(unsupported("an enum variant with data"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapWriter, ModelError> {
        Ok(MapWriter {
            entries: BTreeMap::new(),
            key: None,
            object: false,
        })
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapWriter, ModelError> {
        Ok(MapWriter {
            entries: BTreeMap::new(),
            key: None,
            object: true,
        })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ModelError> {
        Err(unsupported("an enum variant with data"))
    }
}

/// Collects the elements of a sequence.
pub(super) struct SeqWriter(Vec<Value>);

impl ser::SerializeSeq for SeqWriter {
    type Ok = Value;
    type Error = ModelError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        self.0.push(v.serialize(ValueSerializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::List(self.0))
    }
}

impl ser::SerializeTuple for SeqWriter {
    type Ok = Value;
    type Error = ModelError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, v)
    }

    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::Tuple(self.0))
    }
}

impl ser::SerializeTupleStruct for SeqWriter {
    type Ok = Value;
    type Error = ModelError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        ser::SerializeSeq::serialize_element(self, v)
    }

    fn end(self) -> Result<Value, ModelError> {
        Ok(Value::Tuple(self.0))
    }
}

/// Collects the entries of a map or the fields of a struct.
pub(super) struct MapWriter {
    entries: BTreeMap<String, Value>,
    key: Option<String>,
    object: bool,
}

impl MapWriter {
    fn finish(self) -> Value {
        if self.object {
            Value::Object(self.entries)
        } else {
            Value::Map(self.entries)
        }
    }
}

impl ser::SerializeMap for MapWriter {
    type Ok = Value;
    type Error = ModelError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ModelError> {
        match key.serialize(ValueSerializer)? {
            Value::String(s) => {
                self.key = Some(s);
                Ok(())
            }
            _ => Err(unsupported("a map key that is not a string")),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ModelError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ModelError::new("map value without a key", true))?;
        self.entries.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ModelError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapWriter {
    type Ok = Value;
    type Error = ModelError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ModelError> {
        self.entries
            .insert(key.to_owned(), v.serialize(ValueSerializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ModelError> {
        Ok(self.finish())
    }
}
