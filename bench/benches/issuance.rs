//! The issuance path per algorithm: signing alone, and a whole token request through the
//! router in process (form parsing, client authentication, grant, claims, signing, JSON).

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tessera_server::clock::{Clock as _, SystemClock, SystemRandom};
use tessera_server::grant::Grant;
use tessera_server::keys::SigningKey;
use tessera_server::token::jwt;
use tessera_types::{ClientId, Issuer, Resource, ScopeName, ScopeSet, SigningAlg};
use tower::ServiceExt as _;

/// What the claims of a benchmarked token are made from: client `bench` granted scope `api` for
/// `api1`.
fn claims_input() -> (SystemRandom, Grant, ClientId, Issuer) {
    let grant = Grant {
        scopes: [ScopeName::new("api").unwrap()].into_iter().collect::<ScopeSet>(),
        audiences: vec![Resource::new("api1").unwrap()],
        cnf: None,
        workload: None,
        subject: None,
        act: None,
        not_after: None,
    };
    (SystemRandom::default(), grant, ClientId::new("bench").unwrap(), Issuer::new("https://bench.example").unwrap())
}

fn sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    let (rng, grant, client, issuer) = claims_input();
    for alg in SigningAlg::ALL {
        let (key, _) = SigningKey::generate(alg).unwrap();
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| {
                let claims = jwt::claims(&issuer, &client, &grant, SystemClock.now(), 3600, &rng);
                key.sign_access_token(&claims).unwrap()
            })
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    let (rng, grant, client, issuer) = claims_input();
    for alg in SigningAlg::ALL {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let vk = tessera_jose::VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
        let claims = jwt::claims(&issuer, &client, &grant, SystemClock.now(), 3600, &rng);
        let token = key.sign_access_token(&claims).unwrap();
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| {
                let expect = tessera_jose::Expectations {
                    issuer: "https://bench.example",
                    audience: Some("api1"),
                    typ: Some("at+jwt"),
                    leeway: 0,
                    now: SystemClock.now().0,
                };
                tessera_jose::verify_access_token(&token, |_| Some(&vk), &expect).unwrap()
            })
        });
    }
    // Issue 14: one DPoP proof (RFC 9449 §4.3), key from its own header, as the token
    // endpoint and the guard check it (replay aside).
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let url = "https://bench.example/connect/token";
    let now = SystemClock.now().0;
    let proof = tessera_jose::dpop::sign_proof(
        &key,
        &tessera_jose::dpop::ProofClaims { jti: "j", htm: "POST", htu: url, iat: now, access_token: None, nonce: None },
    )
    .unwrap();
    group.bench_function("dpop_proof_ES256", |b| {
        b.iter(|| {
            let expect = tessera_jose::dpop::ProofExpectations {
                method: "POST",
                url,
                now,
                max_age: 60,
                leeway: 5,
                access_token: None,
                nonces: &[],
            };
            tessera_jose::dpop::verify_proof(&proof, &expect).unwrap()
        })
    });
    group.finish();
}

/// A client-credentials token request for scope `api` authenticated by `authorization`.
fn client_credentials(authorization: String) -> Request<Body> {
    Request::post("/connect/token")
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("grant_type=client_credentials&scope=api"))
        .unwrap()
}

fn token_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, clients) = rt.block_on(tessera_bench::state(dir.path()));
    let app = tessera_server::router(state);
    let mut group = c.benchmark_group("token_request");
    let mut cases: Vec<(String, String)> =
        clients.iter().map(|(alg, id, secret)| (alg.to_string(), tessera_bench::basic(id, secret))).collect();
    cases.push(("ES256-argon2id-cached".into(), tessera_bench::basic("bench-imported", "bench-imported-secret")));
    // Issue 14: the same ES256 client with a fresh DPoP proof per request (made outside the
    // measurement).
    let (dpop_key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let (_, id, secret) = clients.iter().find(|(alg, _, _)| *alg == SigningAlg::ES256).unwrap();
    let es256 = tessera_bench::basic(id, secret);
    let endpoint = "https://bench.example/connect/token".to_owned();
    let counter = std::sync::atomic::AtomicU64::new(0);
    group.bench_function("ES256-dpop", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let jti = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
                let claims = tessera_jose::dpop::ProofClaims {
                    jti: &jti,
                    htm: "POST",
                    htu: &endpoint,
                    iat: SystemClock.now().0,
                    access_token: None,
                    nonce: None,
                };
                tessera_jose::dpop::sign_proof(&dpop_key, &claims).unwrap()
            },
            |proof| {
                let app = app.clone();
                let auth = es256.clone();
                async move {
                    let mut req = client_credentials(auth);
                    req.headers_mut().insert("dpop", proof.parse().unwrap());
                    let resp = app.oneshot(req).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });
    // Issue 16: the same ES256 client on a state that records metrics (the listener's share,
    // the span and the latency histogram, is measured end to end by bench/run-ops.sh).
    let metrics_dir = tempfile::tempdir().unwrap();
    let metrics = std::sync::Arc::new(tessera_server::metrics::Metrics::on());
    let (observed, observed_clients) = rt.block_on(tessera_bench::state_with_metrics(metrics_dir.path(), metrics));
    let observed_app = tessera_server::router(observed);
    let (_, id, secret) = observed_clients.iter().find(|(alg, _, _)| *alg == SigningAlg::ES256).unwrap();
    let mut apps = vec![(observed_app, "ES256-metrics".to_owned(), tessera_bench::basic(id, secret))];
    apps.extend(cases.into_iter().map(|(name, auth)| (app.clone(), name, auth)));
    for (app, name, auth) in apps {
        group.bench_function(&name, |b| {
            b.to_async(&rt).iter(|| {
                let app = app.clone();
                let auth = auth.clone();
                async move {
                    let resp = app.oneshot(client_credentials(auth)).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp
                }
            })
        });
    }
    group.finish();
}

/// Issue 15: issuance with a workload's token as `client_assertion` (an ES256 projected
/// service-account token verified with the trust's keys, its rules evaluated, an ES256 token
/// signed), the trust holding 1, 100 or 10 000 rules; the token matches the last rule added.
fn federated(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("federated");
    for rules in [1usize, 100, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let (cluster, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let jwks = dir.path().join("cluster.jwks");
        let (state, _) = rt.block_on(tessera_bench::state_with(dir.path(), |store| {
            let (cluster, jwks) = (&cluster, &jwks);
            async move { tessera_bench::register_cluster(&store, cluster, rules, jwks).await }
        }));
        let app = tessera_server::router(state);
        let token = tessera_bench::cluster_token(&cluster, &format!("ns-{}", rules - 1));
        let body = format!(
            "grant_type=client_credentials&scope=api&client_assertion_type={}&client_assertion={token}",
            "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        );
        group.bench_function(format!("{rules}_rules"), |b| {
            b.to_async(&rt).iter(|| {
                let (app, body) = (app.clone(), body.clone());
                async move {
                    let req = Request::post("/connect/token")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from(body))
                        .unwrap();
                    let resp = app.oneshot(req).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sign, verify, token_request, federated);
criterion_main!(benches);
