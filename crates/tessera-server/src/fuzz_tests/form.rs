//! The form parser against an independent oracle (the `form_urlencoded` and
//! `percent_encoding` crates, which are lenient, plus the strictness rules stated here).

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::form::{Form, decode};

/// Bytes that look like a form often enough to reach every branch: separators, escapes,
/// hex digits of both cases, non-hex letters, and bytes that are never UTF-8 alone.
fn formish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> = b"ab=&%+09AFafGz: \x00\x7f\xc3\xa9\xff\xe2\x82".to_vec();
    prop_oneof![vec(any::<u8>(), 0..200), vec(proptest::sample::select(alphabet), 0..64)]
}

/// Every `%` is followed by two hex digits (hex digits are never `%`, so no state is needed).
fn escapes_well_formed(raw: &[u8]) -> bool {
    raw.iter().enumerate().filter(|(_, b)| **b == b'%').all(|(i, _)| {
        raw.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && raw.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    })
}

/// The strict reading of one component, if there is one: `+` is a space, escapes decoded
/// (leniently, by `percent_encoding`, so only after the strictness check), UTF-8 required.
fn oracle_component(raw: &[u8]) -> Option<String> {
    if !escapes_well_formed(raw) {
        return None;
    }
    let plus: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    String::from_utf8(percent_encoding::percent_decode(&plus).collect()).ok()
}

/// What a strict parser must return: `None` when any component is malformed, else the
/// parameters with empty names or values dropped (RFC 6749 §3.1), in order.
fn oracle(body: &[u8]) -> Option<BTreeMap<String, Vec<String>>> {
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut halves = pair.splitn(2, |b| *b == b'=');
        let name = oracle_component(halves.next().unwrap_or_default())?;
        let value = oracle_component(halves.next().unwrap_or_default())?;
        if !name.is_empty() && !value.is_empty() {
            params.entry(name).or_default().push(value);
        }
    }
    // The lenient parser agrees on every accepted body.
    let lenient: Vec<(String, String)> = form_urlencoded::parse(body)
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let mut regrouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, v) in lenient {
        regrouped.entry(n).or_default().push(v);
    }
    assert_eq!(params, regrouped, "oracle disagrees with form_urlencoded on {body:?}");
    Some(params)
}

/// The parsed form says exactly what `expected` says, through its public accessors.
fn assert_form_matches(form: &Form, expected: &BTreeMap<String, Vec<String>>) {
    for (name, values) in expected {
        assert_eq!(form.multi(name), values.as_slice(), "{name}");
        match values.as_slice() {
            [one] => assert_eq!(form.single(name).unwrap(), Some(one.as_str())),
            _ => assert!(form.single(name).is_err(), "repeated {name} must be refused (RFC 6749 section 3.2)"),
        }
    }
    let repeated = expected.values().any(|v| v.len() > 1);
    assert_eq!(form.reject_repeats(&[]).is_err(), repeated);
    let names: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert!(form.reject_repeats(&names).is_ok(), "every repeat allowed");
    for absent in ["grant_type", "scope", "client_id", "client_secret"] {
        if !expected.contains_key(absent) {
            assert_eq!(form.single(absent).unwrap(), None);
            assert!(form.multi(absent).is_empty());
        }
    }
}

/// Form-encodes like `byte_serialize`, but randomly with `%20` for a space and lower-case hex,
/// both of which a parser must accept.
fn encode(s: &str, lower: bool, plus: bool) -> String {
    let e: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
    let e = if plus { e } else { e.replace('+', "%20") };
    if lower { lowercase_escapes(&e) } else { e }
}

fn lowercase_escapes(e: &str) -> String {
    let mut out = String::with_capacity(e.len());
    let mut chars = e.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec!["grant_type", "scope", "client_id", "client_secret", "resource"])
            .prop_map(str::to_owned),
        "[a-z_]{1,6}",
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[ -~]{0,12}", any::<String>()]
}

proptest! {
    #![proptest_config(super::config(1024))]

    /// Arbitrary bytes never panic, and the parser accepts exactly what the strict oracle
    /// accepts, with the same parameters.
    #[test]
    fn arbitrary_bodies_parse_as_the_strict_oracle_says(body in formish_bytes()) {
        match (Form::parse(&body), oracle(&body)) {
            (Ok(form), Some(expected)) => assert_form_matches(&form, &expected),
            (Err(e), None) => prop_assert_eq!(e.code, tessera_types::ErrorCode::InvalidRequest),
            (got, want) => prop_assert!(false, "body {:?}: parser {:?}, oracle {:?}", body, got.is_ok(), want),
        }
    }

    /// Any list of parameters, form-encoded (either case of hex, `+` or `%20`), parses back:
    /// empty values count as absent, repeats are kept for `multi` and refused by `single`.
    #[test]
    fn encoded_parameters_round_trip(
        pairs in vec((name(), value()), 0..8),
        lower in any::<bool>(),
        plus in any::<bool>(),
    ) {
        let body = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n, lower, plus), encode(v, lower, plus)))
            .collect::<Vec<_>>()
            .join("&");
        let form = Form::parse(body.as_bytes()).unwrap();
        let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (n, v) in pairs.iter().filter(|(n, v)| !n.is_empty() && !v.is_empty()) {
            expected.entry(n.clone()).or_default().push(v.clone());
        }
        assert_form_matches(&form, &expected);
    }

    /// A `%` not followed by two hex digits anywhere in an otherwise good body is refused.
    #[test]
    fn malformed_percent_escapes_are_refused(
        pairs in vec((name(), value()), 0..5),
        at in any::<prop::sample::Index>(),
        tail in prop_oneof![Just(String::new()), "[0-9a-fA-F]?[g-zG-Z%&=+ ]"],
    ) {
        let good = pairs.iter().map(|(n, v)| format!("{}={}", encode(n, false, true), encode(v, false, true)))
            .collect::<Vec<_>>().join("&");
        let (mut body, at) = (good.clone().into_bytes(), at.index(good.len() + 1));
        let tail = if at == good.len() { tail } else if tail.is_empty() { "z".to_owned() } else { tail };
        body.splice(at..at, format!("%{tail}").into_bytes());
        prop_assert!(Form::parse(&body).is_err(), "{:?}", String::from_utf8_lossy(&body));
    }

    /// Bytes that are not UTF-8, escaped or raw, in a name or a value, are refused.
    #[test]
    fn invalid_utf8_is_refused(
        bytes in vec(any::<u8>(), 1..12).prop_filter("not UTF-8", |b| std::str::from_utf8(b).is_err()),
        escaped in any::<bool>(),
        in_name in any::<bool>(),
    ) {
        let bad: Vec<u8> = if escaped {
            bytes.iter().flat_map(|b| format!("%{b:02X}").into_bytes()).collect()
        } else {
            bytes.iter().flat_map(|b| match b { b'&' | b'=' | b'%' | b'+' => format!("%{b:02X}").into_bytes(), _ => vec![*b] }).collect()
        };
        let body = if in_name { [b"grant_type=client_credentials&".as_slice(), &bad, b"=x"].concat() }
            else { [b"scope=".as_slice(), &bad, b"&a=b"].concat() };
        prop_assert!(Form::parse(&body).is_err());
        prop_assert!(decode(&bad).is_err());
    }

    /// `decode` inverts form encoding for any string.
    #[test]
    fn decode_inverts_encoding(s in any::<String>(), lower in any::<bool>(), plus in any::<bool>()) {
        prop_assert_eq!(decode(encode(&s, lower, plus).as_bytes()).unwrap(), s);
    }
}
