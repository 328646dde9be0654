//! The HTTP API, end to end over real HTTP against the local server's router:
//! every endpoint and every error, once on the embedded backend and once on the
//! AWS backend (DynamoDB/SQS/S3 in the emulator).

use builds_domain::job::JobMessage;
use builds_domain::ports::update_job;
use builds_domain::status::{JobStatus, TaskStatus};
use builds_tests::TestApi;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const MANIFEST: &str =
    "image: debian/bookworm\ntasks:\n  - build: echo hello\n  - test: echo test\n";
const IMAGES: &[&str] = &["debian/bookworm", "debian/stable"];

fn reasons(body: &Value) -> Vec<(Option<String>, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no error envelope in {body}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().map(str::to_string),
                e["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn has_field(body: &Value, field: &str) -> bool {
    reasons(body)
        .iter()
        .any(|(f, _)| f.as_deref() == Some(field))
}

/// Receives what is on the queue right now and returns the job ids it names.
async fn queued_ids(api: &TestApi) -> Vec<u64> {
    let deliveries = api
        .backend
        .queue
        .receive(10, Duration::from_secs(60), Duration::from_secs(1))
        .await
        .unwrap();
    deliveries
        .iter()
        .map(|d| {
            JobMessage::from_body(&d.body)
                .expect("a job message")
                .job_id
        })
        .collect()
}

async fn auth_errors(api: TestApi) {
    let (status, body) = api.send(api.http.get(api.url("/api/jobs"))).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"errors": [{"reason": "No authorization supplied (expected an OAuth token)"}]})
    );

    let (status, body) = api.get("/api/jobs", "not-a-token").await;
    assert_eq!(status, 401);
    assert_eq!(reasons(&body)[0].1, "Invalid or expired OAuth token");

    let (status, body) = api
        .send(
            api.http
                .get(api.url("/api/jobs"))
                .header("Authorization", "Basic abc"),
        )
        .await;
    assert_eq!(
        (status, reasons(&body)[0].1.as_str()),
        (401, "Invalid or expired OAuth token")
    );

    // `token T` works as well as `Bearer T`.
    let (status, _) = api
        .send(
            api.http
                .get(api.url("/api/jobs"))
                .header("Authorization", format!("token {}", api.alice)),
        )
        .await;
    assert_eq!(status, 200);

    // A read-only token cannot write, and is told which scope it lacks.
    let (status, body) = api
        .post(
            "/api/jobs",
            &api.alice_read_only,
            json!({"manifest": MANIFEST}),
        )
        .await;
    assert_eq!(status, 403);
    assert!(reasons(&body)[0].1.contains("jobs:write"), "{body}");

    // An expired token is refused.
    let now = builds_domain::job::now();
    let (token, record) = builds_domain::token::mint_token(
        "alice",
        vec![builds_domain::token::Scope::JobsRead],
        Some(now - time::Duration::seconds(1)),
        now - time::Duration::hours(1),
    );
    api.backend.store.put_token(&record).await.unwrap();
    let (status, _) = api.get("/api/jobs", &token).await;
    assert_eq!(status, 401);
}

