use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tessera_types::{ClientId, Permission, Resource, ScopeName, SigningAlg, TokenFormat, UnixTime};

use crate::model::{ClientLimits, ClientRecord, ClientUpdate, KeyRecord, KeyStatus, ScopeRecord, SecretRecord, TokenRecord};
use crate::{pg_url, sqlite};

/// Migrations, applied in order on open; each is idempotent SQL.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_registry.sql")),
    (2, include_str!("../migrations/0002_tokens.sql")),
    (3, include_str!("../migrations/0003_one_active_key.sql")),
    (4, include_str!("../migrations/0004_kek_check.sql")),
    (5, include_str!("../migrations/0005_client_limits.sql")),
];

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
    /// A file or directory could not be prepared.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
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
        let store = Self { pool, data_dir: Some(data_dir.to_owned()), backend: Backend::Sqlite, token_writes: Default::default() };
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
        let store = Self { pool, data_dir: Some(data_dir.to_owned()), backend: Backend::Sqlite, token_writes: Default::default() };
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
        Ok(Self { pool, data_dir: None, backend: Backend::Postgres, token_writes: Default::default() })
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

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The data directory of an embedded store.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // One migrator at a time across instances; released with the session otherwise.
            sqlx::query("SELECT pg_advisory_lock(727361)").execute(&mut *conn).await?;
        }
        let result = Self::migrate_on(&mut conn).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(727361)").execute(&mut *conn).await?;
        }
        result
    }

    async fn migrate_on(conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        for (version, sql) in MIGRATIONS {
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM tessera_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *conn)
                .await?;
            if applied.is_some() {
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO tessera_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
            )
            .bind(*version)
            .bind(0_i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version, "applied store migration");
        }
        Ok(())
    }

    /// The registry revision: it changes with every committed change to scopes, clients,
    /// secrets or keys.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT revision FROM registry_revision WHERE id = 1").fetch_one(&self.pool).await?)
    }

    async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        sqlx::query("UPDATE registry_revision SET revision = revision + 1 WHERE id = 1").execute(&mut **tx).await?;
        Ok(())
    }

    /// Commits a registry write of `n` rows, bumping the revision when something changed;
    /// `true` when it did.
    async fn commit_if_changed(mut tx: sqlx::Transaction<'_, sqlx::Any>, n: u64) -> Result<bool, StoreError> {
        if n > 0 {
            Self::bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    // ---- scopes ----

    /// Registers a scope; [`StoreError::Conflict`] if the name is taken.
    pub async fn add_scope(&self, scope: &ScopeRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO scopes (name, display_name, display_names, description, resources, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(scope.name.as_str())
        .bind(scope.display_name.clone())
        .bind(serde_json::to_string(&scope.display_names).expect("map serialises"))
        .bind(scope.description.clone())
        .bind(serde_json::to_string(&scope.resources).expect("list serialises"))
        .bind(scope.created_at.0)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("scope {}", scope.name)));
            }
            r => r?,
        };
        Self::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every scope, by name.
    pub async fn list_scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM scopes ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(scope_from_row).collect()
    }

    /// One scope.
    pub async fn get_scope(&self, name: &ScopeName) -> Result<Option<ScopeRecord>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM scopes WHERE name = $1").bind(name.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(scope_from_row).transpose()
    }

    /// Removes a scope; `false` if there was none.
    pub async fn remove_scope(&self, name: &ScopeName) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM scopes WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::commit_if_changed(tx, n).await
    }

    // ---- clients ----

    /// Registers a client with its secrets; [`StoreError::Conflict`] if the id is taken.
    pub async fn add_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO clients (client_id, display_name, permissions, access_token_lifetime, token_format, signing_alg, enabled, created_at, \
             issuance_rate_milli, issuance_burst, max_live_tokens) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(client.client_id.as_str())
        .bind(client.display_name.clone())
        .bind(serde_json::to_string(&client.permissions).expect("list serialises"))
        .bind(client.access_token_lifetime)
        .bind(client.token_format.as_str())
        .bind(client.signing_alg.map(|a| a.as_str()))
        .bind(i64::from(client.enabled))
        .bind(client.created_at.0)
        .bind(client.limits.issuance_rate_milli)
        .bind(client.limits.issuance_burst)
        .bind(client.limits.max_live_tokens)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("client {}", client.client_id)));
            }
            r => r?,
        };
        for secret in &client.secrets {
            insert_secret(&mut tx, &client.client_id, secret).await?;
        }
        Self::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every client with its secrets, by id.
    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query("SELECT * FROM clients ORDER BY client_id").fetch_all(&mut *conn).await?;
        let secrets = sqlx::query("SELECT * FROM client_secrets ORDER BY created_at, id").fetch_all(&mut *conn).await?;
        let mut by_client: BTreeMap<String, Vec<SecretRecord>> = BTreeMap::new();
        for row in &secrets {
            let client_id: String = row.try_get("client_id")?;
            by_client.entry(client_id).or_default().push(secret_from_row(row)?);
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("client_id")?;
                client_from_row(row, by_client.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    /// One client with its secrets.
    pub async fn get_client(&self, client_id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let secrets = sqlx::query("SELECT * FROM client_secrets WHERE client_id = $1 ORDER BY created_at, id")
            .bind(client_id.as_str())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(secret_from_row)
            .collect::<Result<_, _>>()?;
        client_from_row(&row, secrets).map(Some)
    }

    /// Removes a client, its secrets and its reference tokens; `false` if there was none.
    pub async fn remove_client(&self, client_id: &ClientId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tokens WHERE client_id = $1").bind(client_id.as_str()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM client_secrets WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::commit_if_changed(tx, n).await
    }

    /// Enables or disables a client; `false` if there is none.
    pub async fn set_client_enabled(&self, client_id: &ClientId, enabled: bool) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE clients SET enabled = $1 WHERE client_id = $2")
            .bind(i64::from(enabled))
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::commit_if_changed(tx, n).await
    }

    /// Changes a client's settings; `false` if there is no such client.
    pub async fn update_client(&self, client_id: &ClientId, update: &ClientUpdate) -> Result<bool, StoreError> {
        let Some(mut current) = self.get_client(client_id).await? else {
            return Ok(false);
        };
        if let Some(v) = &update.display_name {
            current.display_name = Some(v.clone());
        }
        if let Some(v) = update.access_token_lifetime {
            current.access_token_lifetime = v;
        }
        if let Some(v) = update.token_format {
            current.token_format = v;
        }
        if let Some(v) = update.signing_alg {
            current.signing_alg = Some(v);
        }
        if let Some(v) = &update.permissions {
            current.permissions = v.clone();
        }
        if let Some(v) = update.issuance_rate_milli {
            current.limits.issuance_rate_milli = v;
        }
        if let Some(v) = update.issuance_burst {
            current.limits.issuance_burst = v;
        }
        if let Some(v) = update.max_live_tokens {
            current.limits.max_live_tokens = v;
        }
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE clients SET display_name = $1, access_token_lifetime = $2, token_format = $3, signing_alg = $4, permissions = $5, \
             issuance_rate_milli = $7, issuance_burst = $8, max_live_tokens = $9 WHERE client_id = $6",
        )
        .bind(current.display_name.clone())
        .bind(current.access_token_lifetime)
        .bind(current.token_format.as_str())
        .bind(current.signing_alg.map(|a| a.as_str()))
        .bind(serde_json::to_string(&current.permissions).expect("list serialises"))
        .bind(client_id.as_str())
        .bind(current.limits.issuance_rate_milli)
        .bind(current.limits.issuance_burst)
        .bind(current.limits.max_live_tokens)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Self::commit_if_changed(tx, n).await
    }

    /// Adds a secret to a client; `false` if there is no such client. (One statement, no
    /// read-then-write: the foreign key says whether the client exists.)
    pub async fn add_secret(&self, client_id: &ClientId, secret: &SecretRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        match insert_secret(&mut tx, client_id, secret).await {
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_foreign_key_violation() => return Ok(false),
            r => r?,
        }
        Self::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes one secret of a client; `false` if there was none.
    pub async fn remove_secret(&self, client_id: &ClientId, secret_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM client_secrets WHERE client_id = $1 AND id = $2")
            .bind(client_id.as_str())
            .bind(secret_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::commit_if_changed(tx, n).await
    }

    // ---- signing keys ----

    /// Every signing key, oldest first; within one second, retired before active (a rotation
    /// makes both in the same second).
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys ORDER BY created_at, CASE status WHEN 'retired' THEN 0 ELSE 1 END, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Stores a new active key and retires the active keys of the same algorithm, atomically.
    /// [`StoreError::Conflict`] when another writer made a key active for the same algorithm
    /// at the same moment (at most one active key per algorithm is enforced by an index).
    pub async fn add_active_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET status = $1 WHERE alg = $2 AND status = $3")
            .bind(KeyStatus::Retired.as_str())
            .bind(key.alg.as_str())
            .bind(KeyStatus::Active.as_str())
            .execute(&mut *tx)
            .await?;
        let res = insert_active_key(&mut tx, key).await;
        match res {
            Err(e) if unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("an active {} key (concurrent rotation)", key.alg)));
            }
            r => r?,
        };
        Self::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores `key` as the active key of its algorithm only if there is none: `false` when
    /// another instance got there first (instances starting together agree on one key).
    pub async fn add_first_active_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let res = insert_active_key(&mut tx, key).await;
        match res {
            Err(e) if unique_violation(&e) => return Ok(false),
            r => r?,
        };
        Self::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The check value of the key-encryption key that seals this store's signing keys, if
    /// one was recorded.
    pub async fn kek_check(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT check_value FROM kek_check WHERE id = 1").fetch_optional(&self.pool).await?)
    }

    /// Records `check` as the key-encryption key's check value unless one is recorded
    /// already, and returns the one recorded (the first writer wins when instances race).
    pub async fn record_kek_check(&self, check: &str, now: UnixTime) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO kek_check (id, check_value, recorded_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(check)
        .bind(now.0)
        .execute(&self.pool)
        .await?;
        self.kek_check().await?.ok_or_else(|| corrupt("kek_check row vanished"))
    }

    /// Removes a retired key from publication; an active key cannot be removed (rotate first).
    pub async fn remove_retired_key(&self, kid: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND status = $2")
            .bind(kid)
            .bind(KeyStatus::Retired.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::commit_if_changed(tx, n).await
    }

    // ---- reference tokens and revocations ----

    /// Stores reference tokens in one transaction: one commit (one fsync) for the whole batch.
    pub async fn insert_tokens(&self, tokens: &[TokenRecord]) -> Result<(), StoreError> {
        // Multi-row INSERTs (64 rows, 512 parameters: within both SQLite's and PostgreSQL's
        // limits) keep the time the write lock is held — and so the batch latency — short.
        const ROWS: usize = 64;
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.pool.begin().await?;
        for chunk in tokens.chunks(ROWS) {
            let mut sql =
                String::from("INSERT INTO tokens (hash, jti, client_id, scope, audiences, iat, exp, revoked) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            // Only placeholders are interpolated; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for t in chunk {
                q = q
                    .bind(t.hash.clone())
                    .bind(t.jti.clone())
                    .bind(t.client_id.as_str().to_owned())
                    .bind(t.scope.clone())
                    .bind(serde_json::to_string(&t.audiences).expect("list serialises"))
                    .bind(t.iat.0)
                    .bind(t.exp.0)
                    .bind(i64::from(t.revoked));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A reference token by the hash of its value.
    pub async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1").bind(hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Marks a reference token revoked; `false` if there is none.
    pub async fn revoke_token(&self, hash: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE tokens SET revoked = 1 WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Remembers a revoked JWT by `jti` until `exp`.
    pub async fn revoke_jti(&self, jti: &str, client_id: &ClientId, exp: UnixTime) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO revoked_jtis (jti, client_id, exp) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(client_id.as_str())
            .bind(exp.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether a JWT `jti` was revoked.
    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row: Option<String> = sqlx::query_scalar("SELECT jti FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Deletes reference tokens and revocation entries that expired before `now`; returns how
    /// many of each.
    pub async fn prune(&self, now: UnixTime, batch: u32) -> Result<(u64, u64), StoreError> {
        // In batches, each its own short transaction: one DELETE of 300k rows held the SQLite
        // write lock for over a second, and every issuance waited behind it.
        let mut total = [0u64; 2];
        for (i, sql) in [
            "DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE exp < $1 LIMIT $2)",
            "DELETE FROM revoked_jtis WHERE jti IN (SELECT jti FROM revoked_jtis WHERE exp < $1 LIMIT $2)",
        ]
        .into_iter()
        .enumerate()
        {
            loop {
                let turn = self.sqlite_write_turn().await;
                let n = sqlx::query(sql).bind(now.0).bind(i64::from(batch)).execute(&self.pool).await?.rows_affected();
                drop(turn);
                total[i] += n;
                if n < u64::from(batch) {
                    break;
                }
                // Let queued issuance commit between batches.
                tokio::task::yield_now().await;
            }
        }
        Ok((total[0], total[1]))
    }

    async fn sqlite_write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.token_writes.lock().await),
            // PostgreSQL takes row locks, not a database lock: no need to queue.
            Backend::Postgres => None,
        }
    }

    /// Live (unexpired, unrevoked) reference tokens per client.
    pub async fn live_token_counts(&self, now: UnixTime) -> Result<HashMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT client_id, COUNT(*) AS n FROM tokens WHERE exp > $1 AND revoked = 0 GROUP BY client_id")
            .bind(now.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("client_id")?, r.try_get::<i64, _>("n")?.max(0) as u64)))
            .collect()
    }

    /// For the day a client is compromised: deletes its reference tokens and makes every JWT
    /// it was issued before `not_before` inactive at introspection. `None` if there is no such
    /// client, else the number of reference tokens deleted.
    pub async fn revoke_client_tokens(&self, client_id: &ClientId, not_before: UnixTime) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE clients SET tokens_not_before = $1 WHERE client_id = $2")
            .bind(not_before.0)
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let deleted =
            sqlx::query("DELETE FROM tokens WHERE client_id = $1").bind(client_id.as_str()).execute(&mut *tx).await?.rows_affected();
        Self::commit_if_changed(tx, n).await?;
        Ok(Some(deleted))
    }

    /// How many reference tokens and revocation entries are stored.
    pub async fn token_counts(&self) -> Result<(i64, i64), StoreError> {
        let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens").fetch_one(&self.pool).await?;
        let jtis: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM revoked_jtis").fetch_one(&self.pool).await?;
        Ok((tokens, jtis))
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn insert_active_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &KeyRecord,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, status, sealed_private_key, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.kid.clone())
    .bind(key.alg.as_str())
    .bind(KeyStatus::Active.as_str())
    .bind(key.sealed_private_key.clone())
    .bind(key.public_jwk.clone())
    .bind(key.created_at.0)
    .execute(&mut **tx)
    .await
}

