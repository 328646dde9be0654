//! SSH into a build, in a real guest: a `shell: true` job's guest is held
//! after its tasks; its owner gets in through the worker's gateway with a key
//! registered at `/api/ssh-keys` (`builds ssh ID COMMAND`); anyone else's key
//! is refused; when the session ends the guest is released and the job ends
//! with the status its tasks earned.

use builds_tests::{run_command, test_images, TestApi};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

/// Options that keep the test's ssh from asking or remembering anything.
const QUIET: [&str; 3] = [
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "BatchMode=yes",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sshes_into_a_held_guest_and_leaving_releases_it() {
    let Some(images) = test_images() else { return };
    let api = TestApi::embedded(None).await;
    let keys = tempfile::tempdir().unwrap();
    let _worker = api.start_worker(&images, |config| {
        config.deadline = Duration::from_secs(400);
        config.shell = Some(builds_worker::config::ShellSettings {
            bind: "127.0.0.1:0".parse().unwrap(),
            public_host: "127.0.0.1".into(),
            host_key: keys.path().join("gateway_host_key"),
        });
    });
    let (alice_key, alice_public) = keygen(keys.path(), "alice");
    let (bob_key, bob_public) = keygen(keys.path(), "bob");
    for (token, public) in [(&api.alice, &alice_public), (&api.bob, &bob_public)] {
        let (status, body) = api
            .post("/api/ssh-keys", token, json!({"ssh_key": public}))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    let manifest =
        "image: debian/bookworm\nshell: true\ntasks:\n  - build: echo built-here > ~/marker\n";
    let id = api.submit(manifest, true).await;
    let held = api
        .wait_for(id, Duration::from_secs(600), "the SSH hold", |job| {
            job["shell"].is_string()
        })
        .await;
    assert_eq!(held["status"], "running");
    assert_eq!(held["tasks"][0]["status"], "success");
    let url = held["shell"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("ssh://{id}@127.0.0.1:")), "{url}");
    let port = url.rsplit(':').next().unwrap().to_string();

    let ssh = |identity: &Path, user: &str, command: &str| {
        let mut ssh = std::process::Command::new("ssh");
        ssh.args(["-p", &port, "-i"])
            .arg(identity)
            .args(["-o", "IdentitiesOnly=yes"])
            .args(QUIET.iter().flat_map(|o| ["-o", o]))
            .arg(format!("{user}@127.0.0.1"))
            .arg(command);
        ssh
    };
    // Another user's key, and the owner's key for a job that is not held.
    for (key, user) in [(&bob_key, id.to_string()), (&alice_key, "999".to_string())] {
        let out = run_command(ssh(key, &user, "true"), None, Duration::from_secs(60)).await;
        assert!(!out.status.success(), "{user} got in: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{out:?}"
        );
    }

    // The owner, through `builds ssh`: a command runs in the guest.
    let mut command = api.client(&api.alice);
    command
        .args(["ssh", &id.to_string(), "-i"])
        .arg(&alice_key)
        .args(QUIET.iter().flat_map(|o| ["-o", o]))
        .args(["--", "cat ~/marker; whoami; exit 3"]);
    let left = Instant::now();
    let out = run_command(command, None, Duration::from_secs(120)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "built-here\nbuild\n", "{out:?}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the command's failure shows: {out:?}"
    );

    // Leaving released the guest: the job ends long before its deadline,
    // with the status its tasks earned.
    let job = api
        .wait_for(id, Duration::from_secs(120), "the job's end", |job| {
            job["status"] == "success"
        })
        .await;
    assert!(left.elapsed() < Duration::from_secs(120));
    assert!(job.get("shell").is_none(), "{job}");
    let setup = api.log_text(job["setup_log"].as_str().unwrap()).await;
    assert!(setup.contains(&format!("builds ssh {id}")), "{setup}");
    assert!(
        setup.contains("the SSH session ended; releasing the guest"),
        "{setup}"
    );
    let mut command = api.client(&api.alice);
    command.args(["ssh", &id.to_string()]);
    let out = run_command(command, None, Duration::from_secs(60)).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not held for SSH"),
        "{out:?}"
    );
}
