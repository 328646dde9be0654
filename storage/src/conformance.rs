//! The conformance suite: the same checks for every adapter of the three ports.
//! `tests/` runs each check once per backend (embedded, and AWS against the
//! emulator). A check panics with a message when the adapter misbehaves.

use builds_domain::job::{NewGroup, NewJob};
use builds_domain::ports::{
    update_job, BlobStore, ByteRange, JobQueue, JobStore, SecretSealer, StoreError, UpdateError,
};
use builds_domain::secret::{SecretKind, SecretRecord};
use builds_domain::status::JobStatus;
use builds_domain::token::{mint_token, Scope};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// One backend's ports, fresh and empty, for one check.
pub struct Fixture {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    /// Where `queue` moves a message received `max_receives` times.
    pub dead_letter: Arc<dyn JobQueue>,
    pub max_receives: u32,
    pub blobs: Arc<dyn BlobStore>,
    pub sealer: Arc<dyn SecretSealer>,
}

pub fn new_job(owner: &str, status: JobStatus) -> NewJob {
    NewJob {
        owner: owner.to_string(),
        status,
        manifest: "image: debian/bookworm\ntasks:\n  - a: echo a\n".to_string(),
        image: "debian/bookworm".to_string(),
        note: Some("a note".to_string()),
        tags: vec!["project".to_string(), "ci".to_string()],
        secrets: true,
        task_names: vec!["a".to_string(), "b".to_string()],
        group_id: None,
    }
}

/// Create, read, compare-and-set, and the errors for stale and missing records.
pub async fn job_crud(f: Fixture) {
    let created = f
        .store
        .create_job(new_job("alice", JobStatus::Queued))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.tasks.len(), 2);
    let read = f.store.get_job(created.id).await.unwrap().unwrap();
    assert_eq!(read, created);
    assert!(f.store.get_job(created.id + 1000).await.unwrap().is_none());

    let mut changed = read.clone();
    changed.note = Some("changed".to_string());
    let stored = f.store.replace_job(&changed).await.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(f.store.get_job(created.id).await.unwrap().unwrap(), stored);

    // A writer holding the old version loses, and nothing changes.
    let stale = f.store.replace_job(&changed).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(f.store.get_job(created.id).await.unwrap().unwrap(), stored);

    let mut missing = stored.clone();
    missing.id += 1000;
    let result = f.store.replace_job(&missing).await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");

    let second = f
        .store
        .create_job(new_job("alice", JobStatus::Pending))
        .await
        .unwrap();
    assert!(second.id > created.id, "ids grow");
}

/// Listing pages through an owner's jobs newest first and never shows another's.
pub async fn job_pagination_and_ownership(f: Fixture) {
    let mut alice = Vec::new();
    for i in 0..23 {
        let job = f
            .store
            .create_job(new_job("alice", JobStatus::Queued))
            .await
            .unwrap();
        alice.push(job.id);
        if i % 5 == 0 {
            f.store
                .create_job(new_job("bob", JobStatus::Queued))
                .await
                .unwrap();
        }
    }
    alice.reverse();
    let mut seen = Vec::new();
    let mut start = None;
    let mut pages = 0;
    loop {
        let page = f.store.list_jobs("alice", start, 10).await.unwrap();
        pages += 1;
        assert_eq!(page.total, 23);
        assert!(page.jobs.len() <= 10);
        assert!(page.jobs.iter().all(|j| j.owner == "alice"));
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(next) => {
                assert_eq!(page.jobs.len(), 10);
                start = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, alice, "every job once, newest first");

    // `start` is inclusive.
    let from = f.store.list_jobs("alice", Some(alice[4]), 3).await.unwrap();
    let ids: Vec<_> = from.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, alice[4..7].to_vec());
    assert_eq!(from.next, Some(alice[7]));

    let bob = f.store.list_jobs("bob", None, 50).await.unwrap();
    assert_eq!(bob.total, 5);
    assert!(bob.jobs.iter().all(|j| j.owner == "bob"));
    let nobody = f.store.list_jobs("carol", None, 50).await.unwrap();
    assert_eq!((nobody.jobs.len(), nobody.total, nobody.next), (0, 0, None));
}

