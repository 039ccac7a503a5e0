//! The property tests' runner configuration and the strategies more than one crate's fuzz tests
//! draw from (hostile numbers, arbitrary JSON), shared by every crate's fuzz tests.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Number, Value};

/// `PROPTEST_CASES`, else `default`: short enough for CI, long on demand. Failures are not
/// persisted to files: a failing case found here becomes a named regression test.
pub fn proptest_config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    // Rejections (filters, assumptions) are counted over the whole run: scale their limits.
    Config {
        cases,
        max_local_rejects: cases.saturating_mul(8).max(65_536),
        max_global_rejects: (cases / 4).max(1024),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Numbers at and past the edges of i64, floats, and values of other types: one of `edges` (the
/// test's own boundaries, e.g. around its "now" and leeway), any i64, integers past i64, any
/// finite float, or one of `odd` (strings, null, arrays where a number belongs). Each of `odd`
/// is as likely as each of the other four kinds.
pub fn extreme_number(edges: Vec<i64>, odd: Vec<Value>) -> impl Strategy<Value = Value> + Clone {
    let weight = u32::try_from(odd.len()).expect("a few odd values");
    prop_oneof![
        1 => proptest::sample::select(edges).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => proptest::sample::select(vec![i64::MAX as u64 + 1, u64::MAX]).prop_map(Value::from),
        1 => any::<f64>().prop_filter_map("finite", Number::from_f64).prop_map(Value::Number),
        weight => proptest::sample::select(odd),
    ]
}

/// Arbitrary JSON, three levels deep and about `size` nodes: leaves are null, booleans,
/// `numbers`, short strings and `words` (values the code under test reacts to, e.g. an
/// audience or an algorithm name).
pub fn json_value(
    numbers: impl Strategy<Value = Value> + 'static,
    words: Vec<&'static str>,
    size: u32,
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        numbers,
        ".{0,12}".prop_map(Value::String),
        proptest::sample::select(words).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, size, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
