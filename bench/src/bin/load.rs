//! A bounded load driver: N concurrent workers POST (or GET) one request shape for a fixed
//! time against a server on this machine, then print throughput and latency as JSON.
//!
//! `load --url URL [--basic ID:SECRET] [--body FORM] [--get] [--concurrency N] [--seconds S]
//!       [--ca PEM] [--http2] [--rate PER_SECOND [--sources K] [--max-in-flight M]]
//!       [--assertion KEY_PEM:CLIENT_ID:AUDIENCE [--write-jwks FILE]] [--identity CERT_AND_KEY_PEM]`
//!
//! With `--dpop KEY_PEM` every request carries a fresh DPoP proof (RFC 9449) by that key.
//!
//! With `--bearer TOKEN` every request carries `Authorization: Bearer TOKEN` (a resource
//! server's load, with `--get`).
//!
//! With `--new-connection` every request goes on a fresh connection (`Connection: close`, no
//! idle pool): over TLS each request pays a full handshake. The output's `connections` counts
//! the connections the driver opened, so a run proves that none was reused.
//!
//! With `--spin` the driver never sleeps between answers: it polls its sockets instead of
//! waiting in epoll. On loopback the core that sends an answer also runs the receiver's TCP
//! input and wakes the receiver; when the driver sleeps, that wakeup is an inter-processor
//! interrupt (through the hypervisor in a VM), charged to the server's core, though a client
//! on another machine would never cost the server that. Closed-loop runs only.
//!
//! With `--identity` the driver presents that client certificate in every TLS handshake
//! (mutual TLS, RFC 8705); on kept-alive connections that is once per connection.
//!
//! With `--assertion` every request carries a fresh RFC 7523 client assertion (private_key_jwt)
//! signed with the key, `iss` = `sub` = CLIENT_ID, `aud` = AUDIENCE, a unique `jti`: the driver
//! pays the signing, the server one verification and one replay-cache insert. `--write-jwks`
//! writes the key's public JWK Set (to register the client) and exits.
//!
//! With `--rate` the load is open-loop: requests start at a fixed rate whether or not earlier
//! ones have been answered (what an overload test needs), over connections from K loopback
//! source addresses (127.0.0.2, ...), at most M in flight (beyond that a request is counted as
//! `not_sent`). The output then counts answers by status and gives p50/p99 of the 2xx ones.
//! Closed-loop output counts `errors` (non-2xx answers and failed connections) and gives them by
//! status in `failures`.

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
    rate: Option<f64>,
    sources: u8,
    max_in_flight: usize,
    assertion: Option<Assertion>,
    identity: Option<reqwest::Identity>,
    dpop: Option<Dpop>,
    new_connection: bool,
    spin: bool,
}

/// Connections the driver opened (the connector is called once per new connection).
static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts calls to reqwest's connector.
#[derive(Clone)]
struct CountConnections<S>(S);

impl<S: tower::Service<R>, R> tower::Service<R> for CountConnections<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> S::Future {
        CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.call(req)
    }
}

#[derive(Clone)]
struct CountConnectionsLayer;

impl<S> tower::Layer<S> for CountConnectionsLayer {
    type Service = CountConnections<S>;
    fn layer(&self, inner: S) -> CountConnections<S> {
        CountConnections(inner)
    }
}

/// The key a DPoP client proves possession of (RFC 9449): a fresh proof per request.
struct Dpop {
    key: tessera_jose::SigningKey,
    run: String,
    next: std::sync::atomic::AtomicU64,
}

impl Dpop {
    fn proof(&self, method: &str, url: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let jti = format!("{}-{}", self.run, self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let claims = tessera_jose::dpop::ProofClaims {
            jti: &jti,
            htm: method,
            htu: url,
            iat: now,
            access_token: None,
            nonce: None,
        };
        tessera_jose::dpop::sign_proof(&self.key, &claims).expect("sign")
    }
}

/// What a private_key_jwt client signs its assertions with.
struct Assertion {
    key: tessera_jose::SigningKey,
    client_id: String,
    audience: String,
    /// Unique per run, so `jti`s never repeat across runs against one store.
    run: String,
    next: std::sync::atomic::AtomicU64,
}

impl Assertion {
    /// The form fields that authenticate one request (RFC 7523 §2.2).
    fn form_fields(&self) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claims = serde_json::json!({
            "iss": self.client_id, "sub": self.client_id, "aud": self.audience,
            "jti": format!("{}-{n}", self.run), "iat": now, "exp": now + 60,
        });
        let jwt = self.key.sign_jwt(&self.key.kid, Some("JWT"), &claims).expect("sign");
        format!(
            "client_id={}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}",
            self.client_id
        )
    }
}

