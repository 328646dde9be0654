//! Secrets end to end, in real guests: added with `builds secret add`, sealed
//! in the store, resolved by name or UUID for the job's owner only, installed
//! where DESIGN §3 says (SSH key, PGP key, file with its mode) only when the
//! job may have them, and never shown in any log or API response.

use builds_domain::token::Scope;
use builds_tests::{run_command, test_images, TestApi};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const VM_JOB: Duration = Duration::from_secs(600);

fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Vec<u8> {
    let mut command = std::process::Command::new(program);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    out.stdout
}

/// `builds secret add … --json` as `token`'s owner; the new secret's id.
async fn add_secret(api: &TestApi, token: &str, args: &[&str], file: &Path) -> String {
    let mut command = api.client(token);
    command
        .args(["secret", "add", "--json"])
        .args(args)
        .arg(file);
    let out = run_command(command, None, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    created["id"].as_str().expect("id").to_string()
}

/// Lines of secret material long enough to be unmistakable.
fn material_lines(secret: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(secret)
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 24 && !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_installed_only_when_allowed_and_never_shown() {
    let Some(images) = test_images() else { return };
    for tool in ["ssh-keygen", "gpg"] {
        if std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("CI").is_err(),
                "{tool} is missing (.ci/run installs openssh-client and gnupg)"
            );
            eprintln!("SKIPPED: {tool} is missing on this machine; it makes the test's keys");
            return;
        }
    }
    let api = TestApi::embedded(None).await;
    let _worker = api.start_worker(&images, |c| c.concurrency = 2);
    let alice = api
        .mint(
            "alice",
            vec![
                Scope::JobsRead,
                Scope::JobsWrite,
                Scope::SecretsRead,
                Scope::SecretsWrite,
            ],
        )
        .await;
    let bob = api
        .mint("bob", vec![Scope::SecretsRead, Scope::SecretsWrite])
        .await;

    // Real keys, made here: an SSH key, a PGP key, and a file.
    let dir = tempfile::tempdir().unwrap();
    let ssh_path = dir.path().join("id_deploy");
    let mut keygen = std::process::Command::new("ssh-keygen");
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "deploy", "-f"])
        .arg(&ssh_path);
    assert!(keygen.status().unwrap().success());
    let ssh_key = std::fs::read(&ssh_path).unwrap();
    let public = String::from_utf8(std::fs::read(ssh_path.with_extension("pub")).unwrap()).unwrap();
    let public_b64 = public.split_whitespace().nth(1).unwrap().to_string();

    let gnupg = dir.path().join("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    let home: &[(&str, &Path)] = &[("GNUPGHOME", &gnupg)];
    run(
        "gpg",
        &[
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "CI Signer <ci@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        home,
    );
    let listing = String::from_utf8(run(
        "gpg",
        &["--batch", "--with-colons", "--list-secret-keys"],
        home,
    ))
    .unwrap();
    let fingerprint = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|rest| rest.trim_matches(':').split(':').next_back())
        .expect("a fingerprint")
        .to_string();
    let pgp_key = run(
        "gpg",
        &["--batch", "--armor", "--export-secret-keys", &fingerprint],
        home,
    );
    let pgp_path = dir.path().join("signer.asc");
    std::fs::write(&pgp_path, &pgp_key).unwrap();

    let file_secret = format!("api-token={}\n", uuid::Uuid::new_v4().simple()).into_bytes();
    let file_path = dir.path().join("token");
    std::fs::write(&file_path, &file_secret).unwrap();
    let file_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&file_secret))
    };

    let key_id = add_secret(
        &api,
        &alice,
        &["--type", "ssh_key", "--name", "deploy"],
        &ssh_path,
    )
    .await;
    let pgp_id = add_secret(&api, &alice, &["--type", "pgp_key"], &pgp_path).await;
    let file_id = add_secret(
        &api,
        &alice,
        &[
            "--type",
            "file",
            "--path",
            "~/.config/app/token",
            "--mode",
            "640",
        ],
        &file_path,
    )
    .await;
    let bobs_id = add_secret(
        &api,
        &bob,
        &["--type", "ssh_key", "--name", "bobs"],
        &ssh_path,
    )
    .await;

    let installed = format!(
        r#"image: debian/bookworm
secrets:
  - deploy
  - {pgp_id}
  - {file_id}
tasks:
  - check: |
      test "$(stat -c %a ~/.ssh/{key_id})" = 600
      cmp -s ~/.ssh/id_rsa ~/.ssh/{key_id}
      test "$(stat -c %a ~/.ssh/id_rsa)" = 600
      test "$(ssh-keygen -y -f ~/.ssh/id_rsa | cut -d' ' -f2)" = "{public_b64}"
      test "$(stat -c %a ~/.config/app/token)" = 640
      echo "{file_sha}  $HOME/.config/app/token" | sha256sum -c --quiet
      gpg --batch --list-secret-keys {fingerprint} >/dev/null
      echo all-installed
"#
    );
    let withheld = "image: debian/bookworm\nsecrets:\n  - deploy\ntasks:\n  - check: |\n      test ! -e ~/.ssh/id_rsa\n      echo none-installed\n";
    let unresolved = format!(
        "image: debian/bookworm\nsecrets:\n  - deploy\n  - nope\n  - {bobs_id}\ntasks:\n  - never: echo never\n"
    );
    let mut ids = Vec::new();
    for (manifest, secrets) in [
        (&installed[..], true),
        (withheld, false),
        (&unresolved[..], true),
    ] {
        let (status, body) = api
            .post(
                "/api/jobs",
                &alice,
                json!({"manifest": manifest, "secrets": secrets}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["id"].as_u64().unwrap());
    }
    let ended = |job: &Value| {
        matches!(
            job["status"].as_str(),
            Some("success" | "failed" | "timeout" | "cancelled")
        )
    };
    let mut jobs = Vec::new();
    for id in &ids {
        let deadline = std::time::Instant::now() + VM_JOB;
        let job = loop {
            let (_, job) = api.get(&format!("/api/jobs/{id}"), &alice).await;
            if ended(&job) {
                break job;
            }
            assert!(std::time::Instant::now() < deadline, "job {id}: {job}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        jobs.push(job);
    }

    // Every log of every job, and what the API says about them.
    let mut shown = String::new();
    let mut setups = Vec::new();
    for job in &jobs {
        let setup = match job["setup_log"].as_str() {
            Some(url) => api.log_text(url).await,
            None => String::new(),
        };
        shown.push_str(&setup);
        setups.push(setup);
        for task in job["tasks"].as_array().unwrap() {
            if let Some(url) = task["log"].as_str() {
                shown.push_str(&api.log_text(url).await);
            }
        }
        shown.push_str(&job.to_string());
        let id = job["id"].as_u64().unwrap();
        let (_, artifacts) = api.get(&format!("/api/jobs/{id}/artifacts"), &alice).await;
        shown.push_str(&artifacts.to_string());
    }
    let (_, list) = api.get("/api/jobs", &alice).await;
    shown.push_str(&list.to_string());
    let (_, secrets) = api.get("/api/secrets", &alice).await;
    shown.push_str(&secrets.to_string());
    let mut command = api.client(&alice);
    command.args(["secret", "list"]);
    let out = run_command(command, None, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out:?}");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains(&key_id) && listed.contains("deploy"),
        "{listed}"
    );
    shown.push_str(&listed);

    let full = |i: usize| format!("{}\n--- setup log:\n{}", jobs[i], setups[i]);
    assert_eq!(jobs[0]["status"], "success", "{}", full(0));
    assert!(
        setups[0].contains(&format!(
            "installing secret: ssh_key {key_id} (deploy) at ~/.ssh/{key_id} and ~/.ssh/id_rsa"
        )),
        "{}",
        full(0)
    );
    assert!(setups[0].contains(&format!(
        "installing secret: pgp_key {pgp_id} imported with gpg"
    )));
    assert!(setups[0].contains(&format!(
        "installing secret: file {file_id} at ~/.config/app/token, mode 640"
    )));
    assert!(shown.contains("all-installed"));

    assert_eq!(jobs[1]["status"], "success", "{}", full(1));
    assert!(
        setups[1].contains("submitted without secrets"),
        "{}",
        full(1)
    );
    assert!(shown.contains("none-installed"));

    assert_eq!(jobs[2]["status"], "failed", "{}", full(2));
    assert!(setups[2].contains("secret nope: not found"), "{}", full(2));
    assert!(
        setups[2].contains(&format!("secret {bobs_id}: not found")),
        "another owner's secret is not found: {}",
        full(2)
    );
    assert_eq!(jobs[2]["tasks"][0]["status"], "pending");

    // Not a line of any secret anywhere.
    let mut needles = material_lines(&ssh_key);
    needles.extend(material_lines(&pgp_key));
    needles.push(String::from_utf8_lossy(&file_secret).trim().to_string());
    assert!(needles.len() >= 4, "{needles:?}");
    for needle in &needles {
        assert!(
            !shown.contains(needle.as_str()),
            "secret material {needle:?} was shown:\n{shown}"
        );
    }
}
