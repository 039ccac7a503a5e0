use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::{AuthMethod, ClientConfig, ClientError};

/// An access token and when it expires. `Debug` does not print the token.
#[derive(Clone)]
pub struct AccessToken {
    /// The token, for `Authorization: Bearer`.
    pub value: Arc<str>,
    /// Expiry, Unix seconds (from `expires_in`).
    pub expires_at: i64,
    /// Granted scope.
    pub scope: Option<String>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_after: i64,
}

/// A source of access tokens for one client, shared by all callers (cheap to clone):
/// - cached until a jittered point at ~80% of the lifetime;
/// - single-flight: however many callers need a new token at once, one request is made, and
///   while a refresh runs ahead of expiry the others keep using the still-valid token;
/// - network errors and 5xx are retried with exponential backoff; 4xx are not, and the
///   error names the RFC 6749 code;
/// - [`TokenSource::invalidate`] forces one refresh after an API rejected the token.
#[derive(Clone)]
pub struct TokenSource(Arc<Inner>);

struct Inner {
    cfg: ClientConfig,
    endpoint: tokio::sync::OnceCell<String>,
    current: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    requests: AtomicU64,
}

enum Attempt {
    Retry(String),
    Fail(ClientError),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<i64>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl TokenSource {
    /// A source; nothing is fetched until the first call.
    pub fn new(cfg: ClientConfig) -> Self {
        Self(Arc::new(Inner {
            cfg,
            endpoint: tokio::sync::OnceCell::new(),
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
        }))
    }

    /// How many token requests this source has sent (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.0.requests.load(Ordering::Relaxed)
    }

    fn now(&self) -> i64 {
        self.0.cfg.clock.now().0
    }

    fn cached(&self) -> Option<Cached> {
        self.0.current.read().expect("token lock").clone()
    }

    /// A valid access token: from the cache, or fetched.
    pub async fn token(&self) -> Result<AccessToken, ClientError> {
        if let Some(c) = self.cached() {
            let now = self.now();
            if now < c.refresh_after {
                return Ok(c.token);
            }
            if now < c.token.expires_at {
                // Early refresh: one caller refreshes, the others keep the valid token.
                return match self.0.refresh.try_lock() {
                    Ok(_guard) => match self.fetch().await {
                        Ok(t) => Ok(t),
                        Err(e) => {
                            tracing::warn!(error = %e, "early token refresh failed; using the current token");
                            Ok(c.token)
                        }
                    },
                    Err(_) => Ok(c.token),
                };
            }
        }
        let _guard = self.0.refresh.lock().await;
        // Whoever held the lock may have fetched what we need.
        if let Some(c) = self.cached() {
            if self.now() < c.refresh_after {
                return Ok(c.token);
            }
        }
        self.fetch().await
    }

    /// Drops the cached token if it is `rejected`, so the next call fetches a new one (after an
    /// API answered 401 `invalid_token` or gRPC `Unauthenticated`). A token already replaced
    /// is left alone, so a burst of rejections causes one refresh.
    pub fn invalidate(&self, rejected: &str) {
        let mut current = self.0.current.write().expect("token lock");
        if current.as_ref().is_some_and(|c| &*c.token.value == rejected) {
            *current = None;
        }
    }

    async fn fetch(&self) -> Result<AccessToken, ClientError> {
        let cfg = &self.0.cfg;
        let mut delay = cfg.backoff;
        let mut attempt = 1;
        loop {
            match self.request().await {
                Ok(token) => {
                    let now = self.now();
                    let lifetime = (token.expires_at - now).max(0) as f64;
                    let refresh_after = now + (lifetime * (cfg.refresh_at + self.jitter())).round() as i64;
                    *self.0.current.write().expect("token lock") = Some(Cached { token: token.clone(), refresh_after });
                    return Ok(token);
                }
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(why)) if attempt >= cfg.max_attempts => return Err(ClientError::Unreachable(why)),
                Err(Attempt::Retry(why)) => {
                    tracing::warn!(attempt, %why, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// A uniformly random fraction in [-jitter, +jitter].
    fn jitter(&self) -> f64 {
        let mut b = [0u8; 4];
        let _ = SystemRandom::new().fill(&mut b);
        let unit = u32::from_le_bytes(b) as f64 / u32::MAX as f64;
        (unit * 2.0 - 1.0) * self.0.cfg.jitter
    }

    async fn endpoint(&self) -> Result<&str, Attempt> {
        let cfg = &self.0.cfg;
        self.0
            .endpoint
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", cfg.authority);
                let r = cfg.http.get(&url).send().await.map_err(|e| Attempt::Retry(format!("discovery: {e}")))?;
                if r.status().is_server_error() {
                    return Err(Attempt::Retry(format!("discovery answered {}", r.status())));
                }
                if !r.status().is_success() {
                    return Err(Attempt::Fail(ClientError::Protocol(format!("discovery answered {}", r.status()))));
                }
                let doc: serde_json::Value =
                    r.json().await.map_err(|e| Attempt::Fail(ClientError::Protocol(e.to_string())))?;
                if doc["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(cfg.authority.as_str()) {
                    return Err(Attempt::Fail(ClientError::Protocol(format!(
                        "discovery issuer is not {}",
                        cfg.authority
                    ))));
                }
                doc["token_endpoint"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Attempt::Fail(ClientError::Protocol("discovery has no token_endpoint".into())))
            })
            .await
            .map(String::as_str)
    }

    async fn request(&self) -> Result<AccessToken, Attempt> {
        let cfg = &self.0.cfg;
        let endpoint = self.endpoint().await?;
        let mut body = String::from("grant_type=client_credentials");
        if let Some(scope) = &cfg.scope {
            body.push_str(&format!("&scope={}", form_encode(scope)));
        }
        for r in &cfg.resources {
            body.push_str(&format!("&resource={}", form_encode(r)));
        }
        let mut req = cfg.http.post(endpoint).header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        match cfg.auth_method {
            // RFC 6749 §2.3.1: form-encode id and secret, then Basic.
            AuthMethod::Basic => {
                let basic =
                    STANDARD.encode(format!("{}:{}", form_encode(&cfg.client_id), form_encode(&cfg.client_secret)));
                req = req.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
            }
            AuthMethod::Post => {
                body.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    form_encode(&cfg.client_id),
                    form_encode(&cfg.client_secret)
                ));
            }
        }
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        let r = req.body(body).send().await.map_err(|e| Attempt::Retry(format!("token endpoint: {e}")))?;
        let status = r.status();
        if status.is_server_error() {
            return Err(Attempt::Retry(format!("token endpoint answered {status}")));
        }
        let text = r.text().await.map_err(|e| Attempt::Retry(e.to_string()))?;
        if !status.is_success() {
            return Err(Attempt::Fail(match serde_json::from_str::<ErrorResponse>(&text) {
                Ok(e) => ClientError::Refused { error: e.error, description: e.error_description },
                Err(_) => ClientError::Protocol(format!("token endpoint answered {status} without an RFC 6749 error")),
            }));
        }
        let t: TokenResponse =
            serde_json::from_str(&text).map_err(|e| Attempt::Fail(ClientError::Protocol(e.to_string())))?;
        if !t.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Attempt::Fail(ClientError::Protocol(format!("token_type {} is not Bearer", t.token_type))));
        }
        // RFC 6749 §5.1: expires_in is RECOMMENDED; without it, assume an hour.
        let expires_at = self.now() + t.expires_in.unwrap_or(3600);
        Ok(AccessToken { value: t.access_token.into(), expires_at, scope: t.scope })
    }
}
