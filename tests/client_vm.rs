//! The `builds` client against real guests: `submit --follow` streams a job
//! that runs in QEMU to its end (exit 0 on success, non-zero on failure), and
//! `artifacts --download` fetches what it kept.

use builds_tests::{run_command, test_images, TestApi};
use serde_json::Value;
use std::time::Duration;

const VM_JOB: Duration = Duration::from_secs(600);

const GOOD: &str = r#"image: debian/bookworm
tasks:
  - build: |
      echo "building job $JOB_ID"
      for i in 1 2 3; do echo "step $i"; sleep 1; done
      printf 'artifact-bytes\n' > ~/out.txt
  - check: |
      echo checked
artifacts:
  - out.txt
"#;

const BAD: &str = "image: debian/bookworm\ntasks:\n  - ok: echo fine\n  - broken: |\n      echo about to fail\n      false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_follow_runs_real_jobs_to_their_end() {
    let Some(images) = test_images() else { return };
    let api = TestApi::embedded(None).await;
    let _worker = api.start_worker(&images, |c| c.concurrency = 2);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, GOOD).unwrap();

    let mut good_command = api.client(&api.alice);
    good_command
        .arg("submit")
        .arg(&good)
        .args(["--follow", "--note", "vm"]);
    let mut bad_command = api.client(&api.alice);
    bad_command.args(["submit", "--follow"]);
    let (good_out, bad_out) = tokio::join!(
        run_command(good_command, None, VM_JOB),
        run_command(bad_command, Some(BAD), VM_JOB)
    );

    let text = String::from_utf8_lossy(&good_out.stdout).into_owned();
    let errors = String::from_utf8_lossy(&good_out.stderr).into_owned();
    assert_eq!(
        good_out.status.code(),
        Some(0),
        "stdout:\n{text}\nstderr:\n{errors}"
    );
    let first = text.lines().next().unwrap_or_default();
    let id: u64 = first
        .strip_prefix("Job ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        !text.contains('\x1b'),
        "no colours off a terminal: {text:?}"
    );
    // A header per log, the task output in order, a final status line.
    let setup = text.find("==> setup\n").expect(&text);
    let build = text.find("==> task build\n").expect(&text);
    let output = text.find(&format!("building job {id}\n")).expect(&text);
    let steps = text.find("step 3\n").expect(&text);
    let check = text.find("==> task check\n").expect(&text);
    let checked = text.find("checked\n").expect(&text);
    assert!(
        setup < build && build < output && output < steps && steps < check && check < checked,
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "==> job {id}: success (build: success, check: success)\n"
        )),
        "{text}"
    );

    let text = String::from_utf8_lossy(&bad_out.stdout).into_owned();
    assert_eq!(bad_out.status.code(), Some(1), "{bad_out:?}");
    let broken = text.find("==> task broken\n").expect(&text);
    assert!(text[broken..].contains("about to fail"), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(": failed (ok: success, broken: failed)"),
        "{text}"
    );

    // The artifact, listed and downloaded.
    let mut command = api.client(&api.alice);
    command.args(["artifacts", &id.to_string(), "--json"]);
    let out = run_command(command, None, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out:?}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "out.txt", "{listed}");
    assert_eq!(listed[0]["size"], 15);

    let downloads = dir.path().join("downloads");
    let mut command = api.client(&api.alice);
    command
        .args(["artifacts", &id.to_string(), "--download"])
        .arg(&downloads);
    let out = run_command(command, None, Duration::from_secs(60)).await;
    assert!(out.status.success(), "{out:?}");
    let file = downloads.join("out.txt");
    assert_eq!(std::fs::read(&file).unwrap(), b"artifact-bytes\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}  15 B\n", file.display())
    );
    let leftovers: Vec<_> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["out.txt"], "no partial files left");
}
