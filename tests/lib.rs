//! Helpers shared by the integration tests: backends to test against, and the
//! emulator they find through the environment that `.ci/run` prepares.

use builds_storage::aws::{self, AwsNames, DynamoJobStore, S3BlobStore, SqsJobQueue};
use builds_storage::conformance::Fixture;
use builds_storage::embedded::{Database, DirBlobStore, SqliteJobQueue, SqliteJobStore};
use builds_storage::sealing::{KeyFileSealer, KmsSealer};
use builds_storage::UrlSigner;
use std::sync::Arc;

pub mod sinks;

/// The AWS emulator's endpoint, or `None` (with the reason printed) when the
/// tests should skip the AWS backend. Under `CI=true` the emulator is required.
pub fn aws_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but AWS_ENDPOINT_URL is not set: .ci/run must start the emulator")
        }
        _ => {
            eprintln!(
                "SKIPPED (AWS backend): AWS_ENDPOINT_URL is not set. Start an emulator \
                 (`moto_server -H 127.0.0.1 -p 4566` or `localstack start`) and export \
                 AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ACCESS_KEY_ID=test \
                 AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"
            );
            None
        }
    }
}

/// The repository's root directory.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A stack deployed from `infra/template.yaml` into the emulator by
/// `infra/local-up`, and the environment it printed for the AWS backend.
pub struct Stack {
    pub name: String,
    pub env: std::collections::HashMap<String, String>,
}

impl Stack {
    /// Deploys a stack no other test uses (its own name prefix), so tests can
    /// run in parallel against one emulator. `args` go to `infra/local-up`.
    pub async fn deploy(args: &[&str]) -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("t{}", &id[..12]);
        let prefix = format!("{name}-");
        let output = tokio::process::Command::new(repo_root().join("infra/local-up"))
            .args(["--stack", &name, "--prefix", &prefix])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run infra/local-up");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "infra/local-up failed ({}):\n{}\n{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        let env = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Stack { name, env }
    }

    /// The AWS backend's names for this stack's resources.
    pub fn names(&self) -> AwsNames {
        AwsNames::from_lookup(|key| self.env.get(key).cloned())
    }
}

/// A fresh embedded backend in a temporary directory, with a local HTTP server
/// for its presigned blob URLs. Keep the returned guard alive.
pub async fn embedded_fixture(max_receives: u32) -> (Fixture, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let signer = UrlSigner::new(b"conformance-test-key".to_vec());
    let db = Database::open(&dir.path().join("builds.sqlite3")).expect("database");
    let blobs = DirBlobStore::new(&dir.path().join("blobs"), &origin, signer).expect("blobs");
    let app = builds_functions::blobs::router(blobs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let queue = SqliteJobQueue::new(db.clone(), "jobs", max_receives);
    let fixture = Fixture {
        store: Arc::new(SqliteJobStore::new(db)),
        dead_letter: Arc::new(queue.dead_letter_queue()),
        queue: Arc::new(queue),
        max_receives,
        blobs: Arc::new(blobs),
        sealer: Arc::new(
            KeyFileSealer::from_key_file(&dir.path().join("secrets.key")).expect("key file"),
        ),
    };
    (fixture, dir)
}

/// A fresh set of AWS resources in the emulator, made from the template by
/// `infra/local-up`, or `None` when skipping.
pub async fn aws_fixture(max_receives: u32) -> Option<Fixture> {
    aws_endpoint()?;
    let config = aws::load_sdk_config().await;
    let stack = Stack::deploy(&["--max-receives", &max_receives.to_string()]).await;
    let names = stack.names();
    let queue_url = names.queue_url.clone().expect("the stack's queue URL");
    let sqs = aws_sdk_sqs_client(&config);
    // The dead-letter queue as the worker finds it: by the main queue's URL.
    let dead_letter = SqsJobQueue::new(sqs.clone(), queue_url.clone()).dead_letter_queue();
    Some(Fixture {
        store: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb_client(&config),
            names.clone(),
        )),
        queue: Arc::new(SqsJobQueue::new(sqs, queue_url)),
        dead_letter: Arc::new(dead_letter),
        max_receives,
        sealer: Arc::new(KmsSealer::new(
            aws_sdk_kms::Client::new(&config),
            Some(names.secrets_key.clone().expect("the stack's secrets key")),
        )),
        blobs: Arc::new(S3BlobStore::new(aws::s3_client(&config), names.bucket)),
    })
}

