//! Lambda function for `webhook-key`: see `Endpoint::WebhookKey`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::WebhookKey).await
}
