//! Density: memory the service spends per running job beyond the guest's own
//! memory, with 1, 2 and 4 jobs at once. Counted: this process's growth (API,
//! worker, log shipping), its SSH connection processes, and each QEMU process's
//! resident memory outside the guest-RAM mapping (found in /proc/PID/smaps as
//! the mapping the size of the guest's memory).

use crate::service::{guest_memory_mb, Service};
use std::path::Path;
use std::time::{Duration, Instant};

/// Resident kB of a process, from /proc/PID/status.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Resident kB of a QEMU process outside its guest RAM mapping.
fn qemu_overhead_kb(pid: u32, guest_kb: u64) -> u64 {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return 0;
    };
    let (mut total, mut guest, mut size) = (0, 0, 0);
    for line in smaps.lines() {
        let value = |rest: &str| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        };
        if let Some(rest) = line.strip_prefix("Size:") {
            size = value(rest);
        } else if let Some(rest) = line.strip_prefix("Rss:") {
            let rss = value(rest);
            total += rss;
            if size == guest_kb {
                guest += rss;
            }
        }
    }
    total - guest
}

/// Every process id in /proc.
fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// SSH processes talking to guests (`builds-guest` is the host alias the
/// worker's SSH commands use): the per-job masters (which fork into the
/// background) and the per-task clients.
fn guest_ssh_processes() -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            comm.trim() == "ssh" && String::from_utf8_lossy(&cmdline).contains("builds-guest")
        })
        .collect()
}

/// Children of `parent` whose command name is `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid …
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            comm.ends_with(&format!("({name}")) && ppid == Some(parent)
        })
        .collect()
}

pub async fn run(images: &Path, counts: &[usize]) -> anyhow::Result<()> {
    let me = std::process::id();
    let guest_kb = u64::from(guest_memory_mb()) * 1024;
    println!(
        "density: guests of {} MiB; memory beyond guest RAM while every job's task runs",
        guest_memory_mb()
    );
    let mut rows = Vec::new();
    for &n in counts {
        let service = Service::start(Some(images), n).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let base = rss_kb(me);
        let mut ids = Vec::new();
        for _ in 0..n {
            ids.push(
                service
                    .submit("image: debian/bookworm\ntasks:\n  - hold: sleep 60\n")
                    .await?,
            );
        }
        let started = Instant::now();
        loop {
            let mut running = 0;
            for id in &ids {
                if service.job(*id).await?["tasks"][0]["status"] == "running" {
                    running += 1;
                }
            }
            if running == n {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(900),
                "jobs did not start"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let ours = rss_kb(me).saturating_sub(base);
        let ssh: u64 = guest_ssh_processes().into_iter().map(rss_kb).sum();
        let qemus = children_named(me, "qemu-system-x86");
        let qemu: u64 = qemus.iter().map(|&p| qemu_overhead_kb(p, guest_kb)).sum();
        rows.push((n, qemus.len(), ours, ssh, qemu));
        for id in &ids {
            let _ = service
                .http
                .post(format!("{}/api/jobs/{id}/cancel", service.base))
                .bearer_auth(&service.token)
                .send()
                .await;
        }
        for id in &ids {
            service.wait_end(*id, Duration::from_secs(120)).await?;
        }
        drop(service);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    println!();
    println!(
        "| jobs | guests | service growth | ssh | QEMU beyond guest RAM | per job (goal < 64 MB) |"
    );
    println!("|---|---|---|---|---|---|");
    for (n, guests, ours, ssh, qemu) in rows {
        let mb = |kb: u64| kb as f64 / 1024.0;
        println!(
            "| {n} | {guests} | {:.1} MB | {:.1} MB | {:.1} MB | {:.1} MB |",
            mb(ours),
            mb(ssh),
            mb(qemu),
            mb(ours + ssh + qemu) / n as f64
        );
    }
    Ok(())
}
