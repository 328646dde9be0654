//! Lambda function for `list-ssh-keys`: see `Endpoint::ListSshKeys`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    builds_functions::lambda::run(builds_functions::Endpoint::ListSshKeys).await
}
