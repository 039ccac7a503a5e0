//! One `serve` per SQLite data dir: an exclusive `flock` on `DATA_DIR/tessera.lock`, which
//! holds the pid of the server. The kernel releases it when the process ends, however it
//! ends (SIGKILL included), so a crash leaves no stale lock behind.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

/// File name of the lock inside the data directory.
pub const LOCK_FILE: &str = "tessera.lock";

/// Held while the server runs; dropping it (or exiting) releases the lock.
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, creating the data dir (0700) if needed, or says who holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| format!("data dir {}: {e}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let io = |e: std::io::Error| format!("{}: {e}", path.display());
        // Not truncated on open: the holder's pid stays readable until the lock is ours.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = match holder.trim() {
                    "" => "pid unknown".to_string(),
                    pid => format!("pid {pid}"),
                };
                Err(format!(
                    "data dir {} is in use by another `tessera serve` ({holder}, holding {}): two servers on one \
                     SQLite data dir are refused. Stop that server, or use another --data-dir (instances that share \
                     state use --database-url)",
                    data_dir.display(),
                    path.display()
                ))
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}
