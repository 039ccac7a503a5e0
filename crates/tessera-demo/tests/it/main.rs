//! The seed scenario end to end over real sockets: authorization server, Greeter (gRPC over
//! TLS), REST API, console client, worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tessera_client::{AuthorizedClient, ClientConfig, TokenSource};
use tessera_demo::{DemoError, greet, greeter, tls_channel, weather_api, worker};
use tessera_guard::{ClientCredentials, Guard, GuardConfig, Mode};
use tessera_server::admin::{ClientSpec, ScopeSpec};
use tessera_server::{FileConfig, Running};
use tessera_testkit::{TestServer, seed_client};
use tessera_types::clock::{Clock, ManualClock, SystemClock};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

mod dpop;
mod federated;
mod mtls;
mod private_key_jwt;

struct World {
    kit: TestServer,
    ca: PathBuf,
    http: reqwest::Client,
    greeter: tessera_demo::Service,
    api: tessera_demo::Service,
    clock: Arc<dyn Clock>,
}

fn creds(id: &str, secret: &str) -> ClientCredentials {
    ClientCredentials::new(ClientId::new(id).unwrap(), ClientSecret::new(secret).unwrap())
}

fn seed(id: &str, scopes: &[&str], permissions: &[&str], format: &str) -> ClientSpec {
    seed_client(id, &format!("{id}_secret"), scopes, permissions, format)
}

/// The scenario's registrations, from their single source (the file `tessera demo` and the
/// docs use).
fn scenario() -> FileConfig {
    FileConfig::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed.toml")).unwrap()
}

impl World {
    async fn start() -> Self {
        Self::start_with(Arc::new(SystemClock), Duration::from_secs(60)).await
    }

    /// Everything on loopback. `clock` is shared by the server, the guards and the clients;
    /// `cache_ttl` bounds how long the guards reuse a validation.
    async fn start_with(clock: Arc<dyn Clock>, cache_ttl: Duration) -> Self {
        let mut file = scenario();
        file.scopes.push(ScopeSpec {
            resources: vec![tessera_types::Resource::new("rs_dataEventRecordsApi").unwrap()],
            ..ScopeSpec::new(tessera_testkit::scope("other"))
        });
        file.clients.push(seed("NOSCOPE", &["other"], &[], "jwt"));
        file.clients.push(seed("bg_reference", &["api1"], &[], "reference"));
        // The REST API here also introspects (reference tokens): its seed client, which only
        // follows the revocation feed, is replaced by one that may do both.
        file.clients.retain(|c| c.client_id.as_str() != "api1");
        file.clients.push(seed("api1", &[], &["introspection", "events"], "jwt"));
        let kit = TestServer::builder().file(file).clock(clock.clone()).start().await;
        let (ca, http) = (kit.ca().to_owned(), kit.http.clone());
        let server = kit.running();
        let tls = tessera_server::tls::dev_cert(kit.dir.path()).unwrap();
        let guard = |aud: &str, mode: Mode| {
            let issuer = server.issuer.clone();
            let mut cfg = GuardConfig::new(issuer, Resource::new(aud).unwrap(), mode)
                .with_http_client(http.clone())
                .with_clock(clock.clone());
            cfg.max_cache_ttl = cache_ttl;
            Guard::new(cfg).unwrap()
        };
        let api_creds_rs = creds("rs_dataEventRecordsApi", "rs_dataEventRecordsApi_secret");
        let loopback = "127.0.0.1:0".parse().unwrap();
        let greeter = greeter(loopback, &tls.cert, &tls.key, guard("rs_dataEventRecordsApi", Mode::Auto(api_creds_rs)))
            .await
            .unwrap();
        let api_creds = creds("api1", "api1_secret");
        let api = weather_api(loopback, &tls.cert, &tls.key, guard("api1", Mode::Auto(api_creds))).await.unwrap();
        Self { kit, ca, http, greeter, api, clock }
    }

    fn server(&self) -> &Running {
        self.kit.running()
    }

    fn source(&self, id: &str, secret: &str, scope: &str) -> TokenSource {
        TokenSource::new(
            ClientConfig::new(
                self.server().issuer.clone(),
                ClientId::new(id).unwrap(),
                ClientSecret::new(secret).unwrap(),
            )
            .scope(ScopeSet::parse(scope).unwrap())
            .with_http_client(self.http.clone())
            .with_clock(self.clock.clone()),
        )
    }

    fn cc(&self) -> TokenSource {
        self.source("CC", "cc_secret", "dataEventRecords")
    }
}

