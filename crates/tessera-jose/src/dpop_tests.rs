use serde_json::json;
use tessera_types::SigningAlg;

use super::*;
use crate::SigningKey;

const URL: &str = "https://api.example/weatherforecast";
const NOW: i64 = 1_800_000_000;

fn key(alg: SigningAlg) -> SigningKey {
    SigningKey::generate(alg).unwrap().0
}

fn claims<'a>(token: Option<&'a str>) -> ProofClaims<'a> {
    ProofClaims { jti: "p1", htm: "GET", htu: URL, iat: NOW, access_token: token, nonce: None }
}

fn expect<'a>(token: Option<&'a str>) -> ProofExpectations<'a> {
    ProofExpectations { method: "GET", url: URL, now: NOW, max_age: 60, leeway: 5, access_token: token, nonces: &[] }
}

/// A proof with any header and claims, signed by `key`.
fn forged(key: &SigningKey, header: serde_json::Value, payload: serde_json::Value) -> String {
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let input = format!("{}.{}", b64(&header), b64(&payload));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap()))
}

#[test]
fn rfc9449_4_3_a_proof_verifies_with_its_own_key_and_names_its_thumbprint() {
    for alg in SigningAlg::ALL {
        let k = key(alg);
        let proof = sign_proof(&k, &claims(Some("the-token"))).unwrap();
        let ok = verify_proof(&proof, &expect(Some("the-token"))).unwrap();
        assert_eq!(ok.jkt, thumbprint(&k.public_jwk()), "{alg}");
        assert_eq!((ok.jti.as_str(), ok.iat), ("p1", NOW));
    }
}

#[test]
fn rfc9449_4_3_every_check_refuses() {
    let k = key(SigningAlg::ES256);
    let other = key(SigningAlg::ES256);
    let good = |f: &dyn Fn(&mut ProofClaims<'_>)| {
        let mut c = claims(Some("tok"));
        f(&mut c);
        sign_proof(&k, &c).unwrap()
    };
    let e = expect(Some("tok"));
    let refused = |proof: &str, e: &ProofExpectations<'_>| verify_proof(proof, e).unwrap_err();
    assert_eq!(refused(&good(&|c| c.htm = "POST"), &e), ProofError::Method);
    assert_eq!(refused(&good(&|c| c.htu = "https://api.example/other"), &e), ProofError::Url);
    assert_eq!(refused(&good(&|c| c.htu = "https://evil.example/weatherforecast"), &e), ProofError::Url);
    assert_eq!(refused(&good(&|c| c.iat = NOW - 61), &e), ProofError::IssuedAt);
    assert_eq!(refused(&good(&|c| c.iat = NOW + 6), &e), ProofError::IssuedAt);
    assert_eq!(refused(&good(&|c| c.access_token = Some("another-token")), &e), ProofError::AccessTokenHash);
    assert_eq!(refused(&good(&|c| c.access_token = None), &e), ProofError::AccessTokenHash);
    let accepted = ["n-1".to_owned(), "n-2".to_owned()];
    let with_nonce = ProofExpectations { nonces: &accepted, ..expect(Some("tok")) };
    assert_eq!(refused(&good(&|_| {}), &with_nonce), ProofError::NonceRequired);
    assert_eq!(refused(&good(&|c| c.nonce = Some("n-0")), &with_nonce), ProofError::NonceRequired);
    assert!(verify_proof(&good(&|c| c.nonce = Some("n-1")), &with_nonce).is_ok());
    assert!(verify_proof(&good(&|c| c.nonce = Some("n-2")), &with_nonce).is_ok());

    let jwk = serde_json::to_value(k.public_jwk()).unwrap();
    let payload = json!({"jti": "p1", "htm": "GET", "htu": URL, "iat": NOW, "ath": ath("tok")});
    // Signed by another key than the one in the header.
    let header = json!({"typ": TYP, "alg": "ES256", "jwk": jwk});
    assert_eq!(refused(&forged(&other, header.clone(), payload.clone()), &e), ProofError::Signature);
    assert!(verify_proof(&forged(&k, header, payload.clone()), &e).is_ok(), "the forging helper itself is sound");
    // typ, jwk, algorithm.
    assert_eq!(
        refused(&forged(&k, json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}), payload.clone()), &e),
        ProofError::Type
    );
    assert_eq!(refused(&forged(&k, json!({"alg": "ES256", "jwk": jwk}), payload.clone()), &e), ProofError::Type);
    assert!(matches!(
        refused(&forged(&k, json!({"typ": TYP, "alg": "ES256"}), payload.clone()), &e),
        ProofError::Key(_)
    ));
    let mut private = jwk.clone();
    private["d"] = "AAAA".into();
    assert!(matches!(
        refused(&forged(&k, json!({"typ": TYP, "alg": "ES256", "jwk": private}), payload.clone()), &e),
        ProofError::Key(_)
    ));
    let rsa = key(SigningAlg::RS256);
    let mismatched = json!({"typ": TYP, "alg": "ES256", "jwk": serde_json::to_value(rsa.public_jwk()).unwrap()});
    assert!(matches!(refused(&forged(&k, mismatched, payload.clone()), &e), ProofError::Key(_)));
    for alg in ["none", "HS256"] {
        assert!(matches!(
            refused(&forged(&k, json!({"typ": TYP, "alg": alg, "jwk": jwk}), payload.clone()), &e),
            ProofError::Malformed(_)
        ));
    }
    // Required claims.
    for missing in ["jti", "htm", "htu", "iat"] {
        let mut p = payload.clone();
        p.as_object_mut().unwrap().remove(missing);
        let header = json!({"typ": TYP, "alg": "ES256", "jwk": jwk});
        assert!(matches!(refused(&forged(&k, header, p), &e), ProofError::Claim(_)), "{missing}");
    }
}

