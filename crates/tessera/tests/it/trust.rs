//! Issue 15, first part: trusts and claim rules from the CLI, and `tessera trust test`
//! explaining a Kubernetes-shaped token (claims as the API server's TokenRequest issues them).

use serde_json::json;
use tessera_jose::SigningKey;
use tessera_types::SigningAlg;
use tessera_types::rfc7517::JwkSet;

use crate::cli::{ok, tessera};

const K8S: &str = "https://kubernetes.default.svc.cluster.local";

/// A projected service-account token for `ns`/`sa`, signed by `key`.
fn k8s_token(key: &SigningKey, ns: &str, sa: &str, aud: &str) -> String {
    key.sign_access_token(&k8s_claims(ns, sa, aud)).unwrap()
}

/// A projected service-account token's claims (Kubernetes TokenRequest API).
fn k8s_claims(ns: &str, sa: &str, aud: &str) -> serde_json::Value {
    json!({
        "aud": [aud], "exp": 4_000_000_000_i64, "iat": 1_800_000_000, "nbf": 1_800_000_000, "iss": K8S,
        "jti": "4b3c5f0e-6c2f-4a5e-9d3e-2f6b1c0d9a8e",
        "kubernetes.io": {
            "namespace": ns,
            "pod": { "name": format!("{sa}-7d9f8c6b5-x2k4p"), "uid": "2c1e5a7b-9d3f-4e6a-b8c0-1f4d7e2a6b9c" },
            "serviceaccount": { "name": sa, "uid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" }
        },
        "sub": format!("system:serviceaccount:{ns}:{sa}")
    })
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issue15_trusts_and_rules_from_the_cli_and_trust_test_explains_a_match_and_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    ok(d, &["scope", "add", "payments", "--resource", "payments-api"]);
    ok(d, &["client", "add", "payments", "--scope", "payments"]);
    ok(d, &["client", "add", "reader", "--scope", "payments"]);
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let jwks = d.join("cluster.jwks");
    std::fs::write(&jwks, serde_json::to_string(&JwkSet { keys: vec![key.public_jwk()] }).unwrap()).unwrap();
    let jwks = jwks.to_str().unwrap();
    let out = ok(
        d,
        &[
            "trust",
            "add",
            "cluster",
            "--kind",
            "kubernetes",
            "--issuer",
            K8S,
            "--jwks-file",
            jwks,
            "--audience",
            "https://tessera.example",
            "--max-token-age",
            "3600",
        ],
    );
    assert!(out.contains("added trust cluster (kubernetes"), "{out}");
    // Refused: a taken name, a private key file, bounds out of range, both key sources.
    let mut private = serde_json::to_value(key.public_jwk()).unwrap();
    private["d"] = "AAAA".into();
    let private_file = d.join("private.jwks");
    std::fs::write(&private_file, json!({ "keys": [private] }).to_string()).unwrap();
    for (args, why) in [
        (vec!["trust", "add", "cluster", "--issuer", K8S, "--jwks-file", jwks], "already exists"),
        (vec!["trust", "add", "p", "--issuer", "http://plain.example"], "keys by discovery need an https issuer"),
        (vec!["trust", "add", "p", "--issuer", K8S, "--jwks-file", private_file.to_str().unwrap()], "private"),
        (vec!["trust", "add", "p", "--issuer", K8S, "--jwks-file", jwks, "--max-token-age", "0"], "max-token-age"),
        (vec!["trust", "add", "p", "--issuer", K8S, "--jwks-file", jwks, "--max-uses", "0"], "--max-uses is 1 to 1000"),
        (vec!["trust", "add", "p", "--issuer", K8S, "--jwks-file", jwks, "--ca", jwks], "--ca is for keys fetched"),
        (vec!["trust", "add", "p", "--issuer", K8S, "--ca", jwks], "no PEM certificate"),
        (
            vec!["trust", "add", "p", "--issuer", K8S, "--jwks-file", jwks, "--jwks-uri", "https://k/jwks"],
            "cannot be used",
        ),
        (vec!["trust", "add", "p", "--issuer", "not a url"], "issuer"),
    ] {
        let out = tessera(d, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{args:?}: {err}");
    }

    // Rules: appended in order; bad patterns, unknown clients and unknown trusts refused.
    let out = ok(
        d,
        &[
            "trust",
            "rule",
            "add",
            "cluster",
            "--client",
            "reader",
            "--match",
            "/kubernetes.io/serviceaccount/name=reader",
            "--match",
            "/kubernetes.io/namespace=staging|qa",
        ],
    );
    assert!(out.contains("added rule 1"), "{out}");
    let out = ok(
        d,
        &["trust", "rule", "add", "cluster", "--client", "payments", "--match", "sub=system:serviceaccount:payments:*"],
    );
    assert!(out.contains("added rule 2"), "{out}");
    for (args, why) in [
        (vec!["trust", "rule", "add", "cluster", "--client", "payments", "--match", "sub=a***"], "***"),
        (vec!["trust", "rule", "add", "cluster", "--client", "payments", "--match", "no-equals-sign"], "CLAIM=PATTERN"),
        (vec!["trust", "rule", "add", "cluster", "--client", "nobody", "--match", "sub=x"], "no client nobody"),
        (vec!["trust", "rule", "add", "elsewhere", "--client", "payments", "--match", "sub=x"], "no trust elsewhere"),
    ] {
        let out = tessera(d, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{args:?}: {err}");
    }
    let list = ok(d, &["trust", "rule", "list", "cluster"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.lines().next().unwrap().starts_with("1\tclient=reader"), "{list}");
    let show: serde_json::Value = serde_json::from_str(&ok(d, &["trust", "show", "cluster"])).unwrap();
    assert_eq!(show["kind"], "kubernetes");
    assert_eq!(show["shorthand_claims"][0]["claim"], "namespace", "{show}");
    assert_eq!(show["rules"][1]["match"], json!(["sub=system:serviceaccount:payments:*"]));
    assert!(show["keys"]["jwks"]["keys"][0].get("d").is_none());

    // trust test: a payments pod matches rule 2, and rule 1's miss is explained.
    let token = d.join("token");
    std::fs::write(&token, k8s_token(&key, "payments", "api", "https://tessera.example")).unwrap();
    let out = ok(d, &["trust", "test", "cluster", "--token", token.to_str().unwrap()]);
    assert!(out.contains("issuer: ok"), "{out}");
    assert!(out.contains("audience: ok (https://tessera.example)"), "{out}");
    assert!(out.contains("signature: ok (verified, key"), "{out}");
    assert!(out.contains("shape: ok (a kubernetes token; rules may also name namespace, service_account"), "{out}");
    assert!(out.contains("rule 1: no match: /kubernetes.io/serviceaccount/name does not match reader"), "{out}");
    assert!(out.contains("rule 2: MATCHES: the workload acts as client payments"), "{out}");
    // A miss: another namespace; exit status 1 and both rules explained.
    std::fs::write(&token, k8s_token(&key, "billing", "api", "https://tessera.example")).unwrap();
    let out = tessera(d, &["trust", "test", "cluster", "--token", token.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("rule 2: no match: sub does not match system:serviceaccount:payments:*"),
        "{}",
        stdout(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rule of trust cluster matches"));
    // Matching rule, but signed by another key and for another audience: explained, refused.
    let (other, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    std::fs::write(&token, k8s_token(&other, "payments", "api", "https://elsewhere.example")).unwrap();
    let out = tessera(d, &["trust", "test", "cluster", "--token", token.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("signature: FAILS: no key of the trust verifies it"), "{text}");
    assert!(text.contains("audience: FAILS"), "{text}");
    // Not of the kind's shape: `sub` and the kubernetes.io claim name other namespaces.
    let mut odd = k8s_claims("payments", "api", "https://tessera.example");
    odd["kubernetes.io"]["namespace"] = "billing".into();
    std::fs::write(&token, key.sign_access_token(&odd).unwrap()).unwrap();
    let text = stdout(&tessera(d, &["trust", "test", "cluster", "--token", token.to_str().unwrap()]));
    assert!(
        text.contains("shape: FAILS: not a kubernetes token: the kubernetes.io claim (namespace billing"),
        "{text}"
    );

    // Removing a rule and the trust.
    ok(d, &["trust", "rule", "remove", "cluster", "1"]);
    assert_eq!(ok(d, &["trust", "rule", "list", "cluster"]).lines().count(), 1);
    assert!(!tessera(d, &["trust", "rule", "remove", "cluster", "1"]).status.success());
    assert!(ok(d, &["trust", "list"]).starts_with("cluster\tkubernetes"));
    ok(d, &["trust", "remove", "cluster"]);
    assert_eq!(ok(d, &["trust", "list"]), "");
    assert!(!tessera(d, &["trust", "show", "cluster"]).status.success());
}
