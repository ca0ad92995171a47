//! cty's JSON encoding of values (go-cty `cty/json`).
//!
//! A small JSON reader of our own keeps number text exactly as written,
//! which serde_json would round to a float unless its process-wide
//! `arbitrary_precision` feature were turned on for every user.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Number, Path, PathStep, Type, Value, ValueError, MAX_DEPTH};

/// Encodes `v` as cty JSON for type `t`. Unknown values are an error, as
/// JSON has no way to carry them.
pub fn to_json(v: &Value, t: &Type) -> Result<Vec<u8>, ValueError> {
    let mut out = String::new();
    encode(v, t, &mut out, 0)?;
    Ok(out.into_bytes())
}

/// Decodes cty JSON of type `t`.
///
/// As cty does: object attributes absent from the input are null, bools
/// also come as the strings `"true"`/`"1"`/`"false"`/`"0"`, numbers as
/// strings, and strings as numbers or bools.
pub fn from_json(bytes: &[u8], t: &Type) -> Result<Value, ValueError> {
    let doc = parse(bytes)?;
    decode(&doc, t, Surplus::Refuse)
}

/// Decodes cty JSON written for an older version of type `t`, as stored
/// state is: object attributes the type no longer has are dropped, and
/// numbers keep every digit (serde_json would round them to floats).
pub fn from_stored_json(bytes: &[u8], t: &Type) -> Result<Value, ValueError> {
    let doc = parse(bytes)?;
    decode(&doc, t, Surplus::Drop)
}

/// What to do with object attributes the type does not have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Surplus {
    Refuse,
    Drop,
}

