//! What a token source needs to know: the authority, the client's credentials and how it
//! authenticates, the scope it asks for, and the bounds on every call to the authority.

use std::sync::Arc;
use std::time::Duration;

use tessera_http::AuthorityCalls;
use tessera_types::clock::{Clock, SystemClock};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

use crate::{AssertionKey, ClientIdentity};

/// What the client proves its identity with. `Debug` prints neither the secret nor the key.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// A shared secret (`client_secret_basic` or `client_secret_post`, see [`AuthMethod`]).
    Secret(ClientSecret),
    /// A private key (`private_key_jwt`, RFC 7523 §2.2): each token request carries a new
    /// assertion signed with it; the key itself is never sent, and the server holds only the
    /// public half, so there is no shared secret to leak from either side.
    PrivateKey(AssertionKey),
    /// A client certificate and its private key (`self_signed_tls_client_auth` or
    /// `tls_client_auth`, RFC 8705 §2): presented in the TLS handshake with the token
    /// endpoint, which binds the tokens it issues to the certificate (§3). Nothing secret is
    /// sent: the form carries only `client_id`.
    Certificate(ClientIdentity),
    /// A token the platform gave the workload (issue 15: Kubernetes, SPIFFE, CI), read at
    /// each token request; the authority's trust rules map it to this client.
    Workload(crate::WorkloadToken),
}

/// How a client secret is sent to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// HTTP Basic (`client_secret_basic`), the default.
    #[default]
    Basic,
    /// In the form body (`client_secret_post`).
    Post,
}

/// Client settings. `Debug` prints everything but the secret or private key, which redact
/// themselves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The issuer; the token endpoint is found by discovery. Must be `https` unless
    /// [`AuthorityCalls::allow_insecure_http`].
    pub authority: Issuer,
    /// The client's id at the authority.
    pub client_id: ClientId,
    /// The client's secret (sent as [`Self::auth_method`] says), private key or certificate.
    pub credentials: ClientCredentials,
    /// Requested scope; `None` asks for every permitted scope.
    pub scope: Option<ScopeSet>,
    /// RFC 8707 `resource` parameters: the APIs the token is meant for, which the authority
    /// may name in its `aud`.
    pub resources: Vec<Resource>,
    /// How a secret is sent: HTTP Basic by default, or in the form body. A private key's
    /// assertion always goes in the form body (RFC 7521 §4.2).
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
    /// Certificate authorities trusted besides the system's by the HTTP client this source
    /// builds itself: with [`ClientCredentials::Certificate`] always (it must present the
    /// certificate), otherwise when [`AuthorityCalls::http`] is `None`. E.g. the development
    /// CA of `tessera serve`.
    pub root_certificates: Vec<reqwest::Certificate>,
    /// How calls to the authority (discovery, token endpoint) are made and bounded. A failure
    /// to get a token is remembered for [`AuthorityCalls::failure_memory`]: meanwhile callers
    /// without a valid token get that error at once, and callers with one keep it. RFC 6749
    /// §3.2 requires TLS at the token endpoint, which receives the secret, so `http` is for
    /// tests and local development only.
    pub calls: AuthorityCalls,
    /// What "now" is for token lifetimes, refresh and failure memory.
    pub clock: Arc<dyn Clock>,
    /// A DPoP key (RFC 9449): token requests carry a proof, so tokens are bound to it, and
    /// [`crate::AuthorizedClient`] and [`crate::BearerLayer`] add a fresh proof to every call.
    pub dpop: Option<crate::DpopKey>,
}

impl ClientConfig {
    /// Settings with the defaults above: refresh at 80% ± 5% of the lifetime, 3 attempts from
    /// 200 ms backoff, connect within 5 s, each call within 10 s, a failure remembered 2 s,
    /// `https` only.
    pub fn new(authority: Issuer, client_id: ClientId, client_secret: ClientSecret) -> Self {
        Self::with_credentials(authority, client_id, ClientCredentials::Secret(client_secret))
    }

    /// Settings for a client that authenticates with a private key (`private_key_jwt`),
    /// otherwise the defaults of [`ClientConfig::new`]. Register the key's public half
    /// ([`AssertionKey::public_jwk`]) with the authority first.
    pub fn with_private_key(authority: Issuer, client_id: ClientId, key: AssertionKey) -> Self {
        Self::with_credentials(authority, client_id, ClientCredentials::PrivateKey(key))
    }

    /// Settings for a client that authenticates with a client certificate (mutual TLS, RFC
    /// 8705 §2), otherwise the defaults of [`ClientConfig::new`]. Register the certificate
    /// with the authority first (Tessera: `tessera client add ID --tls-client-cert FILE` for
    /// `self_signed_tls_client_auth`, or `--tls-client-auth-subject-dn DN` for a certificate
    /// from a client CA, `tls_client_auth`).
    ///
    /// The source builds an HTTP client of its own that presents the certificate, bounded by
    /// [`AuthorityCalls`] as any other; name the CAs it should trust besides the system's with
    /// [`ClientConfig::with_root_certificate`]. A client passed in with
    /// [`ClientConfig::with_http_client`] is refused ([`ClientError::Credentials`] on the
    /// first call): it could not present the certificate.
    ///
    /// [`ClientError::Credentials`]: crate::ClientError::Credentials
    pub fn with_client_certificate(authority: Issuer, client_id: ClientId, identity: ClientIdentity) -> Self {
        Self::with_credentials(authority, client_id, ClientCredentials::Certificate(identity))
    }

    /// Settings for a client with `credentials`, otherwise the defaults of
    /// [`ClientConfig::new`].
    pub fn with_credentials(authority: Issuer, client_id: ClientId, credentials: ClientCredentials) -> Self {
        Self {
            authority,
            client_id,
            credentials,
            scope: None,
            resources: Vec::new(),
            auth_method: AuthMethod::Basic,
            refresh_at: 0.8,
            jitter: 0.05,
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            root_certificates: Vec::new(),
            calls: AuthorityCalls::default(),
            clock: Arc::new(SystemClock),
            dpop: None,
        }
    }

    /// Binds the tokens to `key` (RFC 9449 DPoP): see [`ClientConfig::dpop`].
    pub fn with_dpop(mut self, key: crate::DpopKey) -> Self {
        self.dpop = Some(key);
        self
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

    /// Trusts `ca` besides the system's roots, in the HTTP client this source builds itself
    /// (see [`ClientConfig::root_certificates`]).
    pub fn with_root_certificate(mut self, ca: reqwest::Certificate) -> Self {
        self.root_certificates.push(ca);
        self
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

    /// Sends the secret in the body instead of Basic (no effect with a private key or a
    /// certificate).
    pub fn with_auth_method(mut self, method: AuthMethod) -> Self {
        self.auth_method = method;
        self
    }
}
