//! Issue 15 over real TLS: a workload's token from a trusted issuer as `client_assertion`
//! (RFC 7523 §2.2) gets a token for the client the trust's first matching rule names; every
//! check the trust makes refuses with `invalid_client` when it fails. Tokens are shaped as
//! Kubernetes issues projected service-account tokens (TokenRequest API, `kubernetes.io`
//! claim) and as SPIRE issues JWT-SVIDs (`sub` = SPIFFE ID).

use std::path::Path;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tessera_jose::SigningKey;
use tessera_server::FileConfig;
use tessera_server::federation::trusts::{TrustKind, TrustSpec, add_rule, add_trust};
use tessera_testkit::jwks_server::{Answer, JwksServer};
use tessera_testkit::{Authority as _, Reply, assert_oauth_error, jwt_payload};
use tessera_types::rfc7517::JwkSet;
use tessera_types::{ClientId, Issuer, JwksUri, SigningAlg};

use crate::harness::{FORM, TestServer, split};

const K8S: &str = "https://kubernetes.default.svc.cluster.local";
const SPIRE: &str = "https://spire.prod.acme.example";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn spec(name: &str, issuer: &str, kind: TrustKind) -> TrustSpec {
    TrustSpec::new(ClientId::new(name).unwrap(), Issuer::new(issuer).unwrap(), kind)
}

fn jwks_file(dir: &Path, name: &str, key: &SigningKey) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.jwks"));
    std::fs::write(&path, serde_json::to_string(&JwkSet { keys: vec![key.public_jwk()] }).unwrap()).unwrap();
    path
}

struct Fixture {
    s: TestServer,
    cluster: SigningKey,
    now: i64,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A server trusting a cluster (inline keys, tokens at most an hour old) whose
    /// `payments` namespace acts as client `payments`, and a SPIRE trust domain whose tokens
    /// pass once each.
    async fn start(spire: &SigningKey) -> Self {
        let s = with_payments(TestServer::builder().file(refusals_allowed(FileConfig::default()))).await;
        s.add_client_with(tessera_testkit::client("other")).await;
        let dir = tempfile::tempdir().unwrap();
        let (cluster, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let bounds = tessera_server::limits::Limits::default().client_keys;
        let now = s.now();
        let k8s = TrustSpec {
            jwks_file: Some(jwks_file(dir.path(), "cluster", &cluster)),
            max_token_age: Some(3600),
            ..spec("cluster", K8S, TrustKind::Kubernetes)
        };
        add_trust(&s.store, k8s, &bounds, now).await.unwrap();
        let payments = ClientId::new("payments").unwrap();
        add_rule(&s.store, "cluster", &payments, &["sub=system:serviceaccount:payments:*".into()], now).await.unwrap();
        let spiffe = TrustSpec {
            jwks_file: Some(jwks_file(dir.path(), "spire", spire)),
            max_uses: Some(1),
            ..spec("spire", SPIRE, TrustKind::Spiffe)
        };
        add_trust(&s.store, spiffe, &bounds, now).await.unwrap();
        add_rule(&s.store, "spire", &payments, &["sub=spiffe://prod.acme.example/ns/payments/**".into()], now)
            .await
            .unwrap();
        s.sync().await;
        let now = s.now().0;
        Self { s, cluster, now, _dir: dir }
    }

    /// A projected service-account token for `ns`/`sa`, for this server, with `change` applied.
    fn k8s(&self, key: &SigningKey, ns: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = json!({
            "aud": [self.s.issuer()], "exp": self.now + 3600, "iat": self.now, "nbf": self.now, "iss": K8S,
            "jti": format!("k8s-{ns}-{}", self.now),
            "kubernetes.io": {
                "namespace": ns,
                "pod": { "name": "api-7d9f8c6b5-x2k4p", "uid": "2c1e5a7b-9d3f-4e6a-b8c0-1f4d7e2a6b9c" },
                "serviceaccount": { "name": "api", "uid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" }
            },
            "sub": format!("system:serviceaccount:{ns}:api")
        });
        change(&mut claims);
        key.sign_access_token(&claims).unwrap()
    }

    async fn token(&self, assertion: &str, client_id: Option<&str>) -> Reply {
        let mut body = format!(
            "grant_type=client_credentials&scope=payments&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
        );
        if let Some(id) = client_id {
            body.push_str(&format!("&client_id={id}"));
        }
        let r = self.s.http.post(self.s.url("/connect/token")).header(CONTENT_TYPE, FORM).body(body);
        split(r.send().await.unwrap()).await
    }
}

#[tokio::test]
async fn issue15_a_kubernetes_token_from_a_trusted_cluster_gets_a_token_for_the_client_its_rule_names() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    let (status, _, body) = f.token(&f.k8s(&f.cluster, "payments", |_| {}), None).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!((claims["client_id"].as_str(), claims["aud"].as_str()), (Some("payments"), Some("payments-api")));
    // Who the client was, and by which rule (Tessera's `workload` claim).
    assert_eq!(
        claims["workload"],
        json!({ "iss": K8S, "sub": "system:serviceaccount:payments:api", "trust": "cluster", "rule": 1 })
    );
    // The token is reusable (Kubernetes reuses it for its hour), and client_id may name the
    // rule's client.
    let again = f.k8s(&f.cluster, "payments", |_| {});
    assert_eq!(f.token(&again, Some("payments")).await.0, 200);
    assert_eq!(f.token(&again, None).await.0, 200);
    // The audit trail: who came, by which rule, once (not once per token request).
    f.s.running().flush_audit().await;
    let q = tessera_store::AuditQuery {
        action: Some(tessera_store::AuditAction::WorkloadAuthenticated),
        ..Default::default()
    };
    let seen = f.s.store.list_audit(&q).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(
        (seen[0].actor.as_str(), seen[0].target.as_str()),
        ("workload:system:serviceaccount:payments:api", "payments")
    );
    assert_eq!((seen[0].detail["trust"].as_str(), seen[0].detail["rule"].as_i64()), (Some("cluster"), Some(1)));
}

