//! `POST /connect/events`: the revocation feed (issue 12). Every revocation recorded by any
//! instance or the CLI, as a Security Event Token (RFC 8417) signed with the server's key,
//! delivered by polling (RFC 8936 §2): the receiver acknowledges what it has and gets what
//! follows, or waits (long polling) until something does.
//!
//! Tessera's reading of RFC 8936 acknowledgements: the highest acknowledged `jti` is the
//! receiver's position, kept by the receiver, not the server. Several instances of one API
//! (one client id) each follow the feed from their own position; a new instance starts from
//! the oldest event still kept and so learns every revocation that still matters.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use tessera_store::StoredEvent;
use tessera_types::rfc8417::{EventSeq, PollRequest, PollResponse, SetClaims, TYP};
use tessera_types::{ClientId, ErrorCode};

use crate::client_auth::{ClientRequest, EventsEndpoint};
use crate::error::{OAuthError, no_store};
use crate::registry::Registry;
use crate::state::{AppState, Inner};

/// How often a waiting poll looks at the store for events recorded elsewhere (another
/// instance, the CLI); events recorded here wake it at once.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

pub(crate) async fn events(
    State(state): State<AppState>,
    request: ClientRequest<EventsEndpoint>,
) -> Result<Response, OAuthError> {
    let s = &state.0;
    let poll: PollRequest = serde_json::from_slice(request.json())
        .map_err(|e| OAuthError::invalid_request(format!("not an RFC 8936 poll request: {e}")))?;
    let caller = request.authenticate(&state).await?;
    // RFC 8936 §2.4.1: acknowledgements name SETs; ours are positions, and the highest is
    // where this receiver stands.
    let mut after = EventSeq(0);
    for ack in &poll.ack {
        let seq = EventSeq::parse(ack)
            .map_err(|_| OAuthError::invalid_request(format!("ack {ack:?} is not a SET jti of this feed")))?;
        after = after.max(seq);
    }
    let limit = poll.max_events.unwrap_or(s.limits_events.max_per_poll).clamp(1, s.limits_events.max_per_poll);
    let receiver = &caller.client.client_id;
    // Read before the first look: an event recorded between that look and the wait is then
    // newer than this mark and found by the wait's first check.
    let mark = s.stores.events.latest_event().await.map_err(OAuthError::unavailable)?;
    let mut found = read(s, after, receiver, limit).await?;
    if found.is_empty() && !poll.return_immediately {
        // A waiting poll holds a request slot: past the bound it is answered at once (empty),
        // and the receiver polls again.
        if let Ok(_waiting) = s.event_pollers.try_acquire() {
            found = wait(s, after, receiver, limit, mark).await?;
        } else {
            s.metrics.limited(crate::metrics::Limited::LongPolls);
        }
    }
    let more_available = found.len() > limit as usize;
    found.truncate(limit as usize);
    let registry = s.registry.get();
    let mut sets = std::collections::BTreeMap::new();
    for e in &found {
        sets.insert(e.seq.to_string(), sign(s, &registry, receiver, e)?);
    }
    let mut response = axum::Json(PollResponse { sets, more_available }).into_response();
    no_store(&mut response);
    response.headers_mut().insert(axum::http::header::VARY, HeaderValue::from_static("authorization"));
    Ok(response)
}

/// One more than `limit`, to know whether more are waiting.
async fn read(s: &Inner, after: EventSeq, receiver: &ClientId, limit: u32) -> Result<Vec<StoredEvent>, OAuthError> {
    s.stores.events.events_after(after, receiver, limit + 1).await.map_err(OAuthError::unavailable)
}

/// Waits up to the long-poll bound for an event after `after` that `receiver` may know, the
/// log having stood at `seen` before the caller's last look.
async fn wait(
    s: &Inner,
    after: EventSeq,
    receiver: &ClientId,
    limit: u32,
    mut seen: EventSeq,
) -> Result<Vec<StoredEvent>, OAuthError> {
    let deadline = tokio::time::Instant::now() + s.limits_events.long_poll;
    loop {
        let woken = s.events.notified();
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
        }
        // The counter is one row: reading it costs less than the filtered query, and most
        // looks find nothing new.
        let latest = s.stores.events.latest_event().await.map_err(OAuthError::unavailable)?;
        if latest > seen {
            seen = latest;
            let found = read(s, after, receiver, limit).await?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
    }
}

/// The SET for `event` addressed to `receiver` (RFC 8417 §2.2), signed with the server's
/// active key of its first algorithm.
fn sign(s: &Inner, registry: &Registry, receiver: &ClientId, e: &StoredEvent) -> Result<String, OAuthError> {
    let alg = s.signing_algs[0];
    let key = registry
        .signing_key(alg)
        .ok_or_else(|| OAuthError::server_error(format!("no active {alg} key; configure it in signing_algs")))?;
    let mut events = serde_json::Map::new();
    events.insert(e.event.event_type().to_owned(), e.event.payload());
    let claims = SetClaims {
        iss: s.issuer.to_string(),
        iat: s.clock.now(),
        jti: e.seq.to_string(),
        aud: receiver.as_str().to_owned(),
        toe: e.recorded_at,
        events,
    };
    key.sign_jwt(&key.kid, Some(TYP), &claims)
        .map_err(|e| OAuthError::new(ErrorCode::ServerError, format!("signing a security event failed: {e}")))
}
