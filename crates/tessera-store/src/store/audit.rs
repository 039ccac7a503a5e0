//! The audit trail (issue 16): registry changes recorded in the transaction that makes them,
//! with the actor the store was opened for, and security events of running servers written
//! in batches. Read back in commit order, pruned after the retention period.

use std::sync::Arc;

use serde_json::Value;
use sqlx::Row as _;
use tessera_types::UnixTime;
use tessera_types::clock::{Clock, SystemClock};

use super::{Store, StoreError, corrupt};

/// What an audit entry records: a closed set, so that `audit list --action` and a SIEM rule
/// can name every kind there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum AuditAction {
    ScopeAdded,
    ScopeUpdated,
    ScopeRemoved,
    ClientAdded,
    ClientUpdated,
    ClientEnabled,
    ClientDisabled,
    ClientRemoved,
    ClientTokensRevoked,
    SecretAdded,
    SecretRemoved,
    SecretExpirySet,
    TrustAdded,
    TrustRemoved,
    TrustRuleAdded,
    TrustRuleRemoved,
    KeyAdded,
    KeyActivated,
    KeyRetired,
    KeyRemoved,
    /// A client authentication that failed (wrong secret, refused assertion, ...).
    AuthFailed,
    /// An expired client secret was presented.
    SecretExpired,
    /// A client or address went into failed-authentication backoff.
    Lockout,
    /// A token revoked at the revocation endpoint (RFC 7009).
    TokenRevoked,
    /// A federated workload authenticated as a client (issue 15): its trust, rule and
    /// subject; recorded once an hour per workload, not per token request.
    WorkloadAuthenticated,
    /// Events not written because they came faster than the bound (their count in detail).
    Suppressed,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [Self; 26] = [
        Self::ScopeAdded,
        Self::ScopeUpdated,
        Self::ScopeRemoved,
        Self::ClientAdded,
        Self::ClientUpdated,
        Self::ClientEnabled,
        Self::ClientDisabled,
        Self::ClientRemoved,
        Self::ClientTokensRevoked,
        Self::SecretAdded,
        Self::SecretRemoved,
        Self::SecretExpirySet,
        Self::TrustAdded,
        Self::TrustRemoved,
        Self::TrustRuleAdded,
        Self::TrustRuleRemoved,
        Self::KeyAdded,
        Self::KeyActivated,
        Self::KeyRetired,
        Self::KeyRemoved,
        Self::AuthFailed,
        Self::SecretExpired,
        Self::Lockout,
        Self::TokenRevoked,
        Self::WorkloadAuthenticated,
        Self::Suppressed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScopeAdded => "scope.added",
            Self::ScopeUpdated => "scope.updated",
            Self::ScopeRemoved => "scope.removed",
            Self::ClientAdded => "client.added",
            Self::ClientUpdated => "client.updated",
            Self::ClientEnabled => "client.enabled",
            Self::ClientDisabled => "client.disabled",
            Self::ClientRemoved => "client.removed",
            Self::ClientTokensRevoked => "client.tokens_revoked",
            Self::SecretAdded => "secret.added",
            Self::SecretRemoved => "secret.removed",
            Self::SecretExpirySet => "secret.expiry_set",
            Self::TrustAdded => "trust.added",
            Self::TrustRemoved => "trust.removed",
            Self::TrustRuleAdded => "trust.rule_added",
            Self::TrustRuleRemoved => "trust.rule_removed",
            Self::KeyAdded => "key.added",
            Self::KeyActivated => "key.activated",
            Self::KeyRetired => "key.retired",
            Self::KeyRemoved => "key.removed",
            Self::AuthFailed => "auth.failed",
            Self::SecretExpired => "auth.secret_expired",
            Self::Lockout => "auth.lockout",
            Self::TokenRevoked => "token.revoked",
            Self::WorkloadAuthenticated => "workload.authenticated",
            Self::Suppressed => "audit.suppressed",
        }
    }

    /// The action stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Whether it changes the registry (as opposed to a runtime security event).
    pub fn is_registry_change(self) -> bool {
        !matches!(
            self,
            Self::AuthFailed
                | Self::SecretExpired
                | Self::Lockout
                | Self::TokenRevoked
                | Self::WorkloadAuthenticated
                | Self::Suppressed
        )
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Position in commit order (0 before it is written).
    pub seq: i64,
    #[allow(missing_docs)]
    pub at: UnixTime,
    /// Who: `cli:USER`, `seed`, `admin-api:CLIENT_ID`, `server`, `client:ID`, `peer:ADDRESS`.
    pub actor: String,
    #[allow(missing_docs)]
    pub action: AuditAction,
    /// What it is about (a client id, scope, trust, kid), or empty.
    pub target: String,
    /// What changed; never a secret or a token.
    pub detail: Value,
}

/// A registry change as a store method describes it, recorded by the commit that makes it.
pub(super) struct Change {
    pub action: AuditAction,
    pub target: String,
    pub detail: Value,
}

impl Change {
    pub(super) fn new(action: AuditAction, target: impl Into<String>, detail: Value) -> Self {
        Self { action, target: target.into(), detail }
    }
}

/// Who the store acts for, and the clock its entries are dated by.
#[derive(Clone)]
pub(super) struct AuditContext {
    pub actor: Arc<str>,
    pub clock: Arc<dyn Clock>,
}

impl Default for AuditContext {
    fn default() -> Self {
        Self { actor: Arc::from("unknown"), clock: Arc::new(SystemClock) }
    }
}

