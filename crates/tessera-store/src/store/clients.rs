//! Clients with their secrets and public keys.

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;
use tessera_types::rfc7517::JwkSet;
use tessera_types::rfc8417::RevocationEvent;
use tessera_types::rfc8705::TlsClientRegistration;
use tessera_types::{ClientAuthMethod, ClientId, JwksUri, Permission, SigningAlg, TokenFormat, UnixTime};

use serde_json::json;

use super::audit::{Change, client_detail};
use super::events::{self, EventAudience};
use super::{Store, StoreError, corrupt, json, unique_violation};
use crate::AuditAction;
use crate::model::{ClientLimits, ClientRecord, ClientUpdate, SecretRecord};

impl Store {
    /// Registers a client with its secrets; [`StoreError::Conflict`] if the id is taken.
    pub async fn add_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        one_key_source(client)?;
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO clients (client_id, display_name, permissions, access_token_lifetime, token_format, signing_alg, enabled, created_at, \
             issuance_rate_milli, issuance_burst, max_live_tokens, jwks, token_endpoint_auth_method, tls_client, jwks_uri, \
             require_dpop) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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
        .bind(jwks_text(&client.jwks))
        .bind(client.auth_method.map(|m| m.as_str()))
        .bind(tls_text(&client.tls))
        .bind(client.jwks_uri.as_ref().map(|u| u.as_str().to_owned()))
        .bind(i64::from(client.require_dpop))
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
        let change = Change::new(AuditAction::ClientAdded, client.client_id.as_str(), client_detail(client));
        self.commit_change(tx, change).await?;
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

    /// Removes a client, its secrets and its reference tokens; `false` if there was none. The
    /// revocation feed is told its tokens are void (as a disabled client's).
    pub async fn remove_client(&self, client_id: &ClientId, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let audiences = events::client_audiences(&mut tx, client_id).await?;
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
        if n > 0 {
            let event = RevocationEvent::ClientDisabled { client_id: client_id.clone() };
            events::record(&mut tx, &event, &EventAudience::Only(audiences), now, events::lasting_event_expiry(now))
                .await?;
        }
        self.commit_if_changed(tx, n, || Change::new(AuditAction::ClientRemoved, client_id.as_str(), json!({}))).await
    }

    /// Enables or disables a client; `false` if there is none. A change is told to the
    /// revocation feed; setting the state it already has is not a change.
    pub async fn set_client_enabled(
        &self,
        client_id: &ClientId,
        enabled: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(was) = sqlx::query_scalar::<_, i64>("SELECT enabled FROM clients WHERE client_id = $1")
            .bind(client_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.commit().await?;
            return Ok(false);
        };
        if (was != 0) == enabled {
            tx.commit().await?;
            return Ok(true);
        }
        let audiences = events::client_audiences(&mut tx, client_id).await?;
        let n = sqlx::query("UPDATE clients SET enabled = $1 WHERE client_id = $2")
            .bind(i64::from(enabled))
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let id = client_id.clone();
        let event = if enabled {
            RevocationEvent::ClientEnabled { client_id: id }
        } else {
            RevocationEvent::ClientDisabled { client_id: id }
        };
        events::record(&mut tx, &event, &EventAudience::Only(audiences), now, events::lasting_event_expiry(now))
            .await?;
        let action = if enabled { AuditAction::ClientEnabled } else { AuditAction::ClientDisabled };
        self.commit_if_changed(tx, n, || Change::new(action, client_id.as_str(), json!({}))).await
    }

    /// Changes a client's settings; `false` if there is no such client.
    pub async fn update_client(&self, client_id: &ClientId, update: &ClientUpdate) -> Result<bool, StoreError> {
        let Some(mut current) = self.get_client(client_id).await? else {
            return Ok(false);
        };
        let before = client_detail(&current);
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
        // One replaces the other (RFC 7591 §2: they "MUST NOT both be present").
        if let Some(v) = &update.jwks {
            current.jwks = v.clone();
            if v.is_some() && update.jwks_uri.is_none() {
                current.jwks_uri = None;
            }
        }
        if let Some(v) = &update.jwks_uri {
            current.jwks_uri = v.clone();
            if v.is_some() && update.jwks.is_none() {
                current.jwks = None;
            }
        }
        one_key_source(&current)?;
        if let Some(v) = update.auth_method {
            current.auth_method = v;
        }
        if let Some(v) = &update.tls {
            current.tls = v.clone();
        }
        if let Some(v) = update.require_dpop {
            current.require_dpop = v;
        }
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE clients SET display_name = $1, access_token_lifetime = $2, token_format = $3, signing_alg = $4, permissions = $5, \
             issuance_rate_milli = $7, issuance_burst = $8, max_live_tokens = $9, jwks = $10, token_endpoint_auth_method = $11, \
             tls_client = $12, jwks_uri = $13, require_dpop = $14 WHERE client_id = $6",
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
        .bind(jwks_text(&current.jwks))
        .bind(current.auth_method.map(|m| m.as_str()))
        .bind(tls_text(&current.tls))
        .bind(current.jwks_uri.as_ref().map(|u| u.as_str().to_owned()))
        .bind(i64::from(current.require_dpop))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let after = client_detail(&current);
        self.commit_if_changed(tx, n, || {
            Change::new(AuditAction::ClientUpdated, client_id.as_str(), json!({ "before": before, "after": after }))
        })
        .await
    }

