//! Property-based fuzzing (issue 10, part 9) of the guard: bearer header parsing through the
//! layer, JWT validation (arbitrary, tampered, and signed tokens with extreme times) and
//! introspection answers (arbitrary bytes and JSON), against a local fake authority.
//! `PROPTEST_CASES` sets the case count.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Request, Response, StatusCode, header};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};
use tessera_guard::{ClientCredentials, Guard, GuardConfig, GuardError, GuardLayer, Mode};
use tessera_jose::SigningKey;
use tessera_types::clock::ManualClock;
use tessera_types::rfc7517::JwkSet;
use tessera_types::{ClientId, ClientSecret, Issuer, Resource};
use tessera_types::{SigningAlg, UnixTime};
use tower::{Layer as _, ServiceExt as _};

const AUD: &str = "api1";
const NOW: i64 = 1_700_000_000;
/// The guard's default leeway (`GuardConfig::new`).
const LEEWAY: i64 = 30;

use tessera_testkit::proptest_config as config;

/// What the fake introspection endpoint answers next: status, content type, body.
type Answer = Arc<Mutex<(u16, &'static str, Vec<u8>)>>;

/// A fake authority on 127.0.0.1: discovery, a JWKS with one ES256 key, and an introspection
/// endpoint answering whatever the test put in `answer`.
struct Authority {
    rt: tokio::runtime::Runtime,
    url: String,
    key: SigningKey,
    answer: Answer,
    /// One HTTP client for every guard: a guard rebuilt after a failure reuses its connections.
    http: reqwest::Client,
}

impl Authority {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let answer: Answer = Arc::new(Mutex::new((200, "application/json", b"{\"active\":false}".to_vec())));
        let jwks = JwkSet { keys: vec![key.public_jwk()] };
        let served = answer.clone();
        let url = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
            let discovery = json!({
                "issuer": url,
                "jwks_uri": format!("{url}/jwks"),
                "introspection_endpoint": format!("{url}/introspect"),
            });
            let app = Router::new()
                .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
                .route("/jwks", get(move || async move { axum::Json(jwks) }))
                .route(
                    "/introspect",
                    post(move || async move {
                        let (status, ct, body) = served.lock().unwrap().clone();
                        Response::builder()
                            .status(status)
                            .header(header::CONTENT_TYPE, ct)
                            .body(Body::from(body))
                            .unwrap()
                    }),
                );
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            url
        });
        Self {
            rt,
            url,
            key,
            answer,
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        }
    }

    fn guard(&self, mode: Mode) -> Guard {
        Guard::new(
            GuardConfig::new(Issuer::new(&self.url).unwrap(), Resource::new(AUD).unwrap(), mode)
                .allow_http()
                .with_http_client(self.http.clone())
                .with_clock(Arc::new(ManualClock::new(UnixTime(NOW)))),
        )
        .unwrap()
    }

    fn introspecting_guard(&self) -> Guard {
        self.guard(Mode::Introspection(ClientCredentials::new(
            ClientId::new("rs").unwrap(),
            ClientSecret::new("rs_secret").unwrap(),
        )))
    }

    fn claims(&self) -> Value {
        json!({"iss": self.url, "aud": AUD, "sub": "CC", "client_id": "CC", "scope": "a b",
               "iat": NOW, "nbf": NOW, "exp": NOW + 300, "jti": "j"})
    }

    fn sign(&self, claims: &Value) -> String {
        self.key.sign_access_token(claims).unwrap()
    }
}

/// Hostile numbers around NOW and the leeway, the edges of i64, and a string and null.
fn extreme_number() -> impl Strategy<Value = Value> {
    tessera_testkit::extreme_number(
        vec![
            i64::MIN,
            -1,
            0,
            NOW - LEEWAY - 1,
            NOW - LEEWAY,
            NOW,
            NOW + LEEWAY,
            NOW + LEEWAY + 1,
            i64::MAX - LEEWAY - 1,
            i64::MAX - 1,
            i64::MAX,
        ],
        vec![json!("1700000300"), Value::Null],
    )
}

/// Arbitrary JSON with the words the guard reacts to.
fn json_value() -> impl Strategy<Value = Value> {
    tessera_testkit::json_value(extreme_number(), vec!["true", AUD, "Bearer"], 16)
}

/// Whether a time claim set is acceptable at NOW with the default leeway (saturating rule).
fn times_ok(exp: Option<&Value>, nbf: Option<&Value>) -> bool {
    let Some(exp) = exp.and_then(Value::as_i64) else { return false };
    NOW < exp.saturating_add(LEEWAY) && nbf.is_none_or(|n| n.as_i64().is_some_and(|n| NOW.saturating_add(LEEWAY) >= n))
}

fn tokens(a: &Authority) -> impl Strategy<Value = String> + use<> {
    let real = a.sign(&a.claims());
    let tampered = (any::<prop::sample::Index>(), 1u8..=255).prop_filter_map("UTF-8", move |(at, mask)| {
        let mut bytes = real.clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        String::from_utf8(bytes).ok()
    });
    let part = || vec(any::<u8>(), 0..80).prop_map(|b| URL_SAFE_NO_PAD.encode(b));
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.~+/=-]{0,200}",
        (json_value(), json_value(), part()).prop_map(|(h, c, s)| format!(
            "{}.{}.{s}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
        )),
        tampered,
    ]
}

