//! The queue loop. Each message names a job; the worker claims it with a
//! compare-and-set (`queued → running` with a lease), boots a guest, runs the
//! pipeline, and writes the final status once. While the job runs, a heartbeat
//! extends the message's visibility and renews the lease, and watches for a
//! cancel. A job whose worker died is found by its expired lease when its
//! message comes back: rerun if no task had started, failed otherwise.

use crate::config::WorkerConfig;
use crate::image;
use crate::log_shipper::LogShipper;
use crate::pipeline::{Outcome, Pipeline};
use crate::ports::PortPool;
use crate::shell::ShellGateway;
use crate::ssh::Ssh;
use crate::vm::{choose_accel, Accel, Vm, VmSpec};
use builds_domain::api::{GroupResource, JobResource, LogLinks, WithoutLogLinks};
use builds_domain::job::{setup_log_key, Job, JobMessage, Lease};
use builds_domain::manifest;
use builds_domain::ports::{update_job, ByteRange, Delivery, UpdateError};
use builds_domain::status::{JobStatus, TaskStatus};
use builds_domain::triggers::{group_email, group_status, job_email};
use builds_storage::Backend;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OnceCell, Semaphore};

/// How long one receive call waits for a message.
const LONG_POLL: Duration = Duration::from_secs(20);
/// How long a guest may take to boot to sshd.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Boots per job before giving up: QEMU under TCG now and then aborts early
/// (an emulator race, not the job's fault), and a fresh boot gets past it.
const BOOT_ATTEMPTS: u32 = 3;
/// How often a running job's record is read to notice a cancel.
const CANCEL_POLL: Duration = Duration::from_secs(1);

pub struct Worker {
    backend: Backend,
    config: WorkerConfig,
    ports: PortPool,
    accel: OnceCell<Accel>,
    /// The SSH gateway into held guests, started with the worker when configured.
    gateway: OnceCell<Option<ShellGateway>>,
}

/// A held guest is released this long before the job's deadline, so that the
/// job ends with the status its tasks earned rather than `timeout`.
const HOLD_MARGIN: Duration = Duration::from_secs(10);

/// What became of a job this worker took.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Finished(Outcome),
    Cancelled,
    TimedOut,
    /// The worker is shutting down: leave the job for another worker.
    Abandoned,
}

fn lease_until(config: &WorkerConfig) -> time::OffsetDateTime {
    builds_domain::job::now() + config.lease
}

impl Worker {
    pub fn new(backend: Backend, config: WorkerConfig) -> Arc<Worker> {
        Arc::new(Worker {
            backend,
            config,
            ports: PortPool::default(),
            accel: OnceCell::new(),
            gateway: OnceCell::new(),
        })
    }

    /// Starts the SSH gateway when one is configured (once per worker). A
    /// gateway that cannot start is logged; jobs then run without holds.
    async fn start_gateway(&self) {
        self.gateway
            .get_or_init(|| async {
                let settings = self.config.shell.as_ref()?;
                match ShellGateway::start(
                    settings.bind,
                    &settings.public_host,
                    &settings.host_key,
                    Arc::clone(&self.backend.store),
                )
                .await
                {
                    Ok(gateway) => {
                        tracing::info!(address = %gateway.address, "SSH gateway listening");
                        Some(gateway)
                    }
                    Err(err) => {
                        tracing::error!(err = format!("{err:#}"), "the SSH gateway did not start");
                        None
                    }
                }
            })
            .await;
    }

