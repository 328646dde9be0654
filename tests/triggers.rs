//! Triggers, end to end without a guest: a job cancelled while queued still
//! owes its triggers, and the worker that picks up its message fires them,
//! once: a signed webhook (verified here with the key the API publishes), an
//! email through SMTP (received here), and a webhook whose receiver keeps
//! failing (retried, then reported). Every result lands in the setup log.
//! A job group's triggers fire once, when its last job ends; a job whose
//! message went to the dead-letter queue is failed and fires its triggers. The success
//! path through a real guest is in worker_e2e.rs.

use base64::Engine;
use builds_tests::sinks::{SmtpSink, WebhookSink};
use builds_tests::TestApi;
use builds_worker::triggers::SmtpSettings;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup_log(api: &TestApi, id: u64) -> String {
    let read = api
        .backend
        .blobs
        .get(&builds_domain::job::setup_log_key(id), None)
        .await
        .expect("read the setup log");
    read.map(|r| String::from_utf8_lossy(&r.bytes).into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_fires_its_triggers_once() {
    let api = TestApi::embedded(None).await;
    let hooks = WebhookSink::start(200).await;
    let unused = WebhookSink::start(200).await;
    let broken = WebhookSink::start(503).await;
    let smtp = SmtpSink::start().await;
    let manifest = format!(
        r#"image: debian/bookworm
tasks:
  - build: make
triggers:
  - action: webhook
    url: {hooks}
    condition: always
  - action: webhook
    url: {unused}
    condition: success
  - action: webhook
    url: {broken}
    condition: failure
  - action: email
    to: alice@example.org
    cc: bob@example.org
    condition: failure
"#,
        hooks = hooks.url,
        unused = unused.url,
        broken = broken.url,
    );
    let id = api.submit(&manifest, true).await;
    let (status, body) = api
        .post(&format!("/api/jobs/{id}/cancel"), &api.alice, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // No guest is needed: the worker only drops the message and fires.
    let images = tempfile::tempdir().expect("temp dir");
    let smtp_url = smtp.url.clone();
    let _worker = api.start_worker(images.path(), move |config| {
        config.triggers.smtp = Some(SmtpSettings {
            url: smtp_url,
            from: "builds@ci.example".into(),
        });
    });

    let hook = eventually(Duration::from_secs(60), "the webhook", || {
        hooks.hooks().into_iter().next()
    })
    .await;
    let mail = eventually(Duration::from_secs(60), "the email", || {
        smtp.mails().into_iter().next()
    })
    .await;

    // The webhook: the job resource, signed over body + nonce with the key
    // the API publishes.
    let payload: Value = serde_json::from_slice(&hook.body).expect("JSON body");
    assert_eq!(payload["id"], id);
    assert_eq!(payload["status"], "cancelled");
    assert_eq!(payload["tasks"][0]["name"], "build");
    let header = |name: &str| {
        hook.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_string()
    };
    assert_eq!(header("content-type"), "application/json");
    let nonce = header("x-payload-nonce");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header("x-payload-signature"))
        .expect("base64 signature");
    let signature = Signature::from_slice(&signature).expect("64-byte signature");
    let published = reqwest::get(api.url("/api/webhook-key"))
        .await
        .expect("GET /api/webhook-key")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(published["algorithm"], "ed25519");
    let key_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(published["public_key"].as_str().expect("public_key"))
        .expect("base64 key")
        .try_into()
        .expect("32-byte key");
    let key = VerifyingKey::from_bytes(&key_bytes).expect("a public key");
    let mut signed = hook.body.to_vec();
    signed.extend_from_slice(nonce.as_bytes());
    key.verify(&signed, &signature)
        .expect("the signature verifies");
    let mut tampered = signed.clone();
    tampered[0] ^= 1;
    assert!(key.verify(&tampered, &signature).is_err());

    // The email.
    assert!(mail.from.contains("builds@ci.example"), "{mail:?}");
    let recipients = mail.to.join(" ");
    assert!(recipients.contains("alice@example.org"), "{mail:?}");
    assert!(recipients.contains("bob@example.org"), "{mail:?}");
    assert!(
        mail.data.contains(&format!("builds job #{id} CANCELLED")),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("build"), "{}", mail.data);

    // The failing receiver was tried more than once, then reported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let text = setup_log(&api, id).await;
        if text.contains(&format!("webhook {} failed", broken.url)) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no report of the failing webhook: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        broken.hooks().len() > 1,
        "retried: {}",
        broken.hooks().len()
    );
    assert!(
        log.contains(&format!("webhook {}: HTTP 200", hooks.url)),
        "{log}"
    );
    assert!(log.contains("email to alice@example.org: sent"), "{log}");
    assert!(!log.contains(&unused.url), "a success trigger fired: {log}");
    assert!(unused.hooks().is_empty());

    // Once: the job records that its triggers fired, and nothing fires again.
    let job = api
        .backend
        .store
        .get_job(id)
        .await
        .expect("read")
        .expect("job");
    assert!(job.triggered);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks.hooks().len(), 1);
    assert_eq!(smtp.mails().len(), 1);
}

