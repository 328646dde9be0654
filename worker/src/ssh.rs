//! One SSH connection per job, reused for every command (OpenSSH's
//! ControlMaster): a fresh connection per command costs 0.5–0.8 s under TCG.
//! The guest's host key is pinned at image build (`known_hosts`).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The name the guest's host key is pinned under, whatever port it listens on.
pub const HOST_ALIAS: &str = "builds-guest";

/// How to reach one guest.
#[derive(Debug, Clone)]
pub struct Ssh {
    port: u16,
    key: PathBuf,
    known_hosts: PathBuf,
    control_path: PathBuf,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ssh {
    /// `control_dir` holds the connection's socket: keep its path short, as
    /// Unix sockets allow about 100 bytes (see [`control_dir`]).
    pub fn new(port: u16, key: &Path, image: &Path, control_dir: &Path) -> Ssh {
        Ssh {
            port,
            key: key.to_path_buf(),
            known_hosts: image.join("known_hosts"),
            control_path: control_dir.join(format!("{}-{port}", std::process::id())),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("ssh");
        command
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-i")
            .arg(&self.key)
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-o")
            .arg(format!("HostKeyAlias={HOST_ALIAS}"))
            // AES-GCM first: with AES-NI (real on KVM hosts, emulated under
            // TCG) it is the cheapest cipher for the guest's sshd, which
            // encrypts every byte of task output (chacha20 was 1.4x slower
            // under TCG in bench/ logs).
            .args([
                "-o",
                "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com",
            ])
            .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=yes"])
            .arg("-o")
            .arg(format!("ControlPath={}", self.control_path.display()))
            .args(["-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5"])
            .args(["-o", "ServerAliveCountMax=6", "-o", "LogLevel=ERROR"])
            .args(["-l", "build", "127.0.0.1"])
            .kill_on_drop(true);
        command
    }

    /// Runs `script` with bash in the guest, feeding `stdin`; collects output.
    pub async fn run(&self, script: &str, stdin: &[u8]) -> anyhow::Result<Finished> {
        let mut child = self
            .command()
            .arg(format!("bash -c {}", shell_quote(script)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ssh")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin).await?;
            input.shutdown().await?;
        }
        let output = child.wait_with_output().await?;
        Ok(Finished {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    /// Runs `script` and fails with its output unless it exits 0.
    pub async fn check(&self, what: &str, script: &str, stdin: &[u8]) -> anyhow::Result<Vec<u8>> {
        let done = self.run(script, stdin).await?;
        if done.code != Some(0) {
            bail!(
                "{what} failed (exit {:?}): {}",
                done.code,
                String::from_utf8_lossy(&done.stderr).trim()
            );
        }
        Ok(done.stdout)
    }

    /// Writes `bytes` to `path` in the guest with `mode`.
    pub async fn write_file(&self, path: &str, bytes: &[u8], mode: &str) -> anyhow::Result<()> {
        let script = format!(
            "mkdir -p \"$(dirname {p})\" && cat > {p} && chmod {mode} {p}",
            p = shell_quote(path)
        );
        self.check(&format!("writing {path}"), &script, bytes)
            .await?;
        Ok(())
    }

    /// Runs `command` in the guest with a login shell, sending stdout and stderr
    /// (merged, in order) to `output` as they come. Returns the exit code.
    pub async fn stream(
        &self,
        command: &str,
        output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> anyhow::Result<Option<i32>> {
        let mut child = self
            .command()
            .arg(format!("exec bash -lc {} 2>&1", shell_quote(command)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running ssh")?;
        let mut stdout = child.stdout.take().context("ssh stdout")?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            output(&buf[..n]);
        }
        let status = child.wait().await?;
        if status.code() == Some(255) {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr).await;
            }
            if !stderr.trim().is_empty() {
                bail!("lost the SSH connection to the guest: {}", stderr.trim());
            }
        }
        Ok(status.code())
    }

    /// Opens the shared connection (a background master with no stdio of
    /// ours), retrying while the guest finishes booting.
    pub async fn connect(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let master = self
                .command()
                .args(["-M", "-N", "-f"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .await
                .context("running ssh")?;
            if master.status.success() {
                let check = self.run("true", b"").await?;
                if check.code == Some(0) {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "cannot log in to the guest: {}",
                    String::from_utf8_lossy(&master.stderr).trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A login session in the guest for a person (through the SSH gateway):
    /// their command, or a login shell when `None`; `-tt` when they asked for
    /// a terminal. The caller wires its standard streams.
    pub fn session(&self, command: Option<&str>, tty: bool) -> Command {
        let mut session = self.command();
        session.arg(if tty { "-tt" } else { "-T" });
        if let Some(command) = command {
            session.arg(command);
        }
        session
    }

    /// Closes the shared connection.
    pub async fn close(&self) {
        let _ = self
            .command()
            .args(["-O", "exit"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

/// A short directory for SSH control sockets (`$TMPDIR/builds-ssh`, mode 700).
pub fn control_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join("builds-ssh");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
        Err(err) => Err(err),
    }
}

/// Quotes `text` for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        for text in ["plain", "it's", "$HOME `x` \"y\"", "a\nb"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(text)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), text);
        }
    }
}
