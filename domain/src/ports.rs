//! The three storage ports. Each has an embedded adapter (SQLite file and a
//! directory) and an AWS adapter (DynamoDB, SQS, S3); both pass one conformance
//! suite. Only domain types cross these traits.

use crate::job::{Group, GroupId, Job, JobId, NewGroup, NewJob};
use crate::secret::SecretRecord;
use crate::ssh_key::SshKeyRecord;
use crate::token::TokenRecord;
use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

/// What can go wrong behind a port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-set lost: somebody else wrote first.
    #[error("the record changed under us (version conflict)")]
    Conflict,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// The backend failed (network, disk, service error).
    #[error("storage backend: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        StoreError::Backend(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of an owner's jobs, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// The id to pass as `start` for the next page.
    pub next: Option<JobId>,
    /// All of the owner's jobs.
    pub total: u64,
}

/// Jobs (with their tasks and artifacts), groups, tokens, secrets and SSH keys.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores a new job with a fresh id, atomically with its tasks.
    async fn create_job(&self, new: NewJob) -> StoreResult<Job>;
    async fn get_job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// Compare-and-set: writes `job` if the stored version equals `job.version`,
    /// and returns what was stored (with the version bumped). `Conflict` if the
    /// stored version differs, `NotFound` if there is no such job.
    async fn replace_job(&self, job: &Job) -> StoreResult<Job>;
    /// The owner's jobs with id ≤ `start` (all when `None`), newest first.
    async fn list_jobs(
        &self,
        owner: &str,
        start: Option<JobId>,
        limit: usize,
    ) -> StoreResult<JobPage>;

    async fn create_group(&self, new: NewGroup) -> StoreResult<Group>;
    async fn get_group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    /// Marks a group's triggers as fired: `true` for the first caller only,
    /// so they fire once however many workers see the group end.
    async fn claim_group_triggers(&self, id: GroupId) -> StoreResult<bool>;

    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn get_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Whether a token was there to delete.
    async fn delete_token(&self, hash: &str) -> StoreResult<bool>;

    /// Stores a new secret (its bytes already sealed). `Conflict` if the owner
    /// already has a secret with this id.
    async fn put_secret(&self, secret: &SecretRecord) -> StoreResult<()>;
    /// The owner's secrets, newest first.
    async fn list_secrets(&self, owner: &str) -> StoreResult<Vec<SecretRecord>>;
    /// Whether the owner had a secret with this id to delete.
    async fn delete_secret(&self, owner: &str, id: &str) -> StoreResult<bool>;

    /// Registers an SSH public key (`Conflict` if the owner has this id).
    async fn put_ssh_key(&self, key: &SshKeyRecord) -> StoreResult<()>;
    /// The owner's SSH public keys, newest first.
    async fn list_ssh_keys(&self, owner: &str) -> StoreResult<Vec<SshKeyRecord>>;
    async fn delete_ssh_key(&self, owner: &str, id: &str) -> StoreResult<bool>;
}

/// Encrypts secrets before they are stored and decrypts them for the worker
/// that installs them. Sealed bytes are bound to a context (the secret's owner
/// and id): opening them under another context fails, as does any change to
/// them.
#[async_trait]
pub trait SecretSealer: Send + Sync {
    async fn seal(&self, context: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>>;
    async fn open(&self, context: &str, sealed: &[u8]) -> StoreResult<Vec<u8>>;
}

/// Why [`update_job`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The change itself refused (e.g. an illegal status transition).
    #[error(transparent)]
    Refused(E),
    #[error(transparent)]
    Store(StoreError),
}

/// Read-modify-write of one job with compare-and-set, retried when another
/// writer got there first. `change` sees the freshest record each time and may
/// refuse; a refusal is returned and nothing is written.
pub async fn update_job<E, F>(
    store: &dyn JobStore,
    id: JobId,
    mut change: F,
) -> Result<Job, UpdateError<E>>
where
    F: FnMut(&mut Job) -> Result<(), E> + Send,
    E: Send,
{
    loop {
        let mut job = store
            .get_job(id)
            .await
            .map_err(UpdateError::Store)?
            .ok_or(UpdateError::NotFound(id))?;
        change(&mut job).map_err(UpdateError::Refused)?;
        job.updated = crate::job::now();
        match store.replace_job(&job).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict) => continue,
            Err(StoreError::NotFound(_)) => return Err(UpdateError::NotFound(id)),
            Err(err) => return Err(UpdateError::Store(err)),
        }
    }
}

/// A message taken from the queue; invisible to others until its visibility
/// timeout runs out, unless deleted first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub body: String,
    /// Names this receipt of the message for `extend` and `delete`.
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// The queue that carries jobs to workers, with SQS semantics.
#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, body: &str) -> StoreResult<()>;
    /// Up to `max` messages, waiting up to `wait` for the first one (long poll).
    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Delivery>>;
    /// Keeps a received message hidden for `visibility` from now.
    async fn extend(&self, receipt: &str, visibility: Duration) -> StoreResult<()>;
    async fn delete(&self, receipt: &str) -> StoreResult<()>;
}

/// A byte range, inclusive at both ends as in HTTP; `end: None` means to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Bytes read from a blob, with where they sit in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRead {
    pub bytes: Bytes,
    /// Offset of `bytes` in the blob.
    pub start: u64,
    /// The blob's whole size at the time of reading.
    pub total: u64,
}

/// Logs and artifacts. Keys are `/`-separated paths of `[A-Za-z0-9._-]` segments.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes a whole object.
    async fn put(&self, key: &str, bytes: Bytes) -> StoreResult<()>;
    /// Writes `bytes` at `offset` of a growing object (a log). A single writer
    /// appends with increasing offsets; rewriting a chunk at the same offset is
    /// harmless, so retries are safe. Readers see what was written at once.
    async fn append_chunk(&self, key: &str, offset: u64, bytes: Bytes) -> StoreResult<()>;
    /// Makes a grown object whole and final; returns its size.
    async fn seal(&self, key: &str) -> StoreResult<u64>;
    /// Reads an object (sealed or growing), or the part `range` names.
    /// `None` when there is no such object. A range starting at or past the end
    /// gives empty bytes.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>>;
    /// A URL that serves the object with a plain GET until `expires_in` passes.
    async fn presign_get(&self, key: &str, expires_in: Duration) -> StoreResult<String>;
}

/// Checks a blob key: relative, `/`-separated, each segment non-empty and made of
/// `[A-Za-z0-9._-]`, never `.` or `..`.
pub fn check_blob_key(key: &str) -> StoreResult<()> {
    let ok = !key.is_empty()
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_cannot_escape() {
        assert!(check_blob_key("logs/1/setup").is_ok());
        assert!(check_blob_key("artifacts/1/1/out.tar.gz").is_ok());
        for bad in [
            "", "/abs", "a//b", "a/../b", "..", "a/./b", "a b", "a/b/", "ü",
        ] {
            assert!(check_blob_key(bad).is_err(), "{bad:?}");
        }
    }
}
