//! Calls to the authority, each bounded: a total timeout on every request, no redirects, and
//! a short memory of the last failure per endpoint so that a down authority is not asked again
//! by every request that arrives meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_types::clock::Clock;

use crate::{GuardConfig, GuardError};

fn unavailable(what: &str, e: impl std::fmt::Display) -> GuardError {
    GuardError::Unavailable(format!("{what}: {e}"))
}

/// Whole seconds of `d`, saturating (config durations are user input).
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Refuses a URL that is not `https` (or `http` when allowed). RFC 8414 §2: the issuer is "a
/// URL that uses the "https" scheme"; RFC 7662 §2: "The introspection endpoint MUST be
/// protected by a transport-layer security mechanism"; the JWKS must come over TLS or anyone
/// on the path can hand the guard their own keys.
pub(crate) fn require_https(what: &str, url: &str, allow_http: bool) -> Result<reqwest::Url, GuardError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| unavailable(what, format!("{url} is not a URL ({e})")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http => Ok(parsed),
        "http" => Err(unavailable(what, format!("{url} is not https (allow_insecure_http is off)"))),
        other => Err(unavailable(what, format!("{url} has scheme {other}, not https"))),
    }
}

/// The HTTP side of the guard: one client, the per-request timeout, the https rule.
pub(crate) struct AuthorityHttp {
    client: reqwest::Client,
    timeout: Duration,
    pub(crate) allow_http: bool,
}

impl AuthorityHttp {
    pub(crate) fn new(cfg: &GuardConfig) -> Result<Self, GuardError> {
        let client = match &cfg.http {
            Some(c) => c.clone(),
            None => reqwest::Client::builder()
                .connect_timeout(cfg.connect_timeout)
                .timeout(cfg.request_timeout)
                // A redirect would send the API's credentials and the caller's token on to a
                // URL nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| unavailable("http client", e))?,
        };
        Ok(Self { client, timeout: cfg.request_timeout, allow_http: cfg.allow_insecure_http })
    }

    pub(crate) fn get(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.client.get(url.clone())
    }

    pub(crate) fn post(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.client.post(url.clone())
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
        let r = req.timeout(self.timeout).send().await.map_err(|e| unavailable(what, e))?;
        if r.status().is_redirection() || r.url() != url {
            return Err(unavailable(what, format!("redirect refused ({})", r.status())));
        }
        if !r.status().is_success() {
            return Err(unavailable(what, r.status()));
        }
        Ok(r)
    }
}

/// The last failure of one endpoint, remembered for a short window.
pub(crate) struct FailureMemory {
    what: &'static str,
    window: i64,
    clock: Arc<dyn Clock>,
    last: Mutex<Option<(i64, String)>>,
}

impl FailureMemory {
    pub(crate) fn new(what: &'static str, window: Duration, clock: Arc<dyn Clock>) -> Self {
        // Rounded up: a configured 500 ms still means "not again this second".
        let window = secs(window).saturating_add(i64::from(window.subsec_nanos() > 0));
        Self { what, window, clock, last: Mutex::new(None) }
    }

    /// `Err(Unavailable)` while a failure is remembered: the caller must not call out.
    pub(crate) fn check(&self) -> Result<(), GuardError> {
        let now = self.clock.now().0;
        match &*self.last.lock().expect("failure lock") {
            Some((until, why)) if now < *until => {
                Err(GuardError::Unavailable(format!("{} failed moments ago, not retried yet: {why}", self.what)))
            }
            _ => Ok(()),
        }
    }

    /// Runs `call` unless a failure is remembered; remembers it if it fails as `Unavailable`.
    pub(crate) async fn guard<T>(&self, call: impl Future<Output = Result<T, GuardError>>) -> Result<T, GuardError> {
        self.check()?;
        let result = call.await;
        match &result {
            Err(GuardError::Unavailable(why)) if self.window > 0 => {
                let until = self.clock.now().0.saturating_add(self.window);
                *self.last.lock().expect("failure lock") = Some((until, why.clone()));
            }
            Ok(_) => *self.last.lock().expect("failure lock") = None,
            Err(_) => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_2_the_authority_and_its_endpoints_must_be_https() {
        assert!(require_https("x", "https://as.example", false).is_ok());
        assert!(require_https("x", "http://as.example", false).is_err());
        assert!(require_https("x", "http://as.example", true).is_ok());
        assert!(require_https("x", "ftp://as.example", true).is_err());
        assert!(require_https("x", "not a url", true).is_err());
    }
}
