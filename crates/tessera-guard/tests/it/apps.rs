//! The two kinds of app the guard protects: an axum REST API and a tonic gRPC Greeter, each
//! served on 127.0.0.1:0.

use axum::Router;
use axum::routing::get;
use tessera_greet::greeter_server::{Greeter, GreeterServer};
use tessera_greet::{HelloReply, HelloRequest};
use tessera_guard::{GuardLayer, Principal};
use tonic::{Request, Response, Status};

/// `GET /weatherforecast` (scope `api.read`), `GET /whoami` (any token), `GET /` (public).
pub async fn rest(layer: GuardLayer) -> String {
    async fn forecast(p: Principal) -> String {
        format!("sunny for {}", p.client_id.as_ref().map(|c| c.as_str()).unwrap_or_default())
    }
    async fn whoami(p: Principal) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"client_id": p.client_id, "scopes": p.scopes, "aud": p.audience}))
    }
    let app = Router::new()
        .route("/weatherforecast", get(forecast))
        .route("/whoami", get(whoami))
        .route("/", get(|| async { "REST API running..." }))
        .layer(layer.public("/").route(
            "/weatherforecast",
            tessera_guard::Policy::all_of([tessera_types::ScopeName::new("dataEventRecords").unwrap()]),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[derive(Default)]
pub struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let caller = request
            .extensions()
            .get::<Principal>()
            .and_then(|p| p.client_id.as_ref().map(|c| c.to_string()))
            .unwrap_or_default();
        Ok(Response::new(HelloReply { message: format!("Hello {} (caller {caller})", request.into_inner().name) }))
    }
}

/// The Greeter behind the layer, `SayHello` requiring `dataEventRecords`; plain HTTP/2.
pub async fn grpc(layer: GuardLayer) -> String {
    grpc_with(layer, tessera_guard::Policy::all_of([tessera_types::ScopeName::new("dataEventRecords").unwrap()])).await
}

/// The Greeter behind the layer, `SayHello` requiring `policy`; plain HTTP/2.
pub async fn grpc_with(layer: GuardLayer, policy: tessera_guard::Policy) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let layer = layer.route(tessera_greet::SAY_HELLO, policy);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(GreeterServer::new(Hello))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap()
    });
    url
}

/// Calls SayHello with an optional bearer token.
pub async fn say_hello(url: &str, token: Option<&str>) -> Result<String, Status> {
    let mut client = tessera_greet::greeter_client::GreeterClient::connect(url.to_string()).await.unwrap();
    let mut req = Request::new(HelloRequest { name: "GreeterClient".into() });
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    client.say_hello(req).await.map(|r| r.into_inner().message)
}

/// GETs `path` with an optional bearer token: (status, WWW-Authenticate, body).
pub async fn get_rest(url: &str, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(format!("{url}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, challenge, r.text().await.unwrap())
}
