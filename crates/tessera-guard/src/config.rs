use std::sync::Arc;
use std::time::Duration;

use tessera_types::clock::{Clock, SystemClock};

/// The API's own client credentials, for introspection (as the seed's
/// `rs_dataEventRecordsApi` / secret).
#[derive(Clone)]
pub struct ClientCredentials {
    /// client_id.
    pub client_id: String,
    /// client_secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

impl ClientCredentials {
    /// Credentials.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), client_secret: client_secret.into() }
    }
}

/// How tokens are validated.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Locally: signature with keys from the authority's JWKS, then claims.
    Jwt,
    /// By asking the authority (RFC 7662) with the API's own credentials.
    Introspection(ClientCredentials),
    /// JWTs locally, anything else (reference tokens) by introspection.
    Auto(ClientCredentials),
}

/// Guard settings: the authority and audience, as `options.Authority` and `options.Audience`
/// in ASP.NET, plus the validation mode and cache bounds.
#[derive(Clone)]
pub struct GuardConfig {
    /// The issuer URL; discovery is read from `{authority}/.well-known/openid-configuration`
    /// and its `issuer` must equal this.
    pub authority: String,
    /// The audience tokens must carry in `aud`.
    pub audience: String,
    /// Validation mode.
    pub mode: Mode,
    /// Accepted JOSE `typ` (RFC 9068: `at+jwt`); `None` accepts any, for issuers that do not
    /// type their access tokens.
    pub accepted_typ: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Longest time a validated JWT or an active introspection result is reused (never past
    /// the token's `exp`).
    pub max_cache_ttl: Duration,
    /// How long an inactive introspection result is reused.
    pub inactive_cache_ttl: Duration,
    /// Least time between two JWKS fetches caused by unknown `kid`s.
    pub jwks_min_refresh: Duration,
    /// JWKS older than this are refetched on the next request.
    pub jwks_max_age: Duration,
    /// Most entries per cache.
    pub cache_capacity: usize,
    /// Longest token considered.
    pub max_token_len: usize,
    /// HTTP client for discovery, JWKS and introspection (trust your CA here).
    pub http: reqwest::Client,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for GuardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardConfig")
            .field("authority", &self.authority)
            .field("audience", &self.audience)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl GuardConfig {
    /// Defaults: `typ` must be `at+jwt`, 30 s leeway, results reused up to 60 s (inactive 5 s),
    /// JWKS refetched for unknown `kid`s at most every 10 s and at least every 5 minutes.
    pub fn new(authority: impl Into<String>, audience: impl Into<String>, mode: Mode) -> Self {
        Self {
            authority: authority.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            mode,
            accepted_typ: Some(tessera_types::rfc9068::TYP.to_owned()),
            leeway: Duration::from_secs(30),
            max_cache_ttl: Duration::from_secs(60),
            inactive_cache_ttl: Duration::from_secs(5),
            jwks_min_refresh: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(300),
            cache_capacity: 10_000,
            max_token_len: 8 * 1024,
            http: reqwest::Client::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `client` for calls to the authority (e.g. one trusting a development CA).
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = client;
        self
    }

    /// Uses `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}
