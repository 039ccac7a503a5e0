//! Reference tokens, revoked JWT ids, pruning and per-client revocation.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use tessera_types::rfc8417::RevocationEvent;
use tessera_types::{ClientId, Jti, Resource, ScopeSet, UnixTime};

use super::audit::Change;
use super::events::{self, EventAudience};
use super::{Backend, Store, StoreError, corrupt};
use crate::AuditAction;
use crate::model::TokenRecord;
use crate::sqlite::raw;

impl Store {
    /// Stores reference tokens in one transaction: one commit (one fsync) for the whole batch.
    pub async fn insert_tokens(&self, tokens: &[TokenRecord]) -> Result<(), StoreError> {
        // Multi-row INSERTs (64 rows, 704 parameters: within both SQLite's and PostgreSQL's
        // limits) keep the time the write lock is held — and so the batch latency — short.
        const ROWS: usize = 64;
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.begin_write().await?;
        for chunk in tokens.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO tokens (handle, hash, jti, client_id, scope, audiences, iat, exp, revoked, cnf, workload) \
                 VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * COLUMNS;
                if i > 0 {
                    sql.push_str(", ");
                }
                let row: Vec<String> = (b + 1..=b + COLUMNS).map(|n| format!("${n}")).collect();
                sql.push_str(&format!("({})", row.join(", ")));
            }
            // Only placeholders are interpolated; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for t in chunk {
                let c = TokenColumns::of(t);
                q = q
                    .bind(c.handle)
                    .bind(c.hash)
                    .bind(c.jti)
                    .bind(c.client_id)
                    .bind(c.scope)
                    .bind(c.audiences)
                    .bind(c.iat)
                    .bind(c.exp)
                    .bind(c.revoked)
                    .bind(c.cnf)
                    .bind(c.workload);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The reference token with `handle` (or stored before handles, see
    /// [`LEGACY_HANDLE_CHARS`]) whose hash is `hash`: a handle alone finds nothing.
    pub async fn find_token(&self, handle: &str, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let legacy = legacy_handle(hash);
        if let Some(found) = self.embedded().and_then(|e| e.read(|conn| find_token_raw(conn, handle, legacy, hash))) {
            return found?.map(TokenColumns::into_record).transpose();
        }
        let row = sqlx::query(SELECT_BY_HANDLE).bind(handle).bind(legacy).bind(hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Marks a reference token (as [`Store::find_token`] finds it) revoked, recording the
    /// event for the revocation feed in the same transaction; `false` if there is no such token.
    pub async fn revoke_token(&self, handle: &str, hash: &str, now: UnixTime) -> Result<bool, StoreError> {
        let legacy = legacy_handle(hash);
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(row) =
            sqlx::query(SELECT_BY_HANDLE).bind(handle).bind(legacy).bind(hash).fetch_optional(&mut *tx).await?
        else {
            tx.commit().await?;
            return Ok(false);
        };
        let t = token_from_row(&row)?;
        let n = sqlx::query("UPDATE tokens SET revoked = 1 WHERE handle = $1 AND revoked = 0")
            .bind(t.handle.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Revoked once, told once.
        if n > 0 {
            let event = RevocationEvent::TokenRevoked {
                jti: t.jti,
                exp: t.exp,
                client_id: t.client_id,
                token_hash: Some(hash.to_owned()),
            };
            let audience = EventAudience::Only(t.audiences);
            events::record(&mut tx, &event, &audience, now, events::token_event_expiry(t.exp)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Remembers a revoked JWT by `jti` until `exp`, and records the event for the revocation
    /// feed (told to `audiences`, the token's `aud`) in the same transaction.
    pub async fn revoke_jti(
        &self,
        jti: &Jti,
        client_id: &ClientId,
        exp: UnixTime,
        audiences: &[Resource],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "INSERT INTO revoked_jtis (jti, client_id, exp) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti.as_str())
        .bind(client_id.as_str())
        .bind(exp.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            let event =
                RevocationEvent::TokenRevoked { jti: jti.clone(), exp, client_id: client_id.clone(), token_hash: None };
            let audience = EventAudience::Only(audiences.to_vec());
            events::record(&mut tx, &event, &audience, now, events::token_event_expiry(exp)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether a JWT `jti` was revoked.
    pub async fn is_jti_revoked(&self, jti: &Jti) -> Result<bool, StoreError> {
        let read = |conn: &mut raw::Conn| {
            let mut q = conn.statement("SELECT 1 FROM revoked_jtis WHERE jti = ?1")?;
            q.bind(&[jti.as_str().into()])?;
            q.step()
        };
        if let Some(found) = self.embedded().and_then(|e| e.read(read)) {
            return Ok(found?);
        }
        let row: Option<String> = sqlx::query_scalar("SELECT jti FROM revoked_jtis WHERE jti = $1")
            .bind(jti.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Deletes reference tokens and revocation entries that expired before `now`; returns how
    /// many of each.
    pub async fn prune(&self, now: UnixTime, batch: u32) -> Result<(u64, u64), StoreError> {
        // In batches, each its own short transaction: one DELETE of 300k rows held the SQLite
        // write lock for over a second, and every issuance waited behind it.
        let tokens = self
            .prune_batches(
                "DELETE FROM tokens WHERE handle IN (SELECT handle FROM tokens WHERE exp < $1 LIMIT $2)",
                now,
                batch,
            )
            .await?;
        let revocations = self
            .prune_batches(
                "DELETE FROM revoked_jtis WHERE jti IN (SELECT jti FROM revoked_jtis WHERE exp < $1 LIMIT $2)",
                now,
                batch,
            )
            .await?;
        Ok((tokens, revocations))
    }

    /// Runs `sql` (a DELETE bound to `now` and `batch`) until it deletes fewer than `batch`
    /// rows; returns how many it deleted.
    pub(super) async fn prune_batches(&self, sql: &'static str, now: UnixTime, batch: u32) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let turn = self.sqlite_write_turn().await;
            let n = sqlx::query(sql).bind(now.0).bind(i64::from(batch)).execute(&self.pool).await?.rows_affected();
            drop(turn);
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
            // Let queued issuance commit between batches.
            tokio::task::yield_now().await;
        }
    }

    /// [`Store::sqlite_write_turn`] for a thread outside the runtime (the embedded token
    /// writer); the turn is taken on SQLite only.
    pub(crate) fn write_turn_blocking(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        (self.backend == Backend::Sqlite).then(|| self.token_writes.blocking_lock())
    }

    pub(super) async fn sqlite_write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.token_writes.lock().await),
            // PostgreSQL takes row locks, not a database lock: no need to queue.
            Backend::Postgres => None,
        }
    }

    /// Live (unexpired, unrevoked) reference tokens of each of `clients` (those with a cap on
    /// them; `None`: every client); a client without any is absent. Each listed client is
    /// counted through the `tokens_client` index, so the cost follows the listed clients'
    /// tokens, not the table: nothing at all for none. For all clients, or more than
    /// [`MAX_COUNTED_ONE_BY_ONE`], one grouped pass over the table instead.
    pub async fn live_token_counts(
        &self,
        now: UnixTime,
        clients: Option<&[ClientId]>,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let wanted = match clients {
            Some([]) => return Ok(HashMap::new()),
            Some(few) if few.len() <= MAX_COUNTED_ONE_BY_ONE => few,
            many => {
                let wanted: Option<std::collections::HashSet<&str>> =
                    many.map(|many| many.iter().map(ClientId::as_str).collect());
                let rows = sqlx::query(
                    "SELECT client_id, COUNT(*) AS n FROM tokens WHERE exp > $1 AND revoked = 0 GROUP BY client_id",
                )
                .bind(now.0)
                .fetch_all(&self.pool)
                .await?;
                let mut counts = HashMap::new();
                for r in &rows {
                    let id: String = r.try_get("client_id")?;
                    if wanted.as_ref().is_none_or(|w| w.contains(id.as_str())) {
                        counts.insert(id, r.try_get::<i64, _>("n")?.max(0) as u64);
                    }
                }
                return Ok(counts);
            }
        };
        let clients = wanted;
        if let Some(embedded) = self.embedded() {
            // A few thousand index lookups at most: off the async workers all the same.
            let (embedded, clients) = (embedded.clone(), clients.to_vec());
            let read = tokio::task::spawn_blocking(move || {
                embedded.read(|conn| {
                    let mut counts = HashMap::new();
                    let mut q = conn
                        .statement("SELECT COUNT(*) FROM tokens WHERE client_id = ?1 AND exp > ?2 AND revoked = 0")?;
                    for id in &clients {
                        q.bind(&[id.as_str().into(), now.0.into()])?;
                        let n = if q.step()? { q.int(0) } else { 0 };
                        q.reset();
                        if n > 0 {
                            counts.insert(id.as_str().to_owned(), n as u64);
                        }
                    }
                    Ok(counts)
                })
            })
            .await
            .map_err(|e| StoreError::Embedded(format!("counting live tokens: {e}")))?;
            if let Some(counts) = read {
                return Ok(counts?);
            }
        }
        // `IN` lists of a few hundred: within every driver's parameter limit.
        let mut counts = HashMap::new();
        for chunk in clients.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT client_id, COUNT(*) AS n FROM tokens WHERE exp > $1 AND revoked = 0 AND client_id IN ({}) \
                 GROUP BY client_id",
                list.join(", ")
            );
            // Only placeholders are interpolated; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.0);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in q.fetch_all(&self.pool).await? {
                counts.insert(r.try_get::<String, _>("client_id")?, r.try_get::<i64, _>("n")?.max(0) as u64);
            }
        }
        Ok(counts)
    }

    /// For the day a client is compromised: deletes its reference tokens and makes every JWT
    /// it was issued before `not_before` inactive at introspection. `None` if there is no such
    /// client, else the number of reference tokens deleted.
    pub async fn revoke_client_tokens(
        &self,
        client_id: &ClientId,
        not_before: UnixTime,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let audiences = events::client_audiences(&mut tx, client_id).await?;
        let n = sqlx::query("UPDATE clients SET tokens_not_before = $1 WHERE client_id = $2")
            .bind(not_before.0)
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let deleted = sqlx::query("DELETE FROM tokens WHERE client_id = $1")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let event = RevocationEvent::ClientTokensRevoked { client_id: client_id.clone(), not_before };
        let audience = EventAudience::Only(audiences);
        events::record(&mut tx, &event, &audience, not_before, events::lasting_event_expiry(not_before)).await?;
        let detail = serde_json::json!({ "not_before": not_before.0, "reference_tokens_deleted": deleted });
        self.commit_if_changed(tx, n, || Change::new(AuditAction::ClientTokensRevoked, client_id.as_str(), detail))
            .await?;
        Ok(Some(deleted))
    }

    /// How many reference tokens and revocation entries are stored.
    pub async fn token_counts(&self) -> Result<(i64, i64), StoreError> {
        let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens").fetch_one(&self.pool).await?;
        let jtis: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM revoked_jtis").fetch_one(&self.pool).await?;
        Ok((tokens, jtis))
    }
}

/// Most clients whose live tokens [`Store::live_token_counts`] counts one index lookup at a
/// time; beyond, one pass over the table costs less.
pub const MAX_COUNTED_ONE_BY_ONE: usize = 4096;

/// Rows stored before migration 0017 are keyed by this many leading characters of their hash.
pub const LEGACY_HANDLE_CHARS: usize = 22;

fn legacy_handle(hash: &str) -> &str {
    hash.get(..LEGACY_HANDLE_CHARS).unwrap_or(hash)
}

/// The row of a reference token: its handle, or the legacy handle of its hash, and its hash.
const SELECT_BY_HANDLE: &str = concat!(
    "SELECT handle, hash, jti, client_id, scope, audiences, iat, exp, revoked, cnf, workload ",
    "FROM tokens WHERE handle IN ($1, $2) AND hash = $3"
);

/// Bound per row by the INSERTs.
const COLUMNS: usize = 11;

/// A token row as stored: what both the sqlx path and the embedded connections write and read.
pub(crate) struct TokenColumns {
    pub handle: String,
    pub hash: String,
    pub jti: String,
    pub client_id: String,
    pub scope: Option<String>,
    /// JSON list.
    pub audiences: String,
    pub iat: i64,
    pub exp: i64,
    pub revoked: i64,
    /// JSON object.
    pub cnf: Option<String>,
    /// JSON object.
    pub workload: Option<String>,
}

impl TokenColumns {
    pub(crate) fn of(t: &TokenRecord) -> Self {
        Self {
            handle: t.handle.clone(),
            hash: t.hash.clone(),
            jti: t.jti.as_str().to_owned(),
            client_id: t.client_id.as_str().to_owned(),
            scope: t.scope.as_ref().map(ToString::to_string),
            audiences: serde_json::to_string(&t.audiences).expect("list serialises"),
            iat: t.iat.0,
            exp: t.exp.0,
            revoked: i64::from(t.revoked),
            cnf: t.cnf.as_ref().map(|c| serde_json::to_string(c).expect("cnf serialises")),
            workload: t.workload.as_ref().map(|w| serde_json::to_string(w).expect("workload serialises")),
        }
    }

    /// The values to bind, in the order of the fields.
    pub(crate) fn values(&self) -> [raw::Value<'_>; COLUMNS] {
        [
            self.handle.as_str().into(),
            self.hash.as_str().into(),
            self.jti.as_str().into(),
            self.client_id.as_str().into(),
            self.scope.as_deref().into(),
            self.audiences.as_str().into(),
            self.iat.into(),
            self.exp.into(),
            self.revoked.into(),
            self.cnf.as_deref().into(),
            self.workload.as_deref().into(),
        ]
    }

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            handle: row.try_get("handle")?,
            hash: row.try_get("hash")?,
            jti: row.try_get("jti")?,
            client_id: row.try_get("client_id")?,
            scope: row.try_get("scope")?,
            audiences: row.try_get("audiences")?,
            iat: row.try_get("iat")?,
            exp: row.try_get("exp")?,
            revoked: row.try_get("revoked")?,
            cnf: row.try_get("cnf")?,
            workload: row.try_get("workload")?,
        })
    }

    /// The row a statement selecting the columns in the order of the fields is on.
    fn from_raw(q: &raw::Statement<'_>) -> Self {
        Self {
            handle: q.text(0).unwrap_or_default(),
            hash: q.text(1).unwrap_or_default(),
            jti: q.text(2).unwrap_or_default(),
            client_id: q.text(3).unwrap_or_default(),
            scope: q.text(4),
            audiences: q.text(5).unwrap_or_default(),
            iat: q.int(6),
            exp: q.int(7),
            revoked: q.int(8),
            cnf: q.text(9),
            workload: q.text(10),
        }
    }

    fn into_record(self) -> Result<TokenRecord, StoreError> {
        fn json_of<T: serde::de::DeserializeOwned>(col: &str, text: &str) -> Result<T, StoreError> {
            serde_json::from_str(text).map_err(|e| corrupt(format!("{col}: {e}")))
        }
        Ok(TokenRecord {
            handle: self.handle,
            hash: self.hash,
            jti: Jti::new(self.jti).map_err(corrupt)?,
            client_id: ClientId::new(self.client_id).map_err(corrupt)?,
            scope: self.scope.map(|s| ScopeSet::parse(&s)).transpose().map_err(corrupt)?,
            audiences: json_of("audiences", &self.audiences)?,
            iat: UnixTime(self.iat),
            exp: UnixTime(self.exp),
            revoked: self.revoked != 0,
            cnf: self.cnf.map(|text| json_of("cnf", &text)).transpose()?,
            workload: self.workload.map(|text| json_of("workload", &text)).transpose()?,
        })
    }
}

fn find_token_raw(conn: &mut raw::Conn, handle: &str, legacy: &str, hash: &str) -> raw::Result<Option<TokenColumns>> {
    // SQLite numbers `$1`, `$2`, `$3` in order of first appearance: bound by index as written.
    let mut q = conn.statement(SELECT_BY_HANDLE)?;
    q.bind(&[handle.into(), legacy.into(), hash.into()])?;
    Ok(if q.step()? { Some(TokenColumns::from_raw(&q)) } else { None })
}

/// Inserts reference tokens on the embedded writer's connection, inside its transaction.
pub(crate) fn insert_tokens_raw(conn: &mut raw::Conn, tokens: &[TokenRecord]) -> raw::Result<()> {
    let mut insert = conn.statement(concat!(
        "INSERT INTO tokens (handle, hash, jti, client_id, scope, audiences, iat, exp, revoked, cnf, workload) ",
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?;
    for t in tokens {
        insert.execute(&TokenColumns::of(t).values())?;
    }
    Ok(())
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    TokenColumns::from_row(row)?.into_record()
}
