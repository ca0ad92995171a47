//! Round-trip properties: any value that conforms to a type survives
//! msgpack (nulls and unknowns included) and JSON (wholly known values).

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            vec(inner, 0..4).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        ("-?[0-9]{1,40}", -60i64..60)
            .prop_filter_map("parses", |(m, e)| format!("{m}e{e}").parse().ok()),
    ]
}

/// What the generated value may contain.
#[derive(Clone, Copy)]
struct Mode {
    /// Unknowns may appear anywhere.
    unknowns: bool,
    /// Unknowns may carry refinements. Off below `dynamic`, whose values
    /// lose them: an unknown's type is not kept, so none can be written.
    refinements: bool,
}

fn arb_refinements(t: &Type, mode: Mode) -> BoxedStrategy<Refinements> {
    if !mode.refinements || *t == Type::Dynamic {
        return Just(Refinements::default()).boxed();
    }
    let base = any::<bool>().prop_map(|not_null| Refinements {
        not_null,
        ..Refinements::default()
    });
    match t {
        Type::String => (base, proptest::option::of("\\PC{1,8}"))
            .prop_map(|(r, string_prefix)| Refinements { string_prefix, ..r })
            .boxed(),
        Type::Number => (
            base,
            proptest::option::of((arb_number(), any::<bool>())),
            proptest::option::of((arb_number(), any::<bool>())),
        )
            .prop_map(|(r, number_lower, number_upper)| Refinements {
                number_lower,
                number_upper,
                ..r
            })
            .boxed(),
        Type::List(_) | Type::Set(_) | Type::Map(_) => (
            base,
            proptest::option::of(any::<u64>()),
            proptest::option::of(0u64..1000),
        )
            .prop_map(|(r, length_lower, length_upper)| Refinements {
                length_lower,
                length_upper,
                ..r
            })
            .boxed(),
        _ => base.boxed(),
    }
}

fn arb_value(t: Type, mode: Mode) -> BoxedStrategy<Value> {
    let known = arb_known(t.clone(), mode);
    if mode.unknowns {
        prop_oneof![
            1 => Just(Value::Null),
            1 => arb_refinements(&t, mode).prop_map(Value::Unknown),
            4 => known,
        ]
        .boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 4 => known].boxed()
    }
}

fn arb_known(t: Type, mode: Mode) -> BoxedStrategy<Value> {
    match t {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::Dynamic => {
            let inner = Mode {
                refinements: false,
                ..mode
            };
            arb_type()
                .prop_flat_map(move |t| arb_known(t, inner))
                .boxed()
        }
        Type::List(et) => vec(arb_value(*et, mode), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(et) => vec(arb_value(*et, mode), 0..4).prop_map(Value::Set).boxed(),
        Type::Map(et) => btree_map(any::<String>(), arb_value(*et, mode), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(ets) => ets
            .into_iter()
            .map(|et| arb_value(et, mode))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object(ats) => ats
            .into_iter()
            .map(|(k, at)| arb_value(at, mode).prop_map(move |v| (k.clone(), v)))
            .collect::<Vec<_>>()
            .prop_map(|attrs| Value::Object(attrs.into_iter().collect::<BTreeMap<_, _>>()))
            .boxed(),
    }
}

fn typed_value(mode: Mode) -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(move |t| (Just(t.clone()), arb_value(t, mode)))
}

const ALL: Mode = Mode {
    unknowns: true,
    refinements: true,
};

const KNOWN: Mode = Mode {
    unknowns: false,
    refinements: false,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn msgpack_round_trip((t, v) in typed_value(ALL)) {
        let bytes = to_msgpack(&v, &t).unwrap();
        let back = from_msgpack(&bytes, &t).unwrap();
        prop_assert_eq!(&back, &v);
        // Encoding is canonical: decoding and re-encoding gives the same bytes.
        prop_assert_eq!(to_msgpack(&back, &t).unwrap(), bytes);
    }

    #[test]
    fn json_round_trip((t, v) in typed_value(KNOWN)) {
        prop_assert!(v.is_wholly_known());
        let bytes = to_json(&v, &t).unwrap();
        let back = from_json(&bytes, &t).unwrap();
        prop_assert_eq!(&back, &v);
        // Our JSON is JSON to other readers too.
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
    }

    #[test]
    fn type_json_round_trip(t in arb_type()) {
        prop_assert_eq!(Type::from_json(&t.to_json()).unwrap(), t);
    }

    #[test]
    fn number_text_round_trip(n in arb_number()) {
        prop_assert_eq!(n.to_string().parse::<Number>().unwrap(), n.clone());
        if let Some(f) = n.to_exact_f64() {
            prop_assert_eq!(Number::from_f64(f), Some(n));
        }
    }

    #[test]
    fn number_order_matches_floats(a in arb_number(), b in arb_number()) {
        // Where the floats differ, the exact numbers order the same way.
        let (fa, fb) = (a.to_f64(), b.to_f64());
        if fa < fb {
            prop_assert!(a < b);
        } else if fa > fb {
            prop_assert!(a > b);
        }
    }

    #[test]
    fn garbage_msgpack_never_panics(t in arb_type(), bytes in vec(any::<u8>(), 0..64)) {
        let _ = from_msgpack(&bytes, &t);
    }

    #[test]
    fn mangled_msgpack_never_panics(
        (t, v) in typed_value(ALL),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let bytes = to_msgpack(&v, &t).unwrap();
        if !bytes.is_empty() {
            let _ = from_msgpack(&bytes[..cut.index(bytes.len())], &t);
            let mut flipped = bytes.clone();
            flipped[flip.0.index(bytes.len())] ^= flip.1;
            let _ = from_msgpack(&flipped, &t);
        }
    }

    #[test]
    fn garbage_json_never_panics(t in arb_type(), text in "[\\[\\]{}\",:0-9a-z.\\\\ -]{0,40}") {
        let _ = from_json(text.as_bytes(), &t);
    }
}
