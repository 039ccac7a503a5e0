//! Automatic signing-key rotation (issue 16): per algorithm, every `key_rotation_period_s`
//! the next key is generated and *published* `key_prepublish_s` before it signs (verifiers
//! caching the JWK Set then hold it before the first token it signs), becomes active, and
//! the key it replaces stays published until every token it signed has expired (the longest
//! lifetime any client has at that moment, plus a leeway), then is removed.
//!
//! [`plan`] decides the steps from the keys and the time alone (tested across whole cycles);
//! [`run`] carries them out with compare-and-set writes, so that of several instances sharing
//! a database exactly one performs each step, whichever gets there first.

use std::sync::Arc;

use tessera_store::{KeyRecord, KeyStatus, Store};
use tessera_types::clock::Clock;
use tessera_types::{Kid, SigningAlg, UnixTime};

use crate::keys::{Kek, KeyError};
use crate::random::Random;

/// Seconds past a token's `exp` a verifier may still accept it (clock leeway): a retired key
/// stays published this much longer.
pub const RETIRE_LEEWAY: i64 = 300;

/// When keys rotate (`key_rotation_period_s`, `key_prepublish_s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Seconds a key signs before the next replaces it; 0: only `tessera key rotate` rotates.
    pub period: i64,
    /// Seconds the next key is published before it signs.
    pub prepublish: i64,
}

impl Default for RotationPolicy {
    /// 30 days, published 2 days ahead: far beyond any JWK Set cache (the guard's default is
    /// 5 minutes; HTTP caches and CDNs in front of a JWKS hold it hours).
    fn default() -> Self {
        Self { period: 30 * 86_400, prepublish: 2 * 86_400 }
    }
}

impl RotationPolicy {
    /// Checks the two settings: the period off (0) or at least an hour, the prepublication at
    /// least 5 minutes (the guard's JWKS cache) and shorter than the period.
    pub fn new(period: i64, prepublish: i64) -> Result<Self, String> {
        if period != 0 && period < 3600 {
            return Err(format!("key_rotation_period_s {period}: 0 (off) or at least 3600"));
        }
        if period != 0 && !(300..period).contains(&prepublish) {
            return Err(format!("key_prepublish_s {prepublish}: at least 300 and less than key_rotation_period_s"));
        }
        Ok(Self { period, prepublish })
    }
}

/// One step of the cycle.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Generate the next key of `alg` and publish it, to sign from `activates_at`.
    Prepublish { alg: SigningAlg, activates_at: UnixTime },
    /// The next key `kid` starts signing; the active key of `alg` retires.
    Activate { kid: Kid, alg: SigningAlg },
    /// Every token the retired key `kid` signed has expired: stop publishing it.
    Remove { kid: Kid },
}

impl Step {
    /// The step's name, as logs and tests print it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Prepublish { .. } => "prepublish",
            Self::Activate { .. } => "activate",
            Self::Remove { .. } => "remove",
        }
    }
}

/// The steps due at `now` for `keys`, for the algorithms the server signs with.
pub fn plan(keys: &[KeyRecord], algs: &[SigningAlg], policy: RotationPolicy, now: UnixTime) -> Vec<Step> {
    let mut steps = Vec::new();
    for alg in algs {
        let of = |status| keys.iter().find(|k| k.alg == *alg && k.status == status);
        match (of(KeyStatus::Active), of(KeyStatus::Next)) {
            (_, Some(next)) if next.activates_at.is_none_or(|at| now >= at) => {
                steps.push(Step::Activate { kid: next.kid.clone(), alg: *alg });
            }
            (Some(active), None) if policy.period > 0 => {
                let since = active.activates_at.unwrap_or(active.created_at);
                let due = since.plus(policy.period);
                if now >= due.plus(-policy.prepublish) {
                    // Published at least `prepublish` before it signs, even when the schedule
                    // was missed (a server down over the date).
                    let activates_at = UnixTime(due.0.max(now.plus(policy.prepublish).0));
                    steps.push(Step::Prepublish { alg: *alg, activates_at });
                }
            }
            _ => {}
        }
    }
    for k in keys {
        if k.status == KeyStatus::Retired && k.remove_after.is_some_and(|at| now >= at) {
            steps.push(Step::Remove { kid: k.kid.clone() });
        }
    }
    steps
}

