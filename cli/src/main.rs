//! `builds`: the all-in-one local server, admin and client commands.

mod manifest_check;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "builds", version, about = "A CI service that speaks the builds.sr.ht job API")]
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
    /// Run the service on this machine.
    Serve(serve::ServeArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Manifest {
            command: ManifestCommand::Check { files, images },
        } => manifest_check::run(&files, images.as_deref()),
        Command::Serve(args) => serve::run(args),
    }
}
