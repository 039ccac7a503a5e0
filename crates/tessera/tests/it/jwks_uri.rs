//! `private_key_jwt` with keys fetched from the client's `jwks_uri` (RFC 7591 §2, RFC 7523)
//! over real sockets: the authority (in process, on a manual clock) fetches from a real HTTPS
//! key server the test starts, under a CA given to it with `jwks_uri_ca_file`; the key server
//! counts what it receives, so the refetch interval is asserted on the wire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tessera_server::admin::ClientSpec;
use tessera_server::clock::Clock as _;
use tessera_server::{FileConfig, Overrides, Settings};
use tessera_testkit::assertion as a;
use tessera_testkit::jwks_server::{Answer, JwksServer};
use tessera_testkit::{Authority as _, Reply, assert_oauth_error, client};
use tessera_types::clock::ManualClock;
use tessera_types::{ClientAuthMethod, ClientSecret, JwksUri, SigningAlg, UnixTime};

use crate::cli::{ok, tessera};
use crate::harness::{FORM, TestServer, split};

const T0: UnixTime = UnixTime(1_800_000_000);
/// Past `jwks_uri_min_refetch_interval_s` (30 s by default).
const PAST_INTERVAL: i64 = 31;

/// An authority trusting the key server's CA, with client `svc` (keys at the key server's
/// URL, private_key_jwt only) and client `secretive` (a secret), both allowed scope `api`.
struct Fixture {
    server: TestServer,
    clock: ManualClock,
    keys: JwksServer,
    key: tessera_jose::SigningKey,
    jti: std::cell::Cell<u32>,
}

impl Fixture {
    async fn start(change: impl FnOnce(&mut FileConfig)) -> Self {
        let key = a::key(SigningAlg::ES256);
        let keys = JwksServer::start(Answer::Json(a::jwks(&[&key]))).await;
        let mut file = FileConfig { jwks_uri_ca_file: Some(keys.ca.clone()), ..FileConfig::default() };
        // These tests fail many assertions in a row: backoff is tested elsewhere.
        file.limits.failed_auth_free_attempts = Some(10_000);
        change(&mut file);
        let clock = ManualClock::new(T0);
        let server = TestServer::builder().clock(Arc::new(clock.clone())).file(file).start().await;
        server.add_scope("api", &["rs_api"]).await;
        let scoped = |id| ClientSpec { scopes: vec![tessera_testkit::scope("api")], ..client(id) };
        server
            .add_client_with(ClientSpec {
                jwks_uri: Some(JwksUri::new(&keys.url).unwrap()),
                token_endpoint_auth_method: Some(ClientAuthMethod::PrivateKeyJwt),
                ..scoped("svc")
            })
            .await;
        server
            .add_client_with(ClientSpec {
                secret: Some(ClientSecret::new("secretive_secret").unwrap()),
                ..scoped("secretive")
            })
            .await;
        Self { server, clock, keys, key, jti: std::cell::Cell::new(0) }
    }

    fn fresh_jti(&self) -> String {
        self.jti.set(self.jti.get() + 1);
        format!("jti-{}", self.jti.get())
    }

    /// An honest assertion by `client_id` signed with `key`.
    fn signed_by(&self, key: &tessera_jose::SigningKey, client_id: &str) -> String {
        a::assertion(key, client_id, self.server.issuer(), self.clock.now(), &self.fresh_jti())
    }

    fn honest(&self) -> String {
        self.signed_by(&self.key, "svc")
    }

    async fn token_with(&self, assertion: &str) -> Reply {
        token_with(&self.server.http, &self.server.url("/connect/token"), assertion).await
    }

    async fn secretive_gets_a_token(&self, what: &str) {
        let reply = self.server.token_basic("secretive", "secretive_secret", "grant_type=client_credentials").await;
        assert_eq!(reply.0, 200, "{what}: the secret client is served: {}", reply.2);
    }
}

