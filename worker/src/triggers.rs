//! Delivers a job's triggers once it has ended: webhooks (the job resource as
//! JSON, signed with Ed25519 over body + nonce, retried with backoff) and
//! emails (SMTP). What fires and what the messages say is the domain's
//! (`builds_domain::triggers`); each delivery's result goes to the setup log.

use crate::log_shipper::LogShipper;
use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use builds_domain::manifest::{Trigger, TriggerAction};
use builds_domain::status::JobStatus;
use builds_domain::triggers::{due, signed_bytes, JobEmail};
use ed25519_dalek::{Signer, SigningKey};
use std::path::Path;
use std::time::Duration;

/// Longest one webhook request may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Webhook attempts in all (builds.sr.ht makes one; we retry transient failures).
const WEBHOOK_ATTEMPTS: usize = 4;

/// Where trigger emails go out.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain, for a local relay), `smtp://user:pass@host?tls=required`
    /// (STARTTLS) or `smtps://…` (`BUILDS_SMTP_URL`).
    pub url: String,
    /// The From address (`BUILDS_SMTP_FROM`, default `builds@localhost`).
    pub from: String,
}

/// What the worker needs to deliver triggers.
#[derive(Clone, Default)]
pub struct TriggerSettings {
    /// Signs webhook payloads; without it webhooks go out unsigned.
    pub webhook_key: Option<SigningKey>,
    /// Without it, email triggers are reported as not sent.
    pub smtp: Option<SmtpSettings>,
}

impl std::fmt::Debug for TriggerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerSettings")
            .field("webhook_key", &self.webhook_key.as_ref().map(|_| "…"))
            .field("smtp", &self.smtp)
            .finish()
    }
}

impl TriggerSettings {
    /// The public half of the webhook key (base64), as the API publishes it.
    pub fn public_key(&self) -> Option<String> {
        self.webhook_key.as_ref().map(public_key_base64)
    }

    /// From `BUILDS_WEBHOOK_KEY` (hex Ed25519 seed, 32 bytes), `BUILDS_SMTP_URL`
    /// and `BUILDS_SMTP_FROM`.
    pub fn from_env() -> anyhow::Result<Self> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let webhook_key = get("BUILDS_WEBHOOK_KEY")
            .map(|hex_seed| key_from_hex(&hex_seed))
            .transpose()
            .context("BUILDS_WEBHOOK_KEY")?;
        let smtp = get("BUILDS_SMTP_URL").map(|url| SmtpSettings {
            url,
            from: get("BUILDS_SMTP_FROM").unwrap_or_else(|| "builds@localhost".to_string()),
        });
        Ok(TriggerSettings { webhook_key, smtp })
    }
}

fn key_from_hex(hex_seed: &str) -> anyhow::Result<SigningKey> {
    let bytes = hex::decode(hex_seed.trim()).context("not hex")?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("an Ed25519 seed is 32 bytes"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The webhook signing key kept in `path` (hex seed, mode 600), made on first use.
pub fn webhook_key_from_file(path: &Path) -> anyhow::Result<SigningKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => key_from_hex(&text).with_context(|| format!("{}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(hex::encode(seed).as_bytes())?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The public half of a webhook key, as the API publishes it (base64).
pub fn public_key_base64(key: &SigningKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes())
}

/// Sends every trigger of `triggers` that fires for something (a job or a
/// job group) that ended with `status`: `resource` is the JSON a webhook
/// posts, `email` what an email says.
pub async fn deliver(
    settings: &TriggerSettings,
    triggers: &[Trigger],
    status: JobStatus,
    resource: &[u8],
    email: &JobEmail,
    log: &LogShipper,
) {
    for trigger in due(triggers, status) {
        match &trigger.action {
            TriggerAction::Webhook { url } => match post_webhook(settings, url, resource).await {
                Ok(status) => log.line(&format!("[builds] webhook {url}: HTTP {status}")),
                Err(err) => log.line(&format!("[builds] webhook {url} failed: {err:#}")),
            },
            TriggerAction::Email {
                to,
                cc,
                in_reply_to,
            } => {
                let sent =
                    send_email(settings, email, to, cc.as_deref(), in_reply_to.as_deref()).await;
                match sent {
                    Ok(()) => log.line(&format!("[builds] email to {to}: sent")),
                    Err(err) => log.line(&format!("[builds] email to {to} failed: {err:#}")),
                }
            }
        }
    }
}

/// Why a webhook attempt failed, and whether trying again could help.
#[derive(Debug, thiserror::Error)]
enum WebhookError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Final(String),
}

async fn post_webhook(
    settings: &TriggerSettings,
    url: &str,
    body: &[u8],
) -> Result<u16, WebhookError> {
    let client = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .build()
        .map_err(|e| WebhookError::Final(e.to_string()))?;
    let attempt = || async {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut request = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Payload-Nonce", &nonce)
            .body(body.to_vec());
        if let Some(key) = &settings.webhook_key {
            let signature = key.sign(&signed_bytes(body, &nonce));
            request = request.header(
                "X-Payload-Signature",
                base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| WebhookError::Transient(format!("{e}")))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(WebhookError::Transient(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(WebhookError::Final(format!("HTTP {}", status.as_u16())));
        }
        Ok(status.as_u16())
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_times(WEBHOOK_ATTEMPTS - 1),
        )
        .when(|err| matches!(err, WebhookError::Transient(_)))
        .await
}

async fn send_email(
    settings: &TriggerSettings,
    email: &JobEmail,
    to: &str,
    cc: Option<&str>,
    in_reply_to: Option<&str>,
) -> anyhow::Result<()> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let smtp = settings
        .smtp
        .as_ref()
        .context("no SMTP server is configured (BUILDS_SMTP_URL)")?;
    let mut message = Message::builder()
        .from(smtp.from.parse().context("the From address")?)
        .subject(email.subject.clone());
    for address in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        message = message.to(address
            .parse()
            .with_context(|| format!("address {address}"))?);
    }
    for address in cc
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        message = message.cc(address
            .parse()
            .with_context(|| format!("address {address}"))?);
    }
    if let Some(id) = in_reply_to {
        message = message.in_reply_to(id.to_string());
    }
    let message = message
        .body(email.body.clone())
        .context("building the email")?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url)
        .context("BUILDS_SMTP_URL")?
        .timeout(Some(Duration::from_secs(30)))
        .build();
    transport.send(message).await.context("SMTP")?;
    Ok(())
}
