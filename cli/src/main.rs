//! `builds`: the all-in-one local server, admin and client commands.

mod backend_args;
mod manifest_check;
mod serve;
mod token;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "builds",
    version,
    about = "A CI service that speaks the builds.sr.ht job API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with build manifests.
    Manifest {
        #[command(subcommand)]
        command: ManifestCommand,
    },
    /// Run the service (every API endpoint) on this machine.
    Serve(serve::ServeArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Check manifests: prints `FILE: ok` or each problem; exits 1 if any is invalid.
    Check {
        /// Manifest files (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also check that each manifest's image is one this directory of images offers.
        #[arg(long)]
        images: Option<PathBuf>,
    },
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs an async command on a fresh runtime; errors are printed, not panicked.
fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("builds: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("builds: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Manifest {
            command: ManifestCommand::Check { files, images },
        } => manifest_check::run(&files, images.as_deref()),
        Command::Serve(args) => {
            init_logging();
            block_on(serve::run(args))
        }
        Command::Token { command } => block_on(token::run(command)),
    }
}
