//! Guarded versus unguarded gRPC, for the ratio.
//!
//! `grpc_bench serve --listen ADDR [--authority URL --ca PEM --audience AUD --allow-http
//!     [--feed ID:SECRET [--feed-expect N]]]` (`--feed`: the guard follows the revocation feed
//!     as ID, and serves once it holds N revoked tokens)
//! serves the Greeter (SayHello requires `dataEventRecords` when an authority is given;
//! `--allow-http` accepts a plain-http authority, as the harness runs one);
//! `grpc_bench load --url URL [--token T] --concurrency N --seconds S` calls SayHello;
//! `--dpop KEY_PEM --authority URL --ca PEM --client ID:SECRET [--proofs N]` instead gets a
//! token bound to the key from the authority and sends it with a proof per call (N proofs, each
//! with its own `jti`, signed before the run so that the driver's signing does not limit it).

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
                    // Every proof of a run stays in the replay cache for its window (60 s).
                    cfg.dpop_replay_capacity = 5_000_000;
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
                    eprintln!("Greeter guarded");
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
            // With --dpop: (token, proofs) — a bound token and the proofs to send it with.
            let dpop = match arg(&args, "--dpop") {
                Some(key) => Some(dpop_material(&args, &key, &url).await),
                None => None,
            };
            let token = dpop.as_ref().map(|(t, _)| t.clone()).or(token);
            let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
            let proofs = std::sync::Arc::new(dpop.map(|(_, p)| p).unwrap_or_default());
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let mut client = tessera_greet::greeter_client::GreeterClient::new(channel.clone());
                let token = token.clone();
                let (proofs, next) = (proofs.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let (mut ok, mut err, mut lat) = (0u64, 0u64, Vec::new());
                    while Instant::now() < end {
                        let start = Instant::now();
                        let mut req = Request::new(HelloRequest { name: "bench".into() });
                        if let Some(t) = &token {
                            req.metadata_mut().insert("authorization", format!("{scheme} {t}").parse().unwrap());
                        }
                        if !proofs.is_empty() {
                            let Some(p) = proofs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) else {
                                panic!("out of proofs: pass a larger --proofs");
                            };
                            req.metadata_mut().insert("dpop", p.parse().unwrap());
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

/// A token bound to the key at `key_pem` (asked for with a proof) and `--proofs` proofs for
/// `POST {url with https}/greet.Greeter/SayHello`, each with its own `jti`.
async fn dpop_material(args: &[String], key_pem: &str, url: &str) -> (String, Vec<String>) {
    let key = tessera_client::DpopKey::from_pem(&std::fs::read_to_string(key_pem).unwrap()).unwrap();
    let authority = arg(args, "--authority").expect("--authority with --dpop");
    let (id, secret) = arg(args, "--client")
        .expect("--client ID:SECRET with --dpop")
        .split_once(':')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let mut http = reqwest::Client::builder();
    if let Some(ca) = arg(args, "--ca") {
        http = http.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    }
    let cfg = tessera_client::ClientConfig::new(
        Issuer::new(authority).unwrap(),
        tessera_types::ClientId::new(id).unwrap(),
        tessera_types::ClientSecret::new(secret).unwrap(),
    )
    .with_http_client(http.build().unwrap())
    .with_dpop(key.clone());
    let token = tessera_client::TokenSource::new(cfg).token().await.unwrap();
    assert!(token.dpop_bound, "the authority did not bind the token");
    let token = token.access_token.expose().to_owned();
    let htu = format!("{}{}", url.replacen("http://", "https://", 1), tessera_greet::SAY_HELLO);
    let n: usize = arg(args, "--proofs").map_or(300_000, |n| n.parse().unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let proofs = (0..n).map(|_| key.proof("POST", &htu, now, Some(&token)).unwrap()).collect();
    (token, proofs)
}
