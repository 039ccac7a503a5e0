//! Guard settings: authority and audience, validation mode, caches, and the bounds on calls to
//! the authority.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_http::AuthorityCalls;

use crate::GuardError;
use tessera_types::clock::{Clock, SystemClock};
use tessera_types::rfc9068::AccessTokenClaims;
use tessera_types::{ClientId, ClientSecret, Issuer, Resource};

/// The API's own client credentials, for introspection (as the seed's
/// `rs_dataEventRecordsApi` / secret). The secret's own `Debug` redacts it.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
}

impl ClientCredentials {
    /// The API's id and secret at the authority.
    pub fn new(client_id: ClientId, client_secret: ClientSecret) -> Self {
        Self { client_id, client_secret }
    }
}

/// How tokens are validated.
#[derive(Debug, Clone)]
pub enum Mode {
    /// By the authority itself, in this process: an authorization server guarding its own
    /// endpoints (Tessera's admin API) hands the guard its token lookup instead of letting it
    /// fetch discovery and JWKS from itself over HTTP. Nothing is fetched and nothing is
    /// cached: every request asks the authority, so a revoked token or a disabled client is
    /// refused on the next request. The audience, the issuer (the configured authority, when
    /// the answer names one) and `exp` are still checked here, as for introspection.
    InProcess(InProcess),
    /// Locally: signature with keys from the authority's JWKS, then claims.
    Jwt,
    /// By asking the authority (RFC 7662) with the API's own credentials. Tokens that cannot be
    /// the authority's (see [`OpaqueTokens`]) are refused without asking.
    Introspection(ClientCredentials),
    /// JWTs locally, anything else (reference tokens) by introspection, if it has the shape of
    /// [`GuardConfig::opaque_tokens`].
    Auto(ClientCredentials),
}

/// The future an [`InProcessAuthority`] answers with.
pub type InProcessFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<AccessTokenClaims>, GuardError>> + Send + 'a>>;

/// An authority in the guard's own process ([`Mode::InProcess`]): what it knows of a token.
/// A closure `Fn(String) -> impl Future<...>` is one (habit: I/O behind a small trait, so
/// tests pass a closure).
pub trait InProcessAuthority: Send + Sync {
    /// The claims of `token` if it is one of the authority's and active now (signature,
    /// expiry, revocation, its client still enabled: the authority's own checks), `None` if
    /// not; `Err` ([`GuardError::Unavailable`]) when that cannot be told now.
    fn introspect<'a>(&'a self, token: &'a str) -> InProcessFuture<'a>;
}

impl<F, Fut> InProcessAuthority for F
where
    F: Fn(String) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Option<AccessTokenClaims>, GuardError>> + Send + 'static,
{
    fn introspect<'a>(&'a self, token: &'a str) -> InProcessFuture<'a> {
        Box::pin(self(token.to_owned()))
    }
}

/// The authority of [`Mode::InProcess`]. Cheap to clone.
#[derive(Clone)]
pub struct InProcess(pub(crate) Arc<dyn InProcessAuthority>);

impl InProcess {
    #[allow(missing_docs)]
    pub fn new(authority: impl InProcessAuthority + 'static) -> Self {
        Self(Arc::new(authority))
    }
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess")
    }
}

/// Which opaque (non-JWT) tokens are worth an introspection call. Anything else is refused
/// locally with `invalid_token`: introspection costs the authority a lookup, so a flood of
/// garbage must not turn into a flood of introspection requests (RFC 7662 §4 on token
/// scanning through the introspection endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpaqueTokens {
    /// Tessera's reference tokens: exactly 43 base64url characters without padding, i.e. 256
    /// random bits. In [`Mode::Introspection`], compact JWS tokens (three parts with a header
    /// that parses) are introspected too.
    #[default]
    TesseraReference,
    /// Any RFC 6750 `b64token` up to [`GuardConfig::max_token_len`], for authorities whose
    /// reference tokens have another shape.
    Any,
}

/// What the guard does while its revocation feed is stale (see [`RevocationFeed::max_staleness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStale {
    /// Keep validating tokens as before, logging a WARN when the feed turns stale (and an INFO
    /// when it recovers): availability first, revocations reach this API late. The default,
    /// because local JWT validation exists so that an authority outage does not take every
    /// API down with it.
    #[default]
    KeepServing,
    /// Refuse every token with 503 / gRPC `Unavailable` while stale: revocations first. A
    /// revoked token is never served longer than `max_staleness` plus one poll.
    FailClosed,
}

