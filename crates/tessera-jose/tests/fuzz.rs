//! Property-based fuzzing (issue 10, part 9) of JWS parsing and access-token verification:
//! arbitrary strings, random compact JWS, tampered real tokens, and claims with extreme
//! numbers are never accepted wrongly and never panic. `PROPTEST_CASES` sets the case count.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tessera_jose::{Expectations, JoseError, Jws, SigningKey, VerifyingKey, verify_access_token};
use tessera_types::SigningAlg;
use tessera_types::rfc7517::Jwk;

const ISS: &str = "https://as";
const AUD: &str = "api1";
const NOW: i64 = 1_700_000_000;

use tessera_testkit::proptest_config as config;

/// One signing key per algorithm, generated once (RSA generation is slow).
static KEYS: LazyLock<Vec<(SigningKey, VerifyingKey)>> = LazyLock::new(|| {
    SigningAlg::ALL
        .into_iter()
        .map(|alg| {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let vk = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
            (key, vk)
        })
        .collect()
});

fn es256() -> &'static (SigningKey, VerifyingKey) {
    &KEYS[0]
}

/// The verifying key of the algorithm the header names, as a JWKS lookup by `alg` would give.
fn key_for(jws: &Jws<'_>) -> Option<&'static VerifyingKey> {
    KEYS.iter().map(|(_, vk)| vk).find(|vk| vk.alg == jws.alg)
}

fn expect(now: i64, leeway: i64) -> Expectations<'static> {
    Expectations { issuer: ISS, audience: Some(AUD), typ: Some("at+jwt"), leeway, now }
}

fn good_claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "c", "exp": NOW + 300, "nbf": NOW, "iat": NOW, "jti": "j"})
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hostile numbers around NOW and the edges of i64, and values of other types.
fn extreme_number() -> impl Strategy<Value = Value> {
    tessera_testkit::extreme_number(
        vec![i64::MIN, i64::MIN + 1, -1, 0, 1, NOW, i64::MAX - 1, i64::MAX],
        vec![json!(1e300), json!(-0.5), json!("1700000000"), Value::Null, json!([NOW])],
    )
}

/// Arbitrary JSON with the algorithm names, `typ`, issuer and audience verification reacts to.
fn json_value() -> impl Strategy<Value = Value> {
    let words = vec!["ES256", "RS256", "PS256", "EdDSA", "none", "HS256", "at+jwt", ISS, AUD];
    tessera_testkit::json_value(extreme_number(), words, 24)
}

/// A JOSE header: usually an object with an allow-listed or hostile `alg`, sometimes anything.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        proptest::sample::select(vec!["ES256", "RS256", "PS256", "EdDSA", "none", "None", "HS256", "es256", ""])
            .prop_map(Value::from),
        json_value(),
    ];
    let object = (
        alg,
        proptest::option::of(prop_oneof![".{0,8}".prop_map(Value::String), json_value()]),
        proptest::option::of(prop_oneof![Just(json!("at+jwt")), Just(json!("JWT")), json_value()]),
        proptest::option::of(json_value()),
        btree_map("[a-z]{1,4}", json_value(), 0..3),
    )
        .prop_map(|(alg, kid, typ, crit, extra)| {
            let mut h: Map<String, Value> = extra.into_iter().collect();
            h.insert("alg".into(), alg);
            kid.map(|k| h.insert("kid".into(), k));
            typ.map(|t| h.insert("typ".into(), t));
            crit.map(|c| h.insert("crit".into(), c));
            Value::Object(h)
        });
    prop_oneof![4 => object, 1 => json_value()]
}

/// Claims: usually the good ones with members replaced by arbitrary values, sometimes anything.
fn claims() -> impl Strategy<Value = Value> {
    let edited = btree_map(
        proptest::sample::select(vec!["iss", "aud", "exp", "nbf", "iat", "sub", "jti"]),
        proptest::option::of(json_value()),
        0..4,
    )
    .prop_map(|edits| {
        let mut c = good_claims();
        for (k, v) in edits {
            match v {
                Some(v) => c[k] = v,
                None => {
                    c.as_object_mut().unwrap().remove(k);
                }
            }
        }
        c
    });
    prop_oneof![4 => edited, 1 => json_value()]
}

