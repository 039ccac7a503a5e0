//! Validation of one bearer token: locally as a JWT, or by introspection, with the caches and
//! the single flight in front of the authority.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tessera_jose::dpop::{NonceIssuer, ProofExpectations};
use tessera_jose::{Expectations, JoseError, Jws, verify_access_token};
use tessera_types::rfc9068::AccessTokenClaims;

use crate::binding::{ClientCertificate, Presentation, check_binding, check_proof};
use crate::cache::{self, TokenKey, TtlCache};
use crate::feed::Feed;
use crate::http::{AuthorityHttp, FailureMemory, require_https, secs};
use crate::introspect::introspect;
use crate::jwks::Authority;
use crate::metrics::bump;
use crate::replay::{Replay, ReplayCache};
use crate::shape::{looks_like_jwt, opaque_fits};
use crate::{ClientCredentials, GuardConfig, GuardError, InProcess, Mode, OpaqueTokens, Principal};

/// Validates bearer tokens for one API (audience) of one authority. Cheap to clone.
#[derive(Clone)]
pub struct Guard(pub(crate) Arc<Inner>);

/// A DPoP proof and the request it must name (RFC 9449 §4.3 items 8–9).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DpopProof<'a> {
    pub(crate) proof: &'a str,
    pub(crate) method: &'a str,
    pub(crate) url: &'a str,
}

/// One introspection in flight; every request for the same token waits on it.
type Flight = Arc<tokio::sync::OnceCell<Result<Option<Principal>, GuardError>>>;

pub(crate) struct Inner {
    pub(crate) cfg: GuardConfig,
    pub(crate) authority: Authority,
    /// The revocation feed followed, if configured: checked on every request.
    pub(crate) feed: Option<Feed>,
    /// Validated JWTs: signature checks are the expensive part and a client reuses its token.
    jwt_cache: TtlCache<Principal>,
    /// Active introspection results, reused until `max_cache_ttl` or the token's `exp`.
    introspection_cache: TtlCache<Principal>,
    /// Inactive introspection results, apart: garbage that reaches the authority only evicts
    /// other garbage, never a valid token's entry.
    inactive_cache: TtlCache<()>,
    /// Introspections in flight, by token: concurrent requests with one token make one call.
    in_flight: Mutex<HashMap<TokenKey, Flight>>,
    introspection_failure: FailureMemory,
    /// DPoP proofs accepted, by key and `jti`, until their `iat` leaves the window.
    replay: ReplayCache,
    /// RFC 9449 §9 nonces, when the API requires them.
    nonces: Option<NonceIssuer>,
    /// What [`Guard::metrics`] reports.
    pub(crate) counters: crate::metrics::Counters,
    /// When the guard was built (its clock): the feed's lag before its first success.
    pub(crate) built_at: i64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Guard").field(&self.0.cfg).finish()
    }
}

fn inactive() -> GuardError {
    GuardError::InvalidToken("token is not active".into())
}

impl Guard {
    /// A guard; nothing is fetched until the first request. Fails if the authority is not an
    /// `https` URL (unless [`crate::AuthorityCalls::allow_insecure_http`]) or no HTTP client can
    /// be built.
    pub fn new(mut cfg: GuardConfig) -> Result<Self, GuardError> {
        if let Some(base) = &mut cfg.public_base_url {
            let ok = (base.starts_with("https://") || base.starts_with("http://")) && !base.contains(['?', '#']);
            if !ok {
                return Err(GuardError::Unavailable(format!(
                    "public_base_url {base:?}: expected an http(s) URL without query or fragment"
                )));
            }
            // The request path, which starts with `/`, is appended.
            base.truncate(base.trim_end_matches('/').len());
        }
        // An authority in this process is never called over the network.
        if !matches!(cfg.mode, Mode::InProcess(_)) {
            require_https("authority", cfg.authority.as_str(), cfg.calls.allow_insecure_http)?;
        }
        let memory = |what| FailureMemory::new(what, cfg.calls.failure_memory, cfg.clock.clone());
        let authority = Authority::new(
            AuthorityHttp::new(&cfg)?,
            cfg.authority.clone(),
            cfg.jwks_min_refresh,
            cfg.jwks_max_age,
            (memory("discovery"), memory("jwks")),
            cfg.clock.clone(),
        );
        Ok(Self(Arc::new(Inner {
            jwt_cache: TtlCache::new(cfg.cache_capacity),
            introspection_cache: TtlCache::new(cfg.cache_capacity),
            inactive_cache: TtlCache::new(cfg.negative_cache_capacity),
            in_flight: Mutex::default(),
            introspection_failure: memory("introspection"),
            replay: ReplayCache::new(cfg.dpop_replay_capacity),
            nonces: cfg.dpop_nonces.as_ref().map(|n| NonceIssuer::new(&n.secret, n.rotation.as_secs().max(1))),
            feed: cfg.revocations.clone().map(|f| Feed::new(f, cfg.clock.now().0)),
            counters: Default::default(),
            built_at: cfg.clock.now().0,
            authority,
            cfg,
        })))
    }

