//! Jobs, their tasks and artifacts, and job groups: the records the store keeps.

use crate::status::{IllegalTransition, JobStatus, TaskStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub type JobId = u64;
pub type GroupId = u64;

/// The current time at the precision records keep (whole seconds, UTC).
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// One task of a job, in manifest order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub name: String,
    pub status: TaskStatus,
}

/// A file a successful build kept. `blob_key` names it in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub id: u64,
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    /// The path in the guest, as the manifest gave it.
    pub path: String,
    /// The file name (basename of `path`).
    pub name: String,
    pub size: u64,
    pub blob_key: String,
}

/// Which worker holds a running job, and until when. A worker renews it while it
/// works; an expired lease means the worker died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub worker: String,
    #[serde(with = "time::serde::timestamp")]
    pub until: OffsetDateTime,
}

/// A job as stored. `version` is bumped by every write; the store only accepts a
/// write whose `version` equals the stored one (compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub owner: String,
    pub status: JobStatus,
    /// The manifest exactly as submitted.
    pub manifest: String,
    pub image: String,
    pub note: Option<String>,
    pub tags: Vec<String>,
    /// Whether the job may see its owner's secrets.
    pub secrets: bool,
    pub tasks: Vec<TaskRecord>,
    pub artifacts: Vec<Artifact>,
    pub group_id: Option<GroupId>,
    /// The worker that ran (or runs) the job.
    pub runner: Option<String>,
    pub lease: Option<Lease>,
    /// Set once the first task has started: a job lost after that is not rerun.
    pub task_started: bool,
    /// Why the job ended as it did, when that is not obvious from the tasks.
    pub reason: Option<String>,
    /// Set (with a compare-and-set write) by whoever fires the job's triggers,
    /// so they fire once.
    #[serde(default)]
    pub triggered: bool,
    /// While the guest is held for SSH: the gateway's `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::timestamp")]
    pub updated: OffsetDateTime,
    pub version: u64,
}

/// What a caller gives the store to create a job; the store assigns id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub owner: String,
    pub status: JobStatus,
    pub manifest: String,
    pub image: String,
    pub note: Option<String>,
    pub tags: Vec<String>,
    pub secrets: bool,
    pub task_names: Vec<String>,
    pub group_id: Option<GroupId>,
}

impl NewJob {
    /// The job record for `id`, created now.
    pub fn into_job(self, id: JobId, now: OffsetDateTime) -> Job {
        Job {
            id,
            owner: self.owner,
            status: self.status,
            manifest: self.manifest,
            image: self.image,
            note: self.note,
            tags: self.tags,
            secrets: self.secrets,
            tasks: self
                .task_names
                .into_iter()
                .map(|name| TaskRecord {
                    name,
                    status: TaskStatus::Pending,
                })
                .collect(),
            artifacts: Vec::new(),
            group_id: self.group_id,
            runner: None,
            lease: None,
            task_started: false,
            reason: None,
            triggered: false,
            shell: None,
            created: now,
            updated: now,
            version: 1,
        }
    }
}

impl Job {
    /// Moves the job to `to` if the state machine allows it. Leaving a running
    /// status drops the lease.
    pub fn set_status(&mut self, to: JobStatus) -> Result<(), IllegalTransition> {
        self.status = self.status.transition(to)?;
        if to.is_terminal() {
            self.lease = None;
        }
        Ok(())
    }

    /// Whether a running job's lease has run out at `now` (its worker is gone).
    pub fn lease_expired(&self, now: OffsetDateTime) -> bool {
        self.status == JobStatus::Running && self.lease.as_ref().is_none_or(|l| l.until <= now)
    }

    pub fn task_mut(&mut self, name: &str) -> Option<&mut TaskRecord> {
        self.tasks.iter_mut().find(|t| t.name == name)
    }

    /// After `complete-build`: every task still pending is skipped.
    pub fn skip_pending_tasks(&mut self) {
        for task in &mut self.tasks {
            if task.status == TaskStatus::Pending {
                task.status = TaskStatus::Skipped;
            }
        }
    }
}