/// The longest an access token issued now can live: the longest lifetime of any client, or
/// the server's default.
pub async fn longest_lifetime(store: &Store, default_lifetime: i64) -> Result<i64, KeyError> {
    let clients = store.list_clients().await?;
    Ok(clients.iter().map(|c| c.access_token_lifetime).chain([default_lifetime]).max().unwrap_or(default_lifetime))
}

/// What a rotation pass needs.
pub struct Rotator {
    #[allow(missing_docs)]
    pub store: Store,
    #[allow(missing_docs)]
    pub kek: Kek,
    #[allow(missing_docs)]
    pub algs: Vec<SigningAlg>,
    #[allow(missing_docs)]
    pub policy: RotationPolicy,
    /// The server's default access-token lifetime.
    pub default_lifetime: i64,
    #[allow(missing_docs)]
    pub clock: Arc<dyn Clock>,
    #[allow(missing_docs)]
    pub rng: Arc<dyn Random>,
}

impl Rotator {
    /// Carries out the steps due now; returns those this instance performed (another
    /// instance may have performed the rest).
    pub async fn run(&self) -> Result<Vec<Step>, KeyError> {
        let now = self.clock.now();
        let keys = self.store.list_keys().await?;
        let mut done = Vec::new();
        for step in plan(&keys, &self.algs, self.policy, now) {
            let performed = match &step {
                Step::Prepublish { alg, activates_at } => {
                    let mut record = crate::keys::new_record(&self.kek, *alg, &*self.rng, now).await?;
                    record.status = KeyStatus::Next;
                    record.activates_at = Some(*activates_at);
                    self.store.add_next_key(&record).await?
                }
                Step::Activate { kid, alg } => {
                    let keep = longest_lifetime(&self.store, self.default_lifetime).await?;
                    let remove_after = now.plus(keep + RETIRE_LEEWAY);
                    self.store.activate_next_key(kid, *alg, now, remove_after).await?
                }
                Step::Remove { kid } => self.store.remove_expired_key(kid, now).await?,
            };
            if performed {
                tracing::info!(step = ?step, "signing key rotation");
                done.push(step);
            }
        }
        Ok(done)
    }
}

