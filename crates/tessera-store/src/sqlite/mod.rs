//! Opening the embedded SQLite database: a file in the data directory, owner-only
//! permissions, write-ahead logging.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::StoreError;

pub(crate) mod embedded;
pub(crate) mod raw;

/// File name of the database inside the data directory.
pub(crate) const DB_FILE: &str = "tessera.db";

/// Creates the data directory (0700) and the database file (0600) if absent, tightens the
/// permissions of existing ones, and returns the sqlx URL of the database.
pub(crate) fn prepare(data_dir: &Path) -> Result<String, StoreError> {
    fs::create_dir_all(data_dir).map_err(|e| StoreError::io(data_dir, e))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)).map_err(|e| StoreError::io(data_dir, e))?;
    let db = data_dir.join(DB_FILE);
    OpenOptions::new().create(true).append(true).mode(0o600).open(&db).map_err(|e| StoreError::io(&db, e))?;
    tighten(data_dir)?;
    let path =
        db.to_str().ok_or_else(|| StoreError::Config(format!("data dir path is not UTF-8: {}", db.display())))?;
    Ok(format!("sqlite://{path}?mode=rwc"))
}

/// The sqlx URL of the database in `data_dir` if it exists; creates nothing.
pub(crate) fn existing(data_dir: &Path) -> Result<String, StoreError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(not_initialised(data_dir));
    }
    let path =
        db.to_str().ok_or_else(|| StoreError::Config(format!("data dir path is not UTF-8: {}", db.display())))?;
    Ok(format!("sqlite://{path}?mode=rw"))
}

/// The error for a data dir without a store: the path looked at, and how to make one.
pub(crate) fn not_initialised(data_dir: &Path) -> StoreError {
    StoreError::Config(format!(
        "no Tessera store in data dir {} (looked for {}): check --data-dir / TESSERA_DATA_DIR, or create the store \
         with `tessera init --data-dir {}` (or by starting `tessera serve`)",
        data_dir.display(),
        data_dir.join(DB_FILE).display(),
        data_dir.display()
    ))
}

/// Makes the database, its WAL and shared-memory files owner-only (SQLite creates the
/// latter with the database's mode, this is belt and braces for files made before).
pub(crate) fn tighten(data_dir: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let f: PathBuf = data_dir.join(format!("{DB_FILE}{suffix}"));
        if f.exists() {
            fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).map_err(|e| StoreError::io(&f, e))?;
        }
    }
    Ok(())
}
