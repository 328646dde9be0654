//! Flags that choose the storage backend, shared by every command that needs one.

use anyhow::Context;
use builds_storage::aws::AwsNames;
use builds_storage::{Backend, UrlSigner};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// SQLite file and blob directory under --data-dir; nothing else to run.
    Embedded,
    /// DynamoDB, SQS and S3 named by BUILDS_* variables (AWS_ENDPOINT_URL for an emulator).
    Aws,
}

#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Which storage to use.
    #[arg(long, value_enum, default_value = "embedded", env = "BUILDS_BACKEND")]
    pub backend: BackendChoice,
    /// Where the embedded backend keeps its data (and the URL-signing key).
    #[arg(long, default_value = "./.builds", env = "BUILDS_DATA_DIR")]
    pub data_dir: PathBuf,
}

impl BackendArgs {
    /// Opens the backend; `origin` starts the links it hands out.
    pub async fn open(&self, origin: &str) -> anyhow::Result<Backend> {
        match self.backend {
            BackendChoice::Embedded => Backend::embedded(&self.data_dir, origin)
                .with_context(|| format!("opening {}", self.data_dir.display())),
            BackendChoice::Aws => {
                let signer = match std::env::var("BUILDS_SIGNING_KEY") {
                    Ok(_) => builds_functions::lambda::signer_from_env()?,
                    Err(_) => {
                        std::fs::create_dir_all(&self.data_dir)?;
                        UrlSigner::from_key_file(&self.data_dir.join("signing.key"))?
                    }
                };
                Backend::aws(&AwsNames::from_env(), signer)
                    .await
                    .context("connecting to the AWS backend")
            }
        }
    }
}
