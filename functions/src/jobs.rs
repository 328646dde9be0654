//! `/api/jobs…`: list, submit, get, manifest, artifacts, start, cancel.

use crate::auth::{authorize, Caller};
use crate::body::{json_object, Fields};
use crate::error::{ApiError, ApiResult};
use crate::links::signed_log_links;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use builds_domain::api::{
    ApiError as ErrorItem, ArtifactResource, JobResource, PageResource, RESULTS_PER_PAGE,
};
use builds_domain::job::{Job, JobId, JobMessage, NewJob};
use builds_domain::manifest;
use builds_domain::ports::{update_job, UpdateError};
use builds_domain::status::JobStatus;
use builds_domain::token::Scope;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::LazyLock;

static TAG: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z0-9_.-]+$").unwrap_or_else(|_| unreachable!("a valid pattern"))
});

/// `?start=<id>` of paginated lists.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub start: Option<String>,
}

impl PageQuery {
    pub fn start(&self) -> ApiResult<Option<u64>> {
        match self.start.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| ApiError::field("start", "start must be a job ID")),
        }
    }
}

/// Parses the `:id` path segment; anything but a number is a 404.
pub fn parse_id(text: &str) -> ApiResult<u64> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// The caller's job `id`; another owner's job is a 404, never data.
pub async fn owned_job(state: &AppState, caller: &Caller, id: JobId) -> ApiResult<Job> {
    match state.backend.store.get_job(id).await? {
        Some(job) if job.owner == caller.owner => Ok(job),
        _ => Err(ApiError::not_found()),
    }
}

pub fn job_resource(state: &AppState, job: &Job) -> JobResource {
    JobResource::new(job, &signed_log_links(state))
}

pub async fn list_jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<PageResource<JobResource>>> {
    let caller = authorize(&state, &headers, Scope::JobsRead).await?;
    let page = state
        .backend
        .store
        .list_jobs(&caller.owner, query.start()?, RESULTS_PER_PAGE)
        .await?;
    Ok(Json(PageResource {
        next: page.next.map(|id| id.to_string()),
        results: page.jobs.iter().map(|j| job_resource(&state, j)).collect(),
        total: page.total,
        results_per_page: RESULTS_PER_PAGE,
    }))
}

/// Checks the fields of a submission; all problems at once.
struct Submission {
    manifest: manifest::Manifest,
    manifest_text: String,
    note: Option<String>,
    tags: Vec<String>,
    execute: bool,
    secrets: bool,
}

fn read_submission(
    state: &AppState,
    body: &serde_json::Map<String, Value>,
) -> ApiResult<Submission> {
    let mut fields = Fields::new(body);
    let manifest_text = fields.required_string("manifest");
    let note = fields.note();
    let tags = fields.string_list("tags");
    for tag in &tags {
        if !TAG.is_match(tag) {
            fields.problem(
                "tags",
                format!("Invalid tag {tag:?}: tags use lowercase letters, digits and -_."),
            );
        }
    }
    let execute = fields.bool("execute", true);
    let secrets = fields.bool("secrets", true);
    let parsed = manifest_text
        .as_deref()
        .map(|text| match &state.config.images {
            Some(images) => manifest::parse_for_images(text, images),
            None => manifest::parse(text),
        });
    let manifest = match parsed {
        Some(Ok(manifest)) => Some(manifest),
        Some(Err(problems)) => {
            fields
                .errors
                .extend(problems.into_iter().map(|p| ErrorItem {
                    field: Some("manifest".to_string()),
                    reason: p.to_string(),
                }));
            None
        }
        None => None,
    };
    fields.finish()?;
    match (manifest, manifest_text) {
        (Some(manifest), Some(manifest_text)) => Ok(Submission {
            manifest,
            manifest_text,
            note,
            tags,
            execute,
            secrets,
        }),
        _ => Err(ApiError::field("manifest", "manifest is required")),
    }
}

/// Puts a queued job on the queue; if the queue refuses, the job is failed
/// with the reason rather than left queued with no message.
pub async fn enqueue(state: &AppState, job: &Job) -> ApiResult<()> {
    let message = JobMessage { job_id: job.id }.to_body();
    if let Err(err) = state.backend.queue.send(&message).await {
        tracing::error!(job = job.id, %err, "could not enqueue a job");
        let _ = update_job(state.backend.store.as_ref(), job.id, |job| {
            job.set_status(JobStatus::Failed)?;
            job.reason = Some("The job could not be queued".to_string());
            Ok::<_, builds_domain::status::IllegalTransition>(())
        })
        .await;
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "The job queue is unavailable; the job was not started",
        ));
    }
    Ok(())
}

