//! `private_key_jwt` (RFC 7523, issue 13) over real sockets: a client with a registered key
//! gets a token and uses introspection and revocation with assertions signed by tessera-jose,
//! and every hostile assertion is refused with `invalid_client`; the replay table holds
//! across two instances on one PostgreSQL; the CLI refuses private keys.

use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_server::clock::Clock as _;
use tessera_server::limits::AssertionAudience;
use tessera_testkit::assertion::{self as a, b64};
use tessera_testkit::{Authority as _, Reply, assert_oauth_error, client};
use tessera_types::clock::ManualClock;
use tessera_types::{ClientAuthMethod, ClientSecret, SigningAlg, UnixTime};

use crate::cli::{ok, tessera};
use crate::harness::{FORM, TestServer, post_basic, split};

const T0: UnixTime = UnixTime(1_800_000_000);

/// A server on a manual clock with client `svc` (key `key`, token, introspection and
/// revocation) and client `other` (its own key).
struct Fixture {
    server: TestServer,
    clock: ManualClock,
    key: tessera_jose::SigningKey,
    other_key: tessera_jose::SigningKey,
    jti: std::cell::Cell<u32>,
}

/// A client allowed scope `api`.
fn with_scope(id: &str) -> ClientSpec {
    ClientSpec { scopes: vec![tessera_testkit::scope("api")], ..client(id) }
}

fn permissive(mut file: FileConfig) -> FileConfig {
    // The refusal table fails many times in a row: backoff is tested on its own.
    file.limits.failed_auth_free_attempts.get_or_insert(1000);
    file
}

impl Fixture {
    async fn start(file: FileConfig) -> Self {
        let clock = ManualClock::new(T0);
        let server = TestServer::builder().clock(Arc::new(clock.clone())).file(file).start().await;
        let (key, other_key) = (a::key(SigningAlg::ES256), a::key(SigningAlg::EdDSA));
        let permissions = ["ept:token", "ept:introspection", "ept:revocation", "gt:client_credentials"];
        server.add_scope("api", &["rs_api"]).await;
        server
            .add_client_with(ClientSpec {
                jwks: Some(a::jwks(&[&key])),
                permissions: permissions.iter().map(|p| p.parse().unwrap()).collect(),
                ..with_scope("svc")
            })
            .await;
        server.add_client_with(ClientSpec { jwks: Some(a::jwks(&[&other_key])), ..with_scope("other") }).await;
        Self { server, clock, key, other_key, jti: std::cell::Cell::new(0) }
    }

    fn issuer(&self) -> String {
        self.server.issuer().to_owned()
    }

    fn fresh_jti(&self) -> String {
        self.jti.set(self.jti.get() + 1);
        format!("jti-{}", self.jti.get())
    }

    /// Honest claims for `svc` now, with a fresh jti.
    fn claims(&self) -> Value {
        a::claims("svc", &self.issuer(), self.clock.now(), &self.fresh_jti())
    }

    fn honest(&self) -> String {
        a::sign(&self.key, &a::header(&self.key), &self.claims())
    }

    /// An assertion from `svc`'s key with `change` applied to honest claims.
    fn with(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        change(&mut claims);
        a::sign(&self.key, &a::header(&self.key), &claims)
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        let req = self.server.http.post(self.server.url(path)).header(CONTENT_TYPE, FORM).body(body.to_owned());
        split(req.send().await.unwrap()).await
    }

    async fn token_with(&self, assertion: &str) -> Reply {
        self.post("/connect/token", &format!("grant_type=client_credentials&{}", a::form(assertion))).await
    }
}

fn refused(reply: &Reply, what: &str) {
    assert_eq!(reply.0, 401, "{what}: {}", reply.2);
    assert_oauth_error(reply, 401, "invalid_client");
    // RFC 6749 §5.2: the Basic challenge answers Basic only.
    assert!(reply.1.get("www-authenticate").is_none(), "{what}");
}

