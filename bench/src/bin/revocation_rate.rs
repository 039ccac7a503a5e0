//! Feed throughput (issue 12): how many revocations — each a durable row and a feed event in
//! one transaction — one instance records per second, while a feed reader drains them. Issues
//! N JWTs first, then revokes them with C concurrent workers; prints revocations/s and how
//! many events the reader saw.
//!
//! `revocation_rate --issuer URL --ca PEM --client ID:SECRET --scope S --reader ID:SECRET
//!      [--n N] [--concurrency C]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::header::CONTENT_TYPE;

#[tokio::main]
async fn main() {
    let opts = tessera_bench::named_args();
    let issuer = opts["issuer"].clone();
    let (id, secret) = opts["client"].split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
    let (reader, reader_secret) = opts["reader"].split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
    let scope = opts["scope"].clone();
    let n: usize = opts.get("n").map_or(5000, |v| v.parse().unwrap());
    let c: usize = opts.get("concurrency").map_or(32, |v| v.parse().unwrap());
    let pem = std::fs::read(&opts["ca"]).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .pool_max_idle_per_host(c)
        .build()
        .unwrap();
    let post = |path: &str, body: String| {
        http.post(format!("{issuer}{path}"))
            .basic_auth(&id, Some(&secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    };
    let mut tokens = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(c) {
        let batch = chunk.iter().map(|_| {
            let req = post("/connect/token", format!("grant_type=client_credentials&scope={scope}"));
            async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
        });
        for t in futures_util::future::join_all(batch).await {
            tokens.push(t["access_token"].as_str().expect("a token").to_owned());
        }
    }
    // The reader drains the feed meanwhile, as an API's guard would.
    let seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let drain = {
        let (http, seen, done) = (http.clone(), seen.clone(), done.clone());
        let url = format!("{issuer}/connect/events");
        tokio::spawn(async move {
            let mut ack: Option<String> = None;
            while !done.load(Ordering::Relaxed) || seen.load(Ordering::Relaxed) < n {
                let body = serde_json::json!({"ack": ack.iter().collect::<Vec<_>>(), "maxEvents": 500});
                let r: serde_json::Value = http
                    .post(&url)
                    .basic_auth(&reader, Some(&reader_secret))
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let sets = r["sets"].as_object().unwrap();
                seen.fetch_add(sets.len(), Ordering::Relaxed);
                if let Some(last) = sets.keys().filter_map(|k| k.parse::<i64>().ok()).max() {
                    ack = Some(last.to_string());
                }
                if sets.is_empty() && done.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let workers: Vec<_> = (0..c)
        .map(|_| {
            let (next, tokens) = (next.clone(), tokens.clone());
            let req = post("/connect/revoke", String::new());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = tokens.get(i) else { break };
                    let r = req.try_clone().unwrap().body(format!("token={t}")).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drain).await;
    println!(
        "{{\"revocations\":{n},\"seconds\":{:.2},\"revocations_per_s\":{:.0},\"events_read\":{}}}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        seen.load(Ordering::Relaxed)
    );
}
