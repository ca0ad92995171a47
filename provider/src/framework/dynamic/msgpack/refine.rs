//! Unknown values' refinements (cty's extension type 12), both ways.

use super::encode::{
    write_array_len, write_ext_header, write_int, write_map_len, write_number, write_str,
    write_uint,
};
use super::*;

/// Writes an unknown with those refinements that suit `t`, as cty does:
/// the plain `d4 00 00` when none apply.
pub(super) fn write_unknown(r: &Refinements, t: &Type, out: &mut Vec<u8>) {
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
pub(super) fn truncate_prefix(p: &str) -> &str {
    if p.len() <= MAX_PREFIX {
        return p;
    }
    let mut end = MAX_PREFIX;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    &p[..end]
}

/// Decodes a refined unknown's payload into an unknown (or null, when refined as null).
pub(super) fn decode_refinements(payload: &[u8], t: &Type) -> Result<Value, ValueError> {
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
