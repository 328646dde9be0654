//! What a job's triggers say once it has ended, as pure functions: which fire,
//! what a webhook's signature covers, and what an email says. Delivery (HTTP,
//! SMTP) is the worker's.

use crate::job::{Group, Job};
use crate::manifest::Trigger;
use crate::status::JobStatus;

/// The triggers that fire for a job that ended with `status`, in manifest order.
pub fn due(triggers: &[Trigger], status: JobStatus) -> Vec<&Trigger> {
    let status = status.to_string();
    triggers
        .iter()
        .filter(|trigger| trigger.condition.matches(&status))
        .collect()
}

/// The bytes a webhook's `X-Payload-Signature` signs: the body, then the nonce
/// sent in `X-Payload-Nonce` (so a captured body cannot be replayed under
/// another nonce).
pub fn signed_bytes(body: &[u8], nonce: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(body.len() + nonce.len());
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(nonce.as_bytes());
    bytes
}

/// How a group ended, once every one of its jobs has: `success` when all
/// succeeded; otherwise `failed`, `timeout` or `cancelled`, the first that any
/// job ended with in that order. `None` while a job has yet to end.
pub fn group_status(jobs: &[Job]) -> Option<JobStatus> {
    if jobs.is_empty() || !jobs.iter().all(|job| job.status.is_terminal()) {
        return None;
    }
    [JobStatus::Failed, JobStatus::Timeout, JobStatus::Cancelled]
        .into_iter()
        .find(|status| jobs.iter().any(|job| job.status == *status))
        .or(Some(JobStatus::Success))
}

/// An email about an ended job (or group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEmail {
    pub subject: String,
    pub body: String,
}

/// `✓ builds job #7 SUCCESS: first line of the note` (✗ when it did not succeed).
fn subject(what: &str, status: JobStatus, note: Option<&str>) -> String {
    let mark = if status == JobStatus::Success {
        "✓"
    } else {
        "✗"
    };
    let note = note
        .and_then(|note| note.lines().next())
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!(": {}", line.trim()))
        .unwrap_or_default();
    format!(
        "{mark} builds {what} {}{note}",
        status.to_string().to_uppercase()
    )
}

/// The email a job's `email` trigger sends: the status and note in the
/// subject; each task's status, the reason and the job's URL in the body.
pub fn job_email(job: &Job, job_url: &str) -> JobEmail {
    let subject = subject(&format!("job #{}", job.id), job.status, job.note.as_deref());
    let mut body = format!("Job #{} ({}) ended: {}\n", job.id, job.image, job.status);
    if let Some(reason) = &job.reason {
        body.push_str(&format!("{reason}\n"));
    }
    body.push('\n');
    let width = job.tasks.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for task in &job.tasks {
        body.push_str(&format!("  {:width$}  {}\n", task.name, task.status));
    }
    body.push_str(&format!("\n{job_url}\n"));
    JobEmail { subject, body }
}

