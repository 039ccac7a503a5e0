//! Following the authority's revocation feed: RFC 8936 poll delivery of RFC 8417 Security
//! Event Tokens, one background task per guard.
//!
//! The task long-polls `revocation_events_endpoint`, verifies every SET (signature with the
//! authority's published keys, `typ`, `iss`, `aud`), applies the events in feed order, and
//! acknowledges the highest `jti` applied on its next poll (Tessera reads that as the
//! receiver's position). A SET that fails verification is not applied and the position does
//! not move past it: the next poll asks for it again, after a backoff. Skipping it could skip
//! a revocation; being stuck on it makes the feed stale, which the operator's
//! [`crate::OnStale`] policy then handles loudly.
//!
//! The task holds the guard only weakly, and not at all while a poll is in flight: when the
//! last [`Guard`] clone is dropped, its shutdown channel closes and the task ends at once.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use tessera_http::{AuthorityClient, basic_credentials};
use tessera_jose::Jws;
use tessera_types::UnixTime;
use tessera_types::rfc8417::{self, EventSeq, PollRequest, PollResponse, RevocationEvent, SetClaims};
use tokio::sync::watch;

use crate::guard::{Guard, Inner};
use crate::http::secs;
use crate::revocations::{RevocationSet, SideEffect};
use crate::{GuardError, OnStale, RevocationFeed};

/// Where the revocation feed stands, for operators and tests ([`Guard::feed_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedStatus {
    /// When the last poll succeeded (the guard's clock); `None` before the first.
    pub last_success: Option<UnixTime>,
    /// The highest event applied: acknowledged on the next poll.
    pub position: Option<EventSeq>,
    /// Whether the guard counts the feed as stale right now (see [`RevocationFeed::max_staleness`]).
    pub stale: bool,
    /// Revoked tokens remembered until their `exp`.
    pub revoked_tokens: usize,
    /// Clients with a `not_before` (tokens issued earlier are refused).
    pub revoked_clients: usize,
    /// Clients disabled: all their tokens are refused.
    pub disabled_clients: usize,
    /// Signing keys removed: tokens they signed are refused.
    pub removed_keys: usize,
    /// Set when revocations had to be forgotten for want of room
    /// ([`RevocationFeed::capacity`]): until then the feed counts as stale.
    pub incomplete_until: Option<UnixTime>,
    /// Why the last poll failed, if it did.
    pub last_error: Option<String>,
}

const NEVER: i64 = i64::MIN;

/// Why the feed counts as stale.
#[derive(Debug, Clone, Copy)]
enum Stale {
    /// No successful poll in this many seconds since the guard was built.
    NeverPolled(i64),
    /// The last successful poll was this many seconds ago.
    LastPoll(i64),
    /// Revocations were forgotten for want of room; incomplete until this time.
    Incomplete(i64),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NeverPolled(s) => write!(f, "revocation feed: no successful poll in the {s} s since start"),
            Self::LastPoll(s) => write!(f, "revocation feed: last successful poll {s} s ago"),
            Self::Incomplete(t) => {
                write!(f, "revocation feed: revocations were forgotten (capacity), incomplete until {t}")
            }
        }
    }
}

/// The guard's side of the feed: the revocation set read by every request, and the few
/// atomics that say how current it is.
pub(crate) struct Feed {
    pub(crate) cfg: RevocationFeed,
    pub(crate) set: RwLock<RevocationSet>,
    /// When the guard was built: before the first successful poll, staleness counts from here.
    started_at: i64,
    last_success: AtomicI64,
    position: AtomicI64,
    lost_until: AtomicI64,
    last_error: Mutex<Option<String>>,
    /// A stale feed is logged once per transition, not per request.
    stale_logged: AtomicBool,
    running: AtomicBool,
    /// Taken by the follower; published after every poll.
    status_tx: Mutex<Option<watch::Sender<FeedStatus>>>,
    status_rx: watch::Receiver<FeedStatus>,
    /// Never sent on: dropped with the guard, which closes the follower's receiver.
    shutdown: watch::Sender<()>,
}

impl Feed {
    pub(crate) fn new(cfg: RevocationFeed, now: i64) -> Self {
        let (status_tx, status_rx) = watch::channel(FeedStatus {
            last_success: None,
            position: None,
            stale: false,
            revoked_tokens: 0,
            revoked_clients: 0,
            disabled_clients: 0,
            removed_keys: 0,
            incomplete_until: None,
            last_error: None,
        });
        Self {
            set: RwLock::new(RevocationSet::new(cfg.capacity)),
            cfg,
            started_at: now,
            last_success: AtomicI64::new(NEVER),
            position: AtomicI64::new(0),
            lost_until: AtomicI64::new(NEVER),
            last_error: Mutex::new(None),
            stale_logged: AtomicBool::new(false),
            running: AtomicBool::new(false),
            status_tx: Mutex::new(Some(status_tx)),
            status_rx,
            shutdown: watch::channel(()).0,
        }
    }

