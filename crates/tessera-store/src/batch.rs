//! Group commit: every write waits until it is durable, but concurrent writes share one
//! transaction (one fsync). One writer task per kind drains its queue: while a commit is in
//! flight, new writes pile up and go together in the next one, so the batch size grows with
//! the load and throughput with it — never answering early. Reference tokens
//! ([`TokenWriter`]) and used client-assertion ids ([`AssertionJtiWriter`]) go this way.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_types::{ClientId, UnixTime};
use tokio::sync::{mpsc, oneshot};

use crate::sqlite::embedded::Embedded;
use crate::store::insert_tokens_raw;
use crate::{Store, StoreError, TokenRecord};

/// How long the writer of used ids waits after the first id of a batch for others to join
/// it. Under load a commit's fixed cost (a WAL append and an fsync, on the one SQLite
/// thread) then spreads over more rows; each waits this much longer.
const JTI_LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Reference-token transactions one instance keeps in flight on PostgreSQL (each takes a pool
/// connection while it commits; the pool's default is 10).
const POSTGRES_TOKEN_WRITERS: usize = 4;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

type Job<T, R> = (T, oneshot::Sender<Result<R, String>>);

/// One commit of a writer, as its observer sees it (issue 16: batch sizes and commit latency
/// are what tell an operator whether the store keeps up).
#[derive(Debug, Clone, Copy)]
pub struct BatchCommit {
    /// `"reference token"` or `"assertion jti"`.
    pub writer: &'static str,
    /// Writes in the transaction.
    pub size: usize,
    /// From the start of the transaction to its outcome.
    pub took: Duration,
    /// Whether it committed.
    pub ok: bool,
}

/// Told of every commit; a closure is one. The store has no metrics of its own: the host
/// (the server) decides what to record.
pub trait BatchObserver: Send + Sync + 'static {
    #[allow(missing_docs)]
    fn committed(&self, commit: BatchCommit);
}

impl<F: Fn(BatchCommit) + Send + Sync + 'static> BatchObserver for F {
    fn committed(&self, commit: BatchCommit) {
        self(commit)
    }
}

fn unobserved() -> Arc<dyn BatchObserver> {
    Arc::new(|_: BatchCommit| {})
}

/// A queue in front of `workers` writer tasks that commit what has piled up with `commit`,
/// which returns one outcome per item, in order. While one worker commits, the next takes
/// what has queued since: on PostgreSQL their transactions then share the WAL flush (its own
/// group commit), where one worker would wait for each flush in turn. The tasks end when
/// every sender is dropped.
fn spawn_writer<T, R, F, Fut>(
    store: Store,
    what: &'static str,
    linger: std::time::Duration,
    workers: usize,
    observer: Arc<dyn BatchObserver>,
    commit: F,
) -> mpsc::Sender<Job<T, R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Store, Vec<T>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Vec<R>, StoreError>> + Send,
{
    let (queue, rx) = mpsc::channel::<Job<T, R>>(MAX_BATCH * 8);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..workers.max(1) {
        let (store, observer, commit, rx) = (store.clone(), observer.clone(), commit.clone(), rx.clone());
        tokio::spawn(async move {
            let mut batch: Vec<Job<T, R>> = Vec::with_capacity(MAX_BATCH);
            loop {
                {
                    // The queue is held while a batch gathers, not while it commits.
                    let mut rx = rx.lock().await;
                    let Some(first) = rx.recv().await else { break };
                    batch.push(first);
                    if !linger.is_zero() {
                        tokio::time::sleep(linger).await;
                    }
                    fill(&mut rx, &mut batch);
                }
                let (items, acks): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
                let count = items.len();
                let started = Instant::now();
                let outcome = commit(store.clone(), items).await;
                settle(&*observer, what, count, started, acks, outcome);
            }
        });
    }
    queue
}

