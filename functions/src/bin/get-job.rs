//! Lambda function for `get-job`: see `Endpoint::GetJob`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::GetJob).await
}
