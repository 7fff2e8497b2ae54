//! `SealedMfa`: an `MfaStore` decorator that seals the TOTP secret before it reaches the
//! adapter and opens it on the way back, bound to its account (the data key's context) and to
//! the secret's id (AEAD additional data). Only sealed values open: a plaintext secret in the
//! table (planted, or written around the decorator) is corrupt, never used.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::UserId;
use bastion_core::crypto::TokenHash;
use bastion_core::envelope::{ContentContext, ContentSealer, PURPOSE_TOTP, SealError, is_sealed};

use crate::{MfaStore, StoreError, TotpRecord};

pub struct SealedMfa {
    inner: Arc<dyn MfaStore>,
    sealer: Arc<ContentSealer>,
}

impl SealedMfa {
    pub fn new(inner: Arc<dyn MfaStore>, sealer: Arc<ContentSealer>) -> Self {
        Self { inner, sealer }
    }
}

fn context(user: &UserId) -> ContentContext {
    ContentContext::new(PURPOSE_TOTP, format!("user#{user}"))
}

fn store_error(user: &UserId, e: SealError) -> StoreError {
    match e {
        SealError::Unavailable(k) => StoreError::Unavailable(k.to_string()),
        SealError::Corrupt(why) => {
            tracing::error!(%user, error = %why, "sealed TOTP secret failed to open; not used");
            StoreError::Corrupt(format!("sealed TOTP secret of user {user}: {why}"))
        }
    }
}

#[async_trait]
impl MfaStore for SealedMfa {
    async fn get_totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        let Some(mut record) = self.inner.get_totp(user).await? else {
            return Ok(None);
        };
        if !is_sealed(&record.secret) {
            tracing::error!(%user, "TOTP secret stored unsealed; not used");
            return Err(StoreError::Corrupt(format!(
                "TOTP secret of user {user} is not sealed"
            )));
        }
        record.secret = self
            .sealer
            .open(&context(user), &["totp", &record.id], &record.secret)
            .await
            .map_err(|e| store_error(user, e))?;
        Ok(Some(record))
    }

    async fn put_pending_totp(
        &self,
        user: &UserId,
        record: &TotpRecord,
    ) -> Result<bool, StoreError> {
        let sealed = self
            .sealer
            .seal(&context(user), &["totp", &record.id], &record.secret)
            .await
            .map_err(|e| store_error(user, e))?;
        let record = TotpRecord {
            secret: sealed,
            ..record.clone()
        };
        self.inner.put_pending_totp(user, &record).await
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
        codes: &[TokenHash],
    ) -> Result<bool, StoreError> {
        self.inner.confirm_totp(user, id, step, codes).await
    }

    async fn accept_totp_step(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
    ) -> Result<bool, StoreError> {
        self.inner.accept_totp_step(user, id, step).await
    }

    async fn use_recovery_code(&self, user: &UserId, code: &TokenHash) -> Result<bool, StoreError> {
        self.inner.use_recovery_code(user, code).await
    }

    async fn delete_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        self.inner.delete_totp(user).await
    }
}
