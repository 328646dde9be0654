//! The `builds` binary itself: `manifest check`, `token create|revoke`, `serve`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use builds_tests::builds_command as builds;

#[test]
fn manifest_check_reports_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&good, "image: debian/bookworm\ntasks:\n  - build: make\n").unwrap();
    std::fs::write(&bad, "image: 5\ntasks:\n  - Bad Name: make\n").unwrap();
    let out = builds()
        .args(["manifest", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok\n", good.display())
    );

    let out = builds()
        .args(["manifest", "check"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{}: ok", good.display())));
    assert!(
        stdout.contains(&format!("{}: image", bad.display())),
        "{stdout}"
    );
    assert!(stdout.contains("tasks"), "{stdout}");

    let out = builds()
        .args(["manifest", "check", "/nonexistent.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read"));
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn token_create(data_dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    builds()
        .args(["token", "create", "--user", "alice", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn tokens_from_the_cli_work_against_the_served_api() {
    let dir = tempfile::tempdir().unwrap();
    let out = token_create(dir.path(), &["--scopes", "jobs:read", "--expires", "30d"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .last()
        .expect("the token is the last line")
        .to_string();
    assert_eq!(token.len(), 64);

    let bad = token_create(dir.path(), &["--scopes", "jobs:admin"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope"));

    let mut child = builds()
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let origin = line
        .trim()
        .strip_prefix("builds: serving on ")
        .expect(&line)
        .to_string();

    let get = |token: &str| {
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{origin}/api/jobs"))
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut code = String::new();
    while Instant::now() < deadline {
        code = String::from_utf8_lossy(&get(&token).stdout).to_string();
        if code == "200" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code, "200");

    let out = builds()
        .args(["token", "revoke", &token, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&get(&token).stdout), "401");
    drop(server);
}

/// `builds … | head` ends quietly when the reader goes away, like other
/// Unix tools: killed by SIGPIPE, never a panic.
#[test]
fn a_closed_pipe_ends_a_client_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    // More output than a pipe holds (64 KiB), so writes go on after the reader leaves.
    for i in 0..4000 {
        let file = dir.path().join(format!("m{i}.yml"));
        std::fs::write(&file, "image: debian/bookworm\ntasks:\n  - build: make\n").unwrap();
        files.push(file);
    }
    let mut child = builds()
        .args(["manifest", "check"])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.ends_with(": ok\n"), "{first}");
    // The reader is gone now (dropped with the BufReader).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    const SIGPIPE: i32 = 13;
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}", out.status);
}
