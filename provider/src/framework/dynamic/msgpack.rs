//! cty's msgpack encoding of values (go-cty `cty/msgpack`).
//!
//! The encoding is type-directed. Null is msgpack nil. An unknown value is
//! an extension: type 0 (cty writes the fixext1 `d4 00 00`) when nothing is
//! known about it, or type 12 whose payload is a map of refinements keyed by
//! small integers. Numbers are ints when they fit in int64, float64 when a
//! non-integer float holds them exactly, and decimal strings otherwise.
//! A `dynamic` value is the array `[type JSON, value]`.

use std::collections::BTreeMap;
use std::fmt;

use super::{Number, Path, PathStep, Refinements, Type, Value, ValueError, MAX_DEPTH};

/// Extension type of an unknown value with refinements.
const EXT_REFINED: i8 = 12;

/// Refinement map keys, from go-cty's `cty/msgpack/unknown.go`.
const REFINE_NULLNESS: i128 = 1;
const REFINE_STRING_PREFIX: i128 = 2;
const REFINE_NUMBER_MIN: i128 = 3;
const REFINE_NUMBER_MAX: i128 = 4;
const REFINE_LENGTH_MIN: i128 = 5;
const REFINE_LENGTH_MAX: i128 = 6;

/// cty refuses refinement payloads over 1 KiB as abusive.
const MAX_REFINEMENT_PAYLOAD: usize = 1024;

/// cty cuts string prefixes to fit that limit; we cut at the same length.
const MAX_PREFIX: usize = 255;

/// Encodes `v` as cty msgpack for type `t`.
///
/// Object attributes the value lacks are written as null; attributes the
/// type lacks are an error. Unknowns keep the refinements that suit `t`.
pub fn to_msgpack(v: &Value, t: &Type) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    encode(v, t, &mut out, 0)?;
    Ok(out)
}

/// Decodes cty msgpack of type `t`; the whole input must be one value.
///
/// Every object attribute must be present, as cty requires. An unknown
/// refined as definitely null decodes as [`Value::Null`], as cty collapses it.
pub fn from_msgpack(bytes: &[u8], t: &Type) -> Result<Value, ValueError> {
    let mut d = Decoder { buf: bytes, pos: 0 };
    let v = d.value(t, 0)?;
    if d.pos != bytes.len() {
        return Err(ValueError::TrailingBytes {
            offset: d.pos,
            count: bytes.len() - d.pos,
        });
    }
    Ok(v)
}

// ---------------------------------------------------------------- encoding

