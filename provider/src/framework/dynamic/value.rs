//! cty values, without their types.

use std::collections::BTreeMap;

use super::{Number, Type};

/// What Terraform knows about an unknown value (cty "refinements").
///
/// Only refinements that suit the value's type survive encoding: a string
/// prefix for strings, number bounds for numbers, length bounds for lists,
/// sets and maps, and `not_null` for every type but `dynamic`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refinements {
    /// The value will not be null once known.
    pub not_null: bool,
    /// The string will start with this prefix.
    pub string_prefix: Option<String>,
    /// The number will be at least (`true`: or equal to) this bound.
    pub number_lower: Option<(Number, bool)>,
    /// The number will be at most (`true`: or equal to) this bound.
    pub number_upper: Option<(Number, bool)>,
    /// The collection will have at least this many elements.
    pub length_lower: Option<u64>,
    /// The collection will have at most this many elements.
    pub length_upper: Option<u64>,
}

impl Refinements {
    /// Whether nothing at all is known.
    pub fn is_empty(&self) -> bool {
        *self == Refinements::default()
    }
}

/// A cty value. Its type is not stored: the schema supplies it when
/// encoding and decoding.
///
/// Decoding yields the variant matching the type (`Set` for a set type, and
/// so on). Encoding is more forgiving: a list, set or tuple type accepts any
/// of `List`, `Set` and `Tuple`, and a map or object type either of `Map`
/// and `Object`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A known null.
    Null,
    /// Not known until apply, perhaps with some facts about it.
    Unknown(Refinements),
    /// A bool.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list's elements, in order.
    List(Vec<Value>),
    /// A set's elements, in the order they arrived.
    Set(Vec<Value>),
    /// A map's entries.
    Map(BTreeMap<String, Value>),
    /// An object's attributes.
    Object(BTreeMap<String, Value>),
    /// A tuple's elements.
    Tuple(Vec<Value>),
}

/// The shared null that [`Value::attr`] hands out for missing attributes.
static NULL: Value = Value::Null;