async fn token_with(http: &reqwest::Client, url: &str, assertion: &str) -> Reply {
    let body = format!("grant_type=client_credentials&{}", a::form(assertion));
    split(http.post(url).header(CONTENT_TYPE, FORM).body(body).send().await.unwrap()).await
}

fn refused(reply: &Reply, what: &str) {
    assert_eq!(reply.0, 401, "{what}: {}", reply.2);
    assert_oauth_error(reply, 401, "invalid_client");
}

#[tokio::test]
async fn rfc7591_2_a_client_whose_keys_come_from_its_jwks_uri_gets_a_token() {
    let f = Fixture::start(|_| {}).await;
    assert_eq!(f.keys.requests(), 0, "nothing is fetched before a client needs it");
    let (status, _, body) = f.token_with(&f.honest()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tessera_testkit::jwt_payload(body["access_token"].as_str().unwrap())["client_id"], "svc");
    assert_eq!(f.keys.requests(), 1);
    assert_eq!(f.keys.last_accept().as_deref(), Some("application/json"));
    // Cached: a second assertion costs no fetch, until the TTL (300 s) has passed.
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    f.clock.advance(299);
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    assert_eq!(f.keys.requests(), 1);
    f.clock.advance(1);
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    assert_eq!(f.keys.requests(), 2, "fetched again past jwks_uri_cache_ttl_s");
}

#[tokio::test]
async fn rfc7523_a_key_rotated_at_the_jwks_uri_is_found_by_one_refetch() {
    let f = Fixture::start(|_| {}).await;
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    let next = a::key(SigningAlg::EdDSA);
    f.keys.answer(Answer::Json(a::jwks(&[&next])));
    f.clock.advance(PAST_INTERVAL);
    let (status, _, body) = f.token_with(&f.signed_by(&next, "svc")).await;
    assert_eq!(status, 200, "the new kid, found by a refetch: {body}");
    assert_eq!(f.keys.requests(), 2);
    // The new set is cached: the next assertion with the new key costs nothing.
    assert_eq!(f.token_with(&f.signed_by(&next, "svc")).await.0, 200);
    assert_eq!(f.keys.requests(), 2);
}

