//! [`BlobStore`] on S3. A growing object (a log) is a set of chunk objects
//! `<key>.chunks/<offset>`; readers assemble them, and `seal` joins them into
//! `<key>` and removes the chunks. What was shipped before a crash stays.

use super::sdk_error;
use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use builds_domain::ports::{
    check_blob_key, BlobRead, BlobStore, ByteRange, StoreError, StoreResult,
};
use bytes::{Bytes, BytesMut};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

/// One chunk of a growing object.
#[derive(Debug, Clone)]
struct Chunk {
    key: String,
    offset: u64,
    size: u64,
}

fn chunk_prefix(key: &str) -> String {
    format!("{key}.chunks/")
}

/// Which part of a `total`-byte object `range` names, as `[start, end)`.
fn clamp(range: Option<ByteRange>, total: u64) -> (u64, u64) {
    match range {
        None => (0, total),
        Some(r) => (
            r.start.min(total),
            r.end.map_or(total, |e| e.saturating_add(1).min(total)),
        ),
    }
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: String) -> Self {
        S3BlobStore { client, bucket }
    }

    async fn chunks(&self, key: &str) -> StoreResult<Vec<Chunk>> {
        let prefix = chunk_prefix(key);
        let mut chunks = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(sdk_error)?;
            for object in out.contents() {
                let Some(name) = object.key() else { continue };
                let Some(offset) = name
                    .strip_prefix(&prefix)
                    .and_then(|o| o.parse::<u64>().ok())
                else {
                    continue;
                };
                chunks.push(Chunk {
                    key: name.to_string(),
                    offset,
                    size: object.size().unwrap_or(0).max(0) as u64,
                });
            }
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        chunks.sort_by_key(|c| c.offset);
        Ok(chunks)
    }

    async fn get_object(&self, key: &str, range: Option<String>) -> StoreResult<Option<Bytes>> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await;
        match result {
            Ok(out) => {
                let body = out.body.collect().await.map_err(StoreError::backend)?;
                Ok(Some(body.into_bytes()))
            }
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn object_size(&self, key: &str) -> StoreResult<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Reads a range of a growing object from its chunks. `None` when a chunk
    /// vanished meanwhile (the object was sealed): the caller reads again.
    async fn read_chunks(
        &self,
        chunks: &[Chunk],
        range: Option<ByteRange>,
    ) -> StoreResult<Option<BlobRead>> {
        let total = chunks.iter().map(|c| c.offset + c.size).max().unwrap_or(0);
        let (start, end) = clamp(range, total);
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for chunk in chunks {
            let (chunk_start, chunk_end) = (chunk.offset, chunk.offset + chunk.size);
            // Skip what lies before what we have (a rewritten chunk) or outside the range.
            let from = chunk_start.max(start + out.len() as u64);
            let to = chunk_end.min(end);
            if from >= to {
                continue;
            }
            let header = format!("bytes={}-{}", from - chunk_start, to - chunk_start - 1);
            match self.get_object(&chunk.key, Some(header)).await? {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
        Ok(Some(BlobRead {
            bytes: out.freeze(),
            start,
            total,
        }))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Bytes) -> StoreResult<()> {
        check_blob_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn append_chunk(&self, key: &str, offset: u64, bytes: Bytes) -> StoreResult<()> {
        check_blob_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{offset:020}", chunk_prefix(key)))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn seal(&self, key: &str) -> StoreResult<u64> {
        check_blob_key(key)?;
        let chunks = self.chunks(key).await?;
        if chunks.is_empty() {
            if let Some(size) = self.object_size(key).await? {
                return Ok(size);
            }
            self.put(key, Bytes::new()).await?;
            return Ok(0);
        }
        let whole = self
            .read_chunks(&chunks, None)
            .await?
            .ok_or_else(|| StoreError::Backend(format!("{key} was sealed twice at once")))?;
        let size = whole.bytes.len() as u64;
        self.put(key, whole.bytes).await?;
        for batch in chunks.chunks(1000) {
            let objects = batch
                .iter()
                .map(|c| ObjectIdentifier::builder().key(&c.key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::backend)?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(StoreError::backend)?;
            self.client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(size)
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        check_blob_key(key)?;
        // A growing object may be sealed while we read it: then read again.
        for _ in 0..3 {
            if let Some(total) = self.object_size(key).await? {
                let (start, end) = clamp(range, total);
                if start >= end {
                    return Ok(Some(BlobRead {
                        bytes: Bytes::new(),
                        start,
                        total,
                    }));
                }
                let header = format!("bytes={}-{}", start, end - 1);
                if let Some(bytes) = self.get_object(key, Some(header)).await? {
                    return Ok(Some(BlobRead {
                        bytes,
                        start,
                        total,
                    }));
                }
                continue;
            }
            let chunks = self.chunks(key).await?;
            if chunks.is_empty() {
                // Sealed between our two looks? Then the object exists now.
                if self.object_size(key).await?.is_some() {
                    continue;
                }
                return Ok(None);
            }
            if let Some(read) = self.read_chunks(&chunks, range).await? {
                return Ok(Some(read));
            }
        }
        Err(StoreError::Backend(format!(
            "{key} kept changing while it was read"
        )))
    }

    async fn presign_get(&self, key: &str, expires_in: Duration) -> StoreResult<String> {
        check_blob_key(key)?;
        let config = PresigningConfig::expires_in(expires_in).map_err(StoreError::backend)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(sdk_error)?;
        Ok(request.uri().to_string())
    }
}
