//! The revocation feed (issue 12) over real sockets: a revocation at `/connect/revoke` or by
//! the CLI becomes a signed Security Event Token (RFC 8417) that the APIs in the token's
//! audience, and only they, read by RFC 8936 polling — at once from a long poll, after a
//! restart, and from another instance on the same PostgreSQL.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tessera_server::FileConfig;
use tessera_testkit::{Authority as _, jwt_payload};
use tessera_types::rfc8417::{PollResponse, RevocationEvent, SetClaims, TYP};

use crate::harness::{FORM, TestServer};

const API_SECRET: &str = "rs_api_secret_0123456789";

/// Client `svc` (scope `api`, audience `rs_api`), the API `rs_api` allowed to read the feed,
/// and `rs_other`, also allowed, outside every audience of `svc`'s tokens.
async fn scenario(s: &TestServer) {
    s.add_scope("api", &["rs_api"]).await;
    s.add_client("svc", "svc_secret_0123456789abcd", &["api"], &[]).await;
    s.add_client("rs_api", API_SECRET, &[], &["ept:events", "ept:introspection"]).await;
    s.add_client("rs_other", API_SECRET, &[], &["ept:events"]).await;
    s.add_client("no_feed", API_SECRET, &[], &["ept:introspection"]).await;
}

async fn poll(s: &TestServer, id: &str, body: Value) -> (u16, Value) {
    let r = s
        .http
        .post(s.url("/connect/events"))
        .basic_auth(id, Some(API_SECRET))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Verifies every SET of an answer with the server's JWKS and an independent JOSE library
/// (signature, `typ`, `iss`, `aud`), and returns the events by position.
async fn verified(s: &TestServer, receiver: &str, answer: &Value) -> Vec<(i64, RevocationEvent)> {
    let answer: PollResponse = serde_json::from_value(answer.clone()).unwrap();
    let jwks: JwkSet = serde_json::from_value(s.get_json("/.well-known/jwks").await).unwrap();
    let mut events = Vec::new();
    for (jti, set) in &answer.sets {
        let header = decode_header(set).unwrap();
        assert_eq!(header.typ.as_deref(), Some(TYP), "RFC 8417 §2.3");
        let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("signed with a published key");
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[receiver]);
        v.set_issuer(&[s.issuer()]);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let claims = decode::<SetClaims>(set, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap().claims;
        assert_eq!(&claims.jti, jti);
        events.push((claims.seq().unwrap().0, claims.event().unwrap().expect("a known event type")));
    }
    events.sort_by_key(|(seq, _)| *seq);
    events
}

/// A poll by `rs_api` that waits (long polling) on a task of its own: its status, answer and
/// when the answer came.
fn waiting_poll(s: &TestServer, body: Value) -> tokio::task::JoinHandle<(u16, Value, Instant)> {
    let (http, url) = (s.http.clone(), s.url("/connect/events"));
    tokio::spawn(async move {
        let r = http
            .post(url)
            .basic_auth("rs_api", Some(API_SECRET))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap(), Instant::now())
    })
}

async fn token(s: &TestServer) -> String {
    s.token("svc", "svc_secret_0123456789abcd").await
}

async fn revoke(s: &TestServer, token: &str) {
    revoke_as(s, "svc", "svc_secret_0123456789abcd", token).await;
}

