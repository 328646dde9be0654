//! Lambda function for `add-ssh-key`: see `Endpoint::AddSshKey`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::AddSshKey).await
}
