//! `LocalContentKeys`: data keys wrapped with AES-256-GCM under a key-encryption key from
//! `CONTENT_KEK` (development and tests), so the same envelope format runs without KMS.
//!
//! Wrapped form: `kid length (u8) | kid | nonce (12) | AES-256-GCM(KEK, data key)+tag`, with the
//! content context (app, purpose, owner) and the kid as additional data, so a wrapped key
//! unwraps only for the context it was generated for, as with a KMS encryption context.

use async_trait::async_trait;
use aws_lc_rs::aead::NONCE_LEN;

use super::{
    ContentContext, ContentKeys, DataKey, Envelope, KeyError, PlainKey, open_v1_bytes, seal_bytes,
};
use crate::crypto::random_bytes;

#[derive(Debug, thiserror::Error)]
pub enum LocalKeyError {
    #[error("each entry must be id:base64 of 32 bytes (comma-separated, current first)")]
    Malformed,
    #[error("key ids must be 1..=64 characters and unique")]
    BadId,
}

/// Key-encryption keys by id; the first wraps new data keys, all of them unwrap.
pub struct LocalContentKeys {
    keks: Vec<(String, PlainKey)>,
}

impl std::fmt::Debug for LocalContentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keks.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "LocalContentKeys({ids:?})")
    }
}

impl LocalContentKeys {
    /// From `(id, 32-byte key)` pairs, current first.
    pub fn new(keys: Vec<(String, Vec<u8>)>) -> Result<Self, LocalKeyError> {
        let mut keks: Vec<(String, PlainKey)> = Vec::new();
        for (id, bytes) in keys {
            if id.is_empty() || id.len() > 64 || keks.iter().any(|(k, _)| *k == id) {
                return Err(LocalKeyError::BadId);
            }
            let key = PlainKey::from_slice(&bytes).ok_or(LocalKeyError::Malformed)?;
            keks.push((id, key));
        }
        if keks.is_empty() {
            return Err(LocalKeyError::Malformed);
        }
        Ok(Self { keks })
    }

    /// From the `CONTENT_KEK` text form: `id:base64,id:base64…`, current first.
    pub fn parse(raw: &str) -> Result<Self, LocalKeyError> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let mut keys = Vec::new();
        for pair in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, b64) = pair.split_once(':').ok_or(LocalKeyError::Malformed)?;
            let bytes = STANDARD
                .decode(b64.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(b64.trim()))
                .map_err(|_| LocalKeyError::Malformed)?;
            keys.push((id.trim().to_owned(), bytes));
        }
        Self::new(keys)
    }

    fn aad(context: &ContentContext, kid: &str) -> Vec<u8> {
        context.aad(&["data-key", kid])
    }
}

#[async_trait]
impl ContentKeys for LocalContentKeys {
    async fn generate(&self, context: &ContentContext) -> Result<DataKey, KeyError> {
        let (kid, kek) = self
            .keks
            .first()
            .ok_or_else(|| KeyError::Unavailable("no key-encryption key".to_owned()))?;
        let data_key = random_bytes::<32>();
        let nonce = random_bytes::<NONCE_LEN>();
        let sealed = seal_bytes(kek, nonce, &Self::aad(context, kid), &data_key)
            .map_err(|_| KeyError::Unavailable("wrapping failed".to_owned()))?;
        let kid_len = u8::try_from(kid.len()).map_err(|_| KeyError::Unavailable("kid".into()))?;
        let mut wrapped = vec![kid_len];
        wrapped.extend_from_slice(kid.as_bytes());
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&sealed);
        Ok(DataKey {
            plaintext: PlainKey::new(data_key),
            wrapped,
        })
    }

    async fn unwrap(&self, wrapped: &[u8], context: &ContentContext) -> Result<PlainKey, KeyError> {
        let refused = |why: &str| KeyError::Refused(why.to_owned());
        let (kid_len, rest) = wrapped.split_first().ok_or_else(|| refused("empty"))?;
        let kid_len = usize::from(*kid_len);
        if rest.len() < kid_len + NONCE_LEN {
            return Err(refused("truncated"));
        }
        let (kid, rest) = rest.split_at(kid_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let kid = std::str::from_utf8(kid).map_err(|_| refused("kid"))?;
        let (_, kek) = self
            .keks
            .iter()
            .find(|(id, _)| id == kid)
            .ok_or_else(|| refused("unknown key-encryption key id"))?;
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| refused("nonce"))?;
        let envelope = Envelope {
            wrapped: &[],
            nonce,
            ciphertext,
        };
        let plain = open_v1_bytes(kek, &envelope, &Self::aad(context, kid))
            .map_err(|_| refused("context or key does not match"))?;
        PlainKey::from_slice(&plain).ok_or_else(|| refused("data key length"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::PURPOSE_CHAT;
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const K2: &str = "k2:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[tokio::test]
    async fn a_wrapped_key_unwraps_only_for_its_owner_and_purpose() {
        let keys = LocalContentKeys::parse(K1).unwrap();
        let alice = ContentContext::new(PURPOSE_CHAT, "user#alice");
        let dk = keys.generate(&alice).await.unwrap();
        assert!(dk.wrapped.starts_with(b"\x02k1"));
        let back = keys.unwrap(&dk.wrapped, &alice).await.unwrap();
        assert_eq!(back.0, dk.plaintext.0);
        let bob = ContentContext::new(PURPOSE_CHAT, "user#bob");
        assert!(matches!(
            keys.unwrap(&dk.wrapped, &bob).await,
            Err(KeyError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn a_rotated_kek_list_still_unwraps_keys_of_the_previous_kek() {
        let old = LocalContentKeys::parse(K1).unwrap();
        let rotated = LocalContentKeys::parse(&format!("{K2},{K1}")).unwrap();
        let ctx = ContentContext::new(PURPOSE_CHAT, "user#a");
        let dk = old.generate(&ctx).await.unwrap();
        assert!(rotated.unwrap(&dk.wrapped, &ctx).await.is_ok());
        assert!(
            rotated
                .generate(&ctx)
                .await
                .unwrap()
                .wrapped
                .starts_with(b"\x02k2")
        );
        let only_new = LocalContentKeys::parse(K2).unwrap();
        assert!(only_new.unwrap(&dk.wrapped, &ctx).await.is_err());
    }

    #[test]
    fn malformed_kek_lists_are_refused_without_echoing_them() {
        for bad in ["", "nocolon", "k:short", "k1:!!!", &format!("{K1},{K1}")] {
            let err = LocalContentKeys::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("AAEC"), "{err}");
        }
        let keys = LocalContentKeys::parse(K1).unwrap();
        assert_eq!(format!("{keys:?}"), "LocalContentKeys([\"k1\"])");
    }
}
