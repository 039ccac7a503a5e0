//! Client assertion ids already used (RFC 7523 §3 item 7): one row per `jti`, until the
//! assertion expires.

use sqlx::Row as _;
use tessera_types::{ClientId, UnixTime};

use super::{Store, StoreError};

impl Store {
    /// Records that `client_id` used the assertion whose `jti` hashes to `jti_hash`, valid
    /// until `expires_at`. `false` when it was recorded before: a replay. The unique key
    /// decides, so two instances on one PostgreSQL cannot both accept the same assertion.
    pub async fn use_assertion_jti(
        &self,
        client_id: &ClientId,
        jti_hash: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let rows = [(client_id.clone(), jti_hash.to_owned(), expires_at)];
        Ok(self.use_assertion_jtis(&rows).await?[0])
    }

    /// [`Store::use_assertion_jti`] for many rows in one transaction (one fsync): each row's
    /// outcome in order, `false` for a replay — of an earlier row in the same batch too.
    pub async fn use_assertion_jtis(&self, rows: &[(ClientId, String, UnixTime)]) -> Result<Vec<bool>, StoreError> {
        // Multi-row statements (64 rows, 192 parameters) as for reference tokens: a statement
        // per row costs a round trip to the database thread each, and the writer is serial.
        const ROWS: usize = 64;
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.begin_write().await?;
        let mut inserted = std::collections::HashSet::new();
        for chunk in rows.chunks(ROWS) {
            let mut sql = String::from("INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 3;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${}, ${})", b + 1, b + 2, b + 3));
            }
            // ON CONFLICT DO NOTHING (SQLite 3.24+, PostgreSQL 9.5+): a replay must not abort
            // the transaction the other rows share; RETURNING names the rows that went in.
            sql.push_str(" ON CONFLICT (client_id, jti_hash) DO NOTHING RETURNING client_id, jti_hash");
            // Only placeholders are interpolated; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (client_id, jti_hash, expires_at) in chunk {
                q = q.bind(client_id.as_str().to_owned()).bind(jti_hash.clone()).bind(expires_at.0);
            }
            for row in q.fetch_all(&mut *tx).await? {
                inserted.insert((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
            }
        }
        tx.commit().await?;
        // A row went in at most once: the first of equal rows in the batch takes it, the
        // others are replays.
        Ok(rows.iter().map(|(c, h, _)| inserted.remove(&(c.as_str().to_owned(), h.clone()))).collect())
    }

    /// Counts one more use of the token `owner` keeps under `hash`, valid until `expires_at`:
    /// `false` once it has been used `max_uses` times. The increment is conditional in one
    /// statement, so instances sharing PostgreSQL cannot together exceed the bound.
    pub async fn count_use(
        &self,
        owner: &ClientId,
        hash: &str,
        expires_at: UnixTime,
        max_uses: i64,
    ) -> Result<bool, StoreError> {
        let _one_writer = self.sqlite_write_turn().await;
        // Upsert with a WHERE on the update (SQLite 3.24+, PostgreSQL 9.5+): no row comes back
        // when the bound is reached.
        let counted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at, uses) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (client_id, jti_hash) DO UPDATE SET uses = client_assertion_jtis.uses + 1 \
             WHERE client_assertion_jtis.uses < $4 RETURNING uses",
        )
        .bind(owner.as_str())
        .bind(hash)
        .bind(expires_at.0)
        .bind(max_uses)
        .fetch_optional(&self.pool)
        .await?;
        Ok(counted.is_some())
    }

    /// Deletes assertion ids that expired before `now`, `batch` rows per statement (as
    /// [`Store::prune`] does for tokens); returns how many.
    pub async fn prune_assertion_jtis(&self, now: UnixTime, batch: u32) -> Result<u64, StoreError> {
        self.prune_batches(
            "DELETE FROM client_assertion_jtis WHERE (client_id, jti_hash) IN \
             (SELECT client_id, jti_hash FROM client_assertion_jtis WHERE expires_at < $1 LIMIT $2)",
            now,
            batch,
        )
        .await
    }
}
