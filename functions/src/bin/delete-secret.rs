//! Lambda function for `delete-secret`: see `Endpoint::DeleteSecret`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::DeleteSecret).await
}