    /// Drains the dead-letter queue now and then until `shutdown`: a message
    /// lands there after too many deliveries (its last worker died with it),
    /// and its job, unless it ended or a live worker holds it, is failed
    /// with the reason in its setup log, its triggers fired.
    async fn sweep_dead_letters(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.config.dead_letter_sweep) => {}
            }
            let deliveries = match self
                .backend
                .dead_letter
                .receive(10, self.config.lease, Duration::ZERO)
                .await
            {
                Ok(deliveries) => deliveries,
                Err(err) => {
                    tracing::warn!(%err, "reading the dead-letter queue failed");
                    continue;
                }
            };
            for delivery in deliveries {
                if self.dead_letter(&delivery).await {
                    if let Err(err) = self.backend.dead_letter.delete(&delivery.receipt).await {
                        tracing::warn!(%err, "deleting a dead letter failed; it will come back");
                    }
                }
            }
        }
    }

    /// Settles one dead letter; whether it may be deleted.
    async fn dead_letter(&self, delivery: &Delivery) -> bool {
        let Some(message) = JobMessage::from_body(&delivery.body) else {
            tracing::warn!(body = %delivery.body, "a dead letter that names no job; dropped");
            return true;
        };
        let job = match self.backend.store.get_job(message.job_id).await {
            Ok(Some(job)) => job,
            Ok(None) => return true,
            Err(err) => {
                tracing::warn!(job = message.job_id, %err, "reading a dead letter's job failed");
                return false;
            }
        };
        let now = builds_domain::job::now();
        if job.status == JobStatus::Running && !job.lease_expired(now) {
            return false; // A live worker has it; look again later.
        }
        if job.status.is_terminal() {
            self.fire_owed_triggers(&job).await;
            return true;
        }
        tracing::warn!(
            job = job.id,
            "a job's message went to the dead-letter queue; failing it"
        );
        self.give_up(
            &job,
            "the job was handed to workers too many times without finishing \
             (its message went to the dead-letter queue)",
        )
        .await;
        true
    }

    /// Takes jobs until `shutdown` turns true; then stops taking and lets the
    /// running jobs be picked up elsewhere (their messages come back).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        self.start_gateway().await;
        tokio::spawn(Arc::clone(&self).sweep_dead_letters(shutdown.clone()));
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        tracing::info!(worker = %self.config.worker_id, concurrency = self.config.concurrency, "worker started");
        loop {
            if *shutdown.borrow() {
                return;
            }
            let available = slots.available_permits();
            if available == 0 {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    permit = Arc::clone(&slots).acquire_owned() => drop(permit),
                }
                continue;
            }
            let received = tokio::select! {
                _ = shutdown.changed() => return,
                received = self.backend.queue.receive(available as u32, self.config.lease, LONG_POLL) => received,
            };
            let deliveries = match received {
                Ok(deliveries) => deliveries,
                Err(err) => {
                    tracing::warn!(%err, "receiving from the queue failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            for delivery in deliveries {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let worker = Arc::clone(&self);
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    worker.handle(delivery, shutdown).await;
                    drop(permit);
                });
            }
        }
    }

    async fn delete(&self, delivery: &Delivery) {
        if let Err(err) = self.backend.queue.delete(&delivery.receipt).await {
            tracing::warn!(%err, "deleting a message failed");
        }
    }

    /// Decides what a message means and acts on it.
    async fn handle(&self, delivery: Delivery, shutdown: watch::Receiver<bool>) {
        let Some(JobMessage { job_id }) = JobMessage::from_body(&delivery.body) else {
            tracing::warn!(body = %delivery.body, "dropping a message that names no job");
            return self.delete(&delivery).await;
        };
        let job = match self.backend.store.get_job(job_id).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tracing::warn!(job_id, "dropping a message for a job that does not exist");
                return self.delete(&delivery).await;
            }
            Err(err) => {
                tracing::warn!(job_id, %err, "reading a job failed; the message will come back");
                return;
            }
        };
        let now = builds_domain::job::now();
        match job.status {
            JobStatus::Queued | JobStatus::Running
                if delivery.receive_count >= self.config.max_receives =>
            {
                self.give_up(
                    &job,
                    "the job was handed to workers too many times without finishing",
                )
                .await;
                return self.delete(&delivery).await;
            }
            JobStatus::Queued => {}
            JobStatus::Running if !job.lease_expired(now) => {
                // Another worker holds it; its message will come back if it dies.
                return;
            }
            JobStatus::Running if job.task_started => {
                self.give_up(
                    &job,
                    "the worker running this job was lost while a task ran; the job failed",
                )
                .await;
                return self.delete(&delivery).await;
            }
            JobStatus::Running => {
                // Lost during setup: nothing the user wrote ran yet, so run it again.
            }
            _ => {
                // Ended without a worker (cancelled while queued): its
                // triggers are still owed.
                if job.status.is_terminal() {
                    self.fire_owed_triggers(&job).await;
                }
                return self.delete(&delivery).await;
            }
        }
        let Some(job) = self.claim(job.id).await else {
            return self.delete(&delivery).await;
        };
        let ending = self.run_job(&job, &delivery, shutdown).await;
        if ending != Ending::Abandoned {
            self.delete(&delivery).await;
        }
    }

    /// `queued → running`, or takes over a running job whose lease ran out.
    /// `None` when another worker got it first or it is no longer runnable.
    async fn claim(&self, id: u64) -> Option<Job> {
        let worker = self.config.worker_id.clone();
        let until = lease_until(&self.config);
        let result = update_job(self.backend.store.as_ref(), id, |job| {
            match job.status {
                JobStatus::Queued => job.set_status(JobStatus::Running).map_err(|_| ())?,
                JobStatus::Running
                    if job.lease_expired(builds_domain::job::now()) && !job.task_started =>
                {
                    for task in &mut job.tasks {
                        task.status = TaskStatus::Pending;
                    }
                }
                _ => return Err(()),
            }
            job.runner = Some(worker.clone());
            job.lease = Some(Lease {
                worker: worker.clone(),
                until,
            });
            Ok(())
        })
        .await;
        match result {
            Ok(job) => Some(job),
            Err(UpdateError::Refused(())) | Err(UpdateError::NotFound(_)) => None,
            Err(UpdateError::Store(err)) => {
                tracing::warn!(id, %err, "claiming a job failed");
                None
            }
        }
    }

    /// Marks a job failed with a reason, in its setup log and its record.
    async fn give_up(&self, job: &Job, reason: &str) {
        let log = self.setup_log(job.id).await;
        log.line(&format!("[builds] {reason}"));
        let result = update_job(self.backend.store.as_ref(), job.id, |job| {
            if job.status.is_terminal() {
                return Err(());
            }
            for task in &mut job.tasks {
                if task.status == TaskStatus::Running {
                    task.status = TaskStatus::Failed;
                }
            }
            job.set_status(JobStatus::Failed).map_err(|_| ())?;
            job.reason = Some(reason.to_string());
            job.triggered = true;
            Ok(())
        })
        .await;
        self.after_ending(job.id, result, &log, "marking the job failed")
            .await;
        log.finish().await;
    }

    /// Fires an ended job's triggers unless someone already has: the
    /// `triggered` flag is claimed with a compare-and-set write first.
    async fn fire_triggers_once(&self, job_id: u64, log: &LogShipper) {
        let claimed = update_job(self.backend.store.as_ref(), job_id, |job| {
            if job.triggered || !job.status.is_terminal() {
                return Err(());
            }
            job.triggered = true;
            Ok(())
        })
        .await;
        self.after_ending(job_id, claimed, log, "claiming the job's triggers")
            .await;
    }

    /// After a write that ended a job (or claimed its triggers): when it
    /// landed, this worker owes the job's triggers, and the group's when this
    /// job was the group's last to end. A refused write owes nothing.
    async fn after_ending(
        &self,
        job_id: u64,
        written: Result<Job, UpdateError<()>>,
        log: &LogShipper,
        what: &str,
    ) {
        match written {
            Ok(job) => {
                self.deliver_triggers(&job, log).await;
                self.deliver_group_triggers(&job, log).await;
            }
            Err(UpdateError::Store(err)) => tracing::error!(job_id, %err, "{what} failed"),
            Err(_) => {}
        }
    }

    /// For a job that ended without a worker writing its final status
    /// (cancelled while queued, or found in the dead-letter queue ended): its
    /// triggers, and its group's, if nobody fired them yet.
    async fn fire_owed_triggers(&self, job: &Job) {
        if job.triggered || !(has_triggers(job) || job.group_id.is_some()) {
            return;
        }
        let log = self.setup_log(job.id).await;
        self.fire_triggers_once(job.id, &log).await;
        log.finish().await;
    }

    /// Renders a trigger payload with log links signed by the API's key when
    /// this worker shares it, without links otherwise.
    fn trigger_payload<T: serde::Serialize>(
        &self,
        render: impl FnOnce(&dyn LogLinks) -> T,
    ) -> serde_json::Result<Vec<u8>> {
        let resource = if self.config.sign_log_links {
            render(&builds_storage::SignedLogLinks {
                signer: &self.backend.signer,
                origin: &self.config.origin,
                ttl: TRIGGER_LINK_TTL,
            })
        } else {
            render(&WithoutLogLinks)
        };
        serde_json::to_vec(&resource)
    }

    /// Sends the triggers of an ended job whose `triggered` flag this worker set.
    async fn deliver_triggers(&self, job: &Job, log: &LogShipper) {
        let Ok(manifest) = manifest::parse(&job.manifest) else {
            return;
        };
        if manifest.triggers.is_empty() {
            return;
        }
        let body = match self.trigger_payload(|links| JobResource::new(job, links)) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(job = job.id, %err, "rendering the job resource failed");
                return;
            }
        };
        let job_url = format!("{}/api/jobs/{}", self.config.origin, job.id);
        crate::triggers::deliver(
            &self.config.triggers,
            &manifest.triggers,
            job.status,
            &body,
            &job_email(job, &job_url),
            log,
        )
        .await;
    }

    /// Sends a group's triggers when `job` was the last of its group to end;
    /// the group's claim (a conditional write) makes it once per group,
    /// however many workers see the group end at the same time.
    async fn deliver_group_triggers(&self, job: &Job, log: &LogShipper) {
        let Some(group_id) = job.group_id else {
            return;
        };
        let store = self.backend.store.as_ref();
        let group = match store.get_group(group_id).await {
            Ok(Some(group)) => group,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(group_id, %err, "reading a job group failed");
                return;
            }
        };
        let triggers = match manifest::parse_triggers(&group.triggers) {
            Ok(triggers) if !triggers.is_empty() => triggers,
            _ => return,
        };
        let mut jobs = Vec::with_capacity(group.job_ids.len());
        for id in &group.job_ids {
            match store.get_job(*id).await {
                Ok(Some(member)) => jobs.push(member),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(group_id, %err, "reading a group's job failed");
                    return;
                }
            }
        }
        let Some(status) = group_status(&jobs) else {
            return; // Another job of the group has yet to end.
        };
        match store.claim_group_triggers(group_id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(group_id, %err, "claiming a group's triggers failed");
                return;
            }
        }
        log.line(&format!(
            "[builds] job group {group_id} ended ({status}) with this job: its triggers"
        ));
        let body = match self.trigger_payload(|links| GroupResource::new(&group, &jobs, links)) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(group_id, %err, "rendering the group resource failed");
                return;
            }
        };
        let group_url = format!("{}/api/job-group/{group_id}", self.config.origin);
        crate::triggers::deliver(
            &self.config.triggers,
            &triggers,
            status,
            &body,
            &group_email(&group, status, &jobs, &group_url),
            log,
        )
        .await;
    }

    /// The setup log, continuing after whatever an earlier worker shipped.
    async fn setup_log(&self, job_id: u64) -> LogShipper {
        let key = setup_log_key(job_id);
        let end = ByteRange {
            start: u64::MAX / 2,
            end: None,
        };
        let offset = match self.backend.blobs.get(&key, Some(end)).await {
            Ok(Some(read)) => read.total,
            _ => 0,
        };
        LogShipper::start(Arc::clone(&self.backend.blobs), key, offset)
    }

    /// Runs a claimed job to its end: pipeline raced against cancel, deadline
    /// and shutdown, with the heartbeat running beside it.
    async fn run_job(
        &self,
        job: &Job,
        delivery: &Delivery,
        mut shutdown: watch::Receiver<bool>,
    ) -> Ending {
        let log = self.setup_log(job.id).await;
        log.line(&format!(
            "[builds] job {} on {}, image {}",
            job.id, self.config.worker_id, job.image
        ));
        let deadline = tokio::time::sleep(self.config.deadline);
        let ending = tokio::select! {
            outcome = self.boot_and_run(job, &log, tokio::time::Instant::now()) => Ending::Finished(outcome),
            _ = self.heartbeat(job.id, delivery) => Ending::Cancelled,
            _ = deadline => Ending::TimedOut,
            _ = shutdown.changed() => Ending::Abandoned,
        };
        // The guest is gone by now: the pipeline future owned it (kill on drop).
        let (status, reason) = match &ending {
            Ending::Finished(Outcome::Success) => (JobStatus::Success, None),
            Ending::Finished(Outcome::Failed(reason)) => (JobStatus::Failed, Some(reason.clone())),
            Ending::TimedOut => (
                JobStatus::Timeout,
                Some(format!(
                    "the job ran past its deadline of {} s",
                    self.config.deadline.as_secs()
                )),
            ),
            Ending::Cancelled => {
                log.line("[builds] the job was cancelled; the guest was stopped");
                self.fire_triggers_once(job.id, &log).await;
                log.finish().await;
                return ending;
            }
            Ending::Abandoned => {
                log.line("[builds] this worker is shutting down; another will take the job");
                log.finish().await;
                return ending;
            }
        };
        if let Some(reason) = &reason {
            log.line(&format!("[builds] {reason}"));
        }
        log.line(&format!("[builds] job {status}"));
        let result = update_job(self.backend.store.as_ref(), job.id, |job| {
            if job.status != JobStatus::Running {
                return Err(());
            }
            for task in &mut job.tasks {
                if task.status == TaskStatus::Running {
                    task.status = TaskStatus::Failed;
                }
            }
            job.set_status(status).map_err(|_| ())?;
            job.reason = reason.clone();
            job.shell = None;
            // Whoever writes the final status owns the triggers.
            job.triggered = true;
            Ok(())
        })
        .await;
        self.after_ending(job.id, result, &log, "writing the final status")
            .await;
        log.finish().await;
        tracing::info!(job = job.id, %status, "job finished");
        ending
    }

    /// Renews the lease and the message's visibility; returns when the job is
    /// no longer running here (cancelled, or taken from us).
    async fn heartbeat(&self, job_id: u64, delivery: &Delivery) {
        let renew_every = self.config.lease / 3;
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            match self.backend.store.get_job(job_id).await {
                Ok(Some(job)) if job.status == JobStatus::Running => {}
                Ok(_) => return,
                Err(err) => tracing::warn!(job_id, %err, "reading the job failed"),
            }
            if last_renewal.elapsed() < renew_every {
                continue;
            }
            last_renewal = tokio::time::Instant::now();
            if let Err(err) = self
                .backend
                .queue
                .extend(&delivery.receipt, self.config.lease)
                .await
            {
                tracing::warn!(job_id, %err, "extending the message failed");
            }
            let worker = self.config.worker_id.clone();
            let until = lease_until(&self.config);
            let renewed = update_job(self.backend.store.as_ref(), job_id, |job| {
                if job.status != JobStatus::Running {
                    return Err(());
                }
                job.lease = Some(Lease {
                    worker: worker.clone(),
                    until,
                });
                Ok(())
            })
            .await;
            if matches!(renewed, Err(UpdateError::Refused(()))) {
                return;
            }
        }
    }

    /// Boots the guest and runs the pipeline. The guest dies with this future.
    async fn boot_and_run(
        &self,
        job: &Job,
        log: &LogShipper,
        started: tokio::time::Instant,
    ) -> Outcome {
        let scratch =
            self.config
                .work_dir
                .join(format!("job-{}-{}", job.id, uuid::Uuid::new_v4().simple()));
        let outcome = self.boot_and_run_in(job, log, &scratch, started).await;
        let _ = std::fs::remove_dir_all(&scratch);
        match outcome {
            Ok(outcome) => outcome,
            // run_job writes the reason to the setup log.
            Err(err) => Outcome::Failed(format!("{err:#}")),
        }
    }

    async fn boot_and_run_in(
        &self,
        job: &Job,
        log: &LogShipper,
        scratch: &std::path::Path,
        started: tokio::time::Instant,
    ) -> anyhow::Result<Outcome> {
        let manifest = manifest::parse(&job.manifest)
            .map_err(|problems| anyhow::anyhow!("the manifest is not valid: {}", problems[0]))?;
        let images = &self.config.images_dir;
        if !image::is_ready(images, &manifest.image) {
            anyhow::bail!(
                "image {} is not available on this worker (build it with `builds image build {}`)",
                manifest.image,
                manifest.image
            );
        }
        let image_dir = image::image_dir(images, &manifest.image);
        let key = image::ensure_worker_key(images)?;
        let accel = *self
            .accel
            .get_or_init(|| choose_accel(self.config.accel, &image_dir))
            .await;
        let port = self.ports.take()?;
        log.line(&format!(
            "[builds] booting the guest ({}, {} MiB, {} vCPUs)",
            accel.name(),
            self.config.memory_mb,
            self.config.cpus
        ));
        let spec = VmSpec {
            image: &image_dir,
            scratch,
            ssh_port: port.port,
            accel,
            memory_mb: self.config.memory_mb,
            cpus: self.config.cpus,
        };
        let (mut vm, booted) =
            Vm::boot_until_ready(spec, BOOT_TIMEOUT, BOOT_ATTEMPTS, |err, attempt| {
                log.line(&format!(
                    "[builds] {err}; booting again (attempt {attempt} of {BOOT_ATTEMPTS})"
                ));
            })
            .await?;
        let ssh = Arc::new(Ssh::new(
            port.port,
            &key,
            &image_dir,
            &crate::ssh::control_dir()?,
        ));
        ssh.connect(Duration::from_secs(60)).await?;
        log.line(&format!(
            "[builds] guest up in {:.1} s",
            booted.as_secs_f64()
        ));
        let pipeline = Pipeline {
            job,
            manifest: &manifest,
            ssh: &ssh,
            store: Arc::clone(&self.backend.store),
            blobs: Arc::clone(&self.backend.blobs),
            sealer: Arc::clone(&self.backend.sealer),
            setup_log: log,
            origin: &self.config.origin,
            token_lifetime: self.config.deadline,
        };
        let outcome = pipeline.run().await;
        if let Ok(outcome) = &outcome {
            self.hold_for_shell(job, &manifest, &ssh, outcome, log, started)
                .await;
        }
        ssh.close().await;
        vm.kill().await;
        outcome
    }

    /// Keeps the guest up for its owner to SSH into, after the tasks: until
    /// the deadline with `shell: true`, 10 minutes (`failed_hold`) after a
    /// failed build; until the first session ends, either way. Only when the
    /// gateway runs and the owner has a key to connect with.
    async fn hold_for_shell(
        &self,
        job: &Job,
        manifest: &manifest::Manifest,
        ssh: &Arc<Ssh>,
        outcome: &Outcome,
        log: &LogShipper,
        started: tokio::time::Instant,
    ) {
        let failed = matches!(outcome, Outcome::Failed(_));
        if !manifest.shell && !failed {
            return;
        }
        let Some(gateway) = self.gateway.get().and_then(Option::as_ref) else {
            if manifest.shell {
                log.line("[builds] shell: this worker offers no SSH access (BUILDS_SSH_ADDR); the guest is not held");
            }
            return;
        };
        match self.backend.store.list_ssh_keys(&job.owner).await {
            Ok(keys) if !keys.is_empty() => {}
            Ok(_) => {
                if manifest.shell {
                    log.line("[builds] shell: the job's owner has no SSH key registered (/api/ssh-keys), so nobody could connect; the guest is not held");
                }
                return;
            }
            Err(err) => {
                tracing::warn!(job = job.id, %err, "reading SSH keys failed; not holding");
                return;
            }
        }
        let left = self
            .config
            .deadline
            .saturating_sub(started.elapsed())
            .saturating_sub(HOLD_MARGIN);
        let hold = if failed {
            self.config.failed_hold.min(left)
        } else {
            left
        };
        if hold.is_zero() {
            return;
        }
        let guard = gateway.hold(job.id, &job.owner, Arc::clone(ssh));
        let address = gateway.address.clone();
        if self.set_shell(job.id, Some(address.clone())).await.is_err() {
            return;
        }
        let (host, port) = address.rsplit_once(':').unwrap_or((&address, "22"));
        log.line(&format!(
            "[builds] the guest is held for SSH for {} s{}: `builds ssh {id}` (or `ssh -t -p {port} {id}@{host}`) with a key registered at /api/ssh-keys; it is released when the session ends",
            hold.as_secs(),
            if failed { " after the failure" } else { "" },
            id = job.id,
        ));
        tokio::select! {
            _ = guard.session_ended() => log.line("[builds] the SSH session ended; releasing the guest"),
            _ = tokio::time::sleep(hold) => log.line("[builds] the SSH hold is over; releasing the guest"),
        }
        drop(guard);
        let _ = self.set_shell(job.id, None).await;
    }

    /// Records (or clears) where the running job's guest is reachable.
    async fn set_shell(&self, job_id: u64, address: Option<String>) -> Result<(), ()> {
        let result = update_job(self.backend.store.as_ref(), job_id, |job| {
            if job.status != JobStatus::Running {
                return Err(());
            }
            job.shell = address.clone();
            Ok(())
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(UpdateError::Store(err)) => {
                tracing::warn!(job_id, %err, "recording the SSH address failed");
                Err(())
            }
            Err(_) => Err(()),
        }
    }
}

/// Whether a job's manifest has any trigger.
fn has_triggers(job: &Job) -> bool {
    manifest::parse(&job.manifest).is_ok_and(|m| !m.triggers.is_empty())
}

/// How long the log links in a webhook payload work.
const TRIGGER_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
