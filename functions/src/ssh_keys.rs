//! `/api/ssh-keys`: the SSH public keys that let their owner into guests held
//! for SSH (`shell: true`, failed builds). Adding and deleting take
//! `jobs:write`, listing `jobs:read`: a key gives access to one's own jobs.

use crate::auth::authorize;
use crate::body::{json_object, Fields};
use crate::error::{ApiError, ApiResult};
use crate::paging::{page_by_id, uuid_in_path, UuidPageQuery};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use builds_domain::api::{PageResource, SshKeyResource};
use builds_domain::ssh_key::{parse_public_key, SshKeyRecord};
use builds_domain::token::Scope;

pub async fn add_ssh_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<SshKeyResource>)> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    let body = json_object(body, 16 * 1024).await?;
    let mut fields = Fields::new(&body);
    let line = fields.required_string("ssh_key");
    let parsed = line.and_then(|line| match parse_public_key(&line) {
        Ok(key) => Some(key),
        Err(err) => {
            fields.problem("ssh_key", err.to_string());
            None
        }
    });
    fields.finish()?;
    let key = parsed.ok_or_else(|| ApiError::field("ssh_key", "ssh_key is required"))?;
    let store = &state.backend.store;
    if let Some(known) = store
        .list_ssh_keys(&caller.owner)
        .await?
        .into_iter()
        .find(|k| k.fingerprint == key.fingerprint)
    {
        return Err(ApiError::field(
            "ssh_key",
            format!("This key is already registered (id {})", known.id),
        ));
    }
    let record = SshKeyRecord {
        id: uuid::Uuid::new_v4().to_string(),
        owner: caller.owner,
        key: key.key,
        comment: key.comment,
        fingerprint: key.fingerprint,
        created: time::OffsetDateTime::now_utc(),
    };
    store.put_ssh_key(&record).await?;
    Ok((StatusCode::CREATED, Json(SshKeyResource::new(&record))))
}

pub async fn list_ssh_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UuidPageQuery>,
) -> ApiResult<Json<PageResource<SshKeyResource>>> {
    let caller = authorize(&state, &headers, Scope::JobsRead).await?;
    let keys = state.backend.store.list_ssh_keys(&caller.owner).await?;
    let page = page_by_id(&keys, query.start.as_deref(), |k| &k.id, "SSH keys")?;
    Ok(Json(page.map(SshKeyResource::new)))
}

pub async fn delete_ssh_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let caller = authorize(&state, &headers, Scope::JobsWrite).await?;
    let id = uuid_in_path(&id)?;
    if state
        .backend
        .store
        .delete_ssh_key(&caller.owner, &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
