//! End to end with real guests (TCG here, KVM on bare metal): jobs go in
//! through the HTTP API, an in-process worker (or a `builds worker` process)
//! runs them in QEMU, and logs, artifacts and statuses come back out.

use builds_tests::{builds_command, test_images, TestApi};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

const VM_JOB: Duration = Duration::from_secs(600);

fn statuses(job: &Value) -> Vec<String> {
    job["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .map(|t| t["status"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("success" | "failed" | "timeout" | "cancelled")
    )
}

/// One worker with two slots runs a successful job (environment, live log,
/// complete-build, artifact) and a failing one at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_jobs_success_and_failure() {
    let Some(images) = test_images() else { return };
    let api = TestApi::embedded(None).await;
    let _worker = api.start_worker(&images, |c| c.concurrency = 2);
    let hooks = builds_tests::sinks::WebhookSink::start(200).await;
    let good = api
        .submit(
            &format!(
                r#"image: debian/bookworm
oauth: builds.sr.ht/JOBS:RO git.sr.ht/REPOSITORIES:RO
triggers:
  - action: webhook
    url: {hook}
    condition: success
environment:
  GREETING: hello 'quoted' world
  NUMS: [a, b]
tasks:
  - show: |
      echo "greeting=$GREETING job=$JOB_ID ci=$CI_NAME nums=${{NUMS[1]}}"
      for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 1; done
      printf 'artifact-bytes\n' > ~/out.txt
  - api: |
      acurl -fsS http://10.0.2.2:{port}/api/jobs/$JOB_ID
  - finish: |
      complete-build
  - never: |
      echo should not run
artifacts:
  - out.txt
"#,
                hook = hooks.url,
                port = api.base.rsplit(':').next().unwrap_or_default(),
            ),
            true,
        )
        .await;
    let bad = api
        .submit(
            "image: debian/bookworm\ntasks:\n  - ok: echo fine\n  - broken: |\n      echo about to fail\n      false\n      echo unreachable\n  - after: echo never\n",
            true,
        )
        .await;

    // The log of a running task is readable while it runs.
    let running = api
        .wait_for(good, VM_JOB, "the show task to print", |job| {
            job["tasks"][0]["status"] == "running" && job["tasks"][0]["log"].is_string()
        })
        .await;
    let url = running["tasks"][0]["log"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut live = String::new();
    while !live.contains("tick 1") {
        assert!(
            std::time::Instant::now() < deadline,
            "no live output: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        live = api.log_text(&url).await;
    }
    let (_, job) = api.get(&format!("/api/jobs/{good}"), &api.alice).await;
    assert_eq!(
        job["tasks"][0]["status"], "running",
        "read while running: {live}"
    );

    let job = api
        .wait_for(good, VM_JOB, "the good job to end", terminal)
        .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(statuses(&job), ["success", "success", "success", "skipped"]);
    // The oauth: job token let the task read its own job through the API
    // (acurl), without the token showing in the log.
    let api_log = api.log_text(job["tasks"][1]["log"].as_str().unwrap()).await;
    assert!(
        api_log.contains(&format!("\"id\":{good}")) && api_log.contains("\"owner\""),
        "{api_log}"
    );
    assert!(!api_log.contains("--oauth2-bearer"), "{api_log}");
    let log = api.log_text(job["tasks"][0]["log"].as_str().unwrap()).await;
    assert!(
        log.contains(&format!(
            "greeting=hello 'quoted' world job={good} ci=builds nums=b"
        )),
        "{log}"
    );
    assert!(log.contains("tick 6"));
    assert!(
        job["tasks"][3]["log"].is_null(),
        "a skipped task has no log"
    );
    let setup = api.log_text(job["setup_log"].as_str().unwrap()).await;
    assert!(setup.contains("guest up in"), "{setup}");
    assert!(
        setup.contains("oauth: a job token for jobs:read")
            && setup.contains("not granted here (other services): git.sr.ht/REPOSITORIES:RO"),
        "{setup}"
    );
    assert!(
        setup.contains("TCG"),
        "the setup log names the accelerator: {setup}"
    );

    let (_, artifacts) = api
        .get(&format!("/api/jobs/{good}/artifacts"), &api.alice)
        .await;
    assert_eq!(artifacts["total"], 1, "{artifacts}");
    let artifact = &artifacts["results"][0];
    assert_eq!(
        (artifact["name"].as_str(), artifact["size"].as_u64()),
        (Some("out.txt"), Some(15))
    );
    let bytes = reqwest::get(artifact["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"artifact-bytes\n");

    // Its success trigger posted the final job resource, with working links.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hooks.hooks().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no webhook");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hook = &hooks.hooks()[0];
    let payload: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(payload["id"], good);
    assert_eq!(payload["status"], "success");
    assert_eq!(payload["tasks"][1]["status"], "success");
    let linked = api
        .log_text(
            payload["tasks"][0]["log"]
                .as_str()
                .expect("a task log link"),
        )
        .await;
    assert!(linked.contains("tick 6"), "{linked}");

    let job = api
        .wait_for(bad, VM_JOB, "the failing job to end", terminal)
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(statuses(&job), ["success", "failed", "pending"]);
    let log = api.log_text(job["tasks"][1]["log"].as_str().unwrap()).await;
    assert!(
        log.contains("about to fail") && !log.contains("unreachable"),
        "{log}"
    );
    let (_, artifacts) = api
        .get(&format!("/api/jobs/{bad}/artifacts"), &api.alice)
        .await;
    assert_eq!(artifacts["total"], 0);
}

/// Cancel kills a running guest; a deadline turns into `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_timeout() {
    let Some(images) = test_images() else { return };
    let api = TestApi::embedded(None).await;
    let sleepy =
        "image: debian/bookworm\ntasks:\n  - wait: |\n      echo started\n      sleep 600\n";

    // A worker with the default deadline: the job is cancelled while its task runs.
    let worker = api.start_worker(&images, |_| {});
    let cancelled = api.submit(sleepy, true).await;
    api.wait_for(cancelled, VM_JOB, "the task to start", |job| {
        job["tasks"][0]["status"] == "running"
    })
    .await;
    let (status, _) = api
        .post(
            &format!("/api/jobs/{cancelled}/cancel"),
            &api.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let job = api
        .wait_for(
            cancelled,
            Duration::from_secs(30),
            "the cancelled job's guest to stop",
            |job| job["status"] == "cancelled",
        )
        .await;
    // The worker writes a last line once the guest is gone.
    let setup_url = job["setup_log"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let setup = api.log_text(&setup_url).await;
        if setup.contains("the guest was stopped") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stop line: {setup}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = worker.send(true);

    // A worker with a short deadline: the job times out (in boot or in its
    // task, depending on how loaded the machine is) and its guest is stopped.
    let _short = api.start_worker(&images, |c| c.deadline = Duration::from_secs(60));
    let timed_out = api.submit(sleepy, true).await;
    let job = api
        .wait_for(timed_out, VM_JOB, "the deadline", terminal)
        .await;
    assert_eq!(job["status"], "timeout", "{job}");
    let setup = api.log_text(job["setup_log"].as_str().unwrap()).await;
    assert!(setup.contains("ran past its deadline of 60 s"), "{setup}");
}

/// `packages:` installs from the Debian mirror inside the guest and `sources:`
/// clones a repository served by `git daemon` on the host (10.0.2.2 from the guest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_and_sources() {
    let Some(images) = test_images() else { return };
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("project.git");
    let work = repos.path().join("work");
    let git = |args: &[&str], dir: &std::path::Path| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    std::fs::create_dir_all(&work).unwrap();
    git(&["init", "-q", "-b", "main"], &work);
    std::fs::write(work.join("README"), "served from the host\n").unwrap();
    git(&["add", "README"], &work);
    git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "first",
        ],
        &work,
    );
    git(
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            repo.to_str().unwrap(),
        ],
        repos.path(),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = std::process::Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", repos.path().display()))
        .arg(repos.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let api = TestApi::embedded(None).await;
    let _worker = api.start_worker(&images, |_| {});
    let id = api
        .submit(
            &format!(
                "image: debian/bookworm\npackages:\n  - hello\nsources:\n  - git://10.0.2.2:{port}/project.git\ntasks:\n  - check: |\n      cat project/README\n      hello\n"
            ),
            true,
        )
        .await;
    let job = api.wait_for(id, VM_JOB, "the job to end", terminal).await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    let setup = api.log_text(job["setup_log"].as_str().unwrap()).await;
    assert_eq!(job["status"], "success", "{job}\n{setup}");
    let log = api.log_text(job["tasks"][0]["log"].as_str().unwrap()).await;
    assert!(log.contains("served from the host"), "{log}");
    assert!(log.contains("Hello, world!"), "{log}");
}

struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker_process(api: &TestApi, images: &std::path::Path) -> Process {
    let child = builds_command()
        .args(["worker", "--lease", "6", "--data-dir"])
        .arg(api.data_dir().expect("embedded"))
        .arg("--images")
        .arg(images)
        .args(["--origin", &api.base])
        .env("BUILDS_ACCEL", "tcg")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("builds worker starts");
    Process(child)
}

/// A worker killed with SIGKILL loses nothing: a job lost in setup runs again
/// on the next worker; a job lost while a task ran is failed with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_crash_recovery() {
    let Some(images) = test_images() else { return };
    let api = TestApi::embedded(None).await;

    // Killed during setup.
    let first = worker_process(&api, &images);
    let in_setup = api
        .submit(
            "image: debian/bookworm\ntasks:\n  - after-crash: echo ran on the second worker\n",
            true,
        )
        .await;
    api.wait_for(in_setup, VM_JOB, "setup to begin", |job| {
        job["status"] == "running"
    })
    .await;
    drop(first); // SIGKILL
    let (_, job) = api.get(&format!("/api/jobs/{in_setup}"), &api.alice).await;
    assert_eq!(
        job["tasks"][0]["status"], "pending",
        "killed before any task: {job}"
    );

    // Killed while a task runs.
    let second = worker_process(&api, &images);
    let job = api
        .wait_for(in_setup, VM_JOB, "the rerun to succeed", terminal)
        .await;
    assert_eq!(job["status"], "success", "{job}");
    let log = api.log_text(job["tasks"][0]["log"].as_str().unwrap()).await;
    assert!(log.contains("ran on the second worker"));

    let in_task = api
        .submit(
            "image: debian/bookworm\ntasks:\n  - long: |\n      echo working\n      sleep 600\n",
            true,
        )
        .await;
    api.wait_for(in_task, VM_JOB, "the task to run", |job| {
        job["tasks"][0]["status"] == "running"
    })
    .await;
    drop(second);
    let _third = worker_process(&api, &images);
    let job = api
        .wait_for(
            in_task,
            Duration::from_secs(120),
            "the lost job to fail",
            terminal,
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(statuses(&job), ["failed"]);
    let setup = api.log_text(job["setup_log"].as_str().unwrap()).await;
    assert!(setup.contains("lost while a task ran"), "{setup}");
    // Nothing is left running.
    let (_, list) = api.get("/api/jobs", &api.alice).await;
    assert!(
        list["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] != "running"),
        "{list}"
    );
}

/// When QEMU exits before the guest is up (here a kernel it cannot load; in
/// the wild a TCG abort), the worker boots afresh, up to its limit, and then
/// reports QEMU's own words.
#[tokio::test]
async fn a_guest_whose_qemu_exits_early_is_booted_again() {
    use builds_worker::vm::{Accel, BootError, Vm, VmSpec};
    // Real QEMU is needed; test_images() says why it is missing when it is.
    let Some(_images) = test_images() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("image");
    std::fs::create_dir_all(&image).expect("image dir");
    std::fs::write(image.join("vmlinuz"), b"not a kernel").expect("kernel");
    std::fs::write(image.join("initrd.img"), b"not an initrd").expect("initrd");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(image.join("base.qcow2"))
        .arg("16M")
        .status()
        .expect("qemu-img");
    assert!(made.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let spec = VmSpec {
        image: &image,
        scratch: &dir.path().join("scratch"),
        ssh_port: port,
        accel: Accel::Tcg,
        memory_mb: 256,
        cpus: 1,
    };
    let mut retries = Vec::new();
    let result = Vm::boot_until_ready(spec, Duration::from_secs(60), 3, |err, attempt| {
        assert!(matches!(err, BootError::Exited { .. }), "{err}");
        retries.push(attempt);
    })
    .await;
    let err = match result {
        Ok(_) => panic!("a guest without a kernel came up"),
        Err(err) => format!("{err:#}"),
    };
    assert_eq!(retries, vec![2, 3], "one boot and two more");
    assert!(err.contains("QEMU exited before the guest was up"), "{err}");
    assert!(err.to_lowercase().contains("kernel"), "QEMU's words: {err}");
}