#[test]
fn rfc9449_4_3_htu_ignores_query_fragment_and_normalises() {
    let url = "https://api.example/weatherforecast";
    for same in [
        "https://api.example/weatherforecast?x=1",
        "https://api.example/weatherforecast#f",
        "HTTPS://API.Example/weatherforecast",
        "https://api.example:443/weatherforecast",
    ] {
        assert!(htu_matches(same, url), "{same}");
    }
    assert!(htu_matches("https://h/a%2fb", "https://h/a%2Fb"));
    assert!(htu_matches("https://h", "https://h/"));
    for other in [
        "https://api.example/WeatherForecast",
        "http://api.example/weatherforecast",
        "https://api.example:8443/weatherforecast",
        "https://user@api.example/weatherforecast",
        "api.example/weatherforecast",
        "ftp://api.example/weatherforecast",
    ] {
        assert!(!htu_matches(other, url), "{other}");
    }
}

#[test]
fn rfc9449_8_nonces_rotate_are_accepted_one_period_more_and_cannot_be_forged() {
    let issuer = NonceIssuer::new(&[7u8; 32], 300);
    let t0 = 1_800_000_100; // inside a period starting at 1_800_000_000
    let n0 = issuer.current(t0);
    assert_eq!(issuer.current(t0 + 199), n0, "stable within its period");
    let n1 = issuer.current(t0 + 200);
    assert_ne!(n1, n0, "a new period, a new nonce");
    // Accepted in its own period and the next, not after.
    assert!(issuer.accepted(t0).contains(&n0));
    assert!(issuer.accepted(t0 + 200).contains(&n0));
    assert!(!issuer.accepted(t0 + 500).contains(&n0));
    assert!(issuer.accepted(t0 + 500).contains(&n1));
    // Another secret (another deployment) issues other nonces; the same secret the same ones.
    assert_ne!(NonceIssuer::new(&[8u8; 32], 300).current(t0), n0);
    assert_eq!(NonceIssuer::new(&[7u8; 32], 300).current(t0), n0);
    // A nonce for a later period made without the secret (the period's index with a
    // recycled tag) is not among the accepted ones.
    let mut raw = URL_SAFE_NO_PAD.decode(&n0).unwrap();
    raw[..8].copy_from_slice(&(t0 / 300 + 1).to_be_bytes());
    assert!(!issuer.accepted(t0 + 300).contains(&URL_SAFE_NO_PAD.encode(raw)));
}
