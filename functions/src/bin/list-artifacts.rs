//! Lambda function for `list-artifacts`: see `Endpoint::ListArtifacts`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::ListArtifacts).await
}
