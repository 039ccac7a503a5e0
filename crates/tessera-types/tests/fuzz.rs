//! Property-based fuzzing (issue 10, part 9) of the RFC 7662 introspection response type:
//! arbitrary bytes and JSON never panic, and only a JSON boolean `true` reads as active.
//! `PROPTEST_CASES` sets the case count.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};
use tessera_types::rfc7662::IntrospectionResponse;

use tessera_testkit::proptest_config as config;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        proptest::sample::select(vec![i64::MIN, i64::MAX]).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>().prop_filter_map("finite", Number::from_f64).prop_map(Value::Number),
        ".{0,12}".prop_map(Value::String),
        proptest::sample::select(vec!["true", "false", "True", "1", "api1", "Bearer"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `active` as a server might send it: the boolean, its look-alikes, or absent.
fn active() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        3 => any::<bool>().prop_map(Value::Bool),
        1 => proptest::sample::select(vec![json!("true"), json!(1), json!(1.0), json!([true]), json!({"v": true}), Value::Null]),
        1 => json_value(),
    ])
}

/// A response object: `active` plus members of RFC 7662 §2.2 with plausible or arbitrary values.
fn response_object() -> impl Strategy<Value = Value> {
    let member = proptest::sample::select(vec![
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "nbf",
        "jti",
        "token_type",
        "username",
        "x",
    ]);
    let plausible = prop_oneof![
        ".{0,10}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        vec("[a-z0-9]{1,6}", 0..3).prop_map(|v| json!(v)),
        json_value(),
    ];
    (active(), btree_map(member, plausible, 0..6)).prop_map(|(active, members)| {
        let mut m: Map<String, Value> = members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Some(a) = active {
            m.insert("active".into(), a);
        }
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(config(1024))]

    /// Arbitrary bytes and arbitrary JSON never panic the parser.
    #[test]
    fn arbitrary_input_never_panics(bytes in vec(any::<u8>(), 0..200), value in json_value()) {
        let _ = serde_json::from_slice::<IntrospectionResponse>(&bytes);
        let _ = serde_json::from_value::<IntrospectionResponse>(value);
    }

    /// RFC 7662 §2.2 `active` is "REQUIRED. Boolean": a parsed response is active only when the
    /// member is JSON `true`; a string "true", 1, null or a missing member is never active.
    #[test]
    fn rfc7662_2_2_active_must_be_boolean_true(v in response_object()) {
        let active_member = v.get("active").cloned();
        match serde_json::from_value::<IntrospectionResponse>(v.clone()) {
            Ok(r) => {
                prop_assert_eq!(active_member, Some(Value::Bool(r.active)), "{}", v);
                // What was read is what is written back.
                let again: IntrospectionResponse = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
                prop_assert_eq!(again, r);
            }
            Err(_) => prop_assert!(
                !matches!(active_member, Some(Value::Bool(_))) || v.as_object().unwrap().len() > 1,
                "an object holding only a boolean active must parse: {}", v
            ),
        }
    }
}

/// An inactive answer is `{"active": false}` and nothing else (RFC 7662 §2.2).
#[test]
fn rfc7662_2_2_inactive_is_active_false_only() {
    assert_eq!(serde_json::to_value(IntrospectionResponse::inactive()).unwrap(), json!({"active": false}));
    for not_active in [json!({}), json!({"active": "true"}), json!({"active": 1}), json!({"active": null})] {
        assert!(serde_json::from_value::<IntrospectionResponse>(not_active.clone()).is_err(), "{not_active}");
    }
}
