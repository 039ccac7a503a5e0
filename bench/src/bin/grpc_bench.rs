//! Guarded versus unguarded gRPC, for the ratio.
//!
//! `grpc_bench serve --listen ADDR [--authority URL --ca PEM --audience AUD --allow-http
//!     [--feed ID:SECRET [--feed-expect N]]]` (`--feed`: the guard follows the revocation feed
//!     as ID, and serves once it holds N revoked tokens)
//! serves the Greeter (SayHello requires `dataEventRecords` when an authority is given;
//! `--allow-http` accepts a plain-http authority, as the harness runs one);
//! `grpc_bench load --url URL [--token T] --concurrency N --seconds S` calls SayHello.

use std::time::{Duration, Instant};

use tessera_greet::greeter_server::{Greeter, GreeterServer};
use tessera_greet::{HelloReply, HelloRequest};
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode, Policy};
use tessera_types::{Issuer, Resource};
use tonic::{Request, Response, Status};

struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(&self, r: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply { message: format!("Hello {}", r.into_inner().name) }))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let listen = arg(&args, "--listen").expect("--listen");
            let incoming = tonic::transport::server::TcpIncoming::bind(listen.parse().unwrap()).unwrap();
            let svc = GreeterServer::new(Hello);
            match arg(&args, "--authority") {
                Some(authority) => {
                    let mut http = reqwest::Client::builder();
                    if let Some(ca) = arg(&args, "--ca") {
                        let pem = std::fs::read(ca).unwrap();
                        http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
                    }
                    let http = http.build().unwrap();
                    let audience = arg(&args, "--audience").unwrap_or_else(|| "api1".into());
                    let mut cfg =
                        GuardConfig::new(Issuer::new(authority).unwrap(), Resource::new(audience).unwrap(), Mode::Jwt)
                            .with_http_client(http);
                    cfg.calls.allow_insecure_http = args.iter().any(|a| a == "--allow-http");
                    if let Some(feed) = arg(&args, "--feed") {
                        let (id, secret) = feed.split_once(':').expect("--feed ID:SECRET");
                        let creds = tessera_guard::ClientCredentials::new(
                            tessera_types::ClientId::new(id).unwrap(),
                            tessera_types::ClientSecret::new(secret).unwrap(),
                        );
                        cfg = cfg.follow_revocations(creds);
                    }
                    let guard = Guard::new(cfg).unwrap();
                    if guard.config().revocations.is_some() {
                        // Caught up before the load starts: the run measures the steady state.
                        let expect: usize = arg(&args, "--feed-expect").map_or(0, |n| n.parse().unwrap());
                        guard.start_feed();
                        let started = std::time::Instant::now();
                        loop {
                            let s = guard.feed_status().expect("the feed is followed");
                            if s.last_success.is_some() && s.revoked_tokens >= expect {
                                eprintln!("feed caught up in {:?}: {s:?}", started.elapsed());
                                break;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                    }
                    let layer = GuardLayer::new(guard).route(tessera_greet::SAY_HELLO, Policy::Authenticated);
                    tonic::transport::Server::builder()
                        .layer(layer)
                        .add_service(svc)
                        .serve_with_incoming(incoming)
                        .await
                        .unwrap();
                }
                None => {
                    tonic::transport::Server::builder().add_service(svc).serve_with_incoming(incoming).await.unwrap()
                }
            }
        }
        Some("load") => {
            let url = arg(&args, "--url").expect("--url");
            assert!(url.starts_with("http://127.") || url.starts_with("http://localhost"), "loopback only");
            let token = arg(&args, "--token");
            let concurrency: usize = arg(&args, "--concurrency").map(|c| c.parse().unwrap()).unwrap_or(16);
            let seconds: u64 = arg(&args, "--seconds").map(|c| c.parse::<u64>().unwrap().clamp(1, 600)).unwrap_or(10);
            let channel = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await.unwrap();
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let mut client = tessera_greet::greeter_client::GreeterClient::new(channel.clone());
                let token = token.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut ok, mut err, mut lat) = (0u64, 0u64, Vec::new());
                    while Instant::now() < end {
                        let start = Instant::now();
                        let mut req = Request::new(HelloRequest { name: "bench".into() });
                        if let Some(t) = &token {
                            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
                        }
                        match client.say_hello(req).await {
                            Ok(_) => ok += 1,
                            Err(_) => err += 1,
                        }
                        lat.push(start.elapsed());
                    }
                    (ok, err, lat)
                }));
            }
            let (mut ok, mut err, mut lat) = (0, 0, Vec::new());
            for t in tasks {
                let (o, e, l) = t.await.unwrap();
                ok += o;
                err += e;
                lat.extend(l);
            }
            lat.sort();
            let p = |q: f64| lat.get((lat.len() as f64 * q) as usize).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0);
            println!(
                "{}",
                serde_json::json!({"url": url, "concurrency": concurrency, "ok": ok, "errors": err,
                    "rps": (ok as f64 / seconds as f64).round(), "p50_ms": (p(0.5) * 100.0).round() / 100.0, "p99_ms": (p(0.99) * 100.0).round() / 100.0})
            );
        }
        _ => eprintln!("usage: grpc_bench serve|load ..."),
    }
}
