//! The client commands (`builds submit|show|list|cancel|start|artifacts|
//! resubmit|manifest ID`, `builds secret …`): talk to a builds API (ours or builds.sr.ht's
//! legacy REST API) with a token.

pub mod api;
pub mod commands;
pub mod config;
pub mod follow;
pub mod output;
pub mod secrets;
pub mod shell;

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Options every client command takes.
#[derive(Args, Debug, Clone)]
pub struct ClientOptions {
    /// The API's base URL (else the config file's `url`).
    #[arg(long, env = "BUILDS_URL", value_name = "URL")]
    pub url: Option<String>,
    /// The API token (else the config file's `token`).
    #[arg(
        long,
        env = "BUILDS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print JSON for scripts (logs of --follow go to standard error).
    #[arg(long)]
    pub json: bool,
    /// How often a request that met a network error is tried again.
    #[arg(long, env = "BUILDS_RETRIES", default_value_t = 4, value_name = "N")]
    pub retries: usize,
    /// The first wait before trying again, in milliseconds (then doubling, up to 8 s).
    #[arg(
        long,
        env = "BUILDS_RETRY_DELAY_MS",
        default_value_t = 500,
        value_name = "MS",
        hide = true
    )]
    pub retry_delay_ms: u64,
}

impl ClientOptions {
    pub fn retry_policy(&self) -> api::RetryPolicy {
        api::RetryPolicy {
            retries: self.retries,
            first_delay: Duration::from_millis(self.retry_delay_ms),
            ..api::RetryPolicy::default()
        }
    }
}

/// What a submission says about its job.
#[derive(Args, Debug, Clone)]
pub struct SubmitOptions {
    /// A note describing the job.
    #[arg(long, value_name = "NOTE")]
    pub note: Option<String>,
    /// A tag (lowercase letters, digits, -_.); repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Create the job without starting it (start it with `builds start ID`).
    #[arg(long, conflicts_with = "follow")]
    pub no_execute: bool,
    /// Do not give the job its secrets.
    #[arg(long)]
    pub no_secrets: bool,
    /// Stream the logs until the job ends; exit 0 only if it succeeds.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Build manifests to submit, one job each; none or `-` reads standard input.
    #[arg(value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
    #[command(flatten)]
    pub submit: SubmitOptions,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    pub id: u64,
    /// Stream the logs until the job ends; exit 0 only if it succeeds.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only jobs with this status (pending, queued, running, success, failed,
    /// timeout, cancelled); repeat for any of several.
    #[arg(long = "status", value_name = "STATUS")]
    pub statuses: Vec<String>,
    /// Only jobs with this tag; repeat to require several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// At most this many jobs (newest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Args, Debug)]
pub struct JobArgs {
    pub id: u64,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Args, Debug)]
pub struct ArtifactsArgs {
    pub id: u64,
    /// Download every artifact into this directory.
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientOptions,
}

#[derive(Args, Debug)]
pub struct ResubmitArgs {
    pub id: u64,
    /// Edit the manifest first, in $VISUAL or $EDITOR.
    #[arg(long, short)]
    pub edit: bool,
    /// A note for the new job [default: the old job's note].
    #[arg(long, value_name = "NOTE")]
    pub note: Option<String>,
    /// Stream the logs until the job ends; exit 0 only if it succeeds.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `builds manifest ID`.
#[derive(Args, Debug)]
pub struct ManifestArgs {
    /// The job whose manifest to print.
    #[arg(required = true)]
    pub id: Option<u64>,
    #[command(flatten)]
    pub client: ClientOptions,
}
