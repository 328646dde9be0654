//! `builds ssh ID [COMMAND…]`: into a guest held for SSH, through its worker's
//! gateway, with the system's `ssh` and a key registered at `/api/ssh-keys`.

use super::commands::{connect, get_job};
use super::ClientOptions;
use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SshArgs {
    /// The job whose guest to enter.
    pub id: u64,
    /// The private key to log in with (else ssh's defaults and agent).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// An option for ssh (`-o OPTION`); repeat for more.
    #[arg(long = "ssh-option", short = 'o', value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// Run this instead of a login shell.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub client: ClientOptions,
}

/// `ssh://user@host:port` → (user, host, port).
fn parse_shell_url(url: &str) -> Option<(&str, &str, &str)> {
    let rest = url.strip_prefix("ssh://")?;
    let (user, address) = rest.split_once('@')?;
    let (host, port) = address.rsplit_once(':')?;
    (!user.is_empty() && !host.is_empty() && port.parse::<u16>().is_ok())
        .then_some((user, host, port))
}

/// Runs ssh; its exit status becomes ours.
pub async fn run(args: SshArgs) -> anyhow::Result<bool> {
    let (api, _) = connect(&args.client)?;
    let (job, _) = get_job(&api, args.id).await?;
    let Some(url) = job.shell.as_deref() else {
        bail!(
            "job {} is {} and its guest is not held for SSH (a guest is held after its tasks \
             with `shell: true`, or after a failure, when you have a key at /api/ssh-keys)",
            args.id,
            job.status
        );
    };
    let (user, host, port) =
        parse_shell_url(url).with_context(|| format!("the API gave an odd SSH address {url:?}"))?;
    let mut ssh = std::process::Command::new("ssh");
    ssh.args(["-p", port]);
    if let Some(identity) = &args.identity {
        ssh.arg("-i")
            .arg(identity)
            .args(["-o", "IdentitiesOnly=yes"]);
    }
    for option in &args.ssh_options {
        ssh.args(["-o", option]);
    }
    if args.command.is_empty() {
        ssh.arg("-t");
    }
    ssh.arg(format!("{user}@{host}"));
    ssh.args(&args.command);
    let status = ssh
        .status()
        .context("running ssh (is OpenSSH's client installed?)")?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_urls_name_user_host_and_port() {
        assert_eq!(
            parse_shell_url("ssh://17@worker-3.example:2222"),
            Some(("17", "worker-3.example", "2222"))
        );
        assert_eq!(
            parse_shell_url("ssh://17@[::1]:2222"),
            Some(("17", "[::1]", "2222"))
        );
        assert_eq!(parse_shell_url("https://x"), None);
        assert_eq!(parse_shell_url("ssh://17@host"), None);
        assert_eq!(parse_shell_url("ssh://17@host:port"), None);
    }
}
