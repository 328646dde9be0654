//! What every Lambda binary does: build the backend from the environment once,
//! then serve one endpoint with `lambda_http::run`.

use crate::config::ApiConfig;
use crate::endpoints::{endpoint_router, Endpoint};
use crate::state::AppState;
use anyhow::Context;
use builds_storage::aws::AwsNames;
use builds_storage::{Backend, UrlSigner};

/// The key that signs log links, from `BUILDS_SIGNING_KEY` (hex, at least 32
/// bytes). Every function and the worker must share it.
pub fn signer_from_env() -> anyhow::Result<UrlSigner> {
    let hex_key = std::env::var("BUILDS_SIGNING_KEY")
        .context("BUILDS_SIGNING_KEY must hold the hex key that signs log links")?;
    let key = hex::decode(hex_key.trim()).context("BUILDS_SIGNING_KEY is not hex")?;
    anyhow::ensure!(
        key.len() >= 32,
        "BUILDS_SIGNING_KEY must be at least 32 bytes"
    );
    Ok(UrlSigner::new(key))
}

/// The API state for the AWS backend, from the environment (see README).
pub async fn aws_state_from_env() -> anyhow::Result<AppState> {
    let backend = Backend::aws(&AwsNames::from_env(), signer_from_env()?)
        .await
        .context("connecting to the AWS backend")?;
    Ok(AppState::new(backend, ApiConfig::from_env()?))
}

/// REST API (v1) events carry the stage in the path (`/prod/api/jobs`); the
/// routes know only `/api/jobs`, so the stage is taken off first.
async fn strip_stage(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage else { return request };
    let prefix = format!("/{stage}/");
    let uri = request.uri();
    if let Some(rest) = uri.path().strip_prefix(&prefix[..prefix.len() - 1]) {
        if rest.starts_with('/') {
            let path_and_query = match uri.query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_string(),
            };
            let mut parts = uri.clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(new_uri) = axum::http::Uri::from_parts(parts) {
                    *request.uri_mut() = new_uri;
                }
            }
        }
    }
    request
}

/// What a function serves: one endpoint, reached from API Gateway HTTP API (v2)
/// or REST API (v1) events alike.
pub fn function_router(endpoint: Endpoint, state: AppState) -> axum::Router {
    // A layer on a router runs after routing; on an outer router whose only
    // route is the fallback, it runs before the inner router routes.
    axum::Router::new()
        .fallback_service(endpoint_router(endpoint, state))
        .layer(axum::middleware::map_request(strip_stage))
}

/// The body of every function binary.
pub async fn run(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let state = aws_state_from_env().await?;
    tracing::info!(function = endpoint.function_name(), "ready");
    lambda_http::run(function_router(endpoint, state)).await
}
