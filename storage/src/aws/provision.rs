//! Creates the AWS resources the backend needs, with the same keys and indexes
//! as `infra/template.yaml`, in an emulator or a scratch account. Idempotent.
//! Deployments use the template; this serves tests and quick local setups.

use super::names::{AwsNames, OWNER_INDEX};
use super::sdk_error;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use builds_domain::ports::{StoreError, StoreResult};

fn attribute(name: &str, kind: ScalarAttributeType) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(StoreError::backend)
}

fn key(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(StoreError::backend)
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    hash_key: (&str, ScalarAttributeType),
    owner_index: bool,
) -> StoreResult<()> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(hash_key.0, hash_key.1)?)
        .key_schema(key(hash_key.0, KeyType::Hash)?);
    if owner_index {
        request = request
            .attribute_definitions(attribute("owner", ScalarAttributeType::S)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(OWNER_INDEX)
                    .key_schema(key("owner", KeyType::Hash)?)
                    .key_schema(key("id", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(StoreError::backend)?,
            );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(sdk_error(err)),
    }
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> StoreResult<String> {
    let mut request = client.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key, value);
    }
    let out = request.send().await.map_err(sdk_error)?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| StoreError::Backend(format!("queue {name} has no URL")))
}

/// Creates the tables, the queue with its dead-letter queue (a message received
/// `max_receives` times moves there) and the bucket. Returns the queue URL.
pub async fn provision(
    config: &SdkConfig,
    names: &AwsNames,
    max_receives: u32,
) -> StoreResult<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    create_table(
        &dynamo,
        &names.jobs_table,
        ("id", ScalarAttributeType::N),
        true,
    )
    .await?;
    create_table(
        &dynamo,
        &names.groups_table,
        ("id", ScalarAttributeType::N),
        false,
    )
    .await?;
    create_table(
        &dynamo,
        &names.tokens_table,
        ("hash", ScalarAttributeType::S),
        false,
    )
    .await?;
    create_table(
        &dynamo,
        &names.counters_table,
        ("name", ScalarAttributeType::S),
        false,
    )
    .await?;

    let sqs = aws_sdk_sqs::Client::new(config);
    let dead_letter_url = create_queue(&sqs, &names.dead_letter_queue_name(), vec![]).await?;
    let dead_letter_arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk_error)?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| StoreError::Backend("dead-letter queue has no ARN".into()))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": max_receives.to_string(),
    })
    .to_string();
    let queue_url = create_queue(
        &sqs,
        &names.queue_name,
        vec![(QueueAttributeName::RedrivePolicy, redrive)],
    )
    .await?;

    let s3 = super::s3_client(config);
    match s3.create_bucket().bucket(&names.bucket).send().await {
        Ok(_) => {}
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) => {}
        Err(err) => return Err(sdk_error(err)),
    }
    Ok(queue_url)
}
