//! The guard's side of calling the authority ([`tessera_http`]): every way a call can fail
//! becomes `Unavailable`, so the guard fails closed (503 / gRPC `Unavailable`), and a failure
//! is remembered per endpoint so that a down authority is not asked again by every request
//! that arrives meanwhile.

use std::sync::Arc;
use std::time::Duration;

use tessera_http::{AuthorityClient, SendError};
use tessera_types::clock::Clock;

use crate::{GuardConfig, GuardError};

pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> GuardError {
    GuardError::Unavailable(format!("{what}: {e}"))
}

/// Whole seconds of `d`, saturating (config durations are user input).
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The https rule of [`tessera_http::require_https`]; a URL it refuses fails closed as
/// `Unavailable`, prefixed with what the URL was for.
pub(crate) fn require_https(what: &str, url: &str, allow_http: bool) -> Result<reqwest::Url, GuardError> {
    tessera_http::require_https(url, allow_http).map_err(|e| unavailable(what, e))
}

/// The HTTP side of the guard: one client, the per-request timeout, the https rule.
pub(crate) struct AuthorityHttp(AuthorityClient);

impl AuthorityHttp {
    pub(crate) fn new(cfg: &GuardConfig) -> Result<Self, GuardError> {
        AuthorityClient::new(&cfg.calls).map(Self).map_err(|e| unavailable("http client", e))
    }

    pub(crate) fn client(&self) -> &AuthorityClient {
        &self.0
    }

    pub(crate) fn allow_http(&self) -> bool {
        self.0.allow_http()
    }

    pub(crate) fn post(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.0.post(url)
    }

    pub(crate) fn get(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.0.get(url)
    }

    /// Sends `req` (built for `url`) within the timeout and returns a 2xx response. Anything
    /// else is `Unavailable`: a 3xx (not followed), a response that came through a redirect
    /// the client followed anyway (a client passed in), 4xx, 5xx, network errors, timeouts.
    pub(crate) async fn send(
        &self,
        what: &str,
        url: &reqwest::Url,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GuardError> {
        let r = self.0.send(url, req).await.map_err(|e| send_failed(what, e))?;
        if !r.status().is_success() {
            return Err(unavailable(what, r.status()));
        }
        Ok(r)
    }
}

pub(crate) fn send_failed(what: &str, e: SendError) -> GuardError {
    match e {
        SendError::Transport(e) => unavailable(what, e),
        SendError::Redirect(status) => unavailable(what, format!("redirect refused ({status})")),
    }
}

/// The last failure of one endpoint, remembered for a short window.
pub(crate) struct FailureMemory {
    what: &'static str,
    last: tessera_http::FailureMemory<String>,
}

impl FailureMemory {
    pub(crate) fn new(what: &'static str, window: Duration, clock: Arc<dyn Clock>) -> Self {
        Self { what, last: tessera_http::FailureMemory::new(window, clock) }
    }

    /// `Err(Unavailable)` while a failure is remembered: the caller must not call out.
    pub(crate) fn check(&self) -> Result<(), GuardError> {
        match self.last.recall() {
            Some(why) => {
                Err(GuardError::Unavailable(format!("{} failed moments ago, not retried yet: {why}", self.what)))
            }
            None => Ok(()),
        }
    }

    /// Runs `call` unless a failure is remembered; remembers it if it fails as `Unavailable`.
    pub(crate) async fn guard<T>(&self, call: impl Future<Output = Result<T, GuardError>>) -> Result<T, GuardError> {
        self.check()?;
        let result = call.await;
        match &result {
            Err(GuardError::Unavailable(why)) => self.last.remember(why.clone()),
            Ok(_) => self.last.forget(),
            Err(_) => {}
        }
        result
    }
}