fn aws_sdk_sqs_client(config: &aws::SdkConfig) -> aws::SqsClient {
    aws::SqsClient::new(config)
}

fn aws_sdk_dynamodb_client(config: &aws::SdkConfig) -> aws::DynamoClient {
    aws::DynamoClient::new(config)
}

/// A running API server (the same router `builds serve` mounts) on a free
/// loopback port, its backend, and tokens for two users.
pub struct TestApi {
    pub base: String,
    pub backend: builds_storage::Backend,
    pub http: reqwest::Client,
    /// Signs webhooks of the workers `start_worker` starts; the API publishes
    /// its public half at `GET /api/webhook-key`.
    pub webhook_key: ed25519_dalek::SigningKey,
    /// alice: jobs:read + jobs:write
    pub alice: String,
    /// alice: jobs:read only
    pub alice_read_only: String,
    /// bob: jobs:read + jobs:write
    pub bob: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestApi {
    async fn serve(
        backend: builds_storage::Backend,
        listener: tokio::net::TcpListener,
        images: Option<Vec<String>>,
        dir: Option<tempfile::TempDir>,
    ) -> TestApi {
        use builds_domain::token::{mint_token, Scope};
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = builds_functions::ApiConfig::new(&base);
        config.images = images;
        let webhook_key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        config.webhook_public_key = Some(builds_worker::triggers::public_key_base64(&webhook_key));
        let app =
            builds_functions::api_router(builds_functions::AppState::new(backend.clone(), config));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let now = builds_domain::job::now();
        let mint = async |owner: &str, scopes: Vec<Scope>| {
            let (token, record) = mint_token(owner, scopes, None, now);
            backend.store.put_token(&record).await.expect("token");
            token
        };
        let alice = mint("alice", vec![Scope::JobsRead, Scope::JobsWrite]).await;
        let alice_read_only = mint("alice", vec![Scope::JobsRead]).await;
        let bob = mint("bob", vec![Scope::JobsRead, Scope::JobsWrite]).await;
        TestApi {
            base,
            backend,
            webhook_key,
            http: reqwest::Client::new(),
            alice,
            alice_read_only,
            bob,
            _dir: dir,
        }
    }

    /// The API on the embedded backend in a temporary directory.
    pub async fn embedded(images: Option<Vec<String>>) -> TestApi {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let backend = builds_storage::Backend::embedded(dir.path(), &origin).expect("backend");
        TestApi::serve(backend, listener, images, Some(dir)).await
    }

    /// The API on fresh AWS resources in the emulator (a stack deployed from
    /// the template), or `None` when skipping.
    pub async fn aws(images: Option<Vec<String>>) -> Option<TestApi> {
        aws_endpoint()?;
        let names = Stack::deploy(&[]).await.names();
        let backend =
            builds_storage::Backend::aws(&names, UrlSigner::new(b"api-test-key".to_vec()))
                .await
                .expect("aws backend");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Some(TestApi::serve(backend, listener, images, None).await)
    }

    /// The API on a backend the caller made.
    pub async fn on_backend(backend: builds_storage::Backend) -> TestApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        TestApi::serve(backend, listener, None, None).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with `token` as a bearer token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("Authorization", format!("Bearer {token}"))
    }