    /// Whether, and why, the feed is stale at `now`: a few atomic loads, no allocation (read
    /// on every request).
    fn stale(&self, now: i64) -> Option<Stale> {
        let last = self.last_success.load(Ordering::Relaxed);
        let since = if last == NEVER { self.started_at } else { last };
        let age = now.saturating_sub(since);
        if age > secs(self.cfg.max_staleness) {
            return Some(if last == NEVER { Stale::NeverPolled(age) } else { Stale::LastPoll(age) });
        }
        let lost = self.lost_until.load(Ordering::Relaxed);
        (lost != NEVER && now < lost).then_some(Stale::Incomplete(lost))
    }

    /// The request-time check: `Err(Unavailable)` while stale under [`OnStale::FailClosed`];
    /// under [`OnStale::KeepServing`] a WARN when the feed turns stale and an INFO when it
    /// recovers.
    pub(crate) fn check(&self, now: i64) -> Result<(), GuardError> {
        let Some(stale) = self.stale(now) else {
            if self.stale_logged.load(Ordering::Relaxed) && self.stale_logged.swap(false, Ordering::Relaxed) {
                tracing::info!("revocation feed current again");
            }
            return Ok(());
        };
        if !self.stale_logged.load(Ordering::Relaxed) && !self.stale_logged.swap(true, Ordering::Relaxed) {
            match self.cfg.on_stale {
                OnStale::KeepServing => tracing::warn!(why = %stale, "revocation feed stale: still serving tokens"),
                OnStale::FailClosed => tracing::warn!(why = %stale, "revocation feed stale: refusing every token"),
            }
        }
        match self.cfg.on_stale {
            OnStale::KeepServing => Ok(()),
            OnStale::FailClosed => Err(GuardError::Unavailable(stale.to_string())),
        }
    }

    pub(crate) fn status(&self, now: i64) -> FeedStatus {
        let counts = self.set.read().expect("revocation set lock").counts();
        let at = |v: i64| (v != NEVER).then_some(UnixTime(v));
        FeedStatus {
            last_success: at(self.last_success.load(Ordering::Relaxed)),
            position: Some(self.position.load(Ordering::Relaxed)).filter(|p| *p > 0).map(EventSeq),
            stale: self.stale(now).is_some(),
            revoked_tokens: counts.revoked_tokens,
            revoked_clients: counts.revoked_clients,
            disabled_clients: counts.disabled_clients,
            removed_keys: counts.removed_keys,
            incomplete_until: at(self.lost_until.load(Ordering::Relaxed)).filter(|l| l.0 > now),
            last_error: self.last_error.lock().expect("feed error lock").clone(),
        }
    }

    pub(crate) fn started(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn watch(&self) -> watch::Receiver<FeedStatus> {
        self.status_rx.clone()
    }
}

impl Guard {
    /// Starts following the revocation feed now rather than on the first request, so the
    /// guard knows current revocations before it serves one. Does nothing without
    /// [`crate::GuardConfig::revocations`] or when already started. Must be called within a
    /// Tokio runtime (the follower is a task on it); outside one it logs an error and the
    /// next request tries again.
    pub fn start_feed(&self) {
        let Some(feed) = &self.0.feed else { return };
        if feed.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            feed.running.store(false, Ordering::SeqCst);
            tracing::error!("revocation feed: not started, no Tokio runtime");
            return;
        };
        let Some(status) = feed.status_tx.lock().expect("feed status lock").take() else { return };
        let shutdown = feed.shutdown.subscribe();
        rt.spawn(follow(Arc::downgrade(&self.0), self.0.authority.http.client().clone(), status, shutdown));
    }

    /// Where the revocation feed stands; `None` when the guard does not follow one.
    pub fn feed_status(&self) -> Option<FeedStatus> {
        self.0.feed.as_ref().map(|f| f.status(self.0.cfg.clock.now().0))
    }

    /// The feed's status as the follower publishes it after every poll (success or not):
    /// `changed()` wakes on each, and fails once the follower has stopped (the last guard
    /// clone was dropped). `None` when the guard does not follow a feed.
    pub fn watch_feed(&self) -> Option<watch::Receiver<FeedStatus>> {
        self.0.feed.as_ref().map(Feed::watch)
    }
}

/// One poll, ready to send without the guard.
struct Poll {
    url: reqwest::Url,
    authorization: String,
    body: String,
    timeout: Duration,
}

/// What one answer did.
struct Outcome {
    /// Events applied (SETs verified), unknown types included.
    applied: usize,
    more_available: bool,
    /// A SET that failed verification (or an answer that could not be read in order).
    failure: Option<String>,
}

