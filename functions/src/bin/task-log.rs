//! Lambda function for `task-log`: see `Endpoint::TaskLog`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::TaskLog).await
}