pub async fn submit_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    let body = json_object(body, state.config.max_body).await?;
    let submission = read_submission(&state, &body)?;
    let job = state
        .backend
        .store
        .create_job(NewJob {
            owner: caller.owner.clone(),
            status: if submission.execute {
                JobStatus::Queued
            } else {
                JobStatus::Pending
            },
            image: submission.manifest.image.clone(),
            task_names: submission
                .manifest
                .tasks
                .iter()
                .map(|t| t.name.clone())
                .collect(),
            manifest: submission.manifest_text,
            note: submission.note,
            tags: submission.tags,
            secrets: submission.secrets,
            group_id: None,
        })
        .await?;
    if submission.execute {
        enqueue(&state, &job).await?;
    }
    tracing::info!(job = job.id, owner = %caller.owner, status = %job.status, "job submitted");
    Ok(Json(json!({ "id": job.id })))
}

pub async fn get_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<JobResource>> {
    let caller = authorize(&state, &headers, Scope::JobsRead).await?;
    let job = owned_job(&state, &caller, parse_id(&id)?).await?;
    Ok(Json(job_resource(&state, &job)))
}

pub async fn get_manifest(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let caller = authorize(&state, &headers, Scope::JobsRead).await?;
    let job = owned_job(&state, &caller, parse_id(&id)?).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        job.manifest,
    ))
}

pub async fn list_artifacts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<PageResource<ArtifactResource>>> {
    let caller = authorize(&state, &headers, Scope::JobsRead).await?;
    let job = owned_job(&state, &caller, parse_id(&id)?).await?;
    let start = query.start()?;
    let mut artifacts: Vec<_> = job
        .artifacts
        .iter()
        .filter(|a| start.is_none_or(|s| a.id <= s))
        .collect();
    artifacts.sort_by_key(|a| std::cmp::Reverse(a.id));
    let total = job.artifacts.len() as u64;
    let next = artifacts.get(RESULTS_PER_PAGE).map(|a| a.id.to_string());
    let mut results = Vec::new();
    for artifact in artifacts.into_iter().take(RESULTS_PER_PAGE) {
        let url = state
            .backend
            .blobs
            .presign_get(&artifact.blob_key, state.config.link_ttl)
            .await?;
        results.push(ArtifactResource::new(artifact, url));
    }
    Ok(Json(PageResource {
        next,
        results,
        total,
        results_per_page: RESULTS_PER_PAGE,
    }))
}

/// Why `start` or `cancel` refused.
#[derive(Debug)]
pub struct Refusal(pub String);

/// Moves the caller's pending job to queued and enqueues it.
pub async fn start(state: &AppState, caller: &Caller, id: JobId) -> ApiResult<Job> {
    owned_job(state, caller, id).await?;
    let job = update_job(state.backend.store.as_ref(), id, |job| {
        if let Some(reason) = job.status.start_refusal() {
            return Err(Refusal(reason.to_string()));
        }
        job.set_status(JobStatus::Queued)
            .map_err(|e| Refusal(e.to_string()))
    })
    .await
    .map_err(update_error)?;
    enqueue(state, &job).await?;
    Ok(job)
}

/// Cancels the caller's job if it is pending, queued or running. A queued job's
/// message stays on the queue; workers drop messages of cancelled jobs. A
/// running job's worker sees the status and kills the VM.
pub async fn cancel(state: &AppState, caller: &Caller, id: JobId) -> ApiResult<Job> {
    owned_job(state, caller, id).await?;
    update_job(state.backend.store.as_ref(), id, |job| {
        if !job.status.can_cancel() {
            return Err(Refusal(format!(
                "This job cannot be cancelled: it is already {}",
                job.status
            )));
        }
        job.set_status(JobStatus::Cancelled)
            .map_err(|e| Refusal(e.to_string()))?;
        job.reason = Some("Cancelled by its owner".to_string());
        Ok(())
    })
    .await
    .map_err(update_error)
}

pub fn update_error(err: UpdateError<Refusal>) -> ApiError {
    match err {
        UpdateError::NotFound(_) => ApiError::not_found(),
        UpdateError::Refused(Refusal(reason)) => ApiError::bad_request(reason),
        UpdateError::Store(err) => ApiError::from(err),
    }
}

pub async fn start_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    start(&state, &caller, parse_id(&id)?).await?;
    Ok(Json(json!({})))
}

pub async fn cancel_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    cancel(&state, &caller, parse_id(&id)?).await?;
    Ok(Json(json!({})))
}
