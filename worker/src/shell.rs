//! SSH into a build. A guest held after its tasks (`shell: true`, or a failed
//! build) is reached through this worker's SSH gateway: the user logs in as
//! the job's id with one of the SSH keys the job's owner registered through
//! the API (`/api/ssh-keys`), and the gateway carries the session to the
//! guest over the worker's own connection. No key of the owner, no entry;
//! no held guest, no entry; nothing else is served.

use crate::ssh::Ssh;
use anyhow::Context;
use builds_domain::job::JobId;
use builds_domain::ports::JobStore;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, CryptoVec};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// A guest the gateway may open sessions to.
#[derive(Clone)]
struct Held {
    owner: String,
    ssh: Arc<Ssh>,
    /// Told when a session to this guest ends.
    ended: Arc<Notify>,
}

type HeldGuests = Arc<Mutex<HashMap<JobId, Held>>>;

/// The gateway: which guests are held, and where users connect.
#[derive(Clone)]
pub struct ShellGateway {
    held: HeldGuests,
    /// `host:port` users connect to (what `builds ssh` reads from the job).
    pub address: String,
}

/// Keeps a guest reachable until dropped.
pub struct HoldGuard {
    job: JobId,
    held: HeldGuests,
    ended: Arc<Notify>,
}

impl HoldGuard {
    /// Returns when a session to the guest has ended.
    pub async fn session_ended(&self) {
        self.ended.notified().await
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&self.job);
        }
    }
}

impl ShellGateway {
    /// Serves SSH on `bind`; users are told to connect to `public_host` at
    /// the bound port. The host key lives in `host_key` (made on first use).
    pub async fn start(
        bind: SocketAddr,
        public_host: &str,
        host_key: &Path,
        store: Arc<dyn JobStore>,
    ) -> anyhow::Result<ShellGateway> {
        let key = load_or_make_host_key(host_key)?;
        let config = Arc::new(russh::server::Config {
            keys: vec![key],
            auth_rejection_time: Duration::from_millis(500),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(3600)),
            ..Default::default()
        });
        let socket = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the SSH gateway to {bind}"))?;
        let port = socket.local_addr()?.port();
        let held: HeldGuests = Arc::default();
        let mut server = Gateway {
            held: Arc::clone(&held),
            store,
        };
        tokio::spawn(async move {
            if let Err(err) = server.run_on_socket(config, &socket).await {
                tracing::error!(%err, "the SSH gateway stopped");
            }
        });
        Ok(ShellGateway {
            held,
            address: format!("{public_host}:{port}"),
        })
    }

    /// Makes the job's guest reachable by its owner until the guard drops.
    pub fn hold(&self, job: JobId, owner: &str, ssh: Arc<Ssh>) -> HoldGuard {
        let ended = Arc::new(Notify::new());
        if let Ok(mut held) = self.held.lock() {
            held.insert(
                job,
                Held {
                    owner: owner.to_string(),
                    ssh,
                    ended: Arc::clone(&ended),
                },
            );
        }
        HoldGuard {
            job,
            held: Arc::clone(&self.held),
            ended,
        }
    }
}

fn load_or_make_host_key(path: &Path) -> anyhow::Result<PrivateKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_openssh(&text)
            .with_context(|| format!("{} is not an OpenSSH private key", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::random(&mut rand::rngs::OsRng, russh::keys::Algorithm::Ed25519)
                .context("making the gateway's host key")?;
            let text = key
                .to_openssh(russh::keys::ssh_key::LineEnding::LF)
                .context("encoding the host key")?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            builds_storage::signing::write_private_file(path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(key)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// `type base64` of a key, as `/api/ssh-keys` stores it.
fn key_line(key: &PublicKey) -> Option<String> {
    let text = key.to_openssh().ok()?;
    let mut parts = text.split_whitespace();
    Some(format!("{} {}", parts.next()?, parts.next()?))
}

#[derive(Clone)]
struct Gateway {
    held: HeldGuests,
    store: Arc<dyn JobStore>,
}

impl russh::server::Server for Gateway {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            gateway: self.clone(),
            peer,
            guest: None,
            tty: false,
            stdin: None,
        }
    }
}

/// One user's connection.
struct Connection {
    gateway: Gateway,
    peer: Option<SocketAddr>,
    /// The guest, once authenticated.
    guest: Option<(JobId, Held)>,
    tty: bool,
    /// Feeds the guest session's standard input.
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

impl Connection {
    /// The held guest of job `user`, if `key` is one of its owner's keys.
    async fn admit(&self, user: &str, key: &PublicKey) -> Option<(JobId, Held)> {
        let job: JobId = user.parse().ok()?;
        let held = self.gateway.held.lock().ok()?.get(&job).cloned()?;
        let offered = key_line(key)?;
        let keys = match self.gateway.store.list_ssh_keys(&held.owner).await {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(job, %err, "reading SSH keys failed");
                return None;
            }
        };
        keys.iter().any(|k| k.key == offered).then_some((job, held))
    }

    /// Starts the guest session for `command` (a shell when `None`).
    fn start(&mut self, channel: ChannelId, command: Option<String>, session: &mut Session) {
        let Some((job, held)) = self.guest.clone() else {
            return;
        };
        let handle = session.handle();
        let mut child = match held
            .ssh
            .session(command.as_deref(), self.tty)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                tracing::error!(job, %err, "starting a guest session failed");
                return;
            }
        };
        tracing::info!(job, peer = ?self.peer, "SSH session into the guest");
        let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<u8>>();
        self.stdin = Some(sender);
        if let Some(mut stdin) = child.stdin.take() {
            tokio::spawn(async move {
                while let Some(bytes) = receiver.recv().await {
                    if stdin.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            });
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        tokio::spawn(async move {
            let out = copy_out(stdout, handle.clone(), channel, None);
            let err = copy_out(stderr, handle.clone(), channel, Some(1));
            let (_, _) = tokio::join!(out, err);
            let code = child
                .wait()
                .await
                .ok()
                .and_then(|s| s.code())
                .unwrap_or(255);
            let _ = handle.exit_status_request(channel, code as u32).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
            held.ended.notify_waiters();
            tracing::info!(job, code, "SSH session ended");
        });
    }
}

/// Copies a guest stream to the user's channel (`ext` 1 for stderr).
async fn copy_out(
    stream: Option<impl tokio::io::AsyncRead + Unpin>,
    handle: russh::server::Handle,
    channel: ChannelId,
    ext: Option<u32>,
) {
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = CryptoVec::from_slice(&buf[..n]);
        let sent = match ext {
            Some(ext) => handle.extended_data(channel, ext, data).await,
            None => handle.data(channel, data).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        key: &PublicKey,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.admit(user, key).await {
            Some(_) => Auth::Accept,
            None => Auth::reject(),
        })
    }

    async fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        match self.admit(user, key).await {
            Some(guest) => {
                self.guest = Some(guest);
                Ok(Auth::Accept)
            }
            None => {
                tracing::info!(user, peer = ?self.peer, "SSH gateway: refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.guest.is_some())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.tty = true;
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, None, session);
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Some(command), session);
        session.channel_success(channel)
    }

    async fn data(
        &mut self,
        _channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(stdin) = &self.stdin {
            let _ = stdin.send(data.to_vec());
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping the sender closes the guest session's standard input.
        self.stdin = None;
        Ok(())
    }
}
