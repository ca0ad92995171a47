//! Reading values, checking every length and type against the input.

use super::refine::decode_refinements;
use super::*;

/// Names a msgpack marker for "found ..." in error messages.
pub(super) fn describe(marker: u8) -> &'static str {
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

pub(super) fn is_int(marker: u8) -> bool {
    matches!(marker, 0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3)
}

pub(super) fn is_ext(marker: u8) -> bool {
    matches!(marker, 0xc7..=0xc9 | 0xd4..=0xd8)
}

pub(super) struct Decoder<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Decoder<'a> {
    pub(super) fn truncated(&self) -> ValueError {
        ValueError::Truncated {
            path: Path::default(),
            offset: self.buf.len(),
        }
    }

    pub(super) fn peek(&self) -> Result<u8, ValueError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.truncated())
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.truncated())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(super) fn byte(&mut self) -> Result<u8, ValueError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn be<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn len8(&mut self) -> Result<usize, ValueError> {
        Ok(usize::from(self.byte()?))
    }

    pub(super) fn len16(&mut self) -> Result<usize, ValueError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    pub(super) fn len32(&mut self) -> Result<usize, ValueError> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    /// Capacity to reserve for `n` elements: each takes at least a byte, so
    /// a claimed length beyond the input cannot make us over-allocate.
    pub(super) fn capacity(&self, n: usize) -> usize {
        n.min(self.buf.len() - self.pos)
    }

    pub(super) fn array_len(&mut self, expected: &dyn fmt::Display) -> Result<usize, ValueError> {
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

    pub(super) fn map_len(&mut self, expected: &dyn fmt::Display) -> Result<usize, ValueError> {
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
    pub(super) fn raw_str(&mut self, expected: &str) -> Result<&'a [u8], ValueError> {
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

    pub(super) fn string(&mut self, expected: &str) -> Result<String, ValueError> {
        let raw = self.raw_str(expected)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| ValueError::invalid(format!("{expected} is not valid UTF-8")))
    }

    pub(super) fn bool(&mut self, expected: &str) -> Result<bool, ValueError> {
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
    pub(super) fn int(&mut self, expected: &str) -> Result<i128, ValueError> {
        match self.peek()? {
            m if is_int(m) => Ok(self.try_int()?.unwrap_or_default()),
            m => Err(ValueError::mismatch(expected, describe(m))),
        }
    }

    /// Reads an integer if one is next; `None` leaves the input untouched.
    pub(super) fn try_int(&mut self) -> Result<Option<i128>, ValueError> {
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

    pub(super) fn number(&mut self) -> Result<Number, ValueError> {
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

    pub(super) fn value(&mut self, t: &Type, depth: usize) -> Result<Value, ValueError> {
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
    pub(super) fn unknown(&mut self, t: &Type) -> Result<Value, ValueError> {
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
    pub(super) fn skip(&mut self, depth: usize) -> Result<(), ValueError> {
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
