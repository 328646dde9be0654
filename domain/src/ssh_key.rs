//! Users' SSH public keys: what lets a job's owner into a guest held for SSH
//! (`shell: true`, or a failed build). Parsed from the OpenSSH one-line form
//! (`ssh-ed25519 AAAA… comment`), kept with the fingerprint OpenSSH shows.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Key types accepted (what OpenSSH offers by default).
const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// A registered public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeyRecord {
    /// A UUID.
    pub id: String,
    pub owner: String,
    /// `type base64` (the comment is kept apart).
    pub key: String,
    pub comment: Option<String>,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// A public key line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `type base64`.
    pub key: String,
    pub comment: Option<String>,
    pub fingerprint: String,
}

/// Why a line is not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadKey(String);

/// Parses `type base64 [comment]`: a known type, base64 that decodes, and a
/// blob that names the same type.
pub fn parse_public_key(line: &str) -> Result<PublicKey, BadKey> {
    let line = line.trim();
    if line.contains('\n') {
        return Err(BadKey("one key, on one line".into()));
    }
    let mut parts = line.splitn(3, char::is_whitespace);
    let kind = parts.next().unwrap_or_default();
    let data = parts.next().unwrap_or_default().trim();
    let comment = parts
        .next()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if kind.contains("PRIVATE") || line.starts_with("-----") {
        return Err(BadKey(
            "this is a private key; give the public one (the .pub file)".into(),
        ));
    }
    if !KEY_TYPES.contains(&kind) {
        return Err(BadKey(format!(
            "unknown key type {kind:?}; expected one of {}",
            KEY_TYPES.join(", ")
        )));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| BadKey("the key data is not base64".into()))?;
    let named = blob
        .get(..4)
        .map(|len| u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
        .and_then(|len| blob.get(4..4 + len))
        .map(|name| name == kind.as_bytes())
        .unwrap_or(false);
    if !named {
        return Err(BadKey(format!("the key data is not a {kind} key")));
    }
    Ok(PublicKey {
        key: format!("{kind} {data}"),
        comment,
        fingerprint: fingerprint(&blob),
    })
}

/// OpenSSH's SHA256 fingerprint of a key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(blob))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by `ssh-keygen -t ed25519 -C alice@laptop`; `ssh-keygen -lf` says
    // SHA256:hHU4amqDv1wKdBB/+a9toIgEE/5oYSwo4B7Z1JXT/Fg.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOON4HSeZoLlYO+pVg0oPgv4iy/PImi+dkAahY6hAbyy alice@laptop";

    #[test]
    fn a_public_key_line_parses_with_its_fingerprint() {
        let key = parse_public_key(&format!("  {KEY}\n")).unwrap();
        assert_eq!(key.comment.as_deref(), Some("alice@laptop"));
        assert!(key.key.starts_with("ssh-ed25519 AAAAC3"));
        assert!(!key.key.contains("alice"));
        assert_eq!(
            key.fingerprint,
            "SHA256:hHU4amqDv1wKdBB/+a9toIgEE/5oYSwo4B7Z1JXT/Fg"
        );
        let bare = parse_public_key(KEY.rsplit_once(' ').unwrap().0).unwrap();
        assert_eq!(bare.comment, None);
        assert_eq!(bare.fingerprint, key.fingerprint);
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for (line, reason) in [
            ("", "unknown key type"),
            ("ssh-dss AAAA", "unknown key type"),
            ("ssh-ed25519 !!!", "not base64"),
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOON4HSeZoLlYO+pVg0oPgv4iy/PImi+dkAahY6hAbyy",
                "not a ssh-rsa key",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
            ("ssh-ed25519 AAAA\nssh-ed25519 AAAA", "one line"),
        ] {
            let err = parse_public_key(line).unwrap_err().to_string();
            assert!(err.contains(reason), "{line:?}: {err}");
        }
    }
}