// Blob keys start with what they hold (`logs/`, `artifacts/`) so that bucket
// lifecycle rules and IAM policies can tell them apart by prefix.

/// Blob key of a job's setup log.
pub fn setup_log_key(job_id: JobId) -> String {
    format!("logs/{job_id}/setup")
}

/// Blob key of one task's log.
pub fn task_log_key(job_id: JobId, task: &str) -> String {
    format!("logs/{job_id}/tasks/{task}")
}

/// The path the log endpoint serves a job's setup log (`task` `None`) or a
/// task's log at; links to it are signed.
pub fn log_path(job_id: JobId, task: Option<&str>) -> String {
    match task {
        None => format!("/logs/{job_id}/setup"),
        Some(task) => format!("/logs/{job_id}/tasks/{task}"),
    }
}

/// Blob key of an artifact (`name` already reduced to a safe file name).
pub fn artifact_key(job_id: JobId, artifact_id: u64, name: &str) -> String {
    format!("artifacts/{job_id}/{artifact_id}/{name}")
}

/// What the queue carries to workers: which job to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
}

impl JobMessage {
    pub fn to_body(self) -> String {
        format!("{{\"job_id\":{}}}", self.job_id)
    }

    pub fn from_body(body: &str) -> Option<JobMessage> {
        serde_json::from_str(body).ok()
    }
}

/// A group of jobs that start, cancel and notify together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub owner: String,
    pub note: Option<String>,
    pub job_ids: Vec<JobId>,
    /// The group's triggers, as the API received them (JSON).
    pub triggers: serde_json::Value,
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
}

/// What a caller gives the store to create a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub owner: String,
    pub note: Option<String>,
    pub job_ids: Vec<JobId>,
    pub triggers: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        NewJob {
            owner: "alice".into(),
            status: JobStatus::Queued,
            manifest: "image: debian/bookworm\n".into(),
            image: "debian/bookworm".into(),
            note: None,
            tags: vec![],
            secrets: true,
            task_names: vec!["a".into(), "b".into()],
            group_id: None,
        }
        .into_job(7, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn new_job_has_pending_tasks_and_version_one() {
        let job = job();
        assert_eq!(job.id, 7);
        assert_eq!(job.version, 1);
        assert!(job.tasks.iter().all(|t| t.status == TaskStatus::Pending));
    }

    #[test]
    fn set_status_follows_the_state_machine_and_drops_the_lease() {
        let mut job = job();
        assert!(job.set_status(JobStatus::Success).is_err());
        job.set_status(JobStatus::Running).unwrap();
        job.lease = Some(Lease {
            worker: "w".into(),
            until: OffsetDateTime::UNIX_EPOCH,
        });
        job.set_status(JobStatus::Failed).unwrap();
        assert!(job.lease.is_none());
        assert!(job.set_status(JobStatus::Running).is_err());
    }

    #[test]
    fn lease_expiry_only_concerns_running_jobs() {
        let mut job = job();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(100);
        assert!(!job.lease_expired(now));
        job.status = JobStatus::Running;
        assert!(job.lease_expired(now));
        job.lease = Some(Lease {
            worker: "w".into(),
            until: now + time::Duration::seconds(1),
        });
        assert!(!job.lease_expired(now));
    }

    #[test]
    fn complete_build_skips_only_pending_tasks() {
        let mut job = job();
        job.tasks[0].status = TaskStatus::Success;
        job.skip_pending_tasks();
        assert_eq!(job.tasks[0].status, TaskStatus::Success);
        assert_eq!(job.tasks[1].status, TaskStatus::Skipped);
    }

    #[test]
    fn job_messages_round_trip() {
        let message = JobMessage { job_id: 42 };
        assert_eq!(message.to_body(), r#"{"job_id":42}"#);
        assert_eq!(JobMessage::from_body(&message.to_body()), Some(message));
        assert_eq!(JobMessage::from_body("garbage"), None);
    }

    #[test]
    fn job_round_trips_through_json() {
        let job = job();
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }
}