/// A group's triggers fire once, when its last job ends, with the group
/// resource (every job in it), beside each job's own triggers. Two workers
/// take the group's jobs at once; the group's claim keeps it to one delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_fires_its_triggers_once_when_its_last_job_ends() {
    let api = TestApi::embedded(None).await;
    let group_hooks = WebhookSink::start(200).await;
    let on_success = WebhookSink::start(200).await;
    let job_hooks = WebhookSink::start(200).await;
    let smtp = SmtpSink::start().await;
    let plain = "image: debian/bookworm\ntasks:\n  - build: make\n";
    let own = format!(
        "{plain}triggers:\n  - action: webhook\n    url: {}\n    condition: always\n",
        job_hooks.url
    );
    let ids = [
        api.submit(plain, false).await,
        api.submit(&own, false).await,
        api.submit(plain, false).await,
    ];
    let (status, group) = api
        .post(
            "/api/job-group",
            &api.alice,
            json!({"jobs": ids, "note": "release 1.2", "triggers": [
                {"action": "webhook", "url": group_hooks.url, "condition": "always"},
                {"action": "webhook", "url": on_success.url, "condition": "success"},
                {"action": "email", "to": "team@example.org", "condition": "failure"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{group}");
    let gid = group["id"].as_u64().expect("group id");
    let (status, body) = api
        .post(
            &format!("/api/job-group/{gid}/cancel"),
            &api.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let images = tempfile::tempdir().expect("temp dir");
    let mut workers = Vec::new();
    for _ in 0..2 {
        let smtp_url = smtp.url.clone();
        workers.push(api.start_worker(images.path(), move |config| {
            config.concurrency = 2;
            config.triggers.smtp = Some(SmtpSettings {
                url: smtp_url,
                from: "builds@ci.example".into(),
            });
        }));
    }
    let hook = eventually(Duration::from_secs(60), "the group's webhook", || {
        group_hooks.hooks().into_iter().next()
    })
    .await;
    let mail = eventually(Duration::from_secs(60), "the group's email", || {
        smtp.mails().into_iter().next()
    })
    .await;
    eventually(Duration::from_secs(60), "the job's own webhook", || {
        job_hooks.hooks().into_iter().next()
    })
    .await;

    let payload: Value = serde_json::from_slice(&hook.body).expect("JSON body");
    assert_eq!(payload["id"], gid);
    assert_eq!(payload["note"], "release 1.2");
    let jobs: Vec<(u64, String)> = payload["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["id"].as_u64().unwrap(),
                j["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        ids.iter()
            .map(|id| (*id, "cancelled".to_string()))
            .collect::<Vec<_>>()
    );
    let nonce = hook.headers["x-payload-nonce"]
        .to_str()
        .unwrap()
        .to_string();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(hook.headers["x-payload-signature"].to_str().unwrap())
        .unwrap();
    let mut signed = hook.body.to_vec();
    signed.extend_from_slice(nonce.as_bytes());
    api.webhook_key
        .verifying_key()
        .verify(&signed, &Signature::from_slice(&signature).unwrap())
        .expect("the group's webhook is signed");
    assert!(
        mail.data
            .contains(&format!("builds job group #{gid} CANCELLED: release 1.2")),
        "{}",
        mail.data
    );
    for id in ids {
        assert!(mail.data.contains(&format!("#{id}")), "{}", mail.data);
    }

    // Once, though two workers saw jobs of the group end; the success-only
    // trigger never.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(group_hooks.hooks().len(), 1);
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(job_hooks.hooks().len(), 1);
    assert!(on_success.hooks().is_empty());
    let mut reported = 0;
    for id in ids {
        let log = setup_log(&api, id).await;
        if log.contains(&format!("job group {gid} ended (cancelled)")) {
            reported += 1;
            assert!(
                log.contains(&format!("webhook {}: HTTP 200", group_hooks.url)),
                "{log}"
            );
            assert!(log.contains("email to team@example.org: sent"), "{log}");
        }
    }
    assert_eq!(reported, 1, "one job's log reports the group's triggers");
}

/// A job whose message was received too often (its workers died with it)
/// lands in the dead-letter queue; a worker draining that queue fails the
/// job with the reason in its setup log and fires its triggers, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_is_failed_and_its_triggers_fire() {
    let api = TestApi::embedded(None).await;
    let hooks = WebhookSink::start(200).await;
    let manifest = format!(
        "image: debian/bookworm\ntasks:\n  - build: make\ntriggers:\n  - action: webhook\n    url: {}\n    condition: failure\n",
        hooks.url
    );
    let id = api.submit(&manifest, true).await;
    // Workers that each take the message and die: it comes back every time
    // until it has been received as often as the queue allows.
    let queue = &api.backend.queue;
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let got = queue
            .receive(1, Duration::from_millis(1), Duration::from_millis(200))
            .await
            .expect("receive");
        if got.is_empty() && received >= builds_storage::backend::DEFAULT_MAX_RECEIVES {
            break; // Moved to the dead-letter queue.
        }
        received += got.len() as u32;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(received, builds_storage::backend::DEFAULT_MAX_RECEIVES);
    assert_eq!(
        api.backend.store.get_job(id).await.unwrap().unwrap().status,
        builds_domain::JobStatus::Queued
    );

    let images = tempfile::tempdir().expect("temp dir");
    let _worker = api.start_worker(images.path(), |config| {
        config.dead_letter_sweep = Duration::from_millis(200);
    });
    let hook = eventually(Duration::from_secs(30), "the failure webhook", || {
        hooks.hooks().into_iter().next()
    })
    .await;
    let payload: Value = serde_json::from_slice(&hook.body).expect("JSON");
    assert_eq!(payload["id"], id);
    assert_eq!(payload["status"], "failed");
    let job = api.backend.store.get_job(id).await.unwrap().unwrap();
    assert!(
        job.reason
            .as_deref()
            .is_some_and(|r| r.contains("dead-letter queue")),
        "{job:?}"
    );
    let log = setup_log(&api, id).await;
    assert!(
        log.contains("its message went to the dead-letter queue"),
        "{log}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hooks.hooks().len(), 1, "fired once");
    let left = api
        .backend
        .dead_letter
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .unwrap();
    assert!(left.is_empty(), "the dead letter is gone: {left:?}");
}

#[tokio::test]
async fn the_webhook_key_is_published_without_a_token() {
    let api = TestApi::embedded(None).await;
    let response = reqwest::get(api.url("/api/webhook-key"))
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "no token needed");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body["public_key"],
        builds_worker::triggers::public_key_base64(&api.webhook_key)
    );
}
