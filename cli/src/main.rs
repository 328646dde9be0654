//! `builds`: the all-in-one local server, admin and client commands.

mod backend_args;
mod follow;
mod image;
mod manifest_check;
mod run;
mod serve;
mod token;
mod worker;

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
    /// Manage guest images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run one manifest start to end on this machine (builds its image if
    /// missing, starts the service in-process, streams the logs); exits 0 on success.
    Run(run::RunArgs),
    /// Run a worker process on its own (beside `builds serve --workers 0`).
    Worker(worker::WorkerArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build a guest image from Debian packages (debian/bookworm, alias debian/stable).
    Build {
        name: String,
        /// Where images live [default: ./.builds/images].
        #[arg(long)]
        images: Option<PathBuf>,
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
        Command::Image {
            command: ImageCommand::Build { name, images },
        } => match image::build(&name, images) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("builds: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Worker(args) => {
            init_logging();
            block_on(worker::run(args))
        }
        Command::Run(args) => {
            let mut ok = false;
            let code = block_on(async {
                ok = run::run(args).await?;
                Ok(())
            });
            if code == ExitCode::SUCCESS && !ok {
                ExitCode::FAILURE
            } else {
                code
            }
        }
    }
}
