//! The embedded store's hot paths (issue 17): reference tokens written by one dedicated thread
//! that owns its connection and commits a whole batch without leaving it, checkpoints the
//! writer schedules, and point reads on connections of their own, run where they are asked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::raw::{self, Conn};
use crate::sqlite::DB_FILE;

/// Most read connections: reads run inline on the runtime's threads, so about one per thread
/// is ever in use; beyond this a read goes through the sqlx pool instead.
const MAX_READERS: usize = 16;

/// When the write-ahead log is checkpointed. SQLite's own default is a checkpoint inside the
/// commit that crosses 1,000 pages (4 MiB), which is what made some issuances wait for one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalPolicy {
    /// From this many pages in the log the checkpointer thread copies it into the database,
    /// beside the writer (`PASSIVE`: commits go on meanwhile).
    pub checkpoint_pages: i32,
    /// From this many the writer itself checkpoints (`RESTART`) before its next batch, so
    /// that the log starts over: under sustained writes the passive checkpoints may never
    /// catch up with the end of the log, and the file would grow without bound.
    pub restart_pages: i32,
    /// The log file is truncated to this size when it starts over.
    pub size_limit_bytes: i64,
}

impl Default for WalPolicy {
    fn default() -> Self {
        // 2,000 rather than SQLite's 1,000: the pages every batch rewrites (the ends of the
        // table and of the time and client indexes) are copied once per checkpoint, not once
        // per commit, so fewer checkpoints copy fewer pages.
        Self { checkpoint_pages: 2_000, restart_pages: 8_192, size_limit_bytes: 16 << 20 }
    }
}

/// The embedded database's own connections, beside the sqlx pool.
#[derive(Debug)]
pub(crate) struct Embedded {
    path: PathBuf,
    readers: Mutex<Vec<Conn>>,
    opened_readers: AtomicUsize,
    pub(crate) wal: WalPolicy,
}

impl Embedded {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(DB_FILE),
            readers: Mutex::new(Vec::new()),
            opened_readers: AtomicUsize::new(0),
            wal: WalPolicy::default(),
        }
    }

    /// Runs `read` on a read connection, on the calling thread: a point lookup in a warm page
    /// cache takes microseconds, less than handing it to another thread and back. `None` when
    /// every read connection is busy (the caller reads through the pool).
    pub fn read<T>(&self, read: impl FnOnce(&mut Conn) -> raw::Result<T>) -> Option<raw::Result<T>> {
        let idle = self.readers.lock().expect("readers").pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => {
                if self.opened_readers.fetch_add(1, Ordering::Relaxed) >= MAX_READERS {
                    self.opened_readers.fetch_sub(1, Ordering::Relaxed);
                    return None;
                }
                match open_reader(&self.path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        self.opened_readers.fetch_sub(1, Ordering::Relaxed);
                        return Some(Err(e));
                    }
                }
            }
        };
        let out = read(&mut conn);
        self.readers.lock().expect("readers").push(conn);
        Some(out)
    }

    /// Opens the writer's connection, and starts the checkpointer beside it.
    pub fn open_writer(&self) -> raw::Result<Writer> {
        let mut conn = Conn::open(&self.path)?;
        // A bigger page cache: the checkpointer and the prune read back pages this connection
        // wrote, and lookups by the legacy handle (migration 0017) land anywhere in the index.
        conn.exec(&format!("PRAGMA cache_size = -32768; PRAGMA journal_size_limit = {}", self.wal.size_limit_bytes))?;
        let wal_pages = conn.watch_wal();
        let (wake, asleep) = std::sync::mpsc::sync_channel::<()>(1);
        let path = self.path.clone();
        let checkpointing = Arc::new(Mutex::new(()));
        let turn = checkpointing.clone();
        std::thread::Builder::new()
            .name("tessera-sqlite-checkpoint".into())
            .spawn(move || checkpointer(&path, asleep, &turn))
            .map_err(|e| raw::SqliteError { code: 0, message: format!("starting the checkpointer: {e}") })?;
        Ok(Writer { conn, wal_pages, wake, checkpointing, policy: self.wal })
    }
}

fn open_reader(path: &Path) -> raw::Result<Conn> {
    let mut conn = Conn::open(path)?;
    conn.exec("PRAGMA query_only = 1; PRAGMA cache_size = -8192")?;
    Ok(conn)
}

