//! `GET /api/webhook-key`: the Ed25519 public key that verifies webhook
//! payloads (`X-Payload-Signature` over the body followed by `X-Payload-Nonce`).
//! Public: receivers fetch it without a token.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub async fn webhook_key(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    match &state.config.webhook_public_key {
        Some(key) => Ok(Json(json!({
            "algorithm": "ed25519",
            "public_key": key,
            "signed": "the request body followed by the X-Payload-Nonce header",
        }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "This deployment does not sign webhooks",
        )),
    }
}
