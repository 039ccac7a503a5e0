//! The token source: discovery, one shared cache with early refresh, single flight, retries
//! with back-off, and memory of recent failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tessera_http::{AuthorityClient, DiscoveryError, FailureMemory, SendError, basic_credentials, form_encode};
use tessera_types::rfc6749::{ErrorResponse, TokenResponse};
use tessera_types::{AccessToken, ErrorCode, JWT_BEARER_GRANT, Resource, ScopeSet, UnixTime};

/// What a token request asks for.
enum Ask<'a> {
    /// The client's own token (client credentials, or a workload's JWT bearer grant).
    Token,
    /// RFC 8693.
    Exchange {
        subject_token: &'a str,
        subject_token_type: &'a str,
        resource: Option<&'a Resource>,
        scope: Option<&'a ScopeSet>,
    },
}

use crate::{AuthMethod, ClientConfig, ClientCredentials, ClientError, JWT_BEARER_ASSERTION_TYPE};

/// A token from the authority and when it expires. `Debug` does not print the token
/// ([`AccessToken`] redacts itself).
#[derive(Debug, Clone)]
pub struct Token {
    /// The token, for `Authorization: Bearer`.
    pub access_token: AccessToken,
    /// When the token expires: the time of the answer plus `expires_in` (an hour when the
    /// authority left it out, RFC 6749 §5.1).
    pub expires_at: UnixTime,
    /// Granted scope, as the authority wrote it (RFC 6749 §5.1), read leniently.
    pub scope: Option<ScopeSet>,
    /// The authority bound it to the source's DPoP key (`token_type: DPoP`, RFC 9449 §5): it
    /// goes with `Authorization: DPoP` and a proof per call.
    pub dpop_bound: bool,
}

#[derive(Clone)]
struct Cached {
    token: Token,
    refresh_after: i64,
}

/// A source of access tokens for one client, shared by all callers (cheap to clone):
/// - cached until a jittered point at ~80% of the lifetime;
/// - single-flight: however many callers need a new token at once, one request is made, and
///   while a refresh runs ahead of expiry the others keep using the still-valid token;
/// - network errors and 5xx are retried with exponential backoff; timeouts and 4xx are not,
///   and a 4xx error names the RFC 6749 code;
/// - every call to the authority is bounded by [`AuthorityCalls::request_timeout`](crate::AuthorityCalls::request_timeout), follows no
///   redirect and requires `https`;
/// - a failure is remembered for [`AuthorityCalls::failure_memory`](crate::AuthorityCalls::failure_memory): the callers queued behind a
///   failing request get its error at once rather than each trying again in turn;
/// - [`TokenSource::invalidate`] forces one refresh after an API rejected the token.
#[derive(Clone)]
pub struct TokenSource(Arc<Inner>);

struct Inner {
    cfg: ClientConfig,
    /// The HTTP client for discovery and the token endpoint, or why there is none (a
    /// certificate config given a client that cannot present its certificate).
    http: Result<AuthorityClient, ClientError>,
    /// The token endpoint and the issuer identifier exactly as the metadata publishes it
    /// (the audience of client assertions), from discovery.
    endpoint: tokio::sync::OnceCell<(reqwest::Url, String)>,
    current: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    requests: AtomicU64,
    /// The last failure, which stands for a new attempt while it is remembered.
    last_failure: FailureMemory<ClientError>,
}

enum Attempt {
    Retry(String),
    Fail(ClientError),
}

