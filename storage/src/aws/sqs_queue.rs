//! [`JobQueue`] on SQS. The dead-letter queue is the queue's redrive policy.

use super::names::AwsNames;
use super::sdk_error;
use async_trait::async_trait;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::Client;
use builds_domain::ports::{Delivery, JobQueue, StoreError, StoreResult};
use std::time::Duration;

/// SQS allows at most this long a wait per receive call.
const MAX_WAIT_SECONDS: u64 = 20;
/// SQS allows at most 12 hours of visibility.
const MAX_VISIBILITY_SECONDS: u64 = 12 * 60 * 60;

#[derive(Clone, Debug)]
pub struct SqsJobQueue {
    client: Client,
    queue_url: String,
}

fn seconds(d: Duration, max: u64) -> i32 {
    d.as_secs().min(max) as i32
}

impl SqsJobQueue {
    pub fn new(client: Client, queue_url: String) -> Self {
        SqsJobQueue { client, queue_url }
    }

    /// The queue `names` points at: its URL, or looked up by name.
    pub async fn connect(client: Client, names: &AwsNames) -> StoreResult<Self> {
        let queue_url = match &names.queue_url {
            Some(url) => url.clone(),
            None => client
                .get_queue_url()
                .queue_name(&names.queue_name)
                .send()
                .await
                .map_err(sdk_error)?
                .queue_url()
                .ok_or_else(|| StoreError::NotFound(format!("queue {}", names.queue_name)))?
                .to_string(),
        };
        Ok(SqsJobQueue::new(client, queue_url))
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The dead-letter queue beside this one: `<name>-dead-letter` at the
    /// same account and region, as the template names it (no lookup, so no
    /// extra permission is needed to know it).
    pub fn dead_letter_queue(&self) -> SqsJobQueue {
        SqsJobQueue::new(
            self.client.clone(),
            format!("{}-dead-letter", self.queue_url.trim_end_matches('/')),
        )
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, body: &str) -> StoreResult<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY_SECONDS))
            .wait_time_seconds(seconds(wait, MAX_WAIT_SECONDS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Delivery {
                    body: m.body()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    receive_count,
                })
            })
            .collect())
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY_SECONDS))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
