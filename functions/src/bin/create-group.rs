//! Lambda function for `create-group`: see `Endpoint::CreateGroup`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::CreateGroup).await
}
