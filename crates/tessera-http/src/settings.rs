//! The settings of every call to the authority, embedded by the guard's and the client's
//! configs as their `calls` field.

use std::time::Duration;

/// How a service calls the authority: the bounds on each call, how long a failure is
/// remembered, whether `http` is tolerated, and optionally the HTTP client to use.
#[derive(Debug, Clone)]
pub struct AuthorityCalls {
    /// Most time to set up a connection to the authority (TCP and TLS; default 5 s). Applies to
    /// the HTTP client built from these settings (when [`Self::http`] is `None`).
    pub connect_timeout: Duration,
    /// Most time for one call to the authority, from connecting to the end of the response body
    /// (default 10 s). Applied to every request, also on a client passed in with
    /// [`Self::with_http_client`].
    pub request_timeout: Duration,
    /// How long a failed call to the authority is remembered (default 2 s): meanwhile callers
    /// get the failure at once instead of asking a down authority again (and again waiting out
    /// its timeouts). Clocks have whole seconds, so the window is this rounded up to a second,
    /// give or take one.
    pub failure_memory: Duration,
    /// Accept `http://` for the authority and the endpoints discovery names (tests, local
    /// development only): tokens and credentials would cross the network in clear.
    pub allow_insecure_http: bool,
    /// HTTP client for the calls (e.g. one trusting your CA). `None`: one built with
    /// [`Self::connect_timeout`], [`Self::request_timeout`] and no redirects. A client passed
    /// in should not follow redirects either (`reqwest::redirect::Policy::none()`): an answer
    /// that came through a redirect is refused, but the client will already have sent the
    /// request (and its credentials) on.
    pub http: Option<reqwest::Client>,
}

impl Default for AuthorityCalls {
    /// Connect within 5 s, each call within 10 s, a failure remembered 2 s, `https` only, an
    /// HTTP client of our own.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            failure_memory: Duration::from_secs(2),
            allow_insecure_http: false,
            http: None,
        }
    }
}

impl AuthorityCalls {
    /// Uses `client` for calls to the authority (e.g. one trusting a development CA). Build it
    /// with `redirect(reqwest::redirect::Policy::none())`; [`Self::request_timeout`] is applied
    /// to each of its requests.
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Accepts `http://` for the authority and its endpoints: tests and local development only.
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
}
