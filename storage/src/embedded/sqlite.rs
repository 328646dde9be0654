//! One SQLite file shared by the store and the queue: one writer connection
//! used through `spawn_blocking`, and a few read connections (WAL lets them
//! read beside the writer) that serve point reads.

use builds_domain::ports::{StoreError, StoreResult};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, id DESC);
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS groups_triggered (
    group_id INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE TABLE IF NOT EXISTS ssh_keys (
    owner TEXT NOT NULL,
    id TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE TABLE IF NOT EXISTS queue_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages (queue, visible_at_ms, id);
CREATE UNIQUE INDEX IF NOT EXISTS queue_receipt ON queue_messages (receipt);
";

/// Read connections: enough for the API's threads to read at once.
const READERS: usize = 4;

/// A SQLite database file, opened once and shared.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
}

impl Database {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(StoreError::backend)?;
        }
        let conn = Connection::open(path).map_err(StoreError::backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(StoreError::backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(StoreError::backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(StoreError::backend)?;
        conn.execute_batch(SCHEMA).map_err(StoreError::backend)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            // Opened read-write (but used only to read): read-only WAL
            // connections answer "database is locked" without waiting while
            // the writer checkpoints.
            let reader = Connection::open(path).map_err(StoreError::backend)?;
            reader
                .busy_timeout(std::time::Duration::from_secs(10))
                .map_err(StoreError::backend)?;
            readers.push(Mutex::new(reader));
        }
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers),
        })
    }

    /// Runs a short read (a lookup by key) on a free read connection, right
    /// here: a point read takes microseconds, less than handing it to the
    /// blocking pool. When every reader is busy, or SQLite answers that the
    /// database is locked (a reader can meet the writer resetting the WAL),
    /// the read goes to the writer connection instead.
    pub async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
    {
        for reader in self.readers.iter() {
            if let Ok(guard) = reader.try_lock() {
                match work(&guard) {
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if matches!(
                            e.code,
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        ) =>
                    {
                        break;
                    }
                    result => return result.map_err(sql_err),
                }
            }
        }
        self.run(move |conn| work(conn).map_err(sql_err)).await
    }

    /// Runs `work` on the connection off the async threads.
    pub async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("the database lock was poisoned".into()))?;
            work(&mut guard)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

pub fn sql_err(err: rusqlite::Error) -> StoreError {
    StoreError::backend(err)
}

pub fn json_err(err: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored record is not valid: {err}"))
}
