//! `GET /logs/:id/setup` and `GET /logs/:id/tasks/:name`: a job's logs, through
//! signed links (no header needed), readable while the job runs, with Range.

use crate::blobs::{blob_response, parse_range, RangeRequest};
use crate::error::{ApiError, ApiResult};
use crate::links::{log_path, setup_log_key, task_log_key};
use crate::state::AppState;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use builds_domain::ports::BlobRead;

const TEXT: &str = "text/plain; charset=utf-8";

async fn serve_log(
    state: &AppState,
    job_id: &str,
    task: Option<&str>,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let job_id: u64 = job_id.parse().map_err(|_| ApiError::not_found())?;
    let path = log_path(job_id, task);
    if !state
        .backend
        .signer
        .verify(&path, uri.query(), time::OffsetDateTime::now_utc())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "This log link is invalid or has expired",
        ));
    }
    let key = match task {
        None => setup_log_key(job_id),
        Some(task) => task_log_key(job_id, task),
    };
    let range = parse_range(headers);
    let byte_range = RangeRequest::byte_range(range);
    let read = match state.backend.blobs.get(&key, byte_range).await? {
        Some(read) => read,
        // Started but nothing written yet: an empty log, not an error.
        None if state.backend.store.get_job(job_id).await?.is_some() => BlobRead {
            bytes: Default::default(),
            start: 0,
            total: 0,
        },
        None => return Err(ApiError::not_found()),
    };
    Ok(blob_response(
        RangeRequest::cut(range, read),
        range.is_some(),
        TEXT,
    ))
}

pub async fn setup_log(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_log(&state, &job_id, None, &uri, &headers).await
}

pub async fn task_log(
    State(state): State<AppState>,
    Path((job_id, task)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if builds_domain::ports::check_blob_key(&task).is_err() || task.contains('/') {
        return Err(ApiError::not_found());
    }
    serve_log(&state, &job_id, Some(&task), &uri, &headers).await
}
