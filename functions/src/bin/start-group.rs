//! Lambda function for `start-group`: see `Endpoint::StartGroup`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::StartGroup).await
}