impl Value {
    /// A wholly unknown value, with no refinements.
    pub fn unknown() -> Value {
        Value::Unknown(Refinements::default())
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A number value.
    pub fn number(n: impl Into<Number>) -> Value {
        Value::Number(n.into())
    }

    /// An object value from attribute name and value pairs.
    pub fn object<I, S>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list value.
    pub fn list(elems: impl IntoIterator<Item = Value>) -> Value {
        Value::List(elems.into_iter().collect())
    }

    /// Whether this is a known null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this value itself is known (its elements may not be).
    pub fn is_known(&self) -> bool {
        !matches!(self, Value::Unknown(_))
    }

    /// Whether this value and everything inside it is known.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// An object's attribute; null when this is not an object or lacks it.
    pub fn attr(&self, name: &str) -> &Value {
        match self {
            Value::Object(attrs) => attrs.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bool, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The elements of a list, set or tuple.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The entries of a map or the attributes of an object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown(_) => "unknown value",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
        }
    }

    /// Whether this value can be encoded as type `t`, with the same
    /// leniency as the encoders: nulls and unknowns fit any type, list, set
    /// and tuple values fit each other's types, map and object values too,
    /// and an object may lack attributes (they are written as null).
    pub fn conforms_to(&self, t: &Type) -> bool {
        match (self, t) {
            (Value::Null | Value::Unknown(_), _) | (_, Type::Dynamic) => true,
            (Value::Bool(_), Type::Bool)
            | (Value::Number(_), Type::Number)
            | (Value::String(_), Type::String) => true,
            (_, Type::List(et) | Type::Set(et)) => self
                .as_list()
                .is_some_and(|elems| elems.iter().all(|e| e.conforms_to(et))),
            (_, Type::Tuple(ets)) => self.as_list().is_some_and(|elems| {
                elems.len() == ets.len() && elems.iter().zip(ets).all(|(e, et)| e.conforms_to(et))
            }),
            (_, Type::Map(et)) => self
                .as_map()
                .is_some_and(|m| m.values().all(|e| e.conforms_to(et))),
            (_, Type::Object(ats)) => self.as_map().is_some_and(|m| {
                m.iter()
                    .all(|(k, e)| ats.get(k).is_some_and(|at| e.conforms_to(at)))
            }),
            _ => false,
        }
    }

    /// This value shaped as type `t`: lists, sets and tuples take the kind
    /// the type names, maps and objects likewise, and an object gains the
    /// attributes it lacks as null and loses those the type does not have.
    /// Values that fit nowhere are left as they are for the encoder to refuse.
    pub fn fit(self, t: &Type) -> Value {
        match (self, t) {
            (v @ (Value::Null | Value::Unknown(_)), _) | (v, Type::Dynamic) => v,
            (Value::List(v) | Value::Set(v) | Value::Tuple(v), Type::List(et)) => {
                Value::List(v.into_iter().map(|e| e.fit(et)).collect())
            }
            (Value::List(v) | Value::Set(v) | Value::Tuple(v), Type::Set(et)) => {
                Value::Set(v.into_iter().map(|e| e.fit(et)).collect())
            }
            (Value::List(v) | Value::Set(v) | Value::Tuple(v), Type::Tuple(ets))
                if v.len() == ets.len() =>
            {
                Value::Tuple(v.into_iter().zip(ets).map(|(e, et)| e.fit(et)).collect())
            }
            (Value::Map(m) | Value::Object(m), Type::Map(et)) => {
                Value::Map(m.into_iter().map(|(k, e)| (k, e.fit(et))).collect())
            }
            (Value::Map(mut m) | Value::Object(mut m), Type::Object(ats)) => Value::Object(
                ats.iter()
                    .map(|(k, at)| (k.clone(), m.remove(k).unwrap_or(Value::Null).fit(at)))
                    .collect(),
            ),
            (v, _) => v,
        }
    }

    /// The most specific type this value has, used to label values written
    /// under `dynamic`. Nulls and unknowns give `dynamic`; a collection's
    /// element type merges its elements' types, falling back to `dynamic`
    /// (each element then carries its own type) when they conflict.
    pub fn infer_type(&self) -> Type {
        match self {
            Value::Null | Value::Unknown(_) => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(v) => Type::list(element_type(v.iter())),
            Value::Set(v) => Type::set(element_type(v.iter())),
            Value::Map(m) => Type::map(element_type(m.values())),
            Value::Object(m) => {
                Type::Object(m.iter().map(|(k, v)| (k.clone(), v.infer_type())).collect())
            }
            Value::Tuple(v) => Type::Tuple(v.iter().map(Value::infer_type).collect()),
        }
    }
}

fn element_type<'a>(elems: impl Iterator<Item = &'a Value> + Clone) -> Type {
    let mut acc = Type::Dynamic;
    for v in elems.clone() {
        match unify(acc, v.infer_type()) {
            Some(t) => acc = t,
            None => return Type::Dynamic,
        }
    }
    // An element's own `dynamic` may stand for conflicting parts rather than
    // a null, which `unify` cannot tell apart: check the result holds.
    if elems.into_iter().all(|v| fits_exactly(v, &acc)) {
        acc
    } else {
        Type::Dynamic
    }
}

/// Whether `v` decodes back as itself when written as `t`: like
/// [`Value::conforms_to`] but with no leniency about kinds, so that
/// e.g. a tuple is not written as a list.
fn fits_exactly(v: &Value, t: &Type) -> bool {
    match (v, t) {
        (Value::Null | Value::Unknown(_), _) | (_, Type::Dynamic) => true,
        (Value::Bool(_), Type::Bool)
        | (Value::Number(_), Type::Number)
        | (Value::String(_), Type::String) => true,
        (Value::List(elems), Type::List(et)) | (Value::Set(elems), Type::Set(et)) => {
            elems.iter().all(|e| fits_exactly(e, et))
        }
        (Value::Tuple(elems), Type::Tuple(ets)) => {
            elems.len() == ets.len() && elems.iter().zip(ets).all(|(e, et)| fits_exactly(e, et))
        }
        (Value::Map(m), Type::Map(et)) => m.values().all(|e| fits_exactly(e, et)),
        (Value::Object(m), Type::Object(ats)) => {
            m.len() == ats.len()
                && m.iter()
                    .all(|(k, e)| ats.get(k).is_some_and(|at| fits_exactly(e, at)))
        }
        _ => false,
    }
}

