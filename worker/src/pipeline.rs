//! The steps of one job inside its guest, in order, as builds.sr.ht runs them:
//! environment and task scripts, secrets, repositories, packages, sources,
//! tasks one by one, artifacts. Each step writes to the setup log or its task's
//! log; status changes are compare-and-set writes that stop the pipeline if the
//! job was cancelled meanwhile.

use crate::log_shipper::LogShipper;
use crate::ssh::{shell_quote, Ssh};
use anyhow::{bail, Context};
use builds_domain::job::{task_log_key, Artifact, Job};
use builds_domain::manifest::{render_buildenv, task_script, BuildContext, Manifest, SourceScheme};
use builds_domain::ports::{update_job, BlobStore, JobStore, SecretSealer, UpdateError};
use builds_domain::secret::{self, SecretKind};
use builds_domain::status::{JobStatus, TaskStatus};
use bytes::Bytes;
use std::sync::Arc;

/// Largest artifact kept.
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// How the steps ended, when nothing external (cancel, timeout) stopped them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed(String),
}

/// Everything the steps need.
pub struct Pipeline<'a> {
    pub job: &'a Job,
    pub manifest: &'a Manifest,
    pub ssh: &'a Ssh,
    pub store: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Opens the owner's secrets for installing.
    pub sealer: Arc<dyn SecretSealer>,
    pub setup_log: &'a LogShipper,
    pub origin: &'a str,
    /// How long a job token (`oauth:`) lives: the job's deadline.
    pub token_lifetime: std::time::Duration,
}

/// The job stopped being ours (cancelled, or finished elsewhere).
#[derive(Debug, thiserror::Error)]
#[error("the job is no longer running here (it is {0})")]
pub struct NotRunning(pub JobStatus);