impl std::fmt::Debug for AuditContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditContext({})", self.actor)
    }
}

/// What `audit list` asks for.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries at or after this time.
    pub since: Option<UnixTime>,
    /// Entries about this target (a client id, ...), or by this actor.
    pub subject: Option<String>,
    /// Entries of this action.
    pub action: Option<AuditAction>,
    /// At most this many, the latest (default 1000).
    pub limit: Option<u32>,
}

/// Takes the next positions for `n` entries.
async fn take_seqs(tx: &mut sqlx::Transaction<'_, sqlx::Any>, n: i64) -> Result<i64, StoreError> {
    let last: i64 = sqlx::query_scalar("UPDATE audit_seq SET seq = seq + $1 WHERE id = 1 RETURNING seq")
        .bind(n)
        .fetch_one(&mut **tx)
        .await?;
    Ok(last - n + 1)
}

async fn insert(tx: &mut sqlx::Transaction<'_, sqlx::Any>, seq: i64, e: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (seq, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(seq)
        .bind(e.at.0)
        .bind(e.actor.clone())
        .bind(e.action.as_str())
        .bind(e.target.clone())
        .bind(e.detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The log line every entry also gets (target `audit`; JSON with `--log-format json`): the
/// trail for log shippers. Written once the entry is committed.
pub fn log_event(e: &AuditEntry) {
    tracing::info!(
        target: "audit",
        actor = %e.actor,
        action = %e.action,
        target_id = %e.target,
        detail = %e.detail,
        "audit"
    );
}

impl Store {
    /// This store, recording registry changes as made by `actor`, dated by `clock`.
    pub fn acting_as(&self, actor: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        let mut store = self.clone();
        store.audit = AuditContext { actor: Arc::from(actor.into()), clock };
        store
    }

    /// The actor registry changes are recorded as.
    pub fn actor(&self) -> &str {
        &self.audit.actor
    }

    /// Records `change` in `tx`, the transaction making it.
    pub(super) async fn record_change(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        change: Change,
    ) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry {
            seq: 0,
            at: self.audit.clock.now(),
            actor: self.audit.actor.to_string(),
            action: change.action,
            target: change.target,
            detail: change.detail,
        };
        let seq = take_seqs(tx, 1).await?;
        insert(tx, seq, &entry).await?;
        Ok(AuditEntry { seq, ..entry })
    }

    /// Writes runtime events in one transaction (the server's batched audit writer).
    pub async fn record_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // In line with the token writers: SQLite's busy handler would otherwise make them
        // sleep behind this batch.
        let _one_writer = self.sqlite_write_turn().await;
        let mut tx = self.begin_write().await?;
        let first = take_seqs(&mut tx, entries.len() as i64).await?;
        for (i, e) in entries.iter().enumerate() {
            insert(&mut tx, first + i as i64, e).await?;
        }
        tx.commit().await?;
        entries.iter().for_each(log_event);
        Ok(())
    }

    /// Entries matching `q`, oldest first (the latest `limit` of them).
    pub async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail FROM audit \
             WHERE at >= $1 AND ($2 = '' OR target = $2 OR actor = $2 OR actor = 'client:' || $2 \
             OR actor = 'admin-api:' || $2) AND ($3 = '' OR action = $3) ORDER BY seq DESC LIMIT $4",
        )
        .bind(q.since.map_or(i64::MIN, |t| t.0))
        .bind(q.subject.clone().unwrap_or_default())
        .bind(q.action.map_or("", |a| a.as_str()))
        .bind(i64::from(q.limit.unwrap_or(1000)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|row| {
                let action: String = row.try_get("action")?;
                let detail: String = row.try_get("detail")?;
                Ok(AuditEntry {
                    seq: row.try_get("seq")?,
                    at: UnixTime(row.try_get("at")?),
                    actor: row.try_get("actor")?,
                    action: AuditAction::parse(&action).ok_or_else(|| corrupt(format!("audit action {action}")))?,
                    target: row.try_get("target")?,
                    detail: serde_json::from_str(&detail).map_err(corrupt)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    /// Deletes entries older than `before`, `batch` rows per statement; returns how many.
    pub async fn prune_audit(&self, before: UnixTime, batch: u32) -> Result<u64, StoreError> {
        self.prune_batches(
            "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < $1 LIMIT $2)",
            before,
            batch,
        )
        .await
    }
}

/// What an audit entry says about a client: its registration without secret hashes (secrets
/// by id only).
pub(super) fn client_detail(c: &crate::model::ClientRecord) -> Value {
    serde_json::json!({
        "display_name": c.display_name,
        "permissions": c.permissions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "access_token_lifetime": c.access_token_lifetime,
        "token_format": c.token_format.as_str(),
        "signing_alg": c.signing_alg.map(|a| a.as_str()),
        "enabled": c.enabled,
        "limits": {
            "issuance_rate_milli": c.limits.issuance_rate_milli,
            "issuance_burst": c.limits.issuance_burst,
            "max_live_tokens": c.limits.max_live_tokens,
        },
        "jwks_kids": c.jwks.as_ref().map(|set| set.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>()),
        "jwks_uri": c.jwks_uri.as_ref().map(|u| u.as_str()),
        "token_endpoint_auth_method": c.auth_method.map(|m| m.as_str()),
        "tls_client": serde_json::to_value(&c.tls).unwrap_or(Value::Null),
        "require_dpop": c.require_dpop,
        "secrets": c.secrets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
    })
}
