//! A fake authority on 127.0.0.1: discovery, a JWKS with keys the test holds (so tests can
//! mint any token — good or hostile) and an introspection endpoint. Counts every call, and can
//! be told to fail (503), to redirect introspection, or to answer introspection slowly.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_jose::SigningKey;
use tessera_types::SigningAlg;
use tessera_types::rfc7517::JwkSet;

pub struct FakeIssuer {
    pub url: String,
    pub key: SigningKey,
    pub rsa: SigningKey,
    pub jwks_fetches: Arc<AtomicUsize>,
    pub ctl: Arc<Control>,
}

/// What the fake does, and what it saw.
#[derive(Default)]
pub struct Control {
    /// Discovery, JWKS and introspection answer 503.
    pub down: AtomicBool,
    /// Only the JWKS answers 503.
    pub jwks_down: AtomicBool,
    /// Introspection answers 302 to `/elsewhere`.
    pub redirect_introspection: AtomicBool,
    /// Introspection waits this long before answering (so concurrent requests overlap).
    pub introspection_delay_ms: AtomicU64,
    /// `exp` of active introspection answers; 0: an hour from now.
    pub introspection_exp: AtomicI64,
    /// `cnf` of active introspection answers, if any (RFC 9449 §6.2).
    pub introspection_cnf: Mutex<Option<Value>>,
    /// Tokens introspection calls active.
    pub active: Mutex<HashSet<String>>,
    pub discoveries: AtomicUsize,
    pub introspections: AtomicUsize,
    /// Requests that reached the redirect target.
    pub elsewhere: AtomicUsize,
}

impl Control {
    pub fn count(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }
    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst)
    }
}

pub const AUD: &str = "api1";

fn unavailable() -> Response {
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

impl FakeIssuer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let (rsa, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let jwks = JwkSet { keys: vec![key.public_jwk(), rsa.public_jwk()] };
        let fetches = Arc::new(AtomicUsize::new(0));
        let ctl = Arc::new(Control::default());
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "token_endpoint": format!("{url}/token"),
            "introspection_endpoint": format!("{url}/introspect"),
        });
        let (counter, c1, c2, c3, c4) = (fetches.clone(), ctl.clone(), ctl.clone(), ctl.clone(), ctl.clone());
        let (issuer, elsewhere) = (url.clone(), format!("{url}/elsewhere"));
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move {
                    c1.discoveries.fetch_add(1, Ordering::SeqCst);
                    if c1.down.load(Ordering::SeqCst) { unavailable() } else { axum::Json(discovery).into_response() }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let jwks = jwks.clone();
                    async move {
                        if c2.down.load(Ordering::SeqCst) || c2.jwks_down.load(Ordering::SeqCst) {
                            unavailable()
                        } else {
                            axum::Json(jwks).into_response()
                        }
                    }
                }),
            )
            .route(
                "/introspect",
                post(move |body: String| async move {
                    c3.introspections.fetch_add(1, Ordering::SeqCst);
                    let delay = c3.introspection_delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if c3.down.load(Ordering::SeqCst) {
                        return unavailable();
                    }
                    if c3.redirect_introspection.load(Ordering::SeqCst) {
                        return (StatusCode::FOUND, [("location", elsewhere.clone())]).into_response();
                    }
                    let token = form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    if !c3.active.lock().unwrap().contains(&token) {
                        return axum::Json(json!({"active": false})).into_response();
                    }
                    let exp = match c3.introspection_exp.load(Ordering::SeqCst) {
                        0 => Self::now() + 3600,
                        e => e,
                    };
                    let mut answer = json!({"active": true, "iss": issuer, "aud": AUD, "client_id": "REF",
                        "scope": "dataEventRecords", "exp": exp});
                    if let Some(cnf) = c3.introspection_cnf.lock().unwrap().clone() {
                        answer["cnf"] = cnf;
                    }
                    axum::Json(answer).into_response()
                }),
            )
            .route(
                "/elsewhere",
                any(move || async move {
                    c4.elsewhere.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"active": true, "aud": AUD, "exp": i64::MAX, "scope": "dataEventRecords"}))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, key, rsa, jwks_fetches: fetches, ctl }
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn introspections(&self) -> usize {
        Control::count(&self.ctl.introspections)
    }

    /// A fresh token of Tessera's reference shape (43 base64url characters), active if asked.
    pub fn reference_token(&self, active: bool) -> String {
        let mut b = [0u8; 32];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        let t = URL_SAFE_NO_PAD.encode(b);
        if active {
            self.ctl.active.lock().unwrap().insert(t.clone());
        }
        t
    }

    pub fn now() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    /// Good claims for `scope`.
    pub fn claims(&self, scope: &str) -> Value {
        let now = Self::now();
        json!({"iss": self.url, "sub": "CC", "client_id": "CC", "aud": AUD, "scope": scope,
               "iat": now, "nbf": now, "exp": now + 300, "jti": "j1"})
    }

    /// A correctly signed token for `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign_access_token(claims).unwrap()
    }

    /// A token with any header, signed by `key` (or with `signature` verbatim).
    pub fn raw(header: Value, claims: &Value, key: Option<&SigningKey>) -> String {
        let input = format!("{}.{}", b64(&header), b64(claims));
        let sig = key.map(|k| URL_SAFE_NO_PAD.encode(k.sign(input.as_bytes()).unwrap())).unwrap_or_default();
        format!("{input}.{sig}")
    }
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}
