//! Lambda function for `cancel-job`: see `Endpoint::CancelJob`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::CancelJob).await
}