/// Adds to `batch` what is already queued, up to [`MAX_BATCH`].
fn fill<T, R>(rx: &mut mpsc::Receiver<Job<T, R>>, batch: &mut Vec<Job<T, R>>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Tells the observer of a commit and every waiting write of its outcome.
fn settle<R>(
    observer: &dyn BatchObserver,
    what: &'static str,
    count: usize,
    started: Instant,
    acks: Vec<oneshot::Sender<Result<R, String>>>,
    outcome: Result<Vec<R>, StoreError>,
) {
    observer.committed(BatchCommit { writer: what, size: count, took: started.elapsed(), ok: outcome.is_ok() });
    match outcome {
        Ok(outcomes) => {
            for (ack, outcome) in acks.into_iter().zip(outcomes) {
                let _ = ack.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, count, "{what} batch failed");
            for ack in acks {
                let _ = ack.send(Err(e.to_string()));
            }
        }
    }
}

/// The longest a woken token writer gathers before committing (see [`gather_while_arriving`]):
/// a fraction of the commit's own flush; measured 0, 200 and 1,000 µs at c=16 and 64 (the
/// larger gathered more per commit; all within the run-to-run spread of the others).
const GATHER_AT_MOST: Duration = Duration::from_micros(500);

/// Lets the threads that are handling requests run, and takes what they queue meanwhile,
/// until a turn brings nothing new (or `most` has passed). With the runtime on as many cores as
/// the writer, a woken writer otherwise commits the one token that woke it while the tokens of
/// requests already being handled wait for the next commit: many small commits, each a WAL
/// flush and its pages rewritten. Idle, the first turn brings nothing and the commit starts
/// at once.
fn gather_while_arriving<T, R>(rx: &mut mpsc::Receiver<Job<T, R>>, batch: &mut Vec<Job<T, R>>, most: Duration) {
    let until = Instant::now() + most;
    while batch.len() < MAX_BATCH && Instant::now() < until {
        let before = batch.len();
        std::thread::yield_now();
        fill(rx, batch);
        if batch.len() == before {
            break;
        }
    }
}

/// The reference-token writer of the embedded store (issue 17): a thread of its own that owns
/// a connection and commits each batch there in one go — no hop per statement to sqlx's worker
/// thread, statements prepared once. In-process writers of other kinds still take their turn
/// with it (the store's write turn), so none of them waits in SQLite's busy handler.
fn spawn_embedded_token_writer(
    store: Store,
    embedded: Arc<Embedded>,
    observer: Arc<dyn BatchObserver>,
) -> mpsc::Sender<Job<TokenRecord, ()>> {
    const WHAT: &str = "reference token";
    let (queue, mut rx) = mpsc::channel::<Job<TokenRecord, ()>>(MAX_BATCH * 8);
    let run = move || {
        default_scheduling();
        let mut writer = None;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Ends when every sender is dropped.
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            fill(&mut rx, &mut batch);
            gather_while_arriving(&mut rx, &mut batch, GATHER_AT_MOST);
            let (items, acks): (Vec<TokenRecord>, Vec<_>) = batch.drain(..).unzip();
            let started = Instant::now();
            let outcome = (|| {
                let _one_writer = store.write_turn_blocking();
                let writer = match &mut writer {
                    Some(w) => w,
                    // Opened on first use, and again after a failed open.
                    None => writer.insert(embedded.open_writer()?),
                };
                writer.transaction(|conn| insert_tokens_raw(conn, &items))
            })();
            let outcome = outcome.map(|()| vec![(); items.len()]).map_err(StoreError::from);
            settle(&*observer, WHAT, items.len(), started, acks, outcome);
        }
    };
    if let Err(e) = std::thread::Builder::new().name("tessera-token-writer".into()).spawn(run) {
        // The queue's receiver is gone with the closure: every insert fails as "writer stopped".
        tracing::error!(error = %e, "cannot start the reference-token writer");
    }
    queue
}

/// Puts the calling thread back under the operating system's default policy. The host may run
/// its request threads under `SCHED_BATCH` (so that arriving requests do not preempt this
/// writer mid-batch), and a thread inherits its creator's policy; this one should stay
/// preemptive itself: when its flush completes, the answers waiting on it go out at once.
fn default_scheduling() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "SCHED_OTHER refused");
        }
    }
}

/// Sends one item to a writer and waits for its outcome.
async fn submit<T, R>(queue: &mpsc::Sender<Job<T, R>>, item: T, what: &str) -> Result<R, StoreError> {
    let stopped = || StoreError::Write(format!("{what} writer stopped"));
    let (ack, done) = oneshot::channel();
    queue.send((item, ack)).await.map_err(|_| stopped())?;
    done.await.map_err(|_| stopped())?.map_err(StoreError::Write)
}

/// A handle to the reference-token writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TokenWriter {
    queue: mpsc::Sender<Job<TokenRecord, ()>>,
}

impl TokenWriter {
    /// Starts the writer task for `store`.
    pub fn spawn(store: Store) -> Self {
        Self::spawn_observed(store, unobserved())
    }

