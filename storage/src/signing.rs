//! Signed, expiring URLs for things served without an `Authorization` header
//! (logs, embedded blobs): HMAC-SHA256 over the path and the expiry time.

use builds_domain::api::LogLinks;
use builds_domain::job::{log_path, Job};
use builds_domain::status::{JobStatus, TaskStatus};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// Signed, expiring links to a job's logs (served by the log endpoint at
/// [`log_path`]) for job resources: the API's responses and the worker's
/// webhook payloads alike. A log gets a link once it can have content: the
/// setup log when the job has started, a task's log when the task has.
pub struct SignedLogLinks<'a> {
    pub signer: &'a UrlSigner,
    /// Scheme, host and port the links start with.
    pub origin: &'a str,
    /// How long the links work.
    pub ttl: std::time::Duration,
}

impl SignedLogLinks<'_> {
    fn link(&self, path: &str) -> String {
        let expires = OffsetDateTime::now_utc() + self.ttl;
        format!(
            "{}{}?{}",
            self.origin,
            path,
            self.signer.query(path, expires)
        )
    }
}

impl LogLinks for SignedLogLinks<'_> {
    fn setup_log(&self, job: &Job) -> Option<String> {
        let started = !matches!(job.status, JobStatus::Pending | JobStatus::Queued)
            && (job.runner.is_some() || job.status == JobStatus::Running);
        started.then(|| self.link(&log_path(job.id, None)))
    }

    fn task_log(&self, job: &Job, task: &str) -> Option<String> {
        let started = job
            .tasks
            .iter()
            .find(|t| t.name == task)
            .is_some_and(|t| !matches!(t.status, TaskStatus::Pending | TaskStatus::Skipped));
        started.then(|| self.link(&log_path(job.id, Some(task))))
    }
}

/// Signs and checks `?expires=…&signature=…` query strings.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        UrlSigner { key: key.into() }
    }

    /// The key kept in `path` (mode 600), made on first use.
    pub fn from_key_file(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(key) if key.len() >= 32 => return Ok(UrlSigner::new(key)),
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} holds fewer than 32 bytes of key",
                    path.display()
                )))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let key: [u8; 32] = rand::random();
        write_private_file(path, &key)?;
        Ok(UrlSigner::new(key.to_vec()))
    }

    fn mac(&self, path: &str, expires: i64) -> HmacSha256 {
        // new_from_slice accepts keys of any length for HMAC.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string (without `?`) that lets `path` be read until `expires`.
    pub fn query(&self, path: &str, expires: OffsetDateTime) -> String {
        let expires = expires.unix_timestamp();
        let signature = hex::encode(self.mac(path, expires).finalize().into_bytes());
        format!("expires={expires}&signature={signature}")
    }

    /// Whether `query` carries a valid, unexpired signature for `path`.
    pub fn verify(&self, path: &str, query: Option<&str>, now: OffsetDateTime) -> bool {
        let Some(query) = query else { return false };
        let mut expires = None;
        let mut signature = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", value)) => expires = value.parse::<i64>().ok(),
                Some(("signature", value)) => signature = hex::decode(value).ok(),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return false;
        };
        expires > now.unix_timestamp() && self.mac(path, expires).verify_slice(&signature).is_ok()
    }
}

/// Writes a file only its owner can read (mode 600 on Unix).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_query_verifies_until_it_expires() {
        let signer = UrlSigner::new(b"k".to_vec());
        let now = OffsetDateTime::from_unix_timestamp(1000).unwrap();
        let query = signer.query("/blobs/a", now + time::Duration::seconds(60));
        assert!(signer.verify("/blobs/a", Some(&query), now));
        assert!(!signer.verify("/blobs/b", Some(&query), now));
        assert!(!signer.verify("/blobs/a", Some(&query), now + time::Duration::seconds(60)));
        assert!(!UrlSigner::new(b"other".to_vec()).verify("/blobs/a", Some(&query), now));
        assert!(!signer.verify("/blobs/a", None, now));
        assert!(!signer.verify("/blobs/a", Some("expires=9999999999"), now));
    }

    #[test]
    fn the_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let a = UrlSigner::from_key_file(&path).unwrap();
        let b = UrlSigner::from_key_file(&path).unwrap();
        assert_eq!(a.key, b.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
