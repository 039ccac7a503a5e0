//! Tessera storage: the registry (scopes, clients, hashed secrets) and signing keys.
//!
//! One code path through sqlx's `Any` driver with portable SQL, so the embedded SQLite
//! default and a shared PostgreSQL run the same statements. Every write to the registry bumps
//! a revision counter in the same transaction; running servers poll it and reload, so changes
//! made by the CLI take effect without a restart.
#![deny(missing_docs)]

mod batch;
mod model;
pub mod pg_url;
mod sqlite;
mod store;

pub use batch::{AssertionJtiWriter, BatchCommit, BatchObserver, TokenWriter};
pub use model::{
    ClientLimits, ClientRecord, ClientUpdate, KeyRecord, KeyStatus, ScopeRecord, SecretRecord, TokenRecord,
    TrustRecord, TrustRuleRecord,
};
pub use store::{
    AuditAction, AuditEntry, AuditQuery, Backend, EventAudience, LEGACY_HANDLE_CHARS, MAX_COUNTED_ONE_BY_ONE, Store,
    StoreError, StoredEvent,
};
