//! Envelope encryption of content at rest: the stored format, the AEAD, and the `ContentKeys`
//! port that hands out data keys (AWS KMS in Lambda, a local key-encryption key elsewhere).
//!
//! A sealed value is text, so it fits the string fields both store adapters already have:
//!
//! ```text
//! bastion-sealed:v1:<base64url( len(wrapped) u16 BE | wrapped data key | nonce (12) | AES-256-GCM ciphertext+tag )>
//! ```
//!
//! Anything not starting with `bastion-sealed:` is a legacy plaintext value written before
//! sealing existed and is returned as it is. The data key is bound to its owner and purpose by
//! the key service (the KMS encryption context, or the local KEK's AAD); the content is bound to
//! owner, purpose and the item it was written for (e.g. one message of one conversation) by the
//! AEAD's additional data, so a value copied to another owner or item fails to open.

mod local;
mod sealer;

pub use local::{LocalContentKeys, LocalKeyError};
pub use sealer::{CACHE_MAX_AGE_SECS, CACHE_MAX_KEYS, ContentSealer};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::zeroize::Zeroize;

use crate::crypto::random_bytes;

/// The purpose of chat messages and conversation titles (also the stored channel answers).
pub const PURPOSE_CHAT: &str = "chat-content";
/// The purpose of an account's TOTP secret.
pub const PURPOSE_TOTP: &str = "totp-secret";

/// Every sealed value starts with this; the version follows.
const MARKER: &str = "bastion-sealed:";
const V1: &str = "bastion-sealed:v1:";

/// Who and what a data key is for: `{"app":"bastion","purpose":…,"owner":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentContext {
    purpose: &'static str,
    owner: String,
}

impl ContentContext {
    /// `owner` is the owner's stable storage key (e.g. `Owner::key()`).
    pub fn new(purpose: &'static str, owner: impl Into<String>) -> Self {
        Self {
            purpose,
            owner: owner.into(),
        }
    }

    pub fn purpose(&self) -> &str {
        self.purpose
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The encryption context as key/value pairs, as KMS takes it.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("app", "bastion"),
            ("purpose", self.purpose),
            ("owner", &self.owner),
        ]
    }

    /// An unambiguous byte encoding of the context plus `extra` parts (length-prefixed), for
    /// use as AEAD additional data.
    pub(crate) fn aad(&self, extra: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in ["bastion", self.purpose, &self.owner].iter().chain(extra) {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// A plaintext 256-bit data key: zeroed on drop, never printed.
pub struct PlainKey([u8; 32]);

impl PlainKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key from a slice that must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    fn aead(&self) -> Result<LessSafeKey, SealError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| SealError::Corrupt("data key rejected by the AEAD".to_owned()))
    }
}

impl Drop for PlainKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainKey(<redacted>)")
    }
}

/// A fresh data key: the plaintext for this process and the wrapped form stored with items.
#[derive(Debug)]
pub struct DataKey {
    pub plaintext: PlainKey,
    pub wrapped: Vec<u8>,
}

/// Why a key service gave no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The service could not be reached or failed: retryable, never "corrupt".
    #[error("key service unavailable: {0}")]
    Unavailable(String),
    /// The service refused this wrapped key for this context: wrong owner or purpose, another
    /// key, or tampered bytes.
    #[error("wrapped data key refused: {0}")]
    Refused(String),
}

/// The source of data keys. Implementations bind each wrapped key to its `ContentContext`:
/// `unwrap` with any other context must fail with `Refused`.
#[async_trait]
pub trait ContentKeys: Send + Sync {
    async fn generate(&self, context: &ContentContext) -> Result<DataKey, KeyError>;
    async fn unwrap(&self, wrapped: &[u8], context: &ContentContext) -> Result<PlainKey, KeyError>;
}

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key service failed: the caller answers 503 and the item is fine.
    #[error(transparent)]
    Unavailable(KeyError),
    /// The value is not a valid envelope for this owner, purpose and item. Never shown.
    #[error("sealed content is corrupt: {0}")]
    Corrupt(String),
}

impl From<KeyError> for SealError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Unavailable(_) => SealError::Unavailable(e),
            KeyError::Refused(why) => SealError::Corrupt(why),
        }
    }
}

/// Whether `stored` is in the sealed format (any version) rather than legacy plaintext.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(MARKER)
}

/// The parts of a v1 envelope.
pub(crate) struct Envelope<'a> {
    pub wrapped: &'a [u8],
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: &'a [u8],
}

/// Splits decoded v1 bytes into their parts.
pub(crate) fn parse_v1(bytes: &[u8]) -> Result<Envelope<'_>, SealError> {
    let bad = |why: &str| SealError::Corrupt(format!("malformed v1 envelope: {why}"));
    let (len, rest) = bytes.split_first_chunk::<2>().ok_or_else(|| bad("short"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 || rest.len() < len + NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(bad("truncated"));
    }
    let (wrapped, rest) = rest.split_at(len);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| bad("nonce"))?;
    Ok(Envelope {
        wrapped,
        nonce,
        ciphertext,
    })
}