#[tokio::test]
async fn rfc7523_2_2_a_registered_key_gets_a_token_and_authenticates_introspection_and_revocation() {
    let f = Fixture::start(permissive(FileConfig::default())).await;
    let (status, _, body) = f.token_with(&f.honest()).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(tessera_testkit::jwt_payload(&token)["client_id"], "svc");

    // The API (its client_id is the token's audience, RFC 7662 §4) introspects with its own key.
    let api_key = a::key(SigningAlg::PS256);
    let introspect = ["ept:introspection"].iter().map(|p| p.parse().unwrap()).collect();
    f.server
        .add_client_with(ClientSpec { jwks: Some(a::jwks(&[&api_key])), permissions: introspect, ..client("rs_api") })
        .await;
    let api = |jti: &str| a::form(&a::assertion(&api_key, "rs_api", &f.issuer(), f.clock.now(), jti));
    let (status, _, body) = f.post("/connect/introspect", &format!("token={token}&{}", api("i1"))).await;
    assert_eq!((status, &body["active"], &body["client_id"]), (200, &json!(true), &json!("svc")), "{body}");
    let (status, _, body) = f.post("/connect/revoke", &format!("token={token}&{}", a::form(&f.honest()))).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = f.post("/connect/introspect", &format!("token={token}&{}", api("i2"))).await;
    assert_eq!(body["active"], false, "revoked by a private_key_jwt client");

    // client_id may accompany the assertion when it names the same client (RFC 7521 §4.2).
    let same = format!("grant_type=client_credentials&client_id=svc&{}", a::form(&f.honest()));
    assert_eq!(f.post("/connect/token", &same).await.0, 200);
}

#[tokio::test]
async fn rfc7523_3_every_hostile_assertion_is_invalid_client() {
    let f = Fixture::start(permissive(FileConfig::default())).await;
    let issuer = f.issuer();
    let now = f.clock.now().0;
    let token_endpoint = format!("{issuer}/connect/token");
    let claims = f.claims();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"a shared secret nobody registered"),
    )
    .unwrap();
    let stranger = a::key(SigningAlg::ES256);
    let mut unknown_kid = a::header(&f.key);
    unknown_kid["kid"] = "no-such-key".into();
    let mut crit = a::header(&f.key);
    crit["crit"] = json!(["exp"]);
    let cases: Vec<(&str, String)> = vec![
        ("aud = token endpoint (default setting)", f.with(|c| c["aud"] = token_endpoint.clone().into())),
        ("aud array with a second value", f.with(|c| c["aud"] = json!([issuer, "https://rs.example"]))),
        (
            "expired",
            f.with(|c| {
                c["iat"] = (now - 200).into();
                c["exp"] = (now - 100).into();
            }),
        ),
        ("too long-lived", f.with(|c| c["exp"] = (now + 3600).into())),
        ("alg none", format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&f.claims()))),
        ("alg none with a signature", format!("{}.{}.AAAA", b64(&json!({"alg": "none"})), b64(&f.claims()))),
        ("HS256", hs256),
        ("a key not registered", a::sign(&stranger, &a::header(&stranger), &f.claims())),
        ("a key not registered under svc's kid", a::sign(&stranger, &a::header(&f.key), &f.claims())),
        ("another client's key", a::sign(&f.other_key, &a::header(&f.other_key), &f.claims())),
        ("an unknown kid", a::sign(&f.key, &unknown_kid, &f.claims())),
        ("iss differs from sub", f.with(|c| c["iss"] = "other".into())),
        ("missing jti", f.with(|c| drop(c.as_object_mut().unwrap().remove("jti")))),
        ("crit", a::sign(&f.key, &crit, &f.claims())),
        ("not a JWT", "not-a-jwt".into()),
        ("too large", f.with(|c| c["pad"] = "x".repeat(9 * 1024).into())),
    ];
    for (what, assertion) in &cases {
        refused(&f.token_with(assertion).await, what);
    }
    // An assertion that names another client in client_id.
    let mismatch = format!("grant_type=client_credentials&client_id=other&{}", a::form(&f.honest()));
    refused(&f.post("/connect/token", &mismatch).await, "client_id differs from sub");
    // A replayed jti: accepted once, never again.
    let once = f.honest();
    assert_eq!(f.token_with(&once).await.0, 200);
    refused(&f.token_with(&once).await, "replayed jti");
    // Another client's key is good for that client (so the refusal above is about whose key).
    let theirs = a::sign(&f.other_key, &a::header(&f.other_key), &a::claims("other", &issuer, f.clock.now(), "o1"));
    assert_eq!(f.token_with(&theirs).await.0, 200);
}

