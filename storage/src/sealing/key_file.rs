//! The embedded sealer: one 32-byte key in a file only its owner may read
//! (mode 600), made on first use. A key file that others can read is refused.

use super::aead;
use async_trait::async_trait;
use builds_domain::ports::{SecretSealer, StoreError, StoreResult};
use std::path::Path;

/// First byte of what this sealer seals: which sealer and format.
const FORMAT: u8 = 1;

#[derive(Clone)]
pub struct KeyFileSealer {
    key: [u8; aead::KEY_BYTES],
}

impl std::fmt::Debug for KeyFileSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFileSealer(..)")
    }
}

impl KeyFileSealer {
    pub fn new(key: [u8; aead::KEY_BYTES]) -> Self {
        KeyFileSealer { key }
    }

    /// The key in `path` (hex), made with mode 600 when missing.
    pub fn from_key_file(path: &Path) -> StoreResult<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; aead::KEY_BYTES] = rand::random();
                crate::signing::write_private_file(path, hex::encode(key).as_bytes()).map_err(
                    |err| StoreError::Backend(format!("writing {}: {err}", path.display())),
                )?;
                return Ok(KeyFileSealer::new(key));
            }
            Err(err) => {
                return Err(StoreError::Backend(format!(
                    "reading {}: {err}",
                    path.display()
                )))
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(StoreError::backend)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(StoreError::Backend(format!(
                    "{} (the key that seals secrets) has mode {:o}; others must not read it: \
                     chmod 600 {}",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
        }
        let key = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; aead::KEY_BYTES]>::try_from(bytes).ok())
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "{} must hold {} bytes of key in hex",
                    path.display(),
                    aead::KEY_BYTES
                ))
            })?;
        Ok(KeyFileSealer::new(key))
    }
}

#[async_trait]
impl SecretSealer for KeyFileSealer {
    async fn seal(&self, context: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
        let mut out = vec![FORMAT];
        out.extend(aead::encrypt(&self.key, context, plaintext)?);
        Ok(out)
    }

    async fn open(&self, context: &str, sealed: &[u8]) -> StoreResult<Vec<u8>> {
        match sealed.split_first() {
            Some((&FORMAT, rest)) => aead::decrypt(&self.key, context, rest),
            _ => Err(StoreError::Backend(
                "this secret was not sealed by the embedded key file".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_private_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let a = KeyFileSealer::from_key_file(&path).unwrap();
        let b = KeyFileSealer::from_key_file(&path).unwrap();
        assert_eq!(a.key, b.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = KeyFileSealer::from_key_file(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
        std::fs::write(dir.path().join("short"), "abcd").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let short = dir.path().join("short");
            std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
            let err = KeyFileSealer::from_key_file(&short)
                .unwrap_err()
                .to_string();
            assert!(err.contains("32 bytes"), "{err}");
        }
    }
}
