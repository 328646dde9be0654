//! The AWS sealer: envelope encryption. Each secret gets its own data key from
//! KMS (`GenerateDataKey`, bound to the context by KMS's encryption context),
//! the bytes are sealed locally under it, and only the KMS-encrypted data key
//! is kept beside them; opening asks KMS to `Decrypt` that key. So reading a
//! secret needs both the table and `kms:Decrypt`, which only the worker has.

use super::aead;
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;
use builds_domain::ports::{SecretSealer, StoreError, StoreResult};

/// First byte of what this sealer seals: which sealer and format.
const FORMAT: u8 = 2;
/// The encryption context's key in KMS requests.
const CONTEXT_KEY: &str = "builds-secret";

#[derive(Clone, Debug)]
pub struct KmsSealer {
    client: Client,
    /// The key new secrets are sealed under; `None` where only opening is done.
    key_id: Option<String>,
}

fn kms_error<E, R>(what: &str, err: aws_sdk_kms::error::SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match crate::aws::sdk_error(err) {
        StoreError::Backend(text) => StoreError::Backend(format!("KMS {what}: {text}")),
        other => other,
    }
}

impl KmsSealer {
    pub fn new(client: Client, key_id: Option<String>) -> Self {
        KmsSealer { client, key_id }
    }
}

#[async_trait]
impl SecretSealer for KmsSealer {
    async fn seal(&self, context: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
        let key_id = self.key_id.as_deref().ok_or_else(|| {
            StoreError::Backend("no KMS key for secrets is configured (BUILDS_SECRETS_KEY)".into())
        })?;
        let out = self
            .client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT_KEY, context)
            .send()
            .await
            .map_err(|err| kms_error("GenerateDataKey", err))?;
        let (Some(data_key), Some(wrapped)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(StoreError::Backend(
                "KMS GenerateDataKey answered without a key".into(),
            ));
        };
        let wrapped = wrapped.as_ref();
        let wrapped_len = u16::try_from(wrapped.len())
            .map_err(|_| StoreError::Backend("KMS data key is too long".into()))?;
        let mut sealed = vec![FORMAT];
        sealed.extend_from_slice(&wrapped_len.to_be_bytes());
        sealed.extend_from_slice(wrapped);
        sealed.extend(aead::encrypt(data_key.as_ref(), context, plaintext)?);
        Ok(sealed)
    }

    async fn open(&self, context: &str, sealed: &[u8]) -> StoreResult<Vec<u8>> {
        let malformed = || StoreError::Backend("this secret was not sealed with KMS".into());
        let (&format, rest) = sealed.split_first().ok_or_else(malformed)?;
        if format != FORMAT || rest.len() < 2 {
            return Err(malformed());
        }
        let wrapped_len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let rest = &rest[2..];
        if rest.len() < wrapped_len {
            return Err(malformed());
        }
        let (wrapped, body) = rest.split_at(wrapped_len);
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(CONTEXT_KEY, context)
            .send()
            .await
            .map_err(|err| kms_error("Decrypt", err))?;
        let data_key = out
            .plaintext()
            .ok_or_else(|| StoreError::Backend("KMS Decrypt answered without a key".into()))?;
        aead::decrypt(data_key.as_ref(), context, body)
    }
}
