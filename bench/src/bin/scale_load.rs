//! The load driver of the cost curves (`bench/scale/run.py`): like `load`, closed loop with N
//! workers, but each request may come from a different client and present a different token,
//! drawn at random, so that a run touches many registry entries or many stored tokens rather
//! than one hot one.
//!
//! `scale_load --url URL [--concurrency N] [--seconds S] [--warmup S]
//!     [--basic ID:SECRET | --client-prefix P --clients N --secret SECRET]
//!     [--body FORM] [--tokens N [--token-offset K]] [--every S] [--stop-file PATH]`
//!
//! `--client-prefix P --clients N`: each request authenticates as client `P{i:07}`, i random
//! in 0..N (the ids `scale_seed clients` writes), all with SECRET.
//! `--tokens N`: the body is `token=T` (plus `&` and `--body` if given), T the reference token
//! number K + i ([`tessera_bench::scale_token`]), i random in 0..N.
//! `--every S`: also reports each S-second window (throughput, p50, p99, max) by the time the
//! requests in it ended. `--stop-file PATH`: ends early once PATH exists.
//!
//! Prints one JSON object: totals, p50/p99/max, and `windows` when asked; `start_unix` is
//! when measurement began.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

struct Opts {
    url: String,
    concurrency: usize,
    seconds: f64,
    warmup: f64,
    basic: Option<String>,
    client_prefix: Option<String>,
    clients: u64,
    secret: String,
    body: Option<String>,
    tokens: u64,
    token_offset: u64,
    every: f64,
    stop_file: Option<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        url: String::new(),
        concurrency: 64,
        seconds: 5.0,
        warmup: 1.0,
        basic: None,
        client_prefix: None,
        clients: 0,
        secret: String::new(),
        body: None,
        tokens: 0,
        token_offset: 0,
        every: 0.0,
        stop_file: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--url" => o.url = val(),
            "--concurrency" => o.concurrency = val().parse().expect("number"),
            "--seconds" => o.seconds = val().parse().expect("number"),
            "--warmup" => o.warmup = val().parse().expect("number"),
            "--basic" => {
                let v = val();
                let (id, secret) = v.split_once(':').expect("ID:SECRET");
                o.basic = Some(tessera_bench::basic(id, secret));
            }
            "--client-prefix" => o.client_prefix = Some(val()),
            "--clients" => o.clients = val().parse().expect("number"),
            "--secret" => o.secret = val(),
            "--body" => o.body = Some(val()),
            "--tokens" => o.tokens = val().parse().expect("number"),
            "--token-offset" => o.token_offset = val().parse().expect("number"),
            "--every" => o.every = val().parse().expect("number"),
            "--stop-file" => o.stop_file = Some(val()),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(o.url.starts_with("http://127.") || o.url.starts_with("http://localhost"), "loopback only");
    assert!(o.client_prefix.is_none() || o.clients > 0, "--clients N with --client-prefix");
    o
}

/// xorshift64*: enough randomness to spread requests, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

struct Sample {
    /// When the request ended, since measurement began.
    end: Duration,
    took: Duration,
    ok: bool,
}

#[tokio::main]
async fn main() {
    let o = Arc::new(parse());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .timeout(Duration::from_secs(30))
        .http1_only()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(path) = o.stop_file.clone() {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !std::path::Path::new(&path).exists() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    let began = Instant::now();
    let measure_from = began + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.seconds);
    let start_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() + o.warmup;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut tasks = Vec::new();
    for w in 0..o.concurrency {
        let (client, o, stop) = (client.clone(), o.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ ((w as u64 + 1) * 0x9E37_79B9_7F4A_7C15) | 1);
            let mut samples = Vec::new();
            // Every 2xx, warm-up included (to divide by the server's CPU time over the whole run).
            let mut all_ok = 0u64;
            loop {
                let start = Instant::now();
                if start >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut req = client.post(&o.url);
                if let Some(a) = &o.basic {
                    req = req.header(AUTHORIZATION, a);
                } else if let Some(p) = &o.client_prefix {
                    let id = format!("{p}{:07}", rng.below(o.clients));
                    req = req.header(AUTHORIZATION, tessera_bench::basic(&id, &o.secret));
                }
                let body = match (o.tokens, &o.body) {
                    (0, b) => b.clone().unwrap_or_default(),
                    (n, b) => {
                        let t = tessera_bench::scale_token(o.token_offset + rng.below(n));
                        match b {
                            Some(b) => format!("token={t}&{b}"),
                            None => format!("token={t}"),
                        }
                    }
                };
                req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
                let ok = match req.send().await {
                    Ok(r) => {
                        let s = r.status().is_success();
                        let text = r.bytes().await.unwrap_or_default();
                        // An introspection of a token we know is stored must say active.
                        s && (o.tokens == 0 || text.starts_with(b"{\"active\":true"))
                    }
                    Err(_) => false,
                };
                let done = Instant::now();
                if ok {
                    all_ok += 1;
                }
                // Counted by when it ended: a request held across the warm-up's end still counts.
                if done >= measure_from && start < end {
                    samples.push(Sample { end: done - measure_from, took: done - start, ok });
                }
            }
            (samples, all_ok)
        }));
    }
    let (mut all, mut ok_including_warmup) = (Vec::new(), 0);
    for t in tasks {
        let (samples, n) = t.await.unwrap();
        all.extend(samples);
        ok_including_warmup += n;
    }
    let measured = (Instant::now().min(end).saturating_duration_since(measure_from)).as_secs_f64().max(1e-3);
    let stats = |s: &[&Sample], secs: f64| {
        let mut lat: Vec<Duration> = s.iter().filter(|x| x.ok).map(|x| x.took).collect();
        lat.sort();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0)
        };
        let ok = lat.len();
        serde_json::json!({
            "ok": ok, "errors": s.len() - ok, "rps": (ok as f64 / secs).round(),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": lat.last().map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0),
        })
    };
    let refs: Vec<&Sample> = all.iter().collect();
    let mut out = stats(&refs, measured);
    out["seconds"] = serde_json::json!(measured);
    out["start_unix"] = serde_json::json!(start_unix);
    out["concurrency"] = serde_json::json!(o.concurrency);
    out["ok_including_warmup"] = serde_json::json!(ok_including_warmup);
    if o.every > 0.0 {
        let n = (measured / o.every).ceil() as usize;
        let windows: Vec<_> = (0..n)
            .map(|k| {
                let (lo, hi) = (o.every * k as f64, (o.every * (k + 1) as f64).min(measured));
                let w: Vec<&Sample> =
                    all.iter().filter(|s| s.end.as_secs_f64() >= lo && s.end.as_secs_f64() < hi).collect();
                let mut j = stats(&w, (hi - lo).max(1e-3));
                j["t"] = serde_json::json!(lo);
                j
            })
            .collect();
        out["windows"] = serde_json::json!(windows);
    }
    println!("{out}");
}