/// Two workers race to take the same queued job: exactly one wins, every time.
pub async fn concurrent_status_change(f: Fixture) {
    for _ in 0..5 {
        let job = f
            .store
            .create_job(new_job("alice", JobStatus::Queued))
            .await
            .unwrap();
        let racers = (0..2).map(|i| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                update_job(store.as_ref(), job.id, move |job| {
                    job.set_status(JobStatus::Running)?;
                    job.runner = Some(format!("worker-{i}"));
                    Ok::<_, builds_domain::status::IllegalTransition>(())
                })
                .await
            })
        });
        let results = futures::future::join_all(racers).await;
        let wins = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        let refusals = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(UpdateError::Refused(_)))))
            .count();
        assert_eq!((wins, refusals), (1, 1), "{results:?}");
        let stored = f.store.get_job(job.id).await.unwrap().unwrap();
        assert_eq!(stored.status, JobStatus::Running);
        assert_eq!(stored.version, 2);
    }
}

/// Groups and tokens round-trip; a deleted token is gone.
pub async fn groups_and_tokens(f: Fixture) {
    let a = f
        .store
        .create_job(new_job("alice", JobStatus::Pending))
        .await
        .unwrap();
    let b = f
        .store
        .create_job(new_job("alice", JobStatus::Pending))
        .await
        .unwrap();
    let group = f
        .store
        .create_group(NewGroup {
            owner: "alice".to_string(),
            note: Some("both".to_string()),
            job_ids: vec![a.id, b.id],
            triggers: serde_json::json!([{"action": "webhook", "condition": "always", "url": "http://x"}]),
        })
        .await
        .unwrap();
    assert_eq!(
        f.store.get_group(group.id).await.unwrap(),
        Some(group.clone())
    );
    assert!(f.store.get_group(group.id + 1000).await.unwrap().is_none());

    // A group's triggers are claimed once, whoever races for them.
    let claims =
        futures::future::join_all((0..4).map(|_| f.store.claim_group_triggers(group.id))).await;
    let won = claims.into_iter().filter(|c| *c.as_ref().unwrap()).count();
    assert_eq!(won, 1, "exactly one claim wins");
    assert!(!f.store.claim_group_triggers(group.id).await.unwrap());
    assert!(
        !f.store.claim_group_triggers(group.id + 1000).await.unwrap(),
        "no group, no claim"
    );
    assert_eq!(
        f.store.get_group(group.id).await.unwrap(),
        Some(group.clone()),
        "claiming leaves the group as it was"
    );

    let now =
        OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let (token, record) = mint_token(
        "alice",
        vec![Scope::JobsRead, Scope::JobsWrite],
        Some(now + time::Duration::days(30)),
        now,
    );
    f.store.put_token(&record).await.unwrap();
    let stored = f.store.get_token(&record.hash).await.unwrap();
    assert_eq!(stored, Some(record.clone()));
    assert!(
        f.store.get_token(&token).await.unwrap().is_none(),
        "keyed by hash only"
    );
    assert!(f.store.delete_token(&record.hash).await.unwrap());
    assert!(!f.store.delete_token(&record.hash).await.unwrap());
    assert!(f.store.get_token(&record.hash).await.unwrap().is_none());
}