async fn submit_get_and_queue(api: TestApi) {
    let (status, body) = api
        .post(
            "/api/jobs",
            &api.alice,
            json!({"manifest": MANIFEST, "note": "first", "tags": ["project", "ci.main"], "unknown": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_u64().unwrap();
    assert_eq!(
        queued_ids(&api).await,
        vec![id],
        "execute defaults to true: on the queue"
    );

    let (status, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
    assert_eq!(status, 200);
    assert_eq!(job["id"], id);
    assert_eq!(job["status"], "queued");
    assert_eq!(job["note"], "first");
    assert_eq!(job["tags"], "project/ci.main");
    assert_eq!(job["image"], "debian/bookworm");
    assert_eq!(
        job["owner"],
        json!({"canonical_name": "~alice", "name": "alice"})
    );
    assert_eq!(job["setup_log"], Value::Null);
    assert_eq!(
        job["tasks"],
        json!([{"name": "build", "status": "pending", "log": null},
               {"name": "test", "status": "pending", "log": null}])
    );
    let created = job["created"].as_str().unwrap();
    assert!(
        created.ends_with("+00:00") && created.len() == 25,
        "{created}"
    );

    let pending = api.submit(MANIFEST, false).await;
    let (_, job) = api.get(&format!("/api/jobs/{pending}"), &api.alice).await;
    assert_eq!(job["status"], "pending");
    assert_eq!(job["tags"], Value::Null);
    assert!(
        queued_ids(&api).await.is_empty(),
        "execute:false is not queued"
    );

    let response = api
        .request(Method::GET, &format!("/api/jobs/{id}/manifest"), &api.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), MANIFEST);
}

async fn submit_validation(api: TestApi) {
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "manifest"),
        (json!({"manifest": 5}), "manifest"),
        (json!({"manifest": "image: [unclosed"}), "manifest"),
        (json!({"manifest": "tasks:\n  - a: echo\n"}), "manifest"),
        (
            json!({"manifest": "image: alpine/edge\ntasks:\n  - a: echo\n"}),
            "manifest",
        ),
        (json!({"manifest": MANIFEST, "tags": "a/b"}), "tags"),
        (json!({"manifest": MANIFEST, "tags": ["UPPER"]}), "tags"),
        (json!({"manifest": MANIFEST, "tags": ["a/b"]}), "tags"),
        (json!({"manifest": MANIFEST, "execute": "yes"}), "execute"),
        (json!({"manifest": MANIFEST, "secrets": 1}), "secrets"),
        (
            json!({"manifest": MANIFEST, "note": "x".repeat(4097)}),
            "note",
        ),
        (json!({"manifest": MANIFEST, "note": ["list"]}), "note"),
        (
            json!({"manifest": format!("{MANIFEST}#{}", "x".repeat(16384))}),
            "manifest",
        ),
    ];
    for (body, field) in cases {
        let (status, response) = api.post("/api/jobs", &api.alice, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {response}");
        assert!(
            has_field(&response, field),
            "{body} should fail on {field}: {response}"
        );
    }
    // Every problem at once.
    let (status, body) = api
        .post("/api/jobs", &api.alice, json!({"tags": 1, "execute": 2}))
        .await;
    assert_eq!(status, 400);
    for field in ["manifest", "tags", "execute"] {
        assert!(has_field(&body, field), "{field} in {body}");
    }
    // Malformed and non-UTF-8 bodies and wrong content.
    for raw in [
        &b"{not json"[..],
        &b"[1,2]"[..],
        &b"\xff\xfe{}"[..],
        &b"\"str\""[..],
    ] {
        let (status, body) = api
            .send(
                api.request(Method::POST, "/api/jobs", &api.alice)
                    .header("content-type", "application/json")
                    .body(raw.to_vec()),
            )
            .await;
        assert_eq!(status, 400, "{raw:?}");
        assert!(!reasons(&body).is_empty());
    }
    // A huge body is refused with the envelope.
    let huge = json!({"manifest": "x".repeat(200_000)});
    let (status, body) = api.post("/api/jobs", &api.alice, huge).await;
    assert_eq!(status, 413);
    assert!(!reasons(&body).is_empty());
    // Nothing half-written: alice has no jobs.
    let (_, list) = api.get("/api/jobs", &api.alice).await;
    assert_eq!(list["total"], 0, "{list}");
}

async fn start_and_cancel(api: TestApi) {
    let id = api.submit(MANIFEST, false).await;
    let (status, body) = api
        .post(&format!("/api/jobs/{id}/start"), &api.alice, json!({}))
        .await;
    assert_eq!((status, &body), (200, &json!({})));
    assert_eq!(queued_ids(&api).await, vec![id]);
    let (status, body) = api
        .post(&format!("/api/jobs/{id}/start"), &api.alice, json!({}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reasons(&body)[0].1, "This job is already queued");

    // Running and complete jobs are refused with sr.ht's words.
    update_job(api.backend.store.as_ref(), id, |job| {
        job.set_status(JobStatus::Running)
    })
    .await
    .unwrap();
    let (_, body) = api
        .post(&format!("/api/jobs/{id}/start"), &api.alice, json!({}))
        .await;
    assert_eq!(reasons(&body)[0].1, "This job is already running");
    let (status, _) = api
        .post(&format!("/api/jobs/{id}/cancel"), &api.alice, json!({}))
        .await;
    assert_eq!(status, 200, "a running job can be cancelled");
    let (_, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
    assert_eq!(job["status"], "cancelled");
    let (_, body) = api
        .post(&format!("/api/jobs/{id}/start"), &api.alice, json!({}))
        .await;
    assert_eq!(reasons(&body)[0].1, "This job is already complete");
    let (status, _) = api
        .post(&format!("/api/jobs/{id}/cancel"), &api.alice, json!({}))
        .await;
    assert_eq!(status, 400, "a complete job cannot be cancelled");

    for execute in [false, true] {
        let id = api.submit(MANIFEST, execute).await;
        let (status, body) = api
            .post(&format!("/api/jobs/{id}/cancel"), &api.alice, json!({}))
            .await;
        assert_eq!((status, &body), (200, &json!({})));
        let (_, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
        assert_eq!(job["status"], "cancelled");
    }
    // The read-only token may not start or cancel.
    let id = api.submit(MANIFEST, false).await;
    let (status, _) = api
        .post(
            &format!("/api/jobs/{id}/start"),
            &api.alice_read_only,
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
}

async fn ownership_and_not_found(api: TestApi) {
    let id = api.submit(MANIFEST, false).await;
    for path in [
        format!("/api/jobs/{id}"),
        format!("/api/jobs/{id}/manifest"),
        format!("/api/jobs/{id}/artifacts"),
        "/api/jobs/999999".to_string(),
        "/api/jobs/abc".to_string(),
        "/api/nothing".to_string(),
    ] {
        let (status, body) = api.get(&path, &api.bob).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            body,
            json!({"errors": [{"reason": "404 not found"}]}),
            "{path}"
        );
    }
    for action in ["start", "cancel"] {
        let (status, _) = api
            .post(&format!("/api/jobs/{id}/{action}"), &api.bob, json!({}))
            .await;
        assert_eq!(status, 404, "bob cannot {action} alice's job");
    }
    let (_, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
    assert_eq!(job["status"], "pending", "bob changed nothing");
    let (_, list) = api.get("/api/jobs", &api.bob).await;
    assert_eq!(list["total"], 0);

    let (status, body) = api
        .send(api.request(Method::DELETE, "/api/jobs", &api.alice))
        .await;
    assert_eq!(status, 405);
    assert!(!reasons(&body).is_empty());
    let (status, _) = api.get(&format!("/api/jobs/{id}/start"), &api.alice).await;
    assert_eq!(status, 405);
}

async fn pagination(api: TestApi) {
    let mut ids = Vec::new();
    for _ in 0..53 {
        ids.push(api.submit(MANIFEST, false).await);
    }
    ids.reverse();
    let (status, page) = api.get("/api/jobs", &api.alice).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 53);
    assert_eq!(page["results_per_page"], 50);
    let first: Vec<u64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(first, ids[..50].to_vec(), "newest first");
    let next = page["next"].as_str().expect("next is a string").to_string();
    assert_eq!(next, ids[50].to_string());
    let (_, page) = api
        .get(&format!("/api/jobs?start={next}"), &api.alice)
        .await;
    let rest: Vec<u64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(rest, ids[50..].to_vec());
    assert_eq!(page["next"], Value::Null);
    let (status, body) = api.get("/api/jobs?start=abc", &api.alice).await;
    assert_eq!(status, 400);
    assert!(has_field(&body, "start"));
}

async fn artifacts_and_logs(api: TestApi) {
    let id = api.submit(MANIFEST, true).await;
    let (_, page) = api
        .get(&format!("/api/jobs/{id}/artifacts"), &api.alice)
        .await;
    assert_eq!(
        page,
        json!({"next": null, "results": [], "total": 0, "results_per_page": 50})
    );

    // What a worker does: run the job, write logs as they grow, keep an artifact.
    let setup_key = builds_domain::job::setup_log_key(id);
    api.backend
        .blobs
        .append_chunk(&setup_key, 0, Bytes::from_static(b"booting\n"))
        .await
        .unwrap();
    let artifact_bytes = Bytes::from(vec![7u8; 3000]);
    let artifact_key = builds_domain::job::artifact_key(id, 1, "out.bin");
    api.backend
        .blobs
        .put(&artifact_key, artifact_bytes.clone())
        .await
        .unwrap();
    update_job(api.backend.store.as_ref(), id, |job| {
        job.set_status(JobStatus::Running)?;
        job.runner = Some("worker-1".into());
        job.tasks[0].status = TaskStatus::Running;
        job.artifacts.push(builds_domain::Artifact {
            id: 1,
            created: builds_domain::job::now(),
            path: "/home/build/out.bin".into(),
            name: "out.bin".into(),
            size: 3000,
            blob_key: artifact_key.clone(),
        });
        Ok::<_, builds_domain::status::IllegalTransition>(())
    })
    .await
    .unwrap();

    let (_, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
    let setup_url = job["setup_log"]
        .as_str()
        .expect("a setup log link")
        .to_string();
    let build_url = job["tasks"][0]["log"]
        .as_str()
        .expect("a task log link")
        .to_string();
    assert_eq!(job["tasks"][1]["log"], Value::Null, "not started yet");
    // Links work without any header.
    let plain = reqwest::Client::new();
    let response = plain.get(&setup_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "booting\n");
    // The log grows while the job runs; a reader sees the new part with Range.
    api.backend
        .blobs
        .append_chunk(&setup_key, 8, Bytes::from_static(b"ready\n"))
        .await
        .unwrap();
    let response = plain
        .get(&setup_url)
        .header("Range", "bytes=8-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()["content-range"], "bytes 8-13/14");
    assert_eq!(response.text().await.unwrap(), "ready\n");
    let response = plain
        .get(&setup_url)
        .header("Range", "bytes=14-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416, "nothing new yet");
    // A started task with no output yet has an empty log.
    let response = plain.get(&build_url).send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.text().await.unwrap()),
        (200, String::new())
    );
    // A tampered or unsigned link is refused.
    let tampered = setup_url.replace(&format!("/logs/{id}/"), &format!("/logs/{}/", id + 1));
    assert_eq!(plain.get(&tampered).send().await.unwrap().status(), 403);
    let unsigned = setup_url.split('?').next().unwrap().to_string();
    assert_eq!(plain.get(&unsigned).send().await.unwrap().status(), 403);

    let (_, page) = api
        .get(&format!("/api/jobs/{id}/artifacts"), &api.alice)
        .await;
    assert_eq!(page["total"], 1);
    let artifact = &page["results"][0];
    assert_eq!(artifact["name"], "out.bin");
    assert_eq!(artifact["path"], "/home/build/out.bin");
    assert_eq!(artifact["size"], 3000);
    assert!(artifact["created"].as_str().unwrap().ends_with("+00:00"));
    let url = artifact["url"].as_str().unwrap();
    let response = plain.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), artifact_bytes);
}

async fn job_groups(api: TestApi) {
    let a = api.submit(MANIFEST, false).await;
    let b = api.submit(MANIFEST, false).await;
    let (status, group) = api
        .post(
            "/api/job-group",
            &api.alice,
            json!({"jobs": [a, b], "execute": false, "note": "pair"}),
        )
        .await;
    assert_eq!(status, 200, "{group}");
    let gid = group["id"].as_u64().unwrap();
    assert_eq!(group["note"], "pair");
    assert_eq!(group["owner"]["canonical_name"], "~alice");
    let jobs: Vec<u64> = group["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(jobs, vec![a, b]);
    assert!(group["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["status"] == "pending"));

    let (status, _) = api.get(&format!("/api/job-group/{gid}"), &api.bob).await;
    assert_eq!(status, 404, "another user's group is not found");
    let (status, body) = api
        .post("/api/job-group", &api.alice, json!({"jobs": [a]}))
        .await;
    assert_eq!(status, 400);
    assert!(has_field(&body, "jobs"), "a job already in a group: {body}");
    let (status, body) = api
        .post("/api/job-group", &api.alice, json!({"jobs": "x"}))
        .await;
    assert_eq!(status, 400);
    assert!(has_field(&body, "jobs"));
    // Group triggers follow the manifest's trigger rules, problem by problem.
    let c = api.submit(MANIFEST, false).await;
    let (status, body) = api
        .post(
            "/api/job-group",
            &api.alice,
            json!({"jobs": [c], "triggers": [
                {"action": "webhook", "url": "ftp://x", "condition": "always"},
                {"action": "email", "condition": "sometimes"}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    for field in ["triggers[0].url", "triggers[1].condition", "triggers[1].to"] {
        assert!(has_field(&body, field), "no {field}: {body}");
    }
    let (status, body) = api
        .post(
            "/api/job-group",
            &api.alice,
            json!({"jobs": [c], "triggers": {"action": "email"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(has_field(&body, "triggers"), "{body}");
    let trigger =
        json!([{"action": "webhook", "url": "https://example.org/h", "condition": "always"}]);
    let (status, body) = api
        .post(
            "/api/job-group",
            &api.alice,
            json!({"jobs": [c], "execute": false, "triggers": trigger}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["triggers"], trigger, "kept as given");

    let (status, _) = api
        .post(
            &format!("/api/job-group/{gid}/start"),
            &api.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let mut queued = queued_ids(&api).await;
    queued.sort();
    assert_eq!(queued, vec![a, b]);
    let (status, _) = api
        .post(
            &format!("/api/job-group/{gid}/start"),
            &api.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 400, "already started");
    let (status, _) = api
        .post(
            &format!("/api/job-group/{gid}/cancel"),
            &api.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, group) = api.get(&format!("/api/job-group/{gid}"), &api.alice).await;
    assert!(
        group["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "cancelled"),
        "{group}"
    );
    let (_, job) = api.get(&format!("/api/jobs/{a}"), &api.alice).await;
    assert_eq!(job["group_id"], gid);

    // execute (the default) starts the group at once.
    let c = api.submit(MANIFEST, false).await;
    let (status, group) = api
        .post("/api/job-group", &api.alice, json!({"jobs": [c]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(group["jobs"][0]["status"], "queued");
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const SSH_KEY: &[u8] = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUtest-material\n-----END OPENSSH PRIVATE KEY-----\n";

/// `/api/secrets`: scopes, validation, what a listing shows (never the
/// secret), ownership, deletion, pagination, and sealing at rest.
async fn secrets(api: TestApi) {
    use builds_domain::token::Scope;
    let writer = api
        .mint("alice", vec![Scope::SecretsRead, Scope::SecretsWrite])
        .await;
    let reader = api.mint("alice", vec![Scope::SecretsRead]).await;
    let bob = api
        .mint("bob", vec![Scope::SecretsRead, Scope::SecretsWrite])
        .await;
    let key_body = json!({"secret_type": "ssh_key", "name": "deploy", "secret": b64(SSH_KEY)});

    // Scopes: jobs tokens cannot touch secrets; a reader cannot add.
    let (status, body) = api.post("/api/secrets", &api.alice, key_body.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(reasons(&body)[0].1.contains("secrets:write"), "{body}");
    let (status, _) = api.post("/api/secrets", &reader, key_body.clone()).await;
    assert_eq!(status, 403);
    let (status, body) = api.get("/api/secrets", &api.alice).await;
    assert_eq!(status, 403);
    assert!(reasons(&body)[0].1.contains("secrets:read"), "{body}");

    let key = api.add_secret(&writer, key_body.clone()).await;
    let id = key["id"].as_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{key}");
    assert_eq!(key["secret_type"], "ssh_key");
    assert_eq!(key["name"], "deploy");
    assert!(
        key.get("secret").is_none() && key.get("sealed").is_none(),
        "{key}"
    );
    let file = api
        .add_secret(
            &writer,
            json!({"secret_type": "file", "secret": b64(b"token=s3cr3t-value\n"),
                   "path": "~/.config/app/token", "mode": "640"}),
        )
        .await;
    assert_eq!(file["mode"], "640");
    assert_eq!(file["path"], "~/.config/app/token");
    assert_eq!(file["name"], Value::Null);

    // Every problem at once, against its field; nothing stored.
    let (status, body) = api.post("/api/secrets", &writer, key_body.clone()).await;
    assert_eq!(status, 400);
    assert!(
        has_field(&body, "name"),
        "a second secret named deploy: {body}"
    );
    for (request, fields) in [
        (
            json!({"secret_type": "password", "secret": b64(b"x")}),
            vec!["secret_type"],
        ),
        (
            json!({"secret_type": "file", "secret": "%%%", "path": "~/x"}),
            vec!["secret"],
        ),
        (
            json!({"secret_type": "file", "secret": b64(b"x")}),
            vec!["path"],
        ),
        (
            json!({"secret_type": "file", "secret": b64(b"x"), "path": "rel", "mode": "999"}),
            vec!["mode", "path"],
        ),
        (
            json!({"secret_type": "ssh_key", "secret": b64(b"not a key"), "path": "~/x"}),
            vec!["secret", "path"],
        ),
        (
            json!({"secret_type": "pgp_key", "secret": b64(SSH_KEY), "name": "a b"}),
            vec!["name", "secret"],
        ),
        (json!({"secret": b64(b"x")}), vec!["secret_type"]),
    ] {
        let (status, body) = api.post("/api/secrets", &writer, request.clone()).await;
        assert_eq!(status, 400, "{request}: {body}");
        for field in fields {
            assert!(has_field(&body, field), "{request}: no {field} in {body}");
        }
    }
    let (status, body) = api
        .send(
            api.request(Method::POST, "/api/secrets", &writer)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // The listing: newest first, the caller's only, never the secret.
    let (status, list) = api.get("/api/secrets", &reader).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 2);
    assert_eq!(list["results"][0]["id"], file["id"]);
    assert_eq!(list["results"][1]["id"], key["id"]);
    let text = list.to_string();
    for needle in ["test-material", "s3cr3t", &b64(SSH_KEY)[..20], "sealed"] {
        assert!(!text.contains(needle), "the listing shows {needle}: {text}");
    }
    let (_, bobs) = api.get("/api/secrets", &bob).await;
    assert_eq!(bobs["total"], 0);

    // At rest the bytes are sealed, bound to their owner and id.
    let stored = api.backend.store.list_secrets("alice").await.unwrap();
    let record = stored.iter().find(|s| s.id == id).expect("stored");
    assert!(!record
        .sealed
        .windows(b"test-material".len())
        .any(|w| w == b"test-material"));
    let opened = api
        .backend
        .sealer
        .open(&record.context(), &record.sealed)
        .await
        .unwrap();
    assert_eq!(opened, SSH_KEY);
    assert!(api
        .backend
        .sealer
        .open(&format!("bob/{id}"), &record.sealed)
        .await
        .is_err());

    // Deleting: owner only, once; anything else is a 404.
    let path = format!("/api/secrets/{id}");
    let (status, _) = api.send(api.request(Method::DELETE, &path, &bob)).await;
    assert_eq!(status, 404);
    let (status, _) = api.send(api.request(Method::DELETE, &path, &reader)).await;
    assert_eq!(status, 403);
    let (status, _) = api.send(api.request(Method::DELETE, &path, &writer)).await;
    assert_eq!(status, 204);
    let (status, body) = api.send(api.request(Method::DELETE, &path, &writer)).await;
    assert_eq!(
        (status, body),
        (404, json!({"errors": [{"reason": "404 not found"}]}))
    );
    let (status, _) = api
        .send(api.request(Method::DELETE, "/api/secrets/not-a-uuid", &writer))
        .await;
    assert_eq!(status, 404);
    // The name is free again.
    api.add_secret(&writer, key_body).await;

    // Pagination, sr.ht style: 50 a page, `next` is the id to start from.
    for i in 0..50 {
        api.add_secret(
            &bob,
            json!({"secret_type": "file", "secret": b64(format!("{i}").as_bytes()),
                   "path": format!("~/f{i}"), "name": format!("f{i}")}),
        )
        .await;
    }
    let (_, first) = api.get("/api/secrets", &bob).await;
    assert_eq!(first["total"], 50);
    assert_eq!(first["results"].as_array().unwrap().len(), 50);
    assert_eq!(first["next"], Value::Null);
    api.add_secret(
        &bob,
        json!({"secret_type": "file", "secret": b64(b"last"), "path": "~/last"}),
    )
    .await;
    let (_, first) = api.get("/api/secrets", &bob).await;
    assert_eq!(first["results_per_page"], 50);
    let next = first["next"].as_str().expect("a next page").to_string();
    let (_, second) = api.get(&format!("/api/secrets?start={next}"), &bob).await;
    assert_eq!(second["results"].as_array().unwrap().len(), 1);
    assert_eq!(second["results"][0]["name"], "f0", "the oldest comes last");
    assert_eq!(second["next"], Value::Null);
    let (status, body) = api.get("/api/secrets?start=nope", &bob).await;
    assert_eq!(status, 400);
    assert!(has_field(&body, "start"), "{body}");
}

/// `/api/ssh-keys`: register, list, refuse bad and repeated keys, delete.
async fn ssh_keys(api: TestApi) {
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOON4HSeZoLlYO+pVg0oPgv4iy/PImi+dkAahY6hAbyy alice@laptop";
    let (status, body) = api
        .post(
            "/api/ssh-keys",
            &api.alice_read_only,
            json!({"ssh_key": KEY}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, key) = api
        .post("/api/ssh-keys", &api.alice, json!({"ssh_key": KEY}))
        .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(
        key["fingerprint"],
        "SHA256:hHU4amqDv1wKdBB/+a9toIgEE/5oYSwo4B7Z1JXT/Fg"
    );
    assert_eq!(key["comment"], "alice@laptop");
    let (status, body) = api
        .post("/api/ssh-keys", &api.alice, json!({"ssh_key": KEY}))
        .await;
    assert_eq!(status, 400);
    assert!(reasons(&body)[0].1.contains("already registered"), "{body}");
    for bad in [
        json!({}),
        json!({"ssh_key": "ssh-dss AAAA"}),
        json!({"ssh_key": 7}),
    ] {
        let (status, body) = api.post("/api/ssh-keys", &api.alice, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(has_field(&body, "ssh_key"), "{body}");
    }
    let (status, list) = api.get("/api/ssh-keys", &api.alice_read_only).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["results"][0]["id"], key["id"]);
    let (_, bobs) = api.get("/api/ssh-keys", &api.bob).await;
    assert_eq!(bobs["total"], 0);
    let path = format!("/api/ssh-keys/{}", key["id"].as_str().unwrap());
    let (status, _) = api.send(api.request(Method::DELETE, &path, &api.bob)).await;
    assert_eq!(status, 404);
    let (status, _) = api
        .send(api.request(Method::DELETE, &path, &api.alice))
        .await;
    assert_eq!(status, 204);
    let (_, list) = api.get("/api/ssh-keys", &api.alice).await;
    assert_eq!(list["total"], 0);
}

macro_rules! api_tests {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let images = Some(IMAGES.iter().map(|s| s.to_string()).collect());
                    super::$test(TestApi::embedded(images).await).await;
                }
            )*
        }
        mod aws {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let images = Some(IMAGES.iter().map(|s| s.to_string()).collect());
                    if let Some(api) = TestApi::aws(images).await {
                        super::$test(api).await;
                    }
                }
            )*
        }
    };
}

api_tests!(
    auth_errors,
    submit_get_and_queue,
    submit_validation,
    start_and_cancel,
    ownership_and_not_found,
    pagination,
    artifacts_and_logs,
    job_groups,
    secrets,
    ssh_keys,
);