fn encode(v: &Value, t: &Type, out: &mut Vec<u8>, depth: usize) -> Result<(), ValueError> {
    if depth > MAX_DEPTH {
        return Err(ValueError::invalid("value nests too deeply"));
    }
    match v {
        Value::Null => {
            out.push(0xc0);
            return Ok(());
        }
        Value::Unknown(r) => {
            write_unknown(r, t, out);
            return Ok(());
        }
        _ => {}
    }
    match t {
        Type::Dynamic => {
            let inner = v.infer_type();
            write_array_len(out, 2);
            write_bin(out, &inner.to_json());
            encode(v, &inner, out, depth + 1)?;
        }
        Type::Bool => match v {
            Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            other => return Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::Number => match v {
            Value::Number(n) => write_number(out, n),
            other => return Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::String => match v {
            Value::String(s) => write_str(out, s),
            other => return Err(ValueError::mismatch(t, other.kind_name())),
        },
        Type::List(et) | Type::Set(et) => {
            let elems = v
                .as_list()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            write_array_len(out, elems.len());
            for (i, e) in elems.iter().enumerate() {
                encode(e, et, out, depth + 1).map_err(|err| err.within(PathStep::Index(i)))?;
            }
        }
        Type::Tuple(ets) => {
            let elems = v
                .as_list()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            if elems.len() != ets.len() {
                return Err(ValueError::mismatch(t, format!("{} elements", elems.len())));
            }
            write_array_len(out, elems.len());
            for (i, (e, et)) in elems.iter().zip(ets).enumerate() {
                encode(e, et, out, depth + 1).map_err(|err| err.within(PathStep::Index(i)))?;
            }
        }
        Type::Map(et) => {
            let entries = v
                .as_map()
                .ok_or_else(|| ValueError::mismatch(t, v.kind_name()))?;
            write_map_len(out, entries.len());
            for (k, e) in entries {
                write_str(out, k);
                encode(e, et, out, depth + 1)
                    .map_err(|err| err.within(PathStep::Key(k.clone())))?;
            }
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
            // cty writes every attribute of the type, in sorted order.
            write_map_len(out, ats.len());
            for (k, at) in ats {
                write_str(out, k);
                let e = attrs.get(k).unwrap_or(&Value::Null);
                encode(e, at, out, depth + 1)
                    .map_err(|err| err.within(PathStep::Attr(k.clone())))?;
            }
        }
    }
    Ok(())
}

/// Writes an unknown with those refinements that suit `t`, as cty does:
/// the plain `d4 00 00` when none apply.
fn write_unknown(r: &Refinements, t: &Type, out: &mut Vec<u8>) {
    let mut body = Vec::new();
    let mut count = 0;
    if *t != Type::Dynamic {
        if r.not_null {
            count += 1;
            write_int(&mut body, REFINE_NULLNESS as i64);
            body.push(0xc2); // "is null" = false
        }
        match t {
            Type::String => {
                if let Some(prefix) = r.string_prefix.as_deref().filter(|p| !p.is_empty()) {
                    count += 1;
                    write_int(&mut body, REFINE_STRING_PREFIX as i64);
                    write_str(&mut body, truncate_prefix(prefix));
                }
            }
            Type::Number => {
                for (key, bound) in [
                    (REFINE_NUMBER_MIN, &r.number_lower),
                    (REFINE_NUMBER_MAX, &r.number_upper),
                ] {
                    if let Some((n, inclusive)) = bound {
                        count += 1;
                        write_int(&mut body, key as i64);
                        write_array_len(&mut body, 2);
                        write_number(&mut body, n);
                        body.push(if *inclusive { 0xc3 } else { 0xc2 });
                    }
                }
            }
            Type::List(_) | Type::Set(_) | Type::Map(_) => {
                for (key, bound) in [
                    (REFINE_LENGTH_MIN, r.length_lower),
                    (REFINE_LENGTH_MAX, r.length_upper),
                ] {
                    if let Some(n) = bound {
                        count += 1;
                        write_int(&mut body, key as i64);
                        write_uint(&mut body, n);
                    }
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        out.extend_from_slice(&[0xd4, 0, 0]);
        return;
    }
    let mut payload = Vec::with_capacity(body.len() + 1);
    write_map_len(&mut payload, count);
    payload.extend_from_slice(&body);
    write_ext_header(out, EXT_REFINED, payload.len());
    out.extend_from_slice(&payload);
}

/// The longest prefix of `p` within cty's prefix limit, cut at a char
/// boundary. A shorter prefix is still a true statement about the string.
fn truncate_prefix(p: &str) -> &str {
    if p.len() <= MAX_PREFIX {
        return p;
    }
    let mut end = MAX_PREFIX;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    &p[..end]
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(i) = n.to_i64() {
        write_int(out, i);
    } else if let Some(f) = n.to_exact_f64().filter(|_| !n.is_integer()) {
        // cty sends big integers as strings even when a float holds them.
        out.push(0xcb);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        write_str(out, &n.to_string());
    }
}

/// The most compact msgpack int, as cty's encoder (compact ints) writes.
fn write_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= i64::from(i8::MIN) {
        out.push(0xd0);
        out.push(v as i8 as u8);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v <= u64::from(u8::MAX) {
        out.push(0xcc);
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Writes a length with the 8/16/32-bit marker trio; lengths beyond u32
/// cannot occur for in-memory data that Terraform would accept.
fn write_sized(out: &mut Vec<u8>, len: usize, markers: [u8; 3]) {
    if let Ok(l) = u8::try_from(len) {
        out.push(markers[0]);
        out.push(l);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(markers[1]);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.len() < 32 {
        out.push(0xa0 | s.len() as u8);
    } else {
        write_sized(out, s.len(), [0xd9, 0xda, 0xdb]);
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    write_sized(out, b.len(), [0xc4, 0xc5, 0xc6]);
    out.extend_from_slice(b);
}

fn write_array_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(0xdc);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_map_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(0xde);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_ext_header(out: &mut Vec<u8>, ext: i8, len: usize) {
    let fixed = match len {
        1 => Some(0xd4),
        2 => Some(0xd5),
        4 => Some(0xd6),
        8 => Some(0xd7),
        16 => Some(0xd8),
        _ => None,
    };
    match fixed {
        Some(marker) => out.push(marker),
        None => write_sized(out, len, [0xc7, 0xc8, 0xc9]),
    }
    out.push(ext as u8);
}

// ---------------------------------------------------------------- decoding

/// Names a msgpack marker for "found ..." in error messages.
fn describe(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "msgpack integer",
        0x80..=0x8f | 0xde | 0xdf => "msgpack map",
        0x90..=0x9f | 0xdc | 0xdd => "msgpack array",
        0xa0..=0xbf | 0xd9..=0xdb => "msgpack string",
        0xc0 => "msgpack nil",
        0xc2 | 0xc3 => "msgpack bool",
        0xc4..=0xc6 => "msgpack binary",
        0xc7..=0xc9 | 0xd4..=0xd8 => "msgpack extension",
        0xca | 0xcb => "msgpack float",
        0xc1 => "the reserved msgpack byte 0xc1",
    }
}

fn is_int(marker: u8) -> bool {
    matches!(marker, 0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3)
}

fn is_ext(marker: u8) -> bool {
    matches!(marker, 0xc7..=0xc9 | 0xd4..=0xd8)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn truncated(&self) -> ValueError {
        ValueError::Truncated {
            path: Path::default(),
            offset: self.buf.len(),
        }
    }

    fn peek(&self) -> Result<u8, ValueError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.truncated())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.truncated())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, ValueError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len8(&mut self) -> Result<usize, ValueError> {
        Ok(usize::from(self.byte()?))
    }

    fn len16(&mut self) -> Result<usize, ValueError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> Result<usize, ValueError> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    /// Capacity to reserve for `n` elements: each takes at least a byte, so
    /// a claimed length beyond the input cannot make us over-allocate.
    fn capacity(&self, n: usize) -> usize {
        n.min(self.buf.len() - self.pos)
    }

    fn array_len(&mut self, expected: &dyn fmt::Display) -> Result<usize, ValueError> {
        let m = self.peek()?;
        let len = match m {
            0x90..=0x9f => {
                self.pos += 1;
                usize::from(m & 0x0f)
            }
            0xdc => {
                self.pos += 1;
                self.len16()?
            }
            0xdd => {
                self.pos += 1;
                self.len32()?
            }
            _ => return Err(ValueError::mismatch(expected, describe(m))),
        };
        Ok(len)
    }

    fn map_len(&mut self, expected: &dyn fmt::Display) -> Result<usize, ValueError> {
        let m = self.peek()?;
        let len = match m {
            0x80..=0x8f => {
                self.pos += 1;
                usize::from(m & 0x0f)
            }
            0xde => {
                self.pos += 1;
                self.len16()?
            }
            0xdf => {
                self.pos += 1;
                self.len32()?
            }
            _ => return Err(ValueError::mismatch(expected, describe(m))),
        };
        Ok(len)
    }

    /// Reads a str or bin (cty's decoder takes either where it wants text).
    fn raw_str(&mut self, expected: &str) -> Result<&'a [u8], ValueError> {
        let m = self.peek()?;
        let len = match m {
            0xa0..=0xbf => {
                self.pos += 1;
                usize::from(m & 0x1f)
            }
            0xd9 | 0xc4 => {
                self.pos += 1;
                self.len8()?
            }
            0xda | 0xc5 => {
                self.pos += 1;
                self.len16()?
            }
            0xdb | 0xc6 => {
                self.pos += 1;
                self.len32()?
            }
            _ => return Err(ValueError::mismatch(expected, describe(m))),
        };
        self.take(len)
    }

    fn string(&mut self, expected: &str) -> Result<String, ValueError> {
        let raw = self.raw_str(expected)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| ValueError::invalid(format!("{expected} is not valid UTF-8")))
    }

    fn bool(&mut self, expected: &str) -> Result<bool, ValueError> {
        match self.peek()? {
            0xc2 => {
                self.pos += 1;
                Ok(false)
            }
            0xc3 => {
                self.pos += 1;
                Ok(true)
            }
            m => Err(ValueError::mismatch(expected, describe(m))),
        }
    }

    /// Reads any msgpack integer, signed or not.
    fn int(&mut self, expected: &str) -> Result<i128, ValueError> {
        match self.peek()? {
            m if is_int(m) => Ok(self.try_int()?.unwrap_or_default()),
            m => Err(ValueError::mismatch(expected, describe(m))),
        }
    }

    /// Reads an integer if one is next; `None` leaves the input untouched.
    fn try_int(&mut self) -> Result<Option<i128>, ValueError> {
        let m = self.peek()?;
        let v = match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc..=0xd3 => {
                self.pos += 1;
                return Ok(Some(match m {
                    0xcc => i128::from(self.byte()?),
                    0xcd => i128::from(u16::from_be_bytes(self.be()?)),
                    0xce => i128::from(u32::from_be_bytes(self.be()?)),
                    0xcf => i128::from(u64::from_be_bytes(self.be()?)),
                    0xd0 => i128::from(self.byte()? as i8),
                    0xd1 => i128::from(i16::from_be_bytes(self.be()?)),
                    0xd2 => i128::from(i32::from_be_bytes(self.be()?)),
                    _ => i128::from(i64::from_be_bytes(self.be()?)),
                }));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(v))
    }

    fn number(&mut self) -> Result<Number, ValueError> {
        if let Some(i) = self.try_int()? {
            // Every msgpack int lies within i64::MIN..=u64::MAX.
            return Ok(match i64::try_from(i) {
                Ok(i) => Number::from(i),
                Err(_) => Number::from(i as u64),
            });
        }
        let m = self.peek()?;
        let f = match m {
            0xca => {
                self.pos += 1;
                f64::from(f32::from_be_bytes(self.be()?))
            }
            0xcb => {
                self.pos += 1;
                f64::from_be_bytes(self.be()?)
            }
            _ => {
                let raw = self.raw_str("number")?;
                let text = std::str::from_utf8(raw)
                    .map_err(|_| ValueError::invalid("number string is not valid UTF-8"))?;
                return text.parse::<Number>().map_err(ValueError::located);
            }
        };
        Number::from_f64(f).ok_or_else(|| {
            ValueError::invalid(format!("number {f} is not finite, which is not supported"))
        })
    }

    fn value(&mut self, t: &Type, depth: usize) -> Result<Value, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::invalid("value nests too deeply"));
        }
        let m = self.peek()?;
        // As in cty, any extension is an unknown, whatever the type.
        if is_ext(m) {
            return self.unknown(t);
        }
        if m == 0xc0 {
            self.pos += 1;
            return Ok(Value::Null);
        }
        match t {
            Type::Dynamic => {
                let len = self.array_len(&"[type, value] array for a dynamic value")?;
                if len != 2 {
                    return Err(ValueError::invalid(format!(
                        "a dynamic value must be a [type, value] array, found {len} elements"
                    )));
                }
                let raw = self.raw_str("type description")?;
                let inner = Type::from_json(raw).map_err(ValueError::located)?;
                self.value(&inner, depth + 1)
            }
            Type::Bool => self.bool("bool").map(Value::Bool),
            Type::Number => self.number().map(Value::Number),
            Type::String => self.string("string").map(Value::String),
            Type::List(et) | Type::Set(et) => {
                let len = self.array_len(t)?;
                let mut elems = Vec::with_capacity(self.capacity(len));
                for i in 0..len {
                    elems.push(
                        self.value(et, depth + 1)
                            .map_err(|err| err.within(PathStep::Index(i)))?,
                    );
                }
                Ok(match t {
                    Type::Set(_) => Value::Set(elems),
                    _ => Value::List(elems),
                })
            }
            Type::Tuple(ets) => {
                let len = self.array_len(t)?;
                if len != ets.len() {
                    return Err(ValueError::mismatch(t, format!("{len} elements")));
                }
                let mut elems = Vec::with_capacity(len);
                for (i, et) in ets.iter().enumerate() {
                    elems.push(
                        self.value(et, depth + 1)
                            .map_err(|err| err.within(PathStep::Index(i)))?,
                    );
                }
                Ok(Value::Tuple(elems))
            }
            Type::Map(et) => {
                let len = self.map_len(t)?;
                let mut out = BTreeMap::new();
                for _ in 0..len {
                    let k = self.string("string map key")?;
                    let v = self
                        .value(et, depth + 1)
                        .map_err(|err| err.within(PathStep::Key(k.clone())))?;
                    out.insert(k, v);
                }
                Ok(Value::Map(out))
            }
            Type::Object(ats) => {
                let len = self.map_len(t)?;
                let mut out = BTreeMap::new();
                for _ in 0..len {
                    let k = self.string("string attribute name")?;
                    let at = ats.get(&k).ok_or_else(|| {
                        ValueError::invalid(format!("unsupported attribute {k:?}"))
                    })?;
                    let v = self
                        .value(at, depth + 1)
                        .map_err(|err| err.within(PathStep::Attr(k.clone())))?;
                    out.insert(k, v);
                }
                // cty insists on every attribute being present.
                if let Some(missing) = ats.keys().find(|k| !out.contains_key(*k)) {
                    return Err(ValueError::invalid(format!(
                        "object is missing attribute {missing:?}"
                    )));
                }
                Ok(Value::Object(out))
            }
        }
    }

    /// Reads an unknown value's extension (the marker is known to be one).
    fn unknown(&mut self, t: &Type) -> Result<Value, ValueError> {
        let m = self.byte()?;
        let len = match m {
            0xd4 => 1,
            0xd5 => 2,
            0xd6 => 4,
            0xd7 => 8,
            0xd8 => 16,
            0xc7 => self.len8()?,
            0xc8 => self.len16()?,
            _ => self.len32()?,
        };
        let ext = self.byte()? as i8;
        let payload = self.take(len)?;
        // cty reads a body of at most one byte as "nothing known", whatever
        // the extension type.
        if len <= 1 {
            return Ok(Value::unknown());
        }
        if ext != EXT_REFINED {
            return Err(ValueError::invalid(format!(
                "unsupported msgpack extension type {ext} with {len} bytes"
            )));
        }
        if len > MAX_REFINEMENT_PAYLOAD {
            return Err(ValueError::invalid(format!(
                "unknown-value refinements of {len} bytes exceed the {MAX_REFINEMENT_PAYLOAD}-byte limit"
            )));
        }
        decode_refinements(payload, t).map_err(|err| match err {
            // Offsets and paths inside the payload would mislead; say what
            // went wrong at this value instead.
            ValueError::Truncated { .. } => {
                ValueError::invalid("unknown-value refinements end early")
            }
            ValueError::Mismatch {
                expected, found, ..
            } => ValueError::invalid(format!(
                "unknown-value refinements: expected {expected}, found {found}"
            )),
            other => other,
        })
    }

    /// Skips one msgpack value of any kind (for refinements we don't know).
    fn skip(&mut self, depth: usize) -> Result<(), ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::invalid("value nests too deeply"));
        }
        let m = self.byte()?;
        let (bytes, items) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(m & 0x0f)),
            0x90..=0x9f => (0, usize::from(m & 0x0f)),
            0xa0..=0xbf => (usize::from(m & 0x1f), 0),
            0xc4 | 0xd9 => (self.len8()?, 0),
            0xc5 | 0xda => (self.len16()?, 0),
            0xc6 | 0xdb => (self.len32()?, 0),
            0xc7 => (self.len8()? + 1, 0),
            0xc8 => (self.len16()? + 1, 0),
            0xc9 => (self.len32()?.saturating_add(1), 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, self.len16()?),
            0xdd => (0, self.len32()?),
            0xde => (0, self.len16()? * 2),
            0xdf => (0, self.len32()?.saturating_mul(2)),
            _ => return Err(ValueError::invalid("reserved msgpack byte 0xc1")),
        };
        self.take(bytes)?;
        for _ in 0..items {
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

fn decode_refinements(payload: &[u8], t: &Type) -> Result<Value, ValueError> {
    let mut d = Decoder {
        buf: payload,
        pos: 0,
    };
    let count = d.map_len(&"refinement map")?;
    // cty ignores refinements of dynamic values (it has none to give them).
    if *t == Type::Dynamic {
        return Ok(Value::unknown());
    }
    let mut r = Refinements::default();
    let mut is_null = false;
    for _ in 0..count {
        let key = d.int("integer refinement key")?;
        match key {
            REFINE_NULLNESS => {
                is_null = d.bool("bool nullness refinement")?;
                r.not_null = !is_null;
            }
            REFINE_STRING_PREFIX => {
                if *t != Type::String {
                    return Err(ValueError::invalid(format!(
                        "string prefix refinement for a value of type {t}"
                    )));
                }
                r.string_prefix = Some(d.string("string prefix refinement")?);
            }
            REFINE_NUMBER_MIN | REFINE_NUMBER_MAX => {
                if *t != Type::Number {
                    return Err(ValueError::invalid(format!(
                        "number bound refinement for a value of type {t}"
                    )));
                }
                let pair = Type::Tuple(vec![Type::Number, Type::Bool]);
                if d.array_len(&pair)? != 2 {
                    return Err(ValueError::invalid(
                        "number bound refinement must be a [number, bool] array",
                    ));
                }
                let bound = Some((d.number()?, d.bool("bool inclusiveness")?));
                if key == REFINE_NUMBER_MIN {
                    r.number_lower = bound;
                } else {
                    r.number_upper = bound;
                }
            }
            REFINE_LENGTH_MIN | REFINE_LENGTH_MAX => {
                if !t.is_collection() {
                    return Err(ValueError::invalid(format!(
                        "length refinement for a value of type {t}"
                    )));
                }
                let n = d.int("integer length bound")?;
                let n = u64::try_from(n)
                    .map_err(|_| ValueError::invalid(format!("negative length bound {n}")))?;
                if key == REFINE_LENGTH_MIN {
                    r.length_lower = Some(n);
                } else {
                    r.length_upper = Some(n);
                }
            }
            // Keys from future cty versions are skipped, as cty intends.
            _ => d.skip(0)?,
        }
    }
    // A value refined as definitely null is simply null, as cty collapses
    // it. Anything after the map is ignored, also as cty does.
    if is_null {
        return Ok(Value::Null);
    }
    Ok(Value::Unknown(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    fn enc(v: &Value, t: &Type) -> Vec<u8> {
        to_msgpack(v, t).unwrap()
    }

    fn dec(b: &[u8], t: &Type) -> Value {
        from_msgpack(b, t).unwrap()
    }

    /// Checks the exact bytes and that they decode back to the value.
    fn both(v: &Value, t: &Type, bytes: &[u8]) {
        assert_eq!(enc(v, t), bytes, "encoding {v:?}");
        assert_eq!(&dec(bytes, t), v, "decoding {bytes:02x?}");
    }

    #[test]
    fn primitives() {
        both(&Value::Null, &Type::String, &[0xc0]);
        both(&Value::unknown(), &Type::String, &[0xd4, 0, 0]);
        both(&Value::Bool(true), &Type::Bool, &[0xc3]);
        both(&Value::Bool(false), &Type::Bool, &[0xc2]);
        both(&Value::string("hi"), &Type::String, &[0xa2, b'h', b'i']);
        let long = "x".repeat(40);
        let mut bytes = vec![0xd9, 40];
        bytes.extend_from_slice(long.as_bytes());
        both(&Value::string(long), &Type::String, &bytes);
        // Strings also arrive as msgpack bin.
        assert_eq!(dec(&[0xc4, 1, b'z'], &Type::String), Value::string("z"));
    }

    #[test]
    fn numbers() {
        let t = Type::Number;
        both(&Value::number(0), &t, &[0x00]);
        both(&Value::number(127), &t, &[0x7f]);
        both(&Value::number(128), &t, &[0xcc, 0x80]);
        both(&Value::number(-1), &t, &[0xff]);
        both(&Value::number(-33), &t, &[0xd0, 0xdf]);
        both(&Value::number(65536), &t, &[0xce, 0, 1, 0, 0]);
        let mut min = vec![0xd3];
        min.extend_from_slice(&i64::MIN.to_be_bytes());
        both(&Value::number(i64::MIN), &t, &min);
        let mut max = vec![0xcf];
        max.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
        both(&Value::number(i64::MAX), &t, &max);
        // u64::MAX does not fit int64, so cty writes it as a string...
        let text = u64::MAX.to_string();
        let mut bytes = vec![0xb4];
        bytes.extend_from_slice(text.as_bytes());
        both(&Value::number(u64::MAX), &t, &bytes);
        // ...but reads it as a uint64 too.
        assert_eq!(
            dec(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &t),
            Value::number(u64::MAX)
        );
        // 2^80 is an integer too big for int64: a string, float or not.
        let two80 = Value::number(n("1208925819614629174706176"));
        let mut bytes = vec![0xb9];
        bytes.extend_from_slice(b"1208925819614629174706176");
        both(&two80, &t, &bytes);
        let mut f = vec![0xcb];
        f.extend_from_slice(&2f64.powi(80).to_be_bytes());
        assert_eq!(dec(&f, &t), two80);
        // 1.5 is exact in binary: a float64.
        let mut f = vec![0xcb];
        f.extend_from_slice(&1.5f64.to_be_bytes());
        both(&Value::number(n("1.5")), &t, &f);
        // 0.1 and 1e-30 are not: decimal strings.
        both(&Value::number(n("0.1")), &t, &[0xa3, b'0', b'.', b'1']);
        let tiny = "0.000000000000000000000000000001";
        let mut bytes = vec![0xd9, tiny.len() as u8];
        bytes.extend_from_slice(tiny.as_bytes());
        both(&Value::number(n("1e-30")), &t, &bytes);
        let big = "123456789012345678901234567890.123";
        let mut bytes = vec![0xd9, big.len() as u8];
        bytes.extend_from_slice(big.as_bytes());
        both(&Value::number(n(big)), &t, &bytes);
        // -0 arrives as a float and becomes 0.
        let mut f = vec![0xcb];
        f.extend_from_slice(&(-0.0f64).to_be_bytes());
        assert_eq!(dec(&f, &t), Value::number(0));
        // float32, and strings with exponents.
        assert_eq!(dec(&[0xca, 0x3f, 0xc0, 0, 0], &t), Value::number(n("1.5")));
        assert_eq!(dec(&[0xa3, b'1', b'e', b'3'], &t), Value::number(1000));
        // The exact value of the float nearest 0.1 survives a round trip.
        let mut f = vec![0xcb];
        f.extend_from_slice(&0.1f64.to_be_bytes());
        let v = dec(&f, &t);
        assert_eq!(enc(&v, &t), f);
    }

    #[test]
    fn collections() {
        let l = Type::list(Type::String);
        both(&Value::list([]), &l, &[0x90]);
        both(
            &Value::list([Value::string("a"), Value::Null]),
            &l,
            &[0x92, 0xa1, b'a', 0xc0],
        );
        let s = Type::set(Type::Number);
        both(
            &Value::Set(vec![Value::number(2), Value::number(1)]),
            &s,
            &[0x92, 0x02, 0x01],
        );
        let m = Type::map(Type::Bool);
        both(
            &Value::Map(
                [
                    ("b".into(), Value::Bool(true)),
                    ("a".into(), Value::unknown()),
                ]
                .into(),
            ),
            &m,
            &[0x82, 0xa1, b'a', 0xd4, 0, 0, 0xa1, b'b', 0xc3],
        );
        let tu = Type::Tuple(vec![Type::Bool, Type::String]);
        both(
            &Value::Tuple(vec![Value::Bool(false), Value::string("")]),
            &tu,
            &[0x92, 0xc2, 0xa0],
        );
        let o = Type::object([("y", Type::Number), ("x", Type::String)]);
        both(
            &Value::object([("x", Value::string("v")), ("y", Value::Null)]),
            &o,
            &[0x82, 0xa1, b'x', 0xa1, b'v', 0xa1, b'y', 0xc0],
        );
        // Attribute order on the wire does not matter when reading.
        assert_eq!(
            dec(&[0x82, 0xa1, b'y', 0x01, 0xa1, b'x', 0xc0], &o),
            Value::object([("x", Value::Null), ("y", Value::number(1))])
        );
        // 16+ elements switch to array16.
        let many = Value::list((0..16).map(|_| Value::Null));
        let mut bytes = vec![0xdc, 0, 16];
        bytes.extend_from_slice(&[0xc0; 16]);
        both(&many, &l, &bytes);
        // A whole unknown collection.
        both(&Value::unknown(), &o, &[0xd4, 0, 0]);
    }

    #[test]
    fn encoding_is_lenient_about_collection_variants() {
        let s = Type::set(Type::String);
        assert_eq!(
            enc(&Value::list([Value::string("a")]), &s),
            [0x91, 0xa1, b'a']
        );
        let o = Type::object([("a", Type::Bool), ("b", Type::Bool)]);
        // Missing attributes become null.
        assert_eq!(
            enc(&Value::Map([("a".into(), Value::Bool(true))].into()), &o),
            [0x82, 0xa1, b'a', 0xc3, 0xa1, b'b', 0xc0]
        );
    }

    #[test]
    fn dynamic() {
        let v = Value::list([Value::string("a")]);
        let mut bytes = vec![0x92, 0xc4, 17];
        bytes.extend_from_slice(br#"["list","string"]"#);
        bytes.extend_from_slice(&[0x91, 0xa1, b'a']);
        both(&v, &Type::Dynamic, &bytes);
        both(&Value::Null, &Type::Dynamic, &[0xc0]);
        both(&Value::unknown(), &Type::Dynamic, &[0xd4, 0, 0]);
        // The type may also arrive as a msgpack string.
        let mut bytes = vec![0x92, 0xa8];
        bytes.extend_from_slice(br#""number""#);
        bytes.push(0x05);
        assert_eq!(dec(&bytes, &Type::Dynamic), Value::number(5));
        // An unknown of a known type inside the wrapper.
        let mut bytes = vec![0x92, 0xa8];
        bytes.extend_from_slice(br#""string""#);
        bytes.extend_from_slice(&[0xd4, 0, 0]);
        assert_eq!(dec(&bytes, &Type::Dynamic), Value::unknown());
        // Dynamic attribute inside an object.
        let o = Type::object([("d", Type::Dynamic)]);
        let v = Value::object([("d", Value::Bool(true))]);
        let mut bytes = vec![0x81, 0xa1, b'd', 0x92, 0xc4, 6];
        bytes.extend_from_slice(br#""bool""#);
        bytes.push(0xc3);
        both(&v, &o, &bytes);
        // Refinements on a dynamic value are dropped, as cty does.
        let refined = Value::Unknown(Refinements {
            not_null: true,
            ..Refinements::default()
        });
        assert_eq!(enc(&refined, &Type::Dynamic), [0xd4, 0, 0]);
        assert_eq!(
            dec(&[0xc7, 3, 12, 0x81, 0x01, 0xc2], &Type::Dynamic),
            Value::unknown()
        );
    }

    #[test]
    fn refined_unknowns() {
        // A list of strings whose element 0 is an unknown non-null string
        // starting "ab", inside object attribute "l"; attribute "o" is an
        // unknown non-null object. Payloads are built by hand as Terraform
        // writes them: ext 12 around a map of small-int keys.
        let t = Type::object([
            ("l", Type::list(Type::String)),
            ("o", Type::object([("x", Type::Number)])),
        ]);
        let bytes = [
            0x82, // object of 2
            0xa1, b'l', 0x91, // "l": list of 1
            0xc7, 7, 12, // ext8, 7-byte payload, type 12
            0x82, 0x01, 0xc2, // map of 2; nullness: is-null = false
            0x02, 0xa2, b'a', b'b', // string prefix "ab"
            0xa1, b'o', // "o":
            0xc7, 3, 12, 0x81, 0x01, 0xc2, // ext8 { nullness: false }
        ];
        let expected = Value::object([
            (
                "l",
                Value::list([Value::Unknown(Refinements {
                    not_null: true,
                    string_prefix: Some("ab".into()),
                    ..Refinements::default()
                })]),
            ),
            (
                "o",
                Value::Unknown(Refinements {
                    not_null: true,
                    ..Refinements::default()
                }),
            ),
        ]);
        both(&expected, &t, &bytes);
    }

    #[test]
    fn refined_numbers_and_lengths() {
        let r = Refinements {
            not_null: true,
            number_lower: Some((Number::from(0), true)),
            number_upper: Some((n("1.5"), false)),
            ..Refinements::default()
        };
        let mut payload = vec![0x83, 0x01, 0xc2, 0x03, 0x92, 0x00, 0xc3, 0x04, 0x92, 0xcb];
        payload.extend_from_slice(&1.5f64.to_be_bytes());
        payload.push(0xc2);
        let mut bytes = vec![0xc7, payload.len() as u8, 12];
        bytes.extend_from_slice(&payload);
        both(&Value::Unknown(r), &Type::Number, &bytes);

        let r = Refinements {
            length_lower: Some(1),
            length_upper: Some(300),
            ..Refinements::default()
        };
        let bytes = [0xc7, 7, 12, 0x82, 0x05, 0x01, 0x06, 0xcd, 0x01, 0x2c];
        both(&Value::Unknown(r), &Type::set(Type::String), &bytes);

        // Refinements that do not suit the type are not written.
        let r = Refinements {
            string_prefix: Some("x".into()),
            ..Refinements::default()
        };
        assert_eq!(enc(&Value::Unknown(r), &Type::Number), [0xd4, 0, 0]);
        // Long prefixes are cut to cty's limit at a char boundary.
        let r = Refinements {
            string_prefix: Some("é".repeat(200)),
            ..Refinements::default()
        };
        let out = enc(&Value::Unknown(r), &Type::String);
        match dec(&out, &Type::String) {
            Value::Unknown(r) => assert_eq!(r.string_prefix.map(|p| p.len()), Some(254)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refinement_decoding_quirks() {
        // A refined-as-null unknown is just null.
        assert_eq!(
            dec(&[0xc7, 3, 12, 0x81, 0x01, 0xc3], &Type::String),
            Value::Null
        );
        // Unknown keys are skipped; bytes after the map are ignored.
        assert_eq!(
            dec(
                &[0xc7, 8, 12, 0x82, 0x63, 0x92, 0x01, 0xa0, 0x01, 0xc2, 0xff],
                &Type::Bool
            ),
            Value::Unknown(Refinements {
                not_null: true,
                ..Refinements::default()
            })
        );
        // Zero- and one-byte bodies of any extension type mean "unknown".
        assert_eq!(dec(&[0xc7, 0, 5], &Type::Bool), Value::unknown());
        assert_eq!(dec(&[0xd4, 7, 9], &Type::Bool), Value::unknown());
        // Errors: wrong extension type, a prefix on a number, a bad map.
        assert!(from_msgpack(&[0xd5, 3, 0x81, 0x01], &Type::Bool).is_err());
        let err = from_msgpack(&[0xc7, 4, 12, 0x81, 0x02, 0xa1, b'x'], &Type::Number).unwrap_err();
        assert!(
            err.to_string()
                .contains("string prefix refinement for a value of type number"),
            "{err}"
        );
        let err = from_msgpack(&[0xc7, 3, 12, 0x81, 0x01, 0x01], &Type::Number).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected bool nullness refinement, found msgpack integer"),
            "{err}"
        );
        let err = from_msgpack(&[0xc7, 3, 12, 0x81, 0x01], &Type::Number).unwrap_err();
        assert!(matches!(err, ValueError::Truncated { .. }), "{err}");
        let err = from_msgpack(&[0xc7, 2, 12, 0x81, 0x01], &Type::Number).unwrap_err();
        assert!(err.to_string().contains("refinements end early"), "{err}");
        let mut big = vec![0xc8, 0x04, 0x01, 12];
        big.extend_from_slice(&[0xc0; 1025]);
        assert!(from_msgpack(&big, &Type::String)
            .unwrap_err()
            .to_string()
            .contains("limit"));
    }

    #[test]
    fn errors() {
        let t = Type::object([("a", Type::list(Type::map(Type::String)))]);
        // .a[1]["k"] holds a number where a string belongs.
        let bytes = [0x81, 0xa1, b'a', 0x92, 0x80, 0x81, 0xa1, b'k', 0x05];
        let err = from_msgpack(&bytes, &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"at .a[1]["k"]: expected string, found msgpack integer"#
        );
        // Wrong kind at the root.
        let err = from_msgpack(&[0xa1, b'x'], &Type::Bool).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at <root>: expected bool, found msgpack string"
        );
        let err = from_msgpack(&[0x91, 0x01], &Type::map(Type::Number)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at <root>: expected map of number, found msgpack array"
        );
        // Truncated input, at several points.
        for bytes in [
            &[][..],
            &[0x92, 0x01],
            &[0xa3, b'a'],
            &[0xcd, 0x01],
            &[0xd4, 0],
            &[0x81, 0xa1],
        ] {
            let err = from_msgpack(bytes, &Type::list(Type::Number)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ValueError::Truncated { .. } | ValueError::Mismatch { .. }
                ),
                "{bytes:02x?}: {err}"
            );
        }
        let err = from_msgpack(&[0x92, 0x01], &Type::list(Type::Number)).unwrap_err();
        assert_eq!(err.to_string(), "at [1]: input ends early, at byte 2");
        // Trailing bytes.
        let err = from_msgpack(&[0xc3, 0xc3], &Type::Bool).unwrap_err();
        assert!(
            matches!(
                err,
                ValueError::TrailingBytes {
                    offset: 1,
                    count: 1
                }
            ),
            "{err}"
        );
        // Non-string map key.
        let err = from_msgpack(&[0x81, 0x01, 0x01], &Type::map(Type::Number)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at <root>: expected string map key, found msgpack integer"
        );
        // Unknown attribute, missing attribute.
        let o = Type::object([("a", Type::Bool)]);
        let err = from_msgpack(&[0x81, 0xa1, b'b', 0xc3], &o).unwrap_err();
        assert!(
            err.to_string().contains("unsupported attribute \"b\""),
            "{err}"
        );
        let err = from_msgpack(&[0x80], &o).unwrap_err();
        assert!(err.to_string().contains("missing attribute \"a\""), "{err}");
        // Tuple length.
        let err =
            from_msgpack(&[0x91, 0xc3], &Type::Tuple(vec![Type::Bool, Type::Bool])).unwrap_err();
        assert!(err.to_string().contains("found 1 elements"), "{err}");
        // Bad numbers: garbage text, infinity, NaN.
        assert!(from_msgpack(&[0xa3, b'a', b'b', b'c'], &Type::Number).is_err());
        let mut inf = vec![0xcb];
        inf.extend_from_slice(&f64::INFINITY.to_be_bytes());
        assert!(from_msgpack(&inf, &Type::Number).is_err());
        // Bad dynamic wrappers.
        assert!(from_msgpack(&[0x91, 0xc0], &Type::Dynamic).is_err());
        let mut bad_ty = vec![0x92, 0xa7];
        bad_ty.extend_from_slice(br#""float""#);
        bad_ty.push(0x01);
        let err = from_msgpack(&bad_ty, &Type::Dynamic).unwrap_err();
        assert!(
            err.to_string().contains("invalid type description"),
            "{err}"
        );
        // Invalid UTF-8.
        assert!(from_msgpack(&[0xa1, 0xff], &Type::String).is_err());
        // A huge claimed length does not allocate or panic.
        assert!(from_msgpack(&[0xdd, 0xff, 0xff, 0xff, 0xff], &Type::list(Type::Bool)).is_err());
        // Deep nesting is refused.
        let deep_ty = Type::Dynamic;
        let mut bytes = Vec::new();
        for _ in 0..MAX_DEPTH {
            bytes.extend_from_slice(&[0x92, 0xc4, 18]);
            bytes.extend_from_slice(br#"["list","dynamic"]"#);
            bytes.push(0x91);
        }
        bytes.push(0xc0);
        assert!(from_msgpack(&bytes, &deep_ty)
            .unwrap_err()
            .to_string()
            .contains("too deeply"));

        // Encoding errors name the place too.
        let err =
            to_msgpack(&Value::object([("a", Value::list([Value::number(1)]))]), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "at .a[0]: expected map of string, found number"
        );
        let err = to_msgpack(&Value::Tuple(vec![]), &Type::Tuple(vec![Type::Bool])).unwrap_err();
        assert!(err.to_string().contains("found 0 elements"), "{err}");
    }
}
