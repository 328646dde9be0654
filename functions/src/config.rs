//! API configuration, from the environment or the local server's flags.

use std::time::Duration;

/// Settings the handlers need beyond the storage ports.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Scheme, host and port that links in responses start with
    /// (`BUILDS_ORIGIN`; the local server defaults it to `http://ADDR`).
    pub origin: String,
    /// Images this deployment offers (`BUILDS_IMAGES`, comma-separated); a
    /// manifest naming another is refused at submit. `None` accepts any image.
    pub images: Option<Vec<String>>,
    /// How long log and artifact links in responses work (`BUILDS_LINK_TTL`
    /// seconds, default 86400).
    pub link_ttl: Duration,
    /// Largest request body accepted (`BUILDS_MAX_BODY` bytes, default 65536).
    pub max_body: usize,
    /// The Ed25519 public key (base64) that verifies webhook payloads workers
    /// sign (`BUILDS_WEBHOOK_PUBLIC_KEY`); published at `GET /api/webhook-key`.
    pub webhook_public_key: Option<String>,
}

impl ApiConfig {
    pub fn new(origin: &str) -> Self {
        ApiConfig {
            origin: origin.trim_end_matches('/').to_string(),
            images: None,
            link_ttl: Duration::from_secs(24 * 60 * 60),
            max_body: 64 * 1024,
            webhook_public_key: None,
        }
    }

    /// From `BUILDS_ORIGIN`, `BUILDS_IMAGES`, `BUILDS_LINK_TTL`, `BUILDS_MAX_BODY`,
    /// `BUILDS_WEBHOOK_PUBLIC_KEY`.
    pub fn from_env() -> anyhow::Result<Self> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let origin = get("BUILDS_ORIGIN")
            .ok_or_else(|| anyhow::anyhow!("BUILDS_ORIGIN must name the API's public URL"))?;
        let mut config = ApiConfig::new(&origin);
        config.images = get("BUILDS_IMAGES").map(|list| parse_image_list(&list));
        config.webhook_public_key = get("BUILDS_WEBHOOK_PUBLIC_KEY");
        if let Some(ttl) = get("BUILDS_LINK_TTL") {
            config.link_ttl =
                Duration::from_secs(ttl.parse().map_err(|_| {
                    anyhow::anyhow!("BUILDS_LINK_TTL must be seconds, not {ttl:?}")
                })?);
        }
        if let Some(max) = get("BUILDS_MAX_BODY") {
            config.max_body = max
                .parse()
                .map_err(|_| anyhow::anyhow!("BUILDS_MAX_BODY must be bytes, not {max:?}"))?;
        }
        Ok(config)
    }
}

/// `debian/bookworm, debian/stable` → the two names.
pub fn parse_image_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