#[tokio::test]
async fn rfc7523_3_4_an_assertion_expires_on_the_servers_clock() {
    let f = Fixture::start(permissive(FileConfig::default())).await;
    let assertion = f.honest();
    f.clock.advance(60 + 30);
    refused(&f.token_with(&assertion).await, "expired past the 30 s leeway");
}

#[tokio::test]
async fn rfc7523bis_the_token_endpoint_audience_is_a_setting() {
    let file = FileConfig {
        client_assertion_audience: Some(AssertionAudience::IssuerOrTokenEndpoint),
        ..permissive(FileConfig::default())
    };
    let f = Fixture::start(file).await;
    let token_endpoint = format!("{}/connect/token", f.issuer());
    assert_eq!(f.token_with(&f.with(|c| c["aud"] = token_endpoint.clone().into())).await.0, 200);
    assert_eq!(f.token_with(&f.honest()).await.0, 200, "the issuer still");
    refused(&f.token_with(&f.with(|c| c["aud"] = json!([f.issuer(), token_endpoint]))).await, "still alone");
}

#[tokio::test]
async fn rfc6749_2_3_two_methods_at_once_are_invalid_request() {
    let f = Fixture::start(permissive(FileConfig::default())).await;
    let body = format!("grant_type=client_credentials&{}", a::form(&f.honest()));
    let basic = post_basic(&f.server.http, &f.server.url("/connect/token"), "svc", "whatever", &body).await;
    assert_oauth_error(&basic, 400, "invalid_request");
    let with_secret = format!("{body}&client_secret=whatever");
    assert_oauth_error(&f.post("/connect/token", &with_secret).await, 400, "invalid_request");
    let alone = format!("grant_type=client_credentials&client_assertion={}", f.honest());
    assert_oauth_error(&f.post("/connect/token", &alone).await, 400, "invalid_request");
}

#[tokio::test]
async fn token_endpoint_auth_method_restricts_a_client_to_its_method() {
    let f = Fixture::start(permissive(FileConfig::default())).await;
    let key = a::key(SigningAlg::RS256);
    f.server
        .add_client_with(ClientSpec {
            secret: Some(ClientSecret::new("both_secret").unwrap()),
            jwks: Some(a::jwks(&[&key])),
            token_endpoint_auth_method: Some(ClientAuthMethod::PrivateKeyJwt),
            ..with_scope("both")
        })
        .await;
    let refused_secret = f.server.token_basic("both", "both_secret", "grant_type=client_credentials").await;
    assert_oauth_error(&refused_secret, 401, "invalid_client");
    let assertion = a::assertion(&key, "both", &f.issuer(), f.clock.now(), "b1");
    assert_eq!(f.token_with(&assertion).await.0, 200, "RS256, its registered method");
    // A client with a secret and keys, unrestricted, may use either.
    f.server
        .add_client_with(ClientSpec {
            secret: Some(ClientSecret::new("either_secret").unwrap()),
            jwks: Some(a::jwks(&[&key])),
            ..with_scope("either")
        })
        .await;
    assert_eq!(f.server.token_basic("either", "either_secret", "grant_type=client_credentials").await.0, 200);
    let assertion = a::assertion(&key, "either", &f.issuer(), f.clock.now(), "e1");
    assert_eq!(f.token_with(&assertion).await.0, 200);
    // A client registered with keys only has no secret at all.
    let svc = f.server.store.get_client(&tessera_types::ClientId::new("svc").unwrap()).await.unwrap().unwrap();
    assert!(svc.secrets.is_empty());
}

#[tokio::test]
async fn rfc6749_2_3_1_failed_assertions_back_off_like_wrong_secrets() {
    let mut file = FileConfig::default();
    file.limits.failed_auth_free_attempts = Some(2);
    let f = Fixture::start(file).await;
    let bad = || f.with(|c| c["aud"] = "https://elsewhere".into());
    for what in ["first", "second", "third (backoff starts)"] {
        refused(&f.token_with(&bad()).await, what);
    }
    // The address now backs off: refused before its body is read, even a valid assertion.
    for assertion in [bad(), f.honest()] {
        let (status, headers, body) = f.token_with(&assertion).await;
        assert_eq!(status, 429, "{body}");
        assert!(headers.get("retry-after").is_some());
    }
    // Once the backoff has passed on the server's clock, the valid one passes.
    f.clock.advance(2);
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
}