/// The common type of two inferred types, where `dynamic` (from nulls and
/// unknowns) matches anything.
fn unify(a: Type, b: Type) -> Option<Type> {
    match (a, b) {
        (Type::Dynamic, t) | (t, Type::Dynamic) => Some(t),
        (Type::List(x), Type::List(y)) => Some(Type::list(unify(*x, *y)?)),
        (Type::Set(x), Type::Set(y)) => Some(Type::set(unify(*x, *y)?)),
        (Type::Map(x), Type::Map(y)) => Some(Type::map(unify(*x, *y)?)),
        (Type::Object(x), Type::Object(y)) => {
            if x.len() != y.len() || !x.keys().eq(y.keys()) {
                return None;
            }
            let mut out = BTreeMap::new();
            for ((k, a), (_, b)) in x.into_iter().zip(y) {
                out.insert(k, unify(a, b)?);
            }
            Some(Type::Object(out))
        }
        (Type::Tuple(x), Type::Tuple(y)) => {
            if x.len() != y.len() {
                return None;
            }
            let elems = x
                .into_iter()
                .zip(y)
                .map(|(a, b)| unify(a, b))
                .collect::<Option<Vec<_>>>()?;
            Some(Type::Tuple(elems))
        }
        (a, b) if a == b => Some(a),
        _ => None,
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let v = Value::object([
            ("s", Value::string("x")),
            ("n", Value::number(3)),
            ("b", Value::Bool(true)),
            ("l", Value::Set(vec![Value::Null])),
            ("m", Value::Map(BTreeMap::new())),
        ]);
        assert_eq!(v.attr("s").as_str(), Some("x"));
        assert_eq!(v.attr("n").as_number().and_then(Number::to_i64), Some(3));
        assert_eq!(v.attr("b").as_bool(), Some(true));
        assert_eq!(v.attr("l").as_list().map(<[Value]>::len), Some(1));
        assert!(v.attr("m").as_map().is_some());
        assert!(v.attr("missing").is_null());
        assert!(Value::string("x").attr("a").is_null());
        assert!(v.is_wholly_known());
        assert!(!Value::unknown().is_null() && !Value::unknown().is_known());
        let partly = Value::list([Value::Bool(true), Value::unknown()]);
        assert!(partly.is_known() && !partly.is_wholly_known());
    }

    #[test]
    fn inferred_types() {
        let v = Value::list([
            Value::object([("a", Value::Null), ("b", Value::list([]))]),
            Value::object([
                ("a", Value::string("x")),
                ("b", Value::list([Value::number(1)])),
            ]),
        ]);
        assert_eq!(
            v.infer_type(),
            Type::list(Type::object([
                ("a", Type::String),
                ("b", Type::list(Type::Number))
            ]))
        );
        let mixed = Value::Set(vec![Value::number(1), Value::string("x")]);
        assert_eq!(mixed.infer_type(), Type::set(Type::Dynamic));
        assert_eq!(Value::unknown().infer_type(), Type::Dynamic);
        // The second element's `dynamic` comes from a conflict, not a null,
        // so it must not merge with `list of bool`.
        let v = Value::list([
            Value::list([Value::Bool(false)]),
            Value::list([Value::number(0), Value::list([])]),
        ]);
        assert_eq!(v.infer_type(), Type::list(Type::Dynamic));
        assert!(v.conforms_to(&v.infer_type()));
        // Tuples of different lengths do not merge into a list type.
        let v = Value::list([
            Value::Set(vec![Value::list([])]),
            Value::Set(vec![Value::Tuple(vec![Value::Null]), Value::Tuple(vec![])]),
        ]);
        assert_eq!(v.infer_type(), Type::list(Type::Dynamic));
        assert!(!Value::number(1).conforms_to(&Type::String));
        assert!(
            !Value::object([("x", Value::Null)]).conforms_to(&Type::object([("y", Type::Bool)]))
        );
        assert_eq!(
            Value::Tuple(vec![Value::Bool(true), Value::Null]).infer_type(),
            Type::Tuple(vec![Type::Bool, Type::Dynamic])
        );
    }
}
