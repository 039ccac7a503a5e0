//! Abuse limits at the token endpoint: exponential backoff after failed client
//! authentications (per client id and per source address), a token bucket per client for
//! issuance, and a cap on each client's live reference tokens.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tessera_store::ClientRecord;
use tessera_types::UnixTime;
use tokio::time::Instant;

use crate::limits::{AuthLimits, IssuanceLimits};
use crate::lru::Lru;

/// Client ids and addresses remembered for their failures; the least recently failing are
/// forgotten first.
const TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
    blocked_until: i64,
}

/// Backoff after failed authentications (RFC 6749 §2.3.1 asks for brute-force protection).
/// Past `failed_free_attempts` failures a client id or an address is refused for
/// `failed_backoff` seconds, doubling with each further failure up to `failed_backoff_max`.
/// Refused attempts are not verified, so they cost no argon2 time either.
pub(crate) struct FailureLimiter {
    limits: AuthLimits,
    /// Where the start of a backoff is recorded.
    audit: std::sync::Arc<crate::audit::AuditLog>,
    by_client: Mutex<Lru<String, Failures>>,
    by_addr: Mutex<Lru<IpAddr, Failures>>,
    /// Verifications in progress per address (entries exist only while one is).
    pending: Mutex<HashMap<IpAddr, usize>>,
}

/// One verification in progress for an address.
pub(crate) struct Pending<'a> {
    limiter: &'a FailureLimiter,
    addr: Option<IpAddr>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let Some(addr) = self.addr else { return };
        let mut pending = self.limiter.pending.lock().expect("pending lock");
        if let Some(n) = pending.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&addr);
            }
        }
    }
}

