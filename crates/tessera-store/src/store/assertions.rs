//! Client assertion ids already used (RFC 7523 §3 item 7): one row per `jti`, until the
//! assertion expires.

use tessera_types::{ClientId, UnixTime};

use super::{Store, StoreError, unique_violation};

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
        let turn = self.sqlite_write_turn().await;
        let res =
            sqlx::query("INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at) VALUES ($1, $2, $3)")
                .bind(client_id.as_str())
                .bind(jti_hash)
                .bind(expires_at.0)
                .execute(&self.pool)
                .await;
        drop(turn);
        match res {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Store::use_assertion_jti`] for many rows in one transaction (one fsync): each row's
    /// outcome in order, `false` for a replay — of an earlier row in the same batch too.
    pub async fn use_assertion_jtis(&self, rows: &[(ClientId, String, UnixTime)]) -> Result<Vec<bool>, StoreError> {
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.pool.begin().await?;
        let mut fresh = Vec::with_capacity(rows.len());
        for (client_id, jti_hash, expires_at) in rows {
            // ON CONFLICT DO NOTHING (SQLite 3.24+, PostgreSQL 9.5+): a replay must not abort
            // the transaction the other rows share.
            let done = sqlx::query(
                "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, jti_hash) DO NOTHING",
            )
            .bind(client_id.as_str())
            .bind(jti_hash.as_str())
            .bind(expires_at.0)
            .execute(&mut *tx)
            .await?;
            fresh.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(fresh)
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
