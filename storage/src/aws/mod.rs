//! The AWS backend: DynamoDB (jobs, groups, tokens, an id counter), SQS (the job
//! queue, with a dead-letter queue) and S3 (logs and artifacts). Pointed at an
//! emulator by `AWS_ENDPOINT_URL` (S3 then uses path-style addressing).

mod dynamo_store;
mod names;
mod s3_blobs;
mod sqs_queue;

pub use dynamo_store::DynamoJobStore;
pub use names::{AwsNames, OWNER_INDEX};
pub use s3_blobs::S3BlobStore;
pub use sqs_queue::SqsJobQueue;

use aws_config::{BehaviorVersion, Region};

/// Loads the SDK configuration from the environment (credentials, region,
/// `AWS_ENDPOINT_URL`). The region defaults to `us-east-1`.
pub async fn load_sdk_config() -> SdkConfig {
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .load()
        .await
}

/// Whether an emulator endpoint is configured (then S3 needs path-style URLs).
pub fn uses_custom_endpoint(config: &SdkConfig) -> bool {
    config.endpoint_url().is_some()
}

/// An S3 client for `config`, path-style when an emulator endpoint is set.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(uses_custom_endpoint(config))
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// Renders an SDK error with its service message and causes.
pub(crate) fn sdk_error<E, R>(
    err: aws_sdk_s3::error::SdkError<E, R>,
) -> builds_domain::ports::StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut text = match &err {
        aws_sdk_s3::error::SdkError::ServiceError(service) => service.err().to_string(),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    builds_domain::ports::StoreError::Backend(text)
}

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as DynamoClient;
pub use aws_sdk_sqs::Client as SqsClient;