/// The request body: the fixed form, plus a fresh assertion when the client uses one.
fn body_for(o: &Opts) -> Option<String> {
    match (&o.body, &o.assertion) {
        (Some(b), Some(a)) => Some(format!("{b}&{}", a.form_fields())),
        (None, Some(a)) => Some(a.form_fields()),
        (b, None) => b.clone(),
    }
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
        rate: None,
        sources: 4,
        max_in_flight: 4000,
        assertion: None,
        identity: None,
        dpop: None,
        new_connection: false,
        spin: false,
    };
    let mut write_jwks: Option<String> = None;
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
            "--bearer" => o.auth = Some(format!("Bearer {}", val())),
            "--new-connection" => o.new_connection = true,
            "--spin" => o.spin = true,
            "--concurrency" => o.concurrency = val().parse().expect("number"),
            "--seconds" => o.seconds = val().parse::<u64>().expect("number").clamp(1, 600),
            "--ca" => o.ca = Some(val()),
            "--http2" => o.http2 = true,
            "--rate" => o.rate = Some(val().parse().expect("number")),
            "--sources" => o.sources = val().parse::<u8>().expect("number").clamp(1, 200),
            "--max-in-flight" => o.max_in_flight = val().parse().expect("number"),
            "--assertion" => {
                let v = val();
                let mut parts = v.splitn(3, ':');
                let (pem, client_id, audience) = (parts.next().unwrap(), parts.next(), parts.next());
                let pem = std::fs::read_to_string(pem).expect("key PEM");
                let key = tessera_jose::SigningKey::from_pem(&pem, None).expect("a private key PEM");
                let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
                o.assertion = Some(Assertion {
                    key,
                    client_id: client_id.expect("KEY_PEM:CLIENT_ID:AUDIENCE").to_owned(),
                    audience: audience.expect("KEY_PEM:CLIENT_ID:AUDIENCE").to_owned(),
                    run: format!("{run:x}-{}", std::process::id()),
                    next: std::sync::atomic::AtomicU64::new(0),
                });
            }
            "--write-jwks" => write_jwks = Some(val()),
            "--dpop" => {
                let pem = std::fs::read_to_string(val()).expect("key PEM");
                let key = tessera_jose::SigningKey::from_pem(&pem, None).expect("a private key PEM");
                let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
                o.dpop = Some(Dpop {
                    key,
                    run: format!("{run:x}-{}", std::process::id()),
                    next: std::sync::atomic::AtomicU64::new(0),
                });
            }
            "--identity" => {
                let pem = std::fs::read(val()).expect("certificate and key PEM");
                o.identity = Some(reqwest::Identity::from_pem(&pem).expect("a certificate and its private key"));
            }
            other => panic!("unknown option {other}"),
        }
    }
    if let (Some(path), Some(a)) = (&write_jwks, &o.assertion) {
        let set = tessera_types::rfc7517::JwkSet { keys: vec![a.key.public_jwk()] };
        std::fs::write(path, serde_json::to_vec(&set).unwrap()).expect("write the JWK Set");
        std::process::exit(0);
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
    if let Some(identity) = &o.identity {
        builder = builder.identity(identity.clone());
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
    if let Some(rate) = o.rate {
        return open_loop(o.clone(), rate).await;
    }
    if o.new_connection {
        assert!(!o.http2, "--new-connection is for HTTP/1.1");
        builder = builder.pool_max_idle_per_host(0);
    }
    builder = builder.connector_layer(CountConnectionsLayer);
    let client = builder.build().unwrap();
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(o.seconds);
    if o.spin {
        // A task that only yields keeps the driver's thread from ever sleeping in epoll: each
        // yield polls the sockets without blocking (tokio defers a yielded task until it has).
        tokio::spawn(async move {
            while Instant::now() < end {
                tokio::task::yield_now().await;
            }
        });
    }
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (client, o) = (client.clone(), o.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut bad, mut all) = (0u64, 0u64, 0u64);
            // Failures by status ("503", ...) or "connection_error".
            let mut failures = std::collections::BTreeMap::<String, u64>::new();
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let mut req = if o.get { client.get(&o.url) } else { client.post(&o.url) };
                if o.new_connection {
                    req = req.header(reqwest::header::CONNECTION, "close");
                }
                if let Some(d) = &o.dpop {
                    req = req.header("DPoP", d.proof(if o.get { "GET" } else { "POST" }, &o.url));
                }
                if let Some(a) = &o.auth {
                    req = req.header(AUTHORIZATION, a);
                }
                if let Some(b) = body_for(&o) {
                    req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(b);
                }
                let outcome = match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        let _ = r.bytes().await;
                        if status.is_success() { Ok(()) } else { Err(status.as_u16().to_string()) }
                    }
                    Err(_) => Err("connection_error".to_owned()),
                };
                let good = outcome.is_ok();
                all += u64::from(good);
                if start < warmup {
                    continue;
                }
                lat.push(start.elapsed());
                match outcome {
                    Ok(()) => ok += 1,
                    Err(why) => {
                        bad += 1;
                        *failures.entry(why).or_insert(0) += 1;
                    }
                }
            }
            (lat, ok, bad, all, failures)
        }));
    }
    let (mut lat, mut ok, mut bad, mut all) = (Vec::new(), 0, 0, 0);
    let mut failures = std::collections::BTreeMap::<String, u64>::new();
    for t in tasks {
        let (l, o2, b, a, f) = t.await.unwrap();
        lat.extend(l);
        ok += o2;
        bad += b;
        all += a;
        for (k, n) in f {
            *failures.entry(k).or_insert(0) += n;
        }
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
            "ok": ok, "errors": bad, "failures": failures, "ok_including_warmup": all, "rps": (ok as f64 / o.seconds as f64).round(),
            "connections": CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed),
            "p50_ms": (pct(0.50) * 100.0).round() / 100.0, "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
        })
    );
}

