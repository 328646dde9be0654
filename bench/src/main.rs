//! `builds-bench`: benchmarks of the finished path, each measured against its
//! physical limit in the same run (these machines are shared and noisy, so the
//! ratio is the figure). Prints tables; asserts nothing. See bench/README.md.

mod api;
mod density;
mod job_start;
mod logs;
mod service;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "builds-bench",
    about = "Benchmarks of builds against their limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Images {
    /// Directory of guest images holding debian/bookworm.
    #[arg(long, env = "BUILDS_TEST_IMAGES", default_value = "./.builds/images")]
    images: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Submit → first byte of the first task's output, against a bare boot
    /// of the same image to a shell command.
    JobStart {
        #[command(flatten)]
        images: Images,
        /// Jobs (and bare boots) to measure.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// GET a job and POST a job under wrk, against a hello-world server on
    /// the same stack.
    Api {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Open connections.
        #[arg(long, default_value_t = 16)]
        connections: u32,
    },
    /// A task printing MB megabytes against the same command writing to
    /// /dev/null, and the lag from a printed line to a reader seeing it.
    Logs {
        #[command(flatten)]
        images: Images,
        #[arg(long, default_value_t = 20)]
        mb: u32,
    },
    /// Worker memory beyond guest memory with 1, 2 and 4 concurrent jobs.
    Density {
        #[command(flatten)]
        images: Images,
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        jobs: Vec<usize>,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // Errors and warnings of the service under test go to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let check = |images: &Images| {
        anyhow::ensure!(
            builds_worker::image::is_ready(&images.images, "debian/bookworm"),
            "no debian/bookworm image in {} (builds image build debian/bookworm --images DIR, or --images)",
            images.images.display()
        );
        Ok(())
    };
    match Cli::parse().command {
        Command::JobStart { images, runs } => {
            check(&images)?;
            job_start::run(&images.images, runs.max(1)).await
        }
        Command::Api {
            seconds,
            connections,
        } => api::run(seconds, connections).await,
        Command::Logs { images, mb } => {
            check(&images)?;
            logs::run(&images.images, mb).await
        }
        Command::Density { images, jobs } => {
            check(&images)?;
            density::run(&images.images, &jobs).await
        }
    }
}