#[tokio::test]
async fn issue15_every_trust_check_refuses_with_invalid_client() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    let (stranger, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let now = f.now;
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("an untrusted issuer", f.k8s(&f.cluster, "payments", |c| c["iss"] = "https://evil.example".into()), None),
        ("another audience", f.k8s(&f.cluster, "payments", |c| c["aud"] = json!(["https://elsewhere.example"])), None),
        (
            "expired",
            f.k8s(&f.cluster, "payments", |c| {
                c["iat"] = (now - 1000).into();
                c["exp"] = (now - 100).into();
            }),
            None,
        ),
        (
            "older than max-token-age",
            f.k8s(&f.cluster, "payments", |c| {
                c["iat"] = (now - 4000).into();
                c["nbf"] = (now - 4000).into();
            }),
            None,
        ),
        ("not yet valid", f.k8s(&f.cluster, "payments", |c| c["nbf"] = (now + 600).into()), None),
        ("living longer than a day", f.k8s(&f.cluster, "payments", |c| c["exp"] = (now + 200_000).into()), None),
        ("signed by an unknown key", f.k8s(&stranger, "payments", |_| {}), None),
        ("matching no rule", f.k8s(&f.cluster, "billing", |_| {}), None),
        ("with another client's client_id", f.k8s(&f.cluster, "payments", |_| {}), Some("other")),
        ("signed by the SPIRE key, claiming the cluster", f.k8s(&spire, "payments", |_| {}), None),
    ];
    for (what, assertion, client_id) in cases {
        let reply = f.token(&assertion, client_id).await;
        assert_eq!(reply.0, 401, "{what}: {}", reply.2);
        assert_oauth_error(&reply, 401, "invalid_client");
    }
    // A tampered signature.
    let good = f.k8s(&f.cluster, "payments", |_| {});
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { format!("B{}", &sig[1..]) } else { format!("A{}", &sig[1..]) };
    assert_oauth_error(&f.token(&format!("{head}.{flipped}"), None).await, 401, "invalid_client");
    assert_eq!(f.token(&good, None).await.0, 200, "the untampered token passes");
}

#[tokio::test]
async fn issue15_a_single_use_trust_accepts_each_spiffe_token_once() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    let svid = |id: &str, jti: &str| {
        spire
            .sign_access_token(&json!({ "iss": SPIRE, "sub": id, "aud": [f.s.issuer()], "exp": f.now + 300,
                "iat": f.now, "jti": jti }))
            .unwrap()
    };
    let first = svid("spiffe://prod.acme.example/ns/payments/sa/invoicer", "svid-1");
    assert_eq!(f.token(&first, None).await.0, 200);
    assert_oauth_error(&f.token(&first, None).await, 401, "invalid_client");
    assert_eq!(f.token(&svid("spiffe://prod.acme.example/ns/payments/sa/invoicer", "svid-2"), None).await.0, 200);
    // `**` stops at the path: a look-alike trust domain path is no match.
    let outside = svid("spiffe://prod.acme.example/ns/payments-evil/sa/x", "svid-3");
    assert_oauth_error(&f.token(&outside, None).await, 401, "invalid_client");
}

