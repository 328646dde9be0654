//! `builds run MANIFEST`: the whole path on this machine. Builds the image if
//! missing, starts the service (API and a worker) in-process on the embedded
//! backend, submits the manifest through the API, and streams its logs to the
//! end. Exits 0 when the job succeeds.

use crate::client::api::{Api, RetryPolicy};
use crate::client::follow::{follow, FollowOptions};
use builds_domain::manifest;
use builds_domain::token::{mint_token, Scope};
use builds_functions::{api_router, ApiConfig, AppState};
use builds_storage::Backend;
use builds_worker::{Worker, WorkerConfig};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The build manifest.
    manifest: PathBuf,
    /// Where the embedded backend keeps its data.
    #[arg(long, default_value = "./.builds", env = "BUILDS_DATA_DIR")]
    data_dir: PathBuf,
    /// Guest images [default: DATA_DIR/images].
    #[arg(long)]
    images: Option<PathBuf>,
    /// Longest the job may run, in seconds.
    #[arg(long, default_value = "2700")]
    deadline: u64,
}

pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.manifest)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.manifest.display()))?;
    let parsed = manifest::parse(&text).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!(
            "{} is not a valid manifest:\n{}",
            args.manifest.display(),
            lines.join("\n")
        )
    })?;
    let images = args
        .images
        .clone()
        .unwrap_or_else(|| args.data_dir.join("images"));
    let image_name = parsed.image.clone();
    let images_for_build = images.clone();
    tokio::task::spawn_blocking(move || {
        builds_worker::image::build(&images_for_build, &image_name)
    })
    .await??;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    let backend = Backend::embedded(&args.data_dir, &origin)?;
    let triggers = crate::trigger_settings::trigger_settings(&args.data_dir)?;
    let mut config = ApiConfig::new(&origin);
    config.images = Some(crate::serve::offered_images(&images)?);
    config.webhook_public_key = triggers.public_key();
    let app = api_router(AppState::new(backend.clone(), config));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut worker_config = WorkerConfig::new(images, args.data_dir.join("work"), &origin);
    worker_config.deadline = std::time::Duration::from_secs(args.deadline);
    worker_config.accel = builds_worker::config::accel_from_env()?;
    worker_config.triggers = triggers;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(Worker::new(backend.clone(), worker_config).run(shutdown));

    let now = builds_domain::job::now();
    let (token, record) = mint_token(
        "local",
        vec![Scope::JobsRead, Scope::JobsWrite],
        Some(now + time::Duration::days(1)),
        now,
    );
    backend.store.put_token(&record).await?;
    let api = Api::new(&origin, &token, RetryPolicy::default())?.quiet_retries();
    let submitted = api
        .post_json(
            "/api/jobs",
            &serde_json::json!({ "manifest": text, "note": args.manifest.display().to_string() }),
        )
        .await?;
    let id = submitted["id"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("the API returned no job id: {submitted}"))?;
    eprintln!("builds: job {id} submitted");
    let options = FollowOptions {
        poll: std::time::Duration::from_millis(300),
        ..FollowOptions::default()
    };
    let followed = follow(&api, id, &mut std::io::stdout(), options).await?;
    let _ = stop.send(true);
    let _ = worker.await;
    Ok(followed.succeeded())
}
