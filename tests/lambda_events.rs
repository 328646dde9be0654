//! Real-shaped API Gateway events (HTTP API v2 and REST API v1) go through
//! `lambda_http`'s event parsing into a single endpoint's router, exactly as in
//! a deployed function.

use builds_functions::lambda::function_router;
use builds_functions::Endpoint;
use builds_tests::TestApi;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn call(endpoint: Endpoint, api: &TestApi, event: Value) -> (u16, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    let state = builds_functions::AppState::new(
        api.backend.clone(),
        builds_functions::ApiConfig::new(&api.base),
    );
    let response = function_router(endpoint, state)
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn http_api_v2(method: &str, path: &str, token: &str, body: Option<&str>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {token}"),
            "content-type": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "curl/8"},
            "requestId": "req-1",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "28/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795867200000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn rest_api_v1(method: &str, path: &str, token: &str, body: Option<&str>) -> Value {
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Authorization": format!("Bearer {token}"), "Content-Type": "application/json",
                    "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {"Authorization": [format!("Bearer {token}")],
                              "Content-Type": ["application/json"],
                              "Host": ["abc123.execute-api.us-east-1.amazonaws.com"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "res",
            "stage": "prod",
            "requestId": "req-2",
            "identity": {"sourceIp": "192.0.2.1"},
            "resourcePath": path,
            "httpMethod": method,
            "apiId": "abc123",
            "path": format!("/prod{path}")
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[tokio::test]
async fn http_api_v2_events_reach_their_endpoint() {
    let api = TestApi::embedded(None).await;
    let manifest =
        json!({"manifest": "image: debian/bookworm\ntasks:\n  - a: echo a\n"}).to_string();
    let (status, body) = call(
        Endpoint::SubmitJob,
        &api,
        http_api_v2("POST", "/api/jobs", &api.alice, Some(&manifest)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_u64().unwrap();
    let path = format!("/api/jobs/{id}");
    let (status, job) = call(
        Endpoint::GetJob,
        &api,
        http_api_v2("GET", &path, &api.alice, None),
    )
    .await;
    assert_eq!((status, job["status"].as_str()), (200, Some("queued")));
    let (status, body) = call(
        Endpoint::GetJob,
        &api,
        http_api_v2("GET", &path, "bad", None),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["errors"][0]["reason"],
        "Invalid or expired OAuth token"
    );
    // A function only serves its own route.
    let (status, _) = call(
        Endpoint::GetJob,
        &api,
        http_api_v2("GET", "/api/jobs", &api.alice, None),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn rest_api_v1_events_reach_their_endpoint() {
    let api = TestApi::embedded(None).await;
    let manifest =
        json!({"manifest": "image: debian/bookworm\ntasks:\n  - a: echo a\n", "execute": false})
            .to_string();
    let (status, body) = call(
        Endpoint::SubmitJob,
        &api,
        rest_api_v1("POST", "/api/jobs", &api.alice, Some(&manifest)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, list) = call(
        Endpoint::ListJobs,
        &api,
        rest_api_v1("GET", "/api/jobs", &api.alice, None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["results"][0]["status"], "pending");
}
