//! The guard against the real Tessera server over TLS, in each mode.

use std::sync::Arc;
use std::time::Duration;

use tessera_guard::{ClientCredentials, Guard, GuardConfig, GuardLayer, Mode};
use tessera_server::admin::{self, NewClient, NewScope};
use tessera_server::clock::{Clock as _, SystemRandom};
use tessera_server::{Deps, FileConfig, Overrides, Running, Settings};
use tessera_store::Store;
use tessera_types::clock::{ManualClock, SystemClock};

use crate::apps::{get_rest, grpc, rest, say_hello};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource};

const API: &str = "rs_dataEventRecordsApi";

struct Authority {
    running: Running,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
    url: String,
}

impl Authority {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::resolve(
            Overrides {
                data_dir: Some(dir.path().to_owned()),
                listen: Some("127.0.0.1:0".into()),
                ..Default::default()
            },
            FileConfig { registry_poll_ms: Some(20), ..Default::default() },
        )
        .unwrap();
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let (rng, now) = (SystemRandom::default(), SystemClock.now());
        for (name, resource) in [("dataEventRecords", API), ("other", API)] {
            let s = NewScope { name: name.into(), resources: vec![resource.into()], ..Default::default() };
            admin::add_scope(&store, s, now).await.unwrap();
        }
        let client = |id: &str, scope: &str, format: &str| NewClient {
            client_id: id.into(),
            secret: Some(format!("{id}_secret")),
            scopes: vec![scope.into()],
            token_format: Some(format.into()),
            allow_weak_secret: true,
            ..Default::default()
        };
        for c in [
            client("CC", "dataEventRecords", "jwt"),
            client("REF", "dataEventRecords", "reference"),
            client("NOSCOPE", "other", "jwt"),
        ] {
            admin::add_client(&store, c, 3600, &rng, now).await.unwrap();
        }
        let api = NewClient {
            client_id: API.into(),
            secret: Some("api_secret".into()),
            permissions: vec!["introspection".into()],
            allow_weak_secret: true,
            ..Default::default()
        };
        admin::add_client(&store, api, 3600, &rng, now).await.unwrap();
        store.close().await;
        let running = tessera_server::start(settings, Deps::system()).await.unwrap();
        let pem = std::fs::read(running.dev_ca.as_ref().unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let url = format!("https://localhost:{}", running.addr.port());
        Self { running, _dir: dir, http, url }
    }

    fn guard(&self, mode: Mode) -> Guard {
        self.guard_with(mode, |c| c)
    }

    fn guard_with(&self, mode: Mode, f: impl FnOnce(GuardConfig) -> GuardConfig) -> Guard {
        // The issuer is derived from 127.0.0.1; the authority URL must be the issuer.
        let authority = self.running.issuer.clone();
        Guard::new(f(GuardConfig::new(Issuer::new(authority).unwrap(), Resource::new(API).unwrap(), mode)
            .with_http_client(self.http.clone())))
        .unwrap()
    }

    async fn token(&self, id: &str) -> String {
        let r = self
            .http
            .post(format!("{}/connect/token", self.url))
            .basic_auth(id, Some(format!("{id}_secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
    }

    async fn revoke(&self, id: &str, token: &str) {
        let r = self
            .http
            .post(format!("{}/connect/revoke", self.url))
            .basic_auth(id, Some(format!("{id}_secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

fn creds() -> ClientCredentials {
    ClientCredentials::new(ClientId::new(API).unwrap(), ClientSecret::new("api_secret").unwrap())
}

#[tokio::test]
async fn jwt_mode_protects_rest_and_grpc_with_the_real_server() {
    let a = Authority::start().await;
    let g = a.guard(Mode::Jwt);
    let (rest_url, grpc_url) = (rest(GuardLayer::new(g.clone())).await, grpc(GuardLayer::new(g)).await);
    let token = a.token("CC").await;
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 200);
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap(), "Hello GreeterClient (caller CC)");
    assert_eq!(get_rest(&rest_url, "/weatherforecast", None).await.0, 401);
    assert_eq!(say_hello(&grpc_url, None).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let noscope = a.token("NOSCOPE").await;
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&noscope)).await.0, 403);
    assert_eq!(say_hello(&grpc_url, Some(&noscope)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    // A reference token means nothing to a JWT-only guard.
    let reference = a.token("REF").await;
    assert_eq!(say_hello(&grpc_url, Some(&reference)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn introspection_mode_works_and_a_revoked_token_fails_once_its_cache_entry_expires() {
    let a = Authority::start().await;
    let clock = ManualClock::new(SystemClock.now());
    let g = a.guard_with(Mode::Introspection(creds()), |c| c.with_clock(Arc::new(clock.clone())));
    let (rest_url, grpc_url) = (rest(GuardLayer::new(g.clone())).await, grpc(GuardLayer::new(g)).await);
    let token = a.token("REF").await;
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap(), "Hello GreeterClient (caller REF)");
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 200);
    a.revoke("REF", &token).await;
    // Cached as active for at most max_cache_ttl (60 s by default) ...
    assert!(say_hello(&grpc_url, Some(&token)).await.is_ok());
    // ... and rejected once that entry expires.
    clock.advance(61);
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 401);
    // Our JWTs introspect too.
    let jwt = a.token("CC").await;
    assert!(say_hello(&grpc_url, Some(&jwt)).await.is_ok());
    let noscope = a.token("NOSCOPE").await;
    assert_eq!(say_hello(&grpc_url, Some(&noscope)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn auto_mode_takes_jwts_locally_and_reference_tokens_by_introspection() {
    let a = Authority::start().await;
    let g = a.guard(Mode::Auto(creds()));
    let grpc_url = grpc(GuardLayer::new(g)).await;
    assert_eq!(say_hello(&grpc_url, Some(&a.token("CC").await)).await.unwrap(), "Hello GreeterClient (caller CC)");
    assert_eq!(say_hello(&grpc_url, Some(&a.token("REF").await)).await.unwrap(), "Hello GreeterClient (caller REF)");
    assert_eq!(say_hello(&grpc_url, Some("not-a-token")).await.unwrap_err().code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn wrong_api_credentials_fail_closed_not_open() {
    let a = Authority::start().await;
    let g = a.guard(Mode::Introspection(ClientCredentials::new(
        ClientId::new(API).unwrap(),
        ClientSecret::new("wrong").unwrap(),
    )));
    let grpc_url = grpc(GuardLayer::new(g)).await;
    let token = a.token("REF").await;
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap_err().code(), tonic::Code::Unavailable);
    tokio::time::sleep(Duration::from_millis(1)).await;
}