/// Decodes the text form; `Ok(None)` for legacy plaintext.
pub(crate) fn decode(stored: &str) -> Result<Option<Vec<u8>>, SealError> {
    if !is_sealed(stored) {
        return Ok(None);
    }
    let body = stored
        .strip_prefix(V1)
        .ok_or_else(|| SealError::Corrupt("unknown envelope version".to_owned()))?;
    URL_SAFE_NO_PAD
        .decode(body)
        .map(Some)
        .map_err(|_| SealError::Corrupt("envelope is not base64url".to_owned()))
}

/// AES-256-GCM of `plaintext` under `key` and `nonce`: ciphertext with the tag appended.
pub(crate) fn seal_bytes(
    key: &PlainKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut body = plaintext.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| SealError::Corrupt("encryption failed".to_owned()))?;
    Ok(body)
}

/// Encrypts `plaintext` under `key` with a fresh random nonce into the v1 text form.
pub(crate) fn seal_v1(
    key: &PlainKey,
    wrapped: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<String, SealError> {
    let len = u16::try_from(wrapped.len())
        .map_err(|_| SealError::Corrupt("wrapped data key too long".to_owned()))?;
    let nonce = random_bytes::<NONCE_LEN>();
    let body = seal_bytes(key, nonce, aad, plaintext)?;
    let mut out = Vec::with_capacity(2 + wrapped.len() + NONCE_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wrapped);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(format!("{V1}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// Decrypts the ciphertext of `env`; any mismatch of key, AAD or bytes is `Corrupt`.
pub(crate) fn open_v1_bytes(
    key: &PlainKey,
    env: &Envelope<'_>,
    aad: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut body = env.ciphertext.to_vec();
    let plain = key
        .aead()?
        .open_in_place(
            Nonce::assume_unique_for_key(env.nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| SealError::Corrupt("authentication failed".to_owned()))?;
    let len = plain.len();
    body.truncate(len);
    Ok(body)
}

/// Decrypts a parsed envelope into text.
pub(crate) fn open_v1(key: &PlainKey, env: &Envelope<'_>, aad: &[u8]) -> Result<String, SealError> {
    String::from_utf8(open_v1_bytes(key, env, aad)?)
        .map_err(|_| SealError::Corrupt("plaintext is not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(owner: &str) -> ContentContext {
        ContentContext::new(PURPOSE_CHAT, owner)
    }

    #[test]
    fn a_value_sealed_for_one_item_opens_only_with_the_same_key_and_additional_data() {
        let key = PlainKey::new([7; 32]);
        let aad = ctx("user#a").aad(&["conv-1", "message", "0"]);
        let sealed = seal_v1(&key, b"wrapped", &aad, "hello there".as_bytes()).unwrap();
        assert!(sealed.starts_with("bastion-sealed:v1:"));
        assert!(!sealed.contains("hello"));
        let bytes = decode(&sealed).unwrap().unwrap();
        let env = parse_v1(&bytes).unwrap();
        assert_eq!(env.wrapped, b"wrapped");
        assert_eq!(open_v1(&key, &env, &aad).unwrap(), "hello there");

        let other_item = ctx("user#a").aad(&["conv-1", "message", "1"]);
        let other_owner = ctx("user#b").aad(&["conv-1", "message", "0"]);
        for wrong in [other_item, other_owner] {
            assert!(matches!(
                open_v1(&key, &env, &wrong),
                Err(SealError::Corrupt(_))
            ));
        }
        assert!(open_v1(&PlainKey::new([8; 32]), &env, &aad).is_err());
    }

    #[test]
    fn two_seals_of_one_text_differ_because_each_takes_a_fresh_nonce() {
        let key = PlainKey::new([1; 32]);
        let a = seal_v1(&key, b"w", b"aad", b"same").unwrap();
        let b = seal_v1(&key, b"w", b"aad", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn legacy_plaintext_decodes_as_none_and_broken_envelopes_as_corrupt() {
        assert!(decode("just an old message").unwrap().is_none());
        assert!(decode("").unwrap().is_none());
        for broken in [
            "bastion-sealed:v2:AAAA",
            "bastion-sealed:v1:***",
            "bastion-sealed:",
        ] {
            assert!(
                matches!(decode(broken), Err(SealError::Corrupt(_))),
                "{broken}"
            );
        }
        for short in [&[][..], &[0, 0][..], &[0, 5, 1, 2, 3, 4, 5][..]] {
            assert!(matches!(parse_v1(short), Err(SealError::Corrupt(_))));
        }
    }

    #[test]
    fn additional_data_is_length_prefixed_so_parts_cannot_be_shifted() {
        let a = ctx("user#a").aad(&["ab", "c"]);
        let b = ctx("user#a").aad(&["a", "bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn a_plain_key_never_prints_its_bytes() {
        assert_eq!(
            format!("{:?}", PlainKey::new([9; 32])),
            "PlainKey(<redacted>)"
        );
    }
}
