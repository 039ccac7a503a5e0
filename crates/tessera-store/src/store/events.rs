//! The revocation feed's log (issue 12): every revocation recorded in the transaction that
//! makes it, numbered in commit order, read back by position and receiver, pruned once the
//! tokens it is about have expired.

use sqlx::Row as _;
use tessera_types::rfc8417::{EventSeq, RevocationEvent};
use tessera_types::{ClientId, Permission, Resource, UnixTime};

use super::{Store, StoreError, corrupt};

/// The longest an access token lives (`config::validate_lifetime`): client and key events are
/// kept this long, since any token they revoke was issued before them.
const LONGEST_TOKEN_LIFETIME: i64 = 7 * 24 * 3600;
/// Kept past a token's `exp` by this much: receivers accept a token for their clock leeway.
const PAST_EXPIRY: i64 = 300;

/// Who may learn of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAudience {
    /// Every receiver (a removed signing key).
    All,
    /// Receivers whose client id is one of these (the tokens' audiences).
    Only(Vec<Resource>),
}

/// An event as the log returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position.
    pub seq: EventSeq,
    /// What was revoked.
    pub event: RevocationEvent,
    /// When it was recorded.
    pub recorded_at: UnixTime,
}

/// Records `event` in `tx` (the transaction making the change it describes) and returns its
/// position. The counter row is updated first: on PostgreSQL its lock makes a concurrent
/// recorder wait for this commit, so positions become visible in order and a reader that has
/// seen position n never misses one below it.
pub(super) async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    event: &RevocationEvent,
    audience: &EventAudience,
    recorded_at: UnixTime,
    expires_at: UnixTime,
) -> Result<EventSeq, StoreError> {
    let seq: i64 = sqlx::query_scalar("UPDATE revocation_event_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO revocation_events (seq, event_type, payload, broadcast, recorded_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(seq)
    .bind(event.event_type())
    .bind(event.payload().to_string())
    .bind(i64::from(*audience == EventAudience::All))
    .bind(recorded_at.0)
    .bind(expires_at.0)
    .execute(&mut **tx)
    .await?;
    if let EventAudience::Only(audiences) = audience {
        let mut seen = std::collections::BTreeSet::new();
        for a in audiences.iter().filter(|a| seen.insert(a.as_str())) {
            sqlx::query("INSERT INTO revocation_event_audiences (audience, seq) VALUES ($1, $2)")
                .bind(a.as_str())
                .bind(seq)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(EventSeq(seq))
}

/// Until when an event about tokens expiring at `exp` is kept.
pub(super) fn token_event_expiry(exp: UnixTime) -> UnixTime {
    UnixTime(exp.0.saturating_add(PAST_EXPIRY))
}

/// Until when an event about a client or a key recorded at `now` is kept.
pub(super) fn lasting_event_expiry(now: UnixTime) -> UnixTime {
    UnixTime(now.0.saturating_add(LONGEST_TOKEN_LIFETIME + PAST_EXPIRY))
}

/// The audiences of `client_id`'s tokens: the resources of the scopes it may request (read in
/// `tx`, before the change removes the client).
pub(super) async fn client_audiences(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &ClientId,
) -> Result<Vec<Resource>, StoreError> {
    let Some(permissions) = sqlx::query_scalar::<_, String>("SELECT permissions FROM clients WHERE client_id = $1")
        .bind(client_id.as_str())
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(Vec::new());
    };
    let permissions: Vec<Permission> = serde_json::from_str(&permissions).map_err(corrupt)?;
    let mut audiences = Vec::new();
    for p in permissions {
        let Permission::Scope(scope) = p else { continue };
        let resources: Option<String> = sqlx::query_scalar("SELECT resources FROM scopes WHERE name = $1")
            .bind(scope.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(text) = resources {
            audiences.extend(serde_json::from_str::<Vec<Resource>>(&text).map_err(corrupt)?);
        }
    }
    audiences.sort();
    audiences.dedup();
    Ok(audiences)
}

impl Store {
    /// Events after position `after` that `receiver` may know, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        after: EventSeq,
        receiver: &ClientId,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.event_type, e.payload, e.recorded_at FROM revocation_events e \
             WHERE e.seq > $1 AND (e.broadcast = 1 OR EXISTS \
               (SELECT 1 FROM revocation_event_audiences a WHERE a.audience = $2 AND a.seq = e.seq)) \
             ORDER BY e.seq LIMIT $3",
        )
        .bind(after.0)
        .bind(receiver.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let ty: String = row.try_get("event_type")?;
            let payload: serde_json::Value =
                serde_json::from_str(&row.try_get::<String, _>("payload")?).map_err(corrupt)?;
            // Every type this store records is known here; anything else is corruption.
            let event = RevocationEvent::from_parts(&ty, payload)
                .map_err(corrupt)?
                .ok_or_else(|| corrupt(format!("unknown event type {ty}")))?;
            events.push(StoredEvent {
                seq: EventSeq(row.try_get("seq")?),
                event,
                recorded_at: UnixTime(row.try_get("recorded_at")?),
            });
        }
        Ok(events)
    }

    /// The position of the last event recorded (0: none yet): a cheap check for long polls.
    pub async fn latest_event(&self) -> Result<EventSeq, StoreError> {
        Ok(EventSeq(
            sqlx::query_scalar("SELECT seq FROM revocation_event_seq WHERE id = 1").fetch_one(&self.pool).await?,
        ))
    }

    /// Deletes events whose tokens have all expired by `now`, `batch` at a time; returns how
    /// many.
    pub async fn prune_events(&self, now: UnixTime, batch: u32) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let turn = self.sqlite_write_turn().await;
            let mut tx = self.begin_write().await?;
            let seqs: Vec<i64> =
                sqlx::query_scalar("SELECT seq FROM revocation_events WHERE expires_at < $1 ORDER BY seq LIMIT $2")
                    .bind(now.0)
                    .bind(i64::from(batch))
                    .fetch_all(&mut *tx)
                    .await?;
            if seqs.is_empty() {
                tx.commit().await?;
                return Ok(total);
            }
            // Integers just read in this transaction: only they are interpolated.
            let list = seqs.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM revocation_event_audiences WHERE seq IN ({list})")))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM revocation_events WHERE seq IN ({list})")))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            drop(turn);
            total += seqs.len() as u64;
            if seqs.len() < batch as usize {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}