#[tokio::test]
async fn the_console_client_gets_its_greeting_with_jwt_and_reference_tokens() {
    let w = World::start().await;
    assert_eq!(greet(&w.greeter.url(), &w.ca, w.cc()).await.unwrap(), "Greeting: Hello GreeterClient");
    let reference = w.source("CC_reference", "cc_reference_secret", "dataEventRecords");
    assert_eq!(greet(&w.greeter.url(), &w.ca, reference).await.unwrap(), "Greeting: Hello GreeterClient");
    // GET / is public, as in the seed.
    let r = w.http.get(w.greeter.url()).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "GRPC service running...");
}

/// Issue 14 over gRPC: a DPoP-bound token (RFC 9449) reaches the Greeter with a fresh proof
/// per call from the client's `BearerLayer` (`htu` = the channel's origin and the method's
/// path); without the key, the same token is refused.
#[tokio::test]
async fn rfc9449_a_dpop_bound_token_greets_with_a_proof_per_call_and_is_refused_without_the_key() {
    let w = World::start().await;
    let key = tessera_client::DpopKey::generate().unwrap();
    let cfg = ClientConfig::new(
        w.server().issuer.clone(),
        ClientId::new("CC").unwrap(),
        ClientSecret::new("cc_secret").unwrap(),
    )
    .scope(ScopeSet::parse("dataEventRecords").unwrap())
    .with_http_client(w.http.clone())
    .with_clock(w.clock.clone())
    .with_dpop(key);
    let bound = TokenSource::new(cfg);
    for _ in 0..2 {
        assert_eq!(greet(&w.greeter.url(), &w.ca, bound.clone()).await.unwrap(), "Greeting: Hello GreeterClient");
    }
    let token = bound.token().await.unwrap();
    assert!(token.dpop_bound);
    let channel = tessera_demo::tls_channel(&w.greeter.url(), &w.ca).await.unwrap();
    let mut client = tessera_greet::greeter_client::GreeterClient::new(channel);
    let mut call = tonic::Request::new(tessera_greet::HelloRequest { name: "thief".into() });
    call.metadata_mut().insert("authorization", format!("Bearer {}", token.access_token.expose()).parse().unwrap());
    assert_eq!(client.say_hello(call).await.unwrap_err().code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn no_token_is_unauthenticated_and_a_token_without_the_scope_is_permission_denied() {
    let w = World::start().await;
    let channel = tls_channel(&w.greeter.url(), &w.ca).await.unwrap();
    let mut bare = tessera_greet::greeter_client::GreeterClient::new(channel);
    let e = bare.say_hello(tessera_greet::HelloRequest { name: "x".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let noscope = w.source("NOSCOPE", "NOSCOPE_secret", "other");
    match greet(&w.greeter.url(), &w.ca, noscope).await {
        Err(DemoError::Api(m)) => assert!(m.contains("PermissionDenied") && m.contains("dataEventRecords"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_console_client_says_clearly_what_went_wrong() {
    let w = World::start().await;
    match greet(&w.greeter.url(), &w.ca, w.source("CC", "wrong", "dataEventRecords")).await {
        Err(DemoError::Token(m)) => assert!(m.contains("invalid_client") && m.contains("secret"), "{m}"),
        other => panic!("{other:?}"),
    }
    match greet(&w.greeter.url(), &w.ca, w.source("CC", "cc_secret", "api1")).await {
        Err(DemoError::Token(m)) => assert!(m.contains("invalid_scope"), "{m}"),
        other => panic!("{other:?}"),
    }
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("https://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut cfg = ClientConfig::new(
        Issuer::new(dead).unwrap(),
        ClientId::new("CC").unwrap(),
        ClientSecret::new("cc_secret").unwrap(),
    )
    .with_http_client(w.http.clone());
    cfg.backoff = Duration::from_millis(10);
    match greet(&w.greeter.url(), &w.ca, TokenSource::new(cfg)).await {
        Err(DemoError::Token(m)) => assert!(m.contains("cannot reach the authorization server"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_token_that_expires_mid_run_is_refreshed_without_the_caller_noticing() {
    let clock = ManualClock::new(SystemClock.now());
    let w = World::start_with(Arc::new(clock.clone()), Duration::from_secs(60)).await;
    let source = w.cc();
    let before = w.server().tokens_issued();
    assert!(greet(&w.greeter.url(), &w.ca, source.clone()).await.is_ok());
    assert_eq!(w.server().tokens_issued() - before, 1);
    let first = source.token().await.unwrap();
    // Well before 80% of the hour: the cached token is used.
    clock.advance(2000);
    assert!(greet(&w.greeter.url(), &w.ca, source.clone()).await.is_ok());
    assert_eq!(w.server().tokens_issued() - before, 1);
    // Past the first token's expiry: the caller just gets its greeting, with a new token.
    clock.advance(1700);
    assert!(greet(&w.greeter.url(), &w.ca, source.clone()).await.is_ok());
    assert_eq!(w.server().tokens_issued() - before, 2);
    assert_ne!(source.token().await.unwrap().access_token, first.access_token);
    assert!(first.expires_at <= clock.now(), "the first token really expired");
}

#[tokio::test]
async fn two_hundred_concurrent_calls_with_a_cold_cache_cause_one_token_request() {
    let w = World::start().await;
    let source = w.cc();
    let before = w.server().tokens_issued();
    let channel = tls_channel(&w.greeter.url(), &w.ca).await.unwrap();
    let svc = tower::ServiceBuilder::new().layer(tessera_client::BearerLayer::new(source.clone())).service(channel);
    let mut calls = Vec::new();
    for i in 0..200 {
        let mut client = tessera_greet::greeter_client::GreeterClient::new(svc.clone());
        calls.push(tokio::spawn(async move {
            client.say_hello(tessera_greet::HelloRequest { name: format!("n{i}") }).await
        }));
    }
    for c in calls {
        assert!(c.await.unwrap().is_ok());
    }
    assert_eq!(w.server().tokens_issued() - before, 1, "counted at the server");
    assert_eq!(source.requests_sent(), 1);
}

#[tokio::test]
async fn a_401_invalid_token_makes_one_transparent_retry_with_a_fresh_token() {
    // Guards that re-validate every call, so a revocation shows at once.
    let w = World::start_with(Arc::new(SystemClock), Duration::ZERO).await;
    let source = w.source("bg_reference", "bg_reference_secret", "api1");
    let client = AuthorizedClient::new(w.http.clone(), source.clone());
    let url = format!("{}/weatherforecast", w.api.url());
    assert_eq!(client.send(w.http.get(&url)).await.unwrap().status(), 200);
    let token = source.token().await.unwrap();
    let r = w
        .http
        .post(format!("{}/connect/revoke", w.server().issuer))
        .basic_auth("bg_reference", Some("bg_reference_secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", token.access_token.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let before = w.server().tokens_issued();
    let r = client.send(w.http.get(&url)).await.unwrap();
    assert_eq!(r.status(), 200, "the caller did not notice");
    assert_eq!(w.server().tokens_issued() - before, 1, "exactly one refresh");
}

#[tokio::test]
async fn the_worker_logs_failures_keeps_going_and_stops_when_told() {
    let w = World::start().await;
    let source = w.source("background-service", "service-secret-here", "api1");
    let client = AuthorizedClient::new(w.http.clone(), source);
    // First a URL that fails (404), then the real one: the worker survives the failures.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let bad = tokio::spawn(worker(client.clone(), format!("{}/nope", w.api.url()), Duration::from_millis(20), async {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(()).unwrap();
    assert_eq!(bad.await.unwrap(), 0);
    let calls = worker(
        client,
        format!("{}/weatherforecast", w.api.url()),
        Duration::from_millis(20),
        // Ample for three calls every 20 ms, even on a loaded machine in a debug build.
        tokio::time::sleep(Duration::from_secs(2)),
    )
    .await;
    assert!(calls >= 3, "{calls}");
}

/// Issue 12: `tessera demo` revokes the worker's token at `/connect/revoke` and shows the REST
/// API (JWT mode, following the revocation feed) refusing it with 401, within seconds.
#[tokio::test]
async fn issue12_tessera_demo_shows_a_revoked_token_refused_by_the_rest_api() {
    // A directory of its own: the other demo tests may run at once.
    let dir = std::env::temp_dir().join(format!("tessera-demo-feed-test-{}", std::process::id()));
    let lines = std::sync::Mutex::new(Vec::new());
    let result = tessera_demo::demo_reporting(&dir, &|line| lines.lock().unwrap().push(line.to_owned())).await;
    let _ = std::fs::remove_dir_all(&dir);
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
    let refused = lines
        .iter()
        .find(|l| l.starts_with("revoked at /connect/revoke: the REST API refuses the worker's token (401)"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let ms: u64 = refused.split(" ms later").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ms < 5_000, "the revocation took {ms} ms to reach the API: {refused}");
}
