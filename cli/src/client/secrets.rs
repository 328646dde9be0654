//! `builds secret add|list|delete`: the caller's secrets through
//! `/api/secrets` (scopes `secrets:write` / `secrets:read`). The secret itself
//! goes up once and never comes back.

use super::api::{next_page, page_results};
use super::commands::connect;
use super::output::table;
use super::ClientOptions;
use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store a secret (an SSH or PGP private key, or a file) for your jobs.
    Add(AddArgs),
    /// List your secrets (never their contents).
    List {
        #[command(flatten)]
        client: ClientOptions,
    },
    /// Delete a secret by its UUID.
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientOptions,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretType {
    /// Installed as ~/.ssh/<id> (the first also as ~/.ssh/id_rsa), mode 600.
    #[value(name = "ssh_key", alias = "ssh-key")]
    SshKey,
    /// Imported with gpg --import.
    #[value(name = "pgp_key", alias = "pgp-key")]
    PgpKey,
    /// Written to --path with --mode.
    File,
}

impl SecretType {
    fn api_name(self) -> &'static str {
        match self {
            SecretType::SshKey => "ssh_key",
            SecretType::PgpKey => "pgp_key",
            SecretType::File => "file",
        }
    }
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// What the secret is.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: SecretType,
    /// Where a file secret goes in the guest (~/… or absolute).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// A file secret's mode, in octal [default: 600].
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// A name manifests may use instead of the UUID.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The file holding the secret.
    pub file: PathBuf,
    #[command(flatten)]
    pub client: ClientOptions,
}

pub async fn run(command: SecretCommand) -> anyhow::Result<bool> {
    match command {
        SecretCommand::Add(args) => add(args).await,
        SecretCommand::List { client } => list(client).await,
        SecretCommand::Delete { id, client } => {
            let (api, _) = connect(&client)?;
            api.delete(&format!("/api/secrets/{id}"))
                .await
                .with_context(|| format!("secret {id}"))?;
            println!("Secret {id} deleted");
            Ok(true)
        }
    }
}

async fn add(args: AddArgs) -> anyhow::Result<bool> {
    if args.kind != SecretType::File && (args.path.is_some() || args.mode.is_some()) {
        bail!("--path and --mode are for --type file only");
    }
    if args.kind == SecretType::File && args.path.is_none() {
        bail!("a file secret needs --path (where it goes in the guest)");
    }
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (api, out) = connect(&args.client)?;
    let body = json!({
        "secret_type": args.kind.api_name(),
        "secret": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "name": args.name,
        "path": args.path,
        "mode": args.mode,
    });
    let created = api.post_json("/api/secrets", &body).await?;
    if out.json {
        out.print_json(&created);
    } else {
        println!(
            "Secret {} added{}",
            created["id"].as_str().unwrap_or("?"),
            created["name"]
                .as_str()
                .map(|n| format!(" as {n}"))
                .unwrap_or_default()
        );
    }
    Ok(true)
}

async fn list(client: ClientOptions) -> anyhow::Result<bool> {
    let (api, out) = connect(&client)?;
    let mut secrets: Vec<Value> = Vec::new();
    let mut path = "/api/secrets".to_string();
    loop {
        let page = api.get_json(&path).await?;
        secrets.extend(page_results("secrets", &page)?);
        match next_page(&page) {
            Some(next) => path = format!("/api/secrets?start={next}"),
            None => break,
        }
    }
    if out.json {
        out.print_json(&Value::Array(secrets));
        return Ok(true);
    }
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or("").to_string();
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|s| {
            let place = match (s["path"].as_str(), s["mode"].as_str()) {
                (Some(path), Some(mode)) => format!("{path} ({mode})"),
                (Some(path), None) => path.to_string(),
                _ => String::new(),
            };
            vec![
                text(s, "id"),
                text(s, "secret_type"),
                text(s, "name"),
                place,
                text(s, "created"),
            ]
        })
        .collect();
    table(&["ID", "TYPE", "NAME", "PATH", "CREATED"], &rows, out.color);
    Ok(true)
}
