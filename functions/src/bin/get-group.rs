//! Lambda function for `get-group`: see `Endpoint::GetGroup`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::GetGroup).await
}