/// The email a group's `email` trigger sends: the group's status and note in
/// the subject; each job's status and image in the body.
pub fn group_email(group: &Group, status: JobStatus, jobs: &[Job], group_url: &str) -> JobEmail {
    let subject = subject(
        &format!("job group #{}", group.id),
        status,
        group.note.as_deref(),
    );
    let mut body = format!(
        "Job group #{} ({} jobs) ended: {status}\n\n",
        group.id,
        jobs.len()
    );
    for job in jobs {
        body.push_str(&format!(
            "  #{:<8} {:<10} {}\n",
            job.id,
            job.status.to_string(),
            job.image
        ));
    }
    body.push_str(&format!("\n{group_url}\n"));
    JobEmail { subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{NewJob, TaskRecord};
    use crate::manifest::{TriggerAction, TriggerCondition};
    use crate::status::TaskStatus;

    fn trigger(condition: TriggerCondition) -> Trigger {
        Trigger {
            action: TriggerAction::Webhook {
                url: format!("https://example.org/{condition:?}"),
            },
            condition,
        }
    }

    #[test]
    fn conditions_pick_the_triggers_that_fire() {
        let all = [
            trigger(TriggerCondition::Always),
            trigger(TriggerCondition::Success),
            trigger(TriggerCondition::Failure),
        ];
        let fired = |status| {
            due(&all, status)
                .iter()
                .map(|t| t.condition)
                .collect::<Vec<_>>()
        };
        use TriggerCondition::*;
        assert_eq!(fired(JobStatus::Success), [Always, Success]);
        for failure in [JobStatus::Failed, JobStatus::Timeout, JobStatus::Cancelled] {
            assert_eq!(fired(failure), [Always, Failure], "{failure}");
        }
        for unfinished in [JobStatus::Pending, JobStatus::Queued, JobStatus::Running] {
            assert!(fired(unfinished).is_empty(), "{unfinished}");
        }
    }

    #[test]
    fn the_signature_covers_body_then_nonce() {
        assert_eq!(signed_bytes(b"{}", "abc"), b"{}abc");
        assert_ne!(signed_bytes(b"{}a", "bc"), signed_bytes(b"{}", "xbc"));
    }

    #[test]
    fn the_email_lists_each_task() {
        let mut job = NewJob {
            owner: "alice".into(),
            status: JobStatus::Failed,
            manifest: String::new(),
            image: "debian/bookworm".into(),
            note: Some("Fix the parser\n\nlong description".into()),
            tags: vec![],
            secrets: false,
            task_names: vec![],
            group_id: None,
        }
        .into_job(42, crate::job::now());
        job.tasks = vec![
            TaskRecord {
                name: "build".into(),
                status: TaskStatus::Success,
            },
            TaskRecord {
                name: "test-all".into(),
                status: TaskStatus::Failed,
            },
            TaskRecord {
                name: "deploy".into(),
                status: TaskStatus::Skipped,
            },
        ];
        let email = job_email(&job, "https://ci.example/~alice/job/42");
        assert_eq!(email.subject, "✗ builds job #42 FAILED: Fix the parser");
        assert!(
            email.body.contains("  build     success\n"),
            "{}",
            email.body
        );
        assert!(email.body.contains("  test-all  failed\n"));
        assert!(email.body.contains("  deploy    skipped\n"));
        assert!(email.body.ends_with("https://ci.example/~alice/job/42\n"));
    }

    #[test]
    fn a_group_ends_when_its_last_job_does() {
        let job = |id, status| {
            NewJob {
                owner: "alice".into(),
                status,
                manifest: String::new(),
                image: "debian/bookworm".into(),
                note: None,
                tags: vec![],
                secrets: false,
                task_names: vec![],
                group_id: Some(3),
            }
            .into_job(id, crate::job::now())
        };
        use JobStatus::*;
        let status = |statuses: &[JobStatus]| {
            let jobs: Vec<Job> = statuses
                .iter()
                .enumerate()
                .map(|(i, s)| job(i as u64 + 1, *s))
                .collect();
            group_status(&jobs)
        };
        assert_eq!(status(&[Success, Success]), Some(Success));
        assert_eq!(status(&[Success, Running]), None);
        assert_eq!(status(&[Queued]), None);
        assert_eq!(status(&[]), None);
        assert_eq!(status(&[Cancelled, Timeout, Success]), Some(Timeout));
        assert_eq!(status(&[Cancelled, Failed]), Some(Failed));
        assert_eq!(status(&[Cancelled, Success]), Some(Cancelled));

        let group = Group {
            id: 3,
            owner: "alice".into(),
            note: Some("release 1.2\nmore".into()),
            job_ids: vec![1, 2],
            triggers: serde_json::json!([]),
            created: crate::job::now(),
        };
        let jobs = [job(1, Success), job(2, Failed)];
        let email = group_email(&group, Failed, &jobs, "https://ci.example/api/job-group/3");
        assert_eq!(email.subject, "✗ builds job group #3 FAILED: release 1.2");
        assert!(
            email.body.contains("#1        success    debian/bookworm"),
            "{}",
            email.body
        );
        assert!(email.body.contains("#2        failed"));
        assert!(email.body.ends_with("https://ci.example/api/job-group/3\n"));
    }
}
