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

mod decode;
mod encode;
mod refine;
#[cfg(test)]
mod tests;

use super::{Number, Path, PathStep, Refinements, Type, Value, ValueError, MAX_DEPTH};
use decode::Decoder;
use encode::encode;

/// Extension type of an unknown value with refinements.
pub(super) const EXT_REFINED: i8 = 12;

/// Refinement map keys, from go-cty's `cty/msgpack/unknown.go`.
pub(super) const REFINE_NULLNESS: i128 = 1;
pub(super) const REFINE_STRING_PREFIX: i128 = 2;
pub(super) const REFINE_NUMBER_MIN: i128 = 3;
pub(super) const REFINE_NUMBER_MAX: i128 = 4;
pub(super) const REFINE_LENGTH_MIN: i128 = 5;
pub(super) const REFINE_LENGTH_MAX: i128 = 6;

/// cty refuses refinement payloads over 1 KiB as abusive.
pub(super) const MAX_REFINEMENT_PAYLOAD: usize = 1024;

/// cty cuts string prefixes to fit that limit; we cut at the same length.
pub(super) const MAX_PREFIX: usize = 255;

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
