//! The embedded backend: one SQLite file (bundled SQLite, WAL) for jobs, groups,
//! tokens and the queue, and one directory for blobs. Nothing else to install.

mod dir_blobs;
mod sqlite;
pub use sqlite::Database;
mod sqlite_queue;
mod sqlite_store;

pub use dir_blobs::{DirBlobStore, BLOB_ROUTE};
pub use sqlite_queue::SqliteJobQueue;
pub use sqlite_store::SqliteJobStore;
