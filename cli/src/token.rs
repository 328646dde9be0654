//! `builds token create|revoke`: API tokens, stored hashed.

use crate::backend_args::BackendArgs;
use anyhow::Context;
use builds_domain::token::{hash_token, mint_token, Scope};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; prints it as the last line of standard output.
    Create {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        /// Comma-separated scopes: jobs:read, jobs:write, secrets:read, secrets:write.
        #[arg(long, default_value = "jobs:read,jobs:write")]
        scopes: String,
        /// Lifetime, e.g. 30d, 12h, 90min; never expires without it.
        #[arg(long)]
        expires: Option<humantime::Duration>,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Revoke a token (give the token itself).
    Revoke {
        token: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            scopes,
            expires,
            backend,
        } => {
            anyhow::ensure!(
                valid_user(&user),
                "--user must be 1-64 letters, digits, '_', '-' or '.', not {user:?}"
            );
            let scopes = Scope::parse_list(&scopes)?;
            anyhow::ensure!(!scopes.is_empty(), "--scopes names no scope");
            let now = builds_domain::job::now();
            let expires_at = expires.map(|d| now + std::time::Duration::from(d));
            let (token, record) = mint_token(&user, scopes, expires_at, now);
            let backend = backend.open("http://localhost").await?;
            backend
                .store
                .put_token(&record)
                .await
                .context("storing the token")?;
            let scopes: Vec<_> = record.scopes.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "Created a token for ~{user} with scopes {}{}",
                scopes.join(","),
                match expires_at {
                    Some(at) => format!(", expiring {}", builds_domain::api::format_timestamp(at)),
                    None => String::new(),
                }
            );
            println!("{token}");
            Ok(())
        }
        TokenCommand::Revoke { token, backend } => {
            let backend = backend.open("http://localhost").await?;
            if backend
                .store
                .delete_token(&hash_token(token.trim()))
                .await?
            {
                println!("revoked");
                Ok(())
            } else {
                anyhow::bail!("no such token")
            }
        }
    }
}
