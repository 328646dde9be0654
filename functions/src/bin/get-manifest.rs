//! Lambda function for `get-manifest`: see `Endpoint::GetManifest`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::GetManifest).await
}
