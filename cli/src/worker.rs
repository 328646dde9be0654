//! `builds worker`: a worker process on its own, sharing the backend with a
//! `builds serve --workers 0` (the embedded SQLite file is safe to share).

use crate::backend_args::BackendArgs;
use builds_worker::{Worker, WorkerConfig};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Jobs to run at once.
    #[arg(long, default_value = "1", env = "BUILDS_WORKERS")]
    workers: usize,
    /// Guest images [default: DATA_DIR/images].
    #[arg(long)]
    images: Option<PathBuf>,
    /// Longest a job may run, in seconds.
    #[arg(long, default_value = "2700", env = "BUILDS_JOB_DEADLINE")]
    deadline: u64,
    /// Seconds a job's lease (and its message's visibility) lasts without renewal.
    #[arg(long, default_value = "60")]
    lease: u64,
    /// Public URL of the API, for JOB_URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "BUILDS_ORIGIN")]
    origin: String,
    /// Run the SSH gateway into held guests here (`builds ssh`), e.g.
    /// 127.0.0.1:2222; without it guests are not held for SSH.
    #[arg(long, env = "BUILDS_SSH_ADDR", value_name = "ADDR")]
    ssh_addr: Option<std::net::SocketAddr>,
    /// The host `builds ssh` is told to reach [default: the address's IP].
    #[arg(long, env = "BUILDS_SSH_HOST", value_name = "HOST")]
    ssh_host: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let backend = args.backend.open(&args.origin).await?;
    let images = args
        .images
        .unwrap_or_else(|| args.backend.data_dir.join("images"));
    let mut config = WorkerConfig::new(images, args.backend.data_dir.join("work"), &args.origin);
    config.concurrency = args.workers.max(1);
    config.deadline = Duration::from_secs(args.deadline);
    config.lease = Duration::from_secs(args.lease.max(3));
    config.accel = builds_worker::config::accel_from_env()?;
    config.triggers = crate::trigger_settings::trigger_settings(&args.backend.data_dir)?;
    config.shell = args.ssh_addr.map(|bind| {
        builds_worker::config::ShellSettings::new(bind, args.ssh_host.clone(), &config.images_dir)
    });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    println!("builds: worker {} running", config.worker_id);
    Worker::new(backend, config).run(shutdown).await;
    Ok(())
}