/// Following the authority's revocation feed (RFC 8936 poll delivery of RFC 8417 Security
/// Event Tokens at discovery's `revocation_events_endpoint`): revoked tokens, disabled
/// clients and removed signing keys stop working here within one long poll, without
/// introspecting each request. Needs the `ept:events` permission for the API's client.
#[derive(Debug, Clone)]
pub struct RevocationFeed {
    /// The API's own client: it authenticates the polls (RFC 6749 §2.3.1 Basic), and its
    /// `client_id` is the `aud` every SET must carry (RFC 8417 §2.2).
    pub credentials: ClientCredentials,
    /// How long since the last successful poll (or, before the first, since the guard was
    /// built) the feed still counts as current (default 60 s). Past it, [`Self::on_stale`].
    pub max_staleness: Duration,
    /// What to do while stale.
    pub on_stale: OnStale,
    /// Most SETs asked for per poll (RFC 8936 §2.4 `maxEvents`, default 500).
    pub max_events: u32,
    /// First wait after a failed poll (or an empty answer that came back at once), doubled
    /// per failure up to [`Self::retry_max`] (defaults 1 s and 30 s).
    pub retry_min: Duration,
    /// Longest wait between failed polls.
    pub retry_max: Duration,
    /// Longest one poll may take, the authority's long poll included (default 30 s; Tessera
    /// holds a poll up to about 10 s).
    pub poll_timeout: Duration,
    /// Most revoked tokens remembered (default 200 000). Each is kept until its `exp` (plus
    /// leeway); should more be revoked than fit, those expiring soonest are forgotten and the
    /// feed counts as stale until the last of them has expired (see [`OnStale`]): a lost
    /// revocation is never silent.
    pub capacity: usize,
}

impl RevocationFeed {
    /// Defaults: stale after 60 s and then keep serving (with a warning), 500 events per poll,
    /// retries after 1 s doubling up to 30 s, polls bounded by 30 s, 200 000 revoked tokens.
    pub fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            max_staleness: Duration::from_secs(60),
            on_stale: OnStale::KeepServing,
            max_events: 500,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            poll_timeout: Duration::from_secs(30),
            capacity: 200_000,
        }
    }
}

/// Guard settings: the authority and audience, as `options.Authority` and `options.Audience`
/// in ASP.NET, plus the validation mode, cache bounds and the limits on calls to the authority.
/// `Debug` prints the API's secret (in [`Mode`]) as `[redacted]`.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The issuer; discovery is read from `{authority}/.well-known/openid-configuration`
    /// and its `issuer` must equal this. Must be `https` unless
    /// [`AuthorityCalls::allow_insecure_http`].
    pub authority: Issuer,
    /// The audience tokens must carry in `aud` (RFC 9068 §4), also the `WWW-Authenticate`
    /// realm.
    pub audience: Resource,
    /// Locally as JWTs, by introspection, or each token by its shape (see [`Mode`]).
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
    /// Most entries in the cache of validated JWTs and in that of active introspection
    /// results. When full, the entry that expires soonest (an expired one first) makes room;
    /// valid entries are never dropped wholesale.
    pub cache_capacity: usize,
    /// Most entries in the cache of inactive introspection results. Kept apart from the active
    /// results so a flood of garbage tokens only evicts other garbage.
    pub negative_cache_capacity: usize,
    /// Longest bearer token considered (default 8 KiB): a longer one is refused as
    /// `invalid_token` before it is parsed, looked up or sent anywhere.
    pub max_token_len: usize,
    /// Which opaque tokens are introspected; the rest is refused locally.
    pub opaque_tokens: OpaqueTokens,
    /// How calls to the authority (discovery, JWKS, introspection) are made and bounded. A call
    /// that fails (network error, timeout, 5xx, a redirect, an unusable answer) fails closed
    /// (503 / `Unavailable`) and is remembered per endpoint for
    /// [`AuthorityCalls::failure_memory`]: meanwhile requests that need that endpoint fail at
    /// once instead of calling again.
    pub calls: AuthorityCalls,
    /// What "now" is for token lifetimes, caches and failure memory.
    pub clock: Arc<dyn Clock>,
    /// The revocation feed to follow; `None` (the default): revocations reach this API only
    /// when cached validations expire (JWTs: never before their `exp`).
    pub revocations: Option<RevocationFeed>,
    /// The API's externally visible base URL (scheme, host, optional port and path prefix,
    /// e.g. `https://api.example.com`), behind a proxy that rewrites `Host` or terminates TLS.
    /// A DPoP proof's `htu` (RFC 9449 §4.3 item 9) must be this plus the request path. `None`
    /// (the default): `https://{host}{path}`, the host taken from `:authority` (HTTP/2, gRPC)
    /// or `Host` (HTTP/1.1), which the client chooses: set this in production so that a proof
    /// made for another host is refused.
    pub public_base_url: Option<String>,
    /// How old a DPoP proof's `iat` may be (RFC 9449 §4.3 item 11, default 60 s). Also how
    /// long each proof's `jti` is remembered against replay.
    pub dpop_max_age: Duration,
    /// How far in the future a DPoP proof's `iat` may be (clock skew, default 5 s).
    pub dpop_leeway: Duration,
    /// Most DPoP proofs remembered against replay (RFC 9449 §11.1, default 100 000): the
    /// proofs accepted within one [`Self::dpop_max_age`]. When full, new proofs are refused
    /// (503 / `Unavailable`) until old ones age out: a replay is never let through for want
    /// of room.
    pub dpop_replay_capacity: usize,
    /// Server nonces in DPoP proofs (RFC 9449 §9): `None` (the default) accepts proofs
    /// without one.
    pub dpop_nonces: Option<DpopNonces>,
}

