//! One of each port, built from configuration: the embedded backend by default,
//! the AWS backend when asked for.

use crate::aws::{self, AwsNames, DynamoJobStore, S3BlobStore, SqsJobQueue};
use crate::embedded::{Database, DirBlobStore, SqliteJobQueue, SqliteJobStore};
use crate::sealing::{KeyFileSealer, KmsSealer};
use crate::signing::UrlSigner;
use builds_domain::ports::{BlobStore, JobQueue, JobStore, SecretSealer, StoreResult};
use std::path::Path;
use std::sync::Arc;

/// A message received this many times goes to the dead-letter queue.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// The three ports, ready to use, plus the signer for URLs the service hands out.
#[derive(Clone)]
pub struct Backend {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    /// Where `queue` moves a message received too often; the worker drains
    /// it and fails those jobs.
    pub dead_letter: Arc<dyn JobQueue>,
    pub blobs: Arc<dyn BlobStore>,
    /// Seals secrets before they are stored, and opens them for the worker.
    pub sealer: Arc<dyn SecretSealer>,
    /// Set for the embedded backend: the local server serves its presigned URLs.
    pub dir_blobs: Option<DirBlobStore>,
    pub signer: UrlSigner,
}

impl Backend {
    /// Opens the embedded backend in `data_dir` (created if missing). Presigned
    /// blob URLs start with `origin`.
    pub fn embedded(data_dir: &Path, origin: &str) -> StoreResult<Backend> {
        std::fs::create_dir_all(data_dir).map_err(builds_domain::ports::StoreError::backend)?;
        let signer = UrlSigner::from_key_file(&data_dir.join("signing.key"))
            .map_err(builds_domain::ports::StoreError::backend)?;
        let sealer = KeyFileSealer::from_key_file(&data_dir.join("secrets.key"))?;
        let db = Database::open(&data_dir.join("builds.sqlite3"))?;
        let queue = SqliteJobQueue::new(db.clone(), "jobs", DEFAULT_MAX_RECEIVES);
        let blobs = DirBlobStore::new(&data_dir.join("blobs"), origin, signer.clone())?;
        Ok(Backend {
            store: Arc::new(SqliteJobStore::new(db)),
            dead_letter: Arc::new(queue.dead_letter_queue()),
            queue: Arc::new(queue),
            blobs: Arc::new(blobs.clone()),
            sealer: Arc::new(sealer),
            dir_blobs: Some(blobs),
            signer,
        })
    }

    /// Connects to the AWS resources `names` names, with the SDK configuration
    /// from the environment. `signer` signs log URLs.
    pub async fn aws(names: &AwsNames, signer: UrlSigner) -> StoreResult<Backend> {
        let config = aws::load_sdk_config().await;
        let store = DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&config), names.clone());
        let queue = SqsJobQueue::connect(aws_sdk_sqs::Client::new(&config), names).await?;
        let blobs = S3BlobStore::new(aws::s3_client(&config), names.bucket.clone());
        let sealer = KmsSealer::new(aws_sdk_kms::Client::new(&config), names.secrets_key.clone());
        Ok(Backend {
            store: Arc::new(store),
            dead_letter: Arc::new(queue.dead_letter_queue()),
            queue: Arc::new(queue),
            blobs: Arc::new(blobs),
            sealer: Arc::new(sealer),
            dir_blobs: None,
            signer,
        })
    }
}
