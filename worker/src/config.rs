//! Worker configuration, from the environment (`builds-worker`) or the local
//! server's flags (`builds serve --workers N`).

use std::path::PathBuf;
use std::time::Duration;

/// Which accelerator guests get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// Probe: KVM if a guest really boots under it, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Guest images: `<images>/<distro>/<release>/` (`BUILDS_IMAGES_DIR`).
    pub images_dir: PathBuf,
    /// Scratch space for per-job overlays and sockets (`BUILDS_WORK_DIR`).
    pub work_dir: PathBuf,
    /// Jobs run at once (`BUILDS_WORKERS`, default 1).
    pub concurrency: usize,
    /// Longest a job may run (`BUILDS_JOB_DEADLINE` seconds, default 2700 = 45 min).
    pub deadline: Duration,
    /// Guest memory in MiB (`BUILDS_GUEST_MEMORY`, default 2048).
    pub memory_mb: u32,
    /// Guest vCPUs (`BUILDS_GUEST_CPUS`, default 2).
    pub cpus: u32,
    /// `BUILDS_ACCEL`: `auto` (default), `kvm` or `tcg`.
    pub accel: AccelChoice,
    /// How long a lease lasts without renewal; renewed every third of it.
    pub lease: Duration,
    /// A message received more often than this fails its job (dead letter).
    pub max_receives: u32,
    /// Names this worker in job records (`runner`).
    pub worker_id: String,
    /// Public URL of the API, for `JOB_URL` (`BUILDS_ORIGIN`).
    pub origin: String,
    /// Whether the log links in webhook payloads are signed with the backend's
    /// key (the API must share it: `BUILDS_SIGNING_KEY`); without, they are null.
    pub sign_log_links: bool,
    /// Webhook key and SMTP server for triggers.
    pub triggers: crate::triggers::TriggerSettings,
    /// How often the dead-letter queue is drained: the jobs of messages
    /// received too often are failed there (`BUILDS_DEAD_LETTER_SWEEP`
    /// seconds, default 30).
    pub dead_letter_sweep: Duration,
    /// The SSH gateway into held guests; none unless `BUILDS_SSH_ADDR` is set.
    pub shell: Option<ShellSettings>,
    /// How long a failed build's guest stays up for SSH (`BUILDS_FAILED_HOLD`
    /// seconds, default 600), when its owner has a key to connect with.
    pub failed_hold: Duration,
}

/// Where the SSH gateway listens and what users are told to connect to.
#[derive(Debug, Clone)]
pub struct ShellSettings {
    /// `BUILDS_SSH_ADDR`, e.g. `0.0.0.0:2222` (port 0: any free port).
    pub bind: std::net::SocketAddr,
    /// `BUILDS_SSH_HOST` (default: this machine's host name).
    pub public_host: String,
    /// The gateway's host key (`<images>/gateway_host_key`, made on first use).
    pub host_key: PathBuf,
}

impl ShellSettings {
    /// Listening on `bind`; users told to reach `public_host`, else the bound
    /// address, else (bound to every address) this machine's host name.
    pub fn new(
        bind: std::net::SocketAddr,
        public_host: Option<String>,
        images: &std::path::Path,
    ) -> Self {
        let public_host = public_host.unwrap_or_else(|| {
            if bind.ip().is_unspecified() {
                host_name()
            } else {
                bind.ip().to_string()
            }
        });
        ShellSettings {
            bind,
            public_host,
            host_key: images.join("gateway_host_key"),
        }
    }
}

impl WorkerConfig {
    pub fn new(images_dir: PathBuf, work_dir: PathBuf, origin: &str) -> Self {
        WorkerConfig {
            images_dir,
            work_dir,
            concurrency: 1,
            deadline: Duration::from_secs(45 * 60),
            memory_mb: 2048,
            cpus: 2,
            accel: AccelChoice::Auto,
            lease: Duration::from_secs(60),
            max_receives: builds_storage::backend::DEFAULT_MAX_RECEIVES,
            worker_id: default_worker_id(),
            origin: origin.trim_end_matches('/').to_string(),
            sign_log_links: true,
            triggers: Default::default(),
            shell: None,
            failed_hold: Duration::from_secs(600),
            dead_letter_sweep: Duration::from_secs(30),
        }
    }

    /// Reads the `BUILDS_*` variables named on each field over the defaults.
    pub fn from_env() -> anyhow::Result<Self> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let num = |name: &str| -> anyhow::Result<Option<u64>> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| anyhow::anyhow!("{name} must be a number, not {v:?}"))
                })
                .transpose()
        };
        let mut config = WorkerConfig::new(
            get("BUILDS_IMAGES_DIR")
                .map_or_else(|| PathBuf::from("/var/lib/builds/images"), PathBuf::from),
            get("BUILDS_WORK_DIR")
                .map_or_else(|| PathBuf::from("/var/lib/builds/work"), PathBuf::from),
            &get("BUILDS_ORIGIN").unwrap_or_else(|| "http://localhost".to_string()),
        );
        if let Some(n) = num("BUILDS_WORKERS")? {
            config.concurrency = n.max(1) as usize;
        }
        if let Some(n) = num("BUILDS_JOB_DEADLINE")? {
            config.deadline = Duration::from_secs(n);
        }
        if let Some(n) = num("BUILDS_GUEST_MEMORY")? {
            config.memory_mb = n as u32;
        }
        if let Some(n) = num("BUILDS_GUEST_CPUS")? {
            config.cpus = n.max(1) as u32;
        }
        config.triggers = crate::triggers::TriggerSettings::from_env()?;
        if let Some(n) = num("BUILDS_DEAD_LETTER_SWEEP")? {
            config.dead_letter_sweep = Duration::from_secs(n.max(1));
        }
        if let Some(n) = num("BUILDS_FAILED_HOLD")? {
            config.failed_hold = Duration::from_secs(n);
        }
        if let Some(addr) = get("BUILDS_SSH_ADDR") {
            let bind = addr.parse().map_err(|_| {
                anyhow::anyhow!(
                    "BUILDS_SSH_ADDR must be an address such as 0.0.0.0:2222, not {addr:?}"
                )
            })?;
            config.shell = Some(ShellSettings::new(
                bind,
                get("BUILDS_SSH_HOST"),
                &config.images_dir,
            ));
        }
        // Log links in webhook payloads need the API's signing key.
        config.sign_log_links = get("BUILDS_SIGNING_KEY").is_some();
        config.accel = accel_from_env()?;
        Ok(config)
    }
}

/// `BUILDS_ACCEL`: `auto` (default), `kvm` or `tcg`.
pub fn accel_from_env() -> anyhow::Result<AccelChoice> {
    match std::env::var("BUILDS_ACCEL").ok().as_deref() {
        None | Some("") | Some("auto") => Ok(AccelChoice::Auto),
        Some("kvm") => Ok(AccelChoice::Kvm),
        Some("tcg") => Ok(AccelChoice::Tcg),
        Some(other) => anyhow::bail!("BUILDS_ACCEL must be auto, kvm or tcg, not {other:?}"),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".to_string())
}

fn default_worker_id() -> String {
    format!("{}-{}", host_name(), std::process::id())
}
