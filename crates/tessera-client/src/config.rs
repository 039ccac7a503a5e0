use std::sync::Arc;
use std::time::Duration;

use tessera_types::clock::{Clock, SystemClock};

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// HTTP Basic (`client_secret_basic`), the default.
    #[default]
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
}

/// Client settings.
#[derive(Clone)]
pub struct ClientConfig {
    /// The issuer; the token endpoint is found by discovery.
    pub authority: String,
    /// client_id.
    pub client_id: String,
    /// client_secret.
    pub client_secret: String,
    /// Requested scope (space-delimited); `None` asks for every permitted scope.
    pub scope: Option<String>,
    /// RFC 8707 resources.
    pub resources: Vec<String>,
    /// Authentication method.
    pub auth_method: AuthMethod,
    /// Refresh when this fraction of the lifetime has passed (default 0.8)...
    pub refresh_at: f64,
    /// ...give or take this fraction of the lifetime at random (default 0.05), so a fleet of
    /// instances does not refresh in lockstep.
    pub jitter: f64,
    /// Attempts for a token request that fails on the network or with a 5xx (default 3).
    pub max_attempts: u32,
    /// First retry delay, doubled each time (default 200 ms).
    pub backoff: Duration,
    /// HTTP client for discovery and the token endpoint.
    pub http: reqwest::Client,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("authority", &self.authority)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Settings with the defaults above.
    pub fn new(authority: impl Into<String>, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            authority: authority.into().trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            resources: Vec::new(),
            auth_method: AuthMethod::Basic,
            refresh_at: 0.8,
            jitter: 0.05,
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            http: reqwest::Client::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Requests `scope`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Uses `http` (e.g. one trusting a development CA).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Uses `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends the secret in the body instead of Basic.
    pub fn with_auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = method;
        self
    }
}