    /// Sends and returns status and JSON body (Null when the body is not JSON).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::GET, path, token))
            .await
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::POST, path, token).json(&body))
            .await
    }

    /// A fresh token for `owner` with `scopes`.
    pub async fn mint(&self, owner: &str, scopes: Vec<builds_domain::token::Scope>) -> String {
        let (token, record) =
            builds_domain::token::mint_token(owner, scopes, None, builds_domain::job::now());
        self.backend.store.put_token(&record).await.expect("token");
        token
    }

    /// Adds a secret through the API as `token`'s owner; returns its resource.
    pub async fn add_secret(&self, token: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, created) = self.post("/api/secrets", token, body).await;
        assert_eq!(status, 201, "{created}");
        created
    }

    /// Submits `manifest` as alice; returns the new job's id.
    pub async fn submit(&self, manifest: &str, execute: bool) -> u64 {
        let (status, body) = self
            .post(
                "/api/jobs",
                &self.alice,
                serde_json::json!({"manifest": manifest, "execute": execute}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_u64().expect("id")
    }
}

/// Guest images for the end-to-end tests: `BUILDS_TEST_IMAGES` (which `.ci/run`
/// builds with `builds image build debian/bookworm`), or `None` (with the
/// reason printed) when they are missing. Under `CI=true` they are required.
pub fn test_images() -> Option<std::path::PathBuf> {
    let missing = |why: String| {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {why}: .ci/run must build the test image");
        }
        eprintln!(
            "SKIPPED (real VMs): {why}. Install qemu-system-x86 and debootstrap, run \
             `builds image build debian/bookworm --images DIR`, and export BUILDS_TEST_IMAGES=DIR"
        );
        None
    };
    let Some(dir) = std::env::var_os("BUILDS_TEST_IMAGES").map(std::path::PathBuf::from) else {
        return missing("BUILDS_TEST_IMAGES is not set".to_string());
    };
    if !builds_worker::image::is_ready(&dir, "debian/bookworm") {
        return missing(format!("{} holds no debian/bookworm image", dir.display()));
    }
    Some(dir)
}

impl TestApi {
    /// The embedded backend's data directory.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    /// Starts an in-process worker on this API's backend; it stops when the
    /// returned sender is dropped or sent `true`.
    pub fn start_worker(
        &self,
        images: &std::path::Path,
        tune: impl FnOnce(&mut builds_worker::WorkerConfig),
    ) -> tokio::sync::watch::Sender<bool> {
        let work =
            std::env::temp_dir().join(format!("builds-work-{}", uuid::Uuid::new_v4().simple()));
        let mut config = builds_worker::WorkerConfig::new(images.to_path_buf(), work, &self.base);
        config.accel = builds_worker::config::AccelChoice::Tcg;
        config.memory_mb = 1024;
        config.triggers.webhook_key = Some(self.webhook_key.clone());
        tune(&mut config);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let worker = builds_worker::Worker::new(self.backend.clone(), config);
        tokio::spawn(worker.run(shutdown));
        stop
    }

    /// Polls the job until `done` says so about it, or panics after `limit`.
    pub async fn wait_for(
        &self,
        id: u64,
        limit: std::time::Duration,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (_, job) = self.get(&format!("/api/jobs/{id}"), &self.alice).await;
            if done(&job) {
                return job;
            }
            let ended = matches!(
                job["status"].as_str(),
                Some("success" | "failed" | "timeout" | "cancelled")
            );
            if ended {
                let setup = match job["setup_log"].as_str() {
                    Some(url) => self.log_text(url).await,
                    None => String::new(),
                };
                panic!("the job ended before {what}: {job}\nsetup log:\n{setup}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {job}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Fetches a log link (no header needed) as text.
    pub async fn log_text(&self, url: &str) -> String {
        reqwest::get(url)
            .await
            .expect("log")
            .text()
            .await
            .expect("log text")
    }
}

/// The `builds` binary (built once per test process), as a command.
pub fn builds_command() -> std::process::Command {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let binary = BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "builds-cli", "--bin", "builds"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the builds binary failed");
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test>-<hash> → target/<profile>/builds
        exe.parent()
            .and_then(|deps| deps.parent())
            .expect("target dir")
            .join("builds")
    });
    std::process::Command::new(binary)
}

impl TestApi {
    /// The `builds` binary as a client of this API with `token`: URL and token
    /// through the environment, no config file, short retries.
    pub fn client(&self, token: &str) -> std::process::Command {
        let mut command = builds_command();
        command
            .env("BUILDS_URL", &self.base)
            .env("BUILDS_TOKEN", token)
            .env("XDG_CONFIG_HOME", "/nonexistent/builds-test-config")
            .env("BUILDS_RETRIES", "1")
            .env("BUILDS_RETRY_DELAY_MS", "50")
            .env_remove("NO_COLOR")
            .env_remove("VISUAL")
            .env_remove("EDITOR");
        command
    }
}

/// Runs a command to its end (at most `limit`) with `stdin` as its input.
pub async fn run_command(
    command: std::process::Command,
    stdin: Option<&str>,
    limit: std::time::Duration,
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::from(command);
    command
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the command starts");
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes()).await.expect("stdin");
    }
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("the command ended in time")
        .expect("the command's output")
}
