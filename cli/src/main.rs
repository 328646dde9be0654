//! `builds`: the all-in-one local server, admin and client commands.

mod backend_args;
mod client;
mod image;
mod manifest_check;
mod run;
mod serve;
mod token;
mod trigger_settings;
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
    /// Submit build manifests (files, or standard input) as jobs.
    Submit(client::SubmitArgs),
    /// Show a job, or follow its logs to its end (--follow).
    Show(client::ShowArgs),
    /// List your jobs, newest first.
    List(client::ListArgs),
    /// Cancel a job.
    Cancel(client::JobArgs),
    /// Start a job submitted with --no-execute.
    Start(client::JobArgs),
    /// List a job's artifacts, or download them (--download DIR).
    Artifacts(client::ArtifactsArgs),
    /// Submit a job's manifest again (--edit to change it first).
    Resubmit(client::ResubmitArgs),
    /// Print a job's manifest (`builds manifest ID`), or check manifest files
    /// (`builds manifest check FILE...`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Manifest {
        #[command(subcommand)]
        command: Option<ManifestCommand>,
        #[command(flatten)]
        show: client::ManifestArgs,
    },
    /// Run the service (every API endpoint) on this machine.
    Serve(serve::ServeArgs),
    /// SSH into a job's guest while it is held (`shell: true`, or a failed build).
    Ssh(client::shell::SshArgs),
    /// Manage your secrets (SSH keys, PGP keys, files) for jobs.
    Secret {
        #[command(subcommand)]
        command: client::secrets::SecretCommand,
    },
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
    /// Print the webhook signing key of a data directory (made if missing) as
    /// `BUILDS_WEBHOOK_KEY=…` and `BUILDS_WEBHOOK_PUBLIC_KEY=…` lines, for
    /// deployments (the template's WebhookKey and WebhookPublicKey).
    WebhookKey {
        /// Where the key lives (`DATA_DIR/webhook.key`).
        #[arg(long, default_value = "./.builds", env = "BUILDS_DATA_DIR")]
        data_dir: PathBuf,
    },
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

/// Runs a client command: exit 0 when it succeeded (with --follow: when the
/// job did), 1 otherwise, errors printed.
fn client_command(work: impl std::future::Future<Output = anyhow::Result<bool>>) -> ExitCode {
    let mut ok = false;
    let code = block_on(async {
        ok = work.await?;
        Ok(())
    });
    if code == ExitCode::SUCCESS && !ok {
        ExitCode::FAILURE
    } else {
        code
    }
}

/// Client commands print and exit: like other Unix tools they end quietly on
/// a closed pipe (`builds list | head`) instead of panicking on EPIPE. The
/// long-running commands keep Rust's default (SIGPIPE ignored), so a socket
/// closed under the server is an error, not a death.
fn die_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default touches no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    use client::commands;
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Worker(_) | Command::Run(_)
    ) {
        die_quietly_on_closed_pipe();
    }
    match cli.command {
        Command::Submit(args) => client_command(commands::submit(args)),
        Command::Show(args) => client_command(commands::show(args)),
        Command::List(args) => client_command(commands::list(args)),
        Command::Cancel(args) => client_command(commands::cancel(args)),
        Command::Start(args) => client_command(commands::start(args)),
        Command::Artifacts(args) => client_command(commands::artifacts(args)),
        Command::Resubmit(args) => client_command(commands::resubmit(args)),
        Command::Manifest {
            command: Some(ManifestCommand::Check { files, images }),
            ..
        } => manifest_check::run(&files, images.as_deref()),
        Command::Manifest {
            command: None,
            show,
        } => client_command(commands::manifest(show)),
        Command::Serve(args) => {
            init_logging();
            block_on(serve::run(args))
        }
        Command::WebhookKey { data_dir } => {
            match builds_worker::triggers::webhook_key_from_file(&data_dir.join("webhook.key")) {
                Ok(key) => {
                    println!("BUILDS_WEBHOOK_KEY={}", hex::encode(key.to_bytes()));
                    println!(
                        "BUILDS_WEBHOOK_PUBLIC_KEY={}",
                        builds_worker::triggers::public_key_base64(&key)
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("builds: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token { command } => block_on(token::run(command)),
        Command::Secret { command } => client_command(client::secrets::run(command)),
        Command::Ssh(args) => client_command(client::shell::run(args)),
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
        Command::Run(args) => client_command(run::run(args)),
    }
}
