//! The `builds` client commands, run as the real binary against a local API
//! server (embedded backend, no worker): submit, show, list, cancel, start,
//! manifest, resubmit, artifacts, config, secrets, ssh, errors. Real guests:
//! `client_vm.rs`, `secrets_vm.rs`, `shell_vm.rs`.

use builds_tests::{run_command, TestApi};
use serde_json::Value;
use std::process::Output;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const MANIFEST: &str = "image: debian/bookworm\ntasks:\n  - build: echo first\n";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn run(command: std::process::Command) -> Output {
    run_command(command, None, LIMIT).await
}

/// Runs the client as alice with `args`; asserts it succeeded.
async fn ok(api: &TestApi, args: &[&str]) -> String {
    let mut command = api.client(&api.alice);
    command.args(args);
    let out = run(command).await;
    assert!(out.status.success(), "builds {args:?}: {out:?}");
    stdout(&out)
}

async fn json(api: &TestApi, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(api, &all).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("builds {all:?}: {e}: {text:?}"))
}

async fn job(api: &TestApi, id: u64) -> Value {
    let (status, job) = api.get(&format!("/api/jobs/{id}"), &api.alice).await;
    assert_eq!(status, 200, "{job}");
    job
}

/// "Job N queued: URL" → N, checking the URL.
fn submitted_id(api: &TestApi, text: &str) -> u64 {
    let line = text.lines().next().unwrap_or_default();
    let rest = line.strip_prefix("Job ").expect(line);
    let (id, tail) = rest.split_once(' ').expect(line);
    let id: u64 = id.parse().expect(line);
    assert!(
        tail.ends_with(&api.url(&format!("/api/jobs/{id}"))),
        "{line}"
    );
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_from_a_file_and_from_stdin() {
    let api = TestApi::embedded(None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("build.yml");
    std::fs::write(&file, MANIFEST).unwrap();

    let text = ok(
        &api,
        &[
            "submit",
            file.to_str().unwrap(),
            "--note",
            "from a file",
            "--tag",
            "web",
            "--tag",
            "v1.2",
        ],
    )
    .await;
    assert!(text.starts_with("Job "), "{text}");
    assert!(text.contains(" queued: "), "{text}");
    let from_file = submitted_id(&api, &text);
    let created = job(&api, from_file).await;
    assert_eq!(created["status"], "queued");
    assert_eq!(created["note"], "from a file");
    assert_eq!(created["tags"], "web/v1.2");

    // Standard input, `--no-execute`, `--json`.
    let mut command = api.client(&api.alice);
    command.args(["submit", "--no-execute", "--no-secrets", "--json"]);
    let out = run_command(command, Some(MANIFEST), LIMIT).await;
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let from_stdin = answer["id"].as_u64().expect("id");
    assert_eq!(answer["url"], api.url(&format!("/api/jobs/{from_stdin}")));
    assert_eq!(job(&api, from_stdin).await["status"], "pending");

    // `-` is standard input too; two manifests make two jobs.
    let mut command = api.client(&api.alice);
    command.args(["submit", "-"]).arg(&file).arg("--json");
    let out = run_command(command, Some(MANIFEST), LIMIT).await;
    assert!(out.status.success(), "{out:?}");
    let ids: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 2, "{out:?}");

    // A file that is not there: nothing is submitted.
    let mut command = api.client(&api.alice);
    command
        .arg("submit")
        .arg(&file)
        .arg(dir.path().join("missing.yml"));
    let out = run(command).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read"), "{out:?}");
    let (_, list) = api.get("/api/jobs", &api.alice).await;
    assert_eq!(list["total"], 4, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_list_manifest_start_cancel() {
    let api = TestApi::embedded(None).await;
    // The oldest job is on the second page of the list.
    let (_, first) = api
        .post(
            "/api/jobs",
            &api.alice,
            serde_json::json!({"manifest": MANIFEST, "tags": ["old", "x"], "execute": false}),
        )
        .await;
    let oldest = first["id"].as_u64().unwrap();
    for _ in 0..52 {
        api.submit(MANIFEST, true).await;
    }
    let pending = api.submit(MANIFEST, false).await;

    let text = ok(&api, &["show", &pending.to_string()]).await;
    assert!(
        text.starts_with(&format!("Job {pending}: pending")),
        "{text}"
    );
    assert!(text.contains("image:") && text.contains("debian/bookworm"));
    assert!(text.contains("build") && !text.contains('\x1b'), "{text:?}");
    let shown = json(&api, &["show", &pending.to_string()]).await;
    assert_eq!(shown["id"], pending);
    assert_eq!(shown["tasks"][0]["name"], "build");

    // Filters apply over every page.
    let pendings = json(&api, &["list", "--status", "pending"]).await;
    let ids: Vec<u64> = pendings
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [pending, oldest]);
    let tagged = json(&api, &["list", "--tag", "old"]).await;
    assert_eq!(tagged.as_array().unwrap().len(), 1, "{tagged}");
    assert_eq!(tagged[0]["id"], oldest);
    assert_eq!(
        json(&api, &["list", "--tag", "old", "--tag", "nope"]).await,
        serde_json::json!([])
    );
    let all = json(&api, &["list"]).await;
    assert_eq!(all.as_array().unwrap().len(), 54);
    assert_eq!(
        json(&api, &["list", "--limit", "3"])
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let table = ok(&api, &["list", "--status", "pending"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"));
    assert!(lines[2].starts_with(&oldest.to_string()) && lines[2].contains("old/x"));
    let mut command = api.client(&api.alice);
    command.args(["list", "--status", "done"]);
    let out = run(command).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown status"), "{out:?}");

    // The manifest, byte for byte.
    assert_eq!(
        ok(&api, &["manifest", &pending.to_string()]).await,
        MANIFEST
    );
    let manifest = json(&api, &["manifest", &pending.to_string()]).await;
    assert_eq!(manifest["manifest"], MANIFEST);

    // Start, then cancel; cancelling twice is refused with the API's reason.
    let text = ok(&api, &["start", &pending.to_string()]).await;
    assert_eq!(text, format!("Job {pending}: queued\n"));
    assert_eq!(job(&api, pending).await["status"], "queued");
    let cancelled = json(&api, &["cancel", &pending.to_string()]).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(job(&api, pending).await["status"], "cancelled");
    let mut command = api.client(&api.alice);
    command.args(["cancel", &pending.to_string()]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("cannot be cancelled: it is already cancelled"),
        "{out:?}"
    );

    // No artifacts; an unknown job.
    let mut command = api.client(&api.alice);
    command.args(["artifacts", &pending.to_string()]);
    let out = run(command).await;
    assert!(out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("has no artifacts"), "{out:?}");
    assert_eq!(
        json(&api, &["artifacts", &pending.to_string()]).await,
        serde_json::json!([])
    );
    let mut command = api.client(&api.alice);
    command.args(["show", "999999"]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim(), "builds: job 999999: 404 not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_shows_the_envelope_reasons() {
    let api = TestApi::embedded(None).await;
    let mut command = api.client(&api.alice);
    command.args(["submit", "--tag", "Not A Tag"]);
    let out = run_command(
        command,
        Some("image: 5\ntasks:\n  - Bad Name: make\n"),
        LIMIT,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stderr(&out);
    assert!(text.contains("manifest: image"), "{text}");
    assert!(text.contains("manifest: tasks[0]"), "{text}");
    assert!(text.contains("tags: Invalid tag"), "{text}");
    assert!(
        !text.contains("{\"errors\"") && !text.contains("\"reason\""),
        "no raw JSON: {text}"
    );
    assert!(stdout(&out).is_empty());
    let (_, list) = api.get("/api/jobs", &api.alice).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_clearly() {
    let api = TestApi::embedded(None).await;
    let mut command = api.client("not-a-token");
    command.arg("list");
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stderr(&out);
    assert!(text.contains("Invalid or expired OAuth token"), "{text}");
    assert!(
        text.contains("--token"),
        "says where the token came from: {text}"
    );
    assert!(
        !text.contains("retrying"),
        "an answer is not retried: {text}"
    );

    // A token without jobs:write can read but not submit.
    let mut command = api.client(&api.alice_read_only);
    command.arg("submit");
    let out = run_command(command, Some(MANIFEST), LIMIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("jobs:write"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_retried_then_reported() {
    let api = TestApi::embedded(None).await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut command = api.client(&api.alice);
    command.args(["list", "--url", &url, "--retries", "2"]);
    let started = Instant::now();
    let out = run(command).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stderr(&out);
    assert_eq!(text.matches("retrying in").count(), 2, "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "builds: listing jobs: cannot reach the API at {url}"
        )),
        "{text}"
    );
    assert!(last.contains("gave up after 3 attempts"), "{text}");

    // A submission that never reached the server is retried too.
    let mut command = api.client(&api.alice);
    command.args(["submit", "--url", &url]);
    let out = run_command(command, Some(MANIFEST), LIMIT).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stderr(&out).matches("retrying in").count(), 1, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_flags_and_environment() {
    use std::os::unix::fs::PermissionsExt;
    let api = TestApi::embedded(None).await;
    let id = api.submit(MANIFEST, false).await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("builds").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!("url = \"{}\"\ntoken = \"{}\"\n", api.base, api.alice),
    )
    .unwrap();
    let client = |mode: u32| {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut command = api.client(&api.alice);
        command
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("BUILDS_URL")
            .env_remove("BUILDS_TOKEN");
        command
    };

    let mut command = client(0o644);
    command.args(["show", &id.to_string()]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stderr(&out);
    assert!(
        text.contains("has mode 644") && text.contains(&format!("chmod 600 {}", file.display())),
        "{text}"
    );

    let mut command = client(0o600);
    command.args(["show", &id.to_string()]);
    let out = run(command).await;
    assert!(out.status.success(), "{out:?}");

    // The environment wins over the file, and a flag over the environment.
    let mut command = client(0o600);
    command
        .env("BUILDS_TOKEN", "wrong")
        .args(["show", &id.to_string()]);
    let out = run(command).await;
    assert!(
        stderr(&out).contains("Invalid or expired OAuth token"),
        "{out:?}"
    );
    let mut command = client(0o600);
    command
        .env("BUILDS_TOKEN", "wrong")
        .args(["show", &id.to_string(), "--token", &api.alice]);
    assert!(run(command).await.status.success());
    // bob cannot see alice's job.
    let mut command = client(0o600);
    command.args(["show", &id.to_string(), "--token", &api.bob]);
    let out = run(command).await;
    assert!(stderr(&out).contains("404 not found"), "{out:?}");

    // Nothing configured at all.
    let mut command = client(0o600);
    command
        .env("XDG_CONFIG_HOME", home.path().join("empty"))
        .args(["list"]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no API URL: pass --url, set BUILDS_URL"),
        "{out:?}"
    );
}

/// Following a job that never runs (no worker here) until it is cancelled:
/// the final status line, and a non-zero exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_job_that_is_cancelled_exits_non_zero() {
    let api = TestApi::embedded(None).await;
    let id = api.submit(MANIFEST, true).await;
    let mut command = api.client(&api.alice);
    command.args(["show", &id.to_string(), "--follow"]);
    let follower = tokio::spawn(run_command(command, None, LIMIT));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = api
        .post(
            &format!("/api/jobs/{id}/cancel"),
            &api.alice,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let out = follower.await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!("==> job {id}: cancelled (build: pending)\n")
    );

    // `--json`: the final job on standard output, the status line on stderr.
    let out = {
        let mut command = api.client(&api.alice);
        command.args(["show", &id.to_string(), "--follow", "--json"]);
        run(command).await
    };
    assert_eq!(out.status.code(), Some(1));
    let last: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(last["status"], "cancelled");
    assert!(stderr(&out).contains("==> job"), "{out:?}");

    // --follow needs the job to run.
    let mut command = api.client(&api.alice);
    command.args(["submit", "--no-execute", "--follow"]);
    let out = run_command(command, Some(MANIFEST), LIMIT).await;
    assert_eq!(out.status.code(), Some(2), "a usage error: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmit_copies_and_edit_changes_the_manifest() {
    let api = TestApi::embedded(None).await;
    let (_, first) = api
        .post(
            "/api/jobs",
            &api.alice,
            serde_json::json!({"manifest": MANIFEST, "note": "nightly", "tags": ["a", "b"]}),
        )
        .await;
    let old = first["id"].as_u64().unwrap();

    let again = json(&api, &["resubmit", &old.to_string()]).await;
    let copy = again["id"].as_u64().unwrap();
    let copied = job(&api, copy).await;
    assert_eq!(
        (copied["note"].clone(), copied["tags"].clone()),
        ("nightly".into(), "a/b".into())
    );
    assert_eq!(ok(&api, &["manifest", &copy.to_string()]).await, MANIFEST);

    let mut command = api.client(&api.alice);
    command.env("EDITOR", "sed -i s/first/edited/").args([
        "resubmit",
        &old.to_string(),
        "--edit",
        "--note",
        "edited",
    ]);
    let out = run(command).await;
    assert!(out.status.success(), "{out:?}");
    let edited = submitted_id(&api, &stdout(&out));
    assert_eq!(
        ok(&api, &["manifest", &edited.to_string()]).await,
        MANIFEST.replace("first", "edited")
    );
    assert_eq!(job(&api, edited).await["note"], "edited");

    // An editor that fails submits nothing.
    let mut command = api.client(&api.alice);
    command
        .env("EDITOR", "false")
        .args(["resubmit", &old.to_string(), "--edit"]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing was submitted"), "{out:?}");
    let (_, list) = api.get("/api/jobs", &api.alice).await;
    assert_eq!(list["total"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_add_list_delete_and_their_errors() {
    use builds_domain::token::Scope;
    let api = TestApi::embedded(None).await;
    let token = api
        .mint("alice", vec![Scope::SecretsRead, Scope::SecretsWrite])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token.txt");
    std::fs::write(&file, "t0ps3cret\n").unwrap();
    let client = |args: &[&str]| {
        let mut command = api.client(&token);
        command.args(args);
        command
    };
    let path = file.to_str().unwrap();

    let out = run(client(&[
        "secret",
        "add",
        "--type",
        "file",
        "--path",
        "~/.token",
        "--mode",
        "640",
        "--name",
        "deploy-token",
        path,
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    let added = stdout(&out);
    let id = added
        .strip_prefix("Secret ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{added}"))
        .to_string();
    assert_eq!(added, format!("Secret {id} added as deploy-token\n"));

    let out = run(client(&["secret", "list"])).await;
    let table = stdout(&out);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("file") && table.contains("~/.token (640)"),
        "{table}"
    );
    assert!(!table.contains("t0ps3cret"), "{table}");
    let out = run(client(&["secret", "list", "--json"])).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());

    // Mistakes are named before anything is sent, or by the API's envelope.
    for (args, says) in [
        (
            vec!["secret", "add", "--type", "ssh_key", "--path", "~/x", path],
            "--path and --mode are for --type file only",
        ),
        (
            vec!["secret", "add", "--type", "file", path],
            "needs --path",
        ),
        (
            vec![
                "secret",
                "add",
                "--type",
                "file",
                "--path",
                "~/x",
                "/nonexistent",
            ],
            "cannot read /nonexistent",
        ),
        (vec!["secret", "add", "--type", "ssh_key", path], "secret:"),
        (
            vec![
                "secret",
                "add",
                "--type",
                "file",
                "--path",
                "~/y",
                "--name",
                "deploy-token",
                path,
            ],
            "already have a secret named",
        ),
        (
            vec!["secret", "add", "--type", "password", path],
            "invalid value 'password'",
        ),
    ] {
        let out = run(client(&args)).await;
        assert!(!out.status.success(), "{args:?}: {out:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let mut jobs_only = api.client(&api.alice);
    jobs_only.args(["secret", "list"]);
    let out = run(jobs_only).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("secrets:read"), "{}", stderr(&out));

    let out = run(client(&["secret", "delete", &id])).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), format!("Secret {id} deleted\n"));
    let out = run(client(&["secret", "delete", &id])).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = run(client(&["secret", "list", "--json"])).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_into_a_job_that_is_not_held_says_so() {
    let api = TestApi::embedded(None).await;
    let id = api.submit(MANIFEST, false).await;
    let mut command = api.client(&api.alice);
    command.args(["ssh", &id.to_string()]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains(&format!(
            "job {id} is pending and its guest is not held for SSH"
        )),
        "{}",
        stderr(&out)
    );
    let mut command = api.client(&api.alice);
    command.args(["ssh", "999999"]);
    let out = run(command).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}
