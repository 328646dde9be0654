//! Triggers, end to end without a guest: a job cancelled while queued still
//! owes its triggers, and the worker that picks up its message fires them,
//! once: a signed webhook (verified here with the key the API publishes), an
//! email through SMTP (received here), and a webhook whose receiver keeps
//! failing (retried, then reported). Every result lands in the setup log.
//! The success path through a real guest is in worker_e2e.rs.

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
