//! Job start: submit → first byte of the first task's output, against the
//! limit: a bare boot of the same image with the same QEMU settings and
//! accelerator, to the first shell command answered over SSH.

use crate::service::{guest_memory_mb, median_p90, Service};
use anyhow::Context;
use builds_worker::config::accel_from_env;
use builds_worker::image;
use builds_worker::ssh::{control_dir, Ssh};
use builds_worker::vm::{choose_accel, Accel, Vm, VmSpec};
use std::path::Path;
use std::time::{Duration, Instant};

const MANIFEST: &str = "image: debian/bookworm\ntasks:\n  - first: echo first-byte\n";
const LIMIT: Duration = Duration::from_secs(300);

/// Boots the image bare under `accel` and runs `true` over SSH; seconds from start.
async fn bare_boot(images: &Path, accel: Accel) -> anyhow::Result<f64> {
    let image_dir = image::image_dir(images, "debian/bookworm");
    let key = image::ensure_worker_key(images)?;
    let scratch = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let spec = VmSpec {
        image: &image_dir,
        scratch: scratch.path(),
        ssh_port: port,
        accel,
        memory_mb: guest_memory_mb(),
        cpus: 2,
    };
    let (mut vm, _) = Vm::boot_until_ready(spec, LIMIT, 3, |_, _| {}).await?;
    let ssh = Ssh::new(port, &key, &image_dir, &control_dir()?);
    ssh.connect(Duration::from_secs(60)).await?;
    ssh.check("true", "true", b"").await?;
    let elapsed = started.elapsed().as_secs_f64();
    ssh.close().await;
    vm.kill().await;
    Ok(elapsed)
}

/// Where one job's start went, in seconds from submit.
struct JobStart {
    claimed: f64,
    guest_up: f64,
    task_running: f64,
    first_byte: f64,
}

async fn one_job(service: &Service) -> anyhow::Result<JobStart> {
    let started = Instant::now();
    let id = service.submit(MANIFEST).await?;
    let (mut claimed, mut guest_up, mut task_running) = (None, None, None);
    loop {
        anyhow::ensure!(started.elapsed() < LIMIT, "job {id} did not start in time");
        let job = service.job(id).await?;
        let now = started.elapsed().as_secs_f64();
        if claimed.is_none() && job["status"] != "queued" {
            claimed = Some(now);
        }
        if guest_up.is_none() {
            if let Some(url) = job["setup_log"].as_str() {
                if service.text(url).await?.contains("guest up in") {
                    guest_up = Some(started.elapsed().as_secs_f64());
                }
            }
        }
        if let Some(url) = job["tasks"][0]["log"].as_str() {
            task_running.get_or_insert(now);
            if service.text(url).await?.contains("first-byte") {
                let first_byte = started.elapsed().as_secs_f64();
                service.wait_end(id, LIMIT).await?;
                return Ok(JobStart {
                    claimed: claimed.unwrap_or(first_byte),
                    guest_up: guest_up.unwrap_or(first_byte),
                    task_running: task_running.unwrap_or(first_byte),
                    first_byte,
                });
            }
        }
        anyhow::ensure!(
            !matches!(
                job["status"].as_str(),
                Some("failed" | "timeout" | "cancelled")
            ),
            "job {id} ended without output: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(images: &Path, runs: usize) -> anyhow::Result<()> {
    let accel = choose_accel(
        accel_from_env()?,
        &image::image_dir(images, "debian/bookworm"),
    )
    .await;
    println!(
        "job start: {runs} bare boots, then {runs} jobs, one at a time ({})",
        accel.name()
    );
    let mut bare = Vec::new();
    for i in 0..runs {
        let seconds = bare_boot(images, accel).await.context("bare boot")?;
        println!("  bare boot {}: {seconds:.2} s", i + 1);
        bare.push(seconds);
    }
    let service = Service::start(Some(images), 1).await?;
    let mut jobs = Vec::new();
    for i in 0..runs {
        let job = one_job(&service).await?;
        println!(
            "  job {}: first byte {:.2} s (claimed {:.2}, guest up {:.2}, task running {:.2})",
            i + 1,
            job.first_byte,
            job.claimed,
            job.guest_up,
            job.task_running
        );
        jobs.push(job);
    }
    let (bare_median, bare_p90) = median_p90(&bare);
    let column = |f: fn(&JobStart) -> f64| median_p90(&jobs.iter().map(f).collect::<Vec<_>>());
    let (first_median, first_p90) = column(|j| j.first_byte);
    println!();
    println!("| measure | median | p90 |");
    println!("|---|---|---|");
    println!("| bare boot to a shell command (the limit) | {bare_median:.2} s | {bare_p90:.2} s |");
    println!("| submit → first byte of the first task | {first_median:.2} s | {first_p90:.2} s |");
    println!(
        "| ratio (goal ≤ 1.3×) | {:.2}× | {:.2}× |",
        first_median / bare_median,
        first_p90 / bare_p90
    );
    println!();
    println!("where the time goes (medians, seconds from submit):");
    for (name, f) in [
        (
            "claimed by the worker",
            (|j: &JobStart| j.claimed) as fn(&JobStart) -> f64,
        ),
        ("guest up (sshd answers)", |j| j.guest_up),
        ("first task running (setup done)", |j| j.task_running),
        ("first byte of output", |j| j.first_byte),
    ] {
        println!("  {name:34} {:6.2}", column(f).0);
    }
    Ok(())
}
