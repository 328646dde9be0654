//! Sealers for secrets ([`SecretSealer`](builds_domain::ports::SecretSealer)):
//! XChaCha20-Poly1305 under a key file (embedded) or under a per-secret data
//! key from KMS (envelope encryption, AWS). Both bind the sealed bytes to the
//! secret's context as associated data.

mod aead;
mod key_file;
mod kms;

pub use key_file::KeyFileSealer;
pub use kms::KmsSealer;