/// `tessera key rotate`: the next step for `alg` at once, whatever the schedule: a published
/// next key starts signing, or else one is published (signing after `prepublish`). Says what
/// it did.
pub async fn force_step(
    store: &Store,
    kek: &Kek,
    alg: SigningAlg,
    policy: RotationPolicy,
    default_lifetime: i64,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<String, KeyError> {
    let keys = store.list_keys().await?;
    if let Some(next) = keys.iter().find(|k| k.alg == alg && k.status == KeyStatus::Next) {
        let keep = longest_lifetime(store, default_lifetime).await?;
        let remove_after = now.plus(keep + RETIRE_LEEWAY);
        if !store.activate_next_key(&next.kid, alg, now, remove_after).await? {
            return Err(KeyError::Rejected(format!("key {} was activated meanwhile", next.kid)));
        }
        return Ok(format!(
            "{alg} key {} signs from now; the key it replaces stays published until {} (its tokens' expiry)",
            next.kid, remove_after.0
        ));
    }
    let prepublish = if policy.period > 0 { policy.prepublish } else { RotationPolicy::default().prepublish };
    let mut record = crate::keys::new_record(kek, alg, rng, now).await?;
    record.status = KeyStatus::Next;
    record.activates_at = Some(now.plus(prepublish));
    if !store.add_next_key(&record).await? {
        return Err(KeyError::Rejected(format!("another next {alg} key was published meanwhile")));
    }
    Ok(format!(
        "published the next {alg} key {}: it signs from {} (`tessera key rotate` again makes it sign now)",
        record.kid,
        now.plus(prepublish).0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, status: KeyStatus, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: Kid::new(kid).unwrap(),
            alg: SigningAlg::ES256,
            status,
            sealed_private_key: String::new(),
            public_jwk: String::new(),
            created_at: UnixTime(0),
            activates_at: Some(UnixTime(activates_at)),
            retired_at: None,
            remove_after: None,
        }
    }

    const DAY: i64 = 86_400;

    /// Applies a plan as the store would, with tokens living an hour.
    fn apply(keys: &mut Vec<KeyRecord>, steps: &[Step], now: i64) {
        for s in steps {
            match s {
                Step::Prepublish { activates_at, .. } => {
                    let mut k = key(&format!("k{}", keys.len()), KeyStatus::Next, activates_at.0);
                    k.created_at = UnixTime(now);
                    keys.push(k);
                }
                Step::Activate { kid, .. } => {
                    for k in keys.iter_mut().filter(|k| k.status == KeyStatus::Active) {
                        k.status = KeyStatus::Retired;
                        k.retired_at = Some(UnixTime(now));
                        k.remove_after = Some(UnixTime(now + 3600 + RETIRE_LEEWAY));
                    }
                    let k = keys.iter_mut().find(|k| k.kid == *kid).unwrap();
                    k.status = KeyStatus::Active;
                    k.activates_at = Some(UnixTime(now));
                }
                Step::Remove { kid } => keys.retain(|k| k.kid != *kid),
            }
        }
    }

    #[test]
    fn a_whole_cycle_prepublishes_activates_and_removes_each_at_its_time() {
        let policy = RotationPolicy::default();
        let algs = [SigningAlg::ES256];
        let mut keys = vec![key("k0", KeyStatus::Active, 0)];
        let mut log = Vec::new();
        // An hour at a time over two periods: every step happens once, at its time.
        for hour in 0..=(2 * 30 * 24) {
            let now = hour * 3600;
            let steps = plan(&keys, &algs, policy, UnixTime(now));
            for s in &steps {
                log.push((now, s.clone()));
            }
            apply(&mut keys, &steps, now);
            // Never more than one active and one next key; always one active.
            assert_eq!(keys.iter().filter(|k| k.status == KeyStatus::Active).count(), 1, "at {now}");
            assert!(keys.iter().filter(|k| k.status == KeyStatus::Next).count() <= 1);
        }
        let kinds: Vec<(i64, &str)> = log.iter().map(|(t, s)| (*t, s.name())).collect();
        assert_eq!(
            kinds,
            [
                (28 * DAY, "prepublish"),
                (30 * DAY, "activate"),
                (30 * DAY + 2 * 3600, "remove"),
                (58 * DAY, "prepublish"),
                (60 * DAY, "activate"),
            ]
        );
        // The next key was announced exactly `prepublish` before it signed.
        assert!(matches!(log[0].1, Step::Prepublish { activates_at, .. } if activates_at == UnixTime(30 * DAY)));
    }

    #[test]
    fn a_missed_date_still_publishes_ahead_and_off_means_off() {
        let keys = vec![key("k0", KeyStatus::Active, 0)];
        let policy = RotationPolicy::default();
        // The server was down over the date: the next key still gets its full prepublication.
        let late = UnixTime(40 * DAY);
        let steps = plan(&keys, &[SigningAlg::ES256], policy, late);
        assert_eq!(steps, [Step::Prepublish { alg: SigningAlg::ES256, activates_at: late.plus(policy.prepublish) }]);
        let off = RotationPolicy { period: 0, ..policy };
        assert!(plan(&keys, &[SigningAlg::ES256], off, late).is_empty());
        // A key whose tokens may live on is kept; one past them is removed; an old retired key
        // with no removal time (from before rotation was scheduled) is never removed here.
        let mut retired = key("r", KeyStatus::Retired, 0);
        retired.remove_after = Some(UnixTime(100));
        let legacy = key("old", KeyStatus::Retired, 0);
        assert!(plan(&[retired.clone(), legacy.clone()], &[], off, UnixTime(99)).is_empty());
        assert_eq!(plan(&[retired, legacy], &[], off, UnixTime(100)), [Step::Remove { kid: Kid::new("r").unwrap() }]);
    }

    #[test]
    fn settings_are_checked() {
        assert!(RotationPolicy::new(0, 0).is_ok(), "off");
        assert!(RotationPolicy::new(1800, 300).is_err(), "under an hour");
        assert!(RotationPolicy::new(86_400, 200).is_err(), "shorter than a JWKS cache");
        assert!(RotationPolicy::new(86_400, 86_400).is_err(), "as long as the period");
        assert!(RotationPolicy::new(86_400, 3600).is_ok());
    }
}