/// A server on a manual clock that fetches keys from servers under `ca`, with client
/// `payments` (scope payments for payments-api).
async fn fetching_server(ca: &Path) -> (TestServer, tessera_types::clock::ManualClock) {
    let file = refusals_allowed(FileConfig { jwks_uri_ca_file: Some(ca.to_owned()), ..FileConfig::default() });
    let clock = tessera_types::clock::ManualClock::new(tessera_types::UnixTime(1_800_000_000));
    let s = with_payments(TestServer::builder().clock(std::sync::Arc::new(clock.clone())).file(file)).await;
    (s, clock)
}

/// The refusals these tests provoke come from one address in a row; backoff is tested elsewhere.
fn refusals_allowed(mut file: FileConfig) -> FileConfig {
    file.limits.failed_auth_free_attempts = Some(10_000);
    file
}

/// Starts the server and registers client `payments` (scope payments for payments-api).
async fn with_payments(builder: tessera_testkit::ServerBuilder) -> TestServer {
    let s = builder.start().await;
    s.add_scope("payments", &["payments-api"]).await;
    s.add_client_with(tessera_server::admin::ClientSpec {
        scopes: vec![tessera_testkit::scope("payments")],
        ..tessera_testkit::client("payments")
    })
    .await;
    s
}

#[tokio::test]
async fn issue15_keys_from_a_jwks_uri_are_fetched_and_an_unknown_key_refetched_once() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let (old, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let keys = JwksServer::start(Answer::Json(tessera_testkit::assertion::jwks(&[&old]))).await;
    let (s, clock) = fetching_server(&keys.ca).await;
    let bounds = tessera_server::limits::Limits::default().client_keys;
    let t =
        TrustSpec { jwks_uri: Some(JwksUri::new(&keys.url).unwrap()), ..spec("remote", K8S, TrustKind::Kubernetes) };
    add_trust(&s.store, t, &bounds, s.now()).await.unwrap();
    let payments = ClientId::new("payments").unwrap();
    add_rule(&s.store, "remote", &payments, &["/kubernetes.io/namespace=payments".into()], s.now()).await.unwrap();
    s.sync().await;
    let f = Fixture { cluster: old, now: s.now().0, s, _dir: tempfile::tempdir().unwrap() };
    assert_eq!(f.token(&f.k8s(&f.cluster, "payments", |_| {}), None).await.0, 200);
    assert_eq!(keys.requests(), 1);
    // The cluster rotates its key: the first token with the new kid triggers one refetch
    // (once the minimum interval since the last fetch has passed).
    clock.advance(31);
    let (new, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    keys.answer(Answer::Json(tessera_testkit::assertion::jwks(&[&f.cluster, &new])));
    assert_eq!(f.token(&f.k8s(&new, "payments", |_| {}), None).await.0, 200);
    assert_eq!(keys.requests(), 2);
    // A key the issuer never published: refused, and no new fetch within the interval.
    assert_oauth_error(&f.token(&f.k8s(&spire, "payments", |_| {}), None).await, 401, "invalid_client");
    assert_eq!(keys.requests(), 2, "refetches are rate-limited");
}

/// POSTs a JWT bearer grant (RFC 7523 §2.1) with `extra` form parameters and an optional
/// Basic authorization.
async fn grant(s: &TestServer, assertion: &str, extra: &str, basic: Option<(&str, &str)>) -> Reply {
    let body = format!("grant_type={}&assertion={assertion}{extra}", tessera_types::JWT_BEARER_GRANT);
    let mut r = s.http.post(s.url("/connect/token")).header(CONTENT_TYPE, FORM).body(body);
    if let Some((id, secret)) = basic {
        r = r.basic_auth(id, Some(secret));
    }
    split(r.send().await.unwrap()).await
}

#[tokio::test]
async fn rfc7523_2_1_the_jwt_bearer_grant_takes_a_workload_token_and_refuses_with_invalid_grant() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    // The grant needs the client's permission for it; `payments` has only client_credentials.
    let token = f.k8s(&f.cluster, "payments", |_| {});
    assert_oauth_error(&grant(&f.s, &token, "&scope=payments", None).await, 400, "unauthorized_client");
    f.s.add_client_with(tessera_server::admin::ClientSpec {
        scopes: vec![tessera_testkit::scope("payments")],
        permissions: vec!["ept:token".parse().unwrap(), "jwt-bearer".parse().unwrap()],
        ..tessera_testkit::client("deployer")
    })
    .await;
    let now = f.s.now();
    add_rule(
        &f.s.store,
        "cluster",
        &ClientId::new("deployer").unwrap(),
        &["/kubernetes.io/namespace=deploy".into()],
        now,
    )
    .await
    .unwrap();
    f.s.sync().await;
    let (status, _, body) = grant(&f.s, &f.k8s(&f.cluster, "deploy", |_| {}), "&scope=payments", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_payload(body["access_token"].as_str().unwrap())["client_id"], "deployer");
    // Discovery says so.
    let meta = f.s.get_json("/.well-known/openid-configuration").await;
    assert!(meta["grant_types_supported"].as_array().unwrap().iter().any(|g| g == tessera_types::JWT_BEARER_GRANT));
    // §3.1: an assertion that fails is invalid_grant: another cluster, an unknown key, expired,
    // no rule; a private_key_jwt-style assertion is no workload token either.
    let (stranger, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let cases = [
        ("untrusted issuer", f.k8s(&f.cluster, "deploy", |c| c["iss"] = "https://other.example".into())),
        ("unknown key", f.k8s(&stranger, "deploy", |_| {})),
        (
            "expired",
            f.k8s(&f.cluster, "deploy", |c| {
                c["iat"] = (f.now - 1000).into();
                c["exp"] = (f.now - 100).into();
            }),
        ),
        ("no rule", f.k8s(&f.cluster, "billing", |_| {})),
        ("not a workload token", stranger.sign_access_token(&json!({"iss": "deployer", "sub": "deployer"})).unwrap()),
    ];
    for (what, assertion) in cases {
        let reply = grant(&f.s, &assertion, "&scope=payments", None).await;
        assert_eq!(reply.0, 400, "{what}: {}", reply.2);
        assert_oauth_error(&reply, 400, "invalid_grant");
    }
    // The assertion alone authorizes the grant: with client authentication besides, refused.
    let secret = f.s.add_client_with(tessera_testkit::client("with-secret")).await.unwrap();
    let both = grant(&f.s, &f.k8s(&f.cluster, "deploy", |_| {}), "", Some(("with-secret", secret.expose()))).await;
    assert_oauth_error(&both, 400, "invalid_request");
    // client_id, if sent, must be the rule's client.
    let other = grant(&f.s, &f.k8s(&f.cluster, "deploy", |_| {}), "&client_id=payments", None).await;
    assert_oauth_error(&other, 400, "invalid_grant");
    assert_eq!(grant(&f.s, &f.k8s(&f.cluster, "deploy", |_| {}), "&client_id=deployer", None).await.0, 200);
    // tessera-client presents a workload token as the grant when told to.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, f.k8s(&f.cluster, "deploy", |_| {})).unwrap();
    let cfg = tessera_client::ClientConfig::with_credentials(
        Issuer::new(f.s.issuer()).unwrap(),
        ClientId::new("deployer").unwrap(),
        tessera_client::ClientCredentials::Workload(tessera_client::WorkloadToken::file(&file).as_grant()),
    )
    .with_http_client(f.s.http.clone());
    let token = tessera_client::TokenSource::new(cfg).token().await.unwrap();
    assert_eq!(jwt_payload(token.access_token.expose())["client_id"], "deployer");
}

#[tokio::test]
async fn issue15_tessera_client_reads_the_workload_token_file_at_each_request_and_runs_a_command() {
    use tessera_client::{ClientConfig, ClientCredentials, TokenSource, WorkloadToken};
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", f.k8s(&f.cluster, "payments", |c| c["jti"] = "first".into()))).unwrap();
    let source = |w: WorkloadToken| {
        let mut cfg = ClientConfig::with_credentials(
            Issuer::new(f.s.issuer()).unwrap(),
            ClientId::new("payments").unwrap(),
            ClientCredentials::Workload(w),
        )
        .with_http_client(f.s.http.clone());
        // Each step below must ask again at once, not replay the last failure.
        cfg.calls.failure_memory = std::time::Duration::ZERO;
        TokenSource::new(cfg)
    };
    let from_file = source(WorkloadToken::file(&file));
    let first = from_file.token().await.unwrap();
    assert_eq!(jwt_payload(first.access_token.expose())["client_id"], "payments");
    // The platform rotates the file; the next token request sends the new token (a file
    // holding something else than a JWT is refused before anything is sent).
    std::fs::write(&file, "not a token").unwrap();
    from_file.invalidate(&first.access_token);
    assert!(from_file.token().await.is_err());
    std::fs::write(&file, f.k8s(&f.cluster, "payments", |c| c["jti"] = "second".into())).unwrap();
    assert!(from_file.token().await.is_ok());
    assert_eq!(from_file.requests_sent(), 2, "the refused file never reached the server");
    // A command printing the token, and a token of a namespace no rule maps: refused.
    let cat = source(WorkloadToken::command(vec!["cat".into(), file.to_str().unwrap().into()]));
    assert!(cat.token().await.is_ok());
    std::fs::write(&file, f.k8s(&f.cluster, "billing", |_| {})).unwrap();
    let refused = source(WorkloadToken::file(&file)).token().await.unwrap_err();
    assert!(format!("{refused}").contains("invalid_client"), "{refused}");
}

#[tokio::test]
async fn issue15_a_seed_file_registers_trusts_with_their_rules_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let jwks = jwks_file(dir.path(), "cluster", &cluster);
    let toml = format!(
        r#"
[limits]
failed_auth_free_attempts = 10000

[[scopes]]
name = "payments"
resources = ["payments-api"]

[[clients]]
client_id = "payments"
scopes = ["payments"]

[[trusts]]
name = "cluster"
kind = "kubernetes"
issuer = "{K8S}"
jwks_file = "{}"
max_token_age = 3600

[[trusts.rules]]
client = "payments"
match = ["/kubernetes.io/namespace=payments", "sub=system:serviceaccount:payments:*"]
"#,
        jwks.display()
    );
    let file = || FileConfig::parse(&toml, "seed").unwrap();
    let s = TestServer::start_with(&["ES256"], file()).await;
    let f = Fixture { cluster, now: s.now().0, s, _dir: dir };
    assert_eq!(f.token(&f.k8s(&f.cluster, "payments", |_| {}), None).await.0, 200);
    assert_oauth_error(&f.token(&f.k8s(&f.cluster, "billing", |_| {}), None).await, 401, "invalid_client");
    // A restart with the same seed keeps the trust's one rule: seeding never duplicates.
    let Fixture { s, cluster, _dir, .. } = f;
    let data = s.stop().await;
    let s = TestServer::start_in(data, &["ES256"], file()).await;
    assert_eq!(s.store.list_trust_rules("cluster").await.unwrap().len(), 1);
    let f = Fixture { cluster, now: s.now().0, s, _dir };
    assert_eq!(f.token(&f.k8s(&f.cluster, "payments", |_| {}), None).await.0, 200);
    // A seed trust with an unknown field is refused when the file is read.
    let bad = toml.replace("max_token_age = 3600", "max_token_age = 3600\nmax_age = 1");
    assert!(FileConfig::parse(&bad, "seed").is_err());
}

