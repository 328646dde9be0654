//! Ships a log to the blob store while it is written: output is buffered and
//! appended as chunks at least every `FLUSH_EVERY` (so a reader sees it within
//! a second), and the whole object is sealed at the end. What was shipped
//! stays if the worker dies.

use builds_domain::ports::BlobStore;
use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often buffered output goes out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// A chunk goes out early once this much is buffered.
const CHUNK_BYTES: usize = 1 << 20;

struct Pending {
    buffer: BytesMut,
    offset: u64,
}

/// A log being written. Clone it to write from several places.
#[derive(Clone)]
pub struct LogShipper {
    key: String,
    blobs: Arc<dyn BlobStore>,
    pending: Arc<Mutex<Pending>>,
    /// Serialises flushes so chunks go out in order.
    flushing: Arc<tokio::sync::Mutex<()>>,
    notify: Arc<tokio::sync::Notify>,
}

impl LogShipper {
    /// Starts a log at `key` (continuing after `offset` bytes already shipped)
    /// and a task that flushes it on a timer until [`LogShipper::finish`].
    pub fn start(blobs: Arc<dyn BlobStore>, key: String, offset: u64) -> LogShipper {
        let shipper = LogShipper {
            key,
            blobs,
            pending: Arc::new(Mutex::new(Pending {
                buffer: BytesMut::new(),
                offset,
            })),
            flushing: Arc::new(tokio::sync::Mutex::new(())),
            notify: Arc::new(tokio::sync::Notify::new()),
        };
        let ticker = shipper.clone();
        tokio::spawn(async move {
            loop {
                let stop = tokio::time::timeout(FLUSH_EVERY, ticker.notify.notified()).await;
                ticker.flush().await;
                if stop.is_ok() || Arc::strong_count(&ticker.pending) <= 1 {
                    return;
                }
            }
        });
        shipper
    }

    /// Adds output. Never blocks on the network.
    pub fn write(&self, bytes: &[u8]) {
        let big = match self.pending.lock() {
            Ok(mut pending) => {
                pending.buffer.extend_from_slice(bytes);
                pending.buffer.len() >= CHUNK_BYTES
            }
            Err(_) => false,
        };
        if big {
            let shipper = self.clone();
            tokio::spawn(async move { shipper.flush().await });
        }
    }

    /// Adds a line of the service's own (e.g. "[builds] booting the guest").
    pub fn line(&self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }

    /// Sends what is buffered. Failures are retried on the next flush.
    pub async fn flush(&self) {
        let _turn = self.flushing.lock().await;
        let (chunk, offset) = match self.pending.lock() {
            Ok(mut pending) if !pending.buffer.is_empty() => {
                let chunk: Bytes = pending.buffer.split().freeze();
                (chunk, pending.offset)
            }
            _ => return,
        };
        let len = chunk.len() as u64;
        match self
            .blobs
            .append_chunk(&self.key, offset, chunk.clone())
            .await
        {
            Ok(()) => {
                if let Ok(mut pending) = self.pending.lock() {
                    pending.offset += len;
                }
            }
            Err(err) => {
                tracing::warn!(key = %self.key, %err, "shipping a log chunk failed; will retry");
                if let Ok(mut pending) = self.pending.lock() {
                    let mut again = BytesMut::from(&chunk[..]);
                    again.extend_from_slice(&pending.buffer);
                    pending.buffer = again;
                }
            }
        }
    }

    /// Flushes everything, stops the timer and seals the object.
    pub async fn finish(&self) {
        self.notify.notify_one();
        self.flush().await;
        if let Err(err) = self.blobs.seal(&self.key).await {
            tracing::warn!(key = %self.key, %err, "sealing a log failed");
        }
    }
}
