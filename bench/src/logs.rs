//! Logs: a task that prints MB megabytes, against the same command in the
//! same guest writing to /dev/null (nobody reading: the limit); and the lag
//! from a line printed to a reader of the log seeing it. For the lag the task
//! calls this process over the guest's network (10.0.2.2 is the host's
//! loopback) just before it prints each line, so both ends are timed on the
//! host's clock.

use crate::service::{median_p90, Service};
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MARKS: usize = 20;

pub async fn run(images: &Path, mb: u32) -> anyhow::Result<()> {
    let marks: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let recorder = Arc::clone(&marks);
    let app = axum::Router::new().route(
        "/mark/{i}",
        axum::routing::get(move |axum::extract::Path(i): axum::extract::Path<usize>| {
            let recorder = Arc::clone(&recorder);
            async move {
                if let Ok(mut marks) = recorder.lock() {
                    marks.insert(i, Instant::now());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let bytes = u64::from(mb) * 1_000_000;
    // base64 of zeros: cheap to make, so the figure is about the output path.
    let manifest = format!(
        r#"image: debian/bookworm
tasks:
  - raw: |
      set +x
      s=$(date +%s%N); head -c {bytes} /dev/zero | base64 -w 76 > /dev/null; e=$(date +%s%N)
      echo "raw_ns=$((e-s))" > ~/times
  - printed: |
      set +x
      s=$(date +%s%N); head -c {bytes} /dev/zero | base64 -w 76; e=$(date +%s%N)
      echo "printed_ns=$((e-s))" >> ~/times
  - lag: |
      set +x
      for i in $(seq 1 {MARKS}); do curl -fsS -o /dev/null http://10.0.2.2:{port}/mark/$i; echo "mark $i"; sleep 0.3; done
  - report: |
      set +x
      cat ~/times
"#
    );
    let service = Service::start(Some(images), 1).await?;
    let id = service.submit(&manifest).await?;
    println!("logs: job {id} prints {mb} MB (base64 of zeros) and {MARKS} timed lines");

    // Follow the lag task's log the way a reader would: poll from the last
    // offset with a Range request.
    let limit = Duration::from_secs(1800);
    let started = Instant::now();
    let mut seen: HashMap<usize, Instant> = HashMap::new();
    let mut text = String::new();
    loop {
        anyhow::ensure!(started.elapsed() < limit, "the job took too long");
        let job = service.job(id).await?;
        if let Some(url) = job["tasks"][2]["log"].as_str() {
            let response = service
                .http
                .get(url)
                .header("Range", format!("bytes={}-", text.len()))
                .send()
                .await?;
            if response.status().as_u16() == 206 {
                let now = Instant::now();
                text.push_str(&response.text().await?);
                for line in text.lines() {
                    if let Some(i) = line.strip_prefix("mark ").and_then(|n| n.parse().ok()) {
                        seen.entry(i).or_insert(now);
                    }
                }
            }
        }
        if seen.len() >= MARKS
            || matches!(
                job["status"].as_str(),
                Some("success" | "failed" | "timeout" | "cancelled")
            )
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = service.wait_end(id, limit).await?;
    anyhow::ensure!(job["status"] == "success", "the job did not succeed: {job}");
    let report = service
        .text(job["tasks"][3]["log"].as_str().context("report log")?)
        .await?;
    let value = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|ns| ns / 1e9)
    };
    let raw = value("raw_ns=").context("no raw time")?;
    let printed = value("printed_ns=").context("no printed time")?;
    let printed_log = service
        .http
        .get(job["tasks"][1]["log"].as_str().context("printed log")?)
        .send()
        .await?
        .bytes()
        .await?;
    let lags: Vec<f64> = {
        let marks = marks.lock().map(|m| m.clone()).unwrap_or_default();
        seen.iter()
            .filter_map(|(i, at)| marks.get(i).map(|m| at.duration_since(*m).as_secs_f64()))
            .collect()
    };
    let (lag_median, lag_p90) = median_p90(&lags);
    let lag_max = lags.iter().cloned().fold(0.0, f64::max);
    let output_mb = printed_log.len() as f64 / 1e6;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| command writing to /dev/null (the limit) | {raw:.2} s |");
    println!("| same command, output through the service | {printed:.2} s ({output_mb:.1} MB logged, {:.1} MB/s) |", output_mb / printed);
    println!(
        "| throughput vs the limit (goal ≥ 90%) | {:.0}% |",
        100.0 * raw / printed
    );
    println!(
        "| lag, line printed → reader sees it ({} lines; goal < 1 s) | median {lag_median:.2} s, p90 {lag_p90:.2} s, max {lag_max:.2} s |",
        lags.len()
    );
    Ok(())
}
