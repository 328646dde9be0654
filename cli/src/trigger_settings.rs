//! Trigger settings for the commands that run workers: the environment's
//! (`BUILDS_WEBHOOK_KEY`, `BUILDS_SMTP_URL`, `BUILDS_SMTP_FROM`), with the
//! webhook key kept in the data directory (`webhook.key`, mode 600) when the
//! environment names none.

use builds_worker::triggers::{webhook_key_from_file, TriggerSettings};
use std::path::Path;

pub fn trigger_settings(data_dir: &Path) -> anyhow::Result<TriggerSettings> {
    let mut settings = TriggerSettings::from_env()?;
    if settings.webhook_key.is_none() {
        settings.webhook_key = Some(webhook_key_from_file(&data_dir.join("webhook.key"))?);
    }
    Ok(settings)
}
