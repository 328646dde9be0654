//! The Lambda function binaries themselves, run by cargo-lambda's runtime
//! emulator (`cargo lambda watch`) against the AWS emulator, and called over
//! HTTP through its function URL emulation (`/lambda-url/<function>/<path>`).
//!
//! `cargo lambda watch` compiles and starts a function on its first request
//! (`cargo run --package builds-functions --bin <function>`), so this test
//! builds the two binaries first with the same command line: a compile error
//! then shows as one, and the first request only has to start the binary.
//!
//! Skips (printing `SKIPPED: why`) without an AWS emulator or without
//! `cargo lambda` (`pip install cargo-lambda`); under `CI=true` both are required.

use builds_domain::job::JobMessage;
use builds_domain::token::{mint_token, Scope};
use builds_domain::{JobStatus, NewJob};
use builds_storage::{Backend, UrlSigner};
use serde_json::{json, Value};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The functions this test calls.
const FUNCTIONS: [&str; 2] = ["get-job", "submit-job"];
/// Bound on building the function binaries (a cold debug build of the AWS SDK
/// on two slow cores takes a few minutes).
const BUILD_BOUND: Duration = Duration::from_secs(10 * 60);
/// Bound on `cargo lambda watch` listening on its port.
const LISTEN_BOUND: Duration = Duration::from_secs(60);
/// Bound on a function's first invocation: `cargo run` checks the build and
/// starts the binary, which connects to its backend.
const FIRST_INVOKE_BOUND: Duration = Duration::from_secs(5 * 60);
/// Bound on any later invocation of a running function.
const INVOKE_BOUND: Duration = Duration::from_secs(60);