async fn follow(
    weak: Weak<Inner>,
    http: AuthorityClient,
    status: watch::Sender<FeedStatus>,
    mut shutdown: watch::Receiver<()>,
) {
    let mut wait: Option<Duration> = None;
    let mut backoff: Option<Duration> = None;
    loop {
        if let Some(w) = wait.take() {
            tokio::select! {
                () = tokio::time::sleep(w) => {}
                _ = shutdown.changed() => return,
            }
        }
        let (poll, retry) = {
            let Some(inner) = weak.upgrade() else { return };
            let guard = Guard(inner);
            let retry = guard.feed().map(|f| (f.cfg.retry_min, f.cfg.retry_max));
            (guard.prepare_poll().await, retry)
        };
        let Some((retry_min, retry_max)) = retry else { return };
        let started = Instant::now();
        let answer = match poll {
            Ok(poll) => tokio::select! {
                r = send(&http, poll) => r,
                _ = shutdown.changed() => return,
            },
            Err(e) => Err(e),
        };
        let Some(inner) = weak.upgrade() else { return };
        let guard = Guard(inner);
        let result = match answer {
            Ok(answer) => guard.apply_answer(answer).await,
            Err(e) => Err(e),
        };
        let Some(feed) = guard.feed() else { return };
        let now = guard.0.cfg.clock.now().0;
        match result {
            Ok(Outcome { failure: None, applied, more_available }) => {
                feed.last_success.store(now, Ordering::Relaxed);
                *feed.last_error.lock().expect("feed error lock") = None;
                backoff = None;
                // An empty answer that came back at once (a server that does not long-poll)
                // must not turn this loop into a busy one.
                let quick = started.elapsed() < retry_min;
                wait = (!more_available && applied == 0 && quick).then_some(retry_min);
            }
            Ok(Outcome { failure: Some(why), .. }) | Err(why) => {
                tracing::warn!(%why, "revocation feed: poll failed; retrying");
                *feed.last_error.lock().expect("feed error lock") = Some(why);
                let next = backoff.map_or(retry_min, |b| (b * 2).min(retry_max));
                backoff = Some(next);
                wait = Some(next);
            }
        }
        status.send_replace(feed.status(now));
    }
}

/// RFC 8936 §2.4: `POST` the poll request as JSON, authenticated as the API's client. The
/// answer may take the authority's long poll (Tessera: about 10 s), so the timeout is the
/// feed's own [`RevocationFeed::poll_timeout`], not the guard's request timeout.
async fn send(http: &AuthorityClient, poll: Poll) -> Result<PollResponse, String> {
    let req = http
        .post(&poll.url)
        .header(http::header::AUTHORIZATION, poll.authorization)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(poll.body)
        .timeout(poll.timeout);
    let r = req.send().await.map_err(|e| format!("poll: {e}"))?;
    // Never followed by our own client; refused if a client passed in followed one.
    if r.status().is_redirection() || r.url() != &poll.url {
        return Err(format!("poll: redirect refused ({})", r.status()));
    }
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("poll: {e}"))?;
    if !status.is_success() {
        // RFC 6749 §5.2 errors (`invalid_client`, `unauthorized_client` without `ept:events`):
        // the operator's to fix; the code is logged, the body is not trusted further.
        #[derive(serde::Deserialize)]
        struct OAuthError {
            error: String,
        }
        let code = serde_json::from_slice::<OAuthError>(&body).map(|e| e.error).unwrap_or_default();
        return Err(format!("poll: HTTP {status} {code}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("poll: unreadable answer: {e}"))
}

/// RFC 8417 §2.3: "the "typ" header parameter ... value "secevent+jwt"", compared as a media
/// type: case-insensitively, `application/` optional.
fn is_set_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.strip_prefix("application/").unwrap_or(&t) == rfc8417::TYP
    })
}

impl Guard {
    fn feed(&self) -> Option<&Feed> {
        self.0.feed.as_ref()
    }

    async fn prepare_poll(&self) -> Result<Poll, String> {
        let feed = self.feed().ok_or("no feed")?;
        let meta = self.0.authority.metadata().await.map_err(|e| e.to_string())?;
        let url = meta
            .revocation_events_endpoint
            .clone()
            .ok_or("revocation feed: discovery names no revocation_events_endpoint")?;
        let position = feed.position.load(Ordering::Relaxed);
        let request = PollRequest {
            // RFC 8936 §2.4.1 acknowledgements; Tessera reads the highest as our position.
            ack: if position > 0 { vec![EventSeq(position).to_string()] } else { Vec::new() },
            max_events: Some(feed.cfg.max_events),
            return_immediately: false,
        };
        let creds = &feed.cfg.credentials;
        Ok(Poll {
            url,
            authorization: basic_credentials(&creds.client_id, &creds.client_secret),
            body: serde_json::to_string(&request).map_err(|e| e.to_string())?,
            timeout: feed.cfg.poll_timeout,
        })
    }

