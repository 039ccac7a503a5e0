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
use super::{Store, StoreError, corrupt, unique_violation};
use crate::AuditAction;
use crate::model::{ClientLimits, ClientRecord, ClientUpdate, SecretRecord};
use crate::sqlite::raw;

/// The columns of a client row, in the order of [`ClientColumns`]' fields: both the sqlx and
/// the embedded path select these and decode them through [`ClientColumns::into_record`], so
/// the two cannot drift.
macro_rules! client_columns {
    () => {
        "client_id, display_name, permissions, access_token_lifetime, token_format, signing_alg, enabled, created_at, \
         issuance_rate_milli, issuance_burst, max_live_tokens, tokens_not_before, jwks, token_endpoint_auth_method, \
         tls_client, jwks_uri, require_dpop"
    };
}

/// The columns of a secret row, in the order of [`SecretColumns`]' fields.
macro_rules! secret_columns {
    () => {
        "id, client_id, hash, created_at, expires_at, last_used_at"
    };
}

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
        let rows = sqlx::query(concat!("SELECT ", client_columns!(), " FROM clients ORDER BY client_id"))
            .fetch_all(&mut *conn)
            .await?;
        let secrets =
            sqlx::query(concat!("SELECT ", secret_columns!(), " FROM client_secrets ORDER BY created_at, id"))
                .fetch_all(&mut *conn)
                .await?;
        let mut by_client: BTreeMap<String, Vec<SecretRecord>> = BTreeMap::new();
        for row in &secrets {
            let (client_id, secret) = SecretColumns::from_row(row)?.into_record();
            by_client.entry(client_id).or_default().push(secret);
        }
        rows.iter()
            .map(|row| {
                let c = ClientColumns::from_row(row)?;
                let secrets = by_client.remove(&c.client_id).unwrap_or_default();
                c.into_record(secrets)
            })
            .collect()
    }

    /// Every client with its secrets, in client-id order, each handed to `each` as soon as it
    /// is read, and the registry revision they are as of: the registry snapshot's big read
    /// (issue 17). On SQLite, through the embedded database's own connection: one read
    /// transaction for the revision, the clients and their secrets; prepared statements whose
    /// rows are decoded straight into records, with no intermediate copy of the rows (sqlx
    /// sends each row from its worker thread over a channel: a context switch per row). It
    /// runs on the calling thread and takes about a second per million clients: call it off
    /// the async workers (`spawn_blocking`).
    ///
    /// `None` on PostgreSQL, or when every embedded read connection is busy: read
    /// [`Store::revision`] then [`Store::list_clients`] instead.
    pub fn read_clients_blocking(&self, each: &mut dyn FnMut(ClientRecord)) -> Option<Result<i64, StoreError>> {
        let read = self.embedded()?.read(|conn| {
            // Deferred: the first SELECT takes the read snapshot every later one sees.
            conn.exec("BEGIN")?;
            let out = read_clients_raw(conn, each);
            // Ends the read (and so lets checkpoints past it) even after a failure.
            let end = conn.exec("COMMIT");
            let out = out?;
            end.map(|()| out)
        })?;
        Some(read.map_err(StoreError::from).and_then(|r| r))
    }

    /// One client with its secrets.
    pub async fn get_client(&self, client_id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(concat!("SELECT ", client_columns!(), " FROM clients WHERE client_id = $1"))
            .bind(client_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let secrets = sqlx::query(concat!(
            "SELECT ",
            secret_columns!(),
            " FROM client_secrets WHERE client_id = $1 ORDER BY created_at, id"
        ))
        .bind(client_id.as_str())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok(SecretColumns::from_row(row)?.into_record().1))
        .collect::<Result<_, StoreError>>()?;
        ClientColumns::from_row(&row)?.into_record(secrets).map(Some)
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

    /// Records when secrets were last used, `(secret id, time)`. Not a registry change: no
    /// revision bump (servers would reload for nothing), no audit entry. A time never moves
    /// back; an id no longer stored (a removed secret) changes nothing.
    ///
    /// At a million clients in use a pass writes a million rows (issue 17): one statement
    /// per row cost a round trip to the database thread each and held the write lock for the
    /// whole list. Here the rows are grouped by time, each statement sets one time on up to
    /// [`SECRET_ROWS`] ids (`id IN (...)`: a primary-key lookup each, in id order, on every
    /// engine — an `UPDATE ... FROM (VALUES ...)` join was planned by SQLite as a scan of the
    /// table per statement), and each transaction holds at most [`SECRET_ROWS_PER_TX`], so
    /// writes of tokens and used assertion ids go in between.
    pub async fn touch_secrets(&self, used: &[(&str, UnixTime)]) -> Result<(), StoreError> {
        let mut sorted: Vec<(UnixTime, &str)> = used.iter().map(|(id, at)| (*at, *id)).collect();
        sorted.sort_unstable();
        let mut statements: Vec<&[(UnixTime, &str)]> = Vec::new();
        for same_time in sorted.chunk_by(|a, b| a.0 == b.0) {
            statements.extend(same_time.chunks(SECRET_ROWS));
        }
        // On PostgreSQL a statement per transaction: instances writing the same secrets at
        // different times would otherwise lock their rows in different orders (a deadlock,
        // then a failed pass); one statement locks its rows in the index's order.
        let per_tx = if self.backend == super::Backend::Postgres { SECRET_ROWS } else { SECRET_ROWS_PER_TX };
        let mut rest = statements.as_slice();
        while !rest.is_empty() {
            let _one_writer = self.sqlite_write_turn().await;
            let mut tx = self.begin_write().await?;
            let mut rows = 0;
            while let Some((chunk, after)) = rest.split_first() {
                if rows > 0 && rows + chunk.len() > per_tx {
                    break;
                }
                rows += chunk.len();
                rest = after;
                let mut sql = String::from("UPDATE client_secrets SET last_used_at = $1 WHERE id IN (");
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", i + 2));
                }
                sql.push_str(") AND (last_used_at IS NULL OR last_used_at < $1)");
                // Only placeholders are interpolated; every value is bound.
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(chunk[0].0.0);
                for (_, id) in *chunk {
                    q = q.bind(id.to_string());
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Ids one statement of [`Store::touch_secrets`] updates (a parameter each).
const SECRET_ROWS: usize = 256;
/// Rows one transaction of [`Store::touch_secrets`] updates on SQLite: how long it holds the
/// one write lock (a few milliseconds).
const SECRET_ROWS_PER_TX: usize = 2048;

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

/// The registry revision, then every client with its secrets, on an embedded connection inside
/// its read transaction. The two SELECTs are ordered by client id (SQLite's `BINARY`
/// collation: byte order, as Rust's `str`) and merged as they go.
fn read_clients_raw(conn: &mut raw::Conn, each: &mut dyn FnMut(ClientRecord)) -> raw::Result<Result<i64, StoreError>> {
    let revision = {
        let mut q = conn.statement("SELECT revision FROM registry_revision WHERE id = 1")?;
        if !q.step()? {
            return Ok(Err(corrupt("no registry revision")));
        }
        q.int(0)
    };
    // Two cursors stepped in turn, in the one read transaction.
    let (mut clients, mut secrets) = conn.statements(
        concat!("SELECT ", client_columns!(), " FROM clients ORDER BY client_id"),
        concat!("SELECT ", secret_columns!(), " FROM client_secrets ORDER BY client_id, created_at, id"),
    )?;
    let mut pending: Option<(String, SecretRecord)> =
        if secrets.step()? { Some(SecretColumns::from_raw(&secrets).into_record()) } else { None };
    while clients.step()? {
        let c = ClientColumns::from_raw(&clients);
        let mut own = Vec::new();
        while let Some((client_id, _)) = &pending {
            match client_id.as_str().cmp(c.client_id.as_str()) {
                // A secret of no client (the foreign key forbids it): skipped, as `list_clients` does.
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => own.push(pending.take().expect("pending").1),
                std::cmp::Ordering::Greater => break,
            }
            pending = if secrets.step()? { Some(SecretColumns::from_raw(&secrets).into_record()) } else { None };
        }
        own.shrink_to_fit();
        match c.into_record(own) {
            Ok(record) => each(record),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(revision))
}

/// A client row as stored.
struct ClientColumns {
    client_id: String,
    display_name: Option<String>,
    /// JSON list.
    permissions: String,
    access_token_lifetime: i64,
    token_format: String,
    signing_alg: Option<String>,
    enabled: i64,
    created_at: i64,
    issuance_rate_milli: Option<i64>,
    issuance_burst: Option<i64>,
    max_live_tokens: Option<i64>,
    tokens_not_before: Option<i64>,
    /// JSON JWK Set.
    jwks: Option<String>,
    token_endpoint_auth_method: Option<String>,
    /// JSON object.
    tls_client: Option<String>,
    jwks_uri: Option<String>,
    require_dpop: i64,
}

impl ClientColumns {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            client_id: row.try_get("client_id")?,
            display_name: row.try_get("display_name")?,
            permissions: row.try_get("permissions")?,
            access_token_lifetime: row.try_get("access_token_lifetime")?,
            token_format: row.try_get("token_format")?,
            signing_alg: row.try_get("signing_alg")?,
            enabled: row.try_get("enabled")?,
            created_at: row.try_get("created_at")?,
            issuance_rate_milli: row.try_get("issuance_rate_milli")?,
            issuance_burst: row.try_get("issuance_burst")?,
            max_live_tokens: row.try_get("max_live_tokens")?,
            tokens_not_before: row.try_get("tokens_not_before")?,
            jwks: row.try_get("jwks")?,
            token_endpoint_auth_method: row.try_get("token_endpoint_auth_method")?,
            tls_client: row.try_get("tls_client")?,
            jwks_uri: row.try_get("jwks_uri")?,
            require_dpop: row.try_get("require_dpop")?,
        })
    }

    /// The row a statement selecting [`client_columns!`] is on.
    fn from_raw(q: &raw::Statement<'_>) -> Self {
        Self {
            client_id: q.text(0).unwrap_or_default(),
            display_name: q.text(1),
            permissions: q.text(2).unwrap_or_default(),
            access_token_lifetime: q.int(3),
            token_format: q.text(4).unwrap_or_default(),
            signing_alg: q.text(5),
            enabled: q.int(6),
            created_at: q.int(7),
            issuance_rate_milli: q.opt_int(8),
            issuance_burst: q.opt_int(9),
            max_live_tokens: q.opt_int(10),
            tokens_not_before: q.opt_int(11),
            jwks: q.text(12),
            token_endpoint_auth_method: q.text(13),
            tls_client: q.text(14),
            jwks_uri: q.text(15),
            require_dpop: q.int(16),
        }
    }

    fn into_record(self, secrets: Vec<SecretRecord>) -> Result<ClientRecord, StoreError> {
        fn json_of<T: serde::de::DeserializeOwned>(col: &str, text: &str) -> Result<T, StoreError> {
            serde_json::from_str(text).map_err(|e| corrupt(format!("{col}: {e}")))
        }
        let mut permissions: Vec<Permission> = json_of("permissions", &self.permissions)?;
        permissions.shrink_to_fit();
        Ok(ClientRecord {
            client_id: ClientId::new(self.client_id).map_err(corrupt)?,
            display_name: self.display_name,
            secrets,
            permissions,
            access_token_lifetime: self.access_token_lifetime,
            token_format: TokenFormat::from_str(&self.token_format).map_err(corrupt)?,
            signing_alg: self.signing_alg.map(|a| SigningAlg::from_str(&a)).transpose().map_err(corrupt)?,
            enabled: self.enabled != 0,
            created_at: UnixTime(self.created_at),
            limits: ClientLimits {
                issuance_rate_milli: self.issuance_rate_milli,
                issuance_burst: self.issuance_burst,
                max_live_tokens: self.max_live_tokens,
            },
            tokens_not_before: self.tokens_not_before.map(UnixTime),
            jwks: self.jwks.map(|text| serde_json::from_str::<JwkSet>(&text)).transpose().map_err(corrupt)?,
            jwks_uri: self.jwks_uri.map(JwksUri::new).transpose().map_err(corrupt)?,
            auth_method: self
                .token_endpoint_auth_method
                .map(|m| ClientAuthMethod::from_str(&m))
                .transpose()
                .map_err(corrupt)?,
            tls: self
                .tls_client
                .map(|text| serde_json::from_str::<TlsClientRegistration>(&text))
                .transpose()
                .map_err(corrupt)?
                .unwrap_or_default(),
            require_dpop: self.require_dpop != 0,
        })
    }
}

/// A secret row as stored.
struct SecretColumns {
    id: String,
    client_id: String,
    hash: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl SecretColumns {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            hash: row.try_get("hash")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
        })
    }

    /// The row a statement selecting [`secret_columns!`] is on.
    fn from_raw(q: &raw::Statement<'_>) -> Self {
        Self {
            id: q.text(0).unwrap_or_default(),
            client_id: q.text(1).unwrap_or_default(),
            hash: q.text(2).unwrap_or_default(),
            created_at: q.int(3),
            expires_at: q.opt_int(4),
            last_used_at: q.opt_int(5),
        }
    }

    /// The client it belongs to, and the secret.
    fn into_record(self) -> (String, SecretRecord) {
        let secret = SecretRecord {
            id: self.id,
            hash: self.hash,
            created_at: UnixTime(self.created_at),
            expires_at: self.expires_at.map(UnixTime),
            last_used_at: self.last_used_at.map(UnixTime),
        };
        (self.client_id, secret)
    }
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