#[derive(Default)]
struct OpenLoopStats {
    statuses: std::collections::BTreeMap<String, u64>,
    served: Vec<Duration>,
}

async fn open_loop(o: Arc<Opts>, rate: f64) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let clients: Vec<reqwest::Client> = (0..o.sources)
        .map(|i| {
            let mut b = reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 2 + i]))
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(o.max_in_flight);
            if let Some(ca) = &o.ca {
                b = b.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
            }
            b.http1_only().build().unwrap()
        })
        .collect();
    let stats = Arc::new(std::sync::Mutex::new(OpenLoopStats::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let warmup = start + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(o.seconds);
    let (mut next, mut n, mut not_sent, mut offered) = (start, 0usize, 0u64, 0u64);
    while Instant::now() < end {
        while next <= Instant::now() {
            next += interval;
            n += 1;
            let counted = next >= warmup;
            offered += u64::from(counted);
            if in_flight.load(Ordering::Relaxed) >= o.max_in_flight {
                not_sent += u64::from(counted);
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (client, o, stats, in_flight) =
                (clients[n % clients.len()].clone(), o.clone(), stats.clone(), in_flight.clone());
            tokio::spawn(async move {
                let began = Instant::now();
                let mut req = if o.get { client.get(&o.url) } else { client.post(&o.url) };
                if let Some(d) = &o.dpop {
                    req = req.header("DPoP", d.proof(if o.get { "GET" } else { "POST" }, &o.url));
                }
                if let Some(a) = &o.auth {
                    req = req.header(AUTHORIZATION, a);
                }
                if let Some(b) = body_for(&o) {
                    req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(b);
                }
                let outcome = match req.send().await {
                    Ok(r) => {
                        let status = r.status();
                        let _ = r.bytes().await;
                        Ok(status)
                    }
                    Err(e) => Err(if e.is_timeout() { "timeout" } else { "connection_error" }),
                };
                let took = began.elapsed();
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if counted {
                    let mut s = stats.lock().unwrap();
                    let key = match outcome {
                        Ok(status) => {
                            if status.is_success() {
                                s.served.push(took);
                            }
                            status.as_u16().to_string()
                        }
                        Err(kind) => kind.to_string(),
                    };
                    *s.statuses.entry(key).or_insert(0) += 1;
                }
            });
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    // Let requests in flight finish (each has a 10 s timeout).
    let drain = Instant::now();
    while in_flight.load(Ordering::Relaxed) > 0 && drain.elapsed() < Duration::from_secs(12) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut s = stats.lock().unwrap();
    s.served.sort();
    let pct = |p: f64| {
        s.served
            .get(((s.served.len() as f64 * p) as usize).min(s.served.len().saturating_sub(1)))
            .map(|d| (d.as_secs_f64() * 1e5).round() / 100.0)
            .unwrap_or(0.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "url": o.url, "rate_offered": rate, "seconds": o.seconds, "offered": offered, "not_sent": not_sent,
            "answers": s.statuses, "served_rps": (s.served.len() as f64 / o.seconds as f64).round(),
            "served_p50_ms": pct(0.50), "served_p99_ms": pct(0.99),
        })
    );
}