    /// Starts the writer task for `store`, telling `observer` of every commit.
    pub fn spawn_observed(store: Store, observer: Arc<dyn BatchObserver>) -> Self {
        if let Some(embedded) = store.embedded().cloned() {
            return Self { queue: spawn_embedded_token_writer(store, embedded, observer) };
        }
        let queue = spawn_writer(
            store,
            "reference token",
            std::time::Duration::ZERO,
            POSTGRES_TOKEN_WRITERS,
            observer,
            |store: Store, records: Vec<TokenRecord>| async move {
                store.insert_tokens(&records).await?;
                Ok(vec![(); records.len()])
            },
        );
        Self { queue }
    }

    /// Stores `token` and returns once it is committed.
    pub async fn insert(&self, token: TokenRecord) -> Result<(), StoreError> {
        submit(&self.queue, token, "token").await
    }
}

/// A handle to the writer task of used client-assertion ids (RFC 7523 §3 item 7). Cheap to
/// clone. A replay is decided by the table's unique key inside the batch's transaction, so it
/// holds across instances sharing PostgreSQL and within one batch alike.
#[derive(Clone, Debug)]
pub struct AssertionJtiWriter {
    queue: mpsc::Sender<Job<(ClientId, String, UnixTime), bool>>,
}

impl AssertionJtiWriter {
    /// Starts the writer task for `store`.
    pub fn spawn(store: Store) -> Self {
        Self::spawn_observed(store, unobserved())
    }

    /// Starts the writer task for `store`, telling `observer` of every commit.
    pub fn spawn_observed(store: Store, observer: Arc<dyn BatchObserver>) -> Self {
        let queue = spawn_writer(
            store,
            "assertion jti",
            JTI_LINGER,
            1,
            observer,
            |store: Store, rows: Vec<(ClientId, String, UnixTime)>| async move { store.use_assertion_jtis(&rows).await },
        );
        Self { queue }
    }

    /// Records the assertion id; `false` when it was used before (a replay). Returns once
    /// the row is committed.
    pub async fn use_jti(
        &self,
        client_id: ClientId,
        jti_hash: String,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        submit(&self.queue, (client_id, jti_hash, expires_at), "assertion jti").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestJob = Job<u32, ()>;

    fn job(n: u32) -> TestJob {
        (n, oneshot::channel().0)
    }

    /// Spawned from a thread under `SCHED_BATCH` (as the server's request threads run), the
    /// writer still runs under the default policy, so its wakeups preempt.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_token_writer_stays_preemptive_when_spawned_from_a_batch_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let writer = std::thread::spawn({
            let store = store.clone();
            move || {
                let param = libc::sched_param { sched_priority: 0 };
                // SAFETY: a valid sched_param, for the calling thread.
                assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) }, 0);
                TokenWriter::spawn(store)
            }
        })
        .join()
        .unwrap();
        let token = TokenRecord {
            handle: "handle-1".into(),
            hash: "hash-1".into(),
            jti: tessera_types::Jti::new("jti-1").unwrap(),
            client_id: ClientId::new("CC").unwrap(),
            scope: None,
            audiences: vec![],
            iat: UnixTime(1000),
            exp: UnixTime(100_000),
            revoked: false,
            cnf: None,
            workload: None,
        };
        // Answered: the writer thread has started (and set its policy first).
        writer.insert(token).await.unwrap();
        let policies = tessera_testkit::thread_policies(std::process::id(), "tessera-token-w");
        assert!(!policies.is_empty(), "no token-writer thread found");
        assert!(policies.iter().all(|&p| p == libc::SCHED_OTHER), "{policies:?}");
    }

    /// Idle, the writer does not wait: a turn that brings nothing ends the gathering.
    #[test]
    fn gathering_ends_at_once_when_nothing_arrives() {
        let (_tx, mut rx) = mpsc::channel::<TestJob>(8);
        let mut batch = vec![job(0)];
        let started = Instant::now();
        gather_while_arriving(&mut rx, &mut batch, Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(batch.len(), 1);
    }

    /// Whatever has queued is taken, up to the batch bound.
    #[test]
    fn gathering_takes_what_has_queued_up_to_the_bound() {
        let (tx, mut rx) = mpsc::channel::<TestJob>(MAX_BATCH * 2);
        for n in 1..(MAX_BATCH as u32 + 10) {
            tx.try_send(job(n)).unwrap();
        }
        let mut batch = vec![job(0)];
        gather_while_arriving(&mut rx, &mut batch, Duration::from_secs(5));
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(rx.len(), 10);
    }
}
