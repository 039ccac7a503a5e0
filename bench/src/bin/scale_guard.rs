//! Revocation-set size against the guard's cost (cost curves, `bench/scale/run.py`): a guard
//! follows a revocation feed holding N revoked JWT ids (other tokens than the one presented,
//! so every request passes the check and pays the lookup), as `guard_revocation_set` in
//! `benches/guard.rs` does for 100k, at any N.
//!
//! `scale_guard --n N [--seconds S] [--reps R]`
//!
//! Prints one JSON object: how long the guard took to catch up on the feed, its resident
//! memory before and after (the set's size), and the per-request cost of validating a cached
//! JWT through the guard layer (R runs of S seconds each, ns per request).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::{Request, Response};
use serde_json::json;
use tessera_guard::{ClientCredentials, Guard, GuardConfig, GuardLayer, Mode, Policy};
use tessera_jose::SigningKey;
use tessera_types::rfc7517::JwkSet;
use tessera_types::rfc8417::{PollRequest, PollResponse, RevocationEvent, SetClaims, TYP};
use tessera_types::{ClientId, ClientSecret, Issuer, Jti, Resource, ScopeName, SigningAlg, UnixTime};
use tower::{Layer, ServiceExt as _};

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let opts = tessera_bench::named_args();
    let n: usize = opts["n"].parse().unwrap();
    let seconds: f64 = opts.get("seconds").map_or(1.0, |s| s.parse().unwrap());
    let reps: usize = opts.get("reps").map_or(3, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let key = Arc::new(key);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    // The SETs, signed before the guard starts (on every core), as Tessera would serve them.
    let signing = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let sets: Vec<String> = std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let (key, url) = (key.clone(), url.clone());
                s.spawn(move || {
                    (1..=n)
                        .filter(|seq| seq % threads == t)
                        .map(|seq| {
                            let event = RevocationEvent::TokenRevoked {
                                jti: Jti::new(format!("revoked-{seq}")).unwrap(),
                                exp: UnixTime(now + 3600),
                                client_id: ClientId::new("CC").unwrap(),
                                token_hash: None,
                            };
                            let mut map = serde_json::Map::new();
                            map.insert(event.event_type().into(), event.payload());
                            let claims = SetClaims {
                                iss: url.clone(),
                                iat: UnixTime(now),
                                jti: seq.to_string(),
                                aud: "api1".into(),
                                toe: UnixTime(now),
                                events: map,
                            };
                            (seq, key.sign_jwt(&key.kid, Some(TYP), &claims).unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, String)> = parts.into_iter().flat_map(|p| p.join().unwrap()).collect();
        all.sort_unstable_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, s)| s).collect()
    });
    let signing_s = signing.elapsed().as_secs_f64();
    let sets = Arc::new(sets);
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
        "revocation_events_endpoint": format!("{url}/connect/events")});
    let jwks = JwkSet { keys: vec![key.public_jwk()] };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .route("/jwks", get(move || async move { axum::Json(jwks) }))
        .route(
            "/connect/events",
            axum::routing::post(move |body: String| {
                let sets = sets.clone();
                async move {
                    let poll: PollRequest = serde_json::from_str(&body).unwrap();
                    let after = poll.ack.iter().map(|a| a.parse::<usize>().unwrap()).max().unwrap_or(0);
                    let end = (after + poll.max_events.unwrap_or(500) as usize).min(sets.len());
                    if after >= end && after > 0 {
                        // Nothing new: hold the poll as Tessera does.
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                    let page = (after..end).map(|i| ((i + 1).to_string(), sets[i].clone())).collect();
                    axum::Json(PollResponse { sets: page, more_available: end < sets.len() })
                }
            }),
        );
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });

    let creds = ClientCredentials::new(ClientId::new("api1").unwrap(), ClientSecret::new("api1_secret").unwrap());
    let mut cfg = GuardConfig::new(Issuer::new(&url).unwrap(), Resource::new("api1").unwrap(), Mode::Jwt)
        .allow_http()
        .follow_revocations(creds);
    // Room for every revocation (the default keeps 200 000 and counts the feed stale beyond).
    let feed = cfg.revocations.as_mut().unwrap();
    feed.capacity = feed.capacity.max(n);
    let guard = Guard::new(cfg).unwrap();
    let rss_before = rss_kib("VmRSS:");
    let catching_up = Instant::now();
    rt.block_on(async {
        guard.start_feed();
        let mut feed = guard.watch_feed().unwrap();
        feed.wait_for(|s| s.last_success.is_some() && s.revoked_tokens == n).await.unwrap();
    });
    let catch_up_s = catching_up.elapsed().as_secs_f64();
    let rss_after = rss_kib("VmRSS:");
    let inner = tower::service_fn(|_req: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let svc =
        GuardLayer::new(guard).require(Policy::all_of([ScopeName::new("dataEventRecords").unwrap()])).layer(inner);
    let token = key
        .sign_access_token(&json!({"iss": url, "sub": "CC", "client_id": "CC", "aud": "api1",
            "scope": "dataEventRecords", "iat": now, "nbf": now, "exp": now + 3600, "jti": "not-revoked"}))
        .unwrap();
    let header = format!("Bearer {token}");
    let ns_per_request: Vec<f64> = rt.block_on(async {
        let call = || {
            let svc = svc.clone();
            let req = Request::get("/x").header("authorization", header.as_str()).body(String::new()).unwrap();
            async move { assert_eq!(svc.oneshot(req).await.unwrap().status(), 200) }
        };
        // Warm up: the first call validates the JWT and caches it.
        for _ in 0..10_000 {
            call().await;
        }
        let mut out = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let mut k = 0u64;
            while t.elapsed().as_secs_f64() < seconds {
                for _ in 0..1000 {
                    call().await;
                }
                k += 1000;
            }
            out.push(t.elapsed().as_nanos() as f64 / k as f64);
        }
        out
    });
    println!(
        "{}",
        json!({
            "n": n, "signing_s": signing_s, "catch_up_s": catch_up_s,
            "rss_before_kib": rss_before, "rss_after_kib": rss_after, "hwm_kib": rss_kib("VmHWM:"),
            "ns_per_request": ns_per_request,
        })
    );
    std::process::exit(0);
}
