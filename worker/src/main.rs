//! `builds-worker`: the worker for EC2 hosts. Configuration comes from the
//! environment (see README): the AWS backend's `BUILDS_*` names and the
//! worker's own `BUILDS_WORKERS`, `BUILDS_IMAGES_DIR`, `BUILDS_WORK_DIR`, …

use anyhow::Context;
use builds_storage::aws::AwsNames;
use builds_storage::{Backend, UrlSigner};
use builds_worker::{Worker, WorkerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = WorkerConfig::from_env()?;
    // The worker signs nothing; the key is only needed by the API.
    let backend = Backend::aws(&AwsNames::from_env(), UrlSigner::new(Vec::new()))
        .await
        .context("connecting to the AWS backend")?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop.send(true);
    });
    Worker::new(backend, config).run(shutdown).await;
    Ok(())
}