#[tokio::test]
async fn issue15_by_default_keys_come_from_the_issuers_discovery_document() {
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let idp = JwksServer::start(Answer::Json(tessera_testkit::assertion::jwks(&[&key]))).await;
    // A document naming another issuer first: its keys must not verify this one's tokens.
    idp.serve_moved(json!({ "issuer": "https://elsewhere.example", "jwks_uri": idp.url }));
    let (s, clock) = fetching_server(&idp.ca).await;
    let bounds = tessera_server::limits::Limits::default().client_keys;
    add_trust(&s.store, spec("idp", &idp.origin(), TrustKind::Oidc), &bounds, s.now()).await.unwrap();
    let payments = ClientId::new("payments").unwrap();
    add_rule(&s.store, "idp", &payments, &["sub=workload-1".into()], s.now()).await.unwrap();
    s.sync().await;
    let audience = s.issuer().to_owned();
    let token = |now: i64| {
        key.sign_access_token(&json!({ "iss": idp.origin(), "sub": "workload-1", "aud": audience,
            "iat": now, "exp": now + 600 }))
            .unwrap()
    };
    let (unused, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture { cluster: unused, now: s.now().0, s, _dir: tempfile::tempdir().unwrap() };
    assert_oauth_error(&f.token(&token(f.now), None).await, 401, "invalid_client");
    assert_eq!((idp.moved_requests(), idp.requests()), (1, 0), "no keys fetched for a lying document");
    // Fixed, and past the interval a failure is remembered: discovery, then the keys, once.
    idp.serve_moved(json!({ "issuer": idp.origin(), "jwks_uri": idp.url }));
    clock.advance(31);
    assert_eq!(f.token(&token(f.now + 31), None).await.0, 200);
    assert_eq!(f.token(&token(f.now + 31), None).await.0, 200);
    assert_eq!((idp.moved_requests(), idp.requests()), (2, 1), "both cached");
}

#[tokio::test]
async fn rfc8693_a_workload_token_is_exchanged_for_a_token_of_the_client_its_rule_names() {
    use tessera_types::rfc8693::{GRANT_TYPE, JWT};
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    f.s.add_client_with(tessera_server::admin::ClientSpec {
        secret: tessera_testkit::secret("gateway_secret_0123456789"),
        scopes: vec![tessera_testkit::scope("payments")],
        permissions: vec!["ept:token".parse().unwrap(), "token-exchange".parse().unwrap()],
        ..tessera_testkit::client("gateway")
    })
    .await;
    let exchange = |token: String| {
        let body = format!("grant_type={GRANT_TYPE}&subject_token={token}&subject_token_type={JWT}");
        let r =
            f.s.http
                .post(f.s.url("/connect/token"))
                .basic_auth("gateway", Some("gateway_secret_0123456789"))
                .header(CONTENT_TYPE, FORM)
                .body(body);
        async move { split(r.send().await.unwrap()).await }
    };
    let pod = f.k8s(&f.cluster, "payments", |c| c["exp"] = (f.now + 120).into());
    let (status, _, body) = exchange(pod.clone()).await;
    assert_eq!(status, 200, "{body}");
    let t = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!((t["sub"].as_str(), t["client_id"].as_str()), (Some("payments"), Some("gateway")));
    assert_eq!(t["act"], json!({ "sub": "gateway" }));
    assert_eq!(t["workload"]["sub"], "system:serviceaccount:payments:api");
    assert!(t["exp"].as_i64().unwrap() <= f.now + 120, "never outlives the workload token");
    // Introspection tells the API the delegation chain and the workload (RFC 8693 §4.4).
    f.s.add_client("payments-api", "payments_api_secret_0123", &[], &["ept:introspection"]).await;
    let answer =
        f.s.introspect_as("payments-api", "payments_api_secret_0123", body["access_token"].as_str().unwrap()).await;
    assert_eq!((answer["active"].as_bool(), &answer["act"]), (Some(true), &json!({ "sub": "gateway" })), "{answer}");
    assert_eq!(answer["workload"]["trust"], "cluster");
    // A namespace no rule maps, or a key the cluster never had: invalid_grant.
    assert_oauth_error(&exchange(f.k8s(&f.cluster, "billing", |_| {})).await, 400, "invalid_grant");
    assert_oauth_error(&exchange(f.k8s(&spire, "payments", |_| {})).await, 400, "invalid_grant");
}

/// A token as GitHub Actions issues it to a deployment job (claims as GitHub documents them in
/// "About security hardening with OpenID Connect"), for this server, with `change` applied.
fn github_token(key: &SigningKey, audience: &str, now: i64, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = json!({
        "iss": GITHUB, "aud": audience, "iat": now, "nbf": now, "exp": now + 300,
        "jti": format!("gha-{now}"),
        "sub": "repo:acme/app:environment:prod",
        "environment": "prod", "ref": "refs/heads/main", "ref_type": "branch",
        "repository": "acme/app", "repository_id": "74", "repository_owner": "acme", "repository_owner_id": "65",
        "repository_visibility": "private", "run_id": "5", "run_number": "10", "run_attempt": "1",
        "actor": "octocat", "actor_id": "12", "event_name": "workflow_dispatch",
        "workflow": "deploy", "workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "runner_environment": "github-hosted"
    });
    change(&mut claims);
    key.sign_access_token(&claims).unwrap()
}

const GITHUB: &str = "https://token.actions.githubusercontent.com";

#[tokio::test]
async fn issue15_trust_kinds_check_their_tokens_shape_and_give_rules_shorthand_claims() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    let (bounds, now) = (tessera_server::limits::Limits::default().client_keys, f.s.now());
    f.s.add_client_with(tessera_server::admin::ClientSpec {
        scopes: vec![tessera_testkit::scope("payments")],
        ..tessera_testkit::client("deployer")
    })
    .await;
    let other = ClientId::new("deployer").unwrap();
    // Kubernetes: `namespace` and `pod` are shorthands of the token's own claims.
    add_rule(&f.s.store, "cluster", &other, &["namespace=billing".into(), "pod=worker-*".into()], now).await.unwrap();
    // GitHub Actions: a deployment from acme's main branch to the prod environment.
    let (github, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gha = TrustSpec {
        jwks_file: Some(jwks_file(dir.path(), "github", &github)),
        ..spec("github", GITHUB, TrustKind::GithubActions)
    };
    add_trust(&f.s.store, gha, &bounds, now).await.unwrap();
    let deploy = ["repository_owner=acme".into(), "ref=refs/heads/main".into(), "environment=prod".into()];
    add_rule(&f.s.store, "github", &other, &deploy, now).await.unwrap();
    f.s.sync().await;

    let worker = f.k8s(&f.cluster, "billing", |c| c["kubernetes.io"]["pod"]["name"] = "worker-5f7b9".into());
    let (status, _, body) = f.token(&worker, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_payload(body["access_token"].as_str().unwrap())["client_id"], "deployer");
    let api_pod = f.k8s(&f.cluster, "billing", |_| {});
    assert_oauth_error(&f.token(&api_pod, None).await, 401, "invalid_client");
    // `sub` and the `kubernetes.io` claim disagree: not what an API server mints, refused
    // although `sub` alone matches the payments rule.
    let forged = f.k8s(&f.cluster, "payments", |c| c["kubernetes.io"]["namespace"] = "billing".into());
    assert_oauth_error(&f.token(&forged, None).await, 401, "invalid_client");

    let audience = f.s.issuer().to_owned();
    let (status, _, body) = f.token(&github_token(&github, &audience, f.now, |_| {}), None).await;
    assert_eq!(status, 200, "{body}");
    let t = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(
        (t["client_id"].as_str(), t["workload"]["sub"].as_str()),
        (Some("deployer"), Some("repo:acme/app:environment:prod"))
    );
    for (what, change) in [
        ("another environment", json!({ "environment": "staging" })),
        ("another branch", json!({ "ref": "refs/heads/feature" })),
        ("a repository of another owner", json!({ "repository": "evil/app" })),
        ("no job_workflow_ref", json!({ "job_workflow_ref": null })),
    ] {
        let token = github_token(&github, &audience, f.now, |c| {
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
        });
        let reply = f.token(&token, None).await;
        assert_eq!(reply.0, 401, "{what}: {}", reply.2);
        assert_oauth_error(&reply, 401, "invalid_client");
    }

    // SPIFFE: `..` in a SPIFFE ID would let `**` match outside the path the rule names.
    let svid = spire
        .sign_access_token(
            &json!({ "iss": SPIRE, "sub": "spiffe://prod.acme.example/ns/payments/../../kube-system/sa/x",
            "aud": [f.s.issuer()], "exp": f.now + 300, "iat": f.now, "jti": "svid-dots" }),
        )
        .unwrap();
    assert_oauth_error(&f.token(&svid, None).await, 401, "invalid_client");
}

#[tokio::test]
async fn issue15_max_uses_accepts_each_workload_token_that_many_times() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    let (bounds, now) = (tessera_server::limits::Limits::default().client_keys, f.s.now());
    let dir = tempfile::tempdir().unwrap();
    let (ci, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let limited = TrustSpec {
        jwks_file: Some(jwks_file(dir.path(), "ci", &ci)),
        max_uses: Some(3),
        ..spec("ci", "https://ci.acme.example", TrustKind::Oidc)
    };
    add_trust(&f.s.store, limited, &bounds, now).await.unwrap();
    add_rule(&f.s.store, "ci", &ClientId::new("payments").unwrap(), &["sub=job-*".into()], now).await.unwrap();
    // Out of range: refused when registered.
    for n in [0, 1001] {
        let t = TrustSpec { max_uses: Some(n), ..spec(&format!("bad{n}"), "https://x.example", TrustKind::Oidc) };
        let t = TrustSpec { jwks_file: Some(jwks_file(dir.path(), "x", &ci)), ..t };
        assert!(add_trust(&f.s.store, t, &bounds, now).await.is_err(), "max_uses {n}");
    }
    f.s.sync().await;
    let job = |jti: Option<&str>| {
        let mut c = json!({ "iss": "https://ci.acme.example", "sub": "job-7", "aud": f.s.issuer(), "iat": f.now,
            "exp": f.now + 300 });
        if let Some(jti) = jti {
            c["jti"] = jti.into();
        }
        ci.sign_access_token(&c).unwrap()
    };
    for token in [job(Some("run-1")), job(None)] {
        for use_ in 1..=3 {
            assert_eq!(f.token(&token, None).await.0, 200, "use {use_}");
        }
        assert_oauth_error(&f.token(&token, None).await, 401, "invalid_client");
    }
    assert_eq!(f.token(&job(Some("run-2")), None).await.0, 200, "another token has uses of its own");
}

#[tokio::test]
async fn issue15_a_trusts_own_ca_verifies_its_issuers_tls() {
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let keys = JwksServer::start(Answer::Json(tessera_testkit::assertion::jwks(&[&key]))).await;
    // The server itself trusts no private CA.
    let s = with_payments(TestServer::builder().file(refusals_allowed(FileConfig::default()))).await;
    let bounds = tessera_server::limits::Limits::default().client_keys;
    let uri = JwksUri::new(&keys.url).unwrap();
    let with_ca = TrustSpec {
        jwks_uri: Some(uri.clone()),
        ca_file: Some(keys.ca.clone()),
        ..spec("pinned", "https://pinned.example", TrustKind::Oidc)
    };
    add_trust(&s.store, with_ca, &bounds, s.now()).await.unwrap();
    let without = TrustSpec { jwks_uri: Some(uri), ..spec("unpinned", "https://unpinned.example", TrustKind::Oidc) };
    add_trust(&s.store, without, &bounds, s.now()).await.unwrap();
    let payments = ClientId::new("payments").unwrap();
    for trust in ["pinned", "unpinned"] {
        add_rule(&s.store, trust, &payments, &["sub=w".into()], s.now()).await.unwrap();
    }
    // --ca with inline keys makes no sense, and a file without a certificate is refused.
    let dir = tempfile::tempdir().unwrap();
    let inline = TrustSpec {
        jwks_file: Some(jwks_file(dir.path(), "k", &key)),
        ca_file: Some(keys.ca.clone()),
        ..spec("inline", "https://inline.example", TrustKind::Oidc)
    };
    assert!(add_trust(&s.store, inline, &bounds, s.now()).await.is_err());
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "no certificate here").unwrap();
    let broken = TrustSpec {
        jwks_uri: Some(JwksUri::new(&keys.url).unwrap()),
        ca_file: Some(not_pem),
        ..spec("broken", "https://broken.example", TrustKind::Oidc)
    };
    assert!(add_trust(&s.store, broken, &bounds, s.now()).await.is_err());
    s.sync().await;
    let now = s.now().0;
    let f = Fixture { cluster: key, now, s, _dir: dir };
    let token = |iss: &str| {
        f.cluster
            .sign_access_token(&json!({ "iss": iss, "sub": "w", "aud": f.s.issuer(), "iat": now, "exp": now + 300 }))
            .unwrap()
    };
    assert_eq!(f.token(&token("https://pinned.example"), None).await.0, 200);
    assert_oauth_error(&f.token(&token("https://unpinned.example"), None).await, 401, "invalid_client");
    assert_eq!(keys.requests(), 1, "the unpinned fetch failed at TLS, before any request");
}

#[tokio::test]
async fn issue15_a_reference_token_of_a_workload_is_introspected_with_its_workload() {
    let (spire, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let f = Fixture::start(&spire).await;
    f.s.add_client_with(tessera_server::admin::ClientSpec {
        scopes: vec![tessera_testkit::scope("payments")],
        token_format: Some(tessera_types::TokenFormat::Reference),
        ..tessera_testkit::client("payments-ref")
    })
    .await;
    f.s.add_client("payments-api", "payments_api_secret_0123", &[], &["ept:introspection"]).await;
    let now = f.s.now();
    add_rule(&f.s.store, "cluster", &ClientId::new("payments-ref").unwrap(), &["namespace=ledger".into()], now)
        .await
        .unwrap();
    f.s.sync().await;
    let (status, _, body) = f.token(&f.k8s(&f.cluster, "ledger", |_| {}), None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert!(!token.contains('.'), "a reference token");
    let answer = f.s.introspect_as("payments-api", "payments_api_secret_0123", token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(
        answer["workload"],
        json!({ "iss": K8S, "sub": "system:serviceaccount:ledger:api", "trust": "cluster", "rule": 2 })
    );
}
