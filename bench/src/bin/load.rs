//! A bounded load driver: N concurrent workers POST (or GET) one request shape for a fixed
//! time against a server on this machine, then print throughput and latency as JSON.
//!
//! `load --url URL [--basic ID:SECRET] [--body FORM] [--get] [--concurrency N] [--seconds S]
//!       [--ca PEM] [--http2]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

struct Opts {
    url: String,
    auth: Option<String>,
    body: Option<String>,
    get: bool,
    concurrency: usize,
    seconds: u64,
    ca: Option<String>,
    http2: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        url: String::new(),
        auth: None,
        body: None,
        get: false,
        concurrency: 16,
        seconds: 10,
        ca: None,
        http2: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--url" => o.url = val(),
            "--basic" => {
                let v = val();
                let (id, secret) = v.split_once(':').expect("ID:SECRET");
                o.auth = Some(tessera_bench::basic(id, secret));
            }
            "--body" => o.body = Some(val()),
            "--get" => o.get = true,
            "--concurrency" => o.concurrency = val().parse().expect("number"),
            "--seconds" => o.seconds = val().parse::<u64>().expect("number").clamp(1, 600),
            "--ca" => o.ca = Some(val()),
            "--http2" => o.http2 = true,
            other => panic!("unknown option {other}"),
        }
    }
    assert!(!o.url.is_empty(), "--url is required");
    let host = o.url.split("://").nth(1).unwrap_or("").split(['/', ':']).next().unwrap_or("");
    // Load goes to this machine only.
    assert!(
        matches!(host, "localhost" | "127.0.0.1" | "[" | "") || host.starts_with("127."),
        "refusing non-loopback target {host}"
    );
    o
}

#[tokio::main]
async fn main() {
    let o = Arc::new(parse());
    let mut builder = reqwest::Client::builder().pool_max_idle_per_host(o.concurrency).timeout(Duration::from_secs(10));
    if let Some(ca) = &o.ca {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    }
    builder = if o.http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
    if o.http2 && o.url.starts_with("https") {
        // ALPN negotiates h2 over TLS; prior knowledge is only for cleartext.
        builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = &o.ca {
            builder =
                builder.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
        }
    }
    let client = builder.build().unwrap();
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (client, o) = (client.clone(), o.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut bad, mut all) = (0u64, 0u64, 0u64);
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let mut req = if o.get { client.get(&o.url) } else { client.post(&o.url) };
                if let Some(a) = &o.auth {
                    req = req.header(AUTHORIZATION, a);
                }
                if let Some(b) = &o.body {
                    req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(b.clone());
                }
                let good = match req.send().await {
                    Ok(r) => {
                        let s = r.status().is_success();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => false,
                };
                all += u64::from(good);
                if start < warmup {
                    continue;
                }
                lat.push(start.elapsed());
                if good { ok += 1 } else { bad += 1 }
            }
            (lat, ok, bad, all)
        }));
    }
    let (mut lat, mut ok, mut bad, mut all) = (Vec::new(), 0, 0, 0);
    for t in tasks {
        let (l, o2, b, a) = t.await.unwrap();
        lat.extend(l);
        ok += o2;
        bad += b;
        all += a;
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "url": o.url, "concurrency": o.concurrency, "seconds": o.seconds,
            "ok": ok, "errors": bad, "ok_including_warmup": all, "rps": (ok as f64 / o.seconds as f64).round(),
            "p50_ms": (pct(0.50) * 100.0).round() / 100.0, "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
        })
    );
}
