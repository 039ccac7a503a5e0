//! What the client adds per call: a cached token from the shared source, and the bearer layer
//! around a service (in process, so only the client's own cost is measured).

use std::convert::Infallible;

use axum::Router;
use axum::routing::{get, post};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use serde_json::json;
use tessera_client::{BearerLayer, ClientConfig, TokenSource};
use tessera_types::{ClientId, ClientSecret, Issuer};
use tower::{Layer, ServiceExt as _};

fn client(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let source = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let discovery = json!({"issuer": url, "token_endpoint": format!("{url}/token")});
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route(
                "/token",
                post(|| async {
                    axum::Json(json!({"access_token": "x".repeat(600), "token_type": "Bearer", "expires_in": 3600}))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let source = TokenSource::new(
            ClientConfig::new(
                Issuer::new(url).unwrap(),
                ClientId::new("bench").unwrap(),
                ClientSecret::new("secret").unwrap(),
            )
            .allow_http(),
        );
        source.token().await.unwrap();
        source
    });
    let mut group = c.benchmark_group("client");
    group.bench_function("cached_token", |b| b.to_async(&rt).iter(|| async { source.token().await.unwrap() }));
    let bare = tower::service_fn(|_r: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let layered = BearerLayer::new(source.clone()).layer(bare);
    group.bench_function("call_without_layer", |b| {
        b.to_async(&rt).iter(|| async { bare.oneshot(Request::new(String::new())).await.unwrap() })
    });
    group.bench_function("call_with_bearer_layer", |b| {
        b.to_async(&rt).iter(|| async { layered.clone().oneshot(Request::new(String::new())).await.unwrap() })
    });
    group.finish();
    assert_eq!(source.requests_sent(), 1, "single flight: one token request in all these calls");
}

criterion_group!(benches, client);
criterion_main!(benches);