impl FailureLimiter {
    pub(crate) fn new(limits: AuthLimits, audit: std::sync::Arc<crate::audit::AuditLog>) -> Self {
        Self {
            limits,
            audit,
            by_client: Mutex::new(Lru::new(TRACKED)),
            by_addr: Mutex::new(Lru::new(TRACKED)),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one verification for `addr`, or `None` when it already has
    /// `kdf_max_per_address` in progress.
    pub(crate) fn begin(&self, addr: Option<IpAddr>) -> Option<Pending<'_>> {
        if let Some(a) = addr {
            let mut pending = self.pending.lock().expect("pending lock");
            let n = pending.entry(a).or_insert(0);
            if *n >= self.limits.kdf_max_per_address {
                return None;
            }
            *n += 1;
        }
        Some(Pending { limiter: self, addr })
    }

    /// `Err(seconds)` while the client id or the address is backing off. The clock counts
    /// whole seconds, and the failure that started a backoff may have come at the end of its
    /// second: the backoff lasts through the second it ends in, so that it is never shorter
    /// than configured (a 1 s backoff that ended at the next tick could last a millisecond).
    pub(crate) fn check(&self, client_id: &str, addr: Option<IpAddr>, now: UnixTime) -> Result<(), u64> {
        let wait = |f: Option<&Failures>| {
            f.filter(|f| f.blocked_until > 0 && now.0 <= f.blocked_until)
                .map_or(0, |f| f.blocked_until.saturating_sub(now.0).saturating_add(1))
        };
        let by_client = wait(self.by_client.lock().expect("limiter lock").get(client_id));
        let by_addr = addr.map_or(0, |a| wait(self.by_addr.lock().expect("limiter lock").get(&a)));
        match by_client.max(by_addr) {
            0 => Ok(()),
            secs => Err(secs as u64),
        }
    }

    pub(crate) fn failed(&self, client_id: &str, addr: Option<IpAddr>, now: UnixTime) {
        let bump = |f: Option<Failures>| {
            let mut f = f
                .filter(|f| now.0.saturating_sub(f.last) < self.limits.failed_forget_after)
                .unwrap_or(Failures { count: 0, last: now.0, blocked_until: 0 });
            f.count = f.count.saturating_add(1);
            f.last = now.0;
            if f.count > self.limits.failed_free_attempts {
                let doublings = (f.count - self.limits.failed_free_attempts - 1).min(30);
                let backoff =
                    self.limits.failed_backoff.saturating_mul(1 << doublings).min(self.limits.failed_backoff_max);
                f.blocked_until = now.0.saturating_add(backoff);
            }
            f
        };
        // The first failure past the free attempts starts a lockout: recorded once per
        // lockout, not per refused attempt.
        let starts = |f: &Failures| f.count == self.limits.failed_free_attempts.saturating_add(1);
        let mut map = self.by_client.lock().expect("limiter lock");
        let next = bump(map.get(client_id).copied());
        map.put(client_id.to_owned(), next);
        drop(map);
        if starts(&next) {
            let detail = serde_json::json!({ "of": "client_id", "seconds": next.blocked_until - now.0 });
            self.audit.record(crate::audit::actor_of(addr), tessera_store::AuditAction::Lockout, client_id, detail);
        }
        if let Some(addr) = addr {
            let mut map = self.by_addr.lock().expect("limiter lock");
            let next = bump(map.get(&addr).copied());
            map.put(addr, next);
            drop(map);
            if starts(&next) {
                let detail = serde_json::json!({ "of": "address", "seconds": next.blocked_until - now.0 });
                let target = addr.to_string();
                self.audit.record(
                    crate::audit::actor_of(Some(addr)),
                    tessera_store::AuditAction::Lockout,
                    &target,
                    detail,
                );
            }
        }
    }

    /// A success clears the client id's record (the address keeps its own: one valid
    /// credential must not buy an attacker fresh guesses at other clients).
    pub(crate) fn succeeded(&self, client_id: &str) {
        self.by_client.lock().expect("limiter lock").remove(client_id);
    }
}

/// What a client may do: its own settings over the server's.
fn client_rate(client: &ClientRecord, defaults: &IssuanceLimits) -> (f64, f64) {
    let rate = client.limits.issuance_rate_milli.map_or(defaults.rate_per_second, |m| m as f64 / 1000.0);
    let burst = client.limits.issuance_burst.map_or(f64::from(defaults.burst), |b| b.max(1) as f64);
    (rate, burst)
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// When it will be full again at the client's rate: from then on it is what a client
    /// without a bucket gets, so it can go. `None`: later than time can say (a tiny rate
    /// with a huge burst), kept.
    full_at: Option<Instant>,
}

/// A token bucket per client. Only authenticated clients reach it, so it holds at most one
/// entry per registered client.
pub(crate) struct IssuanceLimiter {
    limits: IssuanceLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Live reference tokens per client, recounted from the store on every pruning pass and
    /// counted up as tokens are issued in between (expiries are only seen at the recount, so
    /// the count errs high: the cap fails closed).
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    counts: HashMap<String, u64>,
    /// Counted since the running recount began: added to its result, since the store may or
    /// may not have seen them (counted twice at worst, until the next recount).
    since_recount: HashMap<String, u64>,
    /// Counted but not yet committed.
    uncommitted: HashMap<String, u64>,
    /// What was uncommitted when the running recount began: the store's answer may miss them.
    uncommitted_at_recount: HashMap<String, u64>,
}

fn add(map: &mut HashMap<String, u64>, id: &str, n: u64) {
    *map.entry(id.to_owned()).or_insert(0) += n;
}

fn sub(map: &mut HashMap<String, u64>, id: &str) {
    if let Some(n) = map.get_mut(id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(id);
        }
    }
}

impl IssuanceLimiter {
    pub(crate) fn new(limits: IssuanceLimits) -> Self {
        Self { limits, buckets: Mutex::new(HashMap::new()), live: Mutex::new(Live::default()) }
    }

    pub(crate) fn mode(&self) -> crate::limits::RateLimitMode {
        self.limits.mode
    }