    /// Adds a secret to a client; `false` if there is no such client. (One statement, no
    /// read-then-write: the foreign key says whether the client exists.)
    pub async fn add_secret(&self, client_id: &ClientId, secret: &SecretRecord) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        match insert_secret(&mut tx, client_id, secret).await {
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_foreign_key_violation() => return Ok(false),
            r => r?,
        }
        let detail = json!({ "secret_id": secret.id, "expires_at": secret.expires_at.map(|t| t.0) });
        let change = Change::new(AuditAction::SecretAdded, client_id.as_str(), detail);
        self.commit_change(tx, change).await?;
        Ok(true)
    }

    /// Removes one secret of a client; `false` if there was none.
    pub async fn remove_secret(&self, client_id: &ClientId, secret_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM client_secrets WHERE client_id = $1 AND id = $2")
            .bind(client_id.as_str())
            .bind(secret_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.commit_if_changed(tx, n, || {
            Change::new(AuditAction::SecretRemoved, client_id.as_str(), json!({ "secret_id": secret_id }))
        })
        .await
    }
}

impl Store {
    /// Sets (or with `None` clears) when a secret stops authenticating; `false` if the client
    /// has no such secret. A registry change: servers reload and refuse it from then on.
    pub async fn set_secret_expiry(
        &self,
        client_id: &ClientId,
        secret_id: &str,
        expires_at: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE client_secrets SET expires_at = $1 WHERE client_id = $2 AND id = $3")
            .bind(expires_at.map(|t| t.0))
            .bind(client_id.as_str())
            .bind(secret_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.commit_if_changed(tx, n, || {
            let detail = json!({ "secret_id": secret_id, "expires_at": expires_at.map(|t| t.0) });
            Change::new(AuditAction::SecretExpirySet, client_id.as_str(), detail)
        })
        .await
    }

    /// Records when secrets were last used, `(client, secret id, time)`, in one transaction.
    /// Not a registry change: no revision bump (servers would reload for nothing), no audit
    /// entry. A time never moves back.
    pub async fn touch_secrets(&self, used: &[(ClientId, String, UnixTime)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (client_id, id, at) in used {
            sqlx::query(
                "UPDATE client_secrets SET last_used_at = $1 WHERE client_id = $2 AND id = $3 \
                 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(at.0)
            .bind(client_id.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_secret(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &ClientId,
    secret: &SecretRecord,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO client_secrets (id, client_id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(secret.id.clone())
        .bind(client_id.as_str())
        .bind(secret.hash.clone())
        .bind(secret.created_at.0)
        .bind(secret.expires_at.map(|t| t.0))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn secret_from_row(row: &AnyRow) -> Result<SecretRecord, StoreError> {
    Ok(SecretRecord {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        created_at: UnixTime(row.try_get("created_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(UnixTime),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(UnixTime),
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
        jwks: row
            .try_get::<Option<String>, _>("jwks")?
            .map(|text| serde_json::from_str::<JwkSet>(&text))
            .transpose()
            .map_err(corrupt)?,
        jwks_uri: row.try_get::<Option<String>, _>("jwks_uri")?.map(JwksUri::new).transpose().map_err(corrupt)?,
        auth_method: row
            .try_get::<Option<String>, _>("token_endpoint_auth_method")?
            .map(|m| ClientAuthMethod::from_str(&m))
            .transpose()
            .map_err(corrupt)?,
        tls: row
            .try_get::<Option<String>, _>("tls_client")?
            .map(|text| serde_json::from_str::<TlsClientRegistration>(&text))
            .transpose()
            .map_err(corrupt)?
            .unwrap_or_default(),
        require_dpop: row.try_get::<i64, _>("require_dpop")? != 0,
    })
}

/// A mutual-TLS registration as stored: JSON text, `NULL` for none.
fn tls_text(tls: &TlsClientRegistration) -> Option<String> {
    (!tls.is_empty()).then(|| serde_json::to_string(tls).expect("a registration serialises"))
}

/// RFC 7591 §2: "The "jwks_uri" and "jwks" parameters MUST NOT both be present in the same
/// request or response." Nor in the same row.
fn one_key_source(client: &ClientRecord) -> Result<(), StoreError> {
    if client.jwks.is_some() && client.jwks_uri.is_some() {
        return Err(StoreError::Config(format!(
            "client {}: jwks and jwks_uri exclude each other (RFC 7591 section 2)",
            client.client_id
        )));
    }
    Ok(())
}

/// A key set as stored: JSON text, `NULL` for none.
fn jwks_text(jwks: &Option<JwkSet>) -> Option<String> {
    jwks.as_ref().map(|j| serde_json::to_string(j).expect("a JWK Set serialises"))
}
