use super::*;

fn obj(attrs: &[(&str, Type)]) -> Type {
    Type::object(attrs.iter().cloned())
}

fn round(v: &Value, t: &Type) -> String {
    let bytes = to_json(v, t).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(&from_json(&bytes, t).unwrap(), v, "{text}");
    text
}

#[test]
fn encodes_every_kind() {
    let t = obj(&[
        ("b", Type::Bool),
        ("n", Type::Number),
        ("s", Type::String),
        ("l", Type::list(Type::Number)),
        ("set", Type::set(Type::String)),
        ("m", Type::map(Type::Bool)),
        ("t", Type::Tuple(vec![Type::String, Type::Number])),
        ("z", Type::String),
    ]);
    let v = Value::object([
        ("b", Value::Bool(true)),
        (
            "n",
            Value::number(
                "123456789012345678901234567890.123"
                    .parse::<Number>()
                    .unwrap(),
            ),
        ),
        ("s", Value::string("a\"b\\c\n\u{1}é")),
        ("l", Value::list([Value::number(1), Value::number(-2)])),
        (
            "set",
            Value::Set(vec![Value::string("y"), Value::string("x")]),
        ),
        (
            "m",
            Value::Map([("k".to_string(), Value::Bool(false))].into()),
        ),
        (
            "t",
            Value::Tuple(vec![Value::string("x"), Value::number(0)]),
        ),
        ("z", Value::Null),
    ]);
    assert_eq!(
        round(&v, &t),
        r#"{"b":true,"l":[1,-2],"m":{"k":false},"n":123456789012345678901234567890.123,"s":"a\"b\\c\n\u0001é","set":["y","x"],"t":["x",0],"z":null}"#
    );
}

#[test]
fn dynamic_values_carry_their_type() {
    let v = Value::object([("a", Value::list([Value::number(1)]))]);
    assert_eq!(
        round(&v, &Type::Dynamic),
        r#"{"value":{"a":[1]},"type":["object",{"a":["list","number"]}]}"#
    );
    assert_eq!(round(&Value::Null, &Type::Dynamic), "null");
    let v = from_json(br#"{"type":"string","value":"x"}"#, &Type::Dynamic).unwrap();
    assert_eq!(v, Value::string("x"));
    for bad in [
        &br#"{"value":"x"}"#[..],
        br#"{"type":"string"}"#,
        br#"{"type":"string","value":"x","extra":1}"#,
        br#"{"type":"strung","value":"x"}"#,
        br#""x""#,
    ] {
        assert!(from_json(bad, &Type::Dynamic).is_err());
    }
}

#[test]
fn lenient_decoding_like_cty() {
    let t = obj(&[
        ("a", Type::Bool),
        ("b", Type::Number),
        ("c", Type::String),
        ("d", Type::String),
    ]);
    let v = from_json(br#"{"a":"1","b":"1e3","c":12.50}"#, &t).unwrap();
    assert_eq!(v.attr("a"), &Value::Bool(true));
    assert_eq!(v.attr("b"), &Value::number(1000));
    assert_eq!(v.attr("c"), &Value::string("12.50"));
    assert_eq!(v.attr("d"), &Value::Null);
    assert_eq!(
        from_json(b"\"\\ud83d\\ude00\\u00e9\"", &Type::String).unwrap(),
        Value::string("😀é")
    );
}

#[test]
fn numbers_keep_full_precision() {
    for text in [
        "9223372036854775808",
        "18446744073709551615",
        "0.000000000000000000000000000001",
        "-1.5",
        "0",
    ] {
        let v = from_json(text.as_bytes(), &Type::Number).unwrap();
        assert_eq!(to_json(&v, &Type::Number).unwrap(), text.as_bytes());
    }
    let v = from_json(b"1E+2", &Type::Number).unwrap();
    assert_eq!(to_json(&v, &Type::Number).unwrap(), b"100");
    let v = from_json(b"-0.0", &Type::Number).unwrap();
    assert_eq!(to_json(&v, &Type::Number).unwrap(), b"0");
}

#[test]
fn errors() {
    let t = obj(&[("a", Type::list(Type::map(Type::String)))]);
    let err = from_json(br#"{"a":[{},{"k":[1]}]}"#, &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"at .a[1]["k"]: expected string, found JSON array"#
    );
    let err = from_json(br#"{"b":1}"#, &t).unwrap_err();
    assert!(
        err.to_string().contains("unsupported attribute \"b\""),
        "{err}"
    );
    assert!(matches!(
        from_json(b"[1", &Type::list(Type::Number)),
        Err(ValueError::Truncated { .. })
    ));
    assert!(matches!(
        from_json(b"1 2", &Type::Number),
        Err(ValueError::TrailingBytes {
            offset: 2,
            count: 1
        })
    ));
    for bad in [
        &b"01"[..],
        b"1.",
        b"-",
        b".5",
        b"1e",
        b"+1",
        b"NaN",
        b"tru",
        b"\"\\x\"",
        b"\"a\nb\"",
        b"[1,]",
        b"{\"a\" 1}",
        b"{1:2}",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(from_json(b"[1,2]", &Type::Tuple(vec![Type::Number])).is_err());
    assert!(from_json(b"\"x\"", &Type::Number).is_err());
    assert!(from_json(b"\"yes\"", &Type::Bool).is_err());
    let deep = "[".repeat(MAX_DEPTH + 2);
    assert!(parse(deep.as_bytes()).is_err());

    let err = to_json(&Value::list([Value::unknown()]), &Type::list(Type::String)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at [0]: value is unknown, which JSON cannot represent"
    );
    let err = to_json(&Value::number(1), &Type::String).unwrap_err();
    assert_eq!(err.to_string(), "at <root>: expected string, found number");
    let err = to_json(
        &Value::object([("x", Value::Null)]),
        &obj(&[("a", Type::String)]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("\"x\" is not in the object type"),
        "{err}"
    );
}

#[test]
fn missing_object_attributes_encode_as_null() {
    let t = obj(&[("a", Type::String), ("b", Type::Number)]);
    let out = to_json(&Value::object([("a", Value::string("x"))]), &t).unwrap();
    assert_eq!(out, br#"{"a":"x","b":null}"#);
}
