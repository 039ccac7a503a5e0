//! The claim and key rules of `private_key_jwt`, one test per rule, on a manual clock.

use serde_json::{Value, json};
use tessera_jose::{SigningKey, VerifyingKey};
use tessera_testkit::assertion::{self as a, b64};
use tessera_types::clock::{Clock, ManualClock};
use tessera_types::{ClientId, SigningAlg, UnixTime};

use super::*;
use crate::limits::Limits;

const ISSUER: &str = "https://as.test";
const TOKEN_ENDPOINT: &str = "https://as.test/connect/token";

struct Case {
    clock: ManualClock,
    limits: AssertionLimits,
    key: SigningKey,
    keys: Vec<VerifyingKey>,
    client: ClientId,
}

impl Case {
    fn new() -> Self {
        let key = a::key(SigningAlg::ES256);
        let keys = vec![VerifyingKey::from_jwk(&key.public_jwk()).unwrap()];
        Self {
            clock: ManualClock::new(UnixTime(1_700_000_000)),
            limits: Limits::default().assertion,
            key,
            keys,
            client: ClientId::new("svc").unwrap(),
        }
    }

    fn claims(&self) -> Value {
        a::claims("svc", ISSUER, self.clock.now(), "j1")
    }

    fn check(&self, assertion: &str) -> Result<Checked, Failure> {
        let expected =
            Expected { issuer: ISSUER, token_endpoint: TOKEN_ENDPOINT, limits: &self.limits, now: self.clock.now() };
        check(assertion, &self.client, &self.keys, &expected)
    }

    fn with(&self, change: impl FnOnce(&mut Value)) -> Result<Checked, Failure> {
        let mut claims = self.claims();
        change(&mut claims);
        self.check(&a::sign(&self.key, &a::header(&self.key), &claims))
    }
}

#[test]
fn rfc7523_3_an_honest_assertion_passes_and_is_remembered_until_exp_plus_leeway() {
    let c = Case::new();
    let checked = c.with(|_| {}).unwrap();
    assert_eq!(checked.jti, "j1");
    assert_eq!(checked.valid_until.0, c.clock.now().0 + 60 + c.limits.leeway);
}

#[test]
fn rfc7523_3_1_and_2_iss_and_sub_are_the_client_id() {
    let c = Case::new();
    assert_eq!(c.with(|v| v["iss"] = "other".into()).unwrap_err(), Failure::Issuer);
    assert_eq!(c.with(|v| v["sub"] = "other".into()).unwrap_err(), Failure::Subject);
    assert_eq!(c.with(|v| drop(v.as_object_mut().unwrap().remove("iss"))).unwrap_err(), Failure::Issuer);
}

#[test]
fn rfc7523bis_aud_is_the_issuer_alone() {
    let mut c = Case::new();
    assert!(c.with(|v| v["aud"] = json!([ISSUER])).is_ok(), "an array of exactly one");
    assert_eq!(c.with(|v| v["aud"] = json!([ISSUER, "https://other"])).unwrap_err(), Failure::Audience);
    assert_eq!(c.with(|v| v["aud"] = TOKEN_ENDPOINT.into()).unwrap_err(), Failure::Audience);
    assert_eq!(c.with(|v| v["aud"] = json!([])).unwrap_err(), Failure::Audience);
    assert_eq!(c.with(|v| v["aud"] = json!(7)).unwrap_err(), Failure::Audience);
    assert_eq!(c.with(|v| v["aud"] = format!("{ISSUER}/").into()).unwrap_err(), Failure::Audience);
    c.limits.audience = AssertionAudience::IssuerOrTokenEndpoint;
    assert!(c.with(|v| v["aud"] = TOKEN_ENDPOINT.into()).is_ok());
    assert!(c.with(|v| v["aud"] = ISSUER.into()).is_ok());
    assert_eq!(c.with(|v| v["aud"] = json!([ISSUER, TOKEN_ENDPOINT])).unwrap_err(), Failure::Audience);
}

#[test]
fn rfc7523_3_4_exp_is_required_and_bounded() {
    let c = Case::new();
    let now = c.clock.now().0;
    assert_eq!(c.with(|v| drop(v.as_object_mut().unwrap().remove("exp"))).unwrap_err(), Failure::MissingExp);
    // Lifetime: exp - now and exp - iat at most max_lifetime (300 s by default).
    assert!(c.with(|v| v["exp"] = (now + 300).into()).is_ok());
    assert_eq!(c.with(|v| v["exp"] = (now + 301).into()).unwrap_err(), Failure::TooLongLived);
    assert_eq!(c.with(|v| v["iat"] = (now - 100).into()).map(|_| ()), Ok(()), "exp - iat = 160");
    let long = |v: &mut Value| {
        v["iat"] = (now - 290).into();
        v["exp"] = (now + 20).into();
    };
    assert_eq!(c.with(long).unwrap_err(), Failure::TooLongLived, "exp - iat = 310");
    assert_eq!(c.with(|v| v["exp"] = "soon".into()).unwrap_err(), Failure::Malformed);
    assert_eq!(c.with(|v| v["exp"] = i64::MAX.into()).unwrap_err(), Failure::TooLongLived, "no overflow");
}

