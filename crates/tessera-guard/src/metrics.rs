//! What the guard counts (issue 16), for the host service to export: requests let through and
//! refused (by reason), validation cache hits, calls to the authority, and how far behind the
//! revocation feed is. Atomics only; [`Guard::metrics`] takes a snapshot, and
//! [`GuardMetrics::prometheus`] renders it in the Prometheus text format for a host that
//! appends it to its own `/metrics`. The guard depends on no metrics library: the host picks
//! its own and copies the snapshot's numbers over.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Guard, GuardError};

/// Refusal reasons, one per [`GuardError`] variant: the `reason` label.
pub const REFUSAL_REASONS: [&str; 8] = [
    "missing",
    "malformed",
    "invalid_token",
    "invalid_dpop_proof",
    "use_dpop_nonce",
    "sender_constraint_required",
    "insufficient_scope",
    "unavailable",
];

fn reason_slot(e: &GuardError) -> usize {
    match e {
        GuardError::Missing => 0,
        GuardError::Malformed => 1,
        GuardError::InvalidToken(_) => 2,
        GuardError::InvalidDpopProof(_) => 3,
        GuardError::UseDpopNonce(_) => 4,
        GuardError::SenderConstraintRequired => 5,
        GuardError::InsufficientScope(_) => 6,
        GuardError::Unavailable(_) => 7,
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    refused: [AtomicU64; 8],
    pub(crate) jwt_cache_hits: AtomicU64,
    pub(crate) jwt_verified: AtomicU64,
    pub(crate) introspection_cache_hits: AtomicU64,
    pub(crate) introspections: AtomicU64,
}

impl Counters {
    pub(crate) fn outcome<T>(&self, result: &Result<T, GuardError>) {
        match result {
            Ok(_) => self.accepted.fetch_add(1, Ordering::Relaxed),
            Err(e) => self.refused[reason_slot(e)].fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The guard's counters at one moment (all since the guard was built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardMetrics {
    /// Requests let through.
    pub accepted: u64,
    /// Requests refused, by reason, in the order of [`REFUSAL_REASONS`].
    pub refused: [u64; 8],
    /// JWTs found validated in the cache (no signature check).
    pub jwt_cache_hits: u64,
    /// JWT signature checks made (cache misses that got that far).
    pub jwt_verified: u64,
    /// Introspection answers found in the cache (active or inactive).
    pub introspection_cache_hits: u64,
    /// Introspection calls to the authority.
    pub introspections: u64,
    /// JWKS fetches from the authority, and how many of them failed.
    pub jwks_fetches: u64,
    #[allow(missing_docs)]
    pub jwks_fetch_failures: u64,
    /// Seconds since the revocation feed last polled successfully (since the guard was built,
    /// before the first success); `None` without a feed.
    pub feed_lag_seconds: Option<i64>,
    /// Whether the feed counts as stale now.
    pub feed_stale: bool,
}

impl GuardMetrics {
    /// Requests refused for `reason` (one of [`REFUSAL_REASONS`]).
    pub fn refused(&self, reason: &str) -> u64 {
        REFUSAL_REASONS.iter().position(|r| *r == reason).map_or(0, |i| self.refused[i])
    }

    /// The Prometheus text format (0.0.4), every name starting `tessera_guard_`.
    pub fn prometheus(&self) -> String {
        let mut t = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(t, "# HELP tessera_guard_{name} {help}\n# TYPE tessera_guard_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(t, "tessera_guard_{name}{labels} {v}");
            }
        };
        family("accepted_total", "counter", "Requests let through.", &[("", self.accepted)]);
        let refused: Vec<(String, u64)> =
            REFUSAL_REASONS.iter().zip(self.refused).map(|(r, n)| (format!("{{reason=\"{r}\"}}"), n)).collect();
        let refused: Vec<(&str, u64)> = refused.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        family("refused_total", "counter", "Requests refused, by reason.", &refused);
        let cache =
            [("{cache=\"jwt\"}", self.jwt_cache_hits), ("{cache=\"introspection\"}", self.introspection_cache_hits)];
        family("cache_hits_total", "counter", "Validations answered from the cache.", &cache);
        family("jwt_verifications_total", "counter", "JWT signature checks.", &[("", self.jwt_verified)]);
        family(
            "introspections_total",
            "counter",
            "Introspection calls to the authority.",
            &[("", self.introspections)],
        );
        let jwks = [
            ("{result=\"ok\"}", self.jwks_fetches - self.jwks_fetch_failures),
            ("{result=\"failed\"}", self.jwks_fetch_failures),
        ];
        family("jwks_fetches_total", "counter", "JWKS fetches from the authority.", &jwks);
        if let Some(lag) = self.feed_lag_seconds {
            family(
                "feed_lag_seconds",
                "gauge",
                "Seconds since the revocation feed last polled successfully.",
                &[("", lag.max(0) as u64)],
            );
            family(
                "feed_stale",
                "gauge",
                "1 while the revocation feed counts as stale.",
                &[("", u64::from(self.feed_stale))],
            );
        }
        t
    }
}

impl Guard {
    /// A snapshot of the guard's counters (issue 16).
    pub fn metrics(&self) -> GuardMetrics {
        let c = &self.0.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let now = self.0.cfg.clock.now().0;
        let feed = self.0.feed.as_ref().map(|f| f.status(now));
        GuardMetrics {
            accepted: load(&c.accepted),
            refused: std::array::from_fn(|i| load(&c.refused[i])),
            jwt_cache_hits: load(&c.jwt_cache_hits),
            jwt_verified: load(&c.jwt_verified),
            introspection_cache_hits: load(&c.introspection_cache_hits),
            introspections: load(&c.introspections),
            jwks_fetches: load(&self.0.authority.fetches),
            jwks_fetch_failures: load(&self.0.authority.fetch_failures),
            feed_lag_seconds: feed.as_ref().map(|s| now - s.last_success.map_or(self.0.built_at, |t| t.0)),
            feed_stale: feed.is_some_and(|s| s.stale),
        }
    }
}
