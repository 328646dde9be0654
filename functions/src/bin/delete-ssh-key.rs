//! Lambda function for `delete-ssh-key`: see `Endpoint::DeleteSshKey`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::DeleteSshKey).await
}