#[tokio::test]
async fn function_binaries_answer_under_cargo_lambda_watch() {
    let Some(endpoint) = builds_tests::aws_endpoint() else {
        return;
    };
    if let Err(why) = cargo_lambda_version() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but `cargo lambda` does not run ({why}): .ci/run must install it");
        }
        eprintln!(
            "SKIPPED: `cargo lambda` does not run ({why}); \
             `python3 -m pip install cargo-lambda` installs it"
        );
        return;
    }
    let started = Instant::now();
    let logs = tempfile::tempdir().expect("temp dir");

    // Fresh resources (a stack from the template), a token and a job,
    // written through the store.
    let names = builds_tests::Stack::deploy(&[]).await.names();
    let queue_url = names.queue_url.clone().expect("the stack's queue URL");
    let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|id| id.into_bytes())
        .collect();
    let signer = UrlSigner::new(key.clone());
    let backend = Backend::aws(&names, signer.clone())
        .await
        .expect("aws backend");
    let now = builds_domain::job::now();
    let (token, record) = mint_token("alice", vec![Scope::JobsRead, Scope::JobsWrite], None, now);
    backend.store.put_token(&record).await.expect("put token");
    let job = backend
        .store
        .create_job(NewJob {
            owner: "alice".into(),
            // Running, so the resource carries a signed setup-log link: proof
            // that the function got the signing key and origin.
            status: JobStatus::Running,
            manifest: "image: debian/bookworm\ntasks:\n  - a: echo a\n".into(),
            image: "debian/bookworm".into(),
            note: Some("from the store".into()),
            tags: vec!["lambda".into(), "watch".into()],
            secrets: false,
            task_names: vec!["a".into()],
            group_id: None,
        })
        .await
        .expect("create job");

    let workspace = workspace_root();
    build_functions(&workspace, &logs.path().join("build.log")).await;

    let origin = "https://builds.invalid";
    let function_env: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", env_or("AWS_REGION", "us-east-1")),
        ("AWS_ACCESS_KEY_ID", env_or("AWS_ACCESS_KEY_ID", "test")),
        (
            "AWS_SECRET_ACCESS_KEY",
            env_or("AWS_SECRET_ACCESS_KEY", "test"),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("BUILDS_JOBS_TABLE", names.jobs_table.clone()),
        ("BUILDS_GROUPS_TABLE", names.groups_table.clone()),
        ("BUILDS_TOKENS_TABLE", names.tokens_table.clone()),
        ("BUILDS_COUNTERS_TABLE", names.counters_table.clone()),
        ("BUILDS_SECRETS_TABLE", names.secrets_table.clone()),
        ("BUILDS_SSH_KEYS_TABLE", names.ssh_keys_table.clone()),
        ("BUILDS_QUEUE_NAME", names.queue_name.clone()),
        ("BUILDS_QUEUE_URL", queue_url),
        ("BUILDS_BUCKET", names.bucket.clone()),
        ("BUILDS_SIGNING_KEY", hex_encode(&key)),
        ("BUILDS_ORIGIN", origin.into()),
    ];
    let mut watch = Watch::start(&workspace, &function_env, &logs.path().join("watch.log")).await;
    eprintln!(
        "cargo lambda watch on {} after {:.1?}",
        watch.base,
        started.elapsed()
    );

    // get-job: the job as the API shows it.
    let path = format!("/api/jobs/{}", job.id);
    let t = Instant::now();
    let (status, body) = watch
        .call("get-job", "GET", &path, &token, None, FIRST_INVOKE_BOUND)
        .await;
    eprintln!(
        "get-job, first call (starts the function): {:.1?}",
        t.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], job.id);
    assert_eq!(body["status"], "running");
    assert_eq!(body["image"], "debian/bookworm");
    assert_eq!(body["note"], "from the store");
    assert_eq!(body["tags"], "lambda/watch");
    assert_eq!(body["owner"]["canonical_name"], "~alice");
    assert_eq!(body["tasks"][0]["name"], "a");
    assert_eq!(body["tasks"][0]["status"], "pending");
    let link = body["setup_log"].as_str().expect("a setup-log link");
    let log_path = format!("/logs/{}/setup", job.id);
    let query = link
        .strip_prefix(&format!("{origin}{log_path}?"))
        .unwrap_or_else(|| panic!("{link} does not start with {origin}{log_path}?"));
    assert!(
        signer.verify(&log_path, Some(query), now),
        "{link} is not signed with BUILDS_SIGNING_KEY"
    );

    // A bad token, and a job that is not there: the function's error envelope.
    let (status, body) = watch
        .call("get-job", "GET", &path, "not-a-token", None, INVOKE_BOUND)
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["errors"][0]["reason"],
        "Invalid or expired OAuth token"
    );
    let (status, _) = watch
        .call(
            "get-job",
            "GET",
            &format!("/api/jobs/{}", job.id + 1000),
            &token,
            None,
            INVOKE_BOUND,
        )
        .await;
    assert_eq!(status, 404);

    // submit-job: stores a queued job and sends it to the queue.
    let t = Instant::now();
    let manifest = "image: debian/bookworm\ntasks:\n  - build: make\n  - test: make check\n";
    let (status, body) = watch
        .call(
            "submit-job",
            "POST",
            "/api/jobs",
            &token,
            Some(json!({"manifest": manifest, "note": "via submit-job"})),
            FIRST_INVOKE_BOUND,
        )
        .await;
    eprintln!(
        "submit-job, first call (starts the function): {:.1?}",
        t.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_u64().expect("an id");
    let stored = backend
        .store
        .get_job(id)
        .await
        .expect("get job")
        .expect("the submitted job is stored");
    assert_eq!(stored.owner, "alice");
    assert_eq!(stored.status, JobStatus::Queued);
    assert_eq!(stored.manifest, manifest);
    assert_eq!(stored.note.as_deref(), Some("via submit-job"));
    let tasks: Vec<&str> = stored.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tasks, ["build", "test"]);
    let deliveries = backend
        .queue
        .receive(10, Duration::from_secs(30), Duration::from_secs(5))
        .await
        .expect("receive");
    let queued: Vec<Option<JobMessage>> = deliveries
        .iter()
        .map(|d| JobMessage::from_body(&d.body))
        .collect();
    assert_eq!(queued, [Some(JobMessage { job_id: id })]);

    // The submitted job through get-job, now that both functions run.
    let (status, body) = watch
        .call(
            "get-job",
            "GET",
            &format!("/api/jobs/{id}"),
            &token,
            None,
            INVOKE_BOUND,
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("queued")));
    let (status, body) = watch
        .call(
            "submit-job",
            "POST",
            "/api/jobs",
            "not-a-token",
            Some(json!({"manifest": manifest})),
            INVOKE_BOUND,
        )
        .await;
    assert_eq!(status, 401, "{body}");

    drop(watch);
    eprintln!("done in {:.1?}", started.elapsed());
}

/// `cargo lambda --version`, or why it does not run.
fn cargo_lambda_version() -> Result<String, String> {
    let output = Command::new(cargo())
        .args(["lambda", "--version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(stderr.lines().next().unwrap_or("failed").trim().to_string())
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `cargo` for the workspace, without the variables that cargo set for this
/// test binary (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...): build scripts
/// track some of them (ring's does), and with them the nested build would
/// rebuild half the dependency tree, and the next `cargo test` again.
fn cargo_command(workspace: &Path) -> Command {
    let mut command = Command::new(cargo());
    command.current_dir(workspace);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_for_crates = matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        ) || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_");
        if set_for_crates {
            command.env_remove(name);
        }
    }
    command
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/")
        .to_path_buf()
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last `lines` lines of a log file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Builds the functions with the arguments `cargo lambda watch` passes to
/// `cargo run`, in the same target directory, so that its `cargo run` finds
/// them fresh.
async fn build_functions(workspace: &Path, log: &Path) {
    let mut command = cargo_command(workspace);
    command.args(["build", "--package", "builds-functions"]);
    for function in FUNCTIONS {
        command.args(["--bin", function]);
    }
    let t = Instant::now();
    let mut build = Group::spawn(&mut command, log);
    let status = build.wait(BUILD_BOUND).await;
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "building the functions failed ({status}):\n{}",
            tail(log, 60)
        ),
        None => panic!(
            "building the functions took longer than {BUILD_BOUND:?}:\n{}",
            tail(log, 60)
        ),
    }
    eprintln!("built {FUNCTIONS:?} in {:.1?}", t.elapsed());
}