fn encode(v: &Value, t: &Type, out: &mut String, depth: usize) -> Result<(), ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::invalid("value nests too deeply"));
    }
    if let Value::Unknown(_) = v {
        return Err(ValueError::UnknownInJson {
            path: Path::default(),
        });
    }
    if let Value::Null = v {
        out.push_str("null");
        return Ok(());
    }
    match t {
        Type::Dynamic => {
            let inner = v.infer_type();
            out.push_str("{\"value\":");
            encode(v, &inner, out, depth + 1)?;
            out.push_str(",\"type\":");
            inner.write_json(out);
            out.push('}');
        }
        Type::Bool => match v {
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            other => return Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::Number => match v {
            Value::Number(n) => {
                let _ = write!(out, "{n}");
            }
            other => return Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::String => match v {
            Value::String(s) => write_string(out, s),
            other => return Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::List(et) | Type::Set(et) => {
            let elems = v
                .as_list()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            out.push('[');
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(e, et, out, depth + 1).map_err(|err| err.within(PathStep::Index(i)))?;
            }
            out.push(']');
        }
        Type::Tuple(ets) => {
            let elems = v
                .as_list()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            if elems.len() != ets.len() {
                return Err(ValueError::mismatch(t, format!("{} elements", elems.len())));
            }
            out.push('[');
            for (i, (e, et)) in elems.iter().zip(ets).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(e, et, out, depth + 1).map_err(|err| err.within(PathStep::Index(i)))?;
            }
            out.push(']');
        }
        Type::Map(et) => {
            let entries = v
                .as_map()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            out.push('{');
            for (i, (k, e)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                encode(e, et, out, depth + 1)
                    .map_err(|err| err.within(PathStep::Key(k.clone())))?;
            }
            out.push('}');
        }
        Type::Object(ats) => {
            let attrs = v
                .as_map()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            if let Some(extra) = attrs.keys().find(|k| !ats.contains_key(*k)) {
                return Err(ValueError::invalid(format!(
                    "attribute {extra:?} is not in the object type"
                )));
            }
            out.push('{');
            for (i, (k, at)) in ats.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                // An attribute the value lacks is written as null.
                let e = attrs.get(k).unwrap_or(&Value::Null);
                encode(e, at, out, depth + 1)
                    .map_err(|err| err.within(PathStep::Attr(k.clone())))?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn decode(j: &Json, t: &Type, surplus: Surplus) -> Result<Value, ValueError> {
    if let Json::Null = j {
        return Ok(Value::Null);
    }
    match t {
        Type::Dynamic => {
            let Json::Object(entries) = j else {
                return Err(ValueError::mismatch(
                    "{\"value\":...,\"type\":...} for a dynamic value",
                    j.kind_name(),
                ));
            };
            let mut ty = None;
            let mut body = None;
            for (k, e) in entries {
                match k.as_str() {
                    "type" => ty = Some(Type::from_tree(e).map_err(ValueError::InvalidType)),
                    "value" => body = Some(e),
                    other => {
                        return Err(ValueError::invalid(format!(
                            "invalid key {other:?} in dynamically-typed value"
                        )))
                    }
                }
            }
            let ty = ty
                .ok_or_else(|| ValueError::invalid("missing type in dynamically-typed value"))?
                .map_err(ValueError::located)?;
            let body = body
                .ok_or_else(|| ValueError::invalid("missing value in dynamically-typed value"))?;
            decode(body, &ty, surplus)
        }
        Type::Bool => match j {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" || s == "1" => Ok(Value::Bool(true)),
            Json::String(s) if s == "false" || s == "0" => Ok(Value::Bool(false)),
            other => Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::Number => match j {
            Json::Number(text) | Json::String(text) => text
                .parse::<Number>()
                .map(Value::Number)
                .map_err(ValueError::located),
            other => Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::String => match j {
            Json::String(s) | Json::Number(s) => Ok(Value::String(s.clone())),
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::List(et) | Type::Set(et) => {
            let Json::Array(items) = j else {
                return Err(ValueError::mismatch(t, j.kind_name()));
            };
            let elems = items
                .iter()
                .enumerate()
                .map(|(i, e)| decode(e, et, surplus).map_err(|err| err.within(PathStep::Index(i))))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(match t {
                Type::Set(_) => Value::Set(elems),
                _ => Value::List(elems),
            })
        }
        Type::Tuple(ets) => {
            let Json::Array(items) = j else {
                return Err(ValueError::mismatch(t, j.kind_name()));
            };
            if items.len() != ets.len() {
                return Err(ValueError::mismatch(t, format!("{} elements", items.len())));
            }
            let elems = items
                .iter()
                .zip(ets)
                .enumerate()
                .map(|(i, (e, et))| {
                    decode(e, et, surplus).map_err(|err| err.within(PathStep::Index(i)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Tuple(elems))
        }
        Type::Map(et) => {
            let Json::Object(entries) = j else {
                return Err(ValueError::mismatch(t, j.kind_name()));
            };
            let mut out = BTreeMap::new();
            for (k, e) in entries {
                let v =
                    decode(e, et, surplus).map_err(|err| err.within(PathStep::Key(k.clone())))?;
                out.insert(k.clone(), v);
            }
            Ok(Value::Map(out))
        }
        Type::Object(ats) => {
            let Json::Object(entries) = j else {
                return Err(ValueError::mismatch(t, j.kind_name()));
            };
            let mut out = BTreeMap::new();
            for (k, e) in entries {
                let at = match ats.get(k) {
                    Some(at) => at,
                    None if surplus == Surplus::Drop => continue,
                    None => {
                        return Err(ValueError::invalid(format!("unsupported attribute {k:?}")))
                    }
                };
                let v =
                    decode(e, at, surplus).map_err(|err| err.within(PathStep::Attr(k.clone())))?;
                out.insert(k.clone(), v);
            }
            for k in ats.keys() {
                if !out.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Ok(Value::Object(out))
        }
    }
}

/// Writes `s` as a JSON string literal.
pub(super) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A parsed JSON document. Numbers keep their source text so that no
/// precision is lost; object members keep their order and duplicates.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "JSON bool",
            Json::Number(_) => "JSON number",
            Json::String(_) => "JSON string",
            Json::Array(_) => "JSON array",
            Json::Object(_) => "JSON object",
        }
    }
}

/// Parses one JSON document, with only whitespace around it.
pub(super) fn parse(bytes: &[u8]) -> Result<Json, ValueError> {
    let mut p = Parser { bytes, pos: 0 };
    p.skip_ws();
    let doc = p.value(0)?;
    p.skip_ws();
    if p.pos != bytes.len() {
        return Err(ValueError::TrailingBytes {
            offset: p.pos,
            count: bytes.len() - p.pos,
        });
    }
    Ok(doc)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ValueError {
        if self.pos >= self.bytes.len() {
            return ValueError::Truncated {
                path: Path::default(),
                offset: self.pos,
            };
        }
        ValueError::invalid(format!("malformed JSON at byte {}: {what}", self.pos))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], v: Json) -> Result<Json, ValueError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error("unknown literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ValueError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.bytes.get(self.pos) {
            None => Err(self.error("expected a value")),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or ']'"));
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_ws();
                    if self.bytes.get(self.pos) != Some(&b'"') {
                        return Err(self.error("expected a string object key"));
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    if !self.eat(b':') {
                        return Err(self.error("expected ':'"));
                    }
                    self.skip_ws();
                    members.push((key, self.value(depth + 1)?));
                    self.skip_ws();
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or '}'"));
                    }
                }
            }
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Checks JSON's number grammar and returns the text unchanged.
    fn number(&mut self) -> Result<Json, ValueError> {
        let start = self.pos;
        self.eat(b'-');
        let int_start = self.pos;
        let int_len = self.digits();
        if int_len == 0 || (int_len > 1 && self.bytes[int_start] == b'0') {
            return Err(self.error("malformed number"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("malformed number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("malformed number"));
            }
        }
        // Only ASCII was consumed, so this slice is valid UTF-8.
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        Ok(Json::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, ValueError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .bytes
                .get(self.pos)
                .and_then(|b| (*b as char).to_digit(16))
                .ok_or_else(|| self.error("bad \\u escape"))?;
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ValueError> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&esc) = self.bytes.get(self.pos) else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi)
                                && self.bytes[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    // Not a pair: the lone half becomes U+FFFD
                                    // (as Go does) and the escape is reread.
                                    self.pos = save;
                                    0xfffd
                                }
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(self.error("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0x00..=0x1f => {
                    self.pos -= 1;
                    return Err(self.error("control character in string"));
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| ValueError::invalid("JSON string is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests;