/// A token of the shape of Tessera's reference tokens (256 bits, base64url), distinct per `n`.
fn reference_token(n: u64) -> String {
    let mut bits = [0u8; 32];
    bits[..8].copy_from_slice(&n.to_le_bytes());
    URL_SAFE_NO_PAD.encode(bits)
}

/// Arbitrary, random-JWS and tampered tokens are refused as invalid tokens, never panic.
#[test]
fn jwt_mode_refuses_arbitrary_and_tampered_tokens() {
    let a = Authority::start();
    let guard = a.guard(Mode::Jwt);
    let real = a.sign(&a.claims());
    assert!(a.rt.block_on(guard.authenticate(&real)).is_ok(), "the untampered token passes");
    TestRunner::new(config(512))
        .run(&tokens(&a), |token| {
            prop_assume!(token != real);
            let got = a.rt.block_on(guard.authenticate(&token));
            prop_assert!(matches!(got, Err(GuardError::InvalidToken(_))), "{:?} for {:?}", got, token);
            Ok(())
        })
        .unwrap();
}

/// Correctly signed tokens with extreme or ill-typed exp, nbf and iat: no panic, and accepted
/// exactly when the saturating time rule says so.
#[test]
fn jwt_mode_extreme_times_follow_the_rule() {
    let a = Authority::start();
    let guard = a.guard(Mode::Jwt);
    let times = (
        proptest::option::of(extreme_number()),
        proptest::option::of(extreme_number()),
        proptest::option::of(extreme_number()),
    );
    let counter = AtomicU64::new(0);
    TestRunner::new(config(512))
        .run(&times, |(exp, nbf, iat)| {
            let mut claims = a.claims();
            let c = claims.as_object_mut().unwrap();
            for (name, v) in [("exp", &exp), ("nbf", &nbf), ("iat", &iat)] {
                match v {
                    Some(v) => c.insert(name.into(), v.clone()),
                    None => c.remove(name),
                };
            }
            c.insert("jti".into(), json!(counter.fetch_add(1, Ordering::Relaxed)));
            let got = a.rt.block_on(guard.authenticate(&a.sign(&claims)));
            prop_assert_eq!(got.is_ok(), times_ok(exp.as_ref(), nbf.as_ref()), "{:?} exp={:?} nbf={:?}", got, exp, nbf);
            if let Ok(p) = got {
                prop_assert_eq!(Some(p.expires_at.0), exp.as_ref().and_then(Value::as_i64));
            }
            Ok(())
        })
        .unwrap();
}

/// `active` as an authority might send it.
fn active() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        3 => any::<bool>().prop_map(Value::Bool),
        1 => proptest::sample::select(vec![json!("true"), json!(1), json!([true]), Value::Null]),
        1 => json_value(),
    ])
}

/// What the introspection endpoint answers: an RFC 7662 object with good or arbitrary
/// members, any JSON, or any bytes; with a success status or not.
fn answer() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let member = |name: &'static str, good: Value| {
        proptest::option::of(prop_oneof![3 => Just(good), 1 => json_value()]).prop_map(move |v| (name, v))
    };
    let object = (
        active(),
        member("aud", json!(AUD)),
        member("exp", json!(NOW + 300)),
        proptest::option::of(extreme_number()),
        member("scope", json!("a b")),
        member("iss", Value::Null),
    )
        .prop_map(|(active, aud, exp, extreme_exp, scope, iss)| {
            let mut m = Map::new();
            active.map(|v| m.insert("active".into(), v));
            for (name, v) in [aud, exp, scope, iss] {
                v.map(|v| m.insert(name.into(), v));
            }
            extreme_exp.map(|v| m.insert("exp".into(), v));
            serde_json::to_vec(&Value::Object(m)).unwrap()
        });
    let body = prop_oneof![
        6 => object,
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => vec(any::<u8>(), 0..100),
    ];
    let status = prop_oneof![8 => Just(200u16), 1 => Just(401u16), 1 => Just(500u16)];
    (status, body)
}

