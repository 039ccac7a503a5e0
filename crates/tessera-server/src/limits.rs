//! Every bound the server enforces, with a default that is safe on the internet: the
//! `[limits]` table of the config file, resolved into [`Limits`]. The README's Security
//! section lists each one.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::transport;

/// Default `max_client_assertion_lifetime`, seconds.
pub const DEFAULT_MAX_ASSERTION_LIFETIME: i64 = 300;

/// `[limits]` in the config file; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each key is the field of the same name in the resolved structs
pub struct LimitsFile {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub first_request_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub max_concurrent_requests: Option<usize>,
    pub max_scheduling_delay_ms: Option<u64>,
    pub max_header_bytes: Option<usize>,
    pub linger_ms: Option<u64>,
    pub kdf_max_parallel: Option<usize>,
    pub kdf_max_queue: Option<usize>,
    pub kdf_max_wait_ms: Option<u64>,
    pub kdf_max_per_address: Option<usize>,
    pub failed_auth_free_attempts: Option<u32>,
    pub failed_auth_backoff_s: Option<i64>,
    pub failed_auth_backoff_max_s: Option<i64>,
    pub failed_auth_forget_after_s: Option<i64>,
    pub issuance_rate_per_second: Option<f64>,
    pub issuance_burst: Option<u32>,
    pub rate_limit_mode: Option<RateLimitMode>,
    pub max_live_reference_tokens: Option<u64>,
    pub prune_batch: Option<u32>,
    pub secret_last_use_resolution_s: Option<i64>,
    pub max_client_assertion_bytes: Option<usize>,
    pub max_client_keys: Option<usize>,
    pub max_client_jwks_bytes: Option<usize>,
    pub client_assertion_leeway_s: Option<i64>,
    pub jwks_uri_cache_ttl_s: Option<i64>,
    pub jwks_uri_min_refetch_interval_s: Option<i64>,
    pub jwks_uri_fetch_timeout_ms: Option<u64>,
    pub events_long_poll_ms: Option<u64>,
    pub events_max_long_polls: Option<usize>,
    pub events_max_per_poll: Option<u32>,
    pub dpop_proof_max_age_s: Option<i64>,
    pub dpop_proof_leeway_s: Option<i64>,
    pub dpop_require_nonce: Option<bool>,
    pub dpop_nonce_rotation_s: Option<u64>,
    pub audit_max_events_per_second: Option<u32>,
    pub audit_retention_days: Option<i64>,
}

/// Whether the issuance rate limit refuses or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitMode {
    /// Past the limit: 429 with `Retry-After`.
    #[default]
    Enforce,
    /// Past the limit: a WARN line and a count, and the token is issued (to size the limit
    /// on live traffic before enforcing it).
    Monitor,
}

/// Client authentication bounds (RFC 6749 §2.3.1: "the authorization server MUST protect any
/// endpoint utilizing it against brute force attacks").
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// argon2id verifications running at once (each takes a core for ~20 ms).
    pub kdf_max_parallel: usize,
    /// Verifications waiting for a turn; past it the answer is 503 at once.
    pub kdf_max_queue: usize,
    /// Longest wait for a turn; past it 503 with `Retry-After`.
    pub kdf_max_wait: Duration,
    /// Verifications in progress for one source address; past it 429 at once, so one
    /// address cannot fill the queue in front of everybody else.
    pub kdf_max_per_address: usize,
    /// Failed authentications per client id, and per source address, before backoff starts.
    pub failed_free_attempts: u32,
    /// First backoff, seconds; it doubles with each further failure.
    pub failed_backoff: i64,
    /// Longest backoff, seconds.
    pub failed_backoff_max: i64,
    /// A client id or address with no failure for this long starts afresh, seconds.
    pub failed_forget_after: i64,
}

/// Which `aud` a `private_key_jwt` assertion may carry (the `client_assertion_audience`
/// setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertionAudience {
    /// RFC 7523bis (the CVE-2025-27370/27371 fix): the issuer identifier, as the sole value.
    #[default]
    Issuer,
    /// The issuer, or the token endpoint URL (RFC 7523 §3 as first published), still alone:
    /// for clients not yet updated.
    IssuerOrTokenEndpoint,
}

