//! Bearer tokens: `Authorization: Bearer T` or `token T`, looked up by hash,
//! checked for expiry and for the scope the endpoint needs.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use builds_domain::token::{hash_token, token_from_header, Scope};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub owner: String,
    pub scopes: Vec<Scope>,
}

pub const NO_AUTHORIZATION: &str = "No authorization supplied (expected an OAuth token)";
pub const INVALID_TOKEN: &str = "Invalid or expired OAuth token";

pub fn missing_scope(scope: Scope) -> String {
    format!("Your OAuth token is not authorized for the {scope} scope")
}

/// The caller, if the request carries a valid token with `scope`.
pub async fn authorize(state: &AppState, headers: &HeaderMap, scope: Scope) -> ApiResult<Caller> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, NO_AUTHORIZATION));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(token_from_header)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, INVALID_TOKEN))?;
    let record = state
        .backend
        .store
        .get_token(&hash_token(token))
        .await?
        .filter(|record| !record.is_expired(time::OffsetDateTime::now_utc()))
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, INVALID_TOKEN))?;
    if !record.allows(scope) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, missing_scope(scope)));
    }
    Ok(Caller {
        owner: record.owner,
        scopes: record.scopes,
    })
}
