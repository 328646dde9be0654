//! The JSON shapes of the builds.sr.ht legacy REST API: job resource, artifact,
//! paginated list, error envelope, and its timestamp format.

use crate::job::{Artifact, Job};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Items per page, as builds.sr.ht pages.
pub const RESULTS_PER_PAGE: usize = 50;

/// Formats a time as sr.ht does: `YYYY-MM-DDTHH:MM:SS+00:00`, always UTC.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerResource {
    pub canonical_name: String,
    pub name: String,
}

impl OwnerResource {
    pub fn new(name: &str) -> Self {
        OwnerResource {
            canonical_name: format!("~{name}"),
            name: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResource {
    pub name: String,
    pub status: String,
    /// A URL that serves the task's log, or null before it has started.
    pub log: Option<String>,
}

/// A job as `GET /api/jobs/:id` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResource {
    pub id: u64,
    pub status: String,
    pub created: String,
    pub updated: String,
    pub image: String,
    pub note: Option<String>,
    pub runner: Option<String>,
    /// Tags joined with `/`, or null when there are none.
    pub tags: Option<String>,
    pub owner: OwnerResource,
    pub setup_log: Option<String>,
    pub tasks: Vec<TaskResource>,
    pub group_id: Option<u64>,
    /// While the guest is held for SSH: `ssh://<job id>@host:port` (see
    /// `builds ssh`). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// Where a job's logs can be read; the API layer knows how to sign them.
pub trait LogLinks {
    fn setup_log(&self, job: &Job) -> Option<String>;
    fn task_log(&self, job: &Job, task: &str) -> Option<String>;
}

/// No log links: for job resources rendered where the links could not be
/// signed.
pub struct WithoutLogLinks;

impl LogLinks for WithoutLogLinks {
    fn setup_log(&self, _: &Job) -> Option<String> {
        None
    }

    fn task_log(&self, _: &Job, _: &str) -> Option<String> {
        None
    }
}

impl JobResource {
    pub fn new(job: &Job, links: &dyn LogLinks) -> Self {
        JobResource {
            id: job.id,
            status: job.status.to_string(),
            created: format_timestamp(job.created),
            updated: format_timestamp(job.updated),
            image: job.image.clone(),
            note: job.note.clone(),
            runner: job.runner.clone(),
            tags: (!job.tags.is_empty()).then(|| job.tags.join("/")),
            owner: OwnerResource::new(&job.owner),
            setup_log: links.setup_log(job),
            tasks: job
                .tasks
                .iter()
                .map(|t| TaskResource {
                    name: t.name.clone(),
                    status: t.status.to_string(),
                    log: links.task_log(job, &t.name),
                })
                .collect(),
            group_id: job.group_id,
            shell: job
                .shell
                .as_ref()
                .filter(|_| job.status == crate::status::JobStatus::Running)
                .map(|address| format!("ssh://{}@{address}", job.id)),
        }
    }
}

/// An artifact as `GET /api/jobs/:id/artifacts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactResource {
    pub id: u64,
    pub created: String,
    pub path: String,
    pub name: String,
    pub url: String,
    pub size: u64,
}

impl ArtifactResource {
    pub fn new(artifact: &Artifact, url: String) -> Self {
        ArtifactResource {
            id: artifact.id,
            created: format_timestamp(artifact.created),
            path: artifact.path.clone(),
            name: artifact.name.clone(),
            url,
            size: artifact.size,
        }
    }
}

/// A job group as `GET /api/job-group/:id` returns it (and its webhooks post).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupResource {
    pub id: u64,
    pub created: String,
    pub note: Option<String>,
    pub owner: OwnerResource,
    pub jobs: Vec<JobResource>,
    pub triggers: serde_json::Value,
}

impl GroupResource {
    /// `jobs` are the group's jobs (those still stored), in the group's order.
    pub fn new(group: &crate::job::Group, jobs: &[Job], links: &dyn LogLinks) -> Self {
        GroupResource {
            id: group.id,
            created: format_timestamp(group.created),
            note: group.note.clone(),
            owner: OwnerResource::new(&group.owner),
            jobs: jobs
                .iter()
                .map(|job| JobResource::new(job, links))
                .collect(),
            triggers: group.triggers.clone(),
        }
    }
}

/// A secret as `/api/secrets` shows it: everything but the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretResource {
    pub id: String,
    pub created: String,
    pub name: Option<String>,
    pub secret_type: String,
    /// A file secret's path.
    pub path: Option<String>,
    /// A file secret's mode, in octal (`"600"`).
    pub mode: Option<String>,
}

