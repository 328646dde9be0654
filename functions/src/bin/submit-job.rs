//! Lambda function for `submit-job`: see `Endpoint::SubmitJob`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::SubmitJob).await
}
