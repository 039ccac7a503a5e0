//! The per-flow storage traits over two maps: what the SQL store does, minus durability.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_store::{StoredEvent, TokenRecord};
use tessera_types::rfc8417::EventSeq;
use tessera_types::{ClientId, Jti, UnixTime};

use crate::storage::{
    AssertionReplayStore, EventLog, RevocationStore, RevokedJwt, StoreFuture, TokenIssueStore, TokenLookup,
};
use crate::token::reference::ReferenceKey;

#[derive(Default)]
pub(super) struct MemoryStore {
    /// Reference tokens by hash.
    pub tokens: Mutex<HashMap<String, TokenRecord>>,
    /// Revoked JWT ids, with their client and expiry.
    pub revoked_jtis: Mutex<HashMap<Jti, (ClientId, UnixTime)>>,
    /// Client assertion ids used, by client and hash.
    pub assertion_jtis: Mutex<HashMap<(ClientId, String), UnixTime>>,
    /// Uses counted, by owner and hash.
    pub uses: Mutex<HashMap<(ClientId, String), i64>>,
    /// The audit trail's security events.
    pub audit: Mutex<Vec<tessera_store::AuditEntry>>,
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl TokenIssueStore for MemoryStore {
    fn insert_reference(&self, record: TokenRecord) -> StoreFuture<'_, ()> {
        self.tokens.lock().unwrap().insert(record.hash.clone(), record);
        ready(())
    }
}

impl TokenLookup for MemoryStore {
    fn find_reference<'a>(&'a self, key: &'a ReferenceKey) -> StoreFuture<'a, Option<TokenRecord>> {
        ready(self.tokens.lock().unwrap().get(&key.hash).filter(|t| t.handle == key.handle).cloned())
    }

    fn is_jti_revoked<'a>(&'a self, jti: &'a Jti) -> StoreFuture<'a, bool> {
        ready(self.revoked_jtis.lock().unwrap().contains_key(jti))
    }
}

impl RevocationStore for MemoryStore {
    fn revoke_reference<'a>(&'a self, key: &'a ReferenceKey, _now: UnixTime) -> StoreFuture<'a, ()> {
        if let Some(t) = self.tokens.lock().unwrap().get_mut(&key.hash).filter(|t| t.handle == key.handle) {
            t.revoked = true;
        }
        ready(())
    }

    fn revoke_jti<'a>(&'a self, jwt: RevokedJwt<'a>, _now: UnixTime) -> StoreFuture<'a, ()> {
        self.revoked_jtis.lock().unwrap().entry(jwt.jti.clone()).or_insert((jwt.client_id.clone(), jwt.exp));
        ready(())
    }
}

/// The handler tests do not follow the feed: an empty log.
impl EventLog for MemoryStore {
    fn events_after<'a>(
        &'a self,
        _after: EventSeq,
        _receiver: &'a ClientId,
        _limit: u32,
    ) -> StoreFuture<'a, Vec<StoredEvent>> {
        ready(Vec::new())
    }

    fn latest_event(&self) -> StoreFuture<'_, EventSeq> {
        ready(EventSeq(0))
    }
}

impl AssertionReplayStore for MemoryStore {
    fn use_jti<'a>(
        &'a self,
        client_id: &'a ClientId,
        jti_hash: &'a str,
        expires_at: UnixTime,
    ) -> StoreFuture<'a, bool> {
        let mut used = self.assertion_jtis.lock().unwrap();
        ready(used.insert((client_id.clone(), jti_hash.to_owned()), expires_at).is_none())
    }

    fn count_use<'a>(
        &'a self,
        owner: &'a ClientId,
        hash: &'a str,
        _expires_at: UnixTime,
        max_uses: i64,
    ) -> StoreFuture<'a, bool> {
        let mut uses = self.uses.lock().unwrap();
        let n = uses.entry((owner.clone(), hash.to_owned())).or_insert(0);
        *n += 1;
        ready(*n <= max_uses)
    }
}

impl crate::audit::AuditSink for MemoryStore {
    fn record_audit<'a>(&'a self, entries: &'a [tessera_store::AuditEntry]) -> StoreFuture<'a, ()> {
        self.audit.lock().unwrap().extend_from_slice(entries);
        ready(())
    }
}
