//! What the revocation feed has told the guard, kept compact and bounded: revoked tokens (by
//! `jti`, and by hash for reference tokens) until they expire anyway, per-client `not_before`
//! times, disabled clients and removed signing keys. Read on every request (one read lock and
//! a few hash probes; nothing at all while the set is empty), written by the follower once per
//! poll.

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_types::rfc8417::RevocationEvent;
use tessera_types::{ClientId, Jti, Kid};

use crate::PrincipalData;
use crate::cache::TokenKey;

/// Why a validated token is refused anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revoked {
    Token,
    ClientDisabled,
    IssuedBeforeClientRevocation,
    KeyRemoved,
}

impl Revoked {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Token => "token revoked",
            Self::ClientDisabled => "client disabled",
            Self::IssuedBeforeClientRevocation => "token revoked (issued before its client's tokens were revoked)",
            Self::KeyRemoved => "signing key removed",
        }
    }
}

/// What applying an event asks of the guard beyond the set itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SideEffect {
    /// Drop this reference token's cached introspection result.
    ForgetIntrospection(TokenKey),
    /// Drop this key from the JWKS in memory.
    ForgetKey(Kid),
}

/// A revoked token: remembered until `until` (its `exp` plus leeway), after which the
/// guard refuses it as expired anyway.
struct RevokedToken {
    until: i64,
    hash: Option<TokenKey>,
}

pub(crate) struct RevocationSet {
    tokens: HashMap<Jti, RevokedToken>,
    /// Reference tokens by the SHA-256 the introspection cache uses (the event's `token_hash`).
    hashes: HashMap<TokenKey, i64>,
    /// `(until, jti)` of every entry of `tokens`, soonest first: pruning and eviction in
    /// O(log n).
    by_expiry: BTreeSet<(i64, Jti)>,
    /// Tokens of these clients issued (`iat`) before the time are refused.
    not_before: HashMap<ClientId, i64>,
    disabled: HashSet<ClientId>,
    removed_keys: HashSet<Kid>,
    capacity: usize,
    /// The latest `until` of a revocation forgotten for want of room: until then the set is
    /// incomplete and the feed counts as stale.
    lost_until: Option<i64>,
}

impl RevocationSet {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tokens: HashMap::new(),
            hashes: HashMap::new(),
            by_expiry: BTreeSet::new(),
            not_before: HashMap::new(),
            disabled: HashSet::new(),
            removed_keys: HashSet::new(),
            capacity: capacity.max(1),
            lost_until: None,
        }
    }

    /// Whether the set refuses `p` (reached with the token whose cache key is `key`). Checked
    /// after validation, on cache hits too: a cached principal is as revoked as a fresh one.
    pub(crate) fn refuses(&self, p: &PrincipalData, key: &TokenKey) -> Option<Revoked> {
        if !self.tokens.is_empty()
            && (p.jti.as_ref().is_some_and(|j| self.tokens.contains_key(j)) || self.hashes.contains_key(key))
        {
            return Some(Revoked::Token);
        }
        if let Some(client) = &p.client_id {
            if !self.disabled.is_empty() && self.disabled.contains(client) {
                return Some(Revoked::ClientDisabled);
            }
            if let Some(nb) = self.not_before.get(client) {
                // A token without `iat` cannot show it is newer than the revocation: refused.
                if p.issued_at.is_none_or(|iat| iat.0 < *nb) {
                    return Some(Revoked::IssuedBeforeClientRevocation);
                }
            }
        }
        if !self.removed_keys.is_empty() && p.kid.as_ref().is_some_and(|k| self.removed_keys.contains(k)) {
            return Some(Revoked::KeyRemoved);
        }
        None
    }

    /// Applies one event at `now`; `leeway` is the guard's tolerance on `exp`, so a revoked
    /// token is remembered for as long as the guard would still accept it.
    pub(crate) fn apply(&mut self, event: RevocationEvent, now: i64, leeway: i64) -> Option<SideEffect> {
        match event {
            RevocationEvent::TokenRevoked { jti, exp, client_id: _, token_hash } => {
                let hash = token_hash.as_deref().and_then(decode_hash);
                let effect = hash.map(SideEffect::ForgetIntrospection);
                let until = exp.0.saturating_add(leeway);
                if until > now {
                    self.insert(jti, until, hash);
                }
                effect
            }
            RevocationEvent::ClientTokensRevoked { client_id, not_before } => {
                let nb = self.not_before.entry(client_id).or_insert(not_before.0);
                *nb = (*nb).max(not_before.0);
                None
            }
            RevocationEvent::ClientDisabled { client_id } => {
                self.disabled.insert(client_id);
                None
            }
            RevocationEvent::ClientEnabled { client_id } => {
                self.disabled.remove(&client_id);
                None
            }
            RevocationEvent::KeyRemoved { kid } => {
                self.removed_keys.insert(kid.clone());
                Some(SideEffect::ForgetKey(kid))
            }
        }
    }

    fn insert(&mut self, jti: Jti, until: i64, hash: Option<TokenKey>) {
        if let Some(old) = self.tokens.remove(&jti) {
            self.by_expiry.remove(&(old.until, jti.clone()));
            if let Some(h) = old.hash {
                self.hashes.remove(&h);
            }
        }
        while self.tokens.len() >= self.capacity {
            let Some((lost, evicted)) = self.by_expiry.pop_first() else { break };
            self.forget(&evicted);
            // Not silent: until `lost` the set is known to be incomplete (see `lost_until`).
            self.lost_until = Some(self.lost_until.map_or(lost, |l| l.max(lost)));
            tracing::error!(capacity = self.capacity, "revocation set full: forgot the revocation expiring soonest");
        }
        if let Some(h) = hash {
            self.hashes.insert(h, until);
        }
        self.by_expiry.insert((until, jti.clone()));
        self.tokens.insert(jti, RevokedToken { until, hash });
    }

    fn forget(&mut self, jti: &Jti) {
        if let Some(h) = self.tokens.remove(jti).and_then(|t| t.hash) {
            self.hashes.remove(&h);
        }
    }

    /// Drops the revocations of tokens that have expired by `now` (the guard refuses those as
    /// expired), and forgets a capacity loss whose tokens have all expired.
    pub(crate) fn prune(&mut self, now: i64) {
        while let Some((until, _)) = self.by_expiry.first() {
            if *until > now {
                break;
            }
            let (_, jti) = self.by_expiry.pop_first().expect("first exists");
            self.forget(&jti);
        }
        if self.lost_until.is_some_and(|l| l <= now) {
            self.lost_until = None;
        }
    }

    /// Until when the set is incomplete because revocations had to be forgotten.
    pub(crate) fn lost_until(&self) -> Option<i64> {
        self.lost_until
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            revoked_tokens: self.tokens.len(),
            revoked_clients: self.not_before.len(),
            disabled_clients: self.disabled.len(),
            removed_keys: self.removed_keys.len(),
        }
    }
}

