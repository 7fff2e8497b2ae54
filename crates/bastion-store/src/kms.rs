//! `KmsContentKeys`: the `ContentKeys` port on AWS KMS. `GenerateDataKey` (AES_256) makes a
//! data key under `KMS_KEY_ID` with the content's encryption context
//! (`{"app":"bastion","purpose":…,"owner":…}`); `Decrypt` with the same context unwraps it, and
//! KMS refuses any other context. Calls are made only on a cache miss of `ContentSealer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use bastion_core::Clock;
use bastion_core::envelope::{
    ContentContext, ContentKeys, ContentSealer, DataKey, KeyError, PlainKey,
};

/// Data keys from KMS under one key.
pub struct KmsContentKeys {
    client: Client,
    key_id: String,
    calls: AtomicU64,
}

impl std::fmt::Debug for KmsContentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsContentKeys")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl KmsContentKeys {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            calls: AtomicU64::new(0),
        }
    }

    /// A client from the process's shared SDK configuration.
    pub fn from_sdk(config: &aws_types::SdkConfig, key_id: impl Into<String>) -> Self {
        Self::new(Client::new(config), key_id)
    }

    /// The content sealer of a Lambda function: KMS data keys behind the per-instance cache.
    pub fn sealer(
        config: &aws_types::SdkConfig,
        key_id: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Arc<ContentSealer> {
        Arc::new(ContentSealer::new(
            Arc::new(Self::from_sdk(config, key_id)),
            clock,
        ))
    }

    /// KMS requests made so far by this instance (GenerateDataKey + Decrypt).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self, op: &'static str, context: &ContentContext) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(op, owner = context.owner(), kms_calls = n, "kms request");
    }
}

fn context_pairs(context: &ContentContext) -> std::collections::HashMap<String, String> {
    context
        .pairs()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[async_trait]
impl ContentKeys for KmsContentKeys {
    async fn generate(&self, context: &ContentContext) -> Result<DataKey, KeyError> {
        self.count("GenerateDataKey", context);
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context_pairs(context)))
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        let plaintext = out
            .plaintext()
            .and_then(|b| PlainKey::from_slice(b.as_ref()))
            .ok_or_else(|| KeyError::Unavailable("GenerateDataKey: no 32-byte key".to_owned()))?;
        let wrapped = out
            .ciphertext_blob()
            .map(|b| b.as_ref().to_vec())
            .filter(|w| !w.is_empty())
            .ok_or_else(|| KeyError::Unavailable("GenerateDataKey: no ciphertext".to_owned()))?;
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap(&self, wrapped: &[u8], context: &ContentContext) -> Result<PlainKey, KeyError> {
        self.count("Decrypt", context);
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context_pairs(context)))
            .send()
            .await
            .map_err(|e| {
                let text = DisplayErrorContext(&e).to_string();
                // A wrong context, another key or tampered bytes: the item is corrupt, and
                // retrying cannot help. Anything else is the service being unavailable.
                match e.as_service_error() {
                    Some(s)
                        if s.is_invalid_ciphertext_exception()
                            || s.is_incorrect_key_exception() =>
                    {
                        KeyError::Refused(text)
                    }
                    _ => KeyError::Unavailable(text),
                }
            })?;
        out.plaintext()
            .and_then(|b| PlainKey::from_slice(b.as_ref()))
            .ok_or_else(|| KeyError::Refused("Decrypt: not a 32-byte data key".to_owned()))
    }
}