/// Bounds on `private_key_jwt` client assertions (RFC 7523 §3).
#[derive(Debug, Clone)]
pub struct AssertionLimits {
    /// Which audiences are accepted.
    pub audience: AssertionAudience,
    /// Longest accepted lifetime, seconds: `exp - now` and `exp - iat` may not exceed it.
    pub max_lifetime: i64,
    /// Largest assertion looked at, bytes.
    pub max_bytes: usize,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
    pub leeway: i64,
}

/// Issuance bounds per client; a client's own settings override the rate, burst and cap.
#[derive(Debug, Clone)]
pub struct IssuanceLimits {
    /// Sustained tokens per second per client; 0 disables the limit.
    pub rate_per_second: f64,
    /// Tokens a client may take at once above the sustained rate.
    pub burst: u32,
    /// Enforce or only report.
    pub mode: RateLimitMode,
    /// Live (unexpired, unrevoked) reference tokens per client; 0 disables the cap.
    pub max_live_reference_tokens: u64,
}

/// Everything bounded, resolved.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Limits {
    pub transport: transport::Limits,
    pub auth: AuthLimits,
    pub issuance: IssuanceLimits,
    pub assertion: AssertionLimits,
    /// Key material a client may register (`client add|update --jwks`, the seed file).
    pub client_keys: crate::client_keys::KeyBounds,
    /// How keys published at a client's `jwks_uri` are fetched and cached.
    pub remote_keys: crate::client_keys::remote::RemoteKeyLimits,
    /// The revocation feed's long polls.
    pub events: EventLimits,
    /// How old and how early a DPoP proof may be.
    pub dpop: crate::token::dpop::DpopLimits,
    /// Rows deleted per pruning statement (each a short transaction, so issuance is never
    /// held behind one long delete).
    pub prune_batch: u32,
    /// A secret's last use is written at most once per this many seconds: the rows
    /// authentications cost the store (issue 17: at a million clients in use, once a minute
    /// was a million random row updates a minute, half the server's core).
    pub secret_last_use_resolution_s: i64,
    /// The audit trail's bounds.
    pub audit: AuditLimits,
}

/// Bounds on the audit trail (issue 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditLimits {
    /// Security events (failed authentications, lockouts, revocations) kept per second; the
    /// rest are counted in one `audit.suppressed` entry. Registry changes are always kept.
    pub max_events_per_second: u32,
    /// How long entries are kept, seconds.
    pub retention_s: i64,
}

/// Bounds on the revocation feed (`POST /connect/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Longest a poll waits for an event (kept under the request timeout and common proxy
    /// idle timeouts).
    pub long_poll: Duration,
    /// Polls allowed to wait at once; past it a poll is answered at once (each waiting poll
    /// holds one of the `max_concurrent_requests`).
    pub max_long_polls: usize,
    /// Most SETs in one answer (RFC 8936 `maxEvents` is capped at this).
    pub max_per_poll: u32,
}

impl Default for Limits {
    fn default() -> Self {
        LimitsFile::default().resolve().expect("defaults are valid")
    }
}

