//! Lambda function for `list-jobs`: see `Endpoint::ListJobs`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::ListJobs).await
}
