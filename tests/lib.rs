//! Helpers shared by the integration tests: backends to test against, and the
//! emulator they find through the environment that `.ci/run` prepares.

use builds_storage::aws::{self, AwsNames, DynamoJobStore, S3BlobStore, SqsJobQueue};
use builds_storage::conformance::Fixture;
use builds_storage::embedded::{Database, DirBlobStore, SqliteJobQueue, SqliteJobStore};
use builds_storage::UrlSigner;
use std::sync::Arc;

/// The AWS emulator's endpoint, or `None` (with the reason printed) when the
/// tests should skip the AWS backend. Under `CI=true` the emulator is required.
pub fn aws_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but AWS_ENDPOINT_URL is not set: .ci/run must start the emulator")
        }
        _ => {
            eprintln!(
                "SKIPPED (AWS backend): AWS_ENDPOINT_URL is not set. Start an emulator \
                 (`moto_server -H 127.0.0.1 -p 4566` or `localstack start`) and export \
                 AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=test \
                 AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"
            );
            None
        }
    }
}

/// Names no other test uses, so tests can run in parallel against one emulator.
pub fn unique_aws_names() -> AwsNames {
    let id = uuid::Uuid::new_v4().simple().to_string();
    AwsNames::with_prefix(&format!("t{}-", &id[..12]))
}

/// A fresh embedded backend in a temporary directory, with a local HTTP server
/// for its presigned blob URLs. Keep the returned guard alive.
pub async fn embedded_fixture(max_receives: u32) -> (Fixture, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let signer = UrlSigner::new(b"conformance-test-key".to_vec());
    let db = Database::open(&dir.path().join("builds.sqlite3")).expect("database");
    let blobs = DirBlobStore::new(&dir.path().join("blobs"), &origin, signer).expect("blobs");
    let app = builds_functions::blobs::router(blobs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let queue = SqliteJobQueue::new(db.clone(), "jobs", max_receives);
    let fixture = Fixture {
        store: Arc::new(SqliteJobStore::new(db)),
        dead_letter: Arc::new(queue.dead_letter_queue()),
        queue: Arc::new(queue),
        max_receives,
        blobs: Arc::new(blobs),
    };
    (fixture, dir)
}

/// A fresh set of AWS resources in the emulator, or `None` when skipping.
pub async fn aws_fixture(max_receives: u32) -> Option<Fixture> {
    aws_endpoint()?;
    let config = aws::load_sdk_config().await;
    let mut names = unique_aws_names();
    let queue_url = aws::provision(&config, &names, max_receives)
        .await
        .expect("provision the emulator");
    names.queue_url = Some(queue_url.clone());
    let sqs = aws_sdk_sqs_client(&config);
    let mut dead_names = names.clone();
    dead_names.queue_url = None;
    dead_names.queue_name = names.dead_letter_queue_name();
    let dead_letter = SqsJobQueue::connect(sqs.clone(), &dead_names)
        .await
        .expect("dead-letter queue");
    Some(Fixture {
        store: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb_client(&config),
            names.clone(),
        )),
        queue: Arc::new(SqsJobQueue::new(sqs, queue_url)),
        dead_letter: Arc::new(dead_letter),
        max_receives,
        blobs: Arc::new(S3BlobStore::new(aws::s3_client(&config), names.bucket)),
    })
}

fn aws_sdk_sqs_client(config: &aws::SdkConfig) -> aws::SqsClient {
    aws::SqsClient::new(config)
}

fn aws_sdk_dynamodb_client(config: &aws::SdkConfig) -> aws::DynamoClient {
    aws::DynamoClient::new(config)
}
