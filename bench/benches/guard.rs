//! Validating a bearer token through the guard layer, in process: a cached token (the common
//! case: a client reuses its token until it expires) and a token seen for the first time
//! (signature verification with a cached key).

use std::convert::Infallible;

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use serde_json::json;
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode, Policy};
use tessera_jose::SigningKey;
use tessera_types::SigningAlg;
use tessera_types::rfc7517::JwkSet;
use tessera_types::{Issuer, Resource, ScopeName};
use tower::{Layer, ServiceExt as _};

fn guard_layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
        let jwks = JwkSet { keys: vec![key.public_jwk()] };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route("/jwks", get(move || async move { axum::Json(jwks) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let token = |jti: usize| {
        key.sign_access_token(&json!({"iss": url, "sub": "CC", "client_id": "CC", "aud": "api1",
            "scope": "dataEventRecords", "iat": now, "nbf": now, "exp": now + 3600, "jti": jti.to_string()}))
            .unwrap()
    };
    let mut cfg = GuardConfig::new(Issuer::new(&url).unwrap(), Resource::new("api1").unwrap(), Mode::Jwt).allow_http();
    cfg.cache_capacity = 100_000;
    let layer = GuardLayer::new(Guard::new(cfg).unwrap())
        .require(Policy::all_of([ScopeName::new("dataEventRecords").unwrap()]));
    let inner = tower::service_fn(|_req: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let svc = layer.layer(inner);
    let call = |t: String| {
        let svc = svc.clone();
        async move {
            let req = Request::get("/x").header("authorization", format!("Bearer {t}")).body(String::new()).unwrap();
            let r = svc.oneshot(req).await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let cached = token(0);
    rt.block_on(call(cached.clone()));
    let mut group = c.benchmark_group("guard");
    group.bench_function("cached_jwt", |b| b.to_async(&rt).iter(|| call(cached.clone())));
    // No reuse: every call verifies the signature (with the cached, parsed key).
    let mut cfg = GuardConfig::new(Issuer::new(&url).unwrap(), Resource::new("api1").unwrap(), Mode::Jwt).allow_http();
    cfg.max_cache_ttl = std::time::Duration::ZERO;
    let uncached = GuardLayer::new(Guard::new(cfg).unwrap())
        .require(Policy::all_of([ScopeName::new("dataEventRecords").unwrap()]))
        .layer(inner);
    let t = token(1);
    group.bench_function("uncached_jwt_es256", |b| {
        b.to_async(&rt).iter(|| {
            let (svc, t) = (uncached.clone(), t.clone());
            async move {
                let req =
                    Request::get("/x").header("authorization", format!("Bearer {t}")).body(String::new()).unwrap();
                assert_eq!(svc.oneshot(req).await.unwrap().status(), 200);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, guard_layer);
criterion_main!(benches);
