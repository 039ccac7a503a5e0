//! The two protected APIs, over HTTPS (rustls, HTTP/2 and HTTP/1.1).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tessera_greet::greeter_server::{Greeter, GreeterServer};
use tessera_greet::{HelloReply, HelloRequest};
use tessera_guard::{Guard, GuardLayer, Policy, Principal};
use tessera_types::ScopeName;
use tonic::{Request, Response, Status};

/// A demo API on its own port, serving until [`Service::stop`].
pub struct Service {
    #[allow(missing_docs)]
    pub addr: SocketAddr,
    listener: tessera_server::transport::Listener,
}

impl Service {
    /// The base URL, `https://localhost:PORT` (the development certificate names localhost).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Stops accepting, lets requests in flight finish, then returns.
    pub async fn stop(self) {
        self.listener.shutdown(Duration::from_secs(5)).await;
    }
}

/// The Greeter of the first seed article.
#[derive(Debug, Default)]
pub struct GreeterService;

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        if let Some(p) = request.extensions().get::<Principal>() {
            tracing::info!(client_id = ?p.client_id, "SayHello");
        }
        Ok(Response::new(HelloReply { message: format!("Hello {}", request.into_inner().name) }))
    }
}

async fn serve(app: Router, listen: SocketAddr, cert: &Path, key: &Path) -> std::io::Result<Service> {
    let config = tessera_server::tls::server_config(cert, key).map_err(std::io::Error::other)?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // The same connection and request bounds as the authorization server, except shedding on
    // lag (see [`crate::scenario::DEMO_MAX_LAG`]).
    let limits = tessera_server::transport::Limits {
        max_scheduling_delay: crate::scenario::DEMO_MAX_LAG,
        ..tessera_server::limits::Limits::default().transport
    };
    let listener =
        tessera_server::transport::serve(tokio::net::TcpListener::from_std(listener)?, Some(config), app, limits)?;
    Ok(Service { addr, listener })
}

/// Hands the guard the certificate the client presented in the TLS handshake (the listener
/// asks for one, optionally), so tokens bound to it (RFC 8705 §3) pass over that connection
/// and nowhere else.
async fn client_certificate(mut req: axum::extract::Request) -> axum::extract::Request {
    if let Some(c) = req.extensions().get::<tessera_server::certificate::ClientCertificate>() {
        let presented = tessera_guard::ClientCertificate::from_der(c.leaf_der());
        req.extensions_mut().insert(presented);
    }
    req
}

/// A scope the demo's routes require, written here as a literal.
fn scope(name: &'static str) -> ScopeName {
    ScopeName::new(name).expect("the demo's scope literals are NQCHAR (RFC 6749 section 3.3)")
}

/// The gRPC Greeter over TLS (HTTP/2), `SayHello` requiring scope `dataEventRecords`, and
/// `GET /` answering "GRPC service running..." to anyone, as in the seed.
pub async fn greeter(listen: SocketAddr, cert: &Path, key: &Path, guard: Guard) -> std::io::Result<Service> {
    let layer =
        GuardLayer::new(guard).public("/").route(tessera_greet::SAY_HELLO, Policy::all_of([scope("dataEventRecords")]));
    let app = tonic::service::Routes::new(GreeterServer::new(GreeterService))
        .into_axum_router()
        .route("/", get(|| async { "GRPC service running..." }))
        .layer(layer)
        .layer(axum::middleware::map_request(client_certificate));
    serve(app, listen, cert, key).await
}

/// The REST API of the IdentityServer4 seed: `GET /weatherforecast` for tokens whose audience
/// is the guard's (`api1`) and whose scope includes `api1`.
pub async fn weather_api(listen: SocketAddr, cert: &Path, key: &Path, guard: Guard) -> std::io::Result<Service> {
    async fn forecast(p: Principal) -> axum::Json<serde_json::Value> {
        let days: Vec<serde_json::Value> = ["Freezing", "Mild", "Warm"]
            .iter()
            .enumerate()
            .map(|(i, s)| serde_json::json!({"day": i + 1, "temperatureC": 5 + 10 * i as i32, "summary": s}))
            .collect();
        axum::Json(serde_json::json!({"caller": p.client_id, "forecast": days}))
    }
    let layer = GuardLayer::new(guard).public("/").route("/weatherforecast", Policy::all_of([scope("api1")]));
    let app = Router::new()
        .route("/weatherforecast", get(forecast))
        .route("/", get(|| async { "REST API running..." }))
        .layer(layer)
        .layer(axum::middleware::map_request(client_certificate));
    serve(app, listen, cert, key).await
}
