//! Lambda function for `list-secrets`: see `Endpoint::ListSecrets`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::ListSecrets).await
}
