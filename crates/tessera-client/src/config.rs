//! What a token source needs to know: the authority, the client's credentials and how it
//! authenticates, the scope it asks for, and the bounds on every call to the authority.

use std::sync::Arc;
use std::time::Duration;

use tessera_http::AuthorityCalls;
use tessera_types::clock::{Clock, SystemClock};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// HTTP Basic (`client_secret_basic`), the default.
    #[default]
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
}

/// Client settings. `Debug` prints everything but the secret, which redacts itself.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The issuer; the token endpoint is found by discovery. Must be `https` unless
    /// [`AuthorityCalls::allow_insecure_http`].
    pub authority: Issuer,
    /// The client's id at the authority.
    pub client_id: ClientId,
    /// The client's secret, sent as [`Self::auth_method`] says.
    pub client_secret: ClientSecret,
    /// Requested scope; `None` asks for every permitted scope.
    pub scope: Option<ScopeSet>,
    /// RFC 8707 `resource` parameters: the APIs the token is meant for, which the authority
    /// may name in its `aud`.
    pub resources: Vec<Resource>,
    /// How the secret is sent: HTTP Basic by default, or in the form body.
    pub auth_method: AuthMethod,
    /// Refresh when this fraction of the lifetime has passed (default 0.8)...
    pub refresh_at: f64,
    /// ...give or take this fraction of the lifetime at random (default 0.05), so a fleet of
    /// instances does not refresh in lockstep.
    pub jitter: f64,
    /// Attempts for a token request that fails on the network or with a 5xx (default 3). A
    /// request that ran out of [`AuthorityCalls::request_timeout`] is not retried: it has already cost
    /// the caller the whole budget, and an authority that slow is not helped by more load.
    pub max_attempts: u32,
    /// First retry delay, doubled each time (default 200 ms).
    pub backoff: Duration,
    /// How calls to the authority (discovery, token endpoint) are made and bounded. A failure
    /// to get a token is remembered for [`AuthorityCalls::failure_memory`]: meanwhile callers
    /// without a valid token get that error at once, and callers with one keep it. RFC 6749
    /// §3.2 requires TLS at the token endpoint, which receives the secret, so `http` is for
    /// tests and local development only.
    pub calls: AuthorityCalls,
    /// What "now" is for token lifetimes, refresh and failure memory.
    pub clock: Arc<dyn Clock>,
}

impl ClientConfig {
    /// Settings with the defaults above: refresh at 80% ± 5% of the lifetime, 3 attempts from
    /// 200 ms backoff, connect within 5 s, each call within 10 s, a failure remembered 2 s,
    /// `https` only.
    pub fn new(authority: Issuer, client_id: ClientId, client_secret: ClientSecret) -> Self {
        Self {
            authority,
            client_id,
            client_secret,
            scope: None,
            resources: Vec::new(),
            auth_method: AuthMethod::Basic,
            refresh_at: 0.8,
            jitter: 0.05,
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            calls: AuthorityCalls::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Asks for `scope` rather than every scope the client is permitted.
    pub fn scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Uses `http` for discovery and the token endpoint: see
    /// [`AuthorityCalls::with_http_client`].
    pub fn with_http_client(self, http: reqwest::Client) -> Self {
        Self { calls: self.calls.with_http_client(http), ..self }
    }

    /// Accepts `http://` for the authority and the token endpoint: tests and local development
    /// only.
    pub fn allow_http(self) -> Self {
        Self { calls: self.calls.allow_http(), ..self }
    }

    /// Bounds discovery and every token request: see [`AuthorityCalls::with_timeouts`].
    pub fn with_timeouts(self, connect: Duration, total: Duration) -> Self {
        Self { calls: self.calls.with_timeouts(connect, total), ..self }
    }

    /// Uses `clock` instead of the system clock, so that tests can move time past token
    /// lifetimes, cache entries and remembered failures.
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
