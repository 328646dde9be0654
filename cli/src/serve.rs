//! `builds serve`: the whole service on one machine.

use crate::backend_args::BackendArgs;
use builds_functions::config::parse_image_list;
use builds_functions::{api_router, ApiConfig, AppState};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BUILDS_ADDR")]
    addr: SocketAddr,
    /// Scheme, host and port that links in responses start with [default: http://ADDR].
    #[arg(long, env = "BUILDS_ORIGIN")]
    origin: Option<String>,
    /// Directory of guest images (DIR/<distro>/<release>/) [default:
    /// DATA_DIR/images when it exists]; manifests naming another image are
    /// refused. Without a directory, BUILDS_IMAGES (comma-separated) lists the
    /// images; without either, any image is accepted.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Workers to run in-process, each running one job at a time in a guest
    /// (0: API only).
    #[arg(long, default_value = "1", env = "BUILDS_WORKERS")]
    workers: usize,
    /// Longest a job may run, in seconds.
    #[arg(long, default_value = "2700", env = "BUILDS_JOB_DEADLINE")]
    deadline: u64,
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

/// Image names a directory of images offers: each complete `DIR/<distro>/<release>/`.
pub fn offered_images(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut images = Vec::new();
    for distro in std::fs::read_dir(dir)? {
        let distro = distro?;
        if !distro.file_type()?.is_dir() {
            continue;
        }
        for release in std::fs::read_dir(distro.path())? {
            let release = release?;
            let name = format!(
                "{}/{}",
                distro.file_name().to_string_lossy(),
                release.file_name().to_string_lossy()
            );
            // A half-built (or failed) image is not offered.
            if release.file_type()?.is_dir() && builds_worker::image::is_ready(dir, &name) {
                images.push(name);
            }
        }
    }
    images.sort();
    Ok(images)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let origin = args.origin.unwrap_or_else(|| format!("http://{addr}"));
    let backend = args.backend.open(&origin).await?;
    let mut config = ApiConfig::new(&origin);
    let images_dir = args
        .images
        .clone()
        .unwrap_or_else(|| args.backend.data_dir.join("images"));
    config.images = if args.images.is_some() || images_dir.is_dir() {
        Some(offered_images(&images_dir).map_err(|err| {
            anyhow::anyhow!("cannot list images in {}: {err}", images_dir.display())
        })?)
    } else {
        std::env::var("BUILDS_IMAGES")
            .ok()
            .map(|list| parse_image_list(&list))
    };
    let triggers = crate::trigger_settings::trigger_settings(&args.backend.data_dir)?;
    config.webhook_public_key = triggers.public_key();
    let app = api_router(AppState::new(backend.clone(), config));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    if args.workers > 0 {
        let mut worker_config = builds_worker::WorkerConfig::new(
            images_dir,
            args.backend.data_dir.join("work"),
            &origin,
        );
        worker_config.concurrency = args.workers;
        worker_config.deadline = std::time::Duration::from_secs(args.deadline);
        worker_config.accel = builds_worker::config::accel_from_env()?;
        worker_config.triggers = triggers;
        worker_config.shell = args.ssh_addr.map(|bind| {
            builds_worker::config::ShellSettings::new(
                bind,
                args.ssh_host.clone(),
                &worker_config.images_dir,
            )
        });
        let worker = builds_worker::Worker::new(backend, worker_config);
        workers.push(tokio::spawn(worker.run(shutdown)));
    }
    tracing::info!(%addr, %origin, backend = ?args.backend.backend, workers = args.workers, "serving the builds API");
    println!("builds: serving on {origin}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let _ = stop.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    Ok(())
}