#[tokio::test]
async fn rfc8414_2_discovery_lists_private_key_jwt_and_its_algorithms() {
    let f = Fixture::start(FileConfig::default()).await;
    let doc = f.server.get_json("/.well-known/oauth-authorization-server").await;
    let algs = json!(["ES256", "RS256", "PS256", "EdDSA"]);
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = doc[format!("{endpoint}_endpoint_auth_methods_supported")].as_array().unwrap().clone();
        assert!(methods.contains(&json!("private_key_jwt")), "{endpoint}: {doc}");
        assert_eq!(doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")], algs, "{endpoint}");
    }
}

/// RFC 7523 §3 item 7 across instances: the jti table is in the shared database.
#[tokio::test]
async fn rfc7523_3_7_a_replay_on_a_second_instance_sharing_postgresql_is_refused() {
    let Some(base) = tessera_testkit::postgres::shared_base_url() else {
        eprintln!("SKIPPED rfc7523_3_7_a_replay_on_a_second_instance_sharing_postgresql_is_refused: no PostgreSQL");
        return;
    };
    let db = tessera_testkit::postgres::fresh_database(&base).await;
    let kek_dir = tempfile::tempdir().unwrap();
    let file = || {
        let mut file = permissive(FileConfig::default());
        file.database_url = Some(tessera_store::pg_url::DatabaseUrl::new(db.clone()));
        file.key_encryption_key_file = Some(kek_dir.path().join("kek"));
        file.issuer = Some("https://as.shared.test".into());
        file
    };
    let first = Fixture::start(file()).await;
    let clock = ManualClock::new(T0);
    let second = TestServer::builder().clock(Arc::new(clock)).file(file()).start().await;
    second.sync().await;
    let assertion = first.honest();
    assert_eq!(first.token_with(&assertion).await.0, 200);
    let body = format!("grant_type=client_credentials&{}", a::form(&assertion));
    let req = second.http.post(second.url("/connect/token")).header(CONTENT_TYPE, FORM).body(body);
    refused(&split(req.send().await.unwrap()).await, "the same assertion at the second instance");
    // A fresh one works there: the second instance knows the client and its key.
    let body = format!("grant_type=client_credentials&{}", a::form(&first.honest()));
    let req = second.http.post(second.url("/connect/token")).header(CONTENT_TYPE, FORM).body(body);
    assert_eq!(split(req.send().await.unwrap()).await.0, 200);
}

#[test]
fn the_cli_refuses_private_keys_and_registers_public_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    let key = a::key(SigningAlg::ES256);
    let public = a::jwks(&[&key]);
    let mut private = public.clone();
    private["keys"][0]["d"] = "ZGVhZGJlZWY".into();
    let private_file = d.join("private.json");
    std::fs::write(&private_file, private.to_string()).unwrap();
    let out = tessera(d, &["client", "add", "svc", "--jwks", private_file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private member \"d\""), "{out:?}");
    let oct = d.join("oct.json");
    std::fs::write(&oct, json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string()).unwrap();
    assert!(!tessera(d, &["client", "add", "svc", "--jwks", oct.to_str().unwrap()]).status.success());

    let public_file = d.join("public.json");
    std::fs::write(&public_file, public.to_string()).unwrap();
    let out = ok(d, &["client", "add", "svc", "--jwks", public_file.to_str().unwrap()]);
    assert!(!out.contains("client_secret:"), "keys and no secret: none generated: {out}");
    let shown: Value = serde_json::from_str(&ok(d, &["client", "show", "svc"])).unwrap();
    assert_eq!(shown["keys"][0]["kid"], key.kid.as_str());
    assert_eq!(shown["keys"][0]["alg"], "ES256");
    assert_eq!(shown["keys"][0]["thumbprint"], key.kid.as_str(), "Tessera's kid is the thumbprint");
    assert_eq!(shown["secrets"], json!([]));

    // Rotation: update replaces the set; a private key is refused there too.
    let next = a::key(SigningAlg::EdDSA);
    std::fs::write(&public_file, a::jwks(&[&key, &next]).to_string()).unwrap();
    ok(d, &["client", "update", "svc", "--jwks", public_file.to_str().unwrap()]);
    let shown: Value = serde_json::from_str(&ok(d, &["client", "show", "svc"])).unwrap();
    assert_eq!(shown["keys"].as_array().unwrap().len(), 2);
    assert!(!tessera(d, &["client", "update", "svc", "--jwks", private_file.to_str().unwrap()]).status.success());
}