/// Sizes of the set, for [`crate::FeedStatus`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub revoked_tokens: usize,
    pub revoked_clients: usize,
    pub disabled_clients: usize,
    pub removed_keys: usize,
}

/// The event's `token_hash`: base64url (no padding) of the SHA-256 of the reference token,
/// the digest [`crate::cache::key`] computes. Anything else is ignored (the `jti` still
/// revokes the token).
fn decode_hash(h: &str) -> Option<TokenKey> {
    let bytes = URL_SAFE_NO_PAD.decode(h).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Map;
    use tessera_types::{ScopeSet, UnixTime};

    use super::*;
    use crate::cache::key;

    fn principal(jti: &str, client: &str, iat: i64, kid: Option<&str>) -> Arc<PrincipalData> {
        Arc::new(PrincipalData {
            client_id: Some(ClientId::new(client).unwrap()),
            subject: None,
            scopes: ScopeSet::default(),
            audience: vec!["api1".into()],
            issuer: "https://as".into(),
            expires_at: UnixTime(iat + 3600),
            jti: Some(Jti::new(jti).unwrap()),
            issued_at: Some(UnixTime(iat)),
            kid: kid.map(|k| Kid::new(k).unwrap()),
            cnf: None,
            other_claims: Map::new(),
        })
    }

    fn revoked(jti: &str, exp: i64, hash: Option<String>) -> RevocationEvent {
        RevocationEvent::TokenRevoked {
            jti: Jti::new(jti).unwrap(),
            exp: UnixTime(exp),
            client_id: ClientId::new("CC").unwrap(),
            token_hash: hash,
        }
    }

    fn client(c: &str) -> ClientId {
        ClientId::new(c).unwrap()
    }

    #[test]
    fn a_revoked_jti_is_refused_until_it_expires_and_then_forgotten() {
        let mut set = RevocationSet::new(10);
        let k = key("t");
        assert_eq!(set.apply(revoked("j1", 1_000, None), 500, 30), None);
        assert_eq!(set.refuses(&principal("j1", "CC", 400, None), &k), Some(Revoked::Token));
        assert_eq!(set.refuses(&principal("j2", "CC", 400, None), &k), None, "another token passes");
        // Kept through the leeway the guard grants on `exp`, dropped after.
        set.prune(1_029);
        assert_eq!(set.counts().revoked_tokens, 1);
        set.prune(1_030);
        assert_eq!(set.counts().revoked_tokens, 0);
        // An event for a token already dead is not stored at all.
        set.apply(revoked("j3", 100, None), 500, 30);
        assert_eq!(set.counts().revoked_tokens, 0);
    }

    #[test]
    fn a_reference_token_is_refused_by_its_hash_and_its_introspection_forgotten() {
        let mut set = RevocationSet::new(10);
        let k = key("reference-token");
        let effect = set.apply(revoked("r1", 1_000, Some(URL_SAFE_NO_PAD.encode(k))), 500, 0);
        assert_eq!(effect, Some(SideEffect::ForgetIntrospection(k)));
        // The introspection answer may carry no jti: the hash alone refuses it.
        let mut p = (*principal("other", "CC", 400, None)).clone();
        p.jti = None;
        assert_eq!(set.refuses(&p, &k), Some(Revoked::Token));
        assert_eq!(set.refuses(&p, &key("another")), None);
        // A malformed hash is ignored; the jti still revokes.
        assert_eq!(set.apply(revoked("r2", 1_000, Some("not-a-digest".into())), 500, 0), None);
        assert_eq!(set.refuses(&principal("r2", "CC", 400, None), &key("x")), Some(Revoked::Token));
    }

    #[test]
    fn client_tokens_revoked_refuses_tokens_issued_before_not_before_only() {
        let mut set = RevocationSet::new(10);
        let k = key("t");
        set.apply(RevocationEvent::ClientTokensRevoked { client_id: client("CC"), not_before: UnixTime(1_000) }, 0, 0);
        assert_eq!(set.refuses(&principal("a", "CC", 999, None), &k), Some(Revoked::IssuedBeforeClientRevocation));
        assert_eq!(set.refuses(&principal("b", "CC", 1_000, None), &k), None, "issued at not_before: new");
        assert_eq!(set.refuses(&principal("c", "other", 10, None), &k), None, "other clients unaffected");
        let mut no_iat = (*principal("d", "CC", 2_000, None)).clone();
        no_iat.issued_at = None;
        assert_eq!(set.refuses(&no_iat, &k), Some(Revoked::IssuedBeforeClientRevocation), "no iat: refused");
        // An older not_before arriving later does not move it back.
        set.apply(RevocationEvent::ClientTokensRevoked { client_id: client("CC"), not_before: UnixTime(500) }, 0, 0);
        assert_eq!(set.refuses(&principal("e", "CC", 999, None), &k), Some(Revoked::IssuedBeforeClientRevocation));
    }

    #[test]
    fn a_disabled_client_is_refused_until_enabled_again() {
        let mut set = RevocationSet::new(10);
        let (k, p) = (key("t"), principal("a", "CC", 100, None));
        set.apply(RevocationEvent::ClientDisabled { client_id: client("CC") }, 0, 0);
        assert_eq!(set.refuses(&p, &k), Some(Revoked::ClientDisabled));
        assert_eq!(set.refuses(&principal("a", "other", 100, None), &k), None);
        set.apply(RevocationEvent::ClientEnabled { client_id: client("CC") }, 0, 0);
        assert_eq!(set.refuses(&p, &k), None);
        // Enabling does not undo a token's own revocation.
        set.apply(revoked("a", 10_000, None), 0, 0);
        set.apply(RevocationEvent::ClientDisabled { client_id: client("CC") }, 0, 0);
        set.apply(RevocationEvent::ClientEnabled { client_id: client("CC") }, 0, 0);
        assert_eq!(set.refuses(&p, &k), Some(Revoked::Token));
    }

    #[test]
    fn a_removed_key_refuses_the_tokens_it_signed() {
        let mut set = RevocationSet::new(10);
        let k = key("t");
        let kid = Kid::new("k1").unwrap();
        assert_eq!(set.apply(RevocationEvent::KeyRemoved { kid: kid.clone() }, 0, 0), Some(SideEffect::ForgetKey(kid)));
        assert_eq!(set.refuses(&principal("a", "CC", 1, Some("k1")), &k), Some(Revoked::KeyRemoved));
        assert_eq!(set.refuses(&principal("a", "CC", 1, Some("k2")), &k), None);
        assert_eq!(set.refuses(&principal("a", "CC", 1, None), &k), None, "introspected: no kid");
    }

    #[test]
    fn a_full_set_stays_bounded_forgets_the_soonest_expiry_and_says_so_until_it_passes() {
        let mut set = RevocationSet::new(100);
        for i in 0..1_000 {
            set.apply(revoked(&format!("j{i}"), 10_000 + i, Some(URL_SAFE_NO_PAD.encode(key(&i.to_string())))), 0, 0);
        }
        assert_eq!(set.counts().revoked_tokens, 100, "bounded");
        assert_eq!(set.hashes.len(), 100, "hashes leave with their tokens");
        assert_eq!(set.by_expiry.len(), 100);
        // The latest 100 (the longest-lived) are kept.
        assert_eq!(set.refuses(&principal("j999", "CC", 0, None), &key("x")), Some(Revoked::Token));
        assert_eq!(set.refuses(&principal("j900", "CC", 0, None), &key("x")), Some(Revoked::Token));
        assert_eq!(set.refuses(&principal("j899", "CC", 0, None), &key("x")), None);
        // The loss is remembered until the last forgotten token (j899, exp 10 899) expired.
        assert_eq!(set.lost_until(), Some(10_899));
        set.prune(10_898);
        assert_eq!(set.lost_until(), Some(10_899));
        set.prune(10_899);
        assert_eq!(set.lost_until(), None);
        // Re-revoking a jti replaces its entry rather than adding one.
        set.apply(revoked("j999", 20_000, None), 10_899, 0);
        assert_eq!((set.counts().revoked_tokens, set.by_expiry.len()), (100, 100));
    }
}