/// A received message is hidden, comes back after its visibility timeout with a
/// new receipt and a higher count, and is gone once deleted.
pub async fn queue_redelivery(f: Fixture) {
    f.queue.send(r#"{"job_id":1}"#).await.unwrap();
    let first = f
        .queue
        .receive(10, Duration::from_secs(1), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, r#"{"job_id":1}"#);
    assert_eq!(first[0].receive_count, 1);
    let hidden = f
        .queue
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .unwrap();
    assert!(hidden.is_empty(), "a received message is hidden");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = f
        .queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "redelivered after the visibility timeout");
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt, first[0].receipt);
    f.queue.delete(&again[0].receipt).await.unwrap();
    let gone = f
        .queue
        .receive(10, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(gone.is_empty(), "deleted messages do not come back");
}

/// Extending a message's visibility keeps it hidden past its first timeout.
pub async fn queue_extend(f: Fixture) {
    f.queue.send("extend-me").await.unwrap();
    let got = f
        .queue
        .receive(1, Duration::from_secs(1), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    f.queue
        .extend(&got[0].receipt, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hidden = f
        .queue
        .receive(1, Duration::from_secs(1), Duration::ZERO)
        .await
        .unwrap();
    assert!(hidden.is_empty(), "extension keeps the message hidden");
    f.queue
        .extend(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let back = f
        .queue
        .receive(1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        back.len(),
        1,
        "visible again once its visibility is set to zero"
    );
    f.queue.delete(&back[0].receipt).await.unwrap();
}

/// A message received `max_receives` times moves to the dead-letter queue.
pub async fn queue_dead_letter(f: Fixture) {
    f.queue.send("poison").await.unwrap();
    for round in 1..=f.max_receives {
        let got = f
            .queue
            .receive(1, Duration::from_secs(1), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "receive {round}");
        assert_eq!(got[0].receive_count, round);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let more = f
        .queue
        .receive(1, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(more.is_empty(), "not delivered past the limit: {more:?}");
    let dead = f
        .dead_letter
        .receive(1, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
}

fn curl(url: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl failed: {out:?}");
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').expect("status line");
    let code = String::from_utf8_lossy(&body[split + 1..])
        .trim()
        .parse()
        .expect("status code");
    body.truncate(split);
    (code, body)
}

/// Whole and ranged reads, and a presigned URL that plain curl can fetch.
pub async fn blobs_put_get_range_presign(f: Fixture) {
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let key = "artifacts/1/1/out.bin";
    f.blobs.put(key, Bytes::from(data.clone())).await.unwrap();
    let whole = f.blobs.get(key, None).await.unwrap().unwrap();
    assert_eq!(
        (whole.bytes.as_ref(), whole.start, whole.total),
        (&data[..], 0, 1000)
    );
    let part = f
        .blobs
        .get(
            key,
            Some(ByteRange {
                start: 10,
                end: Some(19),
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (part.bytes.as_ref(), part.start, part.total),
        (&data[10..20], 10, 1000)
    );
    let tail = f
        .blobs
        .get(
            key,
            Some(ByteRange {
                start: 990,
                end: None,
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tail.bytes.as_ref(), &data[990..]);
    let past = f
        .blobs
        .get(
            key,
            Some(ByteRange {
                start: 5000,
                end: None,
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(past.bytes.is_empty());
    assert_eq!(past.total, 1000);
    assert!(f.blobs.get("logs/1/nothing", None).await.unwrap().is_none());
    assert!(matches!(
        f.blobs.get("../etc/passwd", None).await,
        Err(StoreError::InvalidKey(_))
    ));

    let url = f
        .blobs
        .presign_get(key, Duration::from_secs(60))
        .await
        .unwrap();
    let blocking_url = url.clone();
    let (code, body) = tokio::task::spawn_blocking(move || curl(&blocking_url, &[]))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(body, data, "curl fetches the exact bytes");
    // A tampered URL is refused.
    let tampered = url.replacen("out.bin", "out.bim", 1);
    let (code, _) = tokio::task::spawn_blocking(move || curl(&tampered, &[]))
        .await
        .unwrap();
    assert!(code == 403 || code == 404, "tampered URL gave {code}");
}

/// A reader following a growing log sees every byte in order while the writer
/// appends, and the sealed object is the same bytes.
pub async fn blobs_append_while_reading(f: Fixture) {
    let key = "logs/7/build";
    let lines: Vec<String> = (0..40)
        .map(|i| format!("line {i}: {}\n", "x".repeat(i * 7)))
        .collect();
    let expected: Vec<u8> = lines.concat().into_bytes();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let reader = {
        let blobs = Arc::clone(&f.blobs);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut reads = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let range = ByteRange {
                    start: seen.len() as u64,
                    end: None,
                };
                if let Some(read) = blobs.get(key, Some(range)).await.unwrap() {
                    assert_eq!(read.start, seen.len() as u64);
                    seen.extend_from_slice(&read.bytes);
                    reads += 1;
                }
                if finished {
                    return (seen, reads);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let mut offset = 0u64;
    for line in &lines {
        f.blobs
            .append_chunk(key, offset, Bytes::from(line.clone().into_bytes()))
            .await
            .unwrap();
        offset += line.len() as u64;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // A retried chunk (same offset, same bytes) changes nothing.
    let last = lines.last().unwrap();
    f.blobs
        .append_chunk(
            key,
            offset - last.len() as u64,
            Bytes::from(last.clone().into_bytes()),
        )
        .await
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (seen, reads) = reader.await.unwrap();
    assert_eq!(seen, expected, "the reader saw every byte in order");
    assert!(
        reads > 2,
        "the reader read while the log grew ({reads} reads)"
    );

    let size = f.blobs.seal(key).await.unwrap();
    assert_eq!(size, expected.len() as u64);
    let sealed = f.blobs.get(key, None).await.unwrap().unwrap();
    assert_eq!(sealed.bytes.as_ref(), &expected[..]);
    let part = f
        .blobs
        .get(
            key,
            Some(ByteRange {
                start: 5,
                end: Some(9),
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(part.bytes.as_ref(), &expected[5..10]);
    assert_eq!(
        f.blobs.seal(key).await.unwrap(),
        size,
        "sealing twice is harmless"
    );
}

fn secret(owner: &str, name: Option<&str>, created: OffsetDateTime) -> SecretRecord {
    SecretRecord {
        id: uuid::Uuid::new_v4().to_string(),
        owner: owner.to_string(),
        name: name.map(str::to_string),
        kind: SecretKind::File,
        path: Some("~/token".to_string()),
        mode: Some(0o600),
        created,
        sealed: vec![2, 0, 1, 0xff],
    }
}

/// Secrets: stored once per id, listed newest first per owner, deleted by
/// their owner only.
pub async fn secrets_crud(f: Fixture) {
    let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let older = secret("alice", Some("deploy"), t0);
    let newer = secret("alice", None, t0 + time::Duration::seconds(5));
    let bobs = secret("bob", Some("deploy"), t0);
    for s in [&older, &newer, &bobs] {
        f.store.put_secret(s).await.unwrap();
    }
    assert!(matches!(
        f.store.put_secret(&older).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        f.store.list_secrets("alice").await.unwrap(),
        vec![newer.clone(), older.clone()]
    );
    assert_eq!(
        f.store.list_secrets("bob").await.unwrap(),
        vec![bobs.clone()]
    );
    assert!(f.store.list_secrets("carol").await.unwrap().is_empty());

    assert!(
        !f.store.delete_secret("bob", &older.id).await.unwrap(),
        "another owner's secret is not deleted"
    );
    assert!(f.store.delete_secret("alice", &older.id).await.unwrap());
    assert!(!f.store.delete_secret("alice", &older.id).await.unwrap());
    assert_eq!(f.store.list_secrets("alice").await.unwrap(), vec![newer]);
    assert_eq!(f.store.list_secrets("bob").await.unwrap(), vec![bobs]);
}

/// The sealer: what it seals opens under the same context only, any change
/// to the sealed bytes is caught, and the plaintext does not show through.
pub async fn sealer_round_trip(f: Fixture) {
    let plaintext = b"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret material 0123456789\n";
    let sealed = f.sealer.seal("alice/1", plaintext).await.unwrap();
    assert!(
        !sealed
            .windows(b"secret material".len())
            .any(|w| w == b"secret material"),
        "the plaintext shows in the sealed bytes"
    );
    assert_eq!(f.sealer.open("alice/1", &sealed).await.unwrap(), plaintext);
    let again = f.sealer.seal("alice/1", plaintext).await.unwrap();
    assert_ne!(again, sealed, "each seal is fresh");
    assert!(
        f.sealer.open("bob/1", &sealed).await.is_err(),
        "opened under another context"
    );
    let mut tampered = sealed.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    assert!(f.sealer.open("alice/1", &tampered).await.is_err());
    assert!(f
        .sealer
        .open("alice/1", &sealed[..sealed.len() / 2])
        .await
        .is_err());
    assert!(f.sealer.open("alice/1", b"").await.is_err());
    let empty = f.sealer.seal("alice/2", b"").await.unwrap();
    assert_eq!(f.sealer.open("alice/2", &empty).await.unwrap(), b"");
}

/// SSH public keys: stored once per id, listed newest first per owner,
/// deleted by their owner only.
pub async fn ssh_keys_crud(f: Fixture) {
    use builds_domain::ssh_key::SshKeyRecord;
    let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let key = |owner: &str, created: OffsetDateTime| SshKeyRecord {
        id: uuid::Uuid::new_v4().to_string(),
        owner: owner.to_string(),
        key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOON4HSeZoLlYO+pVg0oPgv4iy/PImi+dkAahY6hAbyy"
            .to_string(),
        comment: Some("laptop".to_string()),
        fingerprint: "SHA256:hHU4amqDv1wKdBB/+a9toIgEE/5oYSwo4B7Z1JXT/Fg".to_string(),
        created,
    };
    let older = key("alice", t0);
    let newer = key("alice", t0 + time::Duration::seconds(1));
    let bobs = key("bob", t0);
    for k in [&older, &newer, &bobs] {
        f.store.put_ssh_key(k).await.unwrap();
    }
    assert!(matches!(
        f.store.put_ssh_key(&older).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        f.store.list_ssh_keys("alice").await.unwrap(),
        vec![newer.clone(), older.clone()]
    );
    assert!(!f.store.delete_ssh_key("bob", &older.id).await.unwrap());
    assert!(f.store.delete_ssh_key("alice", &older.id).await.unwrap());
    assert_eq!(f.store.list_ssh_keys("alice").await.unwrap(), vec![newer]);
    assert_eq!(f.store.list_ssh_keys("bob").await.unwrap(), vec![bobs]);
    assert!(
        f.store.list_secrets("alice").await.unwrap().is_empty(),
        "keys are not secrets"
    );
}
