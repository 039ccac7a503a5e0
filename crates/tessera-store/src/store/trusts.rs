//! Trusts and their claim rules (issue 15). Registry data: every change bumps the revision,
//! so running servers reload them as they reload clients.

use sqlx::Row;
use sqlx::any::AnyRow;
use tessera_types::{ClientId, UnixTime};

use super::audit::Change;
use super::{Store, StoreError, corrupt, json, unique_violation};
use crate::AuditAction;
use crate::model::{TrustRecord, TrustRuleRecord};

impl Store {
    /// Registers a trust; [`StoreError::Conflict`] if the name is taken.
    pub async fn add_trust(&self, t: &TrustRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO trusts (name, kind, issuer, jwks_uri, jwks, ca_pem, audience, max_token_age, max_lifetime, \
             max_uses, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(t.name.clone())
        .bind(t.kind.clone())
        .bind(t.issuer.clone())
        .bind(t.jwks_uri.clone())
        .bind(t.jwks.clone())
        .bind(t.ca_pem.clone())
        .bind(t.audience.clone())
        .bind(t.max_token_age)
        .bind(t.max_lifetime)
        .bind(t.max_uses)
        .bind(t.created_at.0)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if unique_violation(&e) => return Err(StoreError::Conflict(format!("trust {}", t.name))),
            r => r?,
        };
        let detail = serde_json::json!({
            "kind": t.kind, "issuer": t.issuer, "jwks_uri": t.jwks_uri, "jwks_inline": t.jwks.is_some(),
            "own_ca": t.ca_pem.is_some(), "audience": t.audience, "max_token_age": t.max_token_age,
            "max_lifetime": t.max_lifetime, "max_uses": t.max_uses,
        });
        self.commit_change(tx, Change::new(AuditAction::TrustAdded, t.name.as_str(), detail)).await
    }

    /// Every trust, by name.
    pub async fn list_trusts(&self) -> Result<Vec<TrustRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trusts ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(trust_from_row).collect()
    }

    #[allow(missing_docs)]
    pub async fn get_trust(&self, name: &str) -> Result<Option<TrustRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM trusts WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        row.as_ref().map(trust_from_row).transpose()
    }

    /// Removes a trust and its rules; `false` if there was none.
    pub async fn remove_trust(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM trust_rules WHERE trust = $1").bind(name).execute(&mut *tx).await?;
        let n = sqlx::query("DELETE FROM trusts WHERE name = $1").bind(name).execute(&mut *tx).await?.rows_affected();
        self.commit_if_changed(tx, n, || Change::new(AuditAction::TrustRemoved, name, serde_json::json!({}))).await
    }

    /// Appends a rule to `trust` (evaluated after the existing ones) and returns its id.
    /// Ids are never reused. [`StoreError::Config`] without such a trust.
    pub async fn add_trust_rule(
        &self,
        trust: &str,
        client_id: &ClientId,
        conditions: &[String],
        now: UnixTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        // Taking the id locks the trust's row (PostgreSQL): concurrent adds get distinct ids.
        let next: Option<i64> = sqlx::query_scalar(
            "UPDATE trusts SET next_rule_id = next_rule_id + 1 WHERE name = $1 RETURNING next_rule_id",
        )
        .bind(trust)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(next) = next else {
            return Err(StoreError::Config(format!("no trust {trust}")));
        };
        let id = next - 1;
        let res = sqlx::query(
            "INSERT INTO trust_rules (trust, id, client_id, conditions, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(trust)
        .bind(id)
        .bind(client_id.as_str())
        .bind(serde_json::to_string(conditions).expect("list serialises"))
        .bind(now.0)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if unique_violation(&e) => return Err(StoreError::Conflict(format!("rule {id} of trust {trust}"))),
            r => r?,
        };
        let detail = serde_json::json!({ "rule": id, "client": client_id.as_str(), "match": conditions });
        self.commit_change(tx, Change::new(AuditAction::TrustRuleAdded, trust, detail)).await?;
        Ok(id)
    }

    /// The rules of `trust`, in evaluation order.
    pub async fn list_trust_rules(&self, trust: &str) -> Result<Vec<TrustRuleRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM trust_rules WHERE trust = $1 ORDER BY id")
            .bind(trust)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_from_row).collect()
    }

    /// Removes one rule; `false` if there was none.
    pub async fn remove_trust_rule(&self, trust: &str, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM trust_rules WHERE trust = $1 AND id = $2")
            .bind(trust)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.commit_if_changed(tx, n, || {
            Change::new(AuditAction::TrustRuleRemoved, trust, serde_json::json!({ "rule": id }))
        })
        .await
    }
}

fn trust_from_row(row: &AnyRow) -> Result<TrustRecord, StoreError> {
    Ok(TrustRecord {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        issuer: row.try_get("issuer")?,
        jwks_uri: row.try_get("jwks_uri")?,
        jwks: row.try_get("jwks")?,
        ca_pem: row.try_get("ca_pem")?,
        audience: row.try_get("audience")?,
        max_token_age: row.try_get("max_token_age")?,
        max_lifetime: row.try_get("max_lifetime")?,
        max_uses: row.try_get("max_uses")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}

fn rule_from_row(row: &AnyRow) -> Result<TrustRuleRecord, StoreError> {
    let client: String = row.try_get("client_id")?;
    Ok(TrustRuleRecord {
        trust: row.try_get("trust")?,
        id: row.try_get("id")?,
        client_id: ClientId::new(client).map_err(corrupt)?,
        conditions: json(row, "conditions")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}