impl LimitsFile {
    /// Applies defaults and refuses values that would switch a protection off by accident.
    pub fn resolve(&self) -> Result<Limits, ConfigError> {
        let d = transport::Limits::default();
        let ms = |v: Option<u64>, default: Duration, name: &str| -> Result<Duration, ConfigError> {
            match v {
                None => Ok(default),
                Some(0) => Err(ConfigError(format!("limits.{name} must be above 0"))),
                Some(v) => Ok(Duration::from_millis(v)),
            }
        };
        let positive = |v: Option<usize>, default: usize, name: &str| -> Result<usize, ConfigError> {
            match v {
                Some(0) => Err(ConfigError(format!("limits.{name} must be above 0"))),
                v => Ok(v.unwrap_or(default)),
            }
        };
        let transport = transport::Limits {
            max_connections: positive(self.max_connections, d.max_connections, "max_connections")?,
            max_connections_per_ip: positive(
                self.max_connections_per_ip,
                d.max_connections_per_ip,
                "max_connections_per_ip",
            )?,
            header_read_timeout: ms(self.header_read_timeout_ms, d.header_read_timeout, "header_read_timeout_ms")?,
            first_request_timeout: ms(
                self.first_request_timeout_ms,
                d.first_request_timeout,
                "first_request_timeout_ms",
            )?,
            idle_timeout: ms(self.idle_timeout_ms, d.idle_timeout, "idle_timeout_ms")?,
            request_timeout: ms(self.request_timeout_ms, d.request_timeout, "request_timeout_ms")?,
            max_concurrent_requests: positive(
                self.max_concurrent_requests,
                d.max_concurrent_requests,
                "max_concurrent_requests",
            )?,
            max_scheduling_delay: ms(self.max_scheduling_delay_ms, d.max_scheduling_delay, "max_scheduling_delay_ms")?,
            max_header_bytes: self.max_header_bytes.unwrap_or(d.max_header_bytes).clamp(8192, 1 << 20),
            h2_max_concurrent_streams: d.h2_max_concurrent_streams,
            h2_keep_alive_interval: d.h2_keep_alive_interval,
            linger: self.linger_ms.map(Duration::from_millis).unwrap_or(d.linger),
        };
        let auth = AuthLimits {
            kdf_max_parallel: positive(self.kdf_max_parallel, 2, "kdf_max_parallel")?,
            kdf_max_queue: self.kdf_max_queue.unwrap_or(32),
            kdf_max_wait: ms(self.kdf_max_wait_ms, Duration::from_secs(1), "kdf_max_wait_ms")?,
            kdf_max_per_address: positive(self.kdf_max_per_address, 4, "kdf_max_per_address")?,
            failed_free_attempts: self.failed_auth_free_attempts.unwrap_or(5),
            failed_backoff: self.failed_auth_backoff_s.unwrap_or(1).max(1),
            failed_backoff_max: self.failed_auth_backoff_max_s.unwrap_or(300).max(1),
            failed_forget_after: self.failed_auth_forget_after_s.unwrap_or(900).max(1),
        };
        let rate = self.issuance_rate_per_second.unwrap_or(10.0);
        if !rate.is_finite() || rate < 0.0 {
            return Err(ConfigError("limits.issuance_rate_per_second must be 0 (off) or above".into()));
        }
        let issuance = IssuanceLimits {
            rate_per_second: rate,
            burst: self.issuance_burst.unwrap_or(200).max(1),
            mode: self.rate_limit_mode.unwrap_or_default(),
            max_live_reference_tokens: self.max_live_reference_tokens.unwrap_or(100_000),
        };
        let assertion = AssertionLimits {
            audience: AssertionAudience::default(),
            max_lifetime: DEFAULT_MAX_ASSERTION_LIFETIME,
            // tessera-jose looks at no JWS over 16 KiB, whatever this says.
            max_bytes: self.max_client_assertion_bytes.unwrap_or(8 * 1024).clamp(512, 16 * 1024),
            leeway: self.client_assertion_leeway_s.unwrap_or(30).clamp(0, 300),
        };
        let d = crate::client_keys::KeyBounds::default();
        let client_keys = crate::client_keys::KeyBounds {
            max_keys: positive(self.max_client_keys, d.max_keys, "max_client_keys")?.min(100),
            max_bytes: self.max_client_jwks_bytes.unwrap_or(d.max_bytes).clamp(1024, 1024 * 1024),
        };
        let d = crate::client_keys::remote::RemoteKeyLimits::default();
        let seconds = |v: Option<i64>, default: i64, max: i64, name: &str| -> Result<i64, ConfigError> {
            match v {
                None => Ok(default),
                Some(v) if v <= 0 => Err(ConfigError(format!("limits.{name} must be above 0"))),
                Some(v) => Ok(v.min(max)),
            }
        };
        let cache_ttl = seconds(self.jwks_uri_cache_ttl_s, d.cache_ttl, 86_400, "jwks_uri_cache_ttl_s")?;
        let remote_keys = crate::client_keys::remote::RemoteKeyLimits {
            cache_ttl,
            // Past the TTL the keys are fetched anyway; a longer interval would leave a client
            // whose fetch failed without keys for longer than it says.
            min_refetch_interval: seconds(
                self.jwks_uri_min_refetch_interval_s,
                d.min_refetch_interval,
                3600,
                "jwks_uri_min_refetch_interval_s",
            )?
            .min(cache_ttl),
            fetch_timeout: ms(self.jwks_uri_fetch_timeout_ms, d.fetch_timeout, "jwks_uri_fetch_timeout_ms")?
                .min(Duration::from_secs(60)),
            extra_roots: None,
        };
        // A poll must answer before the request timeout cuts it off: the default follows a
        // shortened timeout, a configured value above it is refused.
        let long_poll = match self.events_long_poll_ms {
            None => Duration::from_secs(10).min(transport.request_timeout / 2),
            Some(_) => ms(self.events_long_poll_ms, Duration::ZERO, "events_long_poll_ms")?,
        };
        if long_poll >= transport.request_timeout {
            return Err(ConfigError(
                "limits.events_long_poll_ms must be below limits.request_timeout_ms (a poll would be cut off)".into(),
            ));
        }
        let events = EventLimits {
            long_poll,
            max_long_polls: self.events_max_long_polls.unwrap_or(64).min(transport.max_concurrent_requests / 2).max(1),
            max_per_poll: self.events_max_per_poll.unwrap_or(500).clamp(1, 5000),
        };
        let dpop = crate::token::dpop::DpopLimits {
            max_age: self.dpop_proof_max_age_s.unwrap_or(60).clamp(1, 600),
            leeway: self.dpop_proof_leeway_s.unwrap_or(5).clamp(0, 60),
            require_nonce: self.dpop_require_nonce.unwrap_or(false),
            nonce_rotation_s: self.dpop_nonce_rotation_s.unwrap_or(300).clamp(10, 86_400),
        };
        Ok(Limits {
            dpop,
            events,
            transport,
            auth,
            issuance,
            assertion,
            client_keys,
            remote_keys,
            prune_batch: self.prune_batch.unwrap_or(500).clamp(1, 100_000),
            secret_last_use_resolution_s: self.secret_last_use_resolution_s.unwrap_or(3600).clamp(60, 86_400),
            audit: AuditLimits {
                max_events_per_second: self.audit_max_events_per_second.unwrap_or(100).clamp(1, 100_000),
                retention_s: self.audit_retention_days.unwrap_or(90).clamp(1, 3650) * 86_400,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_cannot_switch_a_bound_off_by_accident() {
        let bad = |f: fn(&mut LimitsFile)| {
            let mut l = LimitsFile::default();
            f(&mut l);
            l.resolve().is_err()
        };
        assert!(bad(|l| l.max_connections = Some(0)));
        assert!(bad(|l| l.request_timeout_ms = Some(0)));
        assert!(bad(|l| l.header_read_timeout_ms = Some(0)));
        assert!(bad(|l| l.issuance_rate_per_second = Some(-1.0)));
        assert!(bad(|l| l.issuance_rate_per_second = Some(f64::NAN)));
        assert!(bad(|l| l.max_client_keys = Some(0)));
        assert!(bad(|l| l.jwks_uri_cache_ttl_s = Some(0)));
        assert!(bad(|l| l.jwks_uri_min_refetch_interval_s = Some(-1)));
        assert!(bad(|l| l.jwks_uri_fetch_timeout_ms = Some(0)));
        let d = Limits::default();
        assert_eq!(d.transport.header_read_timeout, Duration::from_secs(10));
        assert_eq!(d.auth.failed_free_attempts, 5);
        assert_eq!(
            (d.remote_keys.cache_ttl, d.remote_keys.min_refetch_interval, d.remote_keys.fetch_timeout),
            (300, 30, Duration::from_secs(5))
        );
        let short: LimitsFile = toml::from_str("jwks_uri_cache_ttl_s = 10").unwrap();
        assert_eq!(short.resolve().unwrap().remote_keys.min_refetch_interval, 10, "never past the TTL");
        assert!(toml::from_str::<LimitsFile>("nope = 1").is_err());
        let m: LimitsFile = toml::from_str("rate_limit_mode = \"monitor\"").unwrap();
        assert_eq!(m.resolve().unwrap().issuance.mode, RateLimitMode::Monitor);
        // A secret's last use: hourly unless set, never finer than a minute.
        assert_eq!(d.secret_last_use_resolution_s, 3600);
        let r = |v: &str| {
            toml::from_str::<LimitsFile>(&format!("secret_last_use_resolution_s = {v}"))
                .unwrap()
                .resolve()
                .unwrap()
                .secret_last_use_resolution_s
        };
        assert_eq!((r("0"), r("300"), r("1000000")), (60, 300, 86_400));
    }
}