async fn revoke_as(s: &TestServer, id: &str, secret: &str, token: &str) {
    let (status, _, body) = s.post_form("/connect/revoke", id, secret, &format!("token={token}")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_revoked_jwt_becomes_a_signed_event_for_its_audience_only() {
    let s = TestServer::start().await;
    scenario(&s).await;
    let doc = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(doc["revocation_events_endpoint"], format!("{}/connect/events", s.issuer()));
    let (status, answer) = poll(&s, "rs_api", json!({"returnImmediately": true})).await;
    assert_eq!((status, &answer), (200, &json!({"sets": {}, "moreAvailable": false})));

    let jwt = token(&s).await;
    revoke(&s, &jwt).await;
    let (status, answer) = poll(&s, "rs_api", json!({"returnImmediately": true})).await;
    assert_eq!(status, 200, "{answer}");
    let events = verified(&s, "rs_api", &answer).await;
    let claims = jwt_payload(&jwt);
    assert_eq!(events.len(), 1, "{answer}");
    let RevocationEvent::TokenRevoked { jti, exp, client_id, token_hash } = &events[0].1 else { panic!("{events:?}") };
    assert_eq!(
        (jti.as_str(), exp.0, client_id.as_str()),
        (claims["jti"].as_str().unwrap(), claims["exp"].as_i64().unwrap(), "svc")
    );
    assert!(token_hash.is_none(), "a JWT is revoked by jti");
    // Revoking again tells nothing new.
    revoke(&s, &jwt).await;
    let (_, again) = poll(&s, "rs_api", json!({"ack": [events[0].0.to_string()], "returnImmediately": true})).await;
    assert_eq!(again["sets"], json!({}), "{again}");

    // RFC 7662 §4's rule: an API outside the token's audience never sees its event.
    let (_, theirs) = poll(&s, "rs_other", json!({"returnImmediately": true})).await;
    assert_eq!(theirs["sets"], json!({}), "{theirs}");
    // Without the feed permission: refused, nothing shown.
    let (status, refused) = poll(&s, "no_feed", json!({"returnImmediately": true})).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("unauthorized_client")), "{refused}");
    // Malformed requests are invalid_request (RFC 8936 §2.4 members, our jti form).
    let (status, bad) = poll(&s, "rs_api", json!({"ack": ["not-a-position"]})).await;
    assert_eq!((status, bad["error"].as_str()), (400, Some("invalid_request")), "{bad}");
    let r = s
        .http
        .post(s.url("/connect/events"))
        .basic_auth("rs_api", Some(API_SECRET))
        .header(CONTENT_TYPE, FORM)
        .body("ack=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a form body is not an RFC 8936 request");
    let (status, _) = {
        let r = s
            .http
            .post(s.url("/connect/events"))
            .basic_auth("rs_api", Some("wrong-secret-0123456789"))
            .header(CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 401, "a wrong secret");
}

#[tokio::test]
async fn a_waiting_poll_answers_as_soon_as_a_token_is_revoked() {
    let s = TestServer::start().await;
    scenario(&s).await;
    let jwt = token(&s).await;
    let started = Instant::now();
    let waiting = waiting_poll(&s, json!({"maxEvents": 10}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked_at = Instant::now();
    revoke(&s, &jwt).await;
    let (status, answer, answered_at) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["sets"].as_object().unwrap().len(), 1, "{answer}");
    let lag = answered_at - revoked_at;
    eprintln!("revocation to feed answer: {lag:?} (poll waited {:?})", answered_at - started);
    assert!(lag < Duration::from_secs(2), "the long poll answered {lag:?} after the revocation");
}

#[tokio::test]
async fn cli_revocations_and_key_removal_reach_the_feed_and_survive_a_restart() {
    let s = TestServer::start().await;
    scenario(&s).await;
    let reference_client = tessera_server::admin::ClientSpec {
        secret: tessera_testkit::secret("ref_secret_0123456789abcd"),
        scopes: vec![tessera_testkit::scope("api")],
        token_format: Some("reference".parse().unwrap()),
        ..tessera_testkit::client("ref")
    };
    s.add_client_with(reference_client).await;
    let reference = s.token("ref", "ref_secret_0123456789abcd").await;
    revoke_as(&s, "ref", "ref_secret_0123456789abcd", &reference).await;
    // What the CLI does, through the store (as `tessera client disable` and `token revoke
    // --client`).
    let svc = tessera_types::ClientId::new("svc").unwrap();
    s.store().set_client_enabled(&svc, false, s.now()).await.unwrap();
    s.store().set_client_enabled(&svc, true, s.now()).await.unwrap();
    s.store().revoke_client_tokens(&svc, s.now()).await.unwrap();
    let (_, answer) = poll(&s, "rs_api", json!({"returnImmediately": true})).await;
    let events = verified(&s, "rs_api", &answer).await;
    let kinds: Vec<&str> = events.iter().map(|(_, e)| e.event_type()).collect();
    assert_eq!(
        kinds,
        [
            "urn:tessera:secevent:token-revoked",
            "urn:tessera:secevent:client-disabled",
            "urn:tessera:secevent:client-enabled",
            "urn:tessera:secevent:client-tokens-revoked"
        ]
    );
    let RevocationEvent::TokenRevoked { token_hash: Some(hash), .. } = &events[0].1 else { panic!("{events:?}") };
    assert_eq!(
        hash,
        &tessera_server::token::reference::hash(&reference),
        "the hash an introspection cache is keyed by"
    );

    // maxEvents and moreAvailable (RFC 8936 §2.5), then resuming from the last ack.
    let (_, first) = poll(&s, "rs_api", json!({"maxEvents": 3, "returnImmediately": true})).await;
    assert_eq!((first["sets"].as_object().unwrap().len(), &first["moreAvailable"]), (3, &json!(true)));
    let (_, rest) = poll(&s, "rs_api", json!({"ack": ["1", "3"], "returnImmediately": true})).await;
    let rest = verified(&s, "rs_api", &rest).await;
    assert_eq!(rest.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [4], "after the highest ack");

    // The log is in the store: a restarted server serves it all again.
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, &["ES256"], FileConfig::default()).await;
    let (_, again) = poll(&s, "rs_api", json!({"returnImmediately": true})).await;
    assert_eq!(verified(&s, "rs_api", &again).await.len(), 4, "{again}");

    // A removed key is told to everyone, even outside every audience.
    let old = s.store().list_keys().await.unwrap().remove(0).kid;
    let out = crate::cli::tessera(&s.data_dir(), &["key", "rotate", "--alg", "ES256", "--now"]);
    assert!(out.status.success(), "{out:?}");
    // Its tokens may still be valid: refused without --force (issue 16).
    let out = crate::cli::tessera(&s.data_dir(), &["key", "remove", old.as_str()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--force"), "{out:?}");
    let out = crate::cli::tessera(&s.data_dir(), &["key", "remove", old.as_str(), "--force"]);
    assert!(out.status.success(), "{out:?}");
    let (_, other) = poll(&s, "rs_other", json!({"returnImmediately": true})).await;
    let other = verified(&s, "rs_other", &other).await;
    assert!(matches!(&other[..], [(_, RevocationEvent::KeyRemoved { kid })] if *kid == old), "{other:?}");
}

/// An event recorded through one instance is served by another on the same PostgreSQL, to a
/// poll already waiting there (found by its periodic look at the store).
#[tokio::test]
async fn an_event_recorded_on_one_instance_is_served_by_another_on_postgresql() {
    let Some(base) = tessera_testkit::postgres::shared_base_url() else {
        eprintln!("SKIPPED an_event_recorded_on_one_instance_is_served_by_another_on_postgresql: no PostgreSQL");
        return;
    };
    let db = tessera_testkit::postgres::fresh_database(&base).await;
    let kek_dir = tempfile::tempdir().unwrap();
    let file = || FileConfig {
        database_url: Some(tessera_store::pg_url::DatabaseUrl::new(db.clone())),
        key_encryption_key_file: Some(kek_dir.path().join("kek")),
        issuer: Some("https://as.shared.test".into()),
        ..FileConfig::default()
    };
    let a = TestServer::builder().file(file()).start().await;
    scenario(&a).await;
    let b = TestServer::builder().file(file()).start().await;
    b.sync().await;
    let jwt = token(&a).await;
    let waiting = waiting_poll(&b, json!({}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoked_at = Instant::now();
    revoke(&a, &jwt).await;
    let (status, answer, answered_at) = waiting.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let events = verified(&b, "rs_api", &answer).await;
    assert!(matches!(&events[..], [(1, RevocationEvent::TokenRevoked { .. })]), "{events:?}");
    assert!(answered_at - revoked_at < Duration::from_secs(2), "{:?}", answered_at - revoked_at);
}
