use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_jose::{Expectations, JoseError, Jws, verify_access_token};

use crate::cache::{self, TtlCache};
use crate::introspect::introspect;
use crate::jwks::Authority;
use crate::{ClientCredentials, GuardConfig, GuardError, Mode, Principal};

/// Validates bearer tokens for one API (audience) of one authority. Cheap to clone.
#[derive(Clone)]
pub struct Guard(Arc<Inner>);

struct Inner {
    cfg: GuardConfig,
    authority: Authority,
    /// Validated JWTs: signature checks are the expensive part and a client reuses its token.
    jwt_cache: TtlCache<Principal>,
    /// Introspection results, active and inactive.
    introspection_cache: TtlCache<Option<Principal>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Guard").field(&self.0.cfg).finish()
    }
}

impl Guard {
    /// A guard; nothing is fetched until the first request.
    pub fn new(cfg: GuardConfig) -> Result<Self, GuardError> {
        if !(cfg.authority.starts_with("https://") || cfg.authority.starts_with("http://")) {
            return Err(GuardError::Unavailable(format!("authority {} is not an http(s) URL", cfg.authority)));
        }
        let authority = Authority::new(cfg.http.clone(), cfg.authority.clone(), cfg.jwks_min_refresh, cfg.jwks_max_age);
        Ok(Self(Arc::new(Inner {
            jwt_cache: TtlCache::new(cfg.cache_capacity),
            introspection_cache: TtlCache::new(cfg.cache_capacity),
            authority,
            cfg,
        })))
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.0.cfg
    }

    fn now(&self) -> i64 {
        self.0.cfg.clock.now().0
    }

    /// Validates `token` and returns who it stands for.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, GuardError> {
        if token.len() > self.0.cfg.max_token_len {
            return Err(GuardError::InvalidToken("token too large".into()));
        }
        let looks_like_jwt = token.bytes().filter(|b| *b == b'.').count() == 2;
        match &self.0.cfg.mode {
            Mode::Jwt => self.jwt(token).await,
            Mode::Introspection(creds) => self.introspection(token, creds).await,
            Mode::Auto(_) if looks_like_jwt => self.jwt(token).await,
            Mode::Auto(creds) => self.introspection(token, creds).await,
        }
    }

    async fn jwt(&self, token: &str) -> Result<Principal, GuardError> {
        let c = &self.0.cfg;
        let now = self.now();
        let key = cache::key(token);
        if let Some(p) = self.0.jwt_cache.get(&key, now) {
            return Ok(p);
        }
        let invalid = |e: JoseError| GuardError::InvalidToken(e.to_string());
        let jws = Jws::parse(token).map_err(invalid)?;
        let vk = self
            .0
            .authority
            .key(jws.kid.as_deref(), jws.alg)
            .await?
            .ok_or_else(|| GuardError::InvalidToken("unknown signing key".into()))?;
        let meta = self.0.authority.metadata().await?;
        let expect = Expectations {
            issuer: &meta.issuer,
            audience: Some(&c.audience),
            typ: c.accepted_typ.as_deref(),
            leeway: c.leeway.as_secs() as i64,
            now,
        };
        let v = verify_access_token(token, |_| Some(&vk), &expect).map_err(invalid)?;
        let until = (v.exp + expect.leeway).min(now + c.max_cache_ttl.as_secs() as i64);
        let p = Principal::from_claims(v.iss, v.aud, v.exp, v.claims);
        self.0.jwt_cache.put(key, until, p.clone(), now);
        Ok(p)
    }

    async fn introspection(&self, token: &str, creds: &ClientCredentials) -> Result<Principal, GuardError> {
        let c = &self.0.cfg;
        let now = self.now();
        let key = cache::key(token);
        let inactive = || GuardError::InvalidToken("token is not active".into());
        if let Some(cached) = self.0.introspection_cache.get(&key, now) {
            return cached.ok_or_else(inactive);
        }
        let meta = self.0.authority.metadata().await?;
        let endpoint = meta
            .introspection_endpoint
            .as_deref()
            .ok_or_else(|| GuardError::Unavailable("the authority has no introspection endpoint".into()))?;
        let result = introspect(&c.http, endpoint, creds, token).await?.and_then(|m| self.accept(&meta.issuer, m, now));
        let until = match &result {
            Some(p) => p.expires_at.min(now + c.max_cache_ttl.as_secs() as i64),
            None => now + c.inactive_cache_ttl.as_secs() as i64,
        };
        self.0.introspection_cache.put(key, until, result.clone(), now);
        result.ok_or_else(inactive)
    }

    /// Checks what an active introspection answer says: our audience, the issuer, not expired.
    fn accept(&self, issuer: &str, m: Map<String, Value>, now: i64) -> Option<Principal> {
        let c = &self.0.cfg;
        let aud: Vec<String> = match m.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => vec![],
        };
        if !aud.iter().any(|a| a == &c.audience) {
            return None;
        }
        if m.get("iss").and_then(Value::as_str).is_some_and(|i| i != issuer) {
            return None;
        }
        let exp = m.get("exp").and_then(Value::as_i64)?;
        if now >= exp + c.leeway.as_secs() as i64 {
            return None;
        }
        Some(Principal::from_claims(issuer.to_owned(), aud, exp, m))
    }
}
