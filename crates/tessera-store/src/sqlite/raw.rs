//! A connection to the embedded database driven directly through SQLite's C API, for the two
//! hot paths sqlx's driver makes slow (issue 17): every sqlx statement is a round trip to the
//! connection's worker thread (begin, insert, commit: three hops and ~4 context switches per
//! batch), and binding `$N` parameters looks each name up (`sqlite3_bind_parameter_name` was
//! 8 % of the server's time issuing reference tokens). Here a statement is prepared once and
//! bound by index, on the thread that owns the connection.
//!
//! The same `libsqlite3-sys` as sqlx's (one SQLite in the binary, one set of locks on the
//! file). Each [`Conn`] is used by one thread at a time (`&mut self` everywhere), so it is
//! opened without SQLite's own mutex.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use libsqlite3_sys as ffi;

/// An error from SQLite: its extended result code and message.
#[derive(Debug, Clone)]
pub(crate) struct SqliteError {
    pub code: c_int,
    pub message: String,
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLite code {})", self.message, self.code)
    }
}

impl From<SqliteError> for crate::StoreError {
    fn from(e: SqliteError) -> Self {
        crate::StoreError::Embedded(e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, SqliteError>;

/// How long a statement waits for another connection's write lock before failing: sqlx's
/// connections wait as long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open connection with its prepared statements.
pub(crate) struct Conn {
    db: NonNull<ffi::sqlite3>,
    statements: Vec<(&'static str, NonNull<ffi::sqlite3_stmt>)>,
    /// Pages in the write-ahead log after this connection's last commit (see [`Conn::watch_wal`]).
    wal_pages: Option<Arc<AtomicI32>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sqlite::Conn")
    }
}

// SAFETY: a connection opened with SQLITE_OPEN_NOMUTEX may be used from any thread as long as
// no two threads use it at once; every use goes through `&mut self`.
unsafe impl Send for Conn {}

impl Conn {
    /// Opens the database file read-write (it must exist: the sqlx pool creates and migrates it).
    pub fn open(path: &Path) -> Result<Self> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| SqliteError { code: ffi::SQLITE_MISUSE, message: "path contains NUL".into() })?;
        let mut db = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: valid C string and out-pointer; on failure SQLite may still hand back a
        // handle, which must be closed.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, ptr::null()) };
        let Some(db) = NonNull::new(db) else {
            return Err(SqliteError { code: rc, message: "out of memory opening the database".into() });
        };
        let mut conn = Self { db, statements: Vec::new(), wal_pages: None };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc));
        }
        // SAFETY: a valid handle; the handler is a plain function with no state.
        unsafe {
            ffi::sqlite3_extended_result_codes(conn.db.as_ptr(), 1);
            ffi::sqlite3_busy_handler(conn.db.as_ptr(), Some(busy), ptr::null_mut());
        }
        // FULL: a commit is on disk before it returns (durable reference tokens), as sqlx's.
        conn.exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")?;
        Ok(conn)
    }

    /// Runs SQL with no result rows (several statements allowed).
    pub fn exec(&mut self, sql: &str) -> Result<()> {
        let c_sql = CString::new(sql).expect("SQL without NUL");
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: valid handle and C string; SQLite allocates `err`, freed below.
        let rc = unsafe { ffi::sqlite3_exec(self.db.as_ptr(), c_sql.as_ptr(), None, ptr::null_mut(), &mut err) };
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        let message = if err.is_null() {
            self.message()
        } else {
            // SAFETY: SQLite's NUL-terminated message, ours to free.
            let m = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
            unsafe { ffi::sqlite3_free(err.cast()) };
            m
        };
        Err(SqliteError { code: rc, message })
    }

    /// The statement for `sql`, prepared on first use and kept (bindings cleared, reset).
    pub fn statement(&mut self, sql: &'static str) -> Result<Statement<'_>> {
        let stmt = self.prepared(sql)?;
        Ok(Statement { conn: self, stmt })
    }

    /// Two statements stepped in turn (a merge of two ordered reads), as [`Conn::statement`].
    pub fn statements(&mut self, a: &'static str, b: &'static str) -> Result<(Statement<'_>, Statement<'_>)> {
        let (a, b) = (self.prepared(a)?, self.prepared(b)?);
        Ok((Statement { conn: self, stmt: a }, Statement { conn: self, stmt: b }))
    }

    fn prepared(&mut self, sql: &'static str) -> Result<NonNull<ffi::sqlite3_stmt>> {
        if let Some(stmt) = self.statements.iter().find(|(s, _)| *s == sql).map(|(_, st)| *st) {
            return Ok(stmt);
        }
        let mut stmt = ptr::null_mut();
        // SAFETY: valid handle; the SQL's length is passed, no NUL needed.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                c_int::try_from(sql.len()).expect("short SQL"),
                ffi::SQLITE_PREPARE_PERSISTENT as u32,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc));
        }
        let stmt = NonNull::new(stmt).expect("a statement for non-empty SQL");
        self.statements.push((sql, stmt));
        Ok(stmt)
    }

    /// Counts the pages in the write-ahead log after each commit of this connection into the
    /// returned counter. Replaces SQLite's automatic checkpoint on this connection: its
    /// owner schedules checkpoints instead.
    pub fn watch_wal(&mut self) -> Arc<AtomicI32> {
        let pages = Arc::new(AtomicI32::new(0));
        // SAFETY: the counter outlives the hook: it is kept in `self` and the hook is removed
        // in `drop` before the counter is released.
        unsafe {
            ffi::sqlite3_wal_hook(self.db.as_ptr(), Some(wal_hook), Arc::as_ptr(&pages) as *mut c_void);
        }
        self.wal_pages = Some(pages.clone());
        pages
    }

    /// Copies the write-ahead log into the database (`PASSIVE`: as far as readers allow,
    /// waiting for no one; `RESTART`: waits for readers so that the next write starts the log
    /// from its beginning). `false` when it could not finish (another checkpoint ran, or a
    /// reader outwaited the busy timeout); what it did is done.
    pub fn checkpoint(&mut self, restart: bool) -> Result<bool> {
        let mode = if restart { ffi::SQLITE_CHECKPOINT_RESTART } else { ffi::SQLITE_CHECKPOINT_PASSIVE };
        let (mut log, mut done) = (0, 0);
        // SAFETY: valid handle, NUL-terminated schema name, out-pointers.
        let rc =
            unsafe { ffi::sqlite3_wal_checkpoint_v2(self.db.as_ptr(), c"main".as_ptr(), mode, &mut log, &mut done) };
        match rc {
            ffi::SQLITE_OK => Ok(true),
            ffi::SQLITE_BUSY => Ok(false),
            rc => Err(self.error(rc)),
        }
    }

    fn message(&self) -> String {
        // SAFETY: valid handle; SQLite owns the returned string until the next call.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) }.to_string_lossy().into_owned()
    }

    fn error(&self, rc: c_int) -> SqliteError {
        // SAFETY: valid handle.
        let code = unsafe { ffi::sqlite3_extended_errcode(self.db.as_ptr()) };
        SqliteError { code: if code == ffi::SQLITE_OK { rc } else { code }, message: self.message() }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: statements and handle are ours; every statement is finalized first, so the
        // close does not fail as busy.
        unsafe {
            for (_, stmt) in self.statements.drain(..) {
                ffi::sqlite3_finalize(stmt.as_ptr());
            }
            if self.wal_pages.is_some() {
                ffi::sqlite3_wal_hook(self.db.as_ptr(), None, ptr::null_mut());
            }
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// A prepared statement in use; reset and unbound when dropped, ready for the next use.
pub(crate) struct Statement<'c> {
    conn: &'c Conn,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

/// A value bound to a statement's parameter.
pub(crate) enum Value<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Value::Null, Value::Text)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl Statement<'_> {
    /// Binds parameters `?1`, `?2`, … in order.
    pub fn bind(&mut self, values: &[Value<'_>]) -> Result<()> {
        for (i, value) in values.iter().enumerate() {
            let index = c_int::try_from(i + 1).expect("few parameters");
            // SAFETY: valid statement; TRANSIENT makes SQLite copy the text before returning.
            let rc = unsafe {
                match value {
                    Value::Int(n) => ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, *n),
                    Value::Text(s) => ffi::sqlite3_bind_text(
                        self.stmt.as_ptr(),
                        index,
                        s.as_ptr().cast(),
                        c_int::try_from(s.len())
                            .map_err(|_| SqliteError { code: ffi::SQLITE_TOOBIG, message: "text too long".into() })?,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                    Value::Null => ffi::sqlite3_bind_null(self.stmt.as_ptr(), index),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.conn.error(rc));
            }
        }
        Ok(())
    }

    /// Runs the statement one step: `true` while it yields a row (read with the column
    /// methods), `false` when done.
    pub fn step(&mut self) -> Result<bool> {
        // SAFETY: valid statement.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(self.conn.error(rc)),
        }
    }

    /// Runs a statement that returns no rows.
    pub fn execute(&mut self, values: &[Value<'_>]) -> Result<()> {
        self.bind(values)?;
        while self.step()? {}
        self.reset();
        Ok(())
    }

    /// An integer column of the current row.
    pub fn int(&self, col: c_int) -> i64 {
        // SAFETY: valid statement positioned on a row (callers read after `step` → true).
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), col) }
    }

    /// An integer column of the current row; `None` when NULL.
    pub fn opt_int(&self, col: c_int) -> Option<i64> {
        // SAFETY: as `int`.
        (unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), col) } != ffi::SQLITE_NULL).then(|| self.int(col))
    }

    /// A text column of the current row; `None` when NULL.
    pub fn text(&self, col: c_int) -> Option<String> {
        // SAFETY: as `int`; the pointer is valid until the next step/reset, copied at once.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), col) == ffi::SQLITE_NULL {
                return None;
            }
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), col);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), col);
            if p.is_null() {
                return Some(String::new());
            }
            let bytes = std::slice::from_raw_parts(p, usize::try_from(n).unwrap_or(0));
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    /// Ends the current use (a read left before its last row): reset and unbound.
    pub fn reset(&mut self) {
        // SAFETY: valid statement. Reset's code repeats the last step's, already reported.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // A statement left mid-read would hold its read snapshot (and keep the WAL from
        // being checkpointed past it).
        self.reset();
    }
}

/// Waits for another connection's lock in short steps: SQLite's default handler sleeps up to
/// 100 ms at a time, and an issuance queued behind one such sleep waits for all of it.
unsafe extern "C" fn busy(_: *mut c_void, attempts: c_int) -> c_int {
    const STEP: Duration = Duration::from_micros(200);
    if u128::from(attempts.unsigned_abs()) * STEP.as_micros() >= BUSY_TIMEOUT.as_micros() {
        return 0;
    }
    std::thread::sleep(STEP);
    1
}

unsafe extern "C" fn wal_hook(pages: *mut c_void, _: *mut ffi::sqlite3, _: *const c_char, n: c_int) -> c_int {
    // SAFETY: `pages` is the counter `watch_wal` registered, alive while the hook is set.
    unsafe { &*(pages as *const AtomicI32) }.store(n, Ordering::Relaxed);
    ffi::SQLITE_OK
}
