//! Lambda function for `setup-log`: see `Endpoint::SetupLog`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::SetupLog).await
}