#[test]
fn rfc7523_3_4_an_expired_assertion_is_refused_after_the_leeway() {
    let c = Case::new();
    let assertion = a::assertion(&c.key, "svc", ISSUER, c.clock.now(), "j1");
    c.clock.advance(60 + c.limits.leeway - 1);
    assert!(c.check(&assertion).is_ok(), "within the leeway");
    c.clock.advance(1);
    assert_eq!(c.check(&assertion).unwrap_err(), Failure::Expired);
}

#[test]
fn rfc7523_3_5_and_6_nbf_and_iat_not_in_the_future_beyond_the_leeway() {
    let c = Case::new();
    let now = c.clock.now().0;
    let leeway = c.limits.leeway;
    assert!(c.with(|v| v["nbf"] = (now + leeway).into()).is_ok());
    assert_eq!(c.with(|v| v["nbf"] = (now + leeway + 1).into()).unwrap_err(), Failure::NotYetValid);
    assert!(c.with(|v| v["iat"] = (now + leeway).into()).is_ok());
    assert_eq!(c.with(|v| v["iat"] = (now + leeway + 1).into()).unwrap_err(), Failure::IssuedInFuture);
}

#[test]
fn rfc7523_3_7_jti_is_required() {
    let c = Case::new();
    assert_eq!(c.with(|v| drop(v.as_object_mut().unwrap().remove("jti"))).unwrap_err(), Failure::MissingJti);
    assert_eq!(c.with(|v| v["jti"] = "".into()).unwrap_err(), Failure::MissingJti);
    assert_eq!(c.with(|v| v["jti"] = 5.into()).unwrap_err(), Failure::Malformed);
}

#[test]
fn rfc7523_3_9_only_registered_keys_of_their_own_algorithm_verify() {
    let c = Case::new();
    let claims = c.claims();
    // Another key under the registered kid, a kid nobody registered, no kid at all.
    let stranger = a::key(SigningAlg::ES256);
    assert_eq!(c.check(&a::sign(&stranger, &a::header(&c.key), &claims)).unwrap_err(), Failure::BadSignature);
    assert_eq!(c.check(&a::sign(&stranger, &a::header(&stranger), &claims)).unwrap_err(), Failure::UnknownKey);
    assert!(c.check(&a::sign(&c.key, &json!({"alg": "ES256"}), &claims)).is_ok(), "no kid: tried by alg");
    assert_eq!(c.check(&a::sign(&stranger, &json!({"alg": "ES256"}), &claims)).unwrap_err(), Failure::BadSignature);
    // The header's alg must be the key's: an EdDSA header over the ES256 key's kid.
    let ed = a::key(SigningAlg::EdDSA);
    let confused = json!({"alg": "EdDSA", "kid": c.key.kid.as_str()});
    assert_eq!(c.check(&a::sign(&ed, &confused, &claims)).unwrap_err(), Failure::UnknownKey);
    assert_eq!(c.check(&a::sign(&ed, &json!({"alg": "EdDSA"}), &claims)).unwrap_err(), Failure::UnknownKey);
    // An embedded jwk (or jku, x5u) is never trusted.
    let mut embedded = a::header(&stranger);
    embedded["jwk"] = serde_json::to_value(stranger.public_jwk()).unwrap();
    embedded["jku"] = "https://attacker.example/jwks".into();
    assert_eq!(c.check(&a::sign(&stranger, &embedded, &claims)).unwrap_err(), Failure::UnknownKey);
    // No keys registered at all.
    let expected = Expected { issuer: ISSUER, token_endpoint: TOKEN_ENDPOINT, limits: &c.limits, now: c.clock.now() };
    assert_eq!(
        check(&a::sign(&c.key, &a::header(&c.key), &claims), &c.client, &[], &expected).unwrap_err(),
        Failure::NoKeys
    );
}

#[test]
fn rfc7515_none_hmac_and_crit_are_refused_before_any_key() {
    let c = Case::new();
    let payload = b64(&c.claims());
    assert_eq!(c.check(&format!("{}.{payload}.", b64(&json!({"alg": "none"})))).unwrap_err(), Failure::Malformed);
    assert_eq!(c.check(&format!("{}.{payload}.AAAA", b64(&json!({"alg": "none"})))).unwrap_err(), Failure::Algorithm);
    assert_eq!(c.check(&format!("{}.{payload}.AAAA", b64(&json!({"alg": "HS256"})))).unwrap_err(), Failure::Algorithm);
    let mut crit = a::header(&c.key);
    crit["crit"] = json!(["exp"]);
    assert_eq!(c.check(&a::sign(&c.key, &crit, &c.claims())).unwrap_err(), Failure::Critical);
    assert_eq!(c.check("not.a-jwt").unwrap_err(), Failure::Malformed);
}

#[test]
fn the_replay_table_keeps_a_hash_of_the_jti() {
    assert_eq!(jti_hash("j1"), jti_hash("j1"));
    assert_ne!(jti_hash("j1"), jti_hash("j2"));
    assert_eq!(jti_hash(&"x".repeat(10_000)).len(), 43);
}
