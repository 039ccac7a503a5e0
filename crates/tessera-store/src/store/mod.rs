//! The store: one code path over sqlx's `Any` driver for SQLite and PostgreSQL. This file
//! opens it and holds what every table shares (the revision counter, errors, row helpers); the
//! tables' methods live beside it, one file each.

mod assertions;
mod audit;
mod clients;
mod events;
mod keys;
mod migrate;
mod scopes;
mod tokens;
mod trusts;

use std::path::{Path, PathBuf};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use audit::{AuditAction, AuditEntry, AuditQuery};
pub use events::{EventAudience, StoredEvent};
pub(crate) use tokens::insert_tokens_raw;
pub use tokens::{LEGACY_HANDLE_CHARS, MAX_COUNTED_ONE_BY_ONE};

use crate::{pg_url, sqlite};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (one machine).
    Sqlite,
    /// PostgreSQL (several instances).
    Postgres,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded database refused or failed, on its own connections (issue 17).
    #[error("database: {0}")]
    Embedded(String),
    /// A file or directory could not be prepared.
    #[error("{path}: {source}")]
    #[allow(missing_docs)]
    Io { path: PathBuf, source: std::io::Error },
    /// The thing being added exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// Stored data does not parse: the database was edited by hand or is corrupt.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// A batched write failed (the cause was logged by the writer).
    #[error("write failed: {0}")]
    Write(String),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The registry and key store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    data_dir: Option<PathBuf>,
    backend: Backend,
    /// Token writes of this process, one at a time on SQLite: two in-process writers would
    /// otherwise meet in SQLite's busy handler, whose back-off sleeps add up to a third of a
    /// second (measured: pruning batches held issuance up to 333 ms). Taken in FIFO order, so
    /// a commit waits for one batch at most.
    token_writes: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Who registry changes are recorded as made by (issue 16: the audit trail).
    audit: audit::AuditContext,
    /// The embedded database's own connections for reference tokens (issue 17).
    embedded: Option<std::sync::Arc<sqlite::embedded::Embedded>>,
}

impl Store {
    /// Opens (creating if needed) the embedded SQLite database in `data_dir` and applies
    /// migrations.
    pub async fn open_embedded(data_dir: &Path) -> Result<Self, StoreError> {
        let url = sqlite::prepare(data_dir)?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(&url).await?;
        // WAL is a property of the database file: set once, kept across opens. With the
        // default `synchronous=FULL` every commit is durable before it returns.
        sqlx::query("PRAGMA journal_mode=WAL").execute(&pool).await?;
        let store = Self {
            pool,
            data_dir: Some(data_dir.to_owned()),
            backend: Backend::Sqlite,
            token_writes: Default::default(),
            audit: Default::default(),
            embedded: Some(std::sync::Arc::new(sqlite::embedded::Embedded::new(data_dir))),
        };
        store.migrate().await?;
        sqlite::tighten(data_dir)?;
        Ok(store)
    }

    /// Opens the embedded SQLite database in `data_dir` only if a Tessera store is already
    /// there (the CLI: a mistyped `--data-dir` must not create an empty store that no server
    /// reads). Creates nothing when it is not.
    pub async fn open_existing_embedded(data_dir: &Path) -> Result<Self, StoreError> {
        let url = sqlite::existing(data_dir)?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(&url).await?;
        let store = Self {
            pool,
            data_dir: Some(data_dir.to_owned()),
            backend: Backend::Sqlite,
            token_writes: Default::default(),
            audit: Default::default(),
            embedded: Some(std::sync::Arc::new(sqlite::embedded::Embedded::new(data_dir))),
        };
        if !store.is_initialised().await? {
            store.pool.close().await;
            return Err(sqlite::not_initialised(data_dir));
        }
        sqlx::query("PRAGMA journal_mode=WAL").execute(&store.pool).await?;
        store.migrate().await?;
        sqlite::tighten(data_dir)?;
        Ok(store)
    }

    /// Connects to a PostgreSQL database (`postgres://...`) with at most `pool_size`
    /// connections and applies migrations; instances starting together serialise on an
    /// advisory lock. The pool reconnects by itself after the database comes back. A remote
    /// host without an `sslmode` gets `verify-full` (see [`pg_url::tls_default`]).
    pub async fn connect_postgres(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let store = Self::connect_pool(url, pool_size).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// [`Store::connect_postgres`], but only if the database already holds a Tessera store
    /// (the CLI); creates no table when it does not.
    pub async fn connect_existing_postgres(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let store = Self::connect_pool(url, pool_size).await?;
        if !store.is_initialised().await? {
            store.pool.close().await;
            return Err(StoreError::Config(format!(
                "no Tessera store in PostgreSQL database {}: create it with `tessera init --database-url ...` \
                 (or start `tessera serve` on it), or check the URL",
                pg_url::redact(url)
            )));
        }
        store.migrate().await?;
        Ok(store)
    }

    async fn connect_pool(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Config(
                "database URL must start with postgres:// (or use the embedded default)".into(),
            ));
        }
        let choice = pg_url::tls_default(url, &|k| std::env::var(k).ok());
        if let Some(w) = &choice.warning {
            tracing::warn!("{w}");
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&choice.url)
            .await?;
        Ok(Self {
            pool,
            data_dir: None,
            backend: Backend::Postgres,
            token_writes: Default::default(),
            audit: Default::default(),
            embedded: None,
        })
    }

    /// Whether the database holds a Tessera store (its migrations table).
    async fn is_initialised(&self) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tessera_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'tessera_migrations' \
                 AND table_schema = current_schema()"
            }
        };
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    #[allow(missing_docs)]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The embedded database's own connections; `None` on PostgreSQL.
    pub(crate) fn embedded(&self) -> Option<&std::sync::Arc<sqlite::embedded::Embedded>> {
        self.embedded.as_ref()
    }

    /// The data directory of an embedded store.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The registry revision: it changes with every committed change to scopes, clients,
    /// secrets or keys.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT revision FROM registry_revision WHERE id = 1").fetch_one(&self.pool).await?)
    }

    /// A transaction that writes. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and then writes fails with
    /// `database is locked` when another writer commits in between (its read snapshot is
    /// stale, so waiting cannot help), while an immediate one waits its turn (busy timeout).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        sqlx::query("UPDATE registry_revision SET revision = revision + 1 WHERE id = 1").execute(&mut **tx).await?;
        Ok(())
    }

    /// Commits a registry write of `n` rows, bumping the revision and recording `change` in
    /// the audit trail when something changed; `true` when it did.
    async fn commit_if_changed(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Any>,
        n: u64,
        change: impl FnOnce() -> audit::Change,
    ) -> Result<bool, StoreError> {
        if n > 0 {
            self.commit_change(tx, change()).await?;
        } else {
            tx.commit().await?;
        }
        Ok(n > 0)
    }

    /// Commits a registry write, bumping the revision in the same transaction so running
    /// servers see it, and recording `change` in the audit trail in it too: no change
    /// without its entry, no entry without its change.
    async fn commit_change(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        change: audit::Change,
    ) -> Result<(), StoreError> {
        Self::bump(&mut tx).await?;
        let entry = self.record_change(&mut tx, change).await?;
        tx.commit().await?;
        audit::log_event(&entry);
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{col}: {e}")))
}
