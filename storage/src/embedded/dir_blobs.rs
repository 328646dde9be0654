//! [`BlobStore`] on a directory: each key is a file under `root/objects`.
//! Chunks are written in place at their offset, so a growing log is one file
//! that readers can read at any time. Presigned URLs point at the local server's
//! `/blobs/` route, which checks the signature with the same [`UrlSigner`].

use crate::signing::UrlSigner;
use async_trait::async_trait;
use builds_domain::ports::{
    check_blob_key, BlobRead, BlobStore, ByteRange, StoreError, StoreResult,
};
use bytes::Bytes;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// Where the local server serves presigned blobs.
pub const BLOB_ROUTE: &str = "/blobs/";

#[derive(Clone, Debug)]
pub struct DirBlobStore {
    objects: PathBuf,
    origin: String,
    signer: UrlSigner,
}

impl DirBlobStore {
    /// Blobs under `root`; presigned URLs start with `origin` (e.g.
    /// `http://127.0.0.1:8080`) and are signed with `signer`.
    pub fn new(root: &Path, origin: &str, signer: UrlSigner) -> StoreResult<Self> {
        let objects = root.join("objects");
        std::fs::create_dir_all(&objects).map_err(StoreError::backend)?;
        Ok(DirBlobStore {
            objects,
            origin: origin.trim_end_matches('/').to_string(),
            signer,
        })
    }

    fn path_of(&self, key: &str) -> StoreResult<PathBuf> {
        check_blob_key(key)?;
        Ok(self.objects.join(key))
    }

    /// Serves a presigned URL: checks the signature in `query` for `key`, then
    /// reads like [`BlobStore::get`]. `None` when the signature is bad, expired,
    /// or there is no such blob.
    pub async fn get_signed(
        &self,
        key: &str,
        query: Option<&str>,
        range: Option<ByteRange>,
    ) -> StoreResult<Option<BlobRead>> {
        let path = format!("{BLOB_ROUTE}{key}");
        if !self.signer.verify(&path, query, OffsetDateTime::now_utc()) {
            return Ok(None);
        }
        self.get(key, range).await
    }
}

fn io(err: std::io::Error) -> StoreError {
    StoreError::backend(err)
}

fn create_parent(path: &Path) -> StoreResult<()> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(io),
        None => Ok(()),
    }
}

fn read_range(path: &Path, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io(err)),
    };
    let total = file.metadata().map_err(io)?.len();
    let (start, end) = match range {
        None => (0, total),
        Some(r) => (
            r.start.min(total),
            r.end.map_or(total, |e| e.saturating_add(1).min(total)),
        ),
    };
    let len = end.saturating_sub(start);
    let mut buf = Vec::with_capacity(len as usize);
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    file.take(len).read_to_end(&mut buf).map_err(io)?;
    Ok(Some(BlobRead {
        bytes: Bytes::from(buf),
        start,
        total,
    }))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(StoreError::backend)?
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> StoreResult<()> {
        let path = self.path_of(key)?;
        blocking(move || {
            create_parent(&path)?;
            // Write aside and rename, so a reader never sees half an object.
            let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
            std::fs::write(&tmp, &bytes).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)
        })
        .await
    }

    async fn append_chunk(&self, key: &str, offset: u64, bytes: Bytes) -> StoreResult<()> {
        let path = self.path_of(key)?;
        blocking(move || {
            create_parent(&path)?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io)?;
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            file.write_all(&bytes).map_err(io)
        })
        .await
    }

    async fn seal(&self, key: &str) -> StoreResult<u64> {
        let path = self.path_of(key)?;
        blocking(move || match std::fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                create_parent(&path)?;
                std::fs::write(&path, b"").map_err(io)?;
                Ok(0)
            }
            Err(err) => Err(io(err)),
        })
        .await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let path = self.path_of(key)?;
        blocking(move || read_range(&path, range)).await
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> StoreResult<String> {
        check_blob_key(key)?;
        let path = format!("{BLOB_ROUTE}{key}");
        let expires = OffsetDateTime::now_utc() + expires_in;
        Ok(format!(
            "{}{}?{}",
            self.origin,
            path,
            self.signer.query(&path, expires)
        ))
    }
}
