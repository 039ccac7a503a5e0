//! Guarded versus unguarded REST, for the ratio (the HTTP twin of `grpc_bench`).
//!
//! `rest_bench --listen ADDR [--authority URL --audience AUD [--ca PEM] [--allow-http]]` serves
//! `GET /hello` over plain HTTP/1.1 and HTTP/2 (axum); with an authority, behind tessera-guard's
//! tower layer (a valid access token for AUD required, JWT mode: validated once, then from the
//! guard's cache). Drive it with `load --get --bearer TOKEN`.

use axum::Router;
use axum::routing::get;
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode, Policy};
use tessera_types::{Issuer, Resource};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").expect("--listen");
    let app = Router::new().route("/hello", get(|| async { "Hello bench" }));
    let app = match arg(&args, "--authority") {
        Some(authority) => {
            let mut http = reqwest::Client::builder();
            if let Some(ca) = arg(&args, "--ca") {
                let pem = std::fs::read(ca).unwrap();
                http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
            }
            let audience = arg(&args, "--audience").unwrap_or_else(|| "api1".into());
            let mut cfg =
                GuardConfig::new(Issuer::new(authority).unwrap(), Resource::new(audience).unwrap(), Mode::Jwt)
                    .with_http_client(http.build().unwrap());
            cfg.calls.allow_insecure_http = args.iter().any(|a| a == "--allow-http");
            let guard = Guard::new(cfg).unwrap();
            eprintln!("/hello guarded");
            app.layer(GuardLayer::new(guard).route("/hello", Policy::Authenticated))
        }
        None => app,
    };
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