/// Nonces this API requires in DPoP proofs (RFC 9449 §9), so that a proof cannot have been
/// made ahead of time: a proof without the current nonce is answered 401
/// `use_dpop_nonce` with the nonce in `DPoP-Nonce`, and every answer to a DPoP request
/// carries the current one. Stateless (an HMAC of the rotation period under `secret`):
/// instances behind one load balancer accept each other's nonces when they share the secret.
#[derive(Clone)]
pub struct DpopNonces {
    pub(crate) secret: Arc<[u8]>,
    /// How long a nonce is handed out; it is accepted for as long again (default 5 minutes).
    pub rotation: Duration,
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpopNonces {{ secret: <redacted>, rotation: {:?} }}", self.rotation)
    }
}

impl DpopNonces {
    /// Nonces from a secret shared by the API's instances: at least 32 bytes of randomness.
    pub fn shared(secret: &[u8]) -> Result<Self, GuardError> {
        if secret.len() < 32 {
            return Err(GuardError::Unavailable("a DPoP nonce secret needs at least 32 bytes".into()));
        }
        Ok(Self { secret: secret.into(), rotation: Duration::from_secs(300) })
    }

    /// Nonces from a random secret of this process: for an API served by one instance.
    pub fn per_process() -> Self {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).expect("system randomness");
        Self { secret: secret.into(), rotation: Duration::from_secs(300) }
    }

    /// Another rotation period (at least a second).
    pub fn with_rotation(mut self, rotation: Duration) -> Self {
        self.rotation = rotation.max(Duration::from_secs(1));
        self
    }
}

impl GuardConfig {
    /// Defaults: `typ` must be `at+jwt`, 30 s leeway, results reused up to 60 s (inactive 5 s),
    /// JWKS refetched for unknown `kid`s at most every 10 s and at least every 5 minutes;
    /// 10 000 cached validations and 1 000 inactive results; opaque tokens must be Tessera
    /// reference tokens; calls to the authority connect within 5 s and finish within 10 s, a
    /// failed call is remembered 2 s; `https` only; DPoP proofs valid 60 s (5 s ahead), at most
    /// 100 000 remembered, for the URL `https://{host}{path}`.
    pub fn new(authority: Issuer, audience: Resource, mode: Mode) -> Self {
        Self {
            authority,
            audience,
            mode,
            accepted_typ: Some(tessera_types::rfc9068::TYP.to_owned()),
            leeway: Duration::from_secs(30),
            max_cache_ttl: Duration::from_secs(60),
            inactive_cache_ttl: Duration::from_secs(5),
            jwks_min_refresh: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(300),
            cache_capacity: 10_000,
            negative_cache_capacity: 1_000,
            max_token_len: 8 * 1024,
            opaque_tokens: OpaqueTokens::TesseraReference,
            calls: AuthorityCalls::default(),
            clock: Arc::new(SystemClock),
            revocations: None,
            public_base_url: None,
            dpop_max_age: Duration::from_secs(60),
            dpop_leeway: Duration::from_secs(5),
            dpop_replay_capacity: 100_000,
            dpop_nonces: None,
        }
    }

    /// Requires server nonces in DPoP proofs: see [`DpopNonces`].
    pub fn with_dpop_nonces(mut self, nonces: DpopNonces) -> Self {
        self.dpop_nonces = Some(nonces);
        self
    }

    /// Follows the authority's revocation feed as `credentials` (the API's client, with the
    /// `ept:events` permission), with the defaults of [`RevocationFeed::new`].
    pub fn follow_revocations(mut self, credentials: ClientCredentials) -> Self {
        self.revocations = Some(RevocationFeed::new(credentials));
        self
    }

    /// How stale the revocation feed may get, and what then; no effect unless
    /// [`Self::follow_revocations`] was called first.
    pub fn with_staleness(mut self, max_staleness: Duration, on_stale: OnStale) -> Self {
        if let Some(f) = &mut self.revocations {
            f.max_staleness = max_staleness;
            f.on_stale = on_stale;
        }
        self
    }

    /// Uses `client` for calls to the authority: see [`AuthorityCalls::with_http_client`].
    pub fn with_http_client(self, client: reqwest::Client) -> Self {
        Self { calls: self.calls.with_http_client(client), ..self }
    }

    /// Uses `clock` instead of the system clock, so that tests can move time past token
    /// lifetimes, cache entries and remembered failures.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The externally visible base URL DPoP proofs are made for: see
    /// [`Self::public_base_url`].
    pub fn with_public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// Accepts `http://` for the authority and the endpoints discovery names: tests and local
    /// development only.
    pub fn allow_http(self) -> Self {
        Self { calls: self.calls.allow_http(), ..self }
    }

    /// Bounds every call to the authority: see [`AuthorityCalls::with_timeouts`].
    pub fn with_timeouts(self, connect: Duration, total: Duration) -> Self {
        Self { calls: self.calls.with_timeouts(connect, total), ..self }
    }
}