    /// Takes one token from the client's bucket; `Err(seconds)` until one is available.
    pub(crate) fn take(&self, client: &ClientRecord, now: Instant) -> Result<(), u64> {
        let (rate, burst) = client_rate(client, &self.limits);
        if rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("bucket lock");
        let id = client.client_id.as_str();
        if !buckets.contains_key(id) {
            buckets.insert(id.to_owned(), Bucket { tokens: burst, at: now, full_at: Some(now) });
        }
        let b = buckets.get_mut(id).expect("inserted above");
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        let taken = if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        };
        b.full_at = Duration::try_from_secs_f64((burst - b.tokens) / rate).ok().and_then(|d| now.checked_add(d));
        taken
    }

    /// Forgets the buckets that have refilled (the pruner's pass): the map then holds the
    /// clients that issued within about `burst / rate` seconds, not every client that ever
    /// did (at a million clients, tens of MiB for nothing) nor removed ones.
    pub(crate) fn forget_full(&self, now: Instant) {
        let mut buckets = self.buckets.lock().expect("bucket lock");
        buckets.retain(|_, b| b.full_at.is_none_or(|full| full > now));
        if buckets.capacity() > 4 * buckets.len().max(1024) {
            buckets.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.buckets.lock().expect("bucket lock").len()
    }

    /// The client's cap on live reference tokens; 0: none.
    fn live_cap(&self, client: &ClientRecord) -> u64 {
        client.limits.max_live_tokens.map_or(self.limits.max_live_reference_tokens, |c| c.max(0) as u64)
    }

    /// The clients of `registry` with a cap on live reference tokens: the ones whose counts
    /// matter (every client while the server's default cap is on). `None` for too many to
    /// list ([`tessera_store::MAX_COUNTED_ONE_BY_ONE`]): then every client is counted.
    pub(crate) fn capped(&self, registry: &crate::registry::Registry) -> Option<Vec<tessera_types::ClientId>> {
        let capped = || registry.clients().filter(|c| self.live_cap(c) > 0);
        if capped().count() > tessera_store::MAX_COUNTED_ONE_BY_ONE {
            return None;
        }
        Some(capped().map(|c| c.client_id.clone()).collect())
    }

    /// Whether the client may hold one more live reference token; counts it if so.
    pub(crate) fn take_live(&self, client: &ClientRecord) -> bool {
        let cap = self.live_cap(client);
        let mut live = self.live.lock().expect("live lock");
        let id = client.client_id.as_str();
        let n = live.counts.entry(id.to_owned()).or_insert(0);
        if cap > 0 && *n >= cap {
            return false;
        }
        *n += 1;
        add(&mut live.since_recount, id, 1);
        add(&mut live.uncommitted, id, 1);
        true
    }

    /// The token counted by [`IssuanceLimiter::take_live`] is committed.
    pub(crate) fn committed_live(&self, client: &ClientRecord) {
        sub(&mut self.live.lock().expect("live lock").uncommitted, client.client_id.as_str());
    }

    /// Gives back a count taken for a token that was not stored after all.
    pub(crate) fn untake_live(&self, client: &ClientRecord) {
        let mut guard = self.live.lock().expect("live lock");
        let live = &mut *guard;
        for map in [&mut live.counts, &mut live.since_recount, &mut live.uncommitted] {
            sub(map, client.client_id.as_str());
        }
    }

    /// Call before reading the store's counts for [`IssuanceLimiter::set_live`].
    pub(crate) fn begin_recount(&self) {
        let mut live = self.live.lock().expect("live lock");
        live.since_recount.clear();
        live.uncommitted_at_recount = live.uncommitted.clone();
    }

    /// Replaces the counts with the store's, plus what it may have missed.
    pub(crate) fn set_live(&self, counts: HashMap<String, u64>) {
        let mut guard = self.live.lock().expect("live lock");
        let live = &mut *guard;
        live.counts = counts;
        for (id, n) in live.since_recount.drain().chain(live.uncommitted_at_recount.drain()) {
            add(&mut live.counts, &id, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_types::UnixTime;

    use super::FailureLimiter;
    use crate::audit::{AuditLog, AuditSink};
    use crate::storage::StoreFuture;

    struct Discard;
    impl AuditSink for Discard {
        fn record_audit<'a>(&'a self, _: &'a [tessera_store::AuditEntry]) -> StoreFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    /// RFC 6749 §2.3.1: a backoff of one second starts with a failure that may come at the
    /// end of its second on the whole-second clock; it still holds through the next second
    /// (not a moment), and Retry-After counts up to its end. The next one doubles.
    #[tokio::test]
    async fn a_backoff_is_never_shorter_than_configured() {
        let mut limits = crate::limits::Limits::default().auth;
        (limits.failed_free_attempts, limits.failed_backoff) = (1, 1);
        let clock = Arc::new(tessera_types::clock::ManualClock::new(UnixTime(1_000)));
        let limiter = FailureLimiter::new(limits, AuditLog::spawn(Arc::new(Discard), clock, 100));
        let at = |s: i64| UnixTime(1_000 + s);
        limiter.failed("c", None, at(0));
        assert_eq!(limiter.check("c", None, at(0)), Ok(()), "the free attempt");
        limiter.failed("c", None, at(0));
        assert_eq!(limiter.check("c", None, at(0)), Err(2));
        assert_eq!(limiter.check("c", None, at(1)), Err(1), "one second after the failure's own");
        assert_eq!(limiter.check("c", None, at(2)), Ok(()));
        limiter.failed("c", None, at(2));
        assert_eq!((limiter.check("c", None, at(4)), limiter.check("c", None, at(5))), (Err(1), Ok(())));
        // Another client id is not affected.
        assert_eq!(limiter.check("d", None, at(2)), Ok(()));
    }

    /// A bucket goes once it has refilled, and a client whose bucket went is limited as one
    /// seen for the first time: a full burst, then its rate.
    #[test]
    fn refilled_buckets_are_forgotten_and_a_forgotten_client_starts_full() {
        use super::{Duration, Instant, IssuanceLimiter};
        let limits = crate::limits::IssuanceLimits {
            rate_per_second: 1.0,
            burst: 3,
            ..crate::limits::Limits::default().issuance
        };
        let limiter = IssuanceLimiter::new(limits);
        let secret = crate::secrets::generate(&crate::random::SystemRandom::default());
        let client = |id: &str| crate::endpoint::tests::client(id, tessera_types::TokenFormat::Jwt, &[], &secret);
        let (a, b) = (client("a"), client("b"));
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        for _ in 0..3 {
            assert_eq!(limiter.take(&a, at(0.0)), Ok(()));
        }
        assert_eq!(limiter.take(&a, at(0.0)), Err(1), "burst spent");
        assert_eq!(limiter.take(&b, at(0.0)), Ok(()));
        // b is full again after 1 s, a after 3 s.
        limiter.forget_full(at(0.5));
        assert_eq!(limiter.buckets(), 2);
        limiter.forget_full(at(1.5));
        assert_eq!(limiter.buckets(), 1, "b refilled and went");
        assert_eq!(limiter.take(&a, at(1.5)), Ok(()), "a is still limited by its rate");
        assert_eq!(limiter.take(&a, at(1.5)), Err(1));
        limiter.forget_full(at(4.0));
        assert_eq!(limiter.buckets(), 0);
        // A client of its own slow rate (one token per 1,000 s) that spent a burst of 100:
        // refilled after 100,000 s, more than a day; kept until then, not forgotten early
        // (which would hand it a full burst again too soon).
        let mut slow = client("slow");
        slow.limits.issuance_rate_milli = Some(1);
        slow.limits.issuance_burst = Some(100);
        for _ in 0..100 {
            assert_eq!(limiter.take(&slow, at(4.0)), Ok(()));
        }
        limiter.forget_full(at(90_000.0));
        assert_eq!(limiter.buckets(), 1);
        assert_eq!(limiter.take(&slow, at(90_000.0)), Ok(()), "89 tokens back by its rate");
        limiter.forget_full(at(101_000.0));
        assert_eq!(limiter.buckets(), 1, "one taken since: full at 101,004 s");
        limiter.forget_full(at(101_005.0));
        assert_eq!(limiter.buckets(), 0);
        for _ in 0..3 {
            assert_eq!(limiter.take(&a, at(4.0)), Ok(()));
        }
        assert_eq!(limiter.take(&a, at(4.0)), Err(1));
    }
}