impl SecretResource {
    pub fn new(secret: &crate::secret::SecretRecord) -> Self {
        SecretResource {
            id: secret.id.clone(),
            created: format_timestamp(secret.created),
            name: secret.name.clone(),
            secret_type: secret.kind.as_str().to_string(),
            path: secret.path.clone(),
            mode: secret.mode.map(|m| format!("{m:o}")),
        }
    }
}

/// A registered SSH public key as `/api/ssh-keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeyResource {
    pub id: String,
    pub created: String,
    /// `type base64`.
    pub key: String,
    pub comment: Option<String>,
    pub fingerprint: String,
}

impl SshKeyResource {
    pub fn new(key: &crate::ssh_key::SshKeyRecord) -> Self {
        SshKeyResource {
            id: key.id.clone(),
            created: format_timestamp(key.created),
            key: key.key.clone(),
            comment: key.comment.clone(),
            fingerprint: key.fingerprint.clone(),
        }
    }
}

/// One page of a list, sr.ht style: `next` is the id to pass as `?start=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageResource<T> {
    pub next: Option<String>,
    pub results: Vec<T>,
    pub total: u64,
    pub results_per_page: usize,
}

/// One error of the sr.ht envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    pub reason: String,
}

/// `{"errors":[{"field":…,"reason":…}]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub errors: Vec<ApiError>,
}

impl ErrorEnvelope {
    pub fn reason(reason: impl Into<String>) -> Self {
        ErrorEnvelope {
            errors: vec![ApiError {
                field: None,
                reason: reason.into(),
            }],
        }
    }

    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ErrorEnvelope {
            errors: vec![ApiError {
                field: Some(field.into()),
                reason: reason.into(),
            }],
        }
    }

    pub fn not_found() -> Self {
        ErrorEnvelope::reason("404 not found")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::NewJob;
    use crate::status::JobStatus;
    use serde_json::json;

    struct NoLinks;
    impl LogLinks for NoLinks {
        fn setup_log(&self, job: &Job) -> Option<String> {
            Some(format!("http://x/logs/{}/setup", job.id))
        }
        fn task_log(&self, _: &Job, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn timestamps_use_the_sr_ht_format_in_utc() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format_timestamp(at), "2023-11-14T22:13:20+00:00");
    }

    #[test]
    fn job_resource_has_the_sr_ht_shape() {
        let job = NewJob {
            owner: "alice".into(),
            status: JobStatus::Queued,
            manifest: String::new(),
            image: "debian/bookworm".into(),
            note: Some("n".into()),
            tags: vec!["a".into(), "b".into()],
            secrets: true,
            task_names: vec!["build".into()],
            group_id: None,
        }
        .into_job(3, OffsetDateTime::UNIX_EPOCH);
        let value = serde_json::to_value(JobResource::new(&job, &NoLinks)).unwrap();
        assert_eq!(value["id"], 3);
        assert_eq!(value["status"], "queued");
        assert_eq!(value["tags"], "a/b");
        assert_eq!(
            value["owner"],
            json!({"canonical_name": "~alice", "name": "alice"})
        );
        assert_eq!(value["setup_log"], "http://x/logs/3/setup");
        assert_eq!(
            value["tasks"],
            json!([{"name": "build", "status": "pending", "log": null}])
        );
        assert_eq!(value["created"], "1970-01-01T00:00:00+00:00");
    }

    #[test]
    fn error_envelope_omits_a_missing_field() {
        assert_eq!(
            serde_json::to_value(ErrorEnvelope::not_found()).unwrap(),
            json!({"errors": [{"reason": "404 not found"}]})
        );
        assert_eq!(
            serde_json::to_value(ErrorEnvelope::field("manifest", "bad")).unwrap(),
            json!({"errors": [{"field": "manifest", "reason": "bad"}]})
        );
    }
}
