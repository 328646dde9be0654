//! One QEMU guest per job: direct kernel boot of an image, a throw-away
//! copy-on-write overlay, user-mode networking with SSH forwarded on loopback.
//! The guest dies with its [`Vm`] (kill on drop).

use crate::config::AccelChoice;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// The accelerator a guest runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => &["-accel", "tcg,thread=multi,tb-size=64", "-cpu", "max"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (software emulation)",
        }
    }
}

const KERNEL_ARGS: &str = "root=/dev/vda rw console=ttyS0 init=/sbin/builds-init net.ifnames=0 \
     quiet loglevel=3 mitigations=off tsc=reliable";

/// Decides the accelerator. `Auto` boots the image's kernel under KVM and
/// watches it get as far as running the initramfs: `/dev/kvm` can exist and
/// still not run a stock kernel (nested "PVM" devices), so its presence alone
/// proves nothing.
pub async fn choose_accel(choice: AccelChoice, image: &Path) -> Accel {
    match choice {
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Auto => {
            if std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .is_err()
            {
                return Accel::Tcg;
            }
            match probe_kvm(image).await {
                Ok(true) => Accel::Kvm,
                Ok(false) | Err(_) => Accel::Tcg,
            }
        }
    }
}

async fn probe_kvm(image: &Path) -> anyhow::Result<bool> {
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-m",
            "256",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
        ])
        .args(Accel::Kvm.qemu_args())
        .arg("-kernel")
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(image.join("initrd.img"))
        .args(["-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = child.stdout.take().context("probe stdout")?;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), stdout.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if text.contains("Run /init") || text.contains("Freeing unused kernel") {
                    return Ok(true);
                }
            }
            Ok(Err(_)) => break,
            Err(_) => continue,
        }
    }
    Ok(false)
}

/// A running guest.
pub struct Vm {
    child: Child,
    pub ssh_port: u16,
    pub accel: Accel,
    pub console_log: PathBuf,
}

/// Why a guest did not come up.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// QEMU itself ended early: a bad image, or an emulator crash (TCG has
    /// rare races that abort QEMU during boot), which a fresh boot survives.
    #[error("QEMU exited before the guest was up ({status}): {stderr}")]
    Exited {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("the guest did not start sshd within {secs}s (console: {console})")]
    TimedOut { secs: u64, console: String },
    #[error("watching the guest failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How to boot a guest.
#[derive(Clone, Copy)]
pub struct VmSpec<'a> {
    pub image: &'a Path,
    /// Directory for this job's overlay and console log (removed by the caller).
    pub scratch: &'a Path,
    pub ssh_port: u16,
    pub accel: Accel,
    pub memory_mb: u32,
    pub cpus: u32,
}

impl Vm {
    /// Makes the job's overlay on the image's base disk and starts QEMU.
    pub async fn boot(spec: VmSpec<'_>) -> anyhow::Result<Vm> {
        std::fs::create_dir_all(spec.scratch)?;
        let overlay = spec.scratch.join("overlay.qcow2");
        // A fresh overlay every boot: a retried boot must not see the last one's writes.
        match std::fs::remove_file(&overlay) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        let base = spec.image.join("base.qcow2").canonicalize()?;
        let status = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&base)
            .arg(&overlay)
            .status()
            .await
            .context("running qemu-img")?;
        if !status.success() {
            bail!("qemu-img could not create the overlay ({status})");
        }
        let console_log = spec.scratch.join("console.log");
        let mut command = Command::new("qemu-system-x86_64");
        // If the worker dies (even by SIGKILL), its guests die with it.
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .args([
                "-machine",
                "q35",
                "-nographic",
                "-nodefaults",
                "-no-user-config",
            ])
            .args(spec.accel.qemu_args())
            .args([
                "-m",
                &spec.memory_mb.to_string(),
                "-smp",
                &spec.cpus.to_string(),
            ])
            .arg("-kernel")
            .arg(spec.image.join("vmlinuz"))
            .arg("-initrd")
            .arg(spec.image.join("initrd.img"))
            .args(["-append", KERNEL_ARGS])
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
                overlay.display()
            ))
            .args(["-netdev"])
            .arg(format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22",
                spec.ssh_port
            ))
            .args(["-device", "virtio-net-pci,netdev=net0"])
            .args(["-device", "virtio-rng-pci"])
            .arg("-serial")
            .arg(format!("file:{}", console_log.display()))
            .args(["-monitor", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting qemu-system-x86_64 (is qemu-system-x86 installed?)")?;
        Ok(Vm {
            child,
            ssh_port: spec.ssh_port,
            accel: spec.accel,
            console_log,
        })
    }

    /// Waits until the guest's sshd answers with its banner. Each attempt has a
    /// short timeout: a connection made before sshd listens can hang.
    pub async fn wait_for_ssh(&mut self, timeout: Duration) -> Result<Duration, BootError> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr).await;
                }
                return Err(BootError::Exited {
                    status,
                    stderr: stderr.trim().to_string(),
                });
            }
            if banner(self.ssh_port).await {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill().await;
        Err(BootError::TimedOut {
            secs: timeout.as_secs(),
            console: self.console_tail(),
        })
    }

    /// Boots a guest and waits for its sshd, booting afresh (new overlay) when
    /// QEMU exits early, up to `attempts` boots in all. `on_retry` hears why.
    pub async fn boot_until_ready(
        spec: VmSpec<'_>,
        timeout: Duration,
        attempts: u32,
        mut on_retry: impl FnMut(&BootError, u32),
    ) -> anyhow::Result<(Vm, Duration)> {
        let mut attempt = 1;
        loop {
            let mut vm = Vm::boot(spec).await?;
            match vm.wait_for_ssh(timeout).await {
                Ok(booted) => return Ok((vm, booted)),
                Err(err @ BootError::Exited { .. }) if attempt < attempts => {
                    attempt += 1;
                    on_retry(&err, attempt);
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The last lines the guest printed on its console.
    pub fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.console_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Stops the guest now.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

async fn banner(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut buf = [0u8; 8];
        stream.read_exact(&mut buf).await?;
        Ok::<bool, std::io::Error>(&buf[..] == b"SSH-2.0-")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}