#[tokio::test]
async fn rfc7523_3_a_kid_still_unknown_after_the_refetch_is_invalid_client() {
    let f = Fixture::start(|_| {}).await;
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    f.clock.advance(PAST_INTERVAL);
    let stranger = a::key(SigningAlg::ES256);
    refused(&f.token_with(&f.signed_by(&stranger, "svc")).await, "a key the client never published");
    assert_eq!(f.keys.requests(), 2, "the unknown kid was looked for once");
    // Under the client's own kid, a stranger's signature is a bad signature: no refetch.
    let mut header = a::header(&f.key);
    header["alg"] = "ES256".into();
    let forged = a::sign(&stranger, &header, &a::claims("svc", f.server.issuer(), f.clock.now(), "forged"));
    f.clock.advance(PAST_INTERVAL);
    refused(&f.token_with(&forged).await, "forged under a known kid");
    assert_eq!(f.keys.requests(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_interval() {
    let f = Fixture::start(|_| {}).await;
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    let url = f.server.url("/connect/token");
    let flood = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let stranger = a::key(SigningAlg::ES256);
                let assertion = f.signed_by(&stranger, "svc");
                let (http, url) = (f.server.http.clone(), url.clone());
                tokio::spawn(async move { token_with(&http, &url, &assertion).await })
            })
            .collect();
        async move {
            for task in tasks {
                refused(&task.await.unwrap(), "an unknown kid");
            }
        }
    };
    // Within the interval of the first fetch: none at all.
    flood(20).await;
    assert_eq!(f.keys.requests(), 1);
    // Past it: one fetch for the whole concurrent flood, and none for a second flood.
    f.clock.advance(PAST_INTERVAL);
    flood(20).await;
    assert_eq!(f.keys.requests(), 2, "one refetch for 20 concurrent unknown kids");
    flood(20).await;
    assert_eq!(f.keys.requests(), 2);
    // The honest client is served meanwhile, from the cache.
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    f.clock.advance(PAST_INTERVAL);
    flood(5).await;
    assert_eq!(f.keys.requests(), 3, "the next interval allows the next refetch");
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_fresh_keys() {
    let f = Fixture::start(|_| {}).await;
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
    f.keys.answer(Answer::Status(503));
    f.clock.advance(PAST_INTERVAL);
    refused(&f.token_with(&f.signed_by(&a::key(SigningAlg::ES256), "svc")).await, "unknown kid, refetch fails");
    assert_eq!(f.keys.requests(), 2);
    assert_eq!(f.token_with(&f.honest()).await.0, 200, "the cached keys still serve");
    // Once they have expired, a failing key server means no keys at all.
    f.clock.advance(300);
    refused(&f.token_with(&f.honest()).await, "expired keys, key server down");
}

#[tokio::test]
async fn fetch_failures_are_invalid_client_and_other_clients_keep_being_served() {
    let timeout_ms = 600;
    let f = Fixture::start(|file| file.limits.jwks_uri_fetch_timeout_ms = Some(timeout_ms)).await;
    let mut oversized = a::jwks(&[&f.key]);
    oversized["padding"] = "x".repeat(64 * 1024).into();
    let mut private = a::jwks(&[&f.key]);
    private["keys"][0]["d"] = "ZGVhZGJlZWY".into();
    let cases = [
        ("HTTP 500", Answer::Status(500)),
        ("a redirect to the keys (never followed)", Answer::Redirect(f.keys.moved_url())),
        ("a body over max_client_jwks_bytes, with Content-Length", Answer::Json(oversized.clone())),
        ("a body over max_client_jwks_bytes, streamed", Answer::Streamed(oversized.to_string())),
        ("not JSON", Answer::Streamed("<html>maintenance</html>".into())),
        ("a JWK Set with a private key", Answer::Json(private)),
        ("no answer", Answer::Never),
    ];
    f.keys.serve_moved(a::jwks(&[&f.key]));
    for (i, (what, answer)) in cases.into_iter().enumerate() {
        f.keys.answer(answer);
        // Each failure counts against the interval: step past it for the next case.
        f.clock.advance(PAST_INTERVAL);
        let started = Instant::now();
        refused(&f.token_with(&f.honest()).await, what);
        assert!(started.elapsed() < Duration::from_millis(timeout_ms + 4000), "{what}: {:?}", started.elapsed());
        assert_eq!(f.keys.requests(), i + 1, "{what}: one fetch");
        // Within the interval the broken URI is not asked again.
        refused(&f.token_with(&f.honest()).await, what);
        assert_eq!(f.keys.requests(), i + 1, "{what}: no second fetch within the interval");
        f.secretive_gets_a_token(what).await;
    }
    assert_eq!(f.keys.moved_requests(), 0, "the redirect was not followed");
    // A listener that accepts and never speaks TLS: answered within the timeout too.
    let (blackhole, accepted) = tessera_testkit::blackhole().await;
    let blackhole = blackhole.replace("http://", "https://") + "/jwks";
    f.server
        .add_client_with(ClientSpec { jwks_uri: Some(JwksUri::new(blackhole).unwrap()), ..client("blackholed") })
        .await;
    let started = Instant::now();
    refused(&f.token_with(&f.signed_by(&f.key, "blackholed")).await, "a blackholed key server");
    assert!(started.elapsed() < Duration::from_millis(timeout_ms + 4000), "{:?}", started.elapsed());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    f.secretive_gets_a_token("after the blackhole").await;
    // The key server recovers: so does the client, once the interval has passed.
    f.keys.answer(Answer::Json(a::jwks(&[&f.key])));
    f.clock.advance(PAST_INTERVAL);
    assert_eq!(f.token_with(&f.honest()).await.0, 200);
}

#[tokio::test]
async fn a_key_server_outside_the_trusted_cas_is_refused() {
    // No jwks_uri_ca_file: the key server's development CA is not trusted.
    let f = Fixture::start(|file| file.jwks_uri_ca_file = None).await;
    refused(&f.token_with(&f.honest()).await, "untrusted certificate");
    assert_eq!(f.keys.requests(), 0, "the TLS handshake failed before any request");
}

#[test]
fn rfc7591_2_the_cli_and_the_seed_file_refuse_a_bad_or_second_key_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    let key = a::key(SigningAlg::ES256);
    let jwks_file = d.join("svc.jwks");
    std::fs::write(&jwks_file, a::jwks(&[&key]).to_string()).unwrap();
    let jwks_file = jwks_file.to_str().unwrap();
    let url = "https://svc.example/.well-known/jwks.json";
    for (args, why) in [
        (vec!["client", "add", "svc", "--jwks-uri", "http://svc.example/jwks"], "not https"),
        (vec!["client", "add", "svc", "--jwks-uri", "https://user:pw@svc.example/jwks"], "userinfo"),
        (vec!["client", "add", "svc", "--jwks-uri", "https://svc.example/jwks#k"], "fragment"),
        (vec!["client", "add", "svc", "--jwks", jwks_file, "--jwks-uri", url], "exclude each other"),
    ] {
        let out = tessera(d, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(why), "{args:?}: {stderr}");
    }
    let out = ok(d, &["client", "add", "svc", "--jwks-uri", url, "--token-endpoint-auth-method", "private_key_jwt"]);
    assert!(!out.contains("client_secret:"), "keys at a URI and no secret: none generated: {out}");
    let show = |d| -> Value { serde_json::from_str(&ok(d, &["client", "show", "svc"])).unwrap() };
    let shown = show(d);
    assert_eq!((&shown["jwks_uri"], &shown["keys"], &shown["secrets"]), (&json!(url), &json!([]), &json!([])));
    // One replaces the other.
    ok(d, &["client", "update", "svc", "--jwks", jwks_file]);
    let shown = show(d);
    assert_eq!(shown["jwks_uri"], Value::Null);
    assert_eq!(shown["keys"][0]["thumbprint"], key.kid.as_str());
    ok(d, &["client", "update", "svc", "--jwks-uri", url]);
    let shown = show(d);
    assert_eq!((&shown["jwks_uri"], &shown["keys"]), (&json!(url), &json!([])));
    assert!(!tessera(d, &["client", "update", "svc", "--jwks", jwks_file, "--jwks-uri", url]).status.success());
    assert!(!tessera(d, &["client", "update", "svc", "--jwks-uri", "http://svc.example/jwks"]).status.success());

    // The seed file: both is refused before any store is opened; a bad URL too.
    let seed = |extra: &str| {
        let text = format!("[[clients]]\nclient_id = \"svc\"\njwks_uri = \"{url}\"\n{extra}");
        Settings::resolve(Overrides::default(), FileConfig::parse(&text, "seed")?)
    };
    let jwk = key.public_jwk();
    let jwk = format!(r#"{{ kty = "EC", crv = "P-256", x = "{}", y = "{}" }}"#, jwk.x.unwrap(), jwk.y.unwrap());
    assert!(seed("").unwrap().seed_clients[0].jwks_uri.is_some());
    let both = seed(&format!("jwks_file = \"{jwks_file}\"")).unwrap_err().to_string();
    assert!(both.contains("exclude each other"), "{both}");
    let inline = seed(&format!("jwks = {{ keys = [{jwk}] }}")).unwrap_err().to_string();
    assert!(inline.contains("exclude each other"), "{inline}");
    let http = FileConfig::parse("[[clients]]\nclient_id = \"svc\"\njwks_uri = \"http://svc.example/jwks\"\n", "seed");
    assert!(http.unwrap_err().to_string().contains("not https"));
}
