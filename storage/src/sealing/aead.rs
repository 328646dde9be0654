//! The one cipher both sealers use: XChaCha20-Poly1305 with a random 24-byte
//! nonce (safe to pick at random for any number of messages) and the context as
//! associated data. Output: nonce ‖ ciphertext ‖ tag.

use builds_domain::ports::{StoreError, StoreResult};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

fn cipher(key: &[u8]) -> StoreResult<XChaCha20Poly1305> {
    XChaCha20Poly1305::new_from_slice(key)
        .map_err(|_| StoreError::Backend(format!("a sealing key is {KEY_BYTES} bytes")))
}

pub fn encrypt(key: &[u8], context: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
    let nonce: [u8; NONCE_BYTES] = rand::random();
    let sealed = cipher(key)?
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| StoreError::Backend("sealing failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

pub fn decrypt(key: &[u8], context: &str, sealed: &[u8]) -> StoreResult<Vec<u8>> {
    if sealed.len() < NONCE_BYTES {
        return Err(StoreError::Backend("sealed secret is truncated".into()));
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    cipher(key)?
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| {
            StoreError::Backend(
                "the secret does not open with this key and context (changed, or another key)"
                    .into(),
            )
        })
}
