//! Writing values: type-directed, with msgpack's shortest forms.

use super::refine::write_unknown;
use super::*;

// ---------------------------------------------------------------- encoding

pub(super) fn encode(
    v: &Value,
    t: &Type,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), ValueError> {
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

/// A number as cty writes it: an int when it fits, else float64 when exact, else decimal text.
pub(super) fn write_number(out: &mut Vec<u8>, n: &Number) {
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
pub(super) fn write_int(out: &mut Vec<u8>, v: i64) {
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

pub(super) fn write_uint(out: &mut Vec<u8>, v: u64) {
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
pub(super) fn write_sized(out: &mut Vec<u8>, len: usize, markers: [u8; 3]) {
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

pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.len() < 32 {
        out.push(0xa0 | s.len() as u8);
    } else {
        write_sized(out, s.len(), [0xd9, 0xda, 0xdb]);
    }
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn write_bin(out: &mut Vec<u8>, b: &[u8]) {
    write_sized(out, b.len(), [0xc4, 0xc5, 0xc6]);
    out.extend_from_slice(b);
}

pub(super) fn write_array_len(out: &mut Vec<u8>, len: usize) {
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

pub(super) fn write_map_len(out: &mut Vec<u8>, len: usize) {
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

pub(super) fn write_ext_header(out: &mut Vec<u8>, ext: i8, len: usize) {
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