    #[allow(missing_docs)]
    pub fn config(&self) -> &GuardConfig {
        &self.0.cfg
    }

    fn now(&self) -> i64 {
        self.0.cfg.clock.now().0
    }

    /// Validates `token`, presented as a bearer token (RFC 6750), and returns who it stands
    /// for. With a revocation feed ([`GuardConfig::revocations`]), the token is also checked
    /// against what the feed said (after validation, on cached validations too), and the feed
    /// is started on first use. A token bound to a key or certificate (`cnf`) is refused: it
    /// is no bearer token (see [`Self::authenticate_dpop`], [`Self::authenticate_with_certificate`]).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, GuardError> {
        self.counted(self.present(token, None, None).await)
    }

    /// Counts the outcome of a call from the host (the layer counts its own, with the
    /// policy's verdict).
    fn counted(&self, result: Result<Principal, GuardError>) -> Result<Principal, GuardError> {
        self.0.counters.outcome(&result);
        result
    }

    /// As [`Self::authenticate`], over a mutual-TLS connection whose client presented
    /// `certificate`: a token bound to a certificate (RFC 8705 §3, `cnf.x5t#S256`) passes if
    /// it is this one; unbound tokens pass as bearer tokens.
    pub async fn authenticate_with_certificate(
        &self,
        token: &str,
        certificate: &ClientCertificate,
    ) -> Result<Principal, GuardError> {
        self.counted(self.present(token, None, Some(certificate)).await)
    }

    /// Validates a DPoP-bound `token` presented with the `DPoP` scheme (RFC 9449 §7.1) and
    /// its `proof` for the request `method url` (for gRPC `POST` and
    /// `https://{authority}/{package.Service}/{Method}`): the token as [`Self::authenticate`]
    /// does, then, on cached validations too, the proof (§4.3: signature, `htm`, `htu`,
    /// `iat` within [`GuardConfig::dpop_max_age`], `ath`), its key against the token's
    /// `cnf.jkt`, and that its `jti` was not seen before.
    pub async fn authenticate_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        url: &str,
    ) -> Result<Principal, GuardError> {
        self.counted(self.present(token, Some(DpopProof { proof, method, url }), None).await)
    }

    /// Validates `token` and checks its binding against how it was presented: with a DPoP
    /// `proof` or as a bearer token, over a connection with a client certificate or not.
    pub(crate) async fn present(
        &self,
        token: &str,
        proof: Option<DpopProof<'_>>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Principal, GuardError> {
        let c = &self.0.cfg;
        let p = self.validate(token).await?;
        let how = Presentation { dpop: proof.is_some(), certificate };
        let (Some(jkt), Some(proof)) = (check_binding(&p, how)?, proof) else { return Ok(p) };
        if proof.proof.len() > c.max_token_len {
            return Err(GuardError::InvalidDpopProof("proof too large".into()));
        }
        let now = self.now();
        let max_age = secs(c.dpop_max_age);
        let nonces = self.0.nonces.as_ref().map(|n| n.accepted(now).to_vec()).unwrap_or_default();
        let expect = ProofExpectations {
            method: proof.method,
            url: proof.url,
            now,
            max_age,
            leeway: secs(c.dpop_leeway),
            access_token: Some(token),
            nonces: &nonces,
        };
        let v = check_proof(proof.proof, &expect, jkt)?;
        // §4.3 item 13, §11.1: "the jti value has not been used before in the time window in
        // which the respective DPoP proof JWT would be accepted". Checked last, so only proofs
        // that passed everything else take room in the cache.
        match self.0.replay.insert(&v.jkt, &v.jti, v.iat.saturating_add(max_age).saturating_add(1), now) {
            Ok(()) => Ok(p),
            Err(Replay::Seen) => Err(GuardError::InvalidDpopProof("the proof was already used".into())),
            Err(Replay::Full) => Err(GuardError::Unavailable("the DPoP replay cache is full".into())),
        }
    }

    /// The nonce to hand out now (RFC 9449 §9), when the API requires nonces: the layer puts
    /// it in a `DPoP-Nonce` header on answers to DPoP requests.
    pub fn current_dpop_nonce(&self) -> Option<String> {
        self.0.nonces.as_ref().map(|n| n.current(self.now()))
    }

    /// Validates `token` however it was presented (cache, JWT or introspection, revocations).
    async fn validate(&self, token: &str) -> Result<Principal, GuardError> {
        let c = &self.0.cfg;
        if token.len() > c.max_token_len {
            return Err(GuardError::InvalidToken("token too large".into()));
        }
        if let Some(feed) = &self.0.feed {
            // A plain load per request; the swap in `start_feed` happens once.
            if !feed.started() {
                self.start_feed();
            }
            feed.check(self.now())?;
        }
        let key = cache::key(token);
        let p = match &c.mode {
            Mode::InProcess(local) => self.in_process(token, local).await,
            Mode::Jwt => self.jwt(token, key).await,
            Mode::Auto(_) if looks_like_jwt(token) => self.jwt(token, key).await,
            Mode::Introspection(creds) | Mode::Auto(creds) => {
                self.worth_introspecting(token)?;
                self.introspection(token, key, creds).await
            }
        }?;
        if let Some(feed) = &self.0.feed {
            // One read lock and a few hash probes (none while the set is empty).
            if let Some(r) = feed.set.read().expect("revocation set lock").refuses(&p, &key) {
                return Err(GuardError::InvalidToken(r.reason().into()));
            }
        }
        Ok(p)
    }

    /// Asks the authority in this process. Not cached: the lookup is the authority's own
    /// (a snapshot and at most one indexed read), and a cache would keep a revoked token or
    /// a disabled client's token working for up to `max_cache_ttl`.
    async fn in_process(&self, token: &str, local: &InProcess) -> Result<Principal, GuardError> {
        let claims = local.0.introspect(token).await?;
        claims.and_then(|c| self.accept(self.0.cfg.authority.as_str(), c, self.now())).ok_or_else(inactive)
    }

    /// A reference token the feed revoked: its cached introspection is dropped and it is
    /// cached as inactive, so the next request neither serves nor re-introspects it.
    pub(crate) fn forget_introspection(&self, key: &TokenKey, now: i64) {
        self.0.introspection_cache.remove(key);
        self.0.inactive_cache.put(*key, now.saturating_add(secs(self.0.cfg.inactive_cache_ttl)), ());
    }

    /// Refuses, without calling out, a token the authority cannot have issued: each refusal
    /// here is an introspection request the authority does not have to serve.
    fn worth_introspecting(&self, token: &str) -> Result<(), GuardError> {
        let c = &self.0.cfg;
        let fits = opaque_fits(token, c.opaque_tokens)
            // Introspection mode sends the authority's JWTs too; their header must parse.
            || (matches!(c.mode, Mode::Introspection(_))
                && c.opaque_tokens == OpaqueTokens::TesseraReference
                && Jws::parse(token).is_ok());
        if fits { Ok(()) } else { Err(GuardError::InvalidToken("not a token of this authority".into())) }
    }

    async fn jwt(&self, token: &str, key: TokenKey) -> Result<Principal, GuardError> {
        let c = &self.0.cfg;
        let now = self.now();
        if let Some(p) = self.0.jwt_cache.get(&key, now) {
            bump(&self.0.counters.jwt_cache_hits);
            return Ok(p);
        }
        let invalid = |e: JoseError| GuardError::InvalidToken(e.to_string());
        let jws = Jws::parse(token).map_err(invalid)?;
        let vk = self
            .0
            .authority
            .key(jws.kid.as_ref(), jws.alg)
            .await?
            .ok_or_else(|| GuardError::InvalidToken("unknown signing key".into()))?;
        let meta = self.0.authority.metadata().await?;
        let expect = Expectations {
            issuer: &meta.issuer,
            audience: Some(c.audience.as_str()),
            typ: c.accepted_typ.as_deref(),
            leeway: secs(c.leeway),
            now,
        };
        bump(&self.0.counters.jwt_verified);
        let v = verify_access_token(token, |_| Some(&vk), &expect).map_err(invalid)?;
        // Saturating: `exp` is the token's to choose, up to i64::MAX.
        let until = v.claims.exp.0.saturating_add(expect.leeway).min(now.saturating_add(secs(c.max_cache_ttl)));
        let p = Principal::new(meta.issuer.clone(), v.claims, v.kid);
        self.0.jwt_cache.put(key, until, p.clone());
        Ok(p)
    }

    async fn introspection(
        &self,
        token: &str,
        key: TokenKey,
        creds: &ClientCredentials,
    ) -> Result<Principal, GuardError> {
        if let Some(known) = self.cached_introspection(&key, self.now()) {
            bump(&self.0.counters.introspection_cache_hits);
            return known.ok_or_else(inactive);
        }
        // Single flight: the first request for this token introspects; the others wait for its
        // answer. Should the first be cancelled, the next waiter takes over (OnceCell).
        let flight = LeaveFlight::join(self, key);
        flight
            .cell
            .get_or_init(|| async {
                // A flight that just landed may have filled the cache between our look and now.
                match self.cached_introspection(&key, self.now()) {
                    Some(known) => Ok(known),
                    None => self.introspect_once(key, token, creds).await,
                }
            })
            .await
            .clone()?
            .ok_or_else(inactive)
    }

    /// `Some(Some(p))`: cached as active; `Some(None)`: cached as inactive; `None`: unknown.
    fn cached_introspection(&self, key: &TokenKey, now: i64) -> Option<Option<Principal>> {
        if let Some(p) = self.0.introspection_cache.get(key, now) {
            return Some(Some(p));
        }
        self.0.inactive_cache.get(key, now).map(|()| None)
    }

    /// One introspection call (unless the endpoint failed moments ago), its answer cached.
    async fn introspect_once(
        &self,
        key: TokenKey,
        token: &str,
        creds: &ClientCredentials,
    ) -> Result<Option<Principal>, GuardError> {
        let c = &self.0.cfg;
        let meta = self.0.authority.metadata().await?;
        let endpoint = meta
            .introspection_endpoint
            .as_ref()
            .ok_or_else(|| GuardError::Unavailable("the authority has no introspection endpoint".into()))?;
        bump(&self.0.counters.introspections);
        let answer =
            self.0.introspection_failure.guard(introspect(&self.0.authority.http, endpoint, creds, token)).await?;
        let now = self.now();
        let result = answer.and_then(|m| self.accept(&meta.issuer, m, now));
        match &result {
            Some(p) => {
                let until = p.expires_at.0.min(now.saturating_add(secs(c.max_cache_ttl)));
                self.0.introspection_cache.put(key, until, p.clone());
            }
            None => self.0.inactive_cache.put(key, now.saturating_add(secs(c.inactive_cache_ttl)), ()),
        }
        Ok(result)
    }

    /// Checks what an active introspection answer says: our audience, the issuer (when it
    /// names one: RFC 7662 §2.2 makes `iss` OPTIONAL), not expired.
    fn accept(&self, issuer: &str, m: AccessTokenClaims, now: i64) -> Option<Principal> {
        let c = &self.0.cfg;
        if !m.aud.iter().any(|a| a == c.audience.as_str()) {
            return None;
        }
        if m.iss.as_deref().is_some_and(|i| i != issuer) {
            return None;
        }
        if now >= m.exp.0.saturating_add(secs(c.leeway)) {
            return None;
        }
        Some(Principal::new(issuer.to_owned(), m, None))
    }
}

/// A request's part in the introspection of one token. Dropping it (done or cancelled) removes
/// the flight once its last waiter is gone, so the map holds only introspections in progress.
struct LeaveFlight<'a> {
    guard: &'a Guard,
    key: TokenKey,
    cell: Flight,
}

impl<'a> LeaveFlight<'a> {
    fn join(guard: &'a Guard, key: TokenKey) -> Self {
        let cell = guard.0.in_flight.lock().expect("in-flight lock").entry(key).or_default().clone();
        Self { guard, key, cell }
    }
}

impl Drop for LeaveFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.guard.0.in_flight.lock().expect("in-flight lock");
        // Two references: the map's and ours. Joining clones under this lock, so no new
        // waiter can appear while we look.
        if in_flight.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &self.cell)) && Arc::strong_count(&self.cell) == 2 {
            in_flight.remove(&self.key);
        }
    }
}