    /// Verifies the answer's SETs in feed order and applies every one up to the first that
    /// fails; the position moves to the last applied.
    async fn apply_answer(&self, answer: PollResponse) -> Result<Outcome, String> {
        let feed = self.feed().ok_or("no feed")?;
        let position = feed.position.load(Ordering::Relaxed);
        // The map is ordered as text ("10" < "9"): order by the number each `jti` is.
        let mut sets = Vec::with_capacity(answer.sets.len());
        for (jti, set) in &answer.sets {
            let seq = EventSeq::parse(jti).map_err(|e| format!("answer: SET id {jti:?}: {e}"))?;
            sets.push((seq, jti, set));
        }
        sets.sort_by_key(|(seq, ..)| *seq);
        let mut verified = Vec::new();
        let mut failure = None;
        for (seq, jti, set) in sets {
            if seq.0 <= position {
                continue; // applied before: the server resent it
            }
            match self.verify_set(set).await {
                Ok((claims_seq, _)) if claims_seq != seq => {
                    failure = Some(format!("SET {jti}: its jti {claims_seq} differs from its key in the answer"));
                    break;
                }
                Ok((_, event)) => verified.push((seq, event)),
                Err(why) => {
                    failure = Some(format!("SET {jti} not applied: {why}"));
                    break;
                }
            }
        }
        let applied = verified.len();
        if let Some((last, _)) = verified.last() {
            let last = last.0;
            let c = &self.0.cfg;
            let (now, leeway) = (c.clock.now().0, secs(c.leeway));
            let mut effects = Vec::new();
            {
                let mut set = feed.set.write().expect("revocation set lock");
                set.prune(now);
                for (seq, event) in verified {
                    let Some(event) = event else { continue };
                    tracing::info!(seq = seq.0, event = event.event_type(), "revocation applied");
                    effects.extend(set.apply(event, now, leeway));
                }
                feed.lost_until.store(set.lost_until().unwrap_or(NEVER), Ordering::Relaxed);
            }
            for effect in effects {
                match effect {
                    SideEffect::ForgetIntrospection(k) => self.forget_introspection(&k, now),
                    SideEffect::ForgetKey(kid) => self.0.authority.forget_key(&kid),
                }
            }
            feed.position.store(last, Ordering::Relaxed);
        } else {
            let mut set = feed.set.write().expect("revocation set lock");
            set.prune(self.0.cfg.clock.now().0);
            feed.lost_until.store(set.lost_until().unwrap_or(NEVER), Ordering::Relaxed);
        }
        Ok(Outcome { applied, more_available: answer.more_available, failure })
    }

    /// One SET: RFC 8417 §2.3 `typ`, a signature by one of the authority's published keys
    /// (`none` and HMAC refused by [`Jws::parse`]), the authority's `iss`, our client as `aud`.
    /// `Ok(None)` event: a type this guard does not know (RFC 8417 §2.2: ignored).
    async fn verify_set(&self, set: &str) -> Result<(EventSeq, Option<RevocationEvent>), String> {
        let feed = self.feed().ok_or("no feed")?;
        let jws = Jws::parse(set).map_err(|e| e.to_string())?;
        if !is_set_typ(jws.typ.as_deref()) {
            return Err(format!("typ {:?} is not {}", jws.typ, rfc8417::TYP));
        }
        let key = self
            .0
            .authority
            .key(jws.kid.as_ref(), jws.alg)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("unknown signing key {:?}", jws.kid))?;
        jws.verify_signature(&key).map_err(|e| e.to_string())?;
        let payload = jws.unverified_payload().map_err(|e| e.to_string())?;
        let claims: SetClaims = serde_json::from_slice(&payload).map_err(|e| format!("claims: {e}"))?;
        let meta = self.0.authority.metadata().await.map_err(|e| e.to_string())?;
        // RFC 8417 §2.2 `iss`: the SET must come from the authority itself.
        if claims.iss != meta.issuer {
            return Err(format!("iss {:?} is not the authority", claims.iss));
        }
        // RFC 8417 §2.2 `aud`: meant for this API's client, not for another receiver.
        if claims.aud != feed.cfg.credentials.client_id.as_str() {
            return Err(format!("aud {:?} is not this API's client", claims.aud));
        }
        let seq = claims.seq().map_err(|e| e.to_string())?;
        let event = claims.event().map_err(|e| e.to_string())?;
        Ok((seq, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8417_2_3_set_typ_is_compared_as_a_media_type() {
        assert!(is_set_typ(Some("secevent+jwt")));
        assert!(is_set_typ(Some("application/secevent+JWT")));
        assert!(!is_set_typ(Some("at+jwt")));
        assert!(!is_set_typ(Some("JWT")));
        assert!(!is_set_typ(None));
    }
}
