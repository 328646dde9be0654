//! `/api/job-group…`: create a group from pending jobs, read it, start it,
//! cancel it.

use crate::auth::{authorize, Caller};
use crate::body::{json_object, Fields};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{self, owned_job, parse_id, Refusal};
use crate::links::signed_log_links;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use builds_domain::api::GroupResource;
use builds_domain::job::{Group, NewGroup};
use builds_domain::ports::update_job;
use builds_domain::status::JobStatus;
use builds_domain::token::Scope;
use serde_json::{json, Value};

async fn group_resource(state: &AppState, group: &Group) -> ApiResult<GroupResource> {
    let mut jobs = Vec::with_capacity(group.job_ids.len());
    for id in &group.job_ids {
        if let Some(job) = state.backend.store.get_job(*id).await? {
            jobs.push(job);
        }
    }
    Ok(GroupResource::new(group, &jobs, &signed_log_links(state)))
}

async fn owned_group(state: &AppState, caller: &Caller, id: u64) -> ApiResult<Group> {
    match state.backend.store.get_group(id).await? {
        Some(group) if group.owner == caller.owner => Ok(group),
        _ => Err(ApiError::not_found()),
    }
}

pub async fn create_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<GroupResource>> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    let body = json_object(body, state.config.max_body).await?;
    let mut fields = Fields::new(&body);
    let job_ids = fields.id_list("jobs");
    let note = fields.note();
    let execute = fields.bool("execute", true);
    // Checked by the manifest's trigger rules; kept as given.
    let triggers = match fields.raw("triggers") {
        None | Some(Value::Null) => json!([]),
        Some(given) => match builds_domain::manifest::parse_triggers(given) {
            Ok(_) => given.clone(),
            Err(problems) => {
                for problem in problems {
                    fields.problem(&problem.field, problem.reason);
                }
                json!([])
            }
        },
    };
    if job_ids.is_empty()
        && !fields
            .errors
            .iter()
            .any(|e| e.field.as_deref() == Some("jobs"))
    {
        fields.problem("jobs", "A job group needs at least one job");
    }
    for id in &job_ids {
        match state.backend.store.get_job(*id).await? {
            Some(job) if job.owner == caller.owner => {
                if job.status != JobStatus::Pending {
                    fields.problem(
                        "jobs",
                        format!("Job {id} is not pending (submit it with execute: false)"),
                    );
                } else if job.group_id.is_some() {
                    fields.problem("jobs", format!("Job {id} is already in a group"));
                }
            }
            _ => fields.problem("jobs", format!("Job {id} not found")),
        }
    }
    fields.finish()?;
    let group = state
        .backend
        .store
        .create_group(NewGroup {
            owner: caller.owner.clone(),
            note,
            job_ids: job_ids.clone(),
            triggers,
        })
        .await?;
    for id in &job_ids {
        update_job(state.backend.store.as_ref(), *id, |job| {
            if job.group_id.is_some_and(|g| g != group.id) {
                return Err(Refusal(format!("Job {} is already in a group", job.id)));
            }
            job.group_id = Some(group.id);
            Ok(())
        })
        .await
        .map_err(jobs::update_error)?;
    }
    if execute {
        start_all(&state, &caller, &group).await?;
    }
    Ok(Json(group_resource(&state, &group).await?))
}

async fn start_all(state: &AppState, caller: &Caller, group: &Group) -> ApiResult<()> {
    for id in &group.job_ids {
        let job = owned_job(state, caller, *id).await?;
        if job.status == JobStatus::Pending {
            jobs::start(state, caller, *id).await?;
        }
    }
    Ok(())
}

pub async fn get_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<GroupResource>> {
    let caller = authorize(&state, &headers, Scope::JobsRead).await?;
    let group = owned_group(&state, &caller, parse_id(&id)?).await?;
    Ok(Json(group_resource(&state, &group).await?))
}

pub async fn start_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    let group = owned_group(&state, &caller, parse_id(&id)?).await?;
    let mut pending = 0;
    for id in &group.job_ids {
        if owned_job(&state, &caller, *id).await?.status == JobStatus::Pending {
            pending += 1;
        }
    }
    if pending == 0 {
        return Err(ApiError::bad_request("This job group is already started"));
    }
    start_all(&state, &caller, &group).await?;
    Ok(Json(json!({})))
}

pub async fn cancel_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    let group = owned_group(&state, &caller, parse_id(&id)?).await?;
    for id in &group.job_ids {
        if owned_job(&state, &caller, *id).await?.status.can_cancel() {
            // A job that finished meanwhile is simply left as it is.
            match jobs::cancel(&state, &caller, *id).await {
                Ok(_) => {}
                Err(err) if err.status == axum::http::StatusCode::BAD_REQUEST => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(Json(json!({})))
}