impl TokenSource {
    /// A source; nothing is fetched until the first call (an `http` authority is refused
    /// then, unless allowed).
    ///
    /// A certificate config ([`ClientCredentials::Certificate`]) gets an HTTP client of its
    /// own, which presents the certificate; every other config uses the one
    /// [`AuthorityCalls::http`](crate::AuthorityCalls::http) names, shared as the caller
    /// shares it.
    ///
    /// # Panics
    /// Without [`AuthorityCalls::http`](crate::AuthorityCalls::http), if no HTTP client can be
    /// built (the TLS backend fails to initialise), as `reqwest::Client::new` does; for a
    /// certificate config, that is a [`ClientError::Credentials`] on the first call instead.
    pub fn new(cfg: ClientConfig) -> Self {
        let http = authority_client(&cfg);
        Self(Arc::new(Inner {
            last_failure: FailureMemory::new(cfg.calls.failure_memory, cfg.clock.clone()),
            cfg,
            http,
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

    /// The `Authorization` value for `token`, and the DPoP proof for a call to `method`
    /// `url` when the token is bound (RFC 9449 §7.1).
    pub(crate) fn authorize(
        &self,
        token: &Token,
        method: &str,
        url: &str,
    ) -> Result<(String, Option<String>), ClientError> {
        let value = token.access_token.expose();
        match (&self.0.cfg.dpop, token.dpop_bound) {
            (Some(key), true) => Ok((format!("DPoP {value}"), Some(key.proof(method, url, self.now(), Some(value))?))),
            _ => Ok((format!("Bearer {value}"), None)),
        }
    }

    /// Keeps the `DPoP-Nonce` of an API's answer for the next proofs to it (RFC 9449 §9).
    pub(crate) fn remember_dpop_nonce(&self, url: &str, headers: &http::HeaderMap) {
        if let Some(key) = &self.0.cfg.dpop {
            key.remember_nonce_from(url, headers);
        }
    }

    fn cached(&self) -> Option<Cached> {
        self.0.current.read().expect("token lock").clone()
    }

    /// A valid access token: from the cache, or fetched.
    pub async fn token(&self) -> Result<Token, ClientError> {
        if let Some(c) = self.cached() {
            let now = self.now();
            if now < c.refresh_after {
                return Ok(c.token);
            }
            if now < c.token.expires_at.0 {
                // Early refresh: one caller refreshes, the others keep the valid token; after
                // a failure, nobody tries again until the failure window has passed.
                if self.remembered_failure().is_some() {
                    return Ok(c.token);
                }
                return match self.0.refresh.try_lock() {
                    Ok(_guard) => match self.fetch_and_remember().await {
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
        // Whoever held the lock may have fetched what we need, or failed moments ago.
        if let Some(c) = self.cached()
            && self.now() < c.refresh_after
        {
            return Ok(c.token);
        }
        if let Some(e) = self.remembered_failure() {
            return Err(e);
        }
        self.fetch_and_remember().await
    }

    /// The failure of a recent attempt, while it is remembered.
    fn remembered_failure(&self) -> Option<ClientError> {
        self.0.last_failure.recall()
    }

    async fn fetch_and_remember(&self) -> Result<Token, ClientError> {
        let result = self.fetch().await;
        match &result {
            Ok(_) => self.0.last_failure.forget(),
            Err(e) => self.0.last_failure.remember(e.clone()),
        }
        result
    }

    /// Drops the cached token if it is `rejected`, so the next call fetches a new one (after an
    /// API answered 401 `invalid_token` or gRPC `Unauthenticated`). A token already replaced
    /// is left alone, so a burst of rejections causes one refresh.
    pub fn invalidate(&self, rejected: &AccessToken) {
        let mut current = self.0.current.write().expect("token lock");
        if current.as_ref().is_some_and(|c| &c.token.access_token == rejected) {
            *current = None;
        }
    }

    async fn fetch(&self) -> Result<Token, ClientError> {
        let cfg = &self.0.cfg;
        let mut delay = cfg.backoff;
        let mut attempt = 1;
        let mut nonce_retried = false;
        loop {
            match self.request(&Ask::Token).await {
                Ok(token) => {
                    let now = self.now();
                    // Saturating: `expires_in` is the server's to choose.
                    let lifetime = token.expires_at.0.saturating_sub(now).max(0) as f64;
                    let refresh_after =
                        now.saturating_add((lifetime * (cfg.refresh_at + self.jitter())).round() as i64);
                    *self.0.current.write().expect("token lock") = Some(Cached { token: token.clone(), refresh_after });
                    return Ok(token);
                }
                // RFC 9449 §8.1: the authority wants its nonce in the proof, and sent it (kept
                // by `request`): one immediate retry with a proof that carries it.
                Err(Attempt::Fail(ClientError::Refused { error: ErrorCode::UseDpopNonce, .. }))
                    if !nonce_retried && cfg.dpop.is_some() =>
                {
                    nonce_retried = true;
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

    async fn endpoint(&self) -> Result<&(reqwest::Url, String), Attempt> {
        let cfg = &self.0.cfg;
        let protocol = |why: String| Attempt::Fail(ClientError::Protocol(why));
        self.0
            .endpoint
            .get_or_try_init(|| async {
                let http = self.http()?;
                let doc = tessera_http::discover(http, &cfg.authority).await.map_err(|e| match e {
                    DiscoveryError::Url(e) => protocol(format!("authority {e}")),
                    DiscoveryError::Send(e) => send_failed("discovery", e),
                    DiscoveryError::Status(status) if status.is_server_error() => {
                        Attempt::Retry(format!("discovery answered {status}"))
                    }
                    DiscoveryError::Status(status) => protocol(format!("discovery answered {status}")),
                    DiscoveryError::Body(e) => protocol(e.to_string()),
                    DiscoveryError::Issuer(_) => protocol(format!("discovery issuer is not {}", cfg.authority)),
                })?;
                // RFC 8705 §5: a client doing mutual TLS uses the `mtls_endpoint_aliases` "in
                // preference to the conventional endpoints": the server may ask for client
                // certificates only there (Duende's `mtls.` host, for one).
                let alias = match cfg.credentials {
                    ClientCredentials::Certificate(_) => {
                        doc.mtls_endpoint_aliases.as_ref().and_then(|a| a.token_endpoint.as_deref())
                    }
                    _ => None,
                };
                let endpoint = alias
                    .or(doc.token_endpoint.as_deref())
                    .ok_or_else(|| protocol("discovery has no token_endpoint".into()))?;
                let endpoint = tessera_http::require_https(endpoint, http.allow_http())
                    .map_err(|e| protocol(format!("token_endpoint {e}")))?;
                Ok((endpoint, doc.issuer))
            })
            .await
    }

    fn http(&self) -> Result<&AuthorityClient, Attempt> {
        self.0.http.as_ref().map_err(|e| Attempt::Fail(e.clone()))
    }

    /// RFC 8693 token exchange: trades `subject_token` (of type `subject_token_type`, e.g.
    /// [`tessera_types::rfc8693::ACCESS_TOKEN`] for a token an API received, or
    /// [`tessera_types::rfc8693::JWT`] for a workload's token) for a token of the same
    /// subject, for `resource` and `scope` when given (never wider than the subject token),
    /// this source's client acting for the subject (`act`). The client needs the authority's
    /// `gt:token-exchange` permission. Not cached: each call asks once (a 5xx is not retried).
    pub async fn exchange(
        &self,
        subject_token: &str,
        subject_token_type: &str,
        resource: Option<&Resource>,
        scope: Option<&ScopeSet>,
    ) -> Result<Token, ClientError> {
        let ask = Ask::Exchange { subject_token, subject_token_type, resource, scope };
        self.request(&ask).await.map_err(|e| match e {
            Attempt::Fail(e) => e,
            Attempt::Retry(why) => ClientError::Unreachable(why),
        })
    }

    async fn request(&self, ask: &Ask<'_>) -> Result<Token, Attempt> {
        let cfg = &self.0.cfg;
        let (endpoint, issuer) = self.endpoint().await?;
        let http = self.http()?;
        let as_grant = matches!((&cfg.credentials, ask), (ClientCredentials::Workload(w), Ask::Token) if w.as_grant);
        let mut body = match ask {
            // RFC 7523 §2.1: a workload token may be the grant itself.
            Ask::Token if as_grant => format!("grant_type={}", form_encode(JWT_BEARER_GRANT)),
            Ask::Token => String::from("grant_type=client_credentials"),
            Ask::Exchange { subject_token, subject_token_type, .. } => format!(
                "grant_type={}&subject_token={}&subject_token_type={}",
                form_encode(tessera_types::rfc8693::GRANT_TYPE),
                form_encode(subject_token),
                form_encode(subject_token_type)
            ),
        };
        let (scope, resources): (Option<&ScopeSet>, Vec<&Resource>) = match ask {
            Ask::Token => (cfg.scope.as_ref(), cfg.resources.iter().collect()),
            Ask::Exchange { scope, resource, .. } => (*scope, resource.iter().copied().collect()),
        };
        if let Some(scope) = scope {
            body.push_str(&format!("&scope={}", form_encode(&scope.to_string())));
        }
        for r in resources {
            body.push_str(&format!("&resource={}", form_encode(r.as_str())));
        }
        let mut req = http.post(endpoint).header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        match (&cfg.credentials, cfg.auth_method) {
            // RFC 6749 §2.3.1: form-encode id and secret, then Basic.
            (ClientCredentials::Secret(secret), AuthMethod::Basic) => {
                req = req.header(http::header::AUTHORIZATION, basic_credentials(&cfg.client_id, secret));
            }
            (ClientCredentials::Secret(secret), AuthMethod::Post) => {
                body.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    form_encode(cfg.client_id.as_str()),
                    form_encode(secret.expose())
                ));
            }
            // RFC 7521 §4.2 and RFC 7523 §2.2: the assertion and its type in the body, with
            // the client_id (optional there, but it lets the server find the key before
            // parsing the JWT). Built here, per attempt: a retry after a 5xx carries a new
            // `jti`, which the server has not seen.
            (ClientCredentials::PrivateKey(key), _) => {
                let assertion = key.assertion(&cfg.client_id, issuer, self.now()).map_err(|e| {
                    Attempt::Fail(ClientError::Credentials(format!("the client assertion could not be signed: {e}")))
                })?;
                body.push_str(&format!(
                    "&client_assertion_type={}&client_assertion={assertion}&client_id={}",
                    form_encode(JWT_BEARER_ASSERTION_TYPE),
                    form_encode(cfg.client_id.as_str())
                ));
            }
            // RFC 8705 §2: "For all requests to the authorization server utilizing mutual-TLS
            // client authentication, the client MUST include the client_id parameter"; the
            // certificate itself went in the TLS handshake, and nothing else identifies the
            // client (no Authorization header, no secret, no assertion).
            // Issue 15: the platform's token, read now (it rotates), as the grant's
            // `assertion` or as `client_assertion`; client_id lets the authority check that
            // its rules name this client.
            (ClientCredentials::Workload(w), _) => {
                let token = w.read().await.map_err(Attempt::Fail)?;
                if as_grant {
                    body.push_str(&format!("&assertion={token}"));
                } else {
                    body.push_str(&format!(
                        "&client_assertion_type={}&client_assertion={token}",
                        form_encode(JWT_BEARER_ASSERTION_TYPE)
                    ));
                }
                body.push_str(&format!("&client_id={}", form_encode(cfg.client_id.as_str())));
            }
            (ClientCredentials::Certificate(_), _) => {
                body.push_str(&format!("&client_id={}", form_encode(cfg.client_id.as_str())));
            }
        }
        // RFC 9449 §5: a proof for this token request binds the token to the key.
        if let Some(key) = &cfg.dpop {
            req = req.header("DPoP", key.proof("POST", endpoint.as_str(), self.now(), None).map_err(Attempt::Fail)?);
        }
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        let r = http.send(endpoint, req.body(body)).await.map_err(|e| send_failed("token endpoint", e))?;
        if let Some(key) = &cfg.dpop {
            key.remember_nonce_from(endpoint.as_str(), r.headers());
        }
        let status = r.status();
        if status.is_server_error() {
            return Err(Attempt::Retry(format!("token endpoint answered {status}")));
        }
        let text = r.text().await.map_err(|e| Attempt::Retry(e.to_string()))?;
        if !status.is_success() {
            // §5.2; a code outside the closed set (or no error body at all) is not an answer
            // this client can act on.
            return Err(Attempt::Fail(match serde_json::from_str::<ErrorResponse>(&text) {
                Ok(e) => ClientError::Refused { error: e.error, description: e.error_description },
                Err(_) => ClientError::Protocol(format!("token endpoint answered {status} without an RFC 6749 error")),
            }));
        }
        let t: TokenResponse =
            serde_json::from_str(&text).map_err(|e| Attempt::Fail(ClientError::Protocol(e.to_string())))?;
        // RFC 9449 §5: asked with a proof, the token is DPoP (an authority that ignored the
        // proof answers Bearer: the token is then used as such); never DPoP unasked.
        let dpop_bound = match (t.token_type.to_ascii_lowercase().as_str(), cfg.dpop.is_some()) {
            ("bearer", _) => false,
            ("dpop", true) => true,
            _ => {
                return Err(Attempt::Fail(ClientError::Protocol(format!(
                    "token_type {} was not asked for",
                    t.token_type
                ))));
            }
        };
        // RFC 6749 §5.1: expires_in is RECOMMENDED; without it, assume an hour.
        let expires_at = UnixTime(self.now()).plus(t.expires_in.unwrap_or(3600));
        Ok(Token {
            access_token: t.access_token,
            expires_at,
            scope: t.scope.as_deref().map(ScopeSet::parse_lenient),
            dpop_bound,
        })
    }
}

/// The HTTP client a source calls the authority with. A certificate config builds its own,
/// presenting the certificate in every TLS handshake: a client passed in cannot be made to
/// present it, so one is refused (Keycloak's and Duende's clients likewise put the certificate
/// on the HTTP transport, not the token request). Other configs use the one passed in, or one
/// of our own bounded and redirect-free as [`AuthorityClient::new`] builds it.
fn authority_client(cfg: &ClientConfig) -> Result<AuthorityClient, ClientError> {
    let identity = match &cfg.credentials {
        ClientCredentials::Certificate(identity) => Some(identity),
        _ => None,
    };
    let calls = &cfg.calls;
    match (&calls.http, identity) {
        (Some(_), Some(identity)) => {
            return Err(ClientError::Credentials(format!(
                "the client certificate {} needs the HTTP client the token source builds to present it: \
                 trust CAs with with_root_certificate instead of passing a client with with_http_client",
                identity.thumbprint()
            )));
        }
        (Some(_), None) => {}
        (None, None) if cfg.root_certificates.is_empty() => {}
        (None, identity) => {
            // As AuthorityClient::new builds its own: bounded, and no redirect, which would
            // carry the request on to a URL nobody configured.
            let mut builder = reqwest::Client::builder()
                .connect_timeout(calls.connect_timeout)
                .timeout(calls.request_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .tls_certs_merge(cfg.root_certificates.iter().cloned());
            if let Some(identity) = identity {
                builder = builder.identity(identity.reqwest_identity());
            }
            let own = builder.build().map_err(|e| ClientError::Credentials(format!("HTTP client: {e}")))?;
            let calls = calls.clone().with_http_client(own);
            return Ok(AuthorityClient::new(&calls).expect("a client passed in is used as is"));
        }
    }
    Ok(AuthorityClient::new(calls).expect("an HTTP client for the authority (TLS backend)"))
}

/// A call that got no answer: a timeout has used the caller's whole budget already (see
/// `max_attempts`) and a redirect is refused, neither retried; other network errors are.
fn send_failed(what: &str, e: SendError) -> Attempt {
    match e {
        SendError::Transport(e) if e.is_timeout() => Attempt::Fail(ClientError::Unreachable(format!("{what}: {e}"))),
        SendError::Transport(e) => Attempt::Retry(format!("{what}: {e}")),
        SendError::Redirect(status) => Attempt::Fail(ClientError::Protocol(format!(
            "{what} answered with a redirect ({status}), which is not followed"
        ))),
    }
}
