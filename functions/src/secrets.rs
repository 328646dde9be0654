//! `/api/secrets`: add (sealed before it is stored), list (never the secret
//! itself), delete. Scopes `secrets:write` and `secrets:read`; each user sees
//! and deletes only their own.

use crate::auth::authorize;
use crate::body::{json_object, Fields};
use crate::error::{ApiError, ApiResult};
use crate::paging::{page_by_id, uuid_in_path, UuidPageQuery};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use builds_domain::api::{PageResource, SecretResource};
use builds_domain::ports::StoreError;
use builds_domain::secret::{parse_mode, NewSecret, SecretKind, SecretRecord, MAX_SECRET_BYTES};
use builds_domain::token::Scope;
use serde_json::Value;

/// A request body holds the secret in base64 and a few short fields.
const BODY_LIMIT: usize = MAX_SECRET_BYTES * 4 / 3 + 4096;

/// Reads and checks a new secret; every problem at once.
fn read_new_secret(body: &serde_json::Map<String, Value>) -> ApiResult<NewSecret> {
    let mut fields = Fields::new(body);
    let kind =
        fields
            .required_string("secret_type")
            .and_then(|text| match text.parse::<SecretKind>() {
                Ok(kind) => Some(kind),
                Err(err) => {
                    fields.problem("secret_type", err.to_string());
                    None
                }
            });
    let data = fields.required_string("secret").and_then(|text| {
        match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                fields.problem("secret", "secret must be base64 (standard alphabet)");
                None
            }
        }
    });
    let name = fields.string("name");
    let path = fields.string("path");
    let mode = match fields.raw("mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match parse_mode(text) {
            Some(mode) => Some(mode),
            None => {
                fields.problem(
                    "mode",
                    format!("mode {text:?} is not an octal file mode (0-777)"),
                );
                None
            }
        },
        Some(_) => {
            fields.problem(
                "mode",
                "mode must be a string of octal digits, such as \"600\"",
            );
            None
        }
    };
    let (Some(kind), Some(data)) = (kind, data) else {
        fields.finish()?;
        return Err(ApiError::field("secret", "secret is required"));
    };
    let mut secret = NewSecret {
        name,
        kind,
        path,
        mode,
        data,
    };
    for problem in secret.check() {
        fields.problem(problem.field, problem.reason);
    }
    fields.finish()?;
    Ok(secret)
}

pub async fn add_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<SecretResource>)> {
    let caller = authorize(&state, &headers, Scope::SecretsWrite).await?;
    let body = json_object(body, BODY_LIMIT).await?;
    let new = read_new_secret(&body)?;
    let store = &state.backend.store;
    if let Some(name) = &new.name {
        let taken = store
            .list_secrets(&caller.owner)
            .await?
            .iter()
            .any(|s| s.name.as_deref() == Some(name.as_str()));
        if taken {
            return Err(ApiError::field(
                "name",
                format!("You already have a secret named {name:?}"),
            ));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let context = SecretRecord::seal_context(&caller.owner, &id);
    let sealed = state.backend.sealer.seal(&context, &new.data).await?;
    let record = SecretRecord {
        id,
        owner: caller.owner,
        name: new.name,
        kind: new.kind,
        path: new.path,
        mode: new.mode,
        // Full precision: the listing is ordered by it.
        created: time::OffsetDateTime::now_utc(),
        sealed,
    };
    match store.put_secret(&record).await {
        Ok(()) => {}
        // A fresh random UUID that is taken: astronomically unlikely.
        Err(StoreError::Conflict) => {
            return Err(ApiError::internal("a secret with this id exists"))
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(secret = %record.id, kind = %record.kind, "secret added");
    Ok((StatusCode::CREATED, Json(SecretResource::new(&record))))
}

pub async fn list_secrets(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UuidPageQuery>,
) -> ApiResult<Json<PageResource<SecretResource>>> {
    let caller = authorize(&state, &headers, Scope::SecretsRead).await?;
    let secrets = state.backend.store.list_secrets(&caller.owner).await?;
    let page = page_by_id(&secrets, query.start.as_deref(), |s| &s.id, "secrets")?;
    Ok(Json(page.map(SecretResource::new)))
}

pub async fn delete_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let caller = authorize(&state, &headers, Scope::SecretsWrite).await?;
    let id = uuid_in_path(&id)?;
    if state
        .backend
        .store
        .delete_secret(&caller.owner, &id)
        .await?
    {
        tracing::info!(secret = %id, "secret deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