/// `exp`, `nbf` and `iat` each absent, or an extreme value.
fn time_claims() -> impl Strategy<Value = (Option<Value>, Option<Value>, Option<Value>)> {
    (
        proptest::option::of(extreme_number()),
        proptest::option::of(extreme_number()),
        proptest::option::of(extreme_number()),
    )
}

/// What the verifier must decide about times, in i128 with results clamped to i64 (the
/// saturating rule: `exp + leeway` never wraps).
fn times_ok(exp: Option<&Value>, nbf: Option<&Value>, now: i64, leeway: i64) -> bool {
    let clamp = |v: i128| v.clamp(i64::MIN as i128, i64::MAX as i128);
    let Some(exp) = exp.and_then(Value::as_i64) else { return false };
    if (now as i128) >= clamp(exp as i128 + leeway as i128) {
        return false;
    }
    match nbf {
        None => true,
        Some(nbf) => nbf.as_i64().is_some_and(|nbf| clamp(now as i128 + leeway as i128) >= nbf as i128),
    }
}

fn sign_raw(key: &SigningKey, header: &Value, claims: &[u8]) -> String {
    let input = format!("{}.{}", b64(&serde_json::to_vec(header).unwrap()), b64(claims));
    format!("{input}.{}", b64(&key.sign(input.as_bytes()).unwrap()))
}

