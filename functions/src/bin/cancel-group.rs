//! Lambda function for `cancel-group`: see `Endpoint::CancelGroup`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::CancelGroup).await
}
