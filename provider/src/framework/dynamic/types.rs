//! cty types and their JSON descriptions.

use std::collections::BTreeMap;
use std::fmt;

use super::json::{self, Json};
use super::ValueError;

/// A cty type.
///
/// Optional-attribute markers of object type *constraints* are not kept:
/// they only matter when converting configuration, never on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number`
    Number,
    /// `string`
    String,
    /// cty's `DynamicPseudoType`: any type, decided per value.
    Dynamic,
    /// A list of one element type.
    List(Box<Type>),
    /// A set of one element type.
    Set(Box<Type>),
    /// A string-keyed map of one element type.
    Map(Box<Type>),
    /// An object with these attribute types.
    Object(BTreeMap<String, Type>),
    /// A tuple with these element types.
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(t)`
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    /// `set(t)`
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }

    /// `map(t)`
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }

    /// `object({...})` from attribute name and type pairs.
    pub fn object<I, S>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (S, Type)>,
        S: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// `tuple([...])`
    pub fn tuple(elems: impl IntoIterator<Item = Type>) -> Type {
        Type::Tuple(elems.into_iter().collect())
    }

    /// The element type of a list, set or map.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => Some(t),
            _ => None,
        }
    }

    /// Whether this is a list, set or map (the types with length refinements).
    pub fn is_collection(&self) -> bool {
        self.element_type().is_some()
    }

    /// The cty JSON description: `"string"`, `["list","string"]`,
    /// `["object",{"a":"number"}]`, `["tuple",["bool"]]`, `"dynamic"`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write_json(&mut out);
        out.into_bytes()
    }

    pub(super) fn write_json(&self, out: &mut String) {
        match self {
            Type::Bool => out.push_str("\"bool\""),
            Type::Number => out.push_str("\"number\""),
            Type::String => out.push_str("\"string\""),
            Type::Dynamic => out.push_str("\"dynamic\""),
            Type::List(t) | Type::Set(t) | Type::Map(t) => {
                out.push_str(match self {
                    Type::List(_) => "[\"list\",",
                    Type::Set(_) => "[\"set\",",
                    _ => "[\"map\",",
                });
                t.write_json(out);
                out.push(']');
            }
            Type::Object(attrs) => {
                out.push_str("[\"object\",{");
                for (i, (name, t)) in attrs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json::write_string(out, name);
                    out.push(':');
                    t.write_json(out);
                }
                out.push_str("}]");
            }
            Type::Tuple(elems) => {
                out.push_str("[\"tuple\",[");
                for (i, t) in elems.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    t.write_json(out);
                }
                out.push_str("]]");
            }
        }
    }

    /// Reads a cty JSON type description. An object's optional third
    /// element (its optional attributes) is accepted and dropped.
    pub fn from_json(bytes: &[u8]) -> Result<Type, ValueError> {
        let doc = json::parse(bytes).map_err(|e| ValueError::InvalidType(e.to_string()))?;
        Type::from_tree(&doc).map_err(ValueError::InvalidType)
    }

    pub(super) fn from_tree(doc: &Json) -> Result<Type, String> {
        match doc {
            Json::String(name) => match name.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            Json::Array(items) => {
                let (kind, rest) = match items.split_first() {
                    Some((Json::String(kind), rest)) => (kind.as_str(), rest),
                    _ => return Err("a complex type must start with its kind name".into()),
                };
                match (kind, rest) {
                    ("list", [t]) => Ok(Type::list(Type::from_tree(t)?)),
                    ("set", [t]) => Ok(Type::set(Type::from_tree(t)?)),
                    ("map", [t]) => Ok(Type::map(Type::from_tree(t)?)),
                    ("object", [Json::Object(attrs)])
                    | ("object", [Json::Object(attrs), Json::Array(_)]) => {
                        let mut out = BTreeMap::new();
                        for (name, t) in attrs {
                            out.insert(name.clone(), Type::from_tree(t)?);
                        }
                        Ok(Type::Object(out))
                    }
                    ("tuple", [Json::Array(elems)]) => Ok(Type::Tuple(
                        elems
                            .iter()
                            .map(Type::from_tree)
                            .collect::<Result<_, _>>()?,
                    )),
                    ("list" | "set" | "map" | "object" | "tuple", _) => {
                        Err(format!("malformed {kind} type"))
                    }
                    _ => Err(format!("unknown type kind {kind:?}")),
                }
            }
            _ => Err("a type must be a string or an array".into()),
        }
    }
}

impl fmt::Display for Type {
    /// cty-style friendly names: `list of string`, `object`, `dynamic`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(t) => write!(f, "list of {t}"),
            Type::Set(t) => write!(f, "set of {t}"),
            Type::Map(t) => write!(f, "map of {t}"),
            Type::Object(attrs) if attrs.is_empty() => f.write_str("empty object"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(elems) => write!(f, "tuple of {} elements", elems.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let t = Type::object([
            ("a", Type::Number),
            ("b", Type::list(Type::String)),
            ("c", Type::Tuple(vec![Type::Bool, Type::Dynamic])),
            ("d", Type::map(Type::set(Type::String))),
            ("e\"q", Type::object(Vec::<(String, Type)>::new())),
        ]);
        let text = String::from_utf8(t.to_json()).unwrap();
        assert_eq!(
            text,
            r#"["object",{"a":"number","b":["list","string"],"c":["tuple",["bool","dynamic"]],"d":["map",["set","string"]],"e\"q":["object",{}]}]"#
        );
        assert_eq!(Type::from_json(text.as_bytes()).unwrap(), t);
        assert_eq!(Type::from_json(b"\"dynamic\"").unwrap(), Type::Dynamic);
        assert_eq!(
            Type::from_json(b" [ \"list\" , \"bool\" ] ").unwrap(),
            Type::list(Type::Bool)
        );
    }

    #[test]
    fn optional_attributes_are_dropped() {
        let t = Type::from_json(br#"["object",{"a":"string"},["a"]]"#).unwrap();
        assert_eq!(t, Type::object([("a", Type::String)]));
    }

    #[test]
    fn bad_descriptions() {
        for bad in [
            &b"\"float\""[..],
            b"[\"list\"]",
            b"[\"list\",\"string\",\"x\"]",
            b"[\"bag\",\"string\"]",
            b"[\"object\",[]]",
            b"[\"tuple\",{}]",
            b"42",
            b"[]",
            b"\"string\" x",
            b"[\"list\",\"string\"",
        ] {
            let err = Type::from_json(bad).unwrap_err();
            assert!(matches!(err, ValueError::InvalidType(_)), "{err}");
        }
    }
}
