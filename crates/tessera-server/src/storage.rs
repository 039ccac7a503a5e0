//! The per-flow storage traits wired together: the [`Stores`] bundle the endpoints reach
//! storage through, and the traits' implementation for the SQL [`Store`].
//!
//! Each trait is declared next to its user (fosite's `_storage.go` habit):
//! [`TokenIssueStore`] beside reference-token issuance, [`TokenLookup`] beside the lookup
//! that introspection and revocation share, [`RevocationStore`] beside revocation,
//! [`AssertionReplayStore`] beside `private_key_jwt`. Clients,
//! scopes and signing keys come from the in-memory [`crate::Registry`] snapshot instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tessera_store::{AssertionJtiWriter, Store, StoreError, StoredEvent, TokenRecord, TokenWriter};
use tessera_types::rfc8417::EventSeq;
use tessera_types::{ClientId, Jti, UnixTime};

use crate::token::reference::ReferenceKey;

pub use crate::client_auth::AssertionReplayStore;
pub use crate::endpoint::revoke::{RevocationStore, RevokedJwt};
pub use crate::token::lookup::TokenLookup;
pub use crate::token::reference::TokenIssueStore;

/// What a storage call returns: boxed so the traits stay object-safe (one allocation per
/// call, on paths that wait for a database anyway; JWT issuance makes no call).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The storage each flow reaches, usually one backend behind all three.
#[derive(Clone)]
#[allow(missing_docs)]
pub struct Stores {
    pub issue: Arc<dyn TokenIssueStore>,
    pub lookup: Arc<dyn TokenLookup>,
    pub revocation: Arc<dyn RevocationStore>,
    pub assertions: Arc<dyn AssertionReplayStore>,
    pub events: Arc<dyn EventLog>,
    pub audit: Arc<dyn crate::audit::AuditSink>,
}

/// The revocation feed's log, as the events endpoint reads it (the store records events in
/// the transactions that revoke).
pub trait EventLog: Send + Sync {
    /// Events after `after` that `receiver` may know, oldest first, at most `limit`.
    fn events_after<'a>(
        &'a self,
        after: EventSeq,
        receiver: &'a ClientId,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredEvent>>;
    /// The position of the last event recorded.
    fn latest_event(&self) -> StoreFuture<'_, EventSeq>;
}

impl Stores {
    /// Every flow served by `backend`.
    pub fn shared<
        B: TokenIssueStore + RevocationStore + AssertionReplayStore + EventLog + crate::audit::AuditSink + 'static,
    >(
        backend: Arc<B>,
    ) -> Self {
        Self {
            issue: backend.clone(),
            lookup: backend.clone(),
            revocation: backend.clone(),
            assertions: backend.clone(),
            events: backend.clone(),
            audit: backend,
        }
    }

    /// The SQL store, reference tokens and used assertion ids committed through group-commit
    /// writers. Starts the writers, so call it inside a Tokio runtime.
    pub fn sql(store: Store) -> Self {
        Self::sql_observed(store, Arc::new(crate::metrics::Metrics::off()))
    }

    /// [`Stores::sql`], its writers' commits recorded in `metrics`.
    pub fn sql_observed(store: Store, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let observer = |m: Arc<crate::metrics::Metrics>| -> Arc<dyn tessera_store::BatchObserver> {
            Arc::new(move |c: tessera_store::BatchCommit| m.batch(c))
        };
        Self::shared(Arc::new(SqlTokens {
            writer: TokenWriter::spawn_observed(store.clone(), observer(metrics.clone())),
            jtis: AssertionJtiWriter::spawn_observed(store.clone(), observer(metrics)),
            store,
        }))
    }
}

/// The SQL store with the writers that batch reference-token and assertion-id inserts.
struct SqlTokens {
    store: Store,
    writer: TokenWriter,
    jtis: AssertionJtiWriter,
}

impl TokenIssueStore for SqlTokens {
    fn insert_reference(&self, record: TokenRecord) -> StoreFuture<'_, ()> {
        Box::pin(self.writer.insert(record))
    }
}

impl TokenLookup for SqlTokens {
    fn find_reference<'a>(&'a self, key: &'a ReferenceKey) -> StoreFuture<'a, Option<TokenRecord>> {
        Box::pin(self.store.find_token(&key.handle, &key.hash))
    }

    fn is_jti_revoked<'a>(&'a self, jti: &'a Jti) -> StoreFuture<'a, bool> {
        Box::pin(self.store.is_jti_revoked(jti))
    }
}

impl RevocationStore for SqlTokens {
    fn revoke_reference<'a>(&'a self, key: &'a ReferenceKey, now: UnixTime) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.store.revoke_token(&key.handle, &key.hash, now).await.map(drop) })
    }

    fn revoke_jti<'a>(&'a self, jwt: RevokedJwt<'a>, now: UnixTime) -> StoreFuture<'a, ()> {
        Box::pin(self.store.revoke_jti(jwt.jti, jwt.client_id, jwt.exp, jwt.audiences, now))
    }
}

impl EventLog for SqlTokens {
    fn events_after<'a>(
        &'a self,
        after: EventSeq,
        receiver: &'a ClientId,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredEvent>> {
        Box::pin(self.store.events_after(after, receiver, limit))
    }

    fn latest_event(&self) -> StoreFuture<'_, EventSeq> {
        Box::pin(self.store.latest_event())
    }
}

impl AssertionReplayStore for SqlTokens {
    fn use_jti<'a>(
        &'a self,
        client_id: &'a ClientId,
        jti_hash: &'a str,
        expires_at: UnixTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.jtis.use_jti(client_id.clone(), jti_hash.to_owned(), expires_at))
    }

    fn count_use<'a>(
        &'a self,
        owner: &'a ClientId,
        hash: &'a str,
        expires_at: UnixTime,
        max_uses: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.store.count_use(owner, hash, expires_at, max_uses))
    }
}

impl crate::audit::AuditSink for SqlTokens {
    fn record_audit<'a>(&'a self, entries: &'a [tessera_store::AuditEntry]) -> StoreFuture<'a, ()> {
        Box::pin(self.store.record_audit(entries))
    }
}