proptest! {
    #![proptest_config(config(1024))]

    /// Arbitrary strings are never a token and never panic.
    #[test]
    fn arbitrary_strings_are_refused(token in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.=+/-]{0,200}",
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,90}",
    ]) {
        let _ = Jws::parse(&token);
        prop_assert!(verify_access_token(&token, key_for, &expect(NOW, 30)).is_err());
    }

    /// Compact JWS with arbitrary headers, claims and signature bytes are never accepted (the
    /// signature is random), whatever key the header's `alg` selects.
    #[test]
    fn random_compact_jws_are_refused(
        header in header(),
        claims in claims(),
        signature in vec(any::<u8>(), 0..300),
        raw_payload in proptest::option::of(vec(any::<u8>(), 0..64)),
    ) {
        let payload = raw_payload.unwrap_or_else(|| serde_json::to_vec(&claims).unwrap());
        let token = format!("{}.{}.{}", b64(&serde_json::to_vec(&header).unwrap()), b64(&payload), b64(&signature));
        if let Ok(jws) = Jws::parse(&token) {
            prop_assert!(SigningAlg::ALL.contains(&jws.alg));
            prop_assert!(header.get("crit").is_none(), "crit headers are refused (RFC 7515 section 4.1.11)");
        }
        prop_assert!(verify_access_token(&token, key_for, &expect(NOW, 30)).is_err());
    }

    /// Flipping any bits of any byte of a real ES256 token makes it invalid.
    #[test]
    fn tampered_tokens_are_refused(at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (key, vk) = es256();
        let token = key.sign_access_token(&good_claims()).unwrap();
        prop_assert!(verify_access_token(&token, |_| Some(vk), &expect(NOW, 0)).is_ok());
        let mut bytes = token.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        if let Ok(tampered) = String::from_utf8(bytes) {
            prop_assert!(verify_access_token(&tampered, |_| Some(vk), &expect(NOW, 0)).is_err());
            prop_assert!(verify_access_token(&tampered, key_for, &expect(NOW, 0)).is_err());
        }
    }

    /// Correctly signed tokens whose claims and header are arbitrary: the verifier never
    /// panics, and accepts only when every rule holds.
    #[test]
    fn signed_arbitrary_claims_are_judged_by_the_rules(
        alg in 0usize..4,
        header in header(),
        claims in claims(),
    ) {
        let (key, vk) = &KEYS[alg];
        let token = sign_raw(key, &header, &serde_json::to_vec(&claims).unwrap());
        if let Ok(v) = verify_access_token(&token, |_| Some(vk), &expect(NOW, 30)) {
            prop_assert_eq!(header.get("alg").and_then(Value::as_str), Some(vk.alg.as_str()));
            let typ = header.get("typ").and_then(Value::as_str).map(str::to_ascii_lowercase);
            prop_assert!(typ.is_some_and(|t| t == "at+jwt" || t == "application/at+jwt"), "typ {:?}", header.get("typ"));
            prop_assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISS));
            prop_assert!(v.claims.aud.iter().any(|a| a == AUD));
            prop_assert!(times_ok(claims.get("exp"), claims.get("nbf"), NOW, 30));
        }
    }

    /// exp, nbf, iat at the edges of i64 (and beyond, and floats), with any `now` and any
    /// leeway: no overflow, and the decision is the saturating one.
    #[test]
    fn extreme_times_never_overflow(
        (exp, nbf, iat) in time_claims(),
        now in prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>(), Just(NOW)],
        leeway in prop_oneof![Just(0i64), Just(30), Just(i64::MAX), Just(i64::MIN), any::<i64>()],
    ) {
        let (key, vk) = es256();
        let mut claims = json!({"iss": ISS, "aud": AUD});
        for (name, v) in [("exp", &exp), ("nbf", &nbf), ("iat", &iat)] {
            if let Some(v) = v {
                claims[name] = v.clone();
            }
        }
        let token = key.sign_access_token(&claims).unwrap();
        let got = verify_access_token(&token, |_| Some(vk), &expect(now, leeway));
        let want = times_ok(exp.as_ref(), nbf.as_ref(), now, leeway);
        prop_assert_eq!(got.is_ok(), want, "{:?} exp={:?} nbf={:?} now={} leeway={}", got, exp, nbf, now, leeway);
        if let Err(e) = got {
            prop_assert!(matches!(e, JoseError::Expired | JoseError::NotYetValid | JoseError::Claim(_)), "{:?}", e);
        }
    }

    /// Arbitrary JWK members never panic the key parser, and a key it accepts has a
    /// supported algorithm.
    #[test]
    fn arbitrary_jwks_never_panic(
        kty in proptest::sample::select(vec!["EC", "RSA", "OKP", "oct", ""]),
        crv in proptest::option::of(proptest::sample::select(vec!["P-256", "P-384", "Ed25519", "X25519"])),
        alg in proptest::option::of(proptest::sample::select(vec!["ES256", "RS256", "PS256", "EdDSA", "HS256", "none"])),
        use_ in proptest::option::of(proptest::sample::select(vec!["sig", "enc", ""])),
        members in vec(proptest::option::of(prop_oneof![
            vec(any::<u8>(), 0..40).prop_map(|b| b64(&b)),
            vec(any::<u8>(), 250..300).prop_map(|b| b64(&b)),
            ".{0,10}",
        ]), 4),
    ) {
        let jwk = Jwk {
            kty: kty.into(), kid: "k".into(), use_: use_.map(Into::into), alg: alg.map(Into::into),
            crv: crv.map(Into::into), x: members[0].clone(), y: members[1].clone(), n: members[2].clone(), e: members[3].clone(),
        };
        if let Ok(vk) = VerifyingKey::from_jwk(&jwk) {
            prop_assert!(SigningAlg::ALL.contains(&vk.alg));
            prop_assert!(alg.is_none_or(|a| a == vk.alg.as_str()));
        }
    }
}

/// Regression guard for the saturating rule: the largest `exp` with a positive leeway at the
/// largest `now` neither wraps nor panics (RFC 7519 §4.1.4 leeway "usually no more than a few
/// minutes", but the arithmetic must hold for any value).
#[test]
fn rfc7519_4_1_4_exp_plus_leeway_saturates() {
    let (key, vk) = es256();
    let token = key.sign_access_token(&json!({"iss": ISS, "aud": AUD, "exp": i64::MAX, "nbf": i64::MIN})).unwrap();
    assert!(verify_access_token(&token, |_| Some(vk), &expect(NOW, i64::MAX)).is_ok());
    assert_eq!(verify_access_token(&token, |_| Some(vk), &expect(i64::MAX, 30)).unwrap_err(), JoseError::Expired);
    let future = key.sign_access_token(&json!({"iss": ISS, "aud": AUD, "exp": i64::MAX, "nbf": i64::MAX})).unwrap();
    assert_eq!(
        verify_access_token(&future, |_| Some(vk), &expect(i64::MIN, i64::MIN)).unwrap_err(),
        JoseError::NotYetValid
    );
}