/// Copies the log into the database whenever the writer says it has grown.
fn checkpointer(path: &Path, asleep: std::sync::mpsc::Receiver<()>, checkpointing: &Mutex<()>) {
    let mut conn = None;
    // Ends when the writer (the sender) is gone.
    while asleep.recv().is_ok() {
        if conn.is_none() {
            conn =
                Conn::open(path).map_err(|e| tracing::warn!(error = %e, "checkpointer cannot open the database")).ok();
        }
        let _one_checkpoint = checkpointing.lock().expect("checkpoint turn");
        if let Some(c) = conn.as_mut()
            && let Err(e) = c.checkpoint(false)
        {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// The reference-token writer's connection.
pub(crate) struct Writer {
    conn: Conn,
    wal_pages: Arc<AtomicI32>,
    wake: std::sync::mpsc::SyncSender<()>,
    /// Taken by whichever of the writer and the checkpointer checkpoints: SQLite refuses a
    /// second checkpoint at once rather than waiting for the first.
    checkpointing: Arc<Mutex<()>>,
    policy: WalPolicy,
}

impl Writer {
    /// Runs `write` in one transaction and commits it: all or nothing.
    pub fn transaction(&mut self, write: impl FnOnce(&mut Conn) -> raw::Result<()>) -> raw::Result<()> {
        self.keep_wal_bounded()?;
        // IMMEDIATE: the write lock first, so a concurrent writer makes this one wait its turn
        // rather than fail at commit.
        self.conn.exec("BEGIN IMMEDIATE")?;
        let outcome = write(&mut self.conn).and_then(|()| self.conn.exec("COMMIT"));
        if outcome.is_err() {
            // Already rolled back if the failure ended the transaction; harmless otherwise.
            let _ = self.conn.exec("ROLLBACK");
        }
        outcome?;
        if self.wal_pages.load(Ordering::Relaxed) >= self.policy.checkpoint_pages {
            // Full: a checkpoint is already asked for.
            let _ = self.wake.try_send(());
        }
        Ok(())
    }

    fn keep_wal_bounded(&mut self) -> raw::Result<()> {
        if self.wal_pages.load(Ordering::Relaxed) >= self.policy.restart_pages {
            let _one_checkpoint = self.checkpointing.lock().expect("checkpoint turn");
            // Mostly copied already by the checkpointer: what is left is the tail, and the
            // wait for readers to leave the log (microseconds each).
            if self.conn.checkpoint(true)? {
                self.wal_pages.store(0, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use tessera_types::{ClientId, Jti, Resource, UnixTime};

    use super::*;
    use crate::store::insert_tokens_raw;
    use crate::{Store, TokenRecord};

    fn token(n: usize) -> TokenRecord {
        TokenRecord {
            handle: format!("handle-{n:08}"),
            hash: format!("hash-{n:08}"),
            jti: Jti::new(format!("jti-{n}")).unwrap(),
            client_id: ClientId::new("CC").unwrap(),
            scope: Some("a b".parse().unwrap()),
            audiences: vec![Resource::new("api1").unwrap()],
            iat: UnixTime(1000),
            exp: UnixTime(100_000),
            revoked: false,
            cnf: None,
            workload: None,
        }
    }

    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(format!("{DB_FILE}-wal"))).map_or(0, |m| m.len())
    }

    /// Under sustained writes with readers reading all along, the log stays bounded: the
    /// checkpointer copies it, and the writer restarts it at its bound. Without the restart it
    /// grows with every batch (SQLite's autocheckpoint is off on the writer's connection).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_ahead_log_stays_bounded_under_sustained_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let policy = WalPolicy { checkpoint_pages: 50, restart_pages: 400, size_limit_bytes: 1 << 20 };
        let embedded = Arc::new(Embedded { wal: policy, ..Embedded::new(dir.path()) });
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (embedded, stop) = (embedded.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut found = 0;
                while !stop.load(Ordering::Relaxed) {
                    let handle = format!("handle-{:08}", found);
                    let hit = embedded.read(|c| {
                        let mut q = c.statement("SELECT 1 FROM tokens WHERE handle = ?1")?;
                        q.bind(&[handle.as_str().into()])?;
                        q.step()
                    });
                    if hit.unwrap().unwrap() {
                        found += 1;
                    }
                }
                found
            })
        };
        let mut writer = embedded.open_writer().unwrap();
        let mut peak = 0;
        for batch in 0..400 {
            let tokens: Vec<_> = (batch * 50..batch * 50 + 50).map(token).collect();
            writer.transaction(|conn| insert_tokens_raw(conn, &tokens)).unwrap();
            peak = peak.max(wal_bytes(dir.path()));
        }
        stop.store(true, Ordering::Relaxed);
        let found = reader.join().unwrap();
        // Every committed token is durable and seen through the sqlx pool too.
        assert_eq!(store.token_counts().await.unwrap().0, 20_000);
        assert!(found > 0, "the reader saw committed tokens while the writer wrote");
        // The bound: the restart threshold plus one batch's pages (a batch of 50 tokens
        // touches at most ~60 pages), in 4 KiB pages and their 24-byte frame headers.
        let bound = (400 + 100) * (4096 + 24);
        assert!(peak <= bound, "WAL reached {peak} bytes, bound {bound}");
        assert!(peak > 50 * 4096, "the log grew before being checkpointed: {peak}");
    }

    /// A batch that fails (here a duplicate hash) leaves nothing behind, and the writer's next
    /// transaction succeeds on the same connection.
    #[tokio::test]
    async fn a_failed_batch_is_rolled_back_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let embedded = Embedded::new(dir.path());
        let mut writer = embedded.open_writer().unwrap();
        writer.transaction(|conn| insert_tokens_raw(conn, &[token(1)])).unwrap();
        let err = writer.transaction(|conn| insert_tokens_raw(conn, &[token(2), token(1)])).unwrap_err();
        assert_eq!(err.code, libsqlite3_sys::SQLITE_CONSTRAINT_PRIMARYKEY, "{err}");
        assert!(store.find_token("handle-00000002", "hash-00000002").await.unwrap().is_none());
        writer.transaction(|conn| insert_tokens_raw(conn, &[token(3)])).unwrap();
        assert_eq!(store.token_counts().await.unwrap().0, 2);
    }
}
