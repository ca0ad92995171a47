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
    let err = from_msgpack(&[0x91, 0xc3], &Type::Tuple(vec![Type::Bool, Type::Bool])).unwrap_err();
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
    let err = to_msgpack(&Value::object([("a", Value::list([Value::number(1)]))]), &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at .a[0]: expected map of string, found number"
    );
    let err = to_msgpack(&Value::Tuple(vec![]), &Type::Tuple(vec![Type::Bool])).unwrap_err();
    assert!(err.to_string().contains("found 0 elements"), "{err}");
}
