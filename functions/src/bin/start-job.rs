//! Lambda function for `start-job`: see `Endpoint::StartJob`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::StartJob).await
}
