//! Lambda function for `add-secret`: see `Endpoint::AddSecret`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::AddSecret).await
}
