//! Links that responses carry: signed, expiring log URLs served by the log
//! endpoint, and artifact URLs presigned by the blob store.

use crate::state::AppState;
use builds_domain::api::LogLinks;
use builds_domain::job::Job;
pub use builds_domain::job::{log_path, setup_log_key, task_log_key};
use builds_domain::status::{JobStatus, TaskStatus};

/// Makes signed log links for job resources.
pub struct SignedLogLinks<'a> {
    pub state: &'a AppState,
}

impl SignedLogLinks<'_> {
    fn link(&self, path: &str) -> String {
        let expires = time::OffsetDateTime::now_utc() + self.state.config.link_ttl;
        format!(
            "{}{}?{}",
            self.state.config.origin,
            path,
            self.state.backend.signer.query(path, expires)
        )
    }
}

impl LogLinks for SignedLogLinks<'_> {
    fn setup_log(&self, job: &Job) -> Option<String> {
        let started = !matches!(job.status, JobStatus::Pending | JobStatus::Queued)
            && (job.runner.is_some() || job.status == JobStatus::Running);
        started.then(|| self.link(&log_path(job.id, None)))
    }

    fn task_log(&self, job: &Job, task: &str) -> Option<String> {
        let started = job
            .tasks
            .iter()
            .find(|t| t.name == task)
            .is_some_and(|t| !matches!(t.status, TaskStatus::Pending | TaskStatus::Skipped));
        started.then(|| self.link(&log_path(job.id, Some(task))))
    }
}