impl Pipeline<'_> {
    /// Changes the job record if it is still running; fails otherwise.
    async fn update(&self, change: impl FnMut(&mut Job) + Send) -> anyhow::Result<Job> {
        let mut change = change;
        let result = update_job(self.store.as_ref(), self.job.id, |job| {
            if job.status != JobStatus::Running {
                return Err(NotRunning(job.status));
            }
            change(job);
            Ok(())
        })
        .await;
        match result {
            Ok(job) => Ok(job),
            Err(UpdateError::Refused(not_running)) => Err(not_running.into()),
            Err(err) => Err(anyhow::anyhow!("updating job {}: {err}", self.job.id)),
        }
    }

    /// Runs a setup command, its output going to the setup log.
    async fn setup_step(&self, title: &str, command: &str) -> anyhow::Result<()> {
        self.setup_log.line(&format!("[builds] {title}"));
        let log = self.setup_log.clone();
        let code = self
            .ssh
            .stream(command, &mut |bytes| log.write(bytes))
            .await?;
        if code != Some(0) {
            bail!(
                "{title} failed (exit status {})",
                code.map_or("unknown".into(), |c| c.to_string())
            );
        }
        Ok(())
    }

    /// Every step, in order.
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        if let Err(err) = self.setup().await {
            self.setup_log
                .line(&format!("[builds] setup failed: {err:#}"));
            return Ok(Outcome::Failed(format!("setup failed: {err:#}")));
        }
        let outcome = self.tasks().await?;
        if outcome == Outcome::Success {
            if let Err(err) = self.artifacts().await {
                self.setup_log.line(&format!("[builds] artifacts: {err:#}"));
                return Ok(Outcome::Failed(format!("artifacts: {err:#}")));
            }
        }
        Ok(outcome)
    }

    /// Mints the job token the manifest's `oauth:` grants ask for: the job
    /// owner's, limited to those grants, expiring at the job's deadline.
    async fn job_token(&self) -> anyhow::Result<Option<String>> {
        let Some(grants) = self
            .manifest
            .oauth
            .as_deref()
            .filter(|g| !g.trim().is_empty())
        else {
            return Ok(None);
        };
        let (scopes, refused) = builds_domain::token::Scope::from_oauth_grants(grants);
        if !refused.is_empty() {
            self.setup_log.line(&format!(
                "[builds] oauth: not granted here (other services): {}",
                refused.join(" ")
            ));
        }
        if scopes.is_empty() {
            return Ok(None);
        }
        let now = builds_domain::job::now();
        let lifetime = time::Duration::try_from(self.token_lifetime)?;
        let (token, record) = builds_domain::token::mint_token(
            &self.job.owner,
            scopes.clone(),
            Some(now + lifetime),
            now,
        );
        self.store.put_token(&record).await?;
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        self.setup_log.line(&format!(
            "[builds] oauth: a job token for {} in OAUTH2_TOKEN, until the deadline",
            names.join(", ")
        ));
        Ok(Some(token))
    }

    async fn setup(&self) -> anyhow::Result<()> {
        let context = BuildContext {
            job_id: self.job.id,
            job_url: format!("{}/api/jobs/{}", self.origin, self.job.id),
            ci_name: "builds".to_string(),
            oauth_token: self.job_token().await?,
        };
        self.setup_log
            .line("[builds] writing ~/.buildenv and the task scripts");
        self.ssh
            .write_file(
                "/home/build/.buildenv",
                render_buildenv(&self.manifest.environment, &context).as_bytes(),
                "644",
            )
            .await?;
        for task in &self.manifest.tasks {
            self.ssh
                .write_file(
                    &format!("/home/build/.tasks/{}", task.name),
                    task_script(&task.name, &task.script).as_bytes(),
                    "755",
                )
                .await?;
        }
        self.install_secrets().await?;
        if !self.manifest.repositories.is_empty() {
            let mut lines = String::new();
            for (name, spec) in &self.manifest.repositories {
                // Debian syntax: "URL SUITE COMPONENTS [KEY]"; a key is trusted as signed-by.
                let fields: Vec<&str> = spec.split_whitespace().collect();
                if fields.len() < 3 {
                    bail!("repository {name}: expected \"URL SUITE COMPONENT...\", got {spec:?}");
                }
                lines.push_str(&format!(
                    "echo {} | sudo tee /etc/apt/sources.list.d/{}.list >/dev/null\n",
                    shell_quote(&format!("deb {}", fields[..3].join(" "))),
                    shell_quote(name)
                ));
            }
            self.setup_step("adding package repositories", &lines)
                .await?;
        }
        if !self.manifest.packages.is_empty() {
            let packages: Vec<String> = self
                .manifest
                .packages
                .iter()
                .map(|p| shell_quote(p))
                .collect();
            self.setup_step(
                &format!("installing packages: {}", self.manifest.packages.join(" ")),
                &format!(
                    "set -e; export DEBIAN_FRONTEND=noninteractive; \
                     sudo -E apt-get update -q; \
                     sudo -E apt-get install -y -q --no-install-recommends {}",
                    packages.join(" ")
                ),
            )
            .await?;
        }
        for source in &self.manifest.sources {
            let dir = shell_quote(&source.dir);
            let url = shell_quote(&source.url);
            let command = match source.scheme {
                SourceScheme::Git => {
                    let mut cmd = format!("set -e; cd ~; git clone -q {url} {dir}");
                    if let Some(reference) = &source.reference {
                        cmd.push_str(&format!(
                            "; cd {dir}; git checkout -q {}",
                            shell_quote(reference)
                        ));
                    } else {
                        cmd.push_str(&format!("; cd {dir}"));
                    }
                    cmd.push_str("; git submodule update -q --init --recursive");
                    cmd
                }
                SourceScheme::Hg => {
                    let mut cmd = format!("set -e; cd ~; hg clone -q {url} {dir}");
                    if let Some(reference) = &source.reference {
                        cmd.push_str(&format!(
                            "; cd {dir}; hg update -q {}",
                            shell_quote(reference)
                        ));
                    }
                    cmd
                }
            };
            self.setup_step(
                &format!("cloning {} into ~/{}", source.url, source.dir),
                &command,
            )
            .await?;
        }
        Ok(())
    }

    /// Installs the secrets the manifest names, when the job may have them:
    /// each is resolved among the owner's secrets, opened, and handed to its
    /// install script on standard input, so its bytes reach no command line
    /// and no log. One that cannot be found fails the job.
    async fn install_secrets(&self) -> anyhow::Result<()> {
        let requested = &self.manifest.secrets;
        if requested.is_empty() {
            return Ok(());
        }
        if !self.job.secrets {
            self.setup_log.line(&format!(
                "[builds] secrets: {} requested, but the job was submitted without \
                 secrets (secrets: false); none are installed",
                requested.len()
            ));
            return Ok(());
        }
        let owned = self.store.list_secrets(&self.job.owner).await?;
        let found = match secret::resolve(requested, &owned) {
            Ok(found) => found,
            Err(problems) => {
                for problem in &problems {
                    self.setup_log.line(&format!("[builds] {problem}"));
                }
                bail!(
                    "{} of the manifest's secrets cannot be installed",
                    problems.len()
                );
            }
        };
        let mut ssh_keys = 0;
        for record in found {
            let first_ssh_key = record.kind == SecretKind::SshKey && ssh_keys == 0;
            if record.kind == SecretKind::SshKey {
                ssh_keys += 1;
            }
            let step = secret::install_step(record, first_ssh_key);
            self.setup_log
                .line(&format!("[builds] installing secret: {}", step.description));
            let bytes = self
                .sealer
                .open(&record.context(), &record.sealed)
                .await
                .with_context(|| format!("opening secret {}", record.id))?;
            let done = self.ssh.run(&step.script, &bytes).await?;
            if done.code != Some(0) {
                // The scripts never print the secret; their errors are safe to show.
                let said = String::from_utf8_lossy(&done.stderr);
                bail!(
                    "installing secret {} failed (exit status {}): {}",
                    record.id,
                    done.code.map_or("unknown".into(), |c| c.to_string()),
                    said.trim()
                );
            }
        }
        Ok(())
    }

    async fn tasks(&self) -> anyhow::Result<Outcome> {
        for task in &self.manifest.tasks {
            let name = task.name.clone();
            self.update(|job| {
                job.task_started = true;
                if let Some(t) = job.task_mut(&name) {
                    t.status = TaskStatus::Running;
                }
            })
            .await?;
            let log =
                LogShipper::start(Arc::clone(&self.blobs), task_log_key(self.job.id, &name), 0);
            let writer = log.clone();
            let code = self
                .ssh
                .stream(
                    &format!("cd ~ && exec /home/build/.tasks/{name}"),
                    &mut |bytes| writer.write(bytes),
                )
                .await;
            let code = match code {
                Ok(code) => code,
                Err(err) => {
                    log.line(&format!("[builds] {err:#}"));
                    log.finish().await;
                    return Err(err);
                }
            };
            let status = if code == Some(0) {
                TaskStatus::Success
            } else {
                log.line(&format!(
                    "[builds] task {name} failed with exit status {}",
                    code.map_or("unknown".into(), |c| c.to_string())
                ));
                TaskStatus::Failed
            };
            log.finish().await;
            let completed = status == TaskStatus::Success
                && self.ssh.run("test -e ~/.complete-build", b"").await?.code == Some(0);
            self.update(|job| {
                if let Some(t) = job.task_mut(&name) {
                    t.status = status;
                }
                if completed {
                    job.skip_pending_tasks();
                }
            })
            .await?;
            if status == TaskStatus::Failed {
                return Ok(Outcome::Failed(format!("task {name} failed")));
            }
            if completed {
                self.setup_log.line(&format!(
                    "[builds] task {name} ran complete-build: the remaining tasks are skipped"
                ));
                return Ok(Outcome::Success);
            }
        }
        Ok(Outcome::Success)
    }

    async fn artifacts(&self) -> anyhow::Result<()> {
        for (index, path) in self.manifest.artifacts.iter().enumerate() {
            let id = index as u64 + 1;
            self.setup_log
                .line(&format!("[builds] uploading artifact {path}"));
            let quoted = if let Some(rest) = path.strip_prefix("~/") {
                format!("\"$HOME\"/{}", shell_quote(rest))
            } else {
                shell_quote(path)
            };
            let size_text = self
                .ssh
                .check(
                    &format!("artifact {path}"),
                    &format!("cd ~ && test -f {quoted} && stat -c %s {quoted}"),
                    b"",
                )
                .await
                .with_context(|| format!("artifact {path} is not a file in the guest"))?;
            let size: u64 = String::from_utf8_lossy(&size_text)
                .trim()
                .parse()
                .context("artifact size")?;
            if size > MAX_ARTIFACT_BYTES {
                bail!("artifact {path} is {size} bytes; the limit is {MAX_ARTIFACT_BYTES}");
            }
            let bytes = self
                .ssh
                .check(
                    &format!("reading artifact {path}"),
                    &format!("cd ~ && cat {quoted}"),
                    b"",
                )
                .await?;
            if bytes.len() as u64 != size {
                bail!("artifact {path} changed while it was read");
            }
            let name = path.rsplit('/').next().unwrap_or(path).to_string();
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let safe = if safe.trim_matches('.').is_empty() {
                format!("artifact-{id}")
            } else {
                safe
            };
            let key = builds_domain::job::artifact_key(self.job.id, id, &safe);
            self.blobs.put(&key, Bytes::from(bytes)).await?;
            let artifact = Artifact {
                id,
                created: builds_domain::job::now(),
                path: path.clone(),
                name,
                size,
                blob_key: key,
            };
            self.update(|job| {
                job.artifacts.retain(|a| a.id != artifact.id);
                job.artifacts.push(artifact.clone());
            })
            .await?;
        }
        Ok(())
    }
}