/// `cargo lambda watch` on a free loopback port.
struct Watch {
    base: String,
    log: PathBuf,
    http: reqwest::Client,
    // Last: the process group is stopped when the rest is gone.
    process: Group,
}

impl Watch {
    async fn start(workspace: &Path, env: &[(&str, String)], log: &Path) -> Watch {
        // A port that was free a moment ago can be taken before cargo-lambda
        // binds it: try a few.
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut command = cargo_command(workspace);
            command
                .args(["lambda", "watch", "--package", "builds-functions"])
                .args(["--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &port.to_string()])
                // Edits to the sources while the test runs must not restart
                // the functions.
                .arg("--ignore-changes")
                .env("CARGO_TERM_COLOR", "never")
                .env("NO_COLOR", "1")
                // An error that ends a function then fits in the log's tail.
                .env("RUST_BACKTRACE", "0")
                .env("RUST_LIB_BACKTRACE", "0");
            for name in [
                "BUILDS_AWS_PREFIX",
                "BUILDS_IMAGES",
                "BUILDS_LINK_TTL",
                "BUILDS_MAX_BODY",
            ] {
                command.env_remove(name);
            }
            for (name, value) in env {
                command.env(name, value);
            }
            let mut process = Group::spawn(&mut command, log);
            let deadline = Instant::now() + LISTEN_BOUND;
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Watch {
                        base: format!("http://127.0.0.1:{port}"),
                        log: log.to_path_buf(),
                        http: reqwest::Client::new(),
                        process,
                    };
                }
                if let Some(status) = process.exited() {
                    last_failure = format!("exited ({status}):\n{}", tail(log, 40));
                    break;
                }
                if Instant::now() > deadline {
                    last_failure = format!(
                        "did not listen on port {port} within {LISTEN_BOUND:?}:\n{}",
                        tail(log, 40)
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("cargo lambda watch {last_failure}");
    }

    /// Calls `function` through its function URL; returns the status and the
    /// JSON body (Null when it is not JSON). Fails fast, with the log, when a
    /// function process dies instead of answering.
    async fn call(
        &mut self,
        function: &str,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        bound: Duration,
    ) -> (u16, Value) {
        let url = format!("{}/lambda-url/{function}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, &url)
            .timeout(bound)
            .header("Authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let log = self.log.clone();
        let process = &mut self.process;
        let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let send = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let died = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Some(status) = process.exited() {
                    return format!("cargo lambda watch exited ({status})");
                }
                let text = std::fs::read(&log).unwrap_or_default();
                let new = String::from_utf8_lossy(&text[(log_before as usize).min(text.len())..])
                    .to_string();
                if new.contains("command exited") || new.contains("command killed") {
                    return "the function process ended".to_string();
                }
            }
        };
        tokio::select! {
            result = send => match result {
                Ok((status, text)) => (status, serde_json::from_str(&text).unwrap_or(Value::Null)),
                Err(err) => panic!("{url}: {err}\ncargo lambda watch:\n{}", tail(&log, 60)),
            },
            why = died => panic!("{url}: {why}\ncargo lambda watch:\n{}", tail(&log, 60)),
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A child process leading its own process group, with its output in a log
/// file. Dropping it (also when a test panics) stops the group and every
/// process started under it: SIGTERM, then SIGKILL after a grace period.
struct Group {
    child: Child,
}

impl Group {
    fn spawn(command: &mut Command, log: &Path) -> Group {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Group { child }
    }

    /// The leader's exit status, once it has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `bound` for the leader to exit; `None` if it did not.
    async fn wait(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn stop(&mut self) {
        let leader = self.child.id() as i32;
        // Children may have moved to process groups of their own (watchexec
        // starts each function in one): find them by parentage first.
        let mut tree = descendants(leader);
        signal_all(leader, &tree, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leader_done = matches!(self.child.try_wait(), Ok(Some(_)));
            tree.retain(|pid| alive(*pid));
            if leader_done && tree.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                signal_all(leader, &tree, libc::SIGKILL);
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            // New children appear while cargo-lambda shuts down? Take them too.
            if !leader_done {
                for pid in descendants(leader) {
                    if !tree.contains(&pid) {
                        tree.push(pid);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Anything left in the group (its leader gone) goes too.
        unsafe { libc::kill(-leader, libc::SIGKILL) };
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_all(group: i32, pids: &[i32], signal: i32) {
    unsafe {
        libc::kill(-group, signal);
        for pid in pids {
            libc::kill(*pid, signal);
        }
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is gone for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|(state, _)| state != "Z"),
        Err(_) => false,
    }
}

/// State and parent pid from `/proc/PID/stat` (the command name may hold
/// spaces and parentheses, so fields are counted after its last `)`).
fn stat_fields(stat: &str) -> Option<(&str, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Every living process below `root`.
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
                if let Some((_, ppid)) = stat_fields(&stat) {
                    parents.push((pid, ppid));
                }
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}