/// Arbitrary introspection answers: no panic; a token is active only when the answer is a
/// success whose `active` is JSON `true` and whose audience, issuer and exp fit.
#[test]
fn introspection_answers_are_judged_strictly() {
    let a = Authority::start();
    // The guard does not call again at once an authority that just failed: a failure is
    // followed by a fresh guard, so each case sees the answer it set.
    let guard = std::cell::RefCell::new(a.introspecting_guard());
    let issuer = a.url.clone();
    let counter = AtomicU64::new(0);
    TestRunner::new(config(512))
        .run(&answer(), |(status, body)| {
            let parsed: Option<Map<String, Value>> = serde_json::from_slice(&body).ok();
            *a.answer.lock().unwrap() = (status, "application/json", body.clone());
            // A new token each time: introspection results are cached per token.
            let token = reference_token(counter.fetch_add(1, Ordering::Relaxed));
            let got = a.rt.block_on(guard.borrow().authenticate(&token));
            if matches!(got, Err(GuardError::Unavailable(_))) {
                *guard.borrow_mut() = a.introspecting_guard();
            }
            let shown = String::from_utf8_lossy(&body);
            let Some(m) = parsed.filter(|_| status == 200) else {
                // No usable answer: fail closed, never "inactive", never "active".
                prop_assert!(matches!(got, Err(GuardError::Unavailable(_))), "{:?} for {} {}", got, status, shown);
                return Ok(());
            };
            let aud_ok = match m.get("aud") {
                Some(Value::String(s)) => s == AUD,
                Some(Value::Array(v)) => v.iter().any(|x| x == AUD),
                _ => false,
            };
            let iss_ok = m.get("iss").and_then(Value::as_str).is_none_or(|i| i == issuer);
            let active = m.get("active") == Some(&Value::Bool(true));
            let want = active && aud_ok && iss_ok && times_ok(m.get("exp"), None);
            prop_assert_eq!(got.is_ok(), want, "{:?} for {}", got, shown);
            if let Err(e) = got {
                prop_assert!(matches!(e, GuardError::InvalidToken(_)), "{:?}", e);
            }
            Ok(())
        })
        .unwrap();
}

/// Arbitrary Authorization headers through the layer: only the real token reaches the
/// service; every refusal is an RFC 6750 §3 answer (400 or 401 with a Bearer challenge).
#[test]
fn layer_lets_through_only_a_valid_bearer_token() {
    let a = Authority::start();
    let layer = GuardLayer::new(a.guard(Mode::Jwt));
    let inner = tower::service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) });
    let real = a.sign(&a.claims());
    let with_real = real.clone();
    let headers = prop_oneof![
        vec(any::<u8>(), 0..100),
        "(Bearer|bearer|BEARER|Basic|) {0,2}[ -~]{0,100}".prop_map(String::into_bytes),
        (proptest::sample::select(vec!["Bearer ", "bearer ", "Bearer  ", "Bearer", "Bearer\t"]), tokens(&a))
            .prop_map(|(s, t)| format!("{s}{t}").into_bytes()),
        proptest::sample::select(vec!["Bearer ", "bearer ", "BEARER  "])
            .prop_map(move |s| format!("{s}{with_real}").into_bytes()),
    ];
    TestRunner::new(config(512))
        .run(&proptest::option::of(headers), |value| {
            let mut req = Request::get("/api").body(Body::empty()).unwrap();
            if let Some(v) = &value {
                let Ok(v) = HeaderValue::from_bytes(v) else { return Ok(()) };
                req.headers_mut().insert(header::AUTHORIZATION, v);
            }
            let response = a.rt.block_on(layer.layer(inner).oneshot(req)).unwrap();
            let is_real =
                value.as_deref().and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.split_once(' ')).is_some_and(
                    |(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t.trim_start_matches(' ') == real,
                );
            if is_real {
                prop_assert_eq!(response.status(), StatusCode::OK);
                return Ok(());
            }
            prop_assert!(
                matches!(response.status(), StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED),
                "{} for {:?}",
                response.status(),
                value.as_deref().map(String::from_utf8_lossy)
            );
            let challenge = response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
            prop_assert!(challenge.is_some_and(|c| c.starts_with("Bearer realm=")), "{:?}", challenge);
            prop_assert_eq!(
                response.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
                Some("no-store")
            );
            Ok(())
        })
        .unwrap();
}

/// Regression (issue 10, part 9): a correctly signed JWT with `exp` near i64::MAX. guard.rs
/// once computed the cache deadline as `v.exp + expect.leeway`, which overflowed (a panic in
/// debug builds, a wrap in release); it must saturate.
#[test]
fn jwt_exp_near_i64_max_does_not_overflow() {
    let a = Authority::start();
    let guard = a.guard(Mode::Jwt);
    let mut claims = a.claims();
    claims["exp"] = json!(i64::MAX);
    let p = a.rt.block_on(guard.authenticate(&a.sign(&claims))).unwrap();
    assert_eq!(p.expires_at.0, i64::MAX);
}

/// Regression (issue 10, part 9): an active introspection answer with `exp` near i64::MAX.
/// guard.rs `accept` once computed `exp + leeway`, which overflowed (a panic in debug builds;
/// in release the wrap made the active token read as expired); it must saturate.
#[test]
fn introspection_exp_near_i64_max_does_not_overflow() {
    let a = Authority::start();
    let guard = a.introspecting_guard();
    let body = json!({"active": true, "aud": AUD, "exp": i64::MAX, "scope": "a"});
    *a.answer.lock().unwrap() = (200, "application/json", serde_json::to_vec(&body).unwrap());
    let p = a.rt.block_on(guard.authenticate(&reference_token(1))).unwrap();
    assert_eq!(p.expires_at.0, i64::MAX);
}
