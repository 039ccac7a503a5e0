//! A fake authority on 127.0.0.1: discovery and a JWKS with keys the test holds, so tests can
//! mint any token — good or hostile. Counts JWKS fetches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
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
}

pub const AUD: &str = "api1";

impl FakeIssuer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let (rsa, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let jwks = JwkSet { keys: vec![key.public_jwk(), rsa.public_jwk()] };
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "token_endpoint": format!("{url}/token"),
        });
        let counter = fetches.clone();
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route(
                "/jwks",
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, key, rsa, jwks_fetches: fetches }
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
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
