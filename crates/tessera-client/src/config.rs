//! What a token source needs to know: the authority, the client's credentials and how it
//! authenticates, the scope it asks for, and the bounds on every call to the authority.

use std::sync::Arc;
use std::time::Duration;

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
    /// [`Self::allow_insecure_http`].
    pub authority: Issuer,
    /// The client's id at the authority.
    pub client_id: ClientId,
    /// The client's secret, sent as [`Self::auth_method`] says.
    pub client_secret: ClientSecret,
    /// Requested scope; `None` asks for every permitted scope.
    pub scope: Option<ScopeSet>,
    /// RFC 8707 resources.
    pub resources: Vec<Resource>,
    /// Authentication method.
    pub auth_method: AuthMethod,
    /// Refresh when this fraction of the lifetime has passed (default 0.8)...
    pub refresh_at: f64,
    /// ...give or take this fraction of the lifetime at random (default 0.05), so a fleet of
    /// instances does not refresh in lockstep.
    pub jitter: f64,
    /// Attempts for a token request that fails on the network or with a 5xx (default 3). A
    /// request that ran out of [`Self::request_timeout`] is not retried: it has already cost
    /// the caller the whole budget, and an authority that slow is not helped by more load.
    pub max_attempts: u32,
    /// First retry delay, doubled each time (default 200 ms).
    pub backoff: Duration,
    /// Most time to set up a connection to the authority (default 5 s). Applies to the HTTP
    /// client the source builds itself (when [`Self::http`] is `None`).
    pub connect_timeout: Duration,
    /// Most time for one call to the authority, discovery or token request, from connecting to
    /// the end of the response body (default 10 s). Applied to every request, also on a client
    /// passed in with [`Self::with_http_client`].
    pub request_timeout: Duration,
    /// How long a failure to get a token is remembered (default 2 s): meanwhile callers without
    /// a valid token get that error at once, and callers with one keep it, instead of each
    /// asking a down authority again (and again waiting out its timeouts). The clock has whole
    /// seconds, so the window is this rounded up to a second, give or take one.
    pub failure_memory: Duration,
    /// Accept `http://` for the authority and the token endpoint (tests, local development
    /// only): RFC 6749 §3.2 requires TLS at the token endpoint, which receives the secret.
    pub allow_insecure_http: bool,
    /// HTTP client for discovery and the token endpoint (e.g. one trusting your CA). `None`:
    /// one built by [`crate::TokenSource::new`] with [`Self::connect_timeout`],
    /// [`Self::request_timeout`] and no redirects. A client passed in should not follow
    /// redirects either (`reqwest::redirect::Policy::none()`): an answer that came through a
    /// redirect is refused, but the client will already have sent the request on.
    pub http: Option<reqwest::Client>,
    /// The clock.
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
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            failure_memory: Duration::from_secs(2),
            allow_insecure_http: false,
            http: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Requests `scope`.
    pub fn scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Uses `http` (e.g. one trusting a development CA). Build it with
    /// `redirect(reqwest::redirect::Policy::none())`; [`Self::request_timeout`] is applied to
    /// each of its requests.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Accepts `http://` for the authority and the token endpoint: tests and local development
    /// only.
    pub fn allow_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Bounds every call to the authority: `connect` for connection setup (own client only),
    /// `total` for the whole call.
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.connect_timeout = connect;
        self.request_timeout = total;
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
