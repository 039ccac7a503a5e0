//! Signing keys (sealed private keys, public JWKs) and the key-encryption key check.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;
use tessera_types::rfc8417::RevocationEvent;
use tessera_types::{Kid, SigningAlg, UnixTime};

use super::audit::Change;
use super::events::{self, EventAudience};
use super::{Store, StoreError, corrupt, unique_violation};
use crate::AuditAction;
use crate::model::{KeyRecord, KeyStatus};

impl Store {
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
        let mut tx = self.begin_write().await?;
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
        let detail = serde_json::json!({ "alg": key.alg.as_str(), "status": "active" });
        self.commit_change(tx, Change::new(AuditAction::KeyAdded, key.kid.as_str(), detail)).await?;
        Ok(())
    }

    /// Stores `key` as the active key of its algorithm only if there is none: `false` when
    /// another instance got there first (instances starting together agree on one key).
    pub async fn add_first_active_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let res = insert_active_key(&mut tx, key).await;
        match res {
            Err(e) if unique_violation(&e) => return Ok(false),
            r => r?,
        };
        let detail = serde_json::json!({ "alg": key.alg.as_str(), "status": "active" });
        self.commit_change(tx, Change::new(AuditAction::KeyAdded, key.kid.as_str(), detail)).await?;
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
    /// Every receiver of the revocation feed is told: tokens it signed are void.
    pub async fn remove_retired_key(&self, kid: &Kid, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND status = $2")
            .bind(kid.as_str())
            .bind(KeyStatus::Retired.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            let event = RevocationEvent::KeyRemoved { kid: kid.clone() };
            events::record(&mut tx, &event, &EventAudience::All, now, events::lasting_event_expiry(now)).await?;
        }
        self.commit_if_changed(tx, n, || Change::new(AuditAction::KeyRemoved, kid.as_str(), serde_json::json!({})))
            .await
    }
}

async fn insert_active_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &KeyRecord,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, status, sealed_private_key, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.kid.as_str())
    .bind(key.alg.as_str())
    .bind(KeyStatus::Active.as_str())
    .bind(key.sealed_private_key.clone())
    .bind(key.public_jwk.clone())
    .bind(key.created_at.0)
    .execute(&mut **tx)
    .await
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let alg: String = row.try_get("alg")?;
    let status: String = row.try_get("status")?;
    let kid: String = row.try_get("kid")?;
    Ok(KeyRecord {
        kid: Kid::new(kid).map_err(corrupt)?,
        alg: SigningAlg::from_str(&alg).map_err(corrupt)?,
        status: KeyStatus::parse(&status).ok_or_else(|| corrupt(format!("key status {status}")))?,
        sealed_private_key: row.try_get("sealed_private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}