async fn insert_secret(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &ClientId,
    secret: &SecretRecord,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO client_secrets (id, client_id, hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(secret.id.clone())
        .bind(client_id.as_str())
        .bind(secret.hash.clone())
        .bind(secret.created_at.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| corrupt(format!("{col}: {e}")))
}

fn scope_from_row(row: &AnyRow) -> Result<ScopeRecord, StoreError> {
    let name: String = row.try_get("name")?;
    Ok(ScopeRecord {
        name: ScopeName::new(name).map_err(corrupt)?,
        display_name: row.try_get("display_name")?,
        display_names: json(row, "display_names")?,
        description: row.try_get("description")?,
        resources: json::<Vec<Resource>>(row, "resources")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}

fn secret_from_row(row: &AnyRow) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}

fn client_from_row(row: &AnyRow, secrets: Vec<SecretRecord>) -> Result<ClientRecord, StoreError> {
    let client_id: String = row.try_get("client_id")?;
    let token_format: String = row.try_get("token_format")?;
    let signing_alg: Option<String> = row.try_get("signing_alg")?;
    let enabled: i64 = row.try_get("enabled")?;
    Ok(ClientRecord {
        client_id: ClientId::new(client_id).map_err(corrupt)?,
        display_name: row.try_get("display_name")?,
        secrets,
        permissions: json::<Vec<Permission>>(row, "permissions")?,
        access_token_lifetime: row.try_get("access_token_lifetime")?,
        token_format: TokenFormat::from_str(&token_format).map_err(corrupt)?,
        signing_alg: signing_alg.map(|a| SigningAlg::from_str(&a)).transpose().map_err(corrupt)?,
        enabled: enabled != 0,
        created_at: UnixTime(row.try_get("created_at")?),
        limits: ClientLimits {
            issuance_rate_milli: row.try_get("issuance_rate_milli")?,
            issuance_burst: row.try_get("issuance_burst")?,
            max_live_tokens: row.try_get("max_live_tokens")?,
        },
        tokens_not_before: row.try_get::<Option<i64>, _>("tokens_not_before")?.map(UnixTime),
    })
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let alg: String = row.try_get("alg")?;
    let status: String = row.try_get("status")?;
    Ok(KeyRecord {
        kid: row.try_get("kid")?,
        alg: SigningAlg::from_str(&alg).map_err(corrupt)?,
        status: KeyStatus::parse(&status).ok_or_else(|| corrupt(format!("key status {status}")))?,
        sealed_private_key: row.try_get("sealed_private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let client_id: String = row.try_get("client_id")?;
    let revoked: i64 = row.try_get("revoked")?;
    Ok(TokenRecord {
        hash: row.try_get("hash")?,
        jti: row.try_get("jti")?,
        client_id: ClientId::new(client_id).map_err(corrupt)?,
        scope: row.try_get("scope")?,
        audiences: json::<Vec<Resource>>(row, "audiences")?,
        iat: UnixTime(row.try_get("iat")?),
        exp: UnixTime(row.try_get("exp")?),
        revoked: revoked != 0,
    })
}
