//! The service as `builds serve` runs it, in this process: the embedded
//! backend in a temporary directory, every endpoint on a loopback port, a token,
//! and (when asked) an in-process worker.

use anyhow::Context;
use builds_domain::token::{mint_token, Scope};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Service {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl Service {
    /// Starts the API, and a worker with `slots` slots when `images` is given.
    pub async fn start(images: Option<&Path>, slots: usize) -> anyhow::Result<Service> {
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let backend = builds_storage::Backend::embedded(dir.path(), &base)?;
        let config = builds_functions::ApiConfig::new(&base);
        let app =
            builds_functions::api_router(builds_functions::AppState::new(backend.clone(), config));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let now = builds_domain::job::now();
        let (token, record) =
            mint_token("bench", vec![Scope::JobsRead, Scope::JobsWrite], None, now);
        backend.store.put_token(&record).await?;
        let stop = match images {
            Some(images) => {
                let mut config = builds_worker::WorkerConfig::new(
                    images.to_path_buf(),
                    dir.path().join("work"),
                    &base,
                );
                config.concurrency = slots.max(1);
                config.accel = builds_worker::config::accel_from_env()?;
                config.memory_mb = guest_memory_mb();
                let (stop, shutdown) = tokio::sync::watch::channel(false);
                tokio::spawn(builds_worker::Worker::new(backend.clone(), config).run(shutdown));
                Some(stop)
            }
            None => None,
        };
        Ok(Service {
            base,
            token,
            http: reqwest::Client::new(),
            _dir: dir,
            _stop: stop,
        })
    }

    pub async fn submit(&self, manifest: &str) -> anyhow::Result<u64> {
        let response: Value = self
            .http
            .post(format!("{}/api/jobs", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "manifest": manifest }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        response["id"].as_u64().context("no job id")
    }

    pub async fn job(&self, id: u64) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/api/jobs/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// The whole text behind a log link.
    pub async fn text(&self, url: &str) -> anyhow::Result<String> {
        Ok(self.http.get(url).send().await?.text().await?)
    }

    /// Polls until the job has ended; fails past `limit`.
    pub async fn wait_end(&self, id: u64, limit: Duration) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let job = self.job(id).await?;
            if matches!(
                job["status"].as_str(),
                Some("success" | "failed" | "timeout" | "cancelled")
            ) {
                return Ok(job);
            }
            anyhow::ensure!(started.elapsed() < limit, "job {id} did not end in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Guest memory for benchmark jobs (`BUILDS_GUEST_MEMORY`, default 1024 MiB).
pub fn guest_memory_mb() -> u32 {
    std::env::var("BUILDS_GUEST_MEMORY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Median and 90th percentile of `values` (sorted copy), or zeros.
pub fn median_p90(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}
