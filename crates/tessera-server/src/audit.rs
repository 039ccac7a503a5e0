//! The running server's part of the audit trail (issue 16): failed authentications,
//! lockouts and revocations, written to the store's `audit` table by one background writer in
//! batches (registry changes are recorded by the store itself, in the transaction that makes
//! them).
//!
//! Security events are what an attacker produces at will, so their recording is bounded
//! twice: at most `max_per_second` are kept (the rest are counted and written as one
//! `audit.suppressed` entry), and the queue to the writer is bounded, so neither memory nor
//! the database grows with a flood. A request never waits for the trail.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tessera_store::{AuditAction, AuditEntry};
use tessera_types::clock::Clock;
use tokio::sync::{mpsc, oneshot};

use crate::lru::Lru;
use crate::storage::StoreFuture;

/// Where security events are written.
pub trait AuditSink: Send + Sync {
    /// Writes `entries` durably, in one transaction.
    fn record_audit<'a>(&'a self, entries: &'a [AuditEntry]) -> StoreFuture<'a, ()>;
}

/// Entries waiting for the writer, at most.
const QUEUE: usize = 4096;
/// Entries per transaction, at most.
const BATCH: usize = 256;

enum Message {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

/// The handle requests record through.
pub struct AuditLog {
    queue: mpsc::Sender<Message>,
    clock: Arc<dyn Clock>,
    max_per_second: u32,
    /// (second, entries kept in it).
    window: Mutex<(i64, u32)>,
    /// Entries not kept since the last `audit.suppressed`.
    suppressed: Arc<AtomicU64>,
    /// When each recurring event was last recorded (`record_first`).
    recent: Mutex<Lru<String, i64>>,
}

/// Recurring events remembered for `record_first`.
const RECENT: usize = 10_000;

impl AuditLog {
    /// Starts the writer (inside a Tokio runtime); at most `max_per_second` security events
    /// are kept.
    pub fn spawn(sink: Arc<dyn AuditSink>, clock: Arc<dyn Clock>, max_per_second: u32) -> Arc<Self> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let suppressed = Arc::new(AtomicU64::new(0));
        tokio::spawn(write(sink, rx, suppressed.clone(), clock.clone()));
        Arc::new(Self {
            queue,
            clock,
            max_per_second,
            window: Mutex::new((0, 0)),
            suppressed,
            recent: Mutex::new(Lru::new(RECENT)),
        })
    }

    /// Records a security event, unless this second's allowance is spent or the writer is
    /// behind (then it is counted, and the count written later).
    pub fn record(&self, actor: String, action: AuditAction, target: &str, detail: Value) {
        let at = self.clock.now();
        let kept = {
            let mut window = self.window.lock().expect("audit window lock");
            if window.0 != at.0 {
                *window = (at.0, 0);
            }
            window.1 < self.max_per_second && {
                window.1 += 1;
                true
            }
        };
        let entry = AuditEntry { seq: 0, at, actor, action, target: target.to_owned(), detail };
        if !kept || self.queue.try_send(Message::Entry(entry)).is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records an event that recurs with every request (a workload authenticating) once per
    /// `key` every `period` seconds: the trail says who came, not how often.
    pub fn record_first(
        &self,
        key: String,
        period: i64,
        actor: String,
        action: AuditAction,
        target: &str,
        detail: Value,
    ) {
        let now = self.clock.now().0;
        {
            let mut recent = self.recent.lock().expect("audit recent lock");
            if recent.get(&key).is_some_and(|at| now.saturating_sub(*at) < period) {
                return;
            }
            recent.put(key, now);
        }
        self.record(actor, action, target, detail);
    }

    /// A failed client authentication: who tried (`client_id` as presented), how, from where.
    pub fn auth_failed(&self, client_id: &str, method: &str, error: &str, peer: Option<IpAddr>) {
        let detail = json!({ "method": method, "error": error, "peer": peer.map(|p| p.to_string()) });
        self.record(actor_of(peer), AuditAction::AuthFailed, client_id, detail);
    }

    /// Resolves once every entry recorded before it is written (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The actor of an unauthenticated event: its address.
pub fn actor_of(peer: Option<IpAddr>) -> String {
    peer.map_or_else(|| "peer:unknown".to_owned(), |p| format!("peer:{p}"))
}

async fn write(
    sink: Arc<dyn AuditSink>,
    mut rx: mpsc::Receiver<Message>,
    suppressed: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
) {
    let mut messages = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut messages, BATCH).await > 0 {
        let mut entries = Vec::with_capacity(messages.len() + 1);
        let mut flushes = Vec::new();
        for m in messages.drain(..) {
            match m {
                Message::Entry(e) => entries.push(e),
                Message::Flush(done) => flushes.push(done),
            }
        }
        let dropped = suppressed.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            entries.push(AuditEntry {
                seq: 0,
                at: clock.now(),
                actor: "server".into(),
                action: AuditAction::Suppressed,
                target: String::new(),
                detail: json!({ "count": dropped, "why": "more security events than audit_max_events_per_second" }),
            });
        }
        if let Err(e) = sink.record_audit(&entries).await {
            // The entries are still in the log lines; the count says what the table lacks.
            tracing::error!(error = %e, lost = entries.len(), "writing audit entries failed");
            suppressed.fetch_add(entries.len() as u64, Ordering::Relaxed);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
